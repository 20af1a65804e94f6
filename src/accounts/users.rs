//! `/users/`, `/users/{id}/`, `/permissions/`.

use http::{Request, Response, StatusCode};
use serde_json::{Value, json};

use super::actor;
use super::body::{Fields, field_error, read_fields};
use crate::app::App;
use crate::auth::jwt::TokenType;
use crate::auth::{AuthMethod, Principal, UserState, names};
use crate::clock::{now_secs, rfc3339};
use crate::error::ApiError;
use crate::request::RequestContext;
use crate::response::{Body, empty, json};
use crate::store::{NewUser, StoreError, UserId, UserPatch, UserRecord};

pub fn user_json(user: &UserRecord) -> Value {
    json!({
        "id": user.id,
        "username": user.username,
        "roles": user.roles,
        "is_admin": user.is_admin,
        "is_active": user.is_active,
        "created_at": rfc3339(user.created_at),
        "updated_at": rfc3339(user.updated_at),
    })
}

pub async fn list(app: &App) -> Result<Response<Body>, ApiError> {
    let users = app.store.users().await?;
    Ok(json(
        StatusCode::OK,
        &users.iter().map(user_json).collect::<Vec<_>>(),
    ))
}

pub async fn create(
    app: &App,
    request: Request<Body>,
    ctx: &mut RequestContext,
    principal: Principal,
) -> Result<Response<Body>, ApiError> {
    let fields = read_fields(request, app.config.server.max_body_bytes).await?;
    let username = fields.required_str("username")?;
    names::check_username(&username).map_err(|why| field_error("username", why))?;
    let password = fields.required_str("password")?;
    names::check_password(&password, app.config.auth.min_password_length)
        .map_err(|why| field_error("password", &why))?;
    let roles = roles_field(&fields)?.unwrap_or_default();
    let is_admin = fields.optional_bool("is_admin")?.unwrap_or(false);
    let password_hash = hash_password(app, &password).await?;
    let new = NewUser {
        username,
        password_hash,
        roles,
        is_admin,
    };
    let user = app
        .store
        .create_user(new, &actor(ctx, &principal))
        .await
        .map_err(|error| match error {
            StoreError::UsernameTaken => {
                field_error("username", "A user with that username already exists.")
            }
            other => other.into(),
        })?;
    Ok(json(StatusCode::CREATED, &user_json(&user)))
}

pub async fn get(app: &App, id: &str, principal: Principal) -> Result<Response<Body>, ApiError> {
    // Permission before anything else, so a non-admin learns nothing about who exists.
    if !principal.user.is_admin && id.parse() != Ok(principal.user.id) {
        return Err(ApiError::Forbidden);
    }
    let id = parse_id(id)?;
    let user = app.store.user(id).await?.ok_or(ApiError::NotFound)?;
    Ok(json(StatusCode::OK, &user_json(&user)))
}

/// Changes password, roles, `is_admin` or `is_active`. A password change or a deactivation
/// revokes every token and the API key of the user at once, in the same store transaction.
pub async fn update(
    app: &App,
    request: Request<Body>,
    ctx: &mut RequestContext,
    id: &str,
    principal: Principal,
) -> Result<Response<Body>, ApiError> {
    let id = parse_id(id)?;
    let fields = read_fields(request, app.config.server.max_body_bytes).await?;
    let mut patch = UserPatch {
        roles: roles_field(&fields)?,
        is_admin: fields.optional_bool("is_admin")?,
        is_active: fields.optional_bool("is_active")?,
        ..UserPatch::default()
    };
    if id == principal.user.id && (patch.is_active == Some(false) || patch.is_admin == Some(false))
    {
        return Err(ApiError::bad_request(
            "You cannot deactivate or demote your own account.",
        ));
    }
    if let Some(password) = fields.optional_str("password")? {
        names::check_password(&password, app.config.auth.min_password_length)
            .map_err(|why| field_error("password", &why))?;
        patch.password_hash = Some(hash_password(app, &password).await?);
    }
    let user = app
        .store
        .update_user(id, patch, &actor(ctx, &principal), "user_changed")
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(json(StatusCode::OK, &user_json(&user)))
}

pub async fn delete(
    app: &App,
    ctx: &mut RequestContext,
    id: &str,
    principal: Principal,
) -> Result<Response<Body>, ApiError> {
    let id = parse_id(id)?;
    if id == principal.user.id {
        return Err(ApiError::bad_request("You cannot delete your own account."));
    }
    app.store
        .delete_user(id, &actor(ctx, &principal))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// The caller changes their own password, proving the current one. Like an admin's change it
/// revokes their tokens and API key; a browser session gets a fresh cookie in the answer, so
/// the page that asked stays signed in.
pub async fn change_own_password(
    app: &App,
    request: Request<Body>,
    ctx: &mut RequestContext,
    principal: Principal,
) -> Result<Response<Body>, ApiError> {
    let fields = read_fields(request, app.config.server.max_body_bytes).await?;
    let current = fields.required_str("current_password")?;
    let new = fields.required_str("new_password")?;
    names::check_password(&new, app.config.auth.min_password_length)
        .map_err(|why| field_error("new_password", &why))?;
    // A stolen session must not become a way to guess the password faster than a login.
    crate::sessions::throttle(app, ctx, &principal.user.username, None).await?;
    let user = app
        .store
        .user(principal.user.id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !app
        .passwords
        .verify(&current, Some(&user.password_hash))
        .await
    {
        return Err(field_error(
            "current_password",
            "The current password is incorrect.",
        ));
    }
    let password_hash = hash_password(app, &new).await?;
    let now = now_secs();
    let patch = UserPatch {
        password_hash: Some(password_hash),
        ..UserPatch::default()
    };
    let user = app
        .store
        .update_user(user.id, patch, &actor(ctx, &principal), "password_changed")
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut response = json(StatusCode::OK, &json!({ "detail": "Password changed." }));
    if principal.method == AuthMethod::Session
        && let Some(claims) = &principal.token
    {
        let fresh = app
            .auth
            .tokens
            .issue(
                &UserState::from_record(&user),
                TokenType::Session,
                &claims.sid,
                now,
            )
            .map_err(crate::sessions::signing_failed)?;
        let max_age = app.auth.tokens.refresh_ttl();
        if let Some(cookie) = app.cookies.set_session(&fresh.token, max_age, ctx.https) {
            response
                .headers_mut()
                .append(http::header::SET_COOKIE, cookie);
        }
    }
    Ok(response)
}

/// The role names the access rules know, plus `admin`.
pub async fn permissions(app: &App) -> Result<Response<Body>, ApiError> {
    let rules = app.rules.load();
    let roles = rules.roles();
    Ok(json(StatusCode::OK, &json!({ "roles": roles })))
}

/// argon2id of a new password; a failure is ours, not the client's.
async fn hash_password(app: &App, password: &str) -> Result<String, ApiError> {
    app.passwords.hash(password).await.map_err(|error| {
        tracing::error!(%error, "password hashing failed");
        ApiError::Internal
    })
}

fn roles_field(fields: &Fields) -> Result<Option<Vec<String>>, ApiError> {
    let Some(mut roles) = fields.optional_str_list("roles")? else {
        return Ok(None);
    };
    for role in &roles {
        names::check_role(role).map_err(|why| field_error("roles", why))?;
    }
    roles.sort();
    roles.dedup();
    Ok(Some(roles))
}

fn parse_id(id: &str) -> Result<UserId, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound)
}
