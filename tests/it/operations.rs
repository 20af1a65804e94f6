//! What operators rely on: access rules, metrics, the audit trail, JWKS.

use http::StatusCode;
use portcullis::config::{JwtAlgorithm, RuleConfig};
use serde_json::{Value, json};

use crate::common::{TestGateway, assert_detail, json_of};

fn rule(path: &str, methods: &[&str], public: bool, roles: &[&str]) -> RuleConfig {
    RuleConfig {
        path: path.into(),
        methods: methods.iter().map(|m| m.to_string()).collect(),
        public,
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

#[tokio::test]
async fn rules_decide_public_role_method_and_default_access() {
    let gw = TestGateway::start_with(|c| {
        c.rules = vec![
            rule("/static", &[], true, &[]),
            rule(
                "/reports",
                &["POST", "DELETE"],
                false,
                &["billing", "finance"],
            ),
            rule("/ops", &[], false, &["ops"]),
        ]
    })
    .await;
    let admin = gw.admin_token().await;
    gw.create_user(&admin, "bill", "bill-password-1", &["billing"])
        .await;
    let (bill, _) = gw.login("bill", "bill-password-1").await;
    let forbidden = "You do not have permission to perform this action.";

    // Public: no credential needed; a valid one still identifies; a bad one is refused.
    assert_eq!(
        gw.get("/static/app.css", None).await.status(),
        StatusCode::OK
    );
    assert!(
        !gw.upstream
            .last()
            .headers
            .contains_key("x-authenticated-user")
    );
    assert_eq!(
        gw.get("/static/app.css", Some(&bill)).await.status(),
        StatusCode::OK
    );
    assert_eq!(gw.upstream.last().headers["x-authenticated-user"], "bill");
    assert_detail(
        gw.get("/static/app.css", Some("not-a-token")).await,
        StatusCode::UNAUTHORIZED,
        "Invalid token.",
    )
    .await;

    // Roles, by method: GET falls through to the default, POST needs billing or finance.
    assert_eq!(
        gw.get("/reports/q3", Some(&bill)).await.status(),
        StatusCode::OK
    );
    let post = |token: &str| {
        gw.client
            .post(gw.url("/reports/q3"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(post(&bill).await.unwrap().status(), StatusCode::OK);
    assert_detail(
        post(&admin).await.unwrap(),
        StatusCode::FORBIDDEN,
        forbidden,
    )
    .await;
    assert_detail(
        gw.get("/ops", Some(&bill)).await,
        StatusCode::FORBIDDEN,
        forbidden,
    )
    .await;
    assert_eq!(
        gw.get("/ops", Some(&admin)).await.status(),
        StatusCode::FORBIDDEN,
        "admin is a role, not a bypass"
    );
    assert_detail(
        gw.get("/ops", None).await,
        StatusCode::UNAUTHORIZED,
        "Authentication credentials were not provided.",
    )
    .await;

    // Default: any authenticated user.
    assert_eq!(
        gw.get("/anything", Some(&bill)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        gw.get("/anything", None).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let (_, permissions) = json_of(
        gw.client
            .get(gw.api("/permissions/"))
            .bearer_auth(&bill)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        permissions["roles"],
        json!(["admin", "billing", "finance", "ops"])
    );
}

fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(line_start)
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_known_traffic() {
    let gw = TestGateway::start().await;
    let token = gw.admin_token().await;
    let before = gw.metrics().await;
    for _ in 0..3 {
        assert_eq!(gw.get("/app", Some(&token)).await.status(), StatusCode::OK);
    }
    assert_eq!(
        gw.get("/app", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        gw.get("/app", Some("bad")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let wrong = json!({"username": "admin", "password": "wrong-password"});
    gw.client
        .post(gw.api("/token/"))
        .json(&wrong)
        .send()
        .await
        .unwrap();
    let after = gw.metrics().await;

    let delta = |line: &str| metric(&after, line) - metric(&before, line);
    assert_eq!(
        delta(r#"portcullis_requests_total{route="proxy",status="200"} "#),
        3.0
    );
    assert_eq!(
        delta(r#"portcullis_requests_total{route="proxy",status="401"} "#),
        2.0
    );
    assert_eq!(
        delta(r#"portcullis_requests_total{route="accounts",status="401"} "#),
        1.0
    );
    assert_eq!(
        delta(r#"portcullis_auth_decisions_total{method="jwt",result="ok"} "#),
        3.0
    );
    assert_eq!(
        delta(r#"portcullis_auth_decisions_total{method="jwt",result="rejected"} "#),
        1.0
    );
    assert_eq!(
        delta(r#"portcullis_auth_decisions_total{method="none",result="absent"} "#),
        1.0
    );
    assert_eq!(delta("portcullis_login_failures_total "), 1.0);
    assert_eq!(
        delta(r#"portcullis_upstream_duration_seconds_count{outcome="ok"} "#),
        3.0
    );
    assert!(delta(r#"portcullis_cache_lookups_total{cache="user",result="hit"} "#) >= 2.0);
    assert_eq!(
        metric(&after, "portcullis_open_connections "),
        1.0,
        "this test's one pooled connection"
    );
    assert!(after.contains(r#"portcullis_build_info{version=""#));
    // Never on the public listener.
    assert_eq!(
        gw.get("/metrics", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_audit_trail_records_security_events_for_admins() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    let wrong = json!({"username": "admin", "password": "wrong-password"});
    gw.client
        .post(gw.api("/token/"))
        .json(&wrong)
        .send()
        .await
        .unwrap();
    gw.create_user(&admin, "dora", "dora-password-1", &[]).await;
    let (_, key) = json_of(
        gw.client
            .post(gw.api("/api-keys/"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let id = key["id"].as_str().unwrap();
    gw.client
        .delete(gw.api(&format!("/api-keys/{id}/")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();

    let (status, page) = json_of(
        gw.client
            .get(gw.api("/audit/?limit=3"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let kinds: Vec<&str> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["api_key_revoked", "api_key_created", "user_created"]
    );
    assert_eq!(page["results"][2]["target"], "dora");
    assert_eq!(page["results"][2]["actor"], "admin");
    assert_eq!(page["results"][0]["client_ip"], "127.0.0.1");
    let next = page["next"].as_str().unwrap();
    let (_, rest) = json_of(
        gw.client
            .get(gw.url(next))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let kinds: Vec<&str> = rest["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["login_failed", "login"]);
    assert!(rest["next"].is_null());
    let listing = serde_json::to_string(&page).unwrap() + &serde_json::to_string(&rest).unwrap();
    assert!(
        !listing.contains("wrong-password"),
        "the audit trail holds no password"
    );

    let (dora, _) = gw.login("dora", "dora-password-1").await;
    let response = gw
        .client
        .get(gw.api("/audit/"))
        .bearer_auth(&dora)
        .send()
        .await
        .unwrap();
    assert_detail(
        response,
        StatusCode::FORBIDDEN,
        "You do not have permission to perform this action.",
    )
    .await;
    let response = gw
        .client
        .get(gw.api("/audit/?limit=0"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_detail(
        response,
        StatusCode::BAD_REQUEST,
        "limit: Must be between 1 and 500.",
    )
    .await;
}

#[tokio::test]
async fn eddsa_public_keys_are_published_and_hs256_secrets_never() {
    let gw = TestGateway::start_with(|c| c.auth.algorithm = JwtAlgorithm::EdDSA).await;
    let token = gw.admin_token().await;
    let (status, jwks) = json_of(gw.get("/.well-known/jwks.json", None).await).await;
    assert_eq!(status, StatusCode::OK);
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["alg"].as_str()),
        (Some("OKP"), Some("EdDSA"))
    );
    assert_eq!(
        key["kid"],
        jsonwebtoken::decode_header(&token)
            .unwrap()
            .kid
            .unwrap()
            .as_str()
    );
    // An upstream verifies the token on its own with the published key.
    let x = key["x"].as_str().unwrap();
    let decoding = jsonwebtoken::DecodingKey::from_ed_components(x).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["portcullis"]);
    let claims = jsonwebtoken::decode::<Value>(&token, &decoding, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["username"], "admin");

    let gw = TestGateway::start().await;
    assert_detail(
        gw.get("/.well-known/jwks.json", None).await,
        StatusCode::NOT_FOUND,
        "Not found.",
    )
    .await;
}
