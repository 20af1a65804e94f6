//! THE request path. One request, top to bottom:
//!
//! ```text
//! context → normalize path → route ─┬─ health, JWKS           (answered here)
//!                                   ├─ accounts API           (answered here, never forwarded)
//!                                   └─ proxy: strip forged identity → authenticate → authorize
//!                                             → rewrite headers → inject identity → forward
//! → response headers → access log
//! ```
//!
//! Every early exit returns its response where it happens; every error becomes a response in
//! one place (`error.rs`).

pub mod headers;
pub mod path;
pub mod rules;
pub mod upstream;

use std::borrow::Cow;
use std::time::Instant;

use bytes::Bytes;
use http::header::{HOST, HeaderValue, STRICT_TRANSPORT_SECURITY};
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;

use crate::app::App;
use crate::auth::session;
use crate::error::ApiError;
use crate::openapi;
use crate::request::{ConnectionInfo, Peer, RequestContext, is_navigation};
use crate::response::{Body, BoxError, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Healthz,
    Readyz,
    Jwks,
    Schema,
    Swagger,
    Ui,
    Accounts,
    Proxy,
}

impl Route {
    fn as_str(self) -> &'static str {
        match self {
            Route::Healthz | Route::Readyz => "health",
            Route::Jwks => "jwks",
            Route::Schema | Route::Swagger => "docs",
            Route::Accounts => "accounts",
            Route::Ui => "ui",
            Route::Proxy => "proxy",
        }
    }
}

