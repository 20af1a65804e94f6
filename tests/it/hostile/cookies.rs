//! The gateway's cookies under attack: a sibling cookie that is not ASCII, a cookie planted
//! under the gateway's name without its `__Host-` prefix, an upstream setting the gateway's
//! cookies, two session cookies at once.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use http::{HeaderValue, StatusCode};

use super::{ALICE_PASSWORD, assert_invariant, gateway_with_alice};
use crate::common::{Fetch, TestGateway, assert_detail, client_for, raw};

pub(super) const SESSION: &str = "__Host-portcullis_session";
pub(super) const DEVICE: &str = "__Host-portcullis_device";
pub(super) const DEVICE_FLAGS: [&str; 4] = ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"];

/// A client that speaks HTTP/1.1 from `127.0.0.<octet>` and follows no redirects.
pub(super) fn client_from(gw: &TestGateway, octet: u8) -> reqwest::Client {
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

pub(super) fn origin(gw: &TestGateway) -> String {
    format!("https://localhost:{}", gw.addr.port())
}

pub(super) fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    let all = response.headers().get_all("set-cookie").iter();
    all.map(|v| v.to_str().unwrap().to_string()).collect()
}

/// The `Set-Cookie` that sets `name`, and the cookie's value.
pub(super) fn cookie(set_cookies: &[String], name: &str) -> (String, String) {
    let header = set_cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")) && !c.contains("Max-Age=0"))
        .unwrap_or_else(|| panic!("no {name} cookie in {set_cookies:?}"));
    let value = header[name.len() + 1..].split(';').next().unwrap();
    (header.clone(), value.to_string())
}

pub(super) fn assert_flags(set_cookie: &str, flags: &[&str]) {
    for flag in flags {
        assert!(set_cookie.contains(flag), "{flag} not in {set_cookie}");
    }
    let domain = set_cookie.to_ascii_lowercase().contains("domain=");
    assert!(!domain, "a __Host- cookie names no Domain: {set_cookie}");
}

/// Signs in through the form, from the gateway's own origin; returns the status and every
/// `Set-Cookie` of the answer.
pub(super) async fn sign_in(
    gw: &TestGateway,
    username: &str,
    password: &str,
) -> (StatusCode, Vec<String>) {
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

#[tokio::test]
async fn two_session_cookies_are_refused_not_chosen_between() {
    let (gw, _) = gateway_with_alice(|_| {}).await;
    let (status, set) = sign_in(&gw, "alice", ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, session) = cookie(&set, SESSION);
    for pair in [
        format!("{SESSION}={session}; {SESSION}=planted"),
        format!("{SESSION}=planted; {SESSION}={session}"),
    ] {
        let before = gw.upstream.count();
        let response = gw
            .client
            .get(gw.url("/public/x"))
            .header("cookie", pair)
            .send()
            .await
            .unwrap();
        assert_detail(
            response,
            StatusCode::BAD_REQUEST,
            "Multiple session cookies were provided.",
        )
        .await;
        assert_eq!(gw.upstream.count(), before, "nothing forwarded");
    }
    assert_invariant(&gw);
}
