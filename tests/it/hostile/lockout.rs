//! No lockout by a third party: budgets per (username, address), per device, per account,
//! shared by every replica on PostgreSQL.

use http::StatusCode;
use serde_json::json;

use super::ALICE_PASSWORD;
use super::cookies::{
    DEVICE, DEVICE_FLAGS, assert_flags, client_from, cookie, origin, set_cookies,
};
use super::gateway_with_alice;
use crate::common::postgres::PgSchema;
use crate::common::{Fetch, TestGateway};

const THROTTLED: StatusCode = StatusCode::TOO_MANY_REQUESTS;
const WRONG: &str = "wrong-password-0";
const BOB_PASSWORD: &str = "bob-password-123";

/// A login on the accounts API, with the device cookie when one is given.
pub(super) async fn login(
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
        // One attempt back a minute: nothing refills while the test runs.
        limits.login_per_account_per_minute = 1;
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

#[tokio::test]
async fn replicas_on_postgresql_spend_the_same_budgets() {
    let schema = PgSchema::create().await;
    let on_postgres = |c: &mut portcullis::Config| {
        c.store.backend = portcullis::config::StoreBackend::Postgres;
        c.store.url = Some(schema.url.clone());
        let limits = &mut c.rate_limit;
        limits.login_per_username_per_minute = 1;
        limits.login_per_username_burst = 3;
        limits.login_per_account_per_minute = 1;
        // Alice's own sign-in while the gateway is set up spends one of these.
        limits.login_per_account_burst = 6;
    };
    let (first, _) = gateway_with_alice(on_postgres).await;
    let second = TestGateway::start_with(on_postgres).await;
    // Three wrong guesses from one address on the first replica spend that pair's budget on
    // both.
    let from = |gw, octet| client_from(gw, octet);
    for _ in 0..3 {
        let status = login(&from(&first, 2), &first, ("alice", WRONG), None).await;
        assert_eq!(status.status(), StatusCode::UNAUTHORIZED);
    }
    let status = login(&from(&second, 2), &second, ("alice", WRONG), None).await;
    assert_eq!(
        status.status(),
        THROTTLED,
        "the second replica knows the pair"
    );
    // Two more from elsewhere on the second replica spend the account's; the first replica
    // then turns a new client away too.
    for octet in [3, 4] {
        let status = login(&from(&second, octet), &second, ("alice", WRONG), None).await;
        assert_eq!(status.status(), StatusCode::UNAUTHORIZED);
    }
    let status = login(&from(&first, 5), &first, ("alice", ALICE_PASSWORD), None).await;
    assert_eq!(
        status.status(),
        THROTTLED,
        "the first replica knows the account"
    );
}
