//! The tables of the redb file and the row-level operations that several store methods share,
//! each inside the caller's transaction.

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::records::*;
use crate::store::{StoreError, StoreResult};

pub(super) const USERS: TableDefinition<u64, &[u8]> = TableDefinition::new("users");
/// Lowercased username → user id: uniqueness and case-insensitive login.
pub(super) const USERNAMES: TableDefinition<&str, u64> = TableDefinition::new("usernames");
pub(super) const API_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");
/// User id → id of that user's one active key.
pub(super) const ACTIVE_KEYS: TableDefinition<u64, &str> = TableDefinition::new("active_keys");
pub(super) const FAMILIES: TableDefinition<&str, &[u8]> = TableDefinition::new("refresh_families");
pub(super) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_events");
pub(super) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// What `/readyz` writes to learn whether the disk takes writes again.
pub(super) const WRITE_PROBE: TableDefinition<&str, &[u8]> = TableDefinition::new("write_probe");
/// Login budget key → theoretical arrival time (ms) of its next attempt.
pub(super) const LOGIN_BUDGETS: TableDefinition<&str, u64> = TableDefinition::new("login_budgets");

pub(super) fn encode<T: Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Unavailable(e.to_string()))
}

pub(super) fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table,
        reason: e.to_string(),
    })
}

pub(super) fn next_id(txn: &WriteTransaction, counter: &str) -> StoreResult<u64> {
    let mut counters = txn.open_table(COUNTERS)?;
    let next = counters.get(counter)?.map(|v| v.value()).unwrap_or(0) + 1;
    counters.insert(counter, next)?;
    Ok(next)
}

pub(super) fn get_user(txn: &WriteTransaction, id: UserId) -> StoreResult<Option<UserRecord>> {
    let users = txn.open_table(USERS)?;
    let row = users.get(id)?;
    row.map(|v| decode("users", v.value())).transpose()
}

pub(super) fn put_user(txn: &WriteTransaction, user: &UserRecord) -> StoreResult<()> {
    txn.open_table(USERS)?
        .insert(user.id, encode(user)?.as_slice())?;
    Ok(())
}

pub(super) fn insert_new_user(txn: &WriteTransaction, new: NewUser) -> StoreResult<UserRecord> {
    let key = new.username.to_lowercase();
    if txn.open_table(USERNAMES)?.get(key.as_str())?.is_some() {
        return Err(StoreError::UsernameTaken);
    }
    let now = crate::clock::now_secs();
    let user = UserRecord {
        id: next_id(txn, "users")?,
        username: new.username,
        password_hash: new.password_hash,
        roles: new.roles,
        is_admin: new.is_admin,
        is_active: true,
        tokens_valid_after: 0,
        created_at: now,
        updated_at: now,
    };
    txn.open_table(USERNAMES)?.insert(key.as_str(), user.id)?;
    put_user(txn, &user)?;
    Ok(user)
}

pub(super) fn get_key(txn: &WriteTransaction, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
    let keys = txn.open_table(API_KEYS)?;
    let row = keys.get(id)?;
    row.map(|v| decode("api_keys", v.value())).transpose()
}

pub(super) fn put_key(txn: &WriteTransaction, key: &ApiKeyRecord) -> StoreResult<()> {
    txn.open_table(API_KEYS)?
        .insert(key.id.as_str(), encode(key)?.as_slice())?;
    Ok(())
}

/// Revokes the user's active key, if any, with an `api_key_revoked` event; returns its id.
pub(super) fn revoke_active_key(
    txn: &WriteTransaction,
    user: UserId,
    at: u64,
    actor: &crate::store::Actor,
) -> StoreResult<Option<String>> {
    let Some(id) = txn
        .open_table(ACTIVE_KEYS)?
        .get(user)?
        .map(|v| v.value().to_string())
    else {
        return Ok(None);
    };
    match get_key(txn, &id)? {
        Some(mut key) => revoke_key(txn, &mut key, at, actor)?,
        // An entry whose row is gone: nothing left to revoke but the entry.
        None => {
            txn.open_table(ACTIVE_KEYS)?.remove(user)?;
            append_event(txn, actor.event("api_key_revoked", &id))?;
        }
    }
    Ok(Some(id))
}

/// Revokes `key` at `at` (an earlier revocation stands), drops it as its user's active key,
/// and writes `api_key_revoked`.
pub(super) fn revoke_key(
    txn: &WriteTransaction,
    key: &mut ApiKeyRecord,
    at: u64,
    actor: &crate::store::Actor,
) -> StoreResult<()> {
    key.revoked_at.get_or_insert(at);
    put_key(txn, key)?;
    let mut active = txn.open_table(ACTIVE_KEYS)?;
    if active
        .get(key.user_id)?
        .is_some_and(|v| v.value() == key.id)
    {
        active.remove(key.user_id)?;
    }
    drop(active);
    append_event(txn, actor.event("api_key_revoked", &key.id))
}

/// Appends an audit event, now.
pub(super) fn append_event(txn: &WriteTransaction, event: NewAuditEvent) -> StoreResult<()> {
    append_event_at(txn, event, crate::clock::now_secs())
}

pub(super) fn append_event_at(
    txn: &WriteTransaction,
    event: NewAuditEvent,
    at: u64,
) -> StoreResult<()> {
    let id = next_id(txn, "audit_events")?;
    let event = AuditEvent {
        id,
        at,
        kind: event.kind.to_string(),
        actor: event.actor,
        target: event.target,
        client_ip: event.client_ip,
    };
    txn.open_table(AUDIT)?
        .insert(id, encode(&event)?.as_slice())?;
    Ok(())
}

pub(super) fn get_family(txn: &WriteTransaction, id: &str) -> StoreResult<Option<RefreshFamily>> {
    let families = txn.open_table(FAMILIES)?;
    let row = families.get(id)?;
    row.map(|v| decode("refresh_families", v.value()))
        .transpose()
}

pub(super) fn put_family(txn: &WriteTransaction, family: &RefreshFamily) -> StoreResult<()> {
    txn.open_table(FAMILIES)?
        .insert(family.id.as_str(), encode(family)?.as_slice())?;
    Ok(())
}

/// Refuses, inside the caller's transaction, a change that takes `before`'s administrator
/// rights away when no other active administrator remains. Users are few; a scan is cheap.
pub(super) fn keep_an_admin(
    txn: &WriteTransaction,
    before: &UserRecord,
    after: Option<&UserRecord>,
) -> StoreResult<()> {
    if !is_active_admin(before) || after.is_some_and(is_active_admin) {
        return Ok(());
    }
    let users = txn.open_table(USERS)?;
    for row in users.iter()? {
        let (id, bytes) = row?;
        if id.value() == before.id {
            continue;
        }
        let user: UserRecord = decode("users", bytes.value())?;
        if is_active_admin(&user) {
            return Ok(());
        }
    }
    Err(StoreError::LastAdmin)
}
