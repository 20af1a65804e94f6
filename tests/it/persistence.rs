//! The real binary across restarts and crashes: what is on disk, how it is protected, and
//! what the logs never contain.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use http::StatusCode;
use serde_json::json;

use crate::common::process::{GatewayProcess, start_failure};
use crate::common::{Upstream, client_for, json_of};

const PASSWORD: &str = "persistence-admin-password";

fn env(upstream: &Upstream) -> Vec<(&'static str, String)> {
    vec![
        ("PORTCULLIS_ADMIN_PASSWORD", PASSWORD.to_string()),
        ("PORTCULLIS_UPSTREAM_URL", upstream.url()),
    ]
}

fn url(process: &GatewayProcess, path: &str) -> String {
    format!("https://localhost:{}{path}", process.addr.port())
}

async fn login(
    client: &reqwest::Client,
    process: &GatewayProcess,
    username: &str,
    password: &str,
) -> (StatusCode, serde_json::Value) {
    let body = json!({"username": username, "password": password});
    json_of(
        client
            .post(url(process, "/api/accounts/token/"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn restart_keeps_users_and_the_signing_key() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let first = GatewayProcess::spawn(dir.path(), &env(&upstream));
    let client = client_for(Some(&dir.path().join("data/tls.crt")));
    let (status, tokens) = login(&client, &first, "admin", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let access = tokens["access"].as_str().unwrap().to_string();
    let created = client
        .post(url(&first, "/api/accounts/users/"))
        .bearer_auth(&access)
        .json(&json!({"username": "grace", "password": "grace-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let cert_before = std::fs::read(dir.path().join("data/tls.crt")).unwrap();
    assert_eq!(
        first.terminate().await,
        Some(0),
        "SIGTERM drains and exits 0"
    );

    let second = GatewayProcess::spawn(dir.path(), &env(&upstream));
    let response = client
        .get(url(&second, "/app"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "a token from before the restart still verifies"
    );
    assert_eq!(
        login(&client, &second, "grace", "grace-password").await.0,
        StatusCode::OK
    );
    assert_eq!(
        std::fs::read(dir.path().join("data/tls.crt")).unwrap(),
        cert_before,
        "certificate reused"
    );
    assert!(
        !second.log_text().contains("created the first admin"),
        "bootstrap ran once"
    );
}

#[tokio::test]
async fn a_user_created_just_before_kill_9_survives() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let first = GatewayProcess::spawn(dir.path(), &env(&upstream));
    let client = client_for(Some(&dir.path().join("data/tls.crt")));
    let access = login(&client, &first, "admin", PASSWORD).await.1["access"]
        .as_str()
        .unwrap()
        .to_string();
    let created = client
        .post(url(&first, "/api/accounts/users/"))
        .bearer_auth(&access)
        .json(&json!({"username": "heidi", "password": "heidi-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    first.kill_9();
    let second = GatewayProcess::spawn(dir.path(), &env(&upstream));
    assert_eq!(
        login(&client, &second, "heidi", "heidi-password").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn data_files_are_private() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let _process = GatewayProcess::spawn(dir.path(), &env(&upstream));
    let data = dir.path().join("data");
    assert_eq!(mode(&data), 0o700, "data_dir");
    for file in ["jwt.key", "portcullis.redb", "tls.key", "tls.crt"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_corrupt_store_is_an_error_naming_the_file_not_a_reset() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let store = data.join("portcullis.redb");
    let garbage = b"this is not a redb database, and must not silently become one".repeat(100);
    std::fs::write(&store, &garbage).unwrap();
    let (code, output) = start_failure(
        dir.path(),
        &[("PORTCULLIS_ADMIN_PASSWORD", PASSWORD.to_string())],
    );
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains(store.to_str().unwrap()),
        "the error names the file: {output}"
    );
    assert_eq!(
        std::fs::read(&store).unwrap(),
        garbage,
        "the file was left alone"
    );
}

#[tokio::test]
async fn an_invalid_configuration_lists_every_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let (code, output) = start_failure(
        dir.path(),
        &[
            ("PORTCULLIS_UPSTREAM_URL", "ftp://nowhere".into()),
            ("PORTCULLIS_AUTH_API_PREFIX", "noslash".into()),
        ],
    );
    assert_eq!(code, Some(1));
    assert!(
        output.contains("upstream.url") && output.contains("auth.api_prefix"),
        "{output}"
    );
}

#[tokio::test]
async fn no_password_or_token_ever_reaches_the_log() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let process = GatewayProcess::spawn(dir.path(), &env(&upstream));
    let client = client_for(Some(&dir.path().join("data/tls.crt")));
    let wrong = "wrong-password-should-not-be-logged";
    assert_eq!(
        login(&client, &process, "admin", wrong).await.0,
        StatusCode::UNAUTHORIZED
    );
    let tokens = login(&client, &process, "admin", PASSWORD).await.1;
    let access = tokens["access"].as_str().unwrap().to_string();
    let refresh = tokens["refresh"].as_str().unwrap().to_string();
    client
        .get(url(&process, "/app?x=1"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    client
        .get(url(&process, "/app"))
        .bearer_auth(format!("{access}x"))
        .send()
        .await
        .unwrap();
    let rotated = client
        .post(url(&process, "/api/accounts/token/refresh/"))
        .json(&json!({"refresh": refresh}))
        .send()
        .await
        .unwrap();
    let rotated: serde_json::Value = rotated.json().await.unwrap();
    client
        .post(url(&process, "/api/accounts/token/refresh/"))
        .json(&json!({"refresh": refresh}))
        .send()
        .await
        .unwrap();
    let user = json!({"username": "ivan", "password": "ivan-secret-password"});
    client
        .post(url(&process, "/api/accounts/users/"))
        .bearer_auth(&access)
        .json(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(
        process.terminate().await,
        Some(0),
        "a clean stop flushes the log"
    );

    let log = std::fs::read_to_string(dir.path().join("gateway-0.log")).unwrap();
    assert!(
        log.contains("portcullis::access"),
        "access lines were written at trace level"
    );
    let mut secrets = vec![
        PASSWORD.to_string(),
        wrong.to_string(),
        "ivan-secret-password".to_string(),
    ];
    for token in [
        &access,
        &refresh,
        &rotated["access"].as_str().unwrap().to_string(),
    ] {
        secrets.push(token.clone());
        secrets.extend(token.split('.').map(str::to_string));
    }
    for secret in secrets {
        assert!(
            !log.contains(&secret),
            "a secret reached the log: {}…",
            &secret[..8.min(secret.len())]
        );
    }
    assert!(!log.contains("panicked"), "a panic was logged");
}
