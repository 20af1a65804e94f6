//! Rows as PostgreSQL returns them, turned into the store's records. A column missing or of
//! another type, or a negative number where the store keeps an unsigned one, is a corrupt
//! record naming its table: never a panic, never a number that wrapped.

use tokio_postgres::Row;
use tokio_postgres::row::RowIndex;
use tokio_postgres::types::FromSql;

use crate::store::records::*;
use crate::store::{StoreError, StoreResult};

fn column<'a, T: FromSql<'a>>(
    row: &'a Row,
    table: &'static str,
    name: impl RowIndex + std::fmt::Display + Copy,
) -> StoreResult<T> {
    row.try_get(name).map_err(|e| StoreError::Corrupt {
        table,
        reason: format!("{name}: {e}"),
    })
}

/// A `BIGINT` the store keeps unsigned; a negative one is corrupt, never wrapped.
fn non_negative(value: i64, table: &'static str, name: impl std::fmt::Display) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        table,
        reason: format!("{name} is negative: {value}"),
    })
}

fn unsigned(row: &Row, table: &'static str, name: &str) -> StoreResult<u64> {
    non_negative(column(row, table, name)?, table, name)
}

fn unsigned_opt(row: &Row, table: &'static str, name: &str) -> StoreResult<Option<u64>> {
    let value: Option<i64> = column(row, table, name)?;
    value.map(|v| non_negative(v, table, name)).transpose()
}

/// A store value as PostgreSQL's `BIGINT`; one past `i64::MAX` would wrap, so it is refused.
pub(super) fn signed(value: u64) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| StoreError::Rejected(format!("{value} is out of range")))
}

pub(super) fn user_from(row: &Row) -> StoreResult<UserRecord> {
    const T: &str = "users";
    Ok(UserRecord {
        id: unsigned(row, T, "id")?,
        username: column(row, T, "username")?,
        password_hash: column(row, T, "password_hash")?,
        roles: column(row, T, "roles")?,
        is_admin: column(row, T, "is_admin")?,
        is_active: column(row, T, "is_active")?,
        tokens_valid_after: unsigned(row, T, "tokens_valid_after")?,
        created_at: unsigned(row, T, "created_at")?,
        updated_at: unsigned(row, T, "updated_at")?,
    })
}

pub(super) fn key_from(row: &Row) -> StoreResult<ApiKeyRecord> {
    const T: &str = "api_keys";
    let hash: Vec<u8> = column(row, T, "secret_sha256")?;
    Ok(ApiKeyRecord {
        id: column(row, T, "id")?,
        user_id: unsigned(row, T, "user_id")?,
        secret_sha256: hash.try_into().map_err(|_| StoreError::Corrupt {
            table: T,
            reason: "secret_sha256 is not 32 bytes".into(),
        })?,
        created_at: unsigned(row, T, "created_at")?,
        last_used_at: unsigned_opt(row, T, "last_used_at")?,
        revoked_at: unsigned_opt(row, T, "revoked_at")?,
    })
}

pub(super) fn family_from(row: &Row) -> StoreResult<RefreshFamily> {
    const T: &str = "refresh_families";
    Ok(RefreshFamily {
        id: column(row, T, "id")?,
        user_id: unsigned(row, T, "user_id")?,
        current_jti: column(row, T, "current_jti")?,
        created_at: unsigned(row, T, "created_at")?,
        expires_at: unsigned(row, T, "expires_at")?,
        revoked_at: unsigned_opt(row, T, "revoked_at")?,
    })
}

pub(super) fn audit_from(row: &Row) -> StoreResult<AuditEvent> {
    const T: &str = "audit_events";
    Ok(AuditEvent {
        id: unsigned(row, T, "id")?,
        at: unsigned(row, T, "at")?,
        kind: column(row, T, "kind")?,
        actor: column(row, T, "actor")?,
        target: column(row, T, "target")?,
        client_ip: column(row, T, "client_ip")?,
    })
}

/// A text column.
pub(super) fn text(row: &Row, table: &'static str, name: &str) -> StoreResult<String> {
    column(row, table, name)
}

/// The first column, an unsigned number kept as `BIGINT`.
pub(super) fn first_unsigned(row: &Row, table: &'static str) -> StoreResult<u64> {
    non_negative(column(row, table, 0)?, table, "the first column")
}
