//! Test harness: the real gateway on `127.0.0.1:0` over real TLS, in front of a real HTTP
//! upstream that records every request it receives, in a temporary data directory.

#![allow(dead_code)]

pub mod browser;
pub mod postgres;
pub mod process;
pub mod raw;
pub mod tcp_proxy;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis::{Config, Gateway, Listeners};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// What the upstream received.
#[derive(Debug, Clone)]
pub struct Received {
    pub version: http::Version,
    pub method: String,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The trailer section of the body, if it had one.
    pub trailers: Option<HeaderMap>,
}

/// A real HTTP/1.1 + h2c server on an ephemeral port that records every request.
/// `/slow` answers after 3 s; everything else answers 200 at once with the path it saw, and
/// with a `set-cookie` for every `x-test-set-cookie` the request carried.
#[derive(Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| record(log.clone(), request));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream { addr, received }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    pub fn last(&self) -> Received {
        self.received()
            .pop()
            .expect("the upstream received nothing")
    }
}

async fn record(
    log: Arc<Mutex<Vec<Received>>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let (body, trailers) = match body.collect().await {
        Ok(collected) => {
            let trailers = collected.trailers().cloned();
            (collected.to_bytes(), trailers)
        }
        Err(_) => (Bytes::new(), None),
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    log.lock().unwrap().push(Received {
        version: parts.version,
        method: parts.method.to_string(),
        path_and_query: path.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
        trailers,
    });
    if parts.uri.path() == "/slow" {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let user = parts
        .headers
        .get("x-authenticated-user")
        .and_then(|v| v.to_str().ok());
    let method = parts
        .headers
        .get("x-authenticated-method")
        .and_then(|v| v.to_str().ok());
    let reply = json!({"upstream": "test", "path": path, "body_len": body.len(), "user": user, "method": method});
    let mut response = Response::new(Full::new(Bytes::from(reply.to_string())));
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
        .headers_mut()
        .insert("x-upstream-reply", "yes".parse().unwrap());
    // A test asks for the cookies the upstream should try to set.
    for cookie in parts.headers.get_all("x-test-set-cookie") {
        response.headers_mut().append("set-cookie", cookie.clone());
    }
    Ok(response)
}

/// A gateway running in this process on 127.0.0.1:0.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub upstream: Upstream,
    pub config: Config,
    pub client: reqwest::Client,
    pub dir: Arc<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<()>>,
}

/// The configuration tests start from: TLS self-signed, a known admin password, login
/// throttling loose enough for tests that log in often.
pub fn test_config(data_dir: &Path, upstream: &Upstream) -> Config {
    let mut config = Config {
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    };
    config.upstream.url = upstream.url();
    config.bootstrap.admin_password = Some(ADMIN_PASSWORD.to_string());
    config.rate_limit.login_per_ip_burst = 1000;
    config.rate_limit.login_per_username_burst = 1000;
    config.rate_limit.login_per_account_burst = 1000;
    config
}

impl TestGateway {
    pub async fn start() -> TestGateway {
        TestGateway::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestGateway {
        let upstream = Upstream::start().await;
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let mut config = test_config(dir.path(), &upstream);
        adjust(&mut config);
        TestGateway::start_in(config, upstream, dir).await
    }

    /// Starts on an existing data directory (a restart).
    pub async fn start_in(
        config: Config,
        upstream: Upstream,
        dir: Arc<tempfile::TempDir>,
    ) -> TestGateway {
        config.validate().expect("test configuration is valid");
        let main = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = main.local_addr().unwrap();
        let admin_addr = admin.local_addr().unwrap();
        let gateway = Gateway::start(config.clone(), portcullis::AccessLog::disabled())
            .await
            .expect("gateway starts");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let listeners = Listeners {
            main,
            admin: Some(admin),
            redirect: None,
        };
        let serving = tokio::spawn(gateway.serve(listeners, async {
            let _ = stopped.await;
        }));
        let tls = config.server.tls != portcullis::config::TlsMode::Off;
        TestGateway {
            addr,
            admin_addr,
            client: client_for(tls.then(|| config.tls_paths().0).as_deref()),
            upstream,
            config,
            dir,
            shutdown: Some(shutdown),
            serving: Some(serving),
        }
    }

    /// Stops serving and waits for the drain; the data directory stays.
    pub async fn stop(mut self) -> (Config, Upstream, Arc<tempfile::TempDir>) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(serving) = self.serving.take() {
            let _ = serving.await;
        }
        (self.config.clone(), self.upstream.clone(), self.dir.clone())
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.config.server.tls == portcullis::config::TlsMode::Off {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://localhost:{}{path}", self.addr.port())
    }

    pub fn api(&self, path: &str) -> String {
        self.url(&format!("{}{path}", self.config.auth.api_prefix))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// Logs in and returns (access, refresh).
    pub async fn login(&self, username: &str, password: &str) -> (String, String) {
        let response = self
            .client
            .post(self.api("/token/"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "login as {username}");
        let body: Value = response.json().await.unwrap();
        (
            body["access"].as_str().unwrap().to_string(),
            body["refresh"].as_str().unwrap().to_string(),
        )
    }

    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_USER, ADMIN_PASSWORD).await.0
    }

    /// Creates a user through the API and returns its id.
    pub async fn create_user(
        &self,
        admin: &str,
        username: &str,
        password: &str,
        roles: &[&str],
    ) -> u64 {
        let response = self
            .client
            .post(self.api("/users/"))
            .bearer_auth(admin)
            .json(&json!({"username": username, "password": password, "roles": roles}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().await.unwrap()["id"]
            .as_u64()
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    pub async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.admin_addr);
        client_for(None)
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A client that trusts exactly the gateway's certificate (or plain HTTP when `None`).
pub fn client_for(cert: Option<&Path>) -> reqwest::Client {
    // reqwest is built without a TLS provider of its own; plain-HTTP clients still need one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .no_proxy();
    let builder = match cert {
        Some(cert) => {
            builder.tls_backend_preconfigured(raw::tls_client_config(cert, &[b"h2", b"http/1.1"]))
        }
        None => builder,
    };
    builder.build().unwrap()
}

/// The JSON body and status of a response.
pub async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// Asserts a `{"detail": …}` error with the exact status and message.
pub async fn assert_detail(response: reqwest::Response, status: StatusCode, detail: &str) {
    let (got, body) = json_of(response).await;
    assert_eq!(got, status, "body: {body}");
    assert_eq!(body["detail"], detail, "status {got}");
}

/// Sends a request and keeps the one thing a test step looks at. A transport error fails the
/// test: the gateway was supposed to answer.
pub trait Fetch {
    fn fetch_json(self) -> impl Future<Output = Value> + Send;
    fn fetch_status(self) -> impl Future<Output = StatusCode> + Send;
}

impl Fetch for reqwest::RequestBuilder {
    async fn fetch_json(self) -> Value {
        self.send().await.unwrap().json().await.unwrap()
    }

    async fn fetch_status(self) -> StatusCode {
        self.send().await.unwrap().status()
    }
}
