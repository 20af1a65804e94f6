//! `/token/`, `/auth/login/`, `/token/refresh/`, `/auth/logout/`, `/me/`.

use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use serde_json::json;

use super::audit;
use super::body::read_fields;
use crate::app::App;
use crate::auth::jwt::{DEVICE_TTL_SECS, Issued, TokenType};
use crate::auth::rate_limit::Attempt;
use crate::auth::{Principal, UserState, session};
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

/// The request's device cookie, unverified.
pub fn device_token(app: &App, headers: &HeaderMap, https: bool) -> Option<String> {
    session::cookie(headers, app.cookies.device(https)).map(str::to_string)
}

/// `Set-Cookie` for a fresh device cookie naming `user`, for the answer to a sign-in: from now
/// on this client has a login budget of its own for that username.
pub fn device_cookie(app: &App, user: &UserRecord, https: bool) -> Option<HeaderValue> {
    let now = crate::clock::now_secs();
    let issued = app
        .auth
        .tokens
        .issue(&UserState::from_record(user), TokenType::Device, "", now)
        .map_err(signing_failed)
        .ok()?;
    app.cookies
        .set_device(&issued.token, DEVICE_TTL_SECS, https)
}

/// The user whose username and password these are, throttled and audited; shared by the
/// API login and the sign-in page. `device` is the request's device cookie, if any.
pub async fn check_login(
    app: &App,
    ctx: &RequestContext,
    username: &str,
    password: &str,
    device: Option<&str>,
) -> Result<UserRecord, ApiError> {
    // A device cookie counts only for the username it was given to.
    let claims = device.and_then(|token| app.auth.tokens.verify(token, TokenType::Device).ok());
    let device = claims
        .as_ref()
        .filter(|c| c.username.eq_ignore_ascii_case(username))
        .map(|c| c.jti.as_str());
    throttle(app, ctx, username, device).await?;
    // Unknown and inactive users verify against a hash too, so the answer and its timing are
    // the same whether the account exists or not.
    let user = app.store.user_by_name(username).await?;
    let verified = app
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await;
    match user {
        Some(user) if verified && user.is_active => {
            audit(app, ctx, "login", Some(&user.username), None).await;
            Ok(user)
        }
        _ => {
            app.metrics.login_failed();
            audit(app, ctx, "login_failed", None, Some(username.to_string())).await;
            Err(ApiError::LoginFailed)
        }
    }
}

/// Counts a password attempt against the client's, the username's and the device's budgets
/// (see `auth::rate_limit`). Called before any password work, so a throttled guess costs
/// nothing.
pub async fn throttle(
    app: &App,
    ctx: &RequestContext,
    username: &str,
    device: Option<&str>,
) -> Result<(), ApiError> {
    let attempt = Attempt {
        ip: ctx.client_ip,
        username,
        device,
    };
    match app.throttle.wait_before(&attempt).await? {
        None => Ok(()),
        Some(wait) => {
            app.metrics.throttled();
            Err(ApiError::Throttled {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            })
        }
    }
}

/// A new login session (a refresh-token family) whose first token is of `kind`: a refresh
/// token for API clients, a session token for the browser. Returns it and the session id.
pub async fn start_session(
    app: &App,
    user: &UserRecord,
    kind: TokenType,
) -> Result<(Issued, String), ApiError> {
    let now = crate::clock::now_secs();
    let session_id = uuid::Uuid::new_v4().simple().to_string();
    let first = app
        .auth
        .tokens
        .issue(&UserState::from_record(user), kind, &session_id, now)
        .map_err(signing_failed)?;
    let family = RefreshFamily {
        id: session_id.clone(),
        user_id: user.id,
        current_jti: first.jti.clone(),
        created_at: now,
        expires_at: first.expires_at,
        revoked_at: None,
    };
    app.store.create_family(family).await?;
    Ok((first, session_id))
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

pub fn signing_failed(error: crate::auth::jwt::KeyError) -> ApiError {
    tracing::error!(%error, "token signing failed");
    ApiError::Internal
}
