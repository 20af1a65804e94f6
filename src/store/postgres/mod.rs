//! The shared store: PostgreSQL, for several replicas agreeing on users, keys and sessions.
//!
//! Each atomic operation of the [`Store`] trait is one transaction here. Changes that other
//! replicas must see at once (a revocation, a deactivation, a role change) are announced with
//! `NOTIFY` in the same transaction, so a replica hears of them only if they committed; see
//! [`listen`] for the receiving side.

mod listen;
mod migrations;
mod rows;
mod tls;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::GenericClient;
use tokio_postgres::error::SqlState;

use listen::CHANNEL;
use rows::{audit_from, family_from, first_unsigned, key_from, signed, text, user_from};

use super::records::*;
use super::{Actor, Change, ChangeFeed, Store, StoreError, StoreResult};

#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    config: tokio_postgres::Config,
    /// Whether the notification connection is up; `/readyz` reports it.
    listening: Arc<AtomicBool>,
    /// TLS as the URL's `sslmode` and `sslrootcert` ask, for the pool and the notifications.
    connector: tokio_postgres_rustls::MakeRustlsConnect,
    /// What this replica commits, reported at once; other replicas hear it by `NOTIFY`.
    feed: ChangeFeed,
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl PostgresStore {
    /// Connects, and brings the schema up to date (each replica may run this at start; the
    /// migrations serialize on an advisory lock).
    pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
        let open_error = |reason: String| StoreError::Open {
            path: redact(url).into(),
            reason,
        };
        let (config, connector) = tls::parse(url).map_err(open_error)?;
        let manager = Manager::from_config(
            config.clone(),
            connector.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .wait_timeout(Some(std::time::Duration::from_secs(5)))
            .create_timeout(Some(std::time::Duration::from_secs(5)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| open_error(e.to_string()))?;
        let mut client = pool
            .get()
            .await
            .map_err(|e| open_error(tls::describe(&e)))?;
        migrations::apply(&mut client)
            .await
            .map_err(|e| open_error(tls::describe(&e)))?;
        Ok(PostgresStore {
            pool,
            config,
            connector,
            feed: ChangeFeed::default(),
            listening: Arc::new(AtomicBool::new(false)),
        })
    }
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

fn client_of(object: &deadpool_postgres::Object) -> &tokio_postgres::Client {
    object
}

/// Tells every replica (this one included) to drop a cached entry, once the transaction commits.
async fn announce(client: &impl GenericClient, what: Change) -> StoreResult<()> {
    client
        .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &what.payload()])
        .await?;
    Ok(())
}

async fn insert_user(client: &impl GenericClient, user: NewUser) -> StoreResult<UserRecord> {
    let now = crate::clock::now_secs() as i64;
    let inserted = client
        .query_one(
            "INSERT INTO users (username, username_key, password_hash, roles, is_admin, is_active,
                                tokens_valid_after, created_at, updated_at)
             VALUES ($1, lower($1), $2, $3, $4, true, 0, $5, $5) RETURNING *",
            &[
                &user.username,
                &user.password_hash,
                &user.roles,
                &user.is_admin,
                &now,
            ],
        )
        .await;
    match inserted {
        Ok(row) => user_from(&row),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(StoreError::UsernameTaken),
        Err(e) => Err(e.into()),
    }
}

/// The active administrators, locked until the transaction ends: two transactions taking
/// admin rights away queue here, and the second sees what the first left (`FOR UPDATE`
/// re-reads a row changed meanwhile), so together they can never leave none.
async fn lock_active_admins(client: &impl GenericClient) -> StoreResult<Vec<UserId>> {
    let rows = client
        .query(
            "SELECT id FROM users WHERE is_admin AND is_active ORDER BY id FOR UPDATE",
            &[],
        )
        .await?;
    rows.iter().map(|r| first_unsigned(r, "users")).collect()
}

