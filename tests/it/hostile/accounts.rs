//! Accounts under attack: a race to remove the last administrator, `sub` spellings and
//! implausible token times, Swagger UI keeping typed tokens, and an import that breaks the
//! one-key-per-user rule.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::lockout::login;
use super::{assert_invariant, gateway_with_alice};
use crate::common::postgres::PgSchema;
use crate::common::{ADMIN_PASSWORD, ADMIN_USER, Fetch, TestGateway, client_for, json_of};
const LAST_ADMIN: &str = "The last active administrator cannot be demoted, deactivated or deleted.";
const ADMINS: [(&str, &str); 2] = [
    (ADMIN_USER, ADMIN_PASSWORD),
    ("admin2", "admin2-password-1"),
];

async fn token_of(gw: &TestGateway, (username, password): (&str, &str)) -> Option<String> {
    let response = login(&gw.client, gw, (username, password), None).await;
    let (status, body) = json_of(response).await;
    (status == StatusCode::OK).then(|| body["access"].as_str().unwrap().to_string())
}

/// The users as one of the two accounts that is still an active admin sees them, and its token.
async fn admin_view(gw: &TestGateway) -> (String, Vec<Value>) {
    for account in ADMINS {
        let Some(token) = token_of(gw, account).await else {
            continue;
        };
        let response = gw.client.get(gw.api("/users/")).bearer_auth(&token);
        let response = response.send().await.unwrap();
        if response.status() == StatusCode::OK {
            return (token, response.json().await.unwrap());
        }
    }
    panic!("neither account is an active admin any more");
}

/// Makes both accounts active admins (again) and returns their ids and fresh tokens.
async fn two_admins(gw: &TestGateway) -> [(u64, String); 2] {
    let (keeper, users) = admin_view(gw).await;
    for (username, password) in ADMINS {
        let request = match users.iter().find(|u| u["username"] == username) {
            Some(u) if u["is_admin"] == true && u["is_active"] == true => continue,
            Some(u) => gw
                .client
                .patch(gw.api(&format!("/users/{}/", u["id"])))
                .json(&json!({"is_admin": true, "is_active": true})),
            None => gw
                .client
                .post(gw.api("/users/"))
                .json(&json!({"username": username, "password": password, "is_admin": true})),
        };
        let status = request.bearer_auth(&keeper).fetch_status().await;
        assert!(status.is_success(), "restoring {username}: {status}");
    }
    let (_, users) = admin_view(gw).await;
    let mut pair = Vec::new();
    for account in ADMINS {
        let user = users.iter().find(|u| u["username"] == account.0).unwrap();
        let token = token_of(gw, account).await.unwrap();
        pair.push((user["id"].as_u64().unwrap(), token));
    }
    pair.try_into().unwrap()
}

#[derive(Debug, Clone, Copy)]
enum Removal {
    Demote,
    Deactivate,
    Delete,
}

async fn remove(
    client: &reqwest::Client,
    gw: &TestGateway,
    (how, token, id): (Removal, &str, u64),
) -> (StatusCode, Value) {
    let url = gw.api(&format!("/users/{id}/"));
    let request = match how {
        Removal::Demote => client.patch(url).json(&json!({"is_admin": false})),
        Removal::Deactivate => client.patch(url).json(&json!({"is_active": false})),
        Removal::Delete => client.delete(url),
    };
    json_of(request.bearer_auth(token).send().await.unwrap()).await
}

