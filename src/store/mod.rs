//! Persistence behind one trait, so the embedded redb file and a shared PostgreSQL database
//! are interchangeable.
//!
//! Every operation that must be atomic (one active key per user, refresh rotation, unique
//! usernames, the first admin) is a single trait method, so each backend makes it one
//! transaction instead of the caller composing reads and writes that could interleave. A
//! security change (a deactivation, a password, roles, a deletion, a revoked or replaced key)
//! is one such transaction with everything that follows from it: the bumped
//! `tokens_valid_after`, the revoked key, the audit events. Once it commits, the store reports
//! what changed to the [`ChangeFeed`] the caches follow; no caller invalidates a cache itself.

mod postgres;
pub mod records;
mod redb;

use std::path::PathBuf;

use async_trait::async_trait;

pub use self::postgres::PostgresStore;
pub use self::redb::RedbStore;
pub use records::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("username is already taken")]
    UsernameTaken,
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The disk failed under the store (full, gone); the store reopens itself once it can.
    #[error("store I/O failed: {0}")]
    Io(String),
    #[error("corrupt record in table {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
    /// The change would leave no active administrator; nothing was changed.
    #[error("the last active administrator cannot be demoted, deactivated or deleted")]
    LastAdmin,
    /// Data that breaks an invariant of the store (an import); nothing was written.
    #[error("{0}")]
    Rejected(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A change to what the caches hold, reported by the store that committed it (and, with
/// PostgreSQL, by every other replica's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    User(UserId),
    ApiKey(String),
    Session(String),
    /// Anything may have changed (the feed was interrupted): drop everything.
    Everything,
}

pub type ChangeSink = std::sync::Arc<dyn Fn(Change) + Send + Sync>;

/// Where a store reports the changes it committed: called synchronously after the commit, so
/// the change is in effect for the very next request in this process.
#[derive(Clone, Default)]
pub struct ChangeFeed(std::sync::Arc<std::sync::OnceLock<ChangeSink>>);

impl ChangeFeed {
    /// Sends every later change to `sink` (the first sink set stays).
    pub fn follow_with(&self, sink: ChangeSink) {
        let _ = self.0.set(sink);
    }

    pub fn publish(&self, change: Change) {
        if let Some(sink) = self.0.get() {
            sink(change);
        }
    }
}

/// Who makes a change, for the audit events the store writes in the same transaction.
#[derive(Debug, Clone)]
pub struct Actor {
    /// A username, or `cli` for the command line.
    pub name: String,
    pub client_ip: Option<String>,
}

impl Actor {
    pub fn cli() -> Actor {
        Actor {
            name: "cli".into(),
            client_ip: None,
        }
    }

    pub fn event(&self, kind: &'static str, target: impl Into<String>) -> NewAuditEvent {
        NewAuditEvent {
            kind,
            actor: Some(self.name.clone()),
            target: Some(target.into()),
            client_ip: self.client_ip.clone(),
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>>;
    /// Usernames are unique and looked up without regard to case.
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    async fn users(&self) -> StoreResult<Vec<UserRecord>>;
    /// Creates the user and writes `user_created`.
    async fn create_user(&self, user: NewUser, actor: &Actor) -> StoreResult<UserRecord>;
    /// Creates `user` only when there are no users at all: the bootstrap admin, exactly once
    /// however many replicas start together.
    async fn create_first_user(&self, user: NewUser) -> StoreResult<Option<UserRecord>>;
    /// Applies `patch` ([`UserRecord::apply`]); one that revokes credentials also revokes the
    /// user's key. Writes an event of `kind` (and `api_key_revoked`). Refuses with
    /// [`StoreError::LastAdmin`], in the same transaction, a change that would leave no active
    /// administrator.
    async fn update_user(
        &self,
        id: UserId,
        patch: UserPatch,
        actor: &Actor,
        kind: &'static str,
    ) -> StoreResult<Option<UserRecord>>;
    /// Removes the user and revokes their active key, writing `user_deleted` (and
    /// `api_key_revoked`). Refuses to delete the last active administrator.
    async fn delete_user(&self, id: UserId, actor: &Actor) -> StoreResult<Option<DeletedUser>>;

    /// Stores `key` as its user's active key and revokes the previous one, whose id it returns;
    /// writes `api_key_created` (and `api_key_revoked` for the one it replaced).
    async fn insert_api_key(&self, key: ApiKeyRecord, actor: &Actor)
    -> StoreResult<Option<String>>;
    async fn api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>>;
    /// The key, only if it is unrevoked and its user's one active key: what the key check
    /// reads, so the invariant holds there too even if a row broke it.
    async fn active_api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>>;
    async fn api_keys(&self, user: Option<UserId>) -> StoreResult<Vec<ApiKeyRecord>>;
    /// Revokes a key, writing `api_key_revoked` if it was active; `None` when there is no such
    /// key. Revoking a revoked key changes nothing.
    async fn revoke_api_key(&self, id: &str, actor: &Actor) -> StoreResult<Option<RevokedKey>>;
    /// Writes a batch of `last_used_at` times at once (they are kept in memory in between).
    async fn record_api_key_use(&self, uses: Vec<(String, u64)>) -> StoreResult<()>;

    async fn create_family(&self, family: RefreshFamily) -> StoreResult<()>;
    async fn family(&self, id: &str) -> StoreResult<Option<RefreshFamily>>;
    /// Moves the family from `presented_jti` to `next_jti` if `presented_jti` is its newest
    /// token; if it is an older one, revokes the family.
    async fn rotate_family(
        &self,
        id: &str,
        presented_jti: &str,
        next_jti: &str,
        expires_at: u64,
        now: u64,
    ) -> StoreResult<RotateOutcome>;
    async fn revoke_family(&self, id: &str, at: u64) -> StoreResult<bool>;
    /// Deletes families whose tokens have all expired.
    async fn prune_families(&self, now: u64) -> StoreResult<usize>;

    async fn append_audit(&self, event: NewAuditEvent, at: u64) -> StoreResult<()>;
    /// Newest first, strictly older than `before` when given.
    async fn audit_events(&self, before: Option<u64>, limit: usize)
    -> StoreResult<Vec<AuditEvent>>;

    /// Takes one attempt from each budget in order, stopping at the first with none left, and
    /// returns how many milliseconds until that one has room; `None` when every budget had.
    /// One transaction; budgets shared by every process on the store.
    async fn take_login_budgets(
        &self,
        budgets: Vec<LoginBudget>,
        now_ms: u64,
    ) -> StoreResult<Option<u64>>;
    /// Forgets budgets that are full again.
    async fn prune_login_budgets(&self, now_ms: u64) -> StoreResult<usize>;

    /// Writes users (ids kept) and keys in one transaction, replacing rows with the same ids:
    /// moving data between stores, and loading large fixtures. Refuses, writing nothing, keys
    /// that would give a user two active keys ([`check_import`]).
    async fn import(&self, users: Vec<UserRecord>, keys: Vec<ApiKeyRecord>) -> StoreResult<()>;

    /// Cheap round trip for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

    /// Whether writes are going through: false while the disk refuses them (`/readyz` then
    /// says `read_only`).
    fn writable(&self) -> bool {
        true
    }

    /// Where this store reports the changes it commits.
    fn feed(&self) -> &ChangeFeed;

    /// Reports changes made by other processes sharing the store to `sink`, until the process
    /// ends. A store that one process owns has none to report.
    async fn follow_changes(&self, _sink: ChangeSink) {}

    /// Whether other processes' changes are being followed right now (always, when there
    /// cannot be any).
    fn following_changes(&self) -> bool {
        true
    }
}