/// Revokes the user's active key, if any, with an `api_key_revoked` event; returns its id.
async fn revoke_active_key(
    client: &impl GenericClient,
    user: UserId,
    at: u64,
    actor: &Actor,
) -> StoreResult<Option<String>> {
    let row = client
        .query_opt(
            "UPDATE api_keys SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL RETURNING id",
            &[&(user as i64), &(at as i64)],
        )
        .await?;
    let id: Option<String> =
        row.map(|r| r.try_get("id"))
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                table: "api_keys",
                reason: e.to_string(),
            })?;
    if let Some(id) = &id {
        insert_event(client, &actor.event("api_key_revoked", id), at).await?;
        announce(client, Change::ApiKey(id.clone())).await?;
    }
    Ok(id)
}

async fn insert_event(
    client: &impl GenericClient,
    event: &NewAuditEvent,
    at: u64,
) -> StoreResult<()> {
    client
        .execute(
            "INSERT INTO audit_events (at, kind, actor, target, client_ip) VALUES ($1, $2, $3, $4, $5)",
            &[&(at as i64), &event.kind, &event.actor, &event.target, &event.client_ip],
        )
        .await?;
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt("SELECT * FROM users WHERE id = $1", &[&(id as i64)])
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT * FROM users WHERE username_key = lower($1)",
                &[&username],
            )
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    async fn users(&self) -> StoreResult<Vec<UserRecord>> {
        let client = self.pool.get().await?;
        let rows = client.query("SELECT * FROM users ORDER BY id", &[]).await?;
        rows.iter().map(user_from).collect()
    }

    async fn create_user(&self, user: NewUser, actor: &Actor) -> StoreResult<UserRecord> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let user = insert_user(&*tx, user).await?;
        let event = actor.event("user_created", &user.username);
        insert_event(&*tx, &event, crate::clock::now_secs()).await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn create_first_user(&self, user: NewUser) -> StoreResult<Option<UserRecord>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Replicas starting together queue here; the first creates, the rest see a user.
        tx.execute("LOCK TABLE users IN EXCLUSIVE MODE", &[])
            .await?;
        let exists = tx
            .query_opt("SELECT 1 FROM users LIMIT 1", &[])
            .await?
            .is_some();
        let created = if exists {
            None
        } else {
            Some(insert_user(&*tx, user).await?)
        };
        tx.commit().await?;
        Ok(created)
    }

    async fn update_user(
        &self,
        id: UserId,
        patch: UserPatch,
        actor: &Actor,
        kind: &'static str,
    ) -> StoreResult<Option<UserRecord>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let takes_admin_rights = patch.is_admin == Some(false) || patch.is_active == Some(false);
        let admins = if takes_admin_rights {
            lock_active_admins(&*tx).await?
        } else {
            Vec::new()
        };
        let row = tx
            .query_opt(
                "SELECT * FROM users WHERE id = $1 FOR UPDATE",
                &[&(id as i64)],
            )
            .await?;
        let Some(mut user) = row.as_ref().map(user_from).transpose()? else {
            return Ok(None);
        };
        let now = crate::clock::now_secs();
        let revokes_credentials = user.apply(patch, now);
        if admins == [user.id] && !is_active_admin(&user) {
            return Err(StoreError::LastAdmin);
        }
        tx.execute(
            "UPDATE users SET password_hash = $2, roles = $3, is_admin = $4, is_active = $5,
                tokens_valid_after = $6, updated_at = $7 WHERE id = $1",
            &[
                &(id as i64),
                &user.password_hash,
                &user.roles,
                &user.is_admin,
                &user.is_active,
                &(user.tokens_valid_after as i64),
                &(now as i64),
            ],
        )
        .await?;
        insert_event(&*tx, &actor.event(kind, &user.username), now).await?;
        let revoked = match revokes_credentials {
            true => revoke_active_key(&*tx, id, now, actor).await?,
            false => None,
        };
        announce(&*tx, Change::User(id)).await?;
        tx.commit().await?;
        self.feed.publish(Change::User(id));
        if let Some(key) = revoked {
            self.feed.publish(Change::ApiKey(key));
        }
        Ok(Some(user))
    }

    async fn delete_user(&self, id: UserId, actor: &Actor) -> StoreResult<Option<DeletedUser>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let admins = lock_active_admins(&*tx).await?;
        if admins == [id] {
            return Err(StoreError::LastAdmin);
        }
        let row = tx
            .query_opt(
                "DELETE FROM users WHERE id = $1 RETURNING username",
                &[&(id as i64)],
            )
            .await?;
        let username = row
            .as_ref()
            .map(|r| text(r, "users", "username"))
            .transpose()?;
        let Some(username) = username else {
            return Ok(None);
        };
        let now = crate::clock::now_secs();
        insert_event(&*tx, &actor.event("user_deleted", &username), now).await?;
        let revoked_key = revoke_active_key(&*tx, id, now, actor).await?;
        announce(&*tx, Change::User(id)).await?;
        tx.commit().await?;
        self.feed.publish(Change::User(id));
        if let Some(key) = &revoked_key {
            self.feed.publish(Change::ApiKey(key.clone()));
        }
        Ok(Some(DeletedUser {
            username,
            revoked_key,
        }))
    }

    async fn insert_api_key(
        &self,
        key: ApiKeyRecord,
        actor: &Actor,
    ) -> StoreResult<Option<String>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Serialize key creation per user, so two concurrent creations cannot both stay active.
        tx.execute(
            "SELECT pg_advisory_xact_lock(8317, $1::int)",
            &[&((key.user_id % i32::MAX as u64) as i32)],
        )
        .await?;
        let previous = revoke_active_key(&*tx, key.user_id, key.created_at, actor).await?;
        tx.execute(
            "INSERT INTO api_keys (id, user_id, secret_sha256, created_at, last_used_at, revoked_at)
             VALUES ($1, $2, $3, $4, NULL, NULL)",
            &[&key.id, &(key.user_id as i64), &key.secret_sha256.as_slice(), &(key.created_at as i64)],
        )
        .await?;
        let event = actor.event("api_key_created", &key.id);
        insert_event(&*tx, &event, key.created_at).await?;
        tx.commit().await?;
        if let Some(previous) = &previous {
            self.feed.publish(Change::ApiKey(previous.clone()));
        }
        Ok(previous)
    }

    async fn api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt("SELECT * FROM api_keys WHERE id = $1", &[&id])
            .await?;
        row.as_ref().map(key_from).transpose()
    }

    async fn active_api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let client = self.pool.get().await?;
        // The partial unique index makes an unrevoked key its user's only active one.
        let row = client
            .query_opt(
                "SELECT * FROM api_keys WHERE id = $1 AND revoked_at IS NULL",
                &[&id],
            )
            .await?;
        row.as_ref().map(key_from).transpose()
    }

    async fn api_keys(&self, user: Option<UserId>) -> StoreResult<Vec<ApiKeyRecord>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT * FROM api_keys WHERE $1::bigint IS NULL OR user_id = $1 ORDER BY created_at DESC, id",
                &[&user.map(|u| u as i64)],
            )
            .await?;
        rows.iter().map(key_from).collect()
    }

    async fn revoke_api_key(&self, id: &str, actor: &Actor) -> StoreResult<Option<RevokedKey>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt("SELECT * FROM api_keys WHERE id = $1 FOR UPDATE", &[&id])
            .await?;
        let Some(mut key) = row.as_ref().map(key_from).transpose()? else {
            return Ok(None);
        };
        let newly = key.revoked_at.is_none();
        if newly {
            let now = crate::clock::now_secs();
            tx.execute(
                "UPDATE api_keys SET revoked_at = $2 WHERE id = $1",
                &[&id, &(now as i64)],
            )
            .await?;
            key.revoked_at = Some(now);
            insert_event(&*tx, &actor.event("api_key_revoked", id), now).await?;
            announce(&*tx, Change::ApiKey(id.to_string())).await?;
        }
        tx.commit().await?;
        self.feed.publish(Change::ApiKey(id.to_string()));
        Ok(Some(RevokedKey { key, newly }))
    }

    async fn record_api_key_use(&self, uses: Vec<(String, u64)>) -> StoreResult<()> {
        let (ids, times): (Vec<String>, Vec<i64>) =
            uses.into_iter().map(|(id, at)| (id, at as i64)).unzip();
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE api_keys AS k SET last_used_at = GREATEST(COALESCE(k.last_used_at, 0), u.at)
                 FROM unnest($1::text[], $2::bigint[]) AS u(id, at) WHERE k.id = u.id",
                &[&ids, &times],
            )
            .await?;
        Ok(())
    }

    async fn create_family(&self, family: RefreshFamily) -> StoreResult<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO refresh_families (id, user_id, current_jti, created_at, expires_at, revoked_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &family.id,
                    &(family.user_id as i64),
                    &family.current_jti,
                    &(family.created_at as i64),
                    &(family.expires_at as i64),
                    &family.revoked_at.map(|t| t as i64),
                ],
            )
            .await?;
        Ok(())
    }

    async fn family(&self, id: &str) -> StoreResult<Option<RefreshFamily>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt("SELECT * FROM refresh_families WHERE id = $1", &[&id])
            .await?;
        row.as_ref().map(family_from).transpose()
    }

    async fn rotate_family(
        &self,
        id: &str,
        presented_jti: &str,
        next_jti: &str,
        expires_at: u64,
        now: u64,
    ) -> StoreResult<RotateOutcome> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "SELECT * FROM refresh_families WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await?;
        let Some(mut family) = row.as_ref().map(family_from).transpose()? else {
            return Ok(RotateOutcome::Unknown);
        };
        let outcome = family.rotate(presented_jti, next_jti, expires_at, now);
        if outcome != RotateOutcome::Revoked {
            tx.execute(
                "UPDATE refresh_families SET current_jti = $2, expires_at = $3, revoked_at = $4
                 WHERE id = $1",
                &[
                    &id,
                    &family.current_jti,
                    &signed(family.expires_at)?,
                    &family.revoked_at.map(signed).transpose()?,
                ],
            )
            .await?;
        }
        if outcome == RotateOutcome::ReuseDetected {
            announce(&*tx, Change::Session(id.to_string())).await?;
        }
        tx.commit().await?;
        if outcome == RotateOutcome::ReuseDetected {
            self.feed.publish(Change::Session(id.to_string()));
        }
        Ok(outcome)
    }

    async fn revoke_family(&self, id: &str, at: u64) -> StoreResult<bool> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let updated = tx
            .execute(
                "UPDATE refresh_families SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
                &[&id, &(at as i64)],
            )
            .await?;
        if updated > 0 {
            announce(&*tx, Change::Session(id.to_string())).await?;
        }
        tx.commit().await?;
        if updated > 0 {
            self.feed.publish(Change::Session(id.to_string()));
        }
        Ok(updated > 0)
    }

    async fn prune_families(&self, now: u64) -> StoreResult<usize> {
        let client = self.pool.get().await?;
        let deleted = client
            .execute(
                "DELETE FROM refresh_families WHERE expires_at <= $1",
                &[&(now as i64)],
            )
            .await?;
        Ok(deleted as usize)
    }

    async fn append_audit(&self, event: NewAuditEvent, at: u64) -> StoreResult<()> {
        let client = self.pool.get().await?;
        insert_event(client_of(&client), &event, at).await
    }

    async fn audit_events(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<AuditEvent>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT * FROM audit_events WHERE $1::bigint IS NULL OR id < $1 ORDER BY id DESC LIMIT $2",
                &[&before.map(|b| b as i64), &(limit as i64)],
            )
            .await?;
        rows.iter().map(audit_from).collect()
    }

    async fn take_login_budgets(
        &self,
        budgets: Vec<LoginBudget>,
        now_ms: u64,
    ) -> StoreResult<Option<u64>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        for budget in &budgets {
            // Inserted when new, then locked: every replica charging this budget queues here.
            tx.execute(
                "INSERT INTO login_budgets (key, next_at_ms) VALUES ($1, 0) ON CONFLICT (key) DO NOTHING",
                &[&budget.key],
            )
            .await?;
            let row = tx
                .query_one(
                    "SELECT next_at_ms FROM login_budgets WHERE key = $1 FOR UPDATE",
                    &[&budget.key],
                )
                .await?;
            let stored = first_unsigned(&row, "login_budgets")?;
            match budget.charge(Some(stored), now_ms) {
                Ok(next) => {
                    tx.execute(
                        "UPDATE login_budgets SET next_at_ms = $2 WHERE key = $1",
                        &[&budget.key, &(next as i64)],
                    )
                    .await?;
                }
                Err(wait) => {
                    tx.commit().await?;
                    return Ok(Some(wait));
                }
            }
        }
        tx.commit().await?;
        Ok(None)
    }

    async fn prune_login_budgets(&self, now_ms: u64) -> StoreResult<usize> {
        let client = self.pool.get().await?;
        let deleted = client
            .execute(
                "DELETE FROM login_budgets WHERE next_at_ms <= $1",
                &[&(now_ms as i64)],
            )
            .await?;
        Ok(deleted as usize)
    }

    async fn import(&self, users: Vec<UserRecord>, keys: Vec<ApiKeyRecord>) -> StoreResult<()> {
        check_import(&keys).map_err(StoreError::Rejected)?;
        let now = crate::clock::now_secs() as i64;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        for user in &users {
            tx.execute(
                "INSERT INTO users (id, username, username_key, password_hash, roles, is_admin, is_active,
                                    tokens_valid_after, created_at, updated_at)
                 VALUES ($1, $2, lower($2), $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username, username_key = EXCLUDED.username_key,
                    password_hash = EXCLUDED.password_hash, roles = EXCLUDED.roles, is_admin = EXCLUDED.is_admin,
                    is_active = EXCLUDED.is_active, tokens_valid_after = EXCLUDED.tokens_valid_after,
                    created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at",
                &[
                    &signed(user.id)?,
                    &user.username,
                    &user.password_hash,
                    &user.roles,
                    &user.is_admin,
                    &user.is_active,
                    &signed(user.tokens_valid_after)?,
                    &signed(user.created_at)?,
                    &signed(user.updated_at)?,
                ],
            )
            .await?;
        }
        // Later users must not collide with imported ids.
        tx.execute(
            "SELECT setval('users_id_seq', GREATEST((SELECT COALESCE(MAX(id), 1) FROM users), 1))",
            &[],
        )
        .await?;
        for key in &keys {
            if key.revoked_at.is_none() {
                // The imported key becomes the user's one active key.
                tx.execute(
                    "UPDATE api_keys SET revoked_at = $3 WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
                    &[&signed(key.user_id)?, &key.id, &now],
                )
                .await?;
            }
            tx.execute(
                "INSERT INTO api_keys (id, user_id, secret_sha256, created_at, last_used_at, revoked_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, secret_sha256 = EXCLUDED.secret_sha256,
                    created_at = EXCLUDED.created_at, last_used_at = EXCLUDED.last_used_at,
                    revoked_at = EXCLUDED.revoked_at",
                &[
                    &key.id,
                    &signed(key.user_id)?,
                    &key.secret_sha256.as_slice(),
                    &signed(key.created_at)?,
                    &key.last_used_at.map(signed).transpose()?,
                    &key.revoked_at.map(signed).transpose()?,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        let client = self.pool.get().await?;
        client.execute("SELECT 1", &[]).await?;
        Ok(())
    }

    fn feed(&self) -> &ChangeFeed {
        &self.feed
    }

    async fn follow_changes(&self, sink: super::ChangeSink) {
        listen::follow(
            self.config.clone(),
            self.connector.clone(),
            self.listening.clone(),
            sink,
        )
        .await
    }

    fn following_changes(&self) -> bool {
        self.listening.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresStore")
    }
}
