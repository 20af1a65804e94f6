//! Persistence behind one trait, so the embedded redb file and a shared PostgreSQL database
//! are interchangeable.
//!
//! Every operation that must be atomic (one active key per user, refresh rotation, unique
//! usernames, the first admin) is a single trait method, so each backend makes it one
//! transaction instead of the caller composing reads and writes that could interleave.

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

/// A change made by another process sharing the store, which caches must drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    User(UserId),
    ApiKey(String),
    Session(String),
    /// Anything may have changed (the feed was interrupted): drop everything.
    Everything,
}

pub type ChangeSink = std::sync::Arc<dyn Fn(Change) + Send + Sync>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>>;
    /// Usernames are unique and looked up without regard to case.
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    async fn users(&self) -> StoreResult<Vec<UserRecord>>;
    async fn create_user(&self, user: NewUser) -> StoreResult<UserRecord>;
    /// Creates `user` only when there are no users at all: the bootstrap admin, exactly once
    /// however many replicas start together.
    async fn create_first_user(&self, user: NewUser) -> StoreResult<Option<UserRecord>>;
    /// Applies `patch`; refuses with [`StoreError::LastAdmin`], in the same transaction, a
    /// change that would leave no active administrator.
    async fn update_user(&self, id: UserId, patch: UserPatch) -> StoreResult<Option<UserRecord>>;
    /// Removes the user and revokes their active key; returns the revoked key id, if any.
    /// Refuses to delete the last active administrator.
    async fn delete_user(&self, id: UserId) -> StoreResult<Option<Option<String>>>;

    /// Stores `key` as its user's active key and revokes the previous one, whose id it returns.
    async fn insert_api_key(&self, key: ApiKeyRecord) -> StoreResult<Option<String>>;
    async fn api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>>;
    /// The key, only if it is unrevoked and its user's one active key: what the key check
    /// reads, so the invariant holds there too even if a row broke it.
    async fn active_api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>>;
    async fn api_keys(&self, user: Option<UserId>) -> StoreResult<Vec<ApiKeyRecord>>;
    /// Revokes a key (idempotent); `None` when there is no such key.
    async fn revoke_api_key(&self, id: &str, at: u64) -> StoreResult<Option<ApiKeyRecord>>;
    /// Revokes the user's active key, if any, and returns its id.
    async fn revoke_user_api_key(&self, user: UserId, at: u64) -> StoreResult<Option<String>>;
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

    /// Reports changes made by other processes sharing the store to `sink`, until the process
    /// ends. A store that one process owns has none to report.
    async fn follow_changes(&self, _sink: ChangeSink) {}

    /// Whether other processes' changes are being followed right now (always, when there
    /// cannot be any).
    fn following_changes(&self) -> bool {
        true
    }
}
