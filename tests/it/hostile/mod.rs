//! The attacker's suite. Every case states the exact status it expects and that nothing
//! reached the upstream that should not have; every test ends by checking the global invariant:
//! **the upstream never receives a request without a gateway-set identity (outside public
//! routes), nor an identity header the client wrote.**

mod accounts;
mod cookies;
mod framing;
mod headers;
mod lockout;
mod paths;
mod resources;
mod tokens;
mod upgrades;
mod upstream_reading;

use http::StatusCode;
use portcullis::config::RuleConfig;

use crate::common::{Received, TestGateway};

pub const ALICE_PASSWORD: &str = "alice-password-123";

/// `/public` is public, `/admin` needs the `admin` role, everything else any user.
pub fn rules() -> Vec<RuleConfig> {
    vec![
        RuleConfig {
            path: "/public".into(),
            methods: vec![],
            public: true,
            roles: vec![],
        },
        RuleConfig {
            path: "/admin".into(),
            methods: vec![],
            public: false,
            roles: vec!["admin".into()],
        },
    ]
}

/// A gateway with the rules above, and a non-admin user `alice`; returns her access token.
pub async fn gateway_with_alice(
    adjust: impl FnOnce(&mut portcullis::Config),
) -> (TestGateway, String) {
    let gw = TestGateway::start_with(|c| {
        c.rules = rules();
        adjust(c);
    })
    .await;
    let admin = gw.admin_token().await;
    gw.create_user(&admin, "alice", ALICE_PASSWORD, &["staff"])
        .await;
    let (alice, _) = gw.login("alice", ALICE_PASSWORD).await;
    (gw, alice)
}

/// The suite's invariant, over everything the upstream received.
pub fn assert_invariant(gw: &TestGateway) {
    for request in gw.upstream.received() {
        check_one(&request);
    }
}

fn check_one(request: &Received) {
    let path = request.path_and_query.split('?').next().unwrap_or("");
    let users = request
        .headers
        .get_all("x-authenticated-user")
        .iter()
        .count();
    assert!(users <= 1, "identity injected twice: {request:?}");
    let variants = request.headers.keys().filter(|k| {
        let folded = k.as_str().replace(['_', '.'], "-");
        folded.starts_with("x-authenticated") && k.as_str() != folded
    });
    assert_eq!(
        variants.count(),
        0,
        "a client-written identity spelling arrived: {request:?}"
    );
    if users == 0 {
        let public = path == "/public" || path.starts_with("/public/");
        assert!(
            public,
            "an anonymous request reached a protected path: {request:?}"
        );
        for name in [
            "x-authenticated-user-id",
            "x-authenticated-roles",
            "x-authenticated-method",
        ] {
            assert!(
                !request.headers.contains_key(name),
                "{name} without a user: {request:?}"
            );
        }
    } else {
        let user = request.headers["x-authenticated-user"].to_str().unwrap();
        assert!(
            ["admin", "alice"].contains(&user),
            "unknown identity {user}: {request:?}"
        );
        let method = request.headers["x-authenticated-method"].to_str().unwrap();
        assert!(["jwt", "api_key"].contains(&method));
        if path == "/admin" || path.starts_with("/admin/") {
            assert_eq!(user, "admin", "a non-admin reached /admin: {request:?}");
        }
    }
}

/// Sends a request and asserts its exact status, a `{"detail": …}` body, and that the
/// upstream received nothing meanwhile.
pub async fn refused(
    gw: &TestGateway,
    status: StatusCode,
    what: &str,
    send: impl Future<Output = Result<reqwest::Response, reqwest::Error>>,
) {
    let before = gw.upstream.count();
    let response = send.await.unwrap();
    assert_eq!(response.status(), status, "{what}");
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    assert!(body["detail"].is_string(), "{what}: no detail in {body}");
    assert_eq!(gw.upstream.count(), before, "{what} reached the upstream");
}
