//! The request path without the client's socket: header rewriting alone, and a whole request
//! through `App::handle` to a real upstream on loopback, and the time a failed login takes for
//! a known and an unknown username. Run with `cargo bench --bench gateway`.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis::config::HeaderNamesConfig;
use portcullis::gateway::headers::{self, IdentityHeaders};
use portcullis::request::ConnectionInfo;
use portcullis::request::Peer;
use portcullis::{App, Config, Gateway};

/// The headers a browser sends with an ordinary request.
fn browser_headers(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", "app.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("accept-language", "en-GB,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("connection", "keep-alive"),
        ("cookie", "theme=dark; _ga=GA1.2.1234567890.1234567890"),
        ("upgrade-insecure-requests", "1"),
        ("x-authenticated-user", "forged"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    headers
}

fn header_rewriting(c: &mut Criterion) {
    let identity = IdentityHeaders::new(&HeaderNamesConfig::default()).unwrap();
    let peer = Peer::new("192.0.2.10".parse().unwrap(), &[]);
    let request_id = HeaderValue::from_static("0b5e1c4e-4d7e-4a57-9d8c-1b8f1e2a3c4d");
    let template = browser_headers("eyJhbGciOiJIUzI1NiJ9.e30.sig");
    c.bench_function("headers/strip_rewrite_inject", |b| {
        b.iter_batched(
            || template.clone(),
            |mut h| {
                headers::strip_forged_identity(&mut h, &identity);
                headers::strip_routing_overrides(&mut h, &peer);
                headers::remove_hop_by_hop(&mut h);
                headers::remove_consumed_credentials(&mut h);
                headers::set_forwarded(
                    &mut h,
                    &peer,
                    "https",
                    Some(HeaderValue::from_static("app.example.com")),
                );
                headers::inject_identity(&mut h, &identity, None, &request_id);
                h
            },
            BatchSize::SmallInput,
        )
    });
}

/// A minimal upstream on loopback: 200 with a short body.
async fn upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = service_fn(|_req| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn whole_request(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (app, token, key) = runtime.block_on(async {
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.upstream.url = format!("http://{}", upstream().await);
        config.bootstrap.admin_password = Some("bench-admin-password".into());
        let app: App = Gateway::start(config, portcullis::AccessLog::disabled())
            .await
            .unwrap()
            .app;
        let login = Request::post("/api/accounts/token/")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(
                br#"{"username":"admin","password":"bench-admin-password"}"#,
            )))
            .unwrap();
        let conn = ConnectionInfo::new("127.0.0.1:40000".parse().unwrap(), true);
        let pools = app.upstream.pools(None);
        let body = app
            .handle(login, conn.clone(), &pools)
            .await
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        let tokens: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let key = Request::post("/api/accounts/api-keys/")
            .header(
                "authorization",
                format!("Bearer {}", tokens["access"].as_str().unwrap()),
            )
            .body(Full::new(Bytes::new()))
            .unwrap();
        let body = app
            .handle(key, conn.clone(), &pools)
            .await
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        let key: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (
            app,
            tokens["access"].as_str().unwrap().to_string(),
            key["key"].as_str().unwrap().to_string(),
        )
    });
    let conn = ConnectionInfo::new("127.0.0.1:40000".parse().unwrap(), true);
    let pools = app.upstream.pools(None);
    let mut group = c.benchmark_group("request");
    for (name, header, value) in [
        ("jwt", "authorization", format!("Bearer {token}")),
        ("api_key", "x-api-key", key.clone()),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let mut request = Request::get("/app/items?page=2")
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                *request.headers_mut() = browser_headers("unused");
                request.headers_mut().insert(header, value.parse().unwrap());
                if header != "authorization" {
                    request.headers_mut().remove("authorization");
                }
                let response = app.handle(request, conn.clone(), &pools).await;
                assert_eq!(response.status(), 200);
                response.into_body().collect().await.unwrap()
            })
        });
    }
    group.finish();
}

/// A failed login must take the same time whether the username exists or not (unknown users
/// verify against a dummy hash). Compare the two medians; both answer the same 401 text.
fn login_failure_timing(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = runtime.block_on(async {
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.rate_limit.enabled = false;
        config.bootstrap.admin_password = Some("bench-admin-password".into());
        Gateway::start(config, portcullis::AccessLog::disabled())
            .await
            .unwrap()
            .app
    });
    let conn = ConnectionInfo::new("127.0.0.1:40000".parse().unwrap(), true);
    let pools = app.upstream.pools(None);
    let mut group = c.benchmark_group("login_failure");
    group.sample_size(30);
    for (name, username) in [("existing_user", "admin"), ("unknown_user", "nobody-here")] {
        let body = format!(r#"{{"username":"{username}","password":"wrong-password"}}"#);
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let login = Request::post("/api/accounts/token/")
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body.clone())))
                    .unwrap();
                let response = app.handle(login, conn.clone(), &pools).await;
                assert_eq!(response.status(), 401);
                let text = response.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(
                    &text[..],
                    br#"{"detail":"No active account found with the given credentials"}"#
                );
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    header_rewriting,
    whole_request,
    login_failure_timing
);
criterion_main!(benches);
