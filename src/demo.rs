//! The built-in echo upstream of `portcullis demo`: it answers every request with the method,
//! path and headers it received, so the tour shows exactly what an upstream behind the
//! gateway sees (identity headers in, forged ones and API keys out).

use std::collections::BTreeMap;
use std::convert::Infallible;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::response::{Body, json};

/// Serves the echo upstream on `listener` until the task is dropped.
pub async fn serve_echo(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let service = service_fn(|request| async move { Ok::<_, Infallible>(echo(request)) });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn echo(request: Request<Incoming>) -> Response<Body> {
    let mut headers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, value) in request.headers() {
        headers
            .entry(name.as_str())
            .or_default()
            .push(value.to_str().unwrap_or("<binary>"));
    }
    let headers: BTreeMap<&str, String> = headers
        .into_iter()
        .map(|(k, v)| (k, v.join(", ")))
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({
            "upstream": "portcullis demo echo",
            "method": request.method().as_str(),
            "path": request.uri().path(),
            "query": request.uri().query(),
            "headers": headers,
        }),
    )
}
