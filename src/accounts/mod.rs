//! The accounts API (DESIGN §2), served by the gateway itself and never forwarded.
//! Paths and messages follow the Dispatcharr accounts API so its clients work unchanged.
//! One file per resource; this one routes and holds what they share.

mod api_keys;
mod audit;
pub mod body;
pub mod tokens;
mod users;

use http::{Request, Response};

use crate::app::App;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::request::RequestContext;
use crate::response::Body;
use crate::store::Actor;

pub async fn handle(
    app: &App,
    request: Request<Body>,
    path: &str,
    ctx: &mut RequestContext,
) -> Response<Body> {
    let rest = path[app.config.auth.api_prefix.len()..].trim_matches('/');
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let route = ROUTES
        .iter()
        .find(|r| r.method == request.method().as_str() && r.matches(&segments));
    let Some(route) = route else {
        let error = match allowed_methods(&segments) {
            Some(allow) => ApiError::MethodNotAllowed(allow),
            None => ApiError::NotFound,
        };
        return error.into_response();
    };
    let id = route.id(&segments).unwrap_or_default().to_string();
    let answered = async {
        let caller = match route.who {
            Who::Anyone => None,
            Who::Authenticated | Who::Admin => {
                let principal = app
                    .authenticate(request.headers(), ctx)
                    .await?
                    .ok_or(ApiError::NotAuthenticated)?;
                ctx.principal = Some(principal.clone());
                if route.who == Who::Admin && !principal.user.is_admin {
                    return Err(ApiError::Forbidden);
                }
                Some(principal)
            }
        };
        route.endpoint.call(app, request, ctx, caller, &id).await
    };
    answered.await.unwrap_or_else(ApiError::into_response)
}

/// Who may call a route. Every route says which: there is no default to forget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Anyone,
    Authenticated,
    Admin,
}

/// What answers a route.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Obtain,
    Refresh,
    Logout,
    Me,
    ChangePassword,
    ListKeys,
    CreateKey,
    RevokeKey,
    ListUsers,
    CreateUser,
    GetUser,
    UpdateUser,
    DeleteUser,
    Permissions,
    Audit,
}

impl Endpoint {
    /// Runs the handler. `caller` is there for every route that is not `Who::Anyone`, checked
    /// by [`handle`] before any handler runs.
    async fn call(
        self,
        app: &App,
        request: Request<Body>,
        ctx: &mut RequestContext,
        caller: Option<Principal>,
        id: &str,
    ) -> Result<Response<Body>, ApiError> {
        use Endpoint::*;
        let caller = || caller.clone().ok_or(ApiError::NotAuthenticated);
        match self {
            Obtain => tokens::obtain(app, request, ctx).await,
            Refresh => tokens::refresh(app, request, ctx).await,
            Logout => tokens::logout(app, request, ctx, caller()?).await,
            Me => tokens::me(caller()?).await,
            ChangePassword => users::change_own_password(app, request, ctx, caller()?).await,
            ListKeys => api_keys::list(app, caller()?).await,
            CreateKey => api_keys::create(app, request, ctx, caller()?).await,
            RevokeKey => api_keys::revoke(app, ctx, id, caller()?).await,
            ListUsers => users::list(app).await,
            CreateUser => users::create(app, request, ctx, caller()?).await,
            GetUser => users::get(app, id, caller()?).await,
            UpdateUser => users::update(app, request, ctx, id, caller()?).await,
            DeleteUser => users::delete(app, ctx, id, caller()?).await,
            Permissions => users::permissions(app).await,
            Audit => audit::list(app, request).await,
        }
    }
}

/// One route of the accounts API: the table below drives dispatch, the 405 `Allow` header,
/// and the test that the OpenAPI document describes every route.
pub struct Route {
    pub method: &'static str,
    /// As the OpenAPI document names it; `{id}` stands for one path segment.
    pub path: &'static str,
    pub who: Who,
    endpoint: Endpoint,
}

const fn route(method: &'static str, path: &'static str, who: Who, endpoint: Endpoint) -> Route {
    Route {
        method,
        path,
        who,
        endpoint,
    }
}

pub const ROUTES: &[Route] = &[
    route("POST", "/token/", Who::Anyone, Endpoint::Obtain),
    route("POST", "/auth/login/", Who::Anyone, Endpoint::Obtain),
    route("POST", "/token/refresh/", Who::Anyone, Endpoint::Refresh),
    route(
        "POST",
        "/auth/logout/",
        Who::Authenticated,
        Endpoint::Logout,
    ),
    route("GET", "/me/", Who::Authenticated, Endpoint::Me),
    route(
        "POST",
        "/me/password/",
        Who::Authenticated,
        Endpoint::ChangePassword,
    ),
    route("GET", "/api-keys/", Who::Authenticated, Endpoint::ListKeys),
    route(
        "POST",
        "/api-keys/",
        Who::Authenticated,
        Endpoint::CreateKey,
    ),
    route(
        "DELETE",
        "/api-keys/{id}/",
        Who::Authenticated,
        Endpoint::RevokeKey,
    ),
    route("GET", "/users/", Who::Admin, Endpoint::ListUsers),
    route("POST", "/users/", Who::Admin, Endpoint::CreateUser),
    // Admins, or a user asking about themselves: the handler decides which.
    route("GET", "/users/{id}/", Who::Authenticated, Endpoint::GetUser),
    route("PATCH", "/users/{id}/", Who::Admin, Endpoint::UpdateUser),
    route("DELETE", "/users/{id}/", Who::Admin, Endpoint::DeleteUser),
    route(
        "GET",
        "/permissions/",
        Who::Authenticated,
        Endpoint::Permissions,
    ),
    route("GET", "/audit/", Who::Admin, Endpoint::Audit),
];

impl Route {
    fn parts(&self) -> impl Iterator<Item = &'static str> {
        self.path.trim_matches('/').split('/')
    }

    fn matches(&self, segments: &[&str]) -> bool {
        self.parts().count() == segments.len()
            && self
                .parts()
                .zip(segments)
                .all(|(part, segment)| part == *segment || part == "{id}")
    }

    /// The segment standing for `{id}`, if the route has one.
    fn id<'a>(&self, segments: &[&'a str]) -> Option<&'a str> {
        self.parts()
            .zip(segments)
            .find(|(part, _)| *part == "{id}")
            .map(|(_, segment)| *segment)
    }
}

/// The methods the routes with this path allow, for a 405; `None` when no route has it.
fn allowed_methods(segments: &[&str]) -> Option<String> {
    let allowed: Vec<&str> = ROUTES
        .iter()
        .filter(|r| r.matches(segments))
        .map(|r| r.method)
        .collect();
    (!allowed.is_empty()).then(|| allowed.join(", "))
}

/// Who acts, for the audit events the store writes with a change.
fn actor(ctx: &RequestContext, principal: &Principal) -> Actor {
    Actor {
        name: principal.user.username.clone(),
        client_ip: Some(ctx.client_ip.to_string()),
    }
}
