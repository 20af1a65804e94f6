//! The embedded store: one redb file in `data_dir`, created 0600.
//!
//! Rows are JSON (small, self-describing, readable in a dump). redb transactions are
//! blocking file I/O, so every operation runs on the blocking pool, never on the reactor.
//! Commits are durable when they return: a `kill -9` after a successful response loses
//! nothing.

use std::fs::OpenOptions;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};

mod handle;
mod rows;

use self::handle::Handle;
use self::rows::*;
use super::records::*;
use super::{Actor, Change, ChangeFeed, Store, StoreError, StoreResult};

/// Turns each redb error type into a `StoreError` so closures can use `?`; an I/O failure is
/// told apart, since it leaves the `Database` unusable until reopened.
macro_rules! unavailable_from {
    ($($error:ty),*) => {$(
        impl From<$error> for StoreError {
            fn from(e: $error) -> Self {
                match redb::Error::from(e) {
                    error @ (redb::Error::Io(_) | redb::Error::PreviousIo) => {
                        StoreError::Io(error.to_string())
                    }
                    error => StoreError::Unavailable(error.to_string()),
                }
            }
        }
    )*};
}
unavailable_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// The size of the write `/readyz` tries while writes are failing.
const PROBE_BYTES: usize = 16 * 1024;

#[derive(Clone)]
pub struct RedbStore {
    /// `Database` is internally synchronized; the handle lets blocking tasks share it, and
    /// replaces it after an I/O error.
    handle: Arc<Handle>,
    /// This process is the file's only writer, so what it commits is all there is to report.
    feed: ChangeFeed,
}

impl RedbStore {
    /// Opens or creates the file. A file that is not a valid redb database (truncated,
    /// corrupted, something else) is an error naming it, never silently replaced.
    pub fn open(path: &Path) -> StoreResult<RedbStore> {
        let db = open_database(path)?;
        Ok(RedbStore {
            handle: Arc::new(Handle::new(path, db)),
            feed: ChangeFeed::default(),
        })
    }

