//! The upstream: a pooled hyper-util client, timeouts mapped to 502/504, and the tunnel for
//! protocol upgrades (WebSocket).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use crate::config::UpstreamConfig;
use crate::gateway::headers;
use crate::metrics::Metrics;
use crate::response::{Body, BoxError};

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect to the upstream: {0}")]
    Connect(String),
    #[error("the upstream did not answer within {0:?}")]
    Timeout(Duration),
    #[error("upstream request failed: {0}")]
    Failed(String),
}

#[derive(Clone)]
pub struct Upstream {
    /// Makes each connection worker its own [`Pools`].
    connector: HttpConnector,
    http2: bool,
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
    scheme: Scheme,
    authority: Authority,
    response_timeout: Duration,
    connect_timeout: Duration,
    version: Version,
    metrics: Metrics,
}

impl Upstream {
    /// From validated configuration (`url` was checked to be `http://host:port`).
    pub fn new(config: &UpstreamConfig, metrics: Metrics) -> Result<Upstream, UpstreamError> {
        let uri: Uri = config
            .url
            .parse()
            .map_err(|_| UpstreamError::Failed("bad url".into()))?;
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| UpstreamError::Failed("no host".into()))?;
        let connect_timeout = Duration::from_secs(config.connect_timeout_secs);
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        Ok(Upstream {
            connector,
            http2: config.http2,
            pool_idle_timeout: Duration::from_secs(config.pool_idle_timeout_secs),
            pool_max_idle_per_host: config.pool_max_idle_per_host,
            scheme: Scheme::HTTP,
            authority,
            response_timeout: Duration::from_secs(config.response_timeout_secs),
            connect_timeout,
            version: if config.http2 {
                Version::HTTP_2
            } else {
                Version::HTTP_11
            },
            metrics,
        })
    }

    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// How many connection pools there are: one per connection worker.
    /// A connection worker's own connections to the upstream: a new TCP handshake per request
    /// would cost more than all the authentication work, and a pooled connection driven by
    /// another worker's thread would bring back the cross-thread wake-ups the workers exist to
    /// avoid. `tunnels` counts what outlives a request on that worker (WebSocket tunnels).
    pub fn pools(&self, tunnels: Option<Arc<AtomicUsize>>) -> Pools {
        let client = |idle: usize| {
            Client::builder(TokioExecutor::new())
                .http2_only(self.http2)
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(self.pool_idle_timeout)
                .pool_max_idle_per_host(idle)
                .build(self.connector.clone())
        };
        Pools {
            pooled: client(self.pool_max_idle_per_host),
            fresh: client(0),
            tunnels,
        }
    }

    /// Sends `request` to `path_and_query` on the upstream and returns its response with the
    /// body streaming. A 101 switching to WebSocket, answering a WebSocket upgrade, starts the
    /// tunnel; any other 101 is refused, so no connection is ever handed over to a protocol
    /// the gateway does not police.
    pub async fn forward(
        &self,
        mut request: Request<Body>,
        path_and_query: PathAndQuery,
        websocket: bool,
        pools: &Pools,
    ) -> Result<Response<Body>, UpstreamError> {
        let client_side = websocket.then(|| hyper::upgrade::on(&mut request));
        *request.uri_mut() = Uri::from_parts({
            let mut parts = http::uri::Parts::default();
            parts.scheme = Some(self.scheme.clone());
            parts.authority = Some(self.authority.clone());
            parts.path_and_query = Some(path_and_query);
            parts
        })
        .map_err(|e| UpstreamError::Failed(e.to_string()))?;
        // Whatever the client spoke, the pooled upstream connection speaks the configured one.
        *request.version_mut() = self.version;

        let started = Instant::now();
        let replay = Replay::of(&request);
        let mut sent =
            tokio::time::timeout(self.response_timeout, pools.pooled.request(request)).await;
        // A kept-alive connection the upstream closed just as it was reused fails before any
        // response byte (Node and uvicorn close idle ones after 5 s, gunicorn after 2 s). A
        // request that can be sent again unchanged is, once, on a connection of its own.
        if let (Ok(Err(error)), Some(replay)) = (&sent, replay)
            && !error.is_connect()
        {
            tracing::debug!(%error, "reused upstream connection failed; retrying on a new one");
            let left = self.response_timeout.saturating_sub(started.elapsed());
            sent = tokio::time::timeout(left, pools.fresh.request(replay.request())).await;
        }
        let mut response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                self.metrics.upstream("error", started.elapsed());
                return Err(if e.is_connect() {
                    UpstreamError::Connect(e.to_string())
                } else {
                    UpstreamError::Failed(e.to_string())
                });
            }
            Err(_) => {
                self.metrics.upstream("timeout", started.elapsed());
                return Err(UpstreamError::Timeout(self.response_timeout));
            }
        };
        self.metrics.upstream("ok", started.elapsed());

        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let to_websocket = response
                .headers()
                .get(http::header::UPGRADE)
                .is_some_and(headers::is_websocket);
            if client_side.is_none() || !to_websocket {
                return Err(UpstreamError::Failed(
                    "the upstream switched protocols unasked, or to one other than WebSocket"
                        .into(),
                ));
            }
        }
        let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        match (switching, client_side) {
            (true, Some(client_side)) => {
                let upstream_side = hyper::upgrade::on(&mut response);
                // The tunnel outlives the HTTP connection: it still weighs on its worker.
                let counted = pools.tunnels.clone().map(TunnelCount::new);
                tokio::spawn(async move {
                    let _counted = counted;
                    tunnel(client_side, upstream_side).await;
                });
                headers::remove_hop_by_hop(response.headers_mut());
                headers::restore_websocket_upgrade(response.headers_mut());
            }
            _ => headers::remove_hop_by_hop(response.headers_mut()),
        }
        Ok(response.map(|body| body.map_err(|e| -> BoxError { e.into() }).boxed_unsync()))
    }

    /// Whether a TCP connection to the upstream can be opened, for `/readyz`.
    pub async fn reachable(&self) -> bool {
        let addr = self.authority.as_str().to_string();
        let connect = tokio::net::TcpStream::connect(addr);
        matches!(
            tokio::time::timeout(self.connect_timeout, connect).await,
            Ok(Ok(_))
        )
    }
}

