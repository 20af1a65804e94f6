//! API keys: long-lived, revocable, one active per user, never dependent on the JWT key.

use http::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestGateway, assert_detail, json_of};

const PASSWORD: &str = "key-owner-password";

/// Creates a key (for `user` when given) and returns (id, key).
pub async fn create_key(gw: &TestGateway, token: &str, user: Option<u64>) -> (String, String) {
    let body = user.map_or(json!({}), |id| json!({"user": id}));
    let (status, key) = json_of(
        gw.client
            .post(gw.api("/api-keys/"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    (
        key["id"].as_str().unwrap().to_string(),
        key["key"].as_str().unwrap().to_string(),
    )
}

pub async fn with_key(
    gw: &TestGateway,
    path: &str,
    header: &str,
    value: &str,
) -> reqwest::Response {
    gw.client
        .get(gw.url(path))
        .header(header, value)
        .send()
        .await
        .unwrap()
}

pub async fn list(gw: &TestGateway, token: &str) -> Vec<Value> {
    let (status, keys) = json_of(
        gw.client
            .get(gw.api("/api-keys/"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    keys.as_array().unwrap().clone()
}

#[tokio::test]
async fn both_header_forms_authenticate_and_the_key_is_not_forwarded() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    let (_, key) = create_key(&gw, &admin, None).await;
    assert!(key.starts_with("pcs_"), "{key}");

    for (header, value) in [
        ("authorization", format!("ApiKey {key}")),
        ("x-api-key", key.clone()),
    ] {
        let response = with_key(&gw, "/scripts/run", header, &value).await;
        assert_eq!(response.status(), StatusCode::OK, "{header}");
        let seen = gw.upstream.last();
        assert_eq!(seen.headers["x-authenticated-user"], "admin");
        assert_eq!(seen.headers["x-authenticated-method"], "api_key");
        assert!(
            !seen.headers.contains_key("x-api-key"),
            "key forwarded in {header}"
        );
        assert!(
            !seen.headers.contains_key("authorization"),
            "key forwarded in {header}"
        );
    }
    let (status, me) = json_of(with_key(&gw, "/api/accounts/me/", "x-api-key", &key).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["auth_method"], "api_key");
}

#[tokio::test]
async fn forward_credentials_passes_the_key_on() {
    let gw = TestGateway::start_with(|c| c.upstream.forward_credentials = true).await;
    let admin = gw.admin_token().await;
    let (_, key) = create_key(&gw, &admin, None).await;
    assert_eq!(
        with_key(&gw, "/x", "x-api-key", &key).await.status(),
        StatusCode::OK
    );
    assert_eq!(gw.upstream.last().headers["x-api-key"], key.as_str());
}

#[tokio::test]
async fn malformed_unknown_and_wrong_keys_are_all_invalid() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    let (id, key) = create_key(&gw, &admin, None).await;
    let secret = &key[key.len() - 43..];
    let mut wrong_secret = secret.to_string();
    let last = wrong_secret.pop().unwrap();
    wrong_secret.push(if last == 'A' { 'B' } else { 'A' });
    let cases = [
        ("wrong prefix", key.replacen("pcs_", "pct_", 1)),
        ("no prefix", key.trim_start_matches("pcs_").to_string()),
        ("truncated", key[..key.len() - 1].to_string()),
        ("extra characters", format!("{key}x")),
        ("unknown id", format!("pcs_0123456789abcdef_{secret}")),
        ("right id, wrong secret", format!("pcs_{id}_{wrong_secret}")),
        ("empty", String::new()),
        ("a JWT", admin.clone()),
    ];
    for (what, value) in &cases {
        for header in ["x-api-key", "authorization"] {
            let value = if header == "authorization" {
                format!("ApiKey {value}")
            } else {
                value.clone()
            };
            let (status, body) = json_of(with_key(&gw, "/x", header, &value).await).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} in {header}");
            assert_eq!(body["detail"], "Invalid API key.", "{what} in {header}");
        }
    }
    assert_eq!(gw.upstream.count(), 0);
    assert_eq!(
        with_key(&gw, "/x", "x-api-key", &key).await.status(),
        StatusCode::OK,
        "the real key still works"
    );
}

#[tokio::test]
async fn a_new_key_revokes_the_previous_one_at_once() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    let (first_id, first) = create_key(&gw, &admin, None).await;
    assert_eq!(
        with_key(&gw, "/x", "x-api-key", &first).await.status(),
        StatusCode::OK
    );
    let (_, second) = create_key(&gw, &admin, None).await;
    assert_detail(
        with_key(&gw, "/x", "x-api-key", &first).await,
        StatusCode::UNAUTHORIZED,
        "Invalid API key.",
    )
    .await;
    assert_eq!(
        with_key(&gw, "/x", "x-api-key", &second).await.status(),
        StatusCode::OK
    );
    let keys = list(&gw, &admin).await;
    let first_row = keys.iter().find(|k| k["id"] == first_id.as_str()).unwrap();
    assert!(first_row["revoked_at"].is_string());
    assert_eq!(keys.iter().filter(|k| k["revoked_at"].is_null()).count(), 1);
}

#[tokio::test]
async fn revocation_takes_effect_on_the_next_request() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    let (id, key) = create_key(&gw, &admin, None).await;
    assert_eq!(
        with_key(&gw, "/x", "x-api-key", &key).await.status(),
        StatusCode::OK
    );
    let response = gw
        .client
        .delete(gw.api(&format!("/api-keys/{id}/")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_detail(
        with_key(&gw, "/x", "x-api-key", &key).await,
        StatusCode::UNAUTHORIZED,
        "Invalid API key.",
    )
    .await;
    assert_eq!(gw.upstream.count(), 1);
}

#[tokio::test]
async fn users_see_and_revoke_only_their_own_keys_and_never_a_secret() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    let alice_id = gw.create_user(&admin, "alice", PASSWORD, &[]).await;
    let bob_id = gw.create_user(&admin, "bob", PASSWORD, &[]).await;
    let (alice, _) = gw.login("alice", PASSWORD).await;
    let (bob, _) = gw.login("bob", PASSWORD).await;
    let (alice_key_id, alice_key) = create_key(&gw, &alice, None).await;
    let (bob_key_id, _) = create_key(&gw, &bob, None).await;
    let (admin_key_id, _) = create_key(&gw, &admin, None).await;

    let alice_keys = list(&gw, &alice).await;
    assert_eq!(alice_keys.len(), 1);
    assert_eq!(alice_keys[0]["id"], alice_key_id.as_str());
    assert_eq!(alice_keys[0]["user"], alice_id);
    assert_eq!(
        alice_keys[0]["prefix"],
        format!("pcs_{alice_key_id}").as_str()
    );
    let all = list(&gw, &admin).await;
    assert_eq!(all.len(), 3, "admins list every key");
    for key in all.iter().chain(&alice_keys) {
        let fields: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            [
                "created_at",
                "id",
                "last_used_at",
                "prefix",
                "revoked_at",
                "user"
            ]
        );
    }
    let listing = serde_json::to_string(&all).unwrap();
    assert!(
        !listing.contains(&alice_key[alice_key.len() - 43..]),
        "a secret was listed"
    );

    // Someone else's key is indistinguishable from a missing one.
    for id in [
        bob_key_id.as_str(),
        admin_key_id.as_str(),
        "0123456789abcdef",
    ] {
        let response = gw
            .client
            .delete(gw.api(&format!("/api-keys/{id}/")))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_detail(response, StatusCode::NOT_FOUND, "Not found.").await;
    }
    // Only admins create keys for others.
    let response = gw
        .client
        .post(gw.api("/api-keys/"))
        .bearer_auth(&alice)
        .json(&json!({"user": bob_id}))
        .send()
        .await
        .unwrap();
    assert_detail(
        response,
        StatusCode::FORBIDDEN,
        "You do not have permission to perform this action.",
    )
    .await;
    let (_, for_bob) = create_key(&gw, &admin, Some(bob_id)).await;
    assert_eq!(
        with_key(&gw, "/x", "x-api-key", &for_bob).await.status(),
        StatusCode::OK
    );
    assert_eq!(gw.upstream.last().headers["x-authenticated-user"], "bob");
    // And an admin may revoke anyone's.
    let response = gw
        .client
        .delete(gw.api(&format!("/api-keys/{alice_key_id}/")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        with_key(&gw, "/x", "x-api-key", &alice_key).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn user_changes_reach_keys_on_the_next_request() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    let id = gw.create_user(&admin, "carol", PASSWORD, &["viewer"]).await;
    let (carol, _) = gw.login("carol", PASSWORD).await;
    let (_, key) = create_key(&gw, &carol, None).await;
    let patch = |body: Value| {
        gw.client
            .patch(gw.api(&format!("/users/{id}/")))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };

    assert_eq!(
        with_key(&gw, "/x", "x-api-key", &key).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        gw.upstream.last().headers["x-authenticated-roles"],
        "viewer"
    );
    assert_eq!(
        patch(json!({"roles": ["editor"]})).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        with_key(&gw, "/x", "x-api-key", &key).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        gw.upstream.last().headers["x-authenticated-roles"],
        "editor"
    );

    assert_eq!(
        patch(json!({"is_active": false})).await.unwrap().status(),
        StatusCode::OK
    );
    assert_detail(
        with_key(&gw, "/x", "x-api-key", &key).await,
        StatusCode::UNAUTHORIZED,
        "Invalid API key.",
    )
    .await;
    assert_eq!(
        patch(json!({"is_active": true})).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        with_key(&gw, "/x", "x-api-key", &key).await.status(),
        StatusCode::UNAUTHORIZED,
        "deactivation revoked the key for good"
    );

    let (carol, _) = gw.login("carol", PASSWORD).await;
    let (_, key) = create_key(&gw, &carol, None).await;
    assert_eq!(
        patch(json!({"password": "carol-new-password"}))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        with_key(&gw, "/x", "x-api-key", &key).await.status(),
        StatusCode::UNAUTHORIZED,
        "a password change revokes the key"
    );
    let (carol, _) = gw.login("carol", "carol-new-password").await;
    let (_, key) = create_key(&gw, &carol, None).await;
    let response = gw
        .client
        .delete(gw.api(&format!("/users/{id}/")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        with_key(&gw, "/x", "x-api-key", &key).await.status(),
        StatusCode::UNAUTHORIZED,
        "deleting the user revokes the key"
    );
}

#[tokio::test]
async fn last_use_is_recorded_without_a_write_per_request() {
    // PostgreSQL, so a second connection can read what the running gateway wrote.
    let schema = crate::common::postgres::PgSchema::create().await;
    let url = schema.url.clone();
    let gw = TestGateway::start_with(|c| {
        c.store.backend = portcullis::config::StoreBackend::Postgres;
        c.store.url = Some(url);
        c.cache.last_used_flush_secs = 1;
    })
    .await;
    let admin = gw.admin_token().await;
    let (id, key) = create_key(&gw, &admin, None).await;
    assert!(list(&gw, &admin).await[0]["last_used_at"].is_null());
    for _ in 0..20 {
        assert_eq!(
            with_key(&gw, "/x", "x-api-key", &key).await.status(),
            StatusCode::OK
        );
    }
    // Visible at once (from memory)...
    assert!(list(&gw, &admin).await[0]["last_used_at"].is_string());
    // ...and in the store after the periodic flush, with the gateway still running.
    let reader = portcullis::store::PostgresStore::connect(&schema.url)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        use portcullis::store::Store;
        let stored = reader.api_key(&id).await.unwrap().unwrap();
        if stored.last_used_at.is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the periodic flush never wrote last_used_at"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(gw);
}
