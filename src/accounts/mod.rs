//! The accounts API (DESIGN §2), served by the gateway itself and never forwarded.
//! Paths and messages follow the Dispatcharr accounts API so its clients work unchanged.
//! One file per resource; this one routes and holds what they share.

mod api_keys;
mod audit;
pub mod body;
pub mod tokens;
mod users;

use http::{HeaderMap, Request, Response};

use crate::app::App;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::gateway::RequestContext;
use crate::response::Body;
use crate::store::{Actor, NewAuditEvent};

pub async fn handle(
    app: &App,
    request: Request<Body>,
    path: &str,
    ctx: &mut RequestContext,
) -> Response<Body> {
    let rest = path[app.config.auth.api_prefix.len()..].trim_matches('/');
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let method = request.method().as_str().to_string();
    let result = match (segments.as_slice(), method.as_str()) {
        (["token"] | ["auth", "login"], "POST") => tokens::obtain(app, request, ctx).await,
        (["token", "refresh"], "POST") => tokens::refresh(app, request, ctx).await,
        (["auth", "logout"], "POST") => tokens::logout(app, request, ctx).await,
        (["me"], "GET") => tokens::me(app, request, ctx).await,
        (["me", "password"], "POST") => users::change_own_password(app, request, ctx).await,
        (["api-keys"], "GET") => api_keys::list(app, request, ctx).await,
        (["api-keys"], "POST") => api_keys::create(app, request, ctx).await,
        (["api-keys", id], "DELETE") => api_keys::revoke(app, request, ctx, id).await,
        (["users"], "GET") => users::list(app, request, ctx).await,
        (["users"], "POST") => users::create(app, request, ctx).await,
        (["users", id], "GET") => users::get(app, request, ctx, id).await,
        (["users", id], "PATCH") => users::update(app, request, ctx, id).await,
        (["users", id], "DELETE") => users::delete(app, request, ctx, id).await,
        (["permissions"], "GET") => users::permissions(app, request, ctx).await,
        (["audit"], "GET") => audit::list(app, request, ctx).await,
        (path, _) => Err(match allowed_methods(path) {
            Some(allow) => ApiError::MethodNotAllowed(allow),
            None => ApiError::NotFound,
        }),
    };
    result.unwrap_or_else(ApiError::into_response)
}

/// Every route, as the OpenAPI document names it; `{id}` stands for one path segment.
pub const ROUTES: &[(&str, &str)] = &[
    ("/token/", "POST"),
    ("/auth/login/", "POST"),
    ("/token/refresh/", "POST"),
    ("/auth/logout/", "POST"),
    ("/me/", "GET"),
    ("/me/password/", "POST"),
    ("/api-keys/", "GET"),
    ("/api-keys/", "POST"),
    ("/api-keys/{id}/", "DELETE"),
    ("/users/", "GET"),
    ("/users/", "POST"),
    ("/users/{id}/", "GET"),
    ("/users/{id}/", "PATCH"),
    ("/users/{id}/", "DELETE"),
    ("/permissions/", "GET"),
    ("/audit/", "GET"),
];

/// The methods the routes with this path allow, for a 405; `None` when no route has it.
fn allowed_methods(segments: &[&str]) -> Option<String> {
    let allowed: Vec<&str> = ROUTES
        .iter()
        .filter(|(template, _)| {
            let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
            parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(segments)
                    .all(|(part, segment)| part == segment || part.starts_with('{'))
        })
        .map(|(_, method)| *method)
        .collect();
    (!allowed.is_empty()).then(|| allowed.join(", "))
}

/// The authenticated caller, or 401.
async fn caller(
    app: &App,
    headers: &HeaderMap,
    ctx: &mut RequestContext,
) -> Result<Principal, ApiError> {
    let principal = app
        .authenticate(headers, ctx)
        .await?
        .ok_or(ApiError::NotAuthenticated)?;
    ctx.principal = Some(principal.clone());
    Ok(principal)
}

async fn admin(
    app: &App,
    headers: &HeaderMap,
    ctx: &mut RequestContext,
) -> Result<Principal, ApiError> {
    let principal = caller(app, headers, ctx).await?;
    if !principal.user.is_admin {
        return Err(ApiError::Forbidden);
    }
    Ok(principal)
}

/// Who acts, for the audit events the store writes with a change.
fn actor(ctx: &RequestContext, principal: &Principal) -> Actor {
    Actor {
        name: principal.user.username.clone(),
        client_ip: Some(ctx.client_ip.to_string()),
    }
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