    async fn blocking<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> StoreResult<T> + Send + 'static,
    {
        let handle = self.handle.clone();
        tokio::task::spawn_blocking(move || {
            let db = handle.get()?;
            let result = work(&db);
            if let Err(StoreError::Io(_)) = &result {
                handle.discard(&db);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }

    async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> StoreResult<T> + Send + 'static,
    {
        let result = self
            .blocking(move |db| {
                let txn = db.begin_write()?;
                let out = work(&txn)?;
                txn.commit()?;
                Ok(out)
            })
            .await;
        match &result {
            Ok(_) => self.handle.record_write(true),
            Err(StoreError::Io(_)) => self.handle.record_write(false),
            Err(_) => {}
        }
        result
    }
}

/// Opens (or creates) the file, checks its integrity and makes sure every table exists.
fn open_database(path: &Path) -> StoreResult<Database> {
    let open_error = |reason: String| StoreError::Open {
        path: path.to_path_buf(),
        reason,
    };
    create_private_file(path).map_err(|e| open_error(e.to_string()))?;
    let db = Database::builder()
        .set_check_integrity_on_open(true)
        .create(path)
        .map_err(|e| open_error(e.to_string()))?;
    let txn = db.begin_write().map_err(|e| open_error(e.to_string()))?;
    create_tables(&txn).map_err(|e| open_error(e.to_string()))?;
    txn.commit().map_err(|e| open_error(e.to_string()))?;
    Ok(db)
}

fn create_tables(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(USERS)?;
    txn.open_table(USERNAMES)?;
    txn.open_table(API_KEYS)?;
    txn.open_table(ACTIVE_KEYS)?;
    txn.open_table(FAMILIES)?;
    txn.open_table(AUDIT)?;
    txn.open_table(COUNTERS)?;
    txn.open_table(LOGIN_BUDGETS)?;
    txn.open_table(WRITE_PROBE)?;
    Ok(())
}

/// Creates the file 0600 before redb opens it (redb would create it with the umask), and
/// tightens an existing file that is looser.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::files::create_private_dir(dir)?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[async_trait]
impl Store for RedbStore {
    async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let users = txn.open_table(USERS)?;
            let row = users.get(id)?;
            row.map(|v| decode("users", v.value())).transpose()
        })
        .await
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let key = username.to_lowercase();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let Some(id) = txn
                .open_table(USERNAMES)?
                .get(key.as_str())?
                .map(|v| v.value())
            else {
                return Ok(None);
            };
            let users = txn.open_table(USERS)?;
            let row = users.get(id)?;
            row.map(|v| decode("users", v.value())).transpose()
        })
        .await
    }

    async fn users(&self) -> StoreResult<Vec<UserRecord>> {
        self.blocking(|db| {
            let txn = db.begin_read()?;
            let users = txn.open_table(USERS)?;
            users
                .iter()?
                .map(|row| decode("users", row?.1.value()))
                .collect()
        })
        .await
    }

    async fn create_user(&self, user: NewUser, actor: &Actor) -> StoreResult<UserRecord> {
        let actor = actor.clone();
        self.write(move |txn| {
            let user = insert_new_user(txn, user)?;
            append_event(txn, actor.event("user_created", &user.username))?;
            Ok(user)
        })
        .await
    }

    async fn create_first_user(&self, user: NewUser) -> StoreResult<Option<UserRecord>> {
        self.write(move |txn| {
            if !txn.open_table(USERS)?.is_empty()? {
                return Ok(None);
            }
            insert_new_user(txn, user).map(Some)
        })
        .await
    }

    async fn update_user(
        &self,
        id: UserId,
        patch: UserPatch,
        actor: &Actor,
        kind: &'static str,
    ) -> StoreResult<Option<UserRecord>> {
        let actor = actor.clone();
        let changed = self
            .write(move |txn| {
                let Some(before) = get_user(txn, id)? else {
                    return Ok(None);
                };
                let now = crate::clock::now_secs();
                let mut user = before.clone();
                let revokes_credentials = user.apply(patch, now);
                keep_an_admin(txn, &before, Some(&user))?;
                put_user(txn, &user)?;
                append_event(txn, actor.event(kind, &user.username))?;
                let revoked = match revokes_credentials {
                    true => revoke_active_key(txn, id, now, &actor)?,
                    false => None,
                };
                Ok(Some((user, revoked)))
            })
            .await?;
        let Some((user, revoked)) = changed else {
            return Ok(None);
        };
        self.feed.publish(Change::User(id));
        if let Some(key) = revoked {
            self.feed.publish(Change::ApiKey(key));
        }
        Ok(Some(user))
    }

    async fn delete_user(&self, id: UserId, actor: &Actor) -> StoreResult<Option<DeletedUser>> {
        let actor = actor.clone();
        let deleted = self
            .write(move |txn| {
                let Some(user) = get_user(txn, id)? else {
                    return Ok(None);
                };
                keep_an_admin(txn, &user, None)?;
                txn.open_table(USERS)?.remove(id)?;
                txn.open_table(USERNAMES)?
                    .remove(user.username.to_lowercase().as_str())?;
                let now = crate::clock::now_secs();
                append_event(txn, actor.event("user_deleted", &user.username))?;
                let revoked_key = revoke_active_key(txn, id, now, &actor)?;
                Ok(Some(DeletedUser {
                    username: user.username,
                    revoked_key,
                }))
            })
            .await?;
        if let Some(deleted) = &deleted {
            self.feed.publish(Change::User(id));
            if let Some(key) = &deleted.revoked_key {
                self.feed.publish(Change::ApiKey(key.clone()));
            }
        }
        Ok(deleted)
    }

    async fn insert_api_key(
        &self,
        key: ApiKeyRecord,
        actor: &Actor,
    ) -> StoreResult<Option<String>> {
        let actor = actor.clone();
        let previous = self
            .write(move |txn| {
                let previous = revoke_active_key(txn, key.user_id, key.created_at, &actor)?;
                put_key(txn, &key)?;
                txn.open_table(ACTIVE_KEYS)?
                    .insert(key.user_id, key.id.as_str())?;
                append_event(txn, actor.event("api_key_created", &key.id))?;
                Ok(previous)
            })
            .await?;
        if let Some(previous) = &previous {
            self.feed.publish(Change::ApiKey(previous.clone()));
        }
        Ok(previous)
    }

    async fn api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let id = id.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let keys = txn.open_table(API_KEYS)?;
            let row = keys.get(id.as_str())?;
            row.map(|v| decode("api_keys", v.value())).transpose()
        })
        .await
    }

    async fn active_api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let id = id.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let keys = txn.open_table(API_KEYS)?;
            let row = keys.get(id.as_str())?;
            let Some(key) = row
                .map(|v| decode::<ApiKeyRecord>("api_keys", v.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            let active = txn.open_table(ACTIVE_KEYS)?;
            let is_active = active.get(key.user_id)?.is_some_and(|v| v.value() == id);
            Ok((is_active && key.revoked_at.is_none()).then_some(key))
        })
        .await
    }

    async fn api_keys(&self, user: Option<UserId>) -> StoreResult<Vec<ApiKeyRecord>> {
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let keys = txn.open_table(API_KEYS)?;
            let mut out = Vec::new();
            for row in keys.iter()? {
                let key: ApiKeyRecord = decode("api_keys", row?.1.value())?;
                if user.is_none_or(|u| u == key.user_id) {
                    out.push(key);
                }
            }
            out.sort_by_key(|k| std::cmp::Reverse(k.created_at));
            Ok(out)
        })
        .await
    }

    async fn revoke_api_key(&self, id: &str, actor: &Actor) -> StoreResult<Option<RevokedKey>> {
        let (id, actor) = (id.to_string(), actor.clone());
        let revoked = self
            .write(move |txn| {
                let Some(mut key) = get_key(txn, &id)? else {
                    return Ok(None);
                };
                let newly = key.revoked_at.is_none();
                if newly {
                    revoke_key(txn, &mut key, crate::clock::now_secs(), &actor)?;
                }
                Ok(Some(RevokedKey { key, newly }))
            })
            .await?;
        if let Some(revoked) = &revoked {
            self.feed.publish(Change::ApiKey(revoked.key.id.clone()));
        }
        Ok(revoked)
    }

    async fn record_api_key_use(&self, uses: Vec<(String, u64)>) -> StoreResult<()> {
        self.write(move |txn| {
            for (id, at) in uses {
                if let Some(mut key) = get_key(txn, &id)? {
                    key.last_used_at = Some(key.last_used_at.unwrap_or(0).max(at));
                    put_key(txn, &key)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn create_family(&self, family: RefreshFamily) -> StoreResult<()> {
        self.write(move |txn| put_family(txn, &family)).await
    }

    async fn family(&self, id: &str) -> StoreResult<Option<RefreshFamily>> {
        let id = id.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let families = txn.open_table(FAMILIES)?;
            let row = families.get(id.as_str())?;
            row.map(|v| decode("refresh_families", v.value()))
                .transpose()
        })
        .await
    }

    async fn rotate_family(
        &self,
        id: &str,
        presented_jti: &str,
        next_jti: &str,
        expires_at: u64,
        now: u64,
    ) -> StoreResult<RotateOutcome> {
        let (id, presented, next) = (
            id.to_string(),
            presented_jti.to_string(),
            next_jti.to_string(),
        );
        let session = id.clone();
        let outcome = self
            .write(move |txn| {
                let Some(mut family) = get_family(txn, &id)? else {
                    return Ok(RotateOutcome::Unknown);
                };
                let outcome = family.rotate(&presented, &next, expires_at, now);
                if outcome != RotateOutcome::Revoked {
                    put_family(txn, &family)?;
                }
                Ok(outcome)
            })
            .await?;
        if outcome == RotateOutcome::ReuseDetected {
            self.feed.publish(Change::Session(session));
        }
        Ok(outcome)
    }

    async fn revoke_family(&self, id: &str, at: u64) -> StoreResult<bool> {
        let session = id.to_string();
        let id = session.clone();
        let revoked = self
            .write(move |txn| {
                let Some(mut family) = get_family(txn, &id)? else {
                    return Ok(false);
                };
                family.revoked_at.get_or_insert(at);
                put_family(txn, &family)?;
                Ok(true)
            })
            .await?;
        if revoked {
            self.feed.publish(Change::Session(session));
        }
        Ok(revoked)
    }

    async fn prune_families(&self, now: u64) -> StoreResult<usize> {
        self.write(move |txn| {
            let mut families = txn.open_table(FAMILIES)?;
            let mut expired = 0;
            families.retain(|_, bytes| {
                let keep = serde_json::from_slice::<RefreshFamily>(bytes)
                    .map_or(true, |family| family.expires_at > now);
                expired += usize::from(!keep);
                keep
            })?;
            Ok(expired)
        })
        .await
    }

    async fn append_audit(&self, event: NewAuditEvent, at: u64) -> StoreResult<()> {
        self.write(move |txn| append_event_at(txn, event, at)).await
    }

    async fn audit_events(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<AuditEvent>> {
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let audit = txn.open_table(AUDIT)?;
            let rows = audit.range(..before.unwrap_or(u64::MAX))?.rev().take(limit);
            rows.map(|row| decode("audit_events", row?.1.value()))
                .collect()
        })
        .await
    }

    async fn take_login_budgets(
        &self,
        budgets: Vec<LoginBudget>,
        now_ms: u64,
    ) -> StoreResult<Option<u64>> {
        self.blocking(move |db| {
            let mut txn = db.begin_write()?;
            // Budgets are this process's alone with redb and forgetting them in a crash costs
            // nothing: no need to wait for the disk on every login attempt.
            txn.set_durability(redb::Durability::None)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let mut refused = None;
            {
                let mut table = txn.open_table(LOGIN_BUDGETS)?;
                for budget in &budgets {
                    let stored = table.get(budget.key.as_str())?.map(|v| v.value());
                    match budget.charge(stored, now_ms) {
                        Ok(next) => {
                            table.insert(budget.key.as_str(), next)?;
                        }
                        Err(wait) => {
                            refused = Some(wait);
                            break;
                        }
                    }
                }
            }
            txn.commit()?;
            Ok(refused)
        })
        .await
    }

    async fn prune_login_budgets(&self, now_ms: u64) -> StoreResult<usize> {
        self.write(move |txn| {
            let mut table = txn.open_table(LOGIN_BUDGETS)?;
            let mut pruned = 0;
            table.retain(|_, next| {
                let keep = next > now_ms;
                pruned += usize::from(!keep);
                keep
            })?;
            Ok(pruned)
        })
        .await
    }

    async fn import(&self, users: Vec<UserRecord>, keys: Vec<ApiKeyRecord>) -> StoreResult<()> {
        check_import(&keys).map_err(StoreError::Rejected)?;
        let now = crate::clock::now_secs();
        self.write(move |txn| {
            let mut highest = 0;
            for user in &users {
                txn.open_table(USERNAMES)?
                    .insert(user.username.to_lowercase().as_str(), user.id)?;
                put_user(txn, user)?;
                highest = highest.max(user.id);
            }
            let mut counters = txn.open_table(COUNTERS)?;
            let next = counters
                .get("users")?
                .map(|v| v.value())
                .unwrap_or(0)
                .max(highest);
            counters.insert("users", next)?;
            drop(counters);
            for key in &keys {
                put_key(txn, key)?;
                if key.revoked_at.is_none() {
                    // The imported key becomes the user's one active key.
                    let previous = txn
                        .open_table(ACTIVE_KEYS)?
                        .insert(key.user_id, key.id.as_str())?
                        .map(|v| v.value().to_string());
                    if let Some(previous) = previous.filter(|p| *p != key.id)
                        && let Some(mut old) = get_key(txn, &previous)?
                    {
                        old.revoked_at.get_or_insert(now);
                        put_key(txn, &old)?;
                    }
                }
            }
            Ok(())
        })
        .await
    }

    /// Reads, and while writes are failing, tries one: the only way to learn that the disk has
    /// room again when nobody else writes.
    async fn ping(&self) -> StoreResult<()> {
        self.blocking(|db| {
            db.begin_read()?.open_table(COUNTERS)?;
            Ok(())
        })
        .await?;
        if !self.handle.writes_ok() {
            // As large as a change to a user with its audit event, so that room for the probe
            // means room for the writes that failed.
            let probe = self
                .write(|txn| {
                    let value = [0u8; PROBE_BYTES];
                    txn.open_table(WRITE_PROBE)?.insert("probe", &value[..])?;
                    Ok(())
                })
                .await;
            if let Err(error) = probe {
                tracing::debug!(%error, "store still refuses writes");
            }
        }
        Ok(())
    }

    fn writable(&self) -> bool {
        self.handle.writes_ok()
    }

    fn feed(&self) -> &ChangeFeed {
        &self.feed
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedbStore")
    }
}
