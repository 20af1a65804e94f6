//! The web pages under `[ui] path` (default `/_portcullis`): sign-in, the profile page (who I
//! am, my API key, my password) and administration (users, keys, audit events).
//!
//! The pages are static HTML, CSS and JavaScript embedded in the binary (no build step, no
//! CDN), served with a Content-Security-Policy that allows nothing but themselves. Their
//! scripts call the accounts API with the session cookie; sign-in and sign-out are plain form
//! posts handled here, because they are what sets and clears that cookie.

mod next;

use std::collections::HashMap;

use http::header::{
    CACHE_CONTROL, CONTENT_TYPE, HeaderValue, LOCATION, REFERRER_POLICY, RETRY_AFTER, SET_COOKIE,
};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};

use crate::accounts::body::read_form;
use crate::app::App;
use crate::auth::jwt::TokenType;
use crate::auth::session;
use crate::error::ApiError;
use crate::request::RequestContext;
use crate::response::{Body, empty, full, text};
use crate::sessions::{check_login, device_cookie, device_token, redirect_to_login, start_session};

pub use next::safe_next;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// (file, content type, contents) of every static asset.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/common.js"),
    ),
    (
        "profile.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/profile.js"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/admin.js"),
    ),
];
const LOGIN_PAGE: &str = include_str!("assets/login.html");
const PROFILE_PAGE: &str = include_str!("assets/profile.html");
const ADMIN_PAGE: &str = include_str!("assets/admin.html");

pub async fn handle(
    app: &App,
    request: Request<Body>,
    path: &str,
    ctx: &mut RequestContext,
) -> Response<Body> {
    let ui = app.config.ui.path.as_str();
    let rest = &path[ui.len()..];
    let result = match (request.method().clone(), rest) {
        (Method::GET | Method::HEAD, "") => Ok(redirect(&format!("{ui}/"))),
        (Method::GET | Method::HEAD, "/") => {
            signed_in_page(
                app,
                request.headers(),
                request.uri(),
                ctx,
                PROFILE_PAGE,
                false,
            )
            .await
        }
        (Method::GET | Method::HEAD, "/admin") => {
            signed_in_page(app, request.headers(), request.uri(), ctx, ADMIN_PAGE, true).await
        }
        (Method::GET | Method::HEAD, "/login") => Ok(login_page(
            app,
            StatusCode::OK,
            next_of(request.uri(), ui),
            "",
        )),
        (Method::POST, "/login") => sign_in(app, request, ctx).await,
        (Method::POST, "/logout") => sign_out(app, request, ctx).await,
        (Method::GET | Method::HEAD, asset) => asset
            .strip_prefix("/assets/")
            .map_or(Err(ApiError::NotFound), serve_asset),
        _ => Err(ApiError::NotFound),
    };
    result.unwrap_or_else(ApiError::into_response)
}

/// The profile or admin page for a signed-in browser; the sign-in page otherwise.
async fn signed_in_page(
    app: &App,
    headers: &HeaderMap,
    uri: &Uri,
    ctx: &mut RequestContext,
    page: &str,
    admin_only: bool,
) -> Result<Response<Body>, ApiError> {
    let principal = match app.authenticate(headers, ctx).await {
        Ok(Some(principal)) => principal,
        Ok(None) | Err(ApiError::InvalidToken | ApiError::InvalidApiKey) => {
            return Ok(redirect_to_login(app, uri, ctx.https));
        }
        Err(other) => return Err(other),
    };
    ctx.principal = Some(principal.clone());
    if admin_only && !principal.user.is_admin {
        return Err(ApiError::Forbidden);
    }
    Ok(html(StatusCode::OK, &fill(page, app, &[])))
}

