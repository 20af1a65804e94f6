//! Serving connections: the accept loop, the connection limit, the TLS handshake with its
//! timeout, HTTP/1.1 and HTTP/2 on one port, idle connections, and graceful shutdown.
//!
//! Each connection's stack, outermost first, and why it sits there:
//! - connection permit: a flood past `max_connections` is closed at accept, before any work;
//! - a connection worker (see [`workers`]): the rest of the connection's life runs on one
//!   thread, the least loaded;
//! - activity tracking: sees every byte, so a silent connection of any protocol is closed;
//! - TLS handshake under a timeout: a client that stalls the handshake holds nothing long;
//! - hyper's auto builder: HTTP/2 by ALPN (or preface), HTTP/1.1 otherwise, with the
//!   header-size limit and header-read timeout;
//! - graceful watcher: on shutdown, stops taking new requests and lets in-flight ones finish.

mod admin;
mod idle;
pub mod workers;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

pub use admin::{serve_admin, serve_redirect};
use idle::{Activity, ActivityIo};
pub use workers::Workers;

use crate::app::App;
use crate::gateway::upstream::Pools;
use crate::request::ConnectionInfo;

/// Serves `app` on `listener` until `shutdown` turns true, then drains in-flight requests
/// for up to `server.shutdown_grace_secs`.
pub async fn serve(
    app: App,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    workers: &Workers<Pools>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = &app.config.server;
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let builder = http_builder(&app);
    let graceful = GracefulShutdown::new();
    let grace = Duration::from_secs(limits.shutdown_grace_secs);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            app.metrics.connection_rejected();
            tracing::warn!(%peer, "connection limit reached; closing new connection");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            app: app.clone(),
            builder: builder.clone(),
            watcher: graceful.watcher(),
            info: ConnectionInfo::new(peer, tls.is_some()),
        };
        let tls = tls.clone();
        let handed = workers.serve(stream, move |stream, pools| async move {
            let metrics = connection.app.metrics.clone();
            metrics.connection_opened();
            connection.run(stream, tls, pools).await;
            metrics.connection_closed();
            drop(permit);
        });
        if let Err(error) = handed {
            tracing::warn!(%peer, %error, "cannot hand a connection to a worker; closing it");
        }
    }
    drop(listener);
    tracing::info!(connections = graceful.count(), "draining connections");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; closing remaining connections");
    }
}

fn http_builder(app: &App) -> auto::Builder<TokioExecutor> {
    let limits = &app.config.server;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs))
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_concurrent_streams(256)
        .keep_alive_interval(Duration::from_secs(limits.idle_timeout_secs));
    builder
}

struct Connection {
    app: App,
    builder: auto::Builder<TokioExecutor>,
    watcher: Watcher,
    info: ConnectionInfo,
}

/// What each idle connection holds is what 10 000 of them cost, so the large parts live only
/// while they are needed: the TLS handshake's state in a box dropped once it completes, each
/// request's future in a box dropped with its response (hyper would otherwise reserve room for
/// one beside every connection), and the task itself holds little more than a pointer to the
/// HTTP connection.
impl Connection {
    async fn run(self, stream: tokio::net::TcpStream, tls: Option<TlsAcceptor>, pools: Arc<Pools>) {
        let activity = Activity::new();
        let stream = ActivityIo::new(stream, activity.clone());
        let Some(acceptor) = tls else {
            return self.serve_http(stream, activity, pools).await;
        };
        let timeout = Duration::from_secs(self.app.config.server.tls_handshake_timeout_secs);
        let peer = self.info.peer;
        let handshake = Box::pin(tokio::time::timeout(timeout, acceptor.accept(stream)));
        match handshake.await {
            Ok(Ok(tls_stream)) => self.serve_http(tls_stream, activity, pools).await,
            Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    }

    /// Not `async`: an async fn would keep `io` among its arguments for as long as it runs,
    /// beside the copy inside the connection.
    fn serve_http<I>(
        self,
        io: I,
        activity: Activity,
        pools: Arc<Pools>,
    ) -> impl Future<Output = ()> + Send
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let app = self.app.clone();
        let peer = self.info.peer;
        let info = self.info;
        let service = service_fn(move |request| {
            let (app, info, pools) = (app.clone(), info.clone(), pools.clone());
            Box::pin(async move { Ok::<_, Infallible>(app.handle(request, info, &pools).await) })
        });
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let mut conn = Box::pin(self.watcher.watch(conn));
        let idle_limit = Duration::from_secs(self.app.config.server.idle_timeout_secs);
        async move {
            loop {
                tokio::select! {
                    result = &mut conn => {
                        if let Err(error) = result {
                            tracing::debug!(%peer, %error, "connection ended with an error");
                        }
                        return;
                    }
                    _ = tokio::time::sleep_until(activity.deadline(idle_limit)) => {
                        if activity.deadline(idle_limit) <= tokio::time::Instant::now() {
                            tracing::debug!(%peer, "closing idle connection");
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// Binds a listener, naming the address in the error.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}