/// Two admins remove each other at the same moment, round after round: at most one wins, the
/// loser is told why (or has already lost the right to ask), and an active admin always remains.
async fn two_admins_racing_never_leave_none(gw: &TestGateway) {
    use Removal::*;
    let cert = gw.config.tls_paths().0;
    let (one, other) = (client_for(Some(&cert)), client_for(Some(&cert)));
    let (keeper, _) = admin_view(gw).await;
    let (username, password) = ADMINS[1];
    let body = json!({"username": username, "password": password, "is_admin": true});
    let created = gw
        .client
        .post(gw.api("/users/"))
        .bearer_auth(&keeper)
        .json(&body);
    assert_eq!(created.fetch_status().await, StatusCode::CREATED);
    let rounds = [Demote, Demote, Demote, Demote, Demote, Deactivate, Delete];
    for (round, how) in rounds.into_iter().enumerate() {
        let [(first_id, first), (second_id, second)] = two_admins(gw).await;
        let (a, b) = tokio::join!(
            remove(&one, gw, (how, &first, second_id)),
            remove(&other, gw, (how, &second, first_id))
        );
        let what = format!("round {round} ({how:?}): {a:?} / {b:?}");
        assert!(!(a.0.is_success() && b.0.is_success()), "both won: {what}");
        for (status, body) in [&a, &b] {
            use StatusCode as S;
            let lost = [S::CONFLICT, S::FORBIDDEN, S::UNAUTHORIZED].contains(status);
            assert!(status.is_success() || lost, "{what}");
            if *status == S::CONFLICT {
                assert_eq!(body["detail"], LAST_ADMIN, "{what}");
            }
        }
        let (_, users) = admin_view(gw).await;
        let admins = users
            .iter()
            .filter(|u| u["is_admin"] == true && u["is_active"] == true);
        assert!(admins.count() >= 1, "{what}: {users:?}");
    }
    // The one admin left can remove themselves by no path.
    let [(first_id, first), (second_id, _)] = two_admins(gw).await;
    let (status, _) = remove(&one, gw, (Demote, &first, second_id)).await;
    assert_eq!(status, StatusCode::OK);
    for how in [Demote, Deactivate, Delete] {
        let (status, _) = remove(&one, gw, (how, &first, first_id)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{how:?} of the last admin");
    }
    let (_, users) = admin_view(gw).await;
    let last = users.iter().find(|u| u["id"] == first_id).unwrap();
    assert!(
        last["is_admin"] == true && last["is_active"] == true,
        "{last}"
    );
}

#[tokio::test]
async fn racing_admins_never_leave_zero_admins_on_redb() {
    two_admins_racing_never_leave_none(&TestGateway::start().await).await;
}

#[tokio::test]
async fn racing_admins_never_leave_zero_admins_on_postgres() {
    let schema = PgSchema::create().await;
    let gw = TestGateway::start_with(|c| {
        c.store.backend = portcullis::config::StoreBackend::Postgres;
        c.store.url = Some(schema.url.clone());
    })
    .await;
    two_admins_racing_never_leave_none(&gw).await;
}

#[tokio::test]
async fn sub_and_time_claims_are_read_canonically() {
    let (gw, alice) = gateway_with_alice(|_| {}).await;
    let file = std::fs::read_to_string(gw.data_dir().join("jwt.key")).unwrap();
    let file: Value = serde_json::from_str(&file).unwrap();
    let key = &file["keys"][0];
    let secret = URL_SAFE_NO_PAD.decode(key["material"].as_str().unwrap());
    let secret = EncodingKey::from_secret(&secret.unwrap());
    let kid = key["kid"].as_str().unwrap().to_string();
    let sign = |claims: &Value| {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, claims, &secret).unwrap()
    };
    let payload = URL_SAFE_NO_PAD.decode(alice.split('.').nth(1).unwrap());
    let base: Value = serde_json::from_slice(&payload.unwrap()).unwrap();
    let control = gw.get("/app", Some(&sign(&base))).await.status();
    assert_eq!(
        control,
        StatusCode::OK,
        "the forger holds the gateway's key"
    );
    let now = std::time::UNIX_EPOCH.elapsed().unwrap().as_secs();
    let subs = ["+1", "01", " 1", "1 ", "1.0", "0x1"];
    let mut cases: Vec<(&str, Value)> = subs.into_iter().map(|s| ("sub", json!(s))).collect();
    cases.push(("exp", json!(1u64 << 62)));
    cases.push(("iat", json!(now + 3600)));
    for (field, value) in cases {
        let what = format!("{field} {value}");
        let mut claims = base.clone();
        claims[field] = value;
        let response = gw.get("/app", Some(&sign(&claims))).await;
        let (status, body) = json_of(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(body["detail"], "Invalid token.", "{what}");
        assert_eq!(gw.upstream.count(), 1, "{what} reached the upstream");
    }
    assert_invariant(&gw);
}

#[tokio::test]
async fn swagger_ui_does_not_keep_typed_credentials() {
    let gw = TestGateway::start().await;
    let response = gw.get("/api/swagger/swagger-initializer.js", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(
        compact.contains("SwaggerUIBundle("),
        "not the initializer: {text}"
    );
    assert!(!compact.contains("\"persistAuthorization\":true"), "{text}");
}

fn portcullis(env: &[(&str, String)], args: &[&str]) -> (bool, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command.args(args).env_clear();
    let output = command
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    (output.status.success(), format!("{stdout}{stderr}"))
}

/// A `store export` dump in which user 1 (`dora`) holds two unrevoked API keys.
const DUMP: &str = r#"{"format": "portcullis-store", "version": 1, "exported_at": 0,
  "users": [{"id": 1, "username": "dora", "roles": ["ops"], "is_admin": false,
    "is_active": true, "tokens_valid_after": 0, "created_at": 0, "updated_at": 0,
    "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"}],
  "api_keys": [
    {"id": "00112233445566aa", "user_id": 1, "created_at": 0, "last_used_at": null,
     "revoked_at": null, "secret_sha256": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]},
    {"id": "00112233445566bb", "user_id": 1, "created_at": 0, "last_used_at": null,
     "revoked_at": null, "secret_sha256": [2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2]}
  ]}"#;

#[tokio::test]
async fn an_import_giving_a_user_two_active_keys_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump.json");
    std::fs::write(&dump, DUMP).unwrap();
    let data_dir = |name: &str| dir.path().join(name).display().to_string();
    let schema = PgSchema::create().await;
    let postgres = vec![
        ("PORTCULLIS_DATA_DIR", data_dir("pg")),
        ("PORTCULLIS_STORE_BACKEND", "postgres".to_string()),
        ("PORTCULLIS_STORE_URL", schema.url.clone()),
    ];
    let stores = [
        ("redb", vec![("PORTCULLIS_DATA_DIR", data_dir("redb"))]),
        ("postgres", postgres),
    ];
    for (store, env) in &stores {
        let (ok, out) = portcullis(env, &["store", "import", dump.to_str().unwrap()]);
        let named = out.contains("user 1") || out.contains("dora");
        let why = out.contains("more than one active API key");
        assert!(!ok && named && why, "{store}: {out}");
        let (ok, out) = portcullis(env, &["user", "list"]);
        assert!(
            ok && !out.contains("dora"),
            "{store}: part of the dump arrived: {out}"
        );
    }
}
