//! `/api-keys/` and `/api-keys/{id}/`: one active key per user, the secret shown once.

use http::{Request, Response, StatusCode};
use serde_json::{Value, json};

use super::actor;
use super::body::read_fields;
use crate::app::App;
use crate::auth::Principal;
use crate::auth::apikey;
use crate::clock::{now_secs, rfc3339};
use crate::error::ApiError;
use crate::request::RequestContext;
use crate::response::{Body, empty, json};
use crate::store::ApiKeyRecord;

/// A key as listings show it: never the secret, nor its hash.
fn key_json(app: &App, key: &ApiKeyRecord) -> Value {
    let last_used = match (key.last_used_at, app.auth.key_usage().pending(&key.id)) {
        (Some(stored), Some(pending)) => Some(stored.max(pending)),
        (stored, pending) => stored.or(pending),
    };
    json!({
        "id": key.id,
        "user": key.user_id,
        "prefix": apikey::display_prefix(&key.id),
        "created_at": rfc3339(key.created_at),
        "last_used_at": last_used.map(rfc3339),
        "revoked_at": key.revoked_at.map(rfc3339),
    })
}

/// Admins see every key; others see their own.
pub async fn list(app: &App, principal: Principal) -> Result<Response<Body>, ApiError> {
    let owner = (!principal.user.is_admin).then_some(principal.user.id);
    let keys = app.store.api_keys(owner).await?;
    Ok(json(
        StatusCode::OK,
        &keys.iter().map(|k| key_json(app, k)).collect::<Vec<_>>(),
    ))
}

/// Creates a key for the caller, or (admin only) for `{"user": id}`, revoking that user's
/// previous key.
pub async fn create(
    app: &App,
    request: Request<Body>,
    ctx: &mut RequestContext,
    principal: Principal,
) -> Result<Response<Body>, ApiError> {
    let fields = read_fields(request, app.config.server.max_body_bytes).await?;
    let owner = fields.optional_id("user")?.unwrap_or(principal.user.id);
    if owner != principal.user.id && !principal.user.is_admin {
        return Err(ApiError::Forbidden);
    }
    let owner = app
        .store
        .user(owner)
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(|| ApiError::bad_request("user: No active user with that id."))?;
    let new = apikey::generate(owner.id, now_secs()).map_err(|error| {
        tracing::error!(%error, "OS random number generator failed");
        ApiError::Internal
    })?;
    let record = new.record;
    app.store
        .insert_api_key(record.clone(), &actor(ctx, &principal))
        .await?;
    let mut body = key_json(app, &record);
    body["key"] = Value::String(new.key);
    Ok(json(StatusCode::CREATED, &body))
}

/// Revokes a key. Someone else's key answers 404 exactly like a missing one, so a user
/// cannot probe which key ids exist.
pub async fn revoke(
    app: &App,
    ctx: &mut RequestContext,
    id: &str,
    principal: Principal,
) -> Result<Response<Body>, ApiError> {
    let key = app.store.api_key(id).await?.ok_or(ApiError::NotFound)?;
    if key.user_id != principal.user.id && !principal.user.is_admin {
        return Err(ApiError::NotFound);
    }
    app.store
        .revoke_api_key(id, &actor(ctx, &principal))
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
