//! The JWT half of the accounts API, and every way a token can be wrong.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, ADMIN_USER, TestGateway, assert_detail, json_of};

/// The gateway's own HS256 secret and kid, read from its key file.
fn signing_key(gw: &TestGateway) -> (Vec<u8>, String) {
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(gw.data_dir().join("jwt.key")).unwrap())
            .unwrap();
    let key = &file["keys"][0];
    let secret = URL_SAFE_NO_PAD
        .decode(key["material"].as_str().unwrap())
        .unwrap();
    (secret, key["kid"].as_str().unwrap().to_string())
}

fn sign(claims: &Value, secret: &[u8], kid: &str) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
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
async fn forged_tampered_and_expired_tokens_are_rejected_and_nothing_is_forwarded() {
    let gw = TestGateway::start().await;
    let (access, _) = gw.login(ADMIN_USER, ADMIN_PASSWORD).await;
    let (secret, kid) = signing_key(&gw);
    let mut claims = claims_of(&access);
    let parts: Vec<&str> = access.split('.').collect();

    let mut cases: Vec<(&str, String)> = Vec::new();
    // Payload changed, signature kept.
    let mut elevated = claims.clone();
    elevated["username"] = json!("root");
    elevated["sub"] = json!("999");
    cases.push((
        "tampered",
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(elevated.to_string()),
            parts[2]
        ),
    ));
    // alg: none, in the spellings libraries have accepted.
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header =
            URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT", "kid": kid}).to_string());
        cases.push(("alg none", format!("{header}.{}.", parts[1])));
    }
    // Signed with another key under the right kid.
    cases.push((
        "wrong key",
        sign(&claims, b"an-attacker-chosen-secret-of-32-bytes!", &kid),
    ));
    // Right key, unknown kid; right key, no kid.
    cases.push(("unknown kid", sign(&claims, &secret, "not-a-kid")));
    cases.push((
        "no kid",
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&secret),
        )
        .unwrap(),
    ));
    // Right key, but expired / exp missing / exp of the wrong type / wrong audience or issuer.
    claims["exp"] = json!(now() - 120);
    cases.push(("expired", sign(&claims, &secret, &kid)));
    let valid_exp = now() + 300;
    for (what, patch) in [
        ("exp missing", json!({"exp": null})),
        ("exp string", json!({"exp": valid_exp.to_string()})),
        (
            "wrong aud",
            json!({"exp": valid_exp, "aud": "someone-else"}),
        ),
        (
            "wrong iss",
            json!({"exp": valid_exp, "iss": "someone-else"}),
        ),
        ("future nbf", json!({"exp": valid_exp, "nbf": valid_exp})),
        (
            "refresh type",
            json!({"exp": valid_exp, "token_type": "refresh"}),
        ),
    ] {
        let mut c = claims.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        cases.push((what, sign(&c, &secret, &kid)));
    }
    cases.push(("garbage", "not.a.token".to_string()));
    cases.push(("empty", String::new()));
    cases.push((
        "oversized",
        format!("{}.{}.{}", parts[0], "a".repeat(9_000), parts[2]),
    ));

    for (what, token) in cases {
        let response = gw
            .client
            .get(gw.url("/app"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body["detail"], "Invalid token.", "{what}");
    }
    // Past the header limit, the request head itself is refused.
    let huge = gw
        .client
        .get(gw.url("/app"))
        .bearer_auth("a".repeat(20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(gw.upstream.count(), 0, "a bad token reached the upstream");

    // Control: the same key and claims, unexpired, are accepted.
    claims["exp"] = json!(valid_exp);
    assert_eq!(
        gw.get("/app", Some(&sign(&claims, &secret, &kid)))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_short_configured_lifetime_expires_the_token() {
    let gw = TestGateway::start_with(|c| {
        c.auth.access_ttl_secs = 1;
        c.auth.leeway_secs = 0;
    })
    .await;
    let token = gw.admin_token().await;
    assert_eq!(gw.get("/app", Some(&token)).await.status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_detail(
        gw.get("/app", Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "Invalid token.",
    )
    .await;
}

#[tokio::test]
async fn malformed_missing_and_oversized_bodies_are_refused_clearly() {
    let gw = TestGateway::start_with(|c| c.server.max_body_bytes = 1024).await;
    let raw = |body: &'static str, content_type: &'static str| {
        gw.client
            .post(gw.api("/token/"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let (status, body) = json_of(raw("{\"username\": ", "application/json").await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error"),
        "{body}"
    );
    assert_detail(
        raw("[]", "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "Expected a JSON object.",
    )
    .await;
    assert_detail(
        raw("{\"username\":\"a\"}", "application/json")
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "password: This field is required.",
    )
    .await;
    assert_detail(
        raw("{\"password\":\"a\"}", "application/json")
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "username: This field is required.",
    )
    .await;
    assert_detail(
        raw("{\"username\":1,\"password\":\"a\"}", "application/json")
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "username: Not a valid string.",
    )
    .await;
    assert_detail(
        raw("username=a&password=b", "application/x-www-form-urlencoded")
            .await
            .unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Unsupported media type in request; use application/json.",
    )
    .await;
    let big = format!(
        "{{\"username\":\"{}\",\"password\":\"x\"}}",
        "a".repeat(4096)
    );
    let response = gw
        .client
        .post(gw.api("/token/"))
        .json(&serde_json::from_str::<Value>(&big).unwrap())
        .send()
        .await
        .unwrap();
    assert_detail(
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request body is too large.",
    )
    .await;
    // A body that says nothing of its length and runs past the cap.
    let stream = futures_stream(vec![vec![b' '; 600], vec![b' '; 600]]);
    let response = gw
        .client
        .post(gw.api("/token/"))
        .header("content-type", "application/json")
        .body(stream)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // The endpoint still works afterwards.
    gw.login(ADMIN_USER, ADMIN_PASSWORD).await;
}

fn futures_stream(chunks: Vec<Vec<u8>>) -> reqwest::Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        for chunk in chunks {
            let _ = tx.send(Ok(bytes::Bytes::from(chunk))).await;
        }
    });
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|item| (item.map(http_body::Frame::data), rx))
    });
    reqwest::Body::wrap(http_body_util::StreamBody::new(frames))
}

#[tokio::test]
async fn unknown_paths_and_methods_are_named() {
    let gw = TestGateway::start().await;
    assert_detail(
        gw.client.get(gw.api("/token/")).send().await.unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed.",
    )
    .await;
    assert_detail(
        gw.client.get(gw.api("/nope/")).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "Not found.",
    )
    .await;
    assert_eq!(
        gw.upstream.count(),
        0,
        "the accounts API is never forwarded"
    );
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