impl App {
    /// Answers `request`; `pools` are the upstream connections of the worker serving it.
    pub async fn handle<B>(
        &self,
        request: Request<B>,
        conn: ConnectionInfo,
        pools: &upstream::Pools,
    ) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let mut ctx = self.context(&request, conn);
        let method = request.method().clone();
        // The path every later phase sees; one that cannot be normalized goes no further. Nor
        // does a method in lower case: Django upper-cases it, the rules would not.
        let uri = request.uri().clone();
        let lower_case_method = method.as_str().bytes().any(|b| b.is_ascii_lowercase());
        let (route, response) = match path::normalize(uri.path()) {
            _ if lower_case_method => (
                Route::Proxy,
                ApiError::bad_request("Malformed request method.").into_response(),
            ),
            Err(_) => (
                Route::Proxy,
                ApiError::bad_request("Malformed request path.").into_response(),
            ),
            Ok(path) => {
                let route = self.route(&path);
                let response = match route {
                    Route::Healthz => json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
                    Route::Readyz => self.readiness().await,
                    Route::Jwks => self.jwks(),
                    Route::Schema => self.docs.schema(),
                    Route::Swagger => self.docs.swagger(&path),
                    Route::Ui => crate::ui::handle(self, boxed(request), &path, &mut ctx).await,
                    Route::Accounts => {
                        crate::accounts::handle(self, boxed(request), &path, &mut ctx).await
                    }
                    Route::Proxy => self
                        .proxy(boxed(request), path, &mut ctx, pools)
                        .await
                        .unwrap_or_else(ApiError::into_response),
                };
                (route, response)
            }
        };
        self.finish(response, route, &method, uri.path(), &ctx)
    }

    fn context<B>(&self, request: &Request<B>, conn: ConnectionInfo) -> RequestContext {
        let trusted = &self.config.server.trusted_proxies;
        let peer = Peer::with_header(conn.peer.ip(), conn.peer_ip.clone(), trusted);
        let site =
            session::SiteOrigin::of(request.headers(), request.uri(), conn.tls, peer.trusted);
        RequestContext {
            request_id: request_id(request.headers(), &self.identity.request_id, peer.trusted),
            client_ip: peer.client_ip(request.headers(), trusted),
            peer,
            tls: conn.tls,
            https: site.https,
            same_origin: session::same_origin_or_safe(request.method(), request.headers(), &site),
            principal: None,
            started: Instant::now(),
        }
    }

    fn route(&self, path: &str) -> Route {
        let prefix = &self.config.auth.api_prefix;
        let docs = self.config.server.api_docs;
        let ui = &self.config.ui;
        match path {
            "/healthz" => Route::Healthz,
            "/readyz" => Route::Readyz,
            "/.well-known/jwks.json" => Route::Jwks,
            "/api/schema/" | "/api/schema" if docs => Route::Schema,
            p if ui.enabled
                && p.strip_prefix(ui.path.as_str())
                    .is_some_and(|r| r.is_empty() || r.starts_with('/')) =>
            {
                Route::Ui
            }
            p if docs && (p == "/api/swagger" || p.starts_with(openapi::SWAGGER_PATH)) => {
                Route::Swagger
            }
            p if p
                .strip_prefix(prefix.as_str())
                .is_some_and(|r| r.is_empty() || r.starts_with('/')) =>
            {
                Route::Accounts
            }
            _ => Route::Proxy,
        }
    }

    /// The proxy path. Each phase's position is deliberate; see the comment on each.
    async fn proxy(
        &self,
        mut request: Request<Body>,
        path: Cow<'_, str>,
        ctx: &mut RequestContext,
        pools: &upstream::Pools,
    ) -> Result<Response<Body>, ApiError> {
        // TRACE echoes the request back, with whatever the gateway added to it.
        if matches!(request.method().as_str(), "TRACE" | "TRACK") {
            return Err(ApiError::MethodNotAllowed(PROXIED_METHODS.into()));
        }
        // First, before anything reads the headers: the upstream must never see an identity
        // the client wrote, nor be told by the client that the request was another one.
        headers::strip_forged_identity(request.headers_mut(), &self.identity);
        headers::strip_routing_overrides(request.headers_mut(), &ctx.peer);
        let overrides = self.method_overrides(&mut request)?;

        // A presented credential is checked even on a public route, and a failing one is
        // final: it never degrades to anonymous.
        let authenticated = self.authenticate(request.headers(), ctx).await;
        if let Err(ApiError::InvalidToken) = authenticated
            && crate::sessions::is_expired_session_navigation(self, &request, ctx.https)
        {
            return Ok(crate::sessions::redirect_to_login(
                self,
                request.uri(),
                ctx.https,
            ));
        }
        ctx.principal = authenticated?;

        // Rules judge the normalized path alone, never the query or a client header, once for
        // the method and once for each override the upstream would honour. A browser that is
        // not signed in is sent to the sign-in page instead of a JSON 401.
        let authorized = self.rules.load().authorize(
            request.method(),
            &overrides,
            &path,
            ctx.principal.as_ref(),
        );
        match authorized {
            Err(ApiError::NotAuthenticated)
                if self.config.ui.enabled && is_navigation(&request) =>
            {
                return Ok(crate::sessions::redirect_to_login(
                    self,
                    request.uri(),
                    ctx.https,
                ));
            }
            other => other?,
        }

        // Rewrite for the upstream. Hop-by-hop removal precedes injection so `Connection`
        // cannot name the injected identity away; of the upgrades only WebSocket survives it.
        let websocket = headers::requests_websocket(request.headers());
        let may_carry_trailers = request.version() == http::Version::HTTP_2
            || request
                .headers()
                .contains_key(http::header::TRANSFER_ENCODING);
        let host = headers::client_host(request.headers(), request.uri());
        let headers = request.headers_mut();
        headers::remove_hop_by_hop(headers);
        if websocket {
            headers::restore_websocket_upgrade(headers);
        }
        if !self.config.upstream.forward_credentials {
            headers::remove_consumed_credentials(headers);
            self.cookies.remove_from_request(headers);
        }
        let proto = if ctx.tls { "https" } else { "http" };
        headers::set_forwarded(headers, &ctx.peer, proto, host.clone());
        match (self.config.upstream.preserve_host, host) {
            (true, Some(host)) => {
                headers.insert(HOST, host);
            }
            _ => {
                headers.remove(HOST);
            }
        }

        // Last: the identity, which nothing after this point can remove.
        headers::inject_identity(
            headers,
            &self.identity,
            ctx.principal.as_ref(),
            &ctx.request_id,
        );
        // Trailers would arrive after every check above: a trailer section is a second set of
        // headers nobody judged.
        if may_carry_trailers {
            request = request.map(without_trailers);
        }

        let target = forward_target(request.uri(), path)?;
        let mut response = self
            .upstream
            .forward(request, target, websocket, pools)
            .await
            .map_err(|error| {
                tracing::warn!(%error, request_id = ?ctx.request_id, "upstream request failed");
                match error {
                    upstream::UpstreamError::Timeout(_) => ApiError::GatewayTimeout,
                    _ => ApiError::BadGateway,
                }
            })?;
        // The upstream may not set, replace or clear the gateway's own cookies.
        self.cookies.remove_from_response(response.headers_mut());
        Ok(response)
    }

    /// The methods, besides its own, that the upstream would take the request for: a `_method`
    /// query parameter (Symfony, Laravel) always counts; override headers are removed, or with
    /// `upstream.method_override` kept and counted. Disagreeing override headers are a 400.
    fn method_overrides(&self, request: &mut Request<Body>) -> Result<Vec<Method>, ApiError> {
        let mut overrides = Vec::new();
        if self.config.upstream.method_override {
            let named = headers::override_methods(request.headers())
                .map_err(|_| ApiError::bad_request("Conflicting method override headers."))?;
            overrides.extend(named);
        } else {
            headers::strip_method_overrides(request.headers_mut());
        }
        overrides.extend(headers::query_override(request.uri().query()));
        Ok(overrides)
    }

    async fn readiness(&self) -> Response<Body> {
        let (store, upstream) = tokio::join!(self.store.ping(), self.upstream.reachable());
        let store = match store {
            Err(_) => "unavailable",
            Ok(()) if !self.store.writable() => "read_only",
            Ok(()) => "ok",
        };
        let status = if store == "ok" && upstream {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let word = |ok: bool| if ok { "ok" } else { "unavailable" };
        // Reported, not required: without the feed, caches still expire within their TTL.
        let changes = if self.store.following_changes() {
            "following"
        } else {
            "lagging"
        };
        json(
            status,
            &serde_json::json!({"store": store, "upstream": word(upstream), "changes": changes}),
        )
    }

    fn jwks(&self) -> Response<Body> {
        match self.auth.tokens.jwks() {
            Some(jwks) => json(StatusCode::OK, &jwks),
            None => ApiError::NotFound.into_response(),
        }
    }

    /// Response headers every answer carries, then one access-log line and the metrics.
    fn finish(
        &self,
        mut response: Response<Body>,
        route: Route,
        method: &Method,
        path: &str,
        ctx: &RequestContext,
    ) -> Response<Body> {
        let headers = response.headers_mut();
        headers.insert(self.identity.request_id.clone(), ctx.request_id.clone());
        // Over HTTPS as the browser sees it, which includes a trusted TLS-terminating proxy.
        if ctx.https
            && let Some(hsts) = &self.hsts
        {
            headers.insert(STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
        // A response that sets the session cookie itself (sign-in, password change) knows best.
        if !headers.contains_key(http::header::SET_COOKIE)
            && let Some(cookie) = ctx
                .principal
                .as_ref()
                .and_then(|p| crate::sessions::renewed_cookie(self, p, ctx.https))
        {
            headers.append(http::header::SET_COOKIE, cookie);
        }
        let status = response.status();
        self.metrics.request(route.as_str(), status);
        let principal = ctx.principal.as_ref();
        self.access_log.write(&crate::access_log::Entry {
            request_id: ctx.request_id.to_str().unwrap_or(""),
            client: ctx.client_ip,
            method: method.as_str(),
            path,
            status: status.as_u16(),
            user: principal.map(|p| p.user.username.as_str()),
            auth: principal.map(|p| p.method.as_str()),
            latency_us: ctx.started.elapsed().as_micros() as u64,
        });
        response
    }
}

/// What a proxied request is answered with when the gateway itself refuses its method.
const PROXIED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// The body with its trailers, if any, turned into nothing.
fn without_trailers(body: Body) -> Body {
    body.map_frame(|frame| match frame.into_data() {
        Ok(data) => http_body::Frame::data(data),
        Err(_) => http_body::Frame::data(Bytes::new()),
    })
    .boxed_unsync()
}

/// Boxes any request body into the one body type the gateway passes around.
fn boxed<B>(request: Request<B>) -> Request<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    request.map(|body| body.map_err(|e| -> BoxError { e.into() }).boxed_unsync())
}

/// The path and query sent upstream: the normalized path (what the rules judged) and the
/// query unchanged.
fn forward_target(uri: &http::Uri, path: Cow<'_, str>) -> Result<PathAndQuery, ApiError> {
    match (&path, uri.path_and_query()) {
        (Cow::Borrowed(_), Some(original)) => Ok(original.clone()),
        _ => {
            let target = match uri.query() {
                Some(query) => format!("{path}?{query}"),
                None => path.to_string(),
            };
            target
                .parse()
                .map_err(|_| ApiError::bad_request("Malformed request path."))
        }
    }
}

/// A request id from a trusted proxy is kept so one id follows the request end to end;
/// otherwise a fresh one.
fn request_id(headers: &HeaderMap, name: &http::HeaderName, trusted_peer: bool) -> HeaderValue {
    if trusted_peer {
        let incoming = headers.get(name).filter(|v| {
            let bytes = v.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= 128
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
        });
        if let Some(incoming) = incoming {
            return incoming.clone();
        }
    }
    let id = uuid::Uuid::new_v4();
    let mut buffer = uuid::Uuid::encode_buffer();
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buffer))
        .unwrap_or_else(|_| HeaderValue::from_static("-"))
}
