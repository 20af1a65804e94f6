//! Signing in and out: checking a username and password (throttled, audited), starting a
//! login session and its first token, the device cookie, the browser session's renewal, and
//! sending a browser to the sign-in page. The one service the accounts API and the pages both
//! call, so the two doors cannot drift apart.

use http::header::{HeaderValue, LOCATION, SET_COOKIE};
use http::{HeaderMap, Request, Response, StatusCode, Uri};

use crate::app::App;
use crate::auth::jwt::{DEVICE_TTL_SECS, Issued, TokenType};
use crate::auth::rate_limit::Attempt;
use crate::auth::{AuthMethod, Principal, UserState, session};
use crate::error::ApiError;
use crate::request::{RequestContext, is_navigation};
use crate::response::{Body, empty};
use crate::store::{NewAuditEvent, RefreshFamily, UserRecord};

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

/// A browser navigation whose only credential is a session cookie that no longer verifies
/// (signed out elsewhere, expired, revoked): it should be asked to sign in again.
pub fn is_expired_session_navigation<B>(app: &App, request: &Request<B>, https: bool) -> bool {
    let headers = request.headers();
    app.config.ui.enabled
        && is_navigation(request)
        && !headers.contains_key(http::header::AUTHORIZATION)
        && !headers.contains_key(crate::auth::X_API_KEY)
        && session::cookie(headers, app.cookies.session(https)).is_some()
}

/// 302 to the sign-in page, which returns to `uri` afterwards; a stale session cookie is
/// cleared on the way.
pub fn redirect_to_login(app: &App, uri: &Uri, tls: bool) -> Response<Body> {
    let back = uri.path_and_query().map_or("/", |p| p.as_str());
    let next: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
    let mut response = empty(StatusCode::FOUND);
    if let Ok(location) =
        HeaderValue::from_str(&format!("{}/login?next={next}", app.config.ui.path))
    {
        response.headers_mut().insert(LOCATION, location);
    }
    if let Some(clear) = app.cookies.clear_session(tls) {
        response.headers_mut().append(SET_COOKIE, clear);
    }
    response
}

/// A fresh cookie when a browser session is past half its life: a session in use never
/// expires under its user, one left alone does.
pub fn renewed_cookie(app: &App, principal: &Principal, tls: bool) -> Option<HeaderValue> {
    let claims = principal
        .token
        .as_ref()
        .filter(|_| principal.method == AuthMethod::Session)?;
    let lifetime = app.auth.tokens.refresh_ttl();
    let now = crate::clock::now_secs();
    if claims.iat + lifetime / 2 > now {
        return None;
    }
    let token = app
        .auth
        .tokens
        .issue(&principal.user, TokenType::Session, &claims.sid, now)
        .map_err(signing_failed)
        .ok()?;
    app.cookies.set_session(&token.token, lifetime, tls)
}

pub fn signing_failed(error: crate::auth::jwt::KeyError) -> ApiError {
    tracing::error!(%error, "token signing failed");
    ApiError::Internal
}

/// Records a security event that changes nothing in the store (a login, a logout). The audit
/// trail must not turn a completed action into an error response, so a failed write is logged
/// instead.
pub async fn audit(
    app: &App,
    ctx: &RequestContext,
    kind: &'static str,
    actor: Option<&str>,
    target: Option<String>,
) {
    let event = NewAuditEvent {
        kind,
        actor: actor.map(str::to_string),
        target,
        client_ip: Some(ctx.client_ip.to_string()),
    };
    if let Err(error) = app
        .store
        .append_audit(event, crate::clock::now_secs())
        .await
    {
        tracing::error!(%error, kind, "audit event not recorded");
    }
}
