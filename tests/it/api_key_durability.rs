//! API keys across a new JWT key, restarts, shutdowns, `kill -9`, and the command line.

use http::StatusCode;
use serde_json::{Value, json};

use super::api_keys::{create_key, list, with_key};
use crate::common::process::GatewayProcess;
use crate::common::{
    ADMIN_PASSWORD, ADMIN_USER, Fetch, TestGateway, Upstream, assert_detail, client_for,
};

#[tokio::test]
async fn keys_survive_a_new_jwt_signing_key() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    let (_, key) = create_key(&gw, &admin, None).await;
    let (config, upstream, dir) = gw.stop().await;
    // Replace the JWT secret entirely, as an operator rotating a leaked secret would.
    std::fs::remove_file(config.signing_key_path()).unwrap();
    let gw = TestGateway::start_in(config, upstream, dir).await;
    assert_detail(
        gw.get("/x", Some(&admin)).await,
        StatusCode::UNAUTHORIZED,
        "Invalid token.",
    )
    .await;
    assert_eq!(
        with_key(&gw, "/x", "x-api-key", &key).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn revocations_and_new_keys_survive_restart_and_kill_9() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("PORTCULLIS_ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
        ("PORTCULLIS_UPSTREAM_URL", upstream.url()),
    ];
    let first = GatewayProcess::spawn(dir.path(), &env);
    let client = client_for(Some(&dir.path().join("data/tls.crt")));
    let base =
        |p: &GatewayProcess, path: &str| format!("https://localhost:{}{path}", p.addr.port());
    let login = json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD});
    let tokens: Value = client
        .post(base(&first, "/api/accounts/token/"))
        .json(&login)
        .fetch_json()
        .await;
    let admin = tokens["access"].as_str().unwrap().to_string();
    let create = |p: &GatewayProcess, user: Option<u64>| {
        let body = user.map_or(json!({}), |id| json!({"user": id}));
        client
            .post(base(p, "/api/accounts/api-keys/"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let revoked: Value = create(&first, None).await.unwrap().json().await.unwrap();
    let revoked_key = revoked["key"].as_str().unwrap().to_string();
    let response = client
        .delete(base(
            &first,
            &format!(
                "/api/accounts/api-keys/{}/",
                revoked["id"].as_str().unwrap()
            ),
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let fresh: Value = create(&first, None).await.unwrap().json().await.unwrap();
    let fresh_key = fresh["key"].as_str().unwrap().to_string();
    first.kill_9();

    let second = GatewayProcess::spawn(dir.path(), &env);
    let get = |key: &str| {
        client
            .get(base(&second, "/x"))
            .header("x-api-key", key)
            .send()
    };
    assert_eq!(
        get(&revoked_key).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(get(&fresh_key).await.unwrap().status(), StatusCode::OK);
    // Log lines are written by a background thread: a clean stop flushes them.
    assert_eq!(second.terminate().await, Some(0));
    let log: String = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "log"))
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    assert!(log.contains("api_key"), "the logs were read");
    for key in [&revoked_key, &fresh_key] {
        assert!(
            !log.contains(&key[key.len() - 43..]),
            "an API key secret reached the log"
        );
    }
}

#[tokio::test]
async fn the_command_line_makes_the_first_key() {
    let gw = TestGateway::start().await;
    let (config, upstream, dir) = gw.stop().await;
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(args)
            .env_clear()
            .env("PORTCULLIS_DATA_DIR", &config.data_dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let created = run(&["apikey", "create", "--user", "admin"]);
    let key = created
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .unwrap()
        .to_string();
    let id = key.split('_').nth(1).unwrap().to_string();
    let listed = run(&["apikey", "list"]);
    assert!(
        listed.contains(&id) && listed.contains("admin") && !listed.contains(&key),
        "{listed}"
    );

    let gw = TestGateway::start_in(config.clone(), upstream, dir).await;
    assert_eq!(
        with_key(&gw, "/x", "x-api-key", &key).await.status(),
        StatusCode::OK
    );
    let (config, upstream, dir) = gw.stop().await;
    run(&["apikey", "revoke", &id]);
    let gw = TestGateway::start_in(config, upstream, dir).await;
    assert_eq!(
        with_key(&gw, "/x", "x-api-key", &key).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// Uses a key, stops the gateway at once, and returns what a restarted gateway lists.
async fn last_use_after_a_restart(adjust: impl FnOnce(&mut portcullis::Config)) -> Value {
    // No periodic flush during the test: only the one at shutdown can record the use.
    let gw = TestGateway::start_with(|c| {
        c.cache.last_used_flush_secs = 3600;
        adjust(c);
    })
    .await;
    let admin = gw.admin_token().await;
    let (_, key) = create_key(&gw, &admin, None).await;
    assert_eq!(
        with_key(&gw, "/x", "x-api-key", &key).await.status(),
        StatusCode::OK
    );
    let (config, upstream, dir) = gw.stop().await;
    let gw = TestGateway::start_in(config, upstream, dir).await;
    let admin = gw.admin_token().await;
    list(&gw, &admin).await[0]["last_used_at"].clone()
}

#[tokio::test]
async fn the_last_uses_before_a_shutdown_reach_the_store() {
    let redb = last_use_after_a_restart(|_| {}).await;
    assert!(redb.is_string(), "redb: {redb}");
    // The same through PostgreSQL, whose connections the connection workers may be driving.
    let schema = crate::common::postgres::PgSchema::create().await;
    let postgres = last_use_after_a_restart(|c| {
        c.store.backend = portcullis::config::StoreBackend::Postgres;
        c.store.url = Some(schema.url.clone());
    })
    .await;
    assert!(postgres.is_string(), "PostgreSQL: {postgres}");
}