async fn sign_in(
    app: &App,
    request: Request<Body>,
    ctx: &mut RequestContext,
) -> Result<Response<Body>, ApiError> {
    let ui = app.config.ui.path.clone();
    // A cross-site form could otherwise sign the victim into the attacker's account.
    if !ctx.same_origin {
        return Err(ApiError::CsrfFailed);
    }
    let device = device_token(app, request.headers(), ctx.https);
    let form: HashMap<String, String> =
        read_form(request, app.config.server.max_body_bytes).await?;
    let next = form
        .get("next")
        .and_then(|n| safe_next(n))
        .unwrap_or(&format!("{ui}/"))
        .to_string();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let (username, password) = (field("username"), field("password"));
    if username.is_empty() || password.is_empty() {
        return Ok(login_page(
            app,
            StatusCode::BAD_REQUEST,
            next,
            "Enter your username and password.",
        ));
    }
    let user = match check_login(app, ctx, username, password, device.as_deref()).await {
        Ok(user) => user,
        Err(ApiError::LoginFailed) => {
            return Ok(login_page(
                app,
                StatusCode::UNAUTHORIZED,
                next,
                "Wrong username or password, or the account is inactive.",
            ));
        }
        Err(throttled @ ApiError::Throttled { retry_after_secs }) => {
            let mut page = login_page(
                app,
                StatusCode::TOO_MANY_REQUESTS,
                next,
                &throttled.detail(),
            );
            page.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return Ok(page);
        }
        Err(other) => return Err(other),
    };
    let (token, _) = start_session(app, &user, TokenType::Session).await?;
    let mut response = redirect(&next);
    let cookie = app
        .cookies
        .set_session(&token.token, app.auth.tokens.refresh_ttl(), ctx.https);
    let device = device_cookie(app, &user, ctx.https);
    for cookie in [cookie, device].into_iter().flatten() {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(response)
}

/// Ends the browser session server-side and clears the cookie.
async fn sign_out(
    app: &App,
    request: Request<Body>,
    ctx: &mut RequestContext,
) -> Result<Response<Body>, ApiError> {
    if !ctx.same_origin {
        return Err(ApiError::CsrfFailed);
    }
    let cookie = session::cookie(request.headers(), app.cookies.session(ctx.https));
    let claims = cookie.and_then(|c| app.auth.tokens.verify(c, TokenType::Session).ok());
    if let Some(claims) = claims {
        app.store
            .revoke_family(&claims.sid, crate::clock::now_secs())
            .await?;
        crate::sessions::audit(app, ctx, "logout", Some(&claims.username), None).await;
    }
    let mut response = redirect(&format!("{}/login", app.config.ui.path));
    if let Some(clear) = app.cookies.clear_session(ctx.https) {
        response.headers_mut().append(SET_COOKIE, clear);
    }
    Ok(response)
}

fn serve_asset(name: &str) -> Result<Response<Body>, ApiError> {
    let (_, content_type, contents) = ASSETS
        .iter()
        .find(|(file, _, _)| *file == name)
        .ok_or(ApiError::NotFound)?;
    let mut response = text(StatusCode::OK, content_type, *contents);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

fn login_page(app: &App, status: StatusCode, next: String, message: &str) -> Response<Body> {
    let class = if message.is_empty() { "" } else { "error" };
    let page = fill(
        LOGIN_PAGE,
        app,
        &[
            ("{{next}}", &escape(&next)),
            ("{{message}}", &escape(message)),
            ("{{message_class}}", class),
        ],
    );
    html(status, &page)
}

/// `?next=` of the sign-in page, if it is a safe place to return to; the profile otherwise.
fn next_of(uri: &Uri, ui: &str) -> String {
    let next = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v);
    next.as_deref()
        .and_then(safe_next)
        .map_or_else(|| format!("{ui}/"), str::to_string)
}

/// Replaces the page's placeholders: `{{ui}}`, `{{api}}`, and `extra`.
fn fill(page: &str, app: &App, extra: &[(&str, &str)]) -> String {
    let mut page = page
        .replace("{{ui}}", &app.config.ui.path)
        .replace("{{api}}", &app.config.auth.api_prefix);
    for (placeholder, value) in extra {
        page = page.replace(placeholder, value);
    }
    page
}

fn html(status: StatusCode, page: &str) -> Response<Body> {
    let mut response = Response::new(full(page.to_string()));
    *response.status_mut() = status;
    let headers: &mut HeaderMap = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("content-security-policy", HeaderValue::from_static(CSP));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// 303: after a form post, the browser follows with a GET.
fn redirect(location: &str) -> Response<Body> {
    let mut response = empty(StatusCode::SEE_OTHER);
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
