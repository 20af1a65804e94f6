//! Every way a presented JWT can be wrong, each refused before anything is forwarded.

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
