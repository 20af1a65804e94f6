//! The JWT half of the accounts API: login, refresh, logout, throttling.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, ADMIN_USER, TestGateway, assert_detail, json_of};

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn post(gw: &TestGateway, path: &str, body: Value) -> reqwest::Response {
    gw.client
        .post(gw.api(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn login_paths_issue_tokens_with_the_designed_claims() {
    let gw = TestGateway::start().await;
    for path in ["/token/", "/token", "/auth/login/", "/auth/login"] {
        let (status, body) = json_of(
            post(
                &gw,
                path,
                json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD}),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let access = claims_of(body["access"].as_str().unwrap());
        let refresh = claims_of(body["refresh"].as_str().unwrap());
        assert_eq!(access["token_type"], "access");
        assert_eq!(refresh["token_type"], "refresh");
        for claim in [
            "sub", "username", "roles", "jti", "iat", "exp", "iss", "aud",
        ] {
            assert!(!access[claim].is_null(), "{claim} missing");
        }
        assert_eq!(access["sub"], "1");
        assert_eq!(access["username"], "admin");
        assert_eq!(
            access["exp"].as_u64().unwrap() - access["iat"].as_u64().unwrap(),
            300
        );
        assert_eq!(
            refresh["exp"].as_u64().unwrap() - refresh["iat"].as_u64().unwrap(),
            86_400
        );
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(body["access"].as_str().unwrap().split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "HS256");
        assert!(header["kid"].is_string());
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let gw = TestGateway::start().await;
    for (username, password) in [(ADMIN_USER, "wrong-password"), ("nobody", ADMIN_PASSWORD)] {
        let response = post(
            &gw,
            "/token/",
            json!({"username": username, "password": password}),
        )
        .await;
        assert_detail(
            response,
            StatusCode::UNAUTHORIZED,
            "No active account found with the given credentials",
        )
        .await;
    }
}

#[tokio::test]
async fn me_describes_the_caller() {
    let gw = TestGateway::start().await;
    let token = gw.admin_token().await;
    let (status, body) = json_of(
        gw.client
            .get(gw.api("/me/"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"id": 1, "username": "admin", "roles": ["admin"], "is_admin": true, "auth_method": "jwt"})
    );
    assert_detail(
        gw.client.get(gw.api("/me/")).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "Authentication credentials were not provided.",
    )
    .await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_session() {
    let gw = TestGateway::start().await;
    let (access, refresh) = gw.login(ADMIN_USER, ADMIN_PASSWORD).await;
    let (status, rotated) =
        json_of(post(&gw, "/token/refresh/", json!({"refresh": refresh})).await).await;
    assert_eq!(status, StatusCode::OK);
    let new_access = rotated["access"].as_str().unwrap().to_string();
    let new_refresh = rotated["refresh"].as_str().unwrap().to_string();
    assert_ne!(new_refresh, refresh);
    assert_eq!(
        gw.get("/app", Some(&new_access)).await.status(),
        StatusCode::OK
    );

    // The old refresh token again: stolen, by assumption. The whole session dies.
    assert_detail(
        post(&gw, "/token/refresh/", json!({"refresh": refresh})).await,
        StatusCode::UNAUTHORIZED,
        "Invalid token.",
    )
    .await;
    assert_detail(
        post(&gw, "/token/refresh/", json!({"refresh": new_refresh})).await,
        StatusCode::UNAUTHORIZED,
        "Invalid token.",
    )
    .await;
    for token in [&access, &new_access] {
        assert_detail(
            gw.get("/app", Some(token)).await,
            StatusCode::UNAUTHORIZED,
            "Invalid token.",
        )
        .await;
    }
    // Another login session is unaffected.
    let (other, _) = gw.login(ADMIN_USER, ADMIN_PASSWORD).await;
    assert_eq!(gw.get("/app", Some(&other)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn refresh_without_rotation_returns_only_an_access_token() {
    let gw = TestGateway::start_with(|c| c.auth.rotate_refresh_tokens = false).await;
    let (_, refresh) = gw.login(ADMIN_USER, ADMIN_PASSWORD).await;
    for _ in 0..2 {
        let (status, body) =
            json_of(post(&gw, "/token/refresh/", json!({"refresh": refresh})).await).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body["access"].is_string() && body.get("refresh").is_none(),
            "{body}"
        );
    }
}

#[tokio::test]
async fn logout_revokes_the_session_server_side() {
    let gw = TestGateway::start().await;
    let (access, refresh) = gw.login(ADMIN_USER, ADMIN_PASSWORD).await;
    let response = gw
        .client
        .post(gw.api("/auth/logout/"))
        .bearer_auth(&access)
        .json(&json!({"refresh": refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_detail(
        post(&gw, "/token/refresh/", json!({"refresh": refresh})).await,
        StatusCode::UNAUTHORIZED,
        "Invalid token.",
    )
    .await;
    assert_detail(
        gw.get("/app", Some(&access)).await,
        StatusCode::UNAUTHORIZED,
        "Invalid token.",
    )
    .await;
    assert_eq!(gw.upstream.count(), 0);

    // Logout without a body ends the session of the access token used.
    let (access, refresh) = gw.login(ADMIN_USER, ADMIN_PASSWORD).await;
    let response = gw
        .client
        .post(gw.api("/auth/logout/"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        post(&gw, "/token/refresh/", json!({"refresh": refresh}))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_detail(
        gw.client
            .post(gw.api("/auth/logout/"))
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "Authentication credentials were not provided.",
    )
    .await;
}

#[tokio::test]
async fn token_types_are_not_interchangeable() {
    let gw = TestGateway::start().await;
    let (access, refresh) = gw.login(ADMIN_USER, ADMIN_PASSWORD).await;
    assert_detail(
        gw.get("/app", Some(&refresh)).await,
        StatusCode::UNAUTHORIZED,
        "Invalid token.",
    )
    .await;
    assert_detail(
        post(&gw, "/token/refresh/", json!({"refresh": access})).await,
        StatusCode::UNAUTHORIZED,
        "Invalid token.",
    )
    .await;
    assert_eq!(gw.upstream.count(), 0);
}

#[tokio::test]
async fn logins_are_throttled_per_username_and_per_address() {
    let gw = TestGateway::start_with(|c| {
        c.rate_limit.login_per_username_burst = 2;
        c.rate_limit.login_per_username_per_minute = 1;
    })
    .await;
    for _ in 0..2 {
        let response = post(
            &gw,
            "/token/",
            json!({"username": "victim", "password": "guess-guess"}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = post(
        &gw,
        "/token/",
        json!({"username": "Victim", "password": "guess-guess"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let (_, body) = json_of(response).await;
    assert_eq!(
        body["detail"],
        format!("Request was throttled. Expected available in {retry} seconds.")
    );
    // Another username is not affected by the first one's bucket.
    gw.login(ADMIN_USER, ADMIN_PASSWORD).await;

    let gw = TestGateway::start_with(|c| {
        c.rate_limit.login_per_ip_burst = 3;
        c.rate_limit.login_per_ip_per_minute = 1;
    })
    .await;
    for i in 0..3 {
        let response = post(
            &gw,
            "/token/",
            json!({"username": format!("user{i}"), "password": "guess-guess"}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = post(
        &gw,
        "/token/",
        json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        gw.metrics()
            .await
            .contains("portcullis_throttled_requests_total 1")
    );
}
