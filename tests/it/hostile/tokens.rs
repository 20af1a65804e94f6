//! Tokens an attacker crafts: algorithm confusion, embedded keys, malformed claims.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::{assert_invariant, gateway_with_alice, refused};
use crate::common::{Fetch, TestGateway};

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn claims_of(token: &str) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn rejected(gw: &TestGateway, what: &str, token: &str) {
    let send = gw
        .client
        .get(gw.url("/app"))
        .header("authorization", format!("Bearer {token}"))
        .send();
    refused(gw, StatusCode::UNAUTHORIZED, what, send).await;
}

#[tokio::test]
async fn algorithm_confusion_against_an_eddsa_gateway() {
    let (gw, alice) =
        gateway_with_alice(|c| c.auth.algorithm = portcullis::config::JwtAlgorithm::EdDSA).await;
    assert_eq!(
        gw.get("/app", Some(&alice)).await.status(),
        StatusCode::OK,
        "EdDSA tokens work"
    );
    let jwks: Value = gw
        .client
        .get(gw.url("/.well-known/jwks.json"))
        .fetch_json()
        .await;
    let public_b64 = jwks["keys"][0]["x"].as_str().unwrap().to_string();
    let public_raw = URL_SAFE_NO_PAD.decode(&public_b64).unwrap();
    let kid = kid_of(&alice);
    let mut claims = claims_of(&alice);
    claims["username"] = json!("admin");
    claims["sub"] = json!("1");

    // The classic: HS256 keyed with the published public key, in every encoding of it.
    for (what, secret) in [
        ("raw public key", public_raw.clone()),
        ("base64 public key", public_b64.into_bytes()),
    ] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&secret)).unwrap();
        rejected(&gw, what, &token).await;
    }
    // Other asymmetric algorithms named in the header, with the real signature attached.
    let parts: Vec<&str> = alice.split('.').collect();
    for alg in ["RS256", "ES256", "PS256", "HS256", "none", "EdDSA "] {
        let header = b64(&json!({"alg": alg, "typ": "JWT", "kid": kid}));
        rejected(&gw, alg, &format!("{header}.{}.{}", parts[1], parts[2])).await;
    }
    // A key embedded in the header (jwk / jku / x5u) is never used.
    for (field, value) in [
        (
            "jwk",
            json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([7u8; 32])}),
        ),
        ("jku", json!("https://evil.example/jwks.json")),
        ("x5u", json!("https://evil.example/cert.pem")),
    ] {
        let header = b64(&json!({"alg": "EdDSA", "typ": "JWT", field: value}));
        rejected(
            &gw,
            field,
            &format!("{header}.{}.{}", b64(&claims), parts[2]),
        )
        .await;
    }
    // An extension the verifier must understand.
    let header = b64(&json!({"alg": "EdDSA", "typ": "JWT", "kid": kid, "crit": ["exp"]}));
    rejected(&gw, "crit", &format!("{header}.{}.{}", parts[1], parts[2])).await;
    assert_invariant(&gw);
}

#[tokio::test]
async fn malformed_claims_are_rejected_even_when_properly_signed() {
    let (gw, alice) = gateway_with_alice(|_| {}).await;
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(gw.data_dir().join("jwt.key")).unwrap())
            .unwrap();
    let secret = URL_SAFE_NO_PAD
        .decode(file["keys"][0]["material"].as_str().unwrap())
        .unwrap();
    let sign = |claims: &Value| {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid_of(&alice));
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&secret)).unwrap()
    };
    let base = claims_of(&alice);
    let valid_exp = base["exp"].clone();
    for (what, field, value) in [
        ("exp float", "exp", json!(9_999_999_999.5)),
        ("exp huge", "exp", json!(1e300)),
        ("exp negative", "exp", json!(-1)),
        ("exp string", "exp", json!("9999999999")),
        ("exp null", "exp", Value::Null),
        ("exp object", "exp", json!({"$gt": 0})),
        ("nbf future", "nbf", json!(4_102_444_800u64)),
        ("sub not a number", "sub", json!("alice")),
        ("sub number", "sub", json!(2)),
        ("sub of a missing user", "sub", json!("999")),
        ("wrong audience", "aud", json!("another-app")),
        ("audience list", "aud", json!(["another-app"])),
        ("wrong issuer", "iss", json!("https://evil.example")),
        ("unknown token type", "token_type", json!("admin")),
        ("refresh type", "token_type", json!("refresh")),
        ("roles forged", "roles", json!("admin")),
    ] {
        let mut claims = base.clone();
        claims[field] = value;
        if field != "exp" {
            claims["exp"] = valid_exp.clone();
        }
        rejected(&gw, what, &sign(&claims)).await;
    }
    // Control: the same signer with the untouched claims is accepted.
    assert_eq!(
        gw.get("/app", Some(&sign(&base))).await.status(),
        StatusCode::OK
    );
    assert_invariant(&gw);
}

#[tokio::test]
async fn tokens_of_deleted_or_deactivated_users_stop_working() {
    let (gw, alice) = gateway_with_alice(|_| {}).await;
    let admin = gw.admin_token().await;
    let patch = gw
        .client
        .patch(gw.api("/users/2/"))
        .bearer_auth(&admin)
        .json(&json!({"is_active": false}));
    assert_eq!(patch.send().await.unwrap().status(), StatusCode::OK);
    rejected(&gw, "deactivated", &alice).await;
    let delete = gw
        .client
        .delete(gw.api("/users/2/"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    rejected(&gw, "deleted", &alice).await;
    assert_invariant(&gw);
}
