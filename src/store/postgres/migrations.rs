//! The schema, as numbered migrations applied in order at start. Replicas starting together
//! serialize on an advisory lock, so each migration runs exactly once; a version, once released,
//! is never edited: changes come as a new version.

use deadpool_postgres::Object;

/// Arbitrary, but fixed: the advisory lock every replica takes to migrate.
const MIGRATION_LOCK: i64 = 0x706f_7274_6375;

const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE users (
        id BIGSERIAL PRIMARY KEY,
        username TEXT NOT NULL,
        username_key TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        roles TEXT[] NOT NULL,
        is_admin BOOLEAN NOT NULL,
        is_active BOOLEAN NOT NULL,
        tokens_valid_after BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        user_id BIGINT NOT NULL,
        secret_sha256 BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        last_used_at BIGINT,
        revoked_at BIGINT
    );
    -- One active key per user, enforced by the database as well.
    CREATE UNIQUE INDEX api_keys_one_active ON api_keys (user_id) WHERE revoked_at IS NULL;
    CREATE INDEX api_keys_by_user ON api_keys (user_id);
    CREATE TABLE refresh_families (
        id TEXT PRIMARY KEY,
        user_id BIGINT NOT NULL,
        current_jti TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        revoked_at BIGINT
    );
    CREATE INDEX refresh_families_expiry ON refresh_families (expires_at);
    CREATE TABLE audit_events (
        id BIGSERIAL PRIMARY KEY,
        at BIGINT NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT,
        target TEXT,
        client_ip TEXT
    );",
    ),
    (
        2,
        "CREATE TABLE login_budgets (
        key TEXT PRIMARY KEY,
        next_at_ms BIGINT NOT NULL
    );
    CREATE INDEX login_budgets_next ON login_budgets (next_at_ms);",
    ),
];

pub async fn apply(client: &mut Object) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS portcullis_schema_version (
            version INTEGER PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let current: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM portcullis_schema_version",
            &[],
        )
        .await?
        .get(0);
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > current) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO portcullis_schema_version (version) VALUES ($1)",
            &[version],
        )
        .await?;
        tracing::info!(version, "applied store migration");
    }
    tx.commit().await
}
