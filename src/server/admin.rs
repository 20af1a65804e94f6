//! The two small plain-HTTP listeners beside the gateway: the admin listener (`/metrics`,
//! kept off the public interface) and the optional HTTP→HTTPS redirect.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HOST, LOCATION};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::App;
use crate::error::ApiError;
use crate::response::{Body, empty, json, text};

type Handler = Arc<dyn Fn(Request<Incoming>) -> Response<Body> + Send + Sync>;

/// `/metrics` in the Prometheus text format, and `/healthz`.
pub async fn serve_admin(app: App, listener: TcpListener, shutdown: watch::Receiver<bool>) {
    let handler: Handler =
        Arc::new(
            move |request| match (request.method(), request.uri().path()) {
                (&Method::GET, "/metrics") => text(
                    StatusCode::OK,
                    "text/plain; version=0.0.4",
                    app.metrics.render(),
                ),
                (&Method::GET, "/healthz") => {
                    json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
                }
                _ => ApiError::NotFound.into_response(),
            },
        );
    serve_plain(listener, handler, shutdown).await;
}

/// Answers every request with a permanent redirect to the same path over HTTPS on
/// `https_port`.
pub async fn serve_redirect(
    listener: TcpListener,
    https_port: u16,
    shutdown: watch::Receiver<bool>,
) {
    let handler: Handler = Arc::new(move |request| {
        let host = request
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<http::uri::Authority>().ok());
        let Some(host) = host else {
            return ApiError::bad_request("A Host header is required.").into_response();
        };
        let port = if https_port == 443 {
            String::new()
        } else {
            format!(":{https_port}")
        };
        let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let location = format!("https://{}{port}{target}", host.host());
        let mut response = empty(StatusCode::PERMANENT_REDIRECT);
        if let Ok(location) = location.parse() {
            response.headers_mut().insert(LOCATION, location);
        }
        response
    });
    serve_plain(listener, handler, shutdown).await;
}

async fn serve_plain(listener: TcpListener, handler: Handler, mut shutdown: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let handler = handler.clone();
        let service = service_fn(move |request| {
            let response = handler(request);
            async move { Ok::<_, Infallible>(response) }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}
