//! The accounts API (DESIGN §2), served by the gateway itself and never forwarded.
//! Paths and messages follow the Dispatcharr accounts API so its clients work unchanged.
//! One file per resource; this one routes and holds what they share.

mod api_keys;
mod audit;
pub mod body;
mod tokens;
mod users;

use http::{HeaderMap, Request, Response};

use crate::app::App;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::gateway::RequestContext;
use crate::response::Body;
use crate::store::NewAuditEvent;

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
        (known, _) if is_known_path(known) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound),
    };
    result.unwrap_or_else(ApiError::into_response)
}

fn is_known_path(segments: &[&str]) -> bool {
    matches!(
        segments,
        ["token"]
            | ["auth", "login"]
            | ["token", "refresh"]
            | ["auth", "logout"]
            | ["me"]
            | ["api-keys"]
            | ["api-keys", _]
            | ["users"]
            | ["users", _]
            | ["permissions"]
            | ["audit"]
    )
}

/// The authenticated caller, or 401.
async fn caller(
    app: &App,
    headers: &HeaderMap,
    ctx: &mut RequestContext,
) -> Result<Principal, ApiError> {
    let principal = app
        .authenticate(headers)
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

/// Records a security event. The audit trail must not turn a completed action into an error
/// response, so a failed write is logged instead.
async fn audit(
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
