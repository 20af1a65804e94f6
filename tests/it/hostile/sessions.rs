//! Sessions, logins and accounts under attack: cookies planted or set by someone else, a
//! lockout forced by a third party, a race to remove the last administrator, `sub` spellings,
//! Swagger UI keeping typed tokens, and an import that breaks the one-key-per-user rule.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderValue, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::{ALICE_PASSWORD, assert_invariant, gateway_with_alice};
use crate::common::postgres::PgSchema;
use crate::common::{
    ADMIN_PASSWORD, ADMIN_USER, Fetch, TestGateway, assert_detail, client_for, json_of, raw,
};

const SESSION: &str = "__Host-portcullis_session";
const DEVICE: &str = "__Host-portcullis_device";
const DEVICE_FLAGS: [&str; 4] = ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"];
const THROTTLED: StatusCode = StatusCode::TOO_MANY_REQUESTS;

/// A client that speaks HTTP/1.1 from `127.0.0.<octet>` and follows no redirects.
fn client_from(gw: &TestGateway, octet: u8) -> reqwest::Client {
    let _ = client_for(None);
    let cert = gw.config.tls_paths().0;
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, octet)))
        .resolve("localhost", gw.addr)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .no_proxy()
        .tls_backend_preconfigured(raw::tls_client_config(&cert, &[b"http/1.1"]))
        .build()
        .unwrap()
}

fn origin(gw: &TestGateway) -> String {
    format!("https://localhost:{}", gw.addr.port())
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    let all = response.headers().get_all("set-cookie").iter();
    all.map(|v| v.to_str().unwrap().to_string()).collect()
}

/// The `Set-Cookie` that sets `name`, and the cookie's value.
fn cookie(set_cookies: &[String], name: &str) -> (String, String) {
    let header = set_cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")) && !c.contains("Max-Age=0"))
        .unwrap_or_else(|| panic!("no {name} cookie in {set_cookies:?}"));
    let value = header[name.len() + 1..].split(';').next().unwrap();
    (header.clone(), value.to_string())
}

fn assert_flags(set_cookie: &str, flags: &[&str]) {
    for flag in flags {
        assert!(set_cookie.contains(flag), "{flag} not in {set_cookie}");
    }
    let domain = set_cookie.to_ascii_lowercase().contains("domain=");
    assert!(!domain, "a __Host- cookie names no Domain: {set_cookie}");
}

/// Signs in through the form, from the gateway's own origin; returns the status and every
/// `Set-Cookie` of the answer.
async fn sign_in(gw: &TestGateway, username: &str, password: &str) -> (StatusCode, Vec<String>) {
    let form = [
        ("username", username),
        ("password", password),
        ("next", "/"),
    ];
    let request = client_from(gw, 1).post(gw.url("/_portcullis/login"));
    let response = request.header("origin", origin(gw)).form(&form).send();
    let response = response.await.unwrap();
    (response.status(), set_cookies(&response))
}

#[tokio::test]
async fn a_non_ascii_sibling_cookie_leaves_the_session_working_and_intact() {
    let (gw, _) = gateway_with_alice(|_| {}).await;
    let (status, set) = sign_in(&gw, "alice", ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, token) = cookie(&set, SESSION);
    let client = client_from(&gw, 1);
    for header in [
        format!("{SESSION}={token}; pref=café"),
        format!("pref=café; {SESSION}={token}"),
    ] {
        let value = HeaderValue::from_bytes(header.as_bytes()).unwrap();
        let request = client.get(gw.url("/app")).header("cookie", value);
        assert_eq!(request.fetch_status().await, StatusCode::OK, "{header}");
        let seen = gw.upstream.last();
        assert_eq!(seen.headers["x-authenticated-user"], "alice");
        assert_eq!(seen.headers["x-authenticated-method"], "session");
        let forwarded = seen.headers["cookie"].as_bytes();
        assert_eq!(forwarded, "pref=café".as_bytes(), "{header}");
    }
}

