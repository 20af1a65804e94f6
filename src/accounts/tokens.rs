//! `/token/`, `/auth/login/`, `/token/refresh/`, `/auth/logout/`, `/me/`.

use http::header::SET_COOKIE;
use http::{Request, Response, StatusCode};
use serde_json::json;

use super::body::read_fields;
use crate::app::App;
use crate::auth::jwt::TokenType;
use crate::auth::{Principal, UserState};
use crate::error::ApiError;
use crate::request::RequestContext;
use crate::response::{Body, json};
use crate::sessions::{
    audit, check_login, device_cookie, device_token, signing_failed, start_session,
};
use crate::store::RotateOutcome;

/// Username and password → an access and a refresh token.
pub async fn obtain(
    app: &App,
    request: Request<Body>,
    ctx: &mut RequestContext,
) -> Result<Response<Body>, ApiError> {
    let device = device_token(app, request.headers(), ctx.https);
    let fields = read_fields(request, app.config.server.max_body_bytes).await?;
    let username = fields.required_str("username")?;
    let password = fields.required_str("password")?;
    let user = check_login(app, ctx, &username, &password, device.as_deref()).await?;
    let (refresh, session_id) = start_session(app, &user, TokenType::Refresh).await?;
    let access = app
        .auth
        .tokens
        .issue(
            &UserState::from_record(&user),
            TokenType::Access,
            &session_id,
            crate::clock::now_secs(),
        )
        .map_err(signing_failed)?;
    let mut response = json(
        StatusCode::OK,
        &json!({ "access": access.token, "refresh": refresh.token }),
    );
    if let Some(cookie) = device_cookie(app, &user, ctx.https) {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(response)
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
    let subject = UserState::from_record(&user);
    let now = crate::clock::now_secs();

    if !app.config.auth.rotate_refresh_tokens {
        let family = app.store.family(&claims.sid).await?;
        let current = family.is_some_and(|f| f.revoked_at.is_none() && f.current_jti == claims.jti);
        if !current {
            return Err(ApiError::InvalidToken);
        }
        let access = tokens
            .issue(&subject, TokenType::Access, &claims.sid, now)
            .map_err(signing_failed)?;
        return Ok(json(StatusCode::OK, &json!({ "access": access.token })));
    }

    let next = tokens
        .issue(&subject, TokenType::Refresh, &claims.sid, now)
        .map_err(signing_failed)?;
    match app
        .store
        .rotate_family(&claims.sid, &claims.jti, &next.jti, next.expires_at, now)
        .await?
    {
        RotateOutcome::Rotated => {}
        RotateOutcome::ReuseDetected => {
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
        .issue(&subject, TokenType::Access, &claims.sid, now)
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
    principal: Principal,
) -> Result<Response<Body>, ApiError> {
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
    }
    audit(app, ctx, "logout", Some(&principal.user.username), None).await;
    Ok(json(
        StatusCode::OK,
        &json!({ "detail": "Successfully logged out." }),
    ))
}

pub async fn me(principal: Principal) -> Result<Response<Body>, ApiError> {
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