/// One worker's connections to the upstream, made by [`Upstream::pools`].
pub struct Pools {
    pooled: Client<HttpConnector, Body>,
    /// Keeps no idle connection, so each request opens one: where a retry goes.
    fresh: Client<HttpConnector, Body>,
    /// The worker's count of what it serves, which a tunnel joins for as long as it lives.
    tunnels: Option<Arc<AtomicUsize>>,
}

/// Counts one tunnel on its worker for as long as it lives, however its task ends.
struct TunnelCount(Arc<AtomicUsize>);

impl TunnelCount {
    fn new(count: Arc<AtomicUsize>) -> TunnelCount {
        count.fetch_add(1, Ordering::Relaxed);
        TunnelCount(count)
    }
}

impl Drop for TunnelCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What it takes to send a request again: only one whose method is idempotent (RFC 9110
/// §9.2.2) and whose body is empty, so nothing was consumed that could not be replayed. A POST,
/// or any streamed body, is never sent twice.
struct Replay {
    method: http::Method,
    uri: Uri,
    version: Version,
    headers: http::HeaderMap,
}

impl Replay {
    fn of(request: &Request<Body>) -> Option<Replay> {
        use http::Method;
        let idempotent = matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
        );
        let empty = http_body::Body::is_end_stream(request.body());
        let upgrade = request.headers().contains_key(http::header::UPGRADE);
        (idempotent && empty && !upgrade).then(|| Replay {
            method: request.method().clone(),
            uri: request.uri().clone(),
            version: request.version(),
            headers: request.headers().clone(),
        })
    }

    fn request(self) -> Request<Body> {
        let mut request = Request::new(crate::response::full(bytes::Bytes::new()));
        *request.method_mut() = self.method;
        *request.uri_mut() = self.uri;
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers;
        request
    }
}

/// Copies bytes both ways between the upgraded client and upstream connections.
async fn tunnel(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(error) => {
            tracing::debug!(%error, "upgrade did not complete");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(%error, "upgraded connection ended");
    }
}