#[tokio::test]
async fn the_bare_cookie_name_is_neither_accepted_nor_forwarded_over_https() {
    let (gw, alice) = gateway_with_alice(|_| {}).await;
    let (status, set) = sign_in(&gw, "alice", ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (header, token) = cookie(&set, SESSION);
    assert_flags(&header, &["Path=/", "Secure", "HttpOnly"]);
    assert_flags(&cookie(&set, DEVICE).0, &DEVICE_FLAGS);
    // What a sibling subdomain could plant: the same valid token under the base name.
    let planted = format!("portcullis_session={token}");
    let client = client_from(&gw, 1);
    let response = client.get(gw.url("/app")).header("cookie", &planted).send();
    let detail = "Authentication credentials were not provided.";
    assert_detail(response.await.unwrap(), StatusCode::UNAUTHORIZED, detail).await;
    assert_eq!(gw.upstream.count(), 0, "the planted cookie authenticated");
    let request = client.get(gw.url("/app")).bearer_auth(&alice);
    let request = request.header("cookie", format!("keep=1; {planted}"));
    assert_eq!(request.fetch_status().await, StatusCode::OK);
    let seen = gw.upstream.last();
    assert_eq!(seen.headers["x-authenticated-method"], "jwt");
    assert_eq!(
        seen.headers["cookie"], "keep=1",
        "the planted cookie went on"
    );
    assert_invariant(&gw);
}

#[tokio::test]
async fn the_upstream_cannot_set_the_gateways_own_cookies() {
    let (gw, alice) = gateway_with_alice(|_| {}).await;
    let mut request = gw.client.get(gw.url("/x")).bearer_auth(&alice);
    for value in [
        "__Host-portcullis_session=evil; Path=/",
        "portcullis_session=evil",
        "__Host-portcullis_device=evil",
        "PORTCULLIS_SESSION=evil",
        "other=1; Path=/",
    ] {
        // The test upstream answers each of these as a `set-cookie` of its own.
        request = request.header("x-test-set-cookie", value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(set_cookies(&response), ["other=1; Path=/"]);
    assert_invariant(&gw);
}

const WRONG: &str = "wrong-password-0";
const BOB_PASSWORD: &str = "bob-password-123";

/// A login on the accounts API, with the device cookie when one is given.
async fn login(
    client: &reqwest::Client,
    gw: &TestGateway,
    (username, password): (&str, &str),
    device: Option<&str>,
) -> reqwest::Response {
    let body = json!({"username": username, "password": password});
    let mut request = client.post(gw.api("/token/")).header("origin", origin(gw));
    if let Some(device) = device {
        request = request.header("cookie", format!("{DEVICE}={device}"));
    }
    request.json(&body).send().await.unwrap()
}

/// Wrong passwords for `username`, two from each address from `127.0.0.<first>` on, until one
/// is throttled: the account's budget for clients without a device cookie is spent.
async fn spend_account_budget(gw: &TestGateway, username: &str, first: u8) {
    for octet in first..first + 31 {
        let client = client_from(gw, octet);
        for _ in 0..2 {
            match login(&client, gw, (username, WRONG), None).await.status() {
                StatusCode::UNAUTHORIZED => {}
                THROTTLED => return,
                other => panic!("{username} from 127.0.0.{octet}: {other}"),
            }
        }
    }
    panic!("the account budget of {username} never ran out");
}

/// A client from `127.0.0.<octet>` with its connection already open, so that its first login
/// follows the previous request as closely as possible (the budget refills as time passes).
async fn connected(gw: &TestGateway, octet: u8) -> reqwest::Client {
    let client = client_from(gw, octet);
    let status = client.get(gw.url("/healthz")).fetch_status().await;
    assert_eq!(status, StatusCode::OK);
    client
}

#[tokio::test]
async fn a_third_party_cannot_lock_a_user_out_of_a_known_device() {
    let (gw, _) = gateway_with_alice(|c| {
        let limits = &mut c.rate_limit;
        limits.enabled = true;
        limits.login_per_ip_per_minute = 1000;
        limits.login_per_ip_burst = 1000;
        limits.login_per_username_per_minute = 6;
        limits.login_per_username_burst = 5;
        limits.login_per_account_per_minute = 30;
        limits.login_per_account_burst = 20;
    })
    .await;
    let admin = gw.admin_token().await;
    gw.create_user(&admin, "bob", BOB_PASSWORD, &[]).await;
    let (alice, bob) = (("alice", ALICE_PASSWORD), ("bob", BOB_PASSWORD));

    // Five wrong guesses from one address; the sixth is throttled, for that address only.
    let attacker = client_from(&gw, 2);
    for attempt in 1..=6 {
        let response = login(&attacker, &gw, ("alice", WRONG), None).await;
        let expected = if attempt < 6 {
            StatusCode::UNAUTHORIZED
        } else {
            THROTTLED
        };
        assert_eq!(response.status(), expected, "attempt {attempt}");
        assert_eq!(response.headers().contains_key("retry-after"), attempt == 6);
    }
    let response = login(&client_from(&gw, 3), &gw, alice, None).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "alice from another address"
    );
    let (header, device) = cookie(&set_cookies(&response), DEVICE);
    assert_flags(&header, &DEVICE_FLAGS);

    // A distributed guess spends the account's budget: a new client is turned away, alice's
    // own device is not.
    let (fresh, known) = (connected(&gw, 100).await, connected(&gw, 101).await);
    spend_account_budget(&gw, "alice", 10).await;
    let status = login(&fresh, &gw, alice, None).await.status();
    assert_eq!(status, THROTTLED, "alice without her device");
    let status = login(&known, &gw, alice, Some(&device)).await.status();
    assert_eq!(status, StatusCode::OK, "alice with her device");

    // Alice's device is hers: for bob it is no device at all.
    let other = connected(&gw, 102).await;
    spend_account_budget(&gw, "bob", 50).await;
    let status = login(&other, &gw, bob, Some(&device)).await.status();
    assert_eq!(status, THROTTLED, "bob with alice's device");
}

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
