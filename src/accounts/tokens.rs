//! `/token/`, `/auth/login/`, `/token/refresh/`, `/auth/logout/`, `/me/`.

use http::{Request, Response, StatusCode};
use serde_json::json;

use super::body::read_fields;
use super::{audit, caller};
use crate::app::App;
use crate::auth::jwt::{Issued, TokenType};
use crate::error::ApiError;
use crate::gateway::RequestContext;
use crate::response::{Body, json};
use crate::store::{RefreshFamily, RotateOutcome, UserRecord};

/// Username and password → an access and a refresh token.
pub async fn obtain(
    app: &App,
    request: Request<Body>,
    ctx: &mut RequestContext,
) -> Result<Response<Body>, ApiError> {
    let fields = read_fields(request, app.config.server.max_body_bytes).await?;
    let username = fields.required_str("username")?;
    let password = fields.required_str("password")?;

    // Throttle before any password work, so a throttled guess costs us nothing.
    if let Err(wait) = app.throttle.check(ctx.client_ip, &username) {
        app.metrics.throttled();
        return Err(ApiError::Throttled {
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        });
    }

    // Unknown and inactive users verify against a hash too, so the answer and its timing are
    // the same whether the account exists or not.
    let user = app.store.user_by_name(&username).await?;
    let verified = app
        .passwords
        .verify(&password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await;
    let user = match user {
        Some(user) if verified && user.is_active => user,
        _ => {
            app.metrics.login_failed();
            audit(app, ctx, "login_failed", None, Some(username)).await;
            return Err(ApiError::LoginFailed);
        }
    };

    let (access, refresh) = start_session(app, &user).await?;
    audit(app, ctx, "login", Some(&user.username), None).await;
    Ok(json(
        StatusCode::OK,
        &json!({ "access": access.token, "refresh": refresh.token }),
    ))
}

/// A new refresh-token family (one login session) and its first pair of tokens.
async fn start_session(app: &App, user: &UserRecord) -> Result<(Issued, Issued), ApiError> {
    let tokens = &app.auth.tokens;
    let now = crate::clock::now_secs();
    let session_id = uuid::Uuid::new_v4().simple().to_string();
    let refresh = tokens
        .issue(user, TokenType::Refresh, &session_id, now)
        .map_err(signing_failed)?;
    let access = tokens
        .issue(user, TokenType::Access, &session_id, now)
        .map_err(signing_failed)?;
    let family = RefreshFamily {
        id: session_id,
        user_id: user.id,
        current_jti: refresh.jti.clone(),
        created_at: now,
        expires_at: refresh.expires_at,
        revoked_at: None,
    };
    app.store.create_family(family).await?;
    Ok((access, refresh))
}

/// A refresh token → a new access token, and (with rotation) a new refresh token that
/// replaces the presented one. Presenting a replaced refresh token revokes the session.
pub async fn refresh(
    app: &App,
    request: Request<Body>,
    ctx: &mut RequestContext,
) -> Result<Response<Body>, ApiError> {
    let fields = read_fields(request, app.config.server.max_body_bytes).await?;
    let presented = fields.required_str("refresh")?;
    let tokens = &app.auth.tokens;
    let claims = tokens
        .verify(&presented, TokenType::Refresh)
        .map_err(|_| ApiError::InvalidToken)?;
    // Read the user fresh from the store: a refresh is rare and must see a deactivation.
    let user = match claims.user_id() {
        Some(id) => app.store.user(id).await?,
        None => None,
    };
    let user = user
        .filter(|u| u.is_active && claims.iat >= u.tokens_valid_after)
        .ok_or(ApiError::InvalidToken)?;
    let now = crate::clock::now_secs();

    if !app.config.auth.rotate_refresh_tokens {
        let family = app.store.family(&claims.sid).await?;
        let current = family.is_some_and(|f| f.revoked_at.is_none() && f.current_jti == claims.jti);
        if !current {
            return Err(ApiError::InvalidToken);
        }
        let access = tokens
            .issue(&user, TokenType::Access, &claims.sid, now)
            .map_err(signing_failed)?;
        return Ok(json(StatusCode::OK, &json!({ "access": access.token })));
    }

    let next = tokens
        .issue(&user, TokenType::Refresh, &claims.sid, now)
        .map_err(signing_failed)?;
    match app
        .store
        .rotate_family(&claims.sid, &claims.jti, &next.jti, next.expires_at, now)
        .await?
    {
        RotateOutcome::Rotated => {}
        RotateOutcome::ReuseDetected => {
            app.caches.invalidate_session(&claims.sid);
            tracing::warn!(user = %user.username, "refresh token reused; session revoked");
            audit(
                app,
                ctx,
                "refresh_reuse_detected",
                Some(&user.username),
                Some(claims.sid.clone()),
            )
            .await;
            return Err(ApiError::InvalidToken);
        }
        RotateOutcome::Revoked | RotateOutcome::Unknown => return Err(ApiError::InvalidToken),
    }
    let access = tokens
        .issue(&user, TokenType::Access, &claims.sid, now)
        .map_err(signing_failed)?;
    Ok(json(
        StatusCode::OK,
        &json!({ "access": access.token, "refresh": next.token }),
    ))
}

/// Ends the session server-side: the presented refresh token's family and the session of
/// the access token used to call this are revoked, so neither token works again.
pub async fn logout(
    app: &App,
    request: Request<Body>,
    ctx: &mut RequestContext,
) -> Result<Response<Body>, ApiError> {
    let principal = caller(app, request.headers(), ctx).await?;
    let fields = read_fields(request, app.config.server.max_body_bytes).await?;
    let mut sessions: Vec<String> = principal.token.iter().map(|t| t.sid.clone()).collect();
    if let Some(refresh) = fields.optional_str("refresh")? {
        let claims = app
            .auth
            .tokens
            .verify(&refresh, TokenType::Refresh)
            .map_err(|_| ApiError::InvalidToken)?;
        if claims.user_id() != Some(principal.user.id) {
            return Err(ApiError::InvalidToken);
        }
        sessions.push(claims.sid.clone());
    }
    let now = crate::clock::now_secs();
    for session in &sessions {
        app.store.revoke_family(session, now).await?;
        app.caches.invalidate_session(session);
    }
    audit(app, ctx, "logout", Some(&principal.user.username), None).await;
    Ok(json(
        StatusCode::OK,
        &json!({ "detail": "Successfully logged out." }),
    ))
}

pub async fn me(
    app: &App,
    request: Request<Body>,
    ctx: &mut RequestContext,
) -> Result<Response<Body>, ApiError> {
    let principal = caller(app, request.headers(), ctx).await?;
    let user = &principal.user;
    Ok(json(
        StatusCode::OK,
        &json!({
            "id": user.id,
            "username": user.username,
            "roles": user.roles,
            "is_admin": user.is_admin,
            "auth_method": principal.method.as_str(),
        }),
    ))
}

fn signing_failed(error: crate::auth::jwt::KeyError) -> ApiError {
    tracing::error!(%error, "token signing failed");
    ApiError::Internal
}
