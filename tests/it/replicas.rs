//! Several gateway processes on one PostgreSQL: they agree on users, keys and revocations, and
//! ride out the database going away.

use std::path::Path;
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::{Value, json};

use crate::common::postgres::PgSchema;
use crate::common::process::GatewayProcess;
use crate::common::tcp_proxy::TcpProxy;
use crate::common::{Fetch, Upstream, client_for};

const PASSWORD: &str = "replica-admin-password";

/// A gateway process on the shared store and the shared signing key.
fn replica(
    dir: &Path,
    shared: &Path,
    store_url: &str,
    upstream: &Upstream,
) -> (GatewayProcess, reqwest::Client) {
    std::fs::create_dir_all(dir).unwrap();
    let env = [
        ("PORTCULLIS_ADMIN_PASSWORD", PASSWORD.to_string()),
        ("PORTCULLIS_UPSTREAM_URL", upstream.url()),
        ("PORTCULLIS_STORE_BACKEND", "postgres".to_string()),
        ("PORTCULLIS_STORE_URL", store_url.to_string()),
        (
            "PORTCULLIS_AUTH_SIGNING_KEY_FILE",
            shared.join("jwt.key").display().to_string(),
        ),
    ];
    let process = GatewayProcess::spawn(dir, &env);
    let client = client_for(Some(&dir.join("data/tls.crt")));
    (process, client)
}

fn url(process: &GatewayProcess, path: &str) -> String {
    format!("https://localhost:{}{path}", process.addr.port())
}

async fn login(
    client: &reqwest::Client,
    process: &GatewayProcess,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let body = json!({"username": username, "password": password});
    client
        .post(url(process, "/api/accounts/token/"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn access_token(
    client: &reqwest::Client,
    process: &GatewayProcess,
    username: &str,
    password: &str,
) -> String {
    let response = login(client, process, username, password).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().await.unwrap()["access"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Polls until `request` answers 401, returning how long that took.
async fn until_refused(send: impl Fn() -> reqwest::RequestBuilder) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if send().send().await.unwrap().status() == StatusCode::UNAUTHORIZED {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("still accepted after 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_agree_on_keys_users_and_revocations() {
    let schema = PgSchema::create().await;
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let (a, client_a) = replica(&dir.path().join("a"), &shared, &schema.url, &upstream);
    let (b, client_b) = replica(&dir.path().join("b"), &shared, &schema.url, &upstream);

    // One first admin, whichever replica started first; a token from A is good on B.
    let admin = access_token(&client_a, &a, "admin", PASSWORD).await;
    let users = client_b
        .get(url(&b, "/api/accounts/users/"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), StatusCode::OK);
    assert_eq!(
        users
            .json::<Value>()
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A key made on A works on B; revoked on A, it is refused by B within a second.
    let created: Value = client_a
        .post(url(&a, "/api/accounts/api-keys/"))
        .bearer_auth(&admin)
        .fetch_json()
        .await;
    let key = created["key"].as_str().unwrap().to_string();
    let on_b = || client_b.get(url(&b, "/app")).header("x-api-key", &key);
    assert_eq!(
        on_b().send().await.unwrap().status(),
        StatusCode::OK,
        "and now B has it cached"
    );
    let id = created["id"].as_str().unwrap();
    let revoke = client_a
        .delete(url(&a, &format!("/api/accounts/api-keys/{id}/")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    let delay = until_refused(on_b).await;
    assert!(
        delay < Duration::from_secs(1),
        "B refused the revoked key after {delay:?}"
    );

    // A user deactivated on B is refused by A within a second.
    let user: Value = client_a
        .post(url(&a, "/api/accounts/users/"))
        .bearer_auth(&admin)
        .json(&json!({"username": "rita", "password": "rita-password-1"}))
        .fetch_json()
        .await;
    let rita = access_token(&client_b, &b, "rita", "rita-password-1").await;
    let on_a = || client_a.get(url(&a, "/app")).bearer_auth(&rita);
    assert_eq!(on_a().send().await.unwrap().status(), StatusCode::OK);
    let id = user["id"].as_u64().unwrap();
    let deactivate = client_b
        .patch(url(&b, &format!("/api/accounts/users/{id}/")))
        .bearer_auth(&admin)
        .json(&json!({"is_active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(deactivate.status(), StatusCode::OK);
    let delay = until_refused(on_a).await;
    assert!(
        delay < Duration::from_secs(1),
        "A refused the deactivated user after {delay:?}"
    );
    let ready: Value = client_a.get(url(&a, "/readyz")).fetch_json().await;
    assert_eq!(ready["changes"], "following");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_database_keeps_cached_credentials_and_refuses_new_logins_until_it_returns() {
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let schema = PgSchema::create_via(&proxy.addr.to_string()).await;
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (gw, client) = replica(&dir.path().join("a"), dir.path(), &schema.url, &upstream);
    let admin = access_token(&client, &gw, "admin", PASSWORD).await;
    let created: Value = client
        .post(url(&gw, "/api/accounts/api-keys/"))
        .bearer_auth(&admin)
        .fetch_json()
        .await;
    let key = created["key"].as_str().unwrap().to_string();
    let status =
        |request: reqwest::RequestBuilder| async move { request.send().await.unwrap().status() };
    let with_key = || client.get(url(&gw, "/app")).header("x-api-key", &key);
    let with_token = || client.get(url(&gw, "/app")).bearer_auth(&admin);
    assert_eq!(status(with_key()).await, StatusCode::OK);
    assert_eq!(status(with_token()).await, StatusCode::OK);

    proxy.cut();
    // Cached credentials keep working...
    for _ in 0..3 {
        assert_eq!(status(with_key()).await, StatusCode::OK);
        assert_eq!(status(with_token()).await, StatusCode::OK);
    }
    // ...new logins cannot be checked, and say so.
    let refused = login(&client, &gw, "admin", PASSWORD).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["detail"],
        "Service temporarily unavailable, try again later."
    );
    let readiness = || client.get(url(&gw, "/readyz"));
    assert_eq!(status(readiness()).await, StatusCode::SERVICE_UNAVAILABLE);

    proxy.restore();
    let started = Instant::now();
    loop {
        let status = login(&client, &gw, "admin", PASSWORD).await.status();
        if status == StatusCode::OK {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "logins did not recover: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status(readiness()).await, StatusCode::OK);
    assert!(
        gw.log_text()
            .contains("following changes from other replicas")
    );
}
