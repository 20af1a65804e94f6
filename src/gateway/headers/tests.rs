use std::sync::Arc;

use std::net::IpAddr;

use ipnet::IpNet;

use super::*;
use crate::auth::{AuthMethod, UserState};
use crate::store::UserRecord;

fn identity() -> IdentityHeaders {
    IdentityHeaders::new(&HeaderNamesConfig::default()).unwrap()
}

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    headers
}

fn principal() -> Principal {
    let record = UserRecord {
        id: 7,
        username: "alice".into(),
        password_hash: String::new(),
        roles: vec!["billing".into()],
        is_admin: true,
        is_active: true,
        tokens_valid_after: 0,
        created_at: 0,
        updated_at: 0,
    };
    Principal {
        user: Arc::new(UserState::from_record(&record)),
        method: AuthMethod::Jwt,
        token: None,
    }
}

#[test]
fn forged_identity_is_stripped_in_every_spelling() {
    let mut headers = map(&[
        ("X-Authenticated-User", "root"),
        ("x-authenticated-user", "root2"),
        ("X_Authenticated_User", "root3"),
        ("x.authenticated.user", "root4"),
        ("X-AUTHENTICATED-ROLES", "admin"),
        ("x_authenticated-user_id", "1"),
        ("X-Authenticated-Method", "jwt"),
        ("x-request-id", "forged"),
        ("X-Authenticated-Username", "kept: a different header"),
        ("accept", "text/html"),
    ]);
    strip_forged_identity(&mut headers, &identity());
    let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
    left.sort_unstable();
    assert_eq!(left, ["accept", "x-authenticated-username"]);
}

#[test]
fn connection_cannot_delete_injected_identity() {
    let mut headers = map(&[("connection", "close, X-Authenticated-User, keep-alive")]);
    remove_hop_by_hop(&mut headers);
    inject_identity(
        &mut headers,
        &identity(),
        Some(&principal()),
        &HeaderValue::from_static("r1"),
    );
    assert_eq!(headers["x-authenticated-user"], "alice");
    assert_eq!(headers["x-authenticated-user-id"], "7");
    assert_eq!(headers["x-authenticated-roles"], "billing,admin");
    assert_eq!(headers["x-authenticated-method"], "jwt");
    assert_eq!(headers["x-request-id"], "r1");
    assert!(!headers.contains_key(CONNECTION));
}

#[test]
fn hop_by_hop_and_connection_named_headers_are_removed() {
    let mut headers = map(&[
        ("connection", "x-secret-internal"),
        ("x-secret-internal", "1"),
        ("keep-alive", "timeout=5"),
        ("te", "gzip"),
        ("upgrade", "websocket"),
        ("proxy-authorization", "Basic x"),
        ("accept", "*/*"),
    ]);
    remove_hop_by_hop(&mut headers);
    let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
    assert_eq!(left, ["accept"]);
}

#[test]
fn upgrade_request_is_recognised() {
    let headers = map(&[
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "websocket"),
    ]);
    assert!(requests_websocket(&headers));
    assert!(!requests_websocket(&map(&[("upgrade", "websocket")])));
    for other in ["h2c", "websocket, h2c", "TLS/1.0", "h2"] {
        let headers = map(&[("connection", "Upgrade"), ("upgrade", other)]);
        assert!(!requests_websocket(&headers), "{other}");
    }
}

#[test]
fn method_overrides_are_found_in_every_spelling() {
    let mut headers = map(&[
        ("x-http-method-override", "DELETE"),
        ("x_http_method", "delete"),
        ("X.Method.Override", "delete "),
        ("accept", "*/*"),
    ]);
    assert_eq!(override_methods(&headers), Ok(Some(Method::DELETE)));
    headers.append("x-method-override", "PUT".parse().unwrap());
    assert_eq!(override_methods(&headers), Err(ConflictingOverrides));
    strip_method_overrides(&mut headers);
    let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
    assert_eq!(left, ["accept"]);
    assert_eq!(
        query_override(Some("a=1&_method=delete")),
        Some(Method::DELETE)
    );
    assert_eq!(query_override(Some("method=delete")), None);
    assert_eq!(query_override(None), None);
}

#[test]
fn forwarded_headers_from_untrusted_peer_are_replaced() {
    let mut headers = map(&[
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "evil.example"),
        ("forwarded", "for=1.2.3.4"),
    ]);
    let peer = Peer::new("10.0.0.9".parse().unwrap(), &[]);
    set_forwarded(
        &mut headers,
        &peer,
        "https",
        Some(HeaderValue::from_static("app.example")),
    );
    assert_eq!(headers["x-forwarded-for"], "10.0.0.9");
    assert_eq!(headers["x-forwarded-proto"], "https");
    assert_eq!(headers["x-forwarded-host"], "app.example");
    assert!(!headers.contains_key("forwarded"));
}

#[test]
fn forwarded_headers_from_trusted_proxy_are_appended_or_kept() {
    let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
    let mut headers = map(&[
        ("x-forwarded-for", "203.0.113.5, 10.1.1.1"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "public.example"),
    ]);
    let peer = Peer::new("10.0.0.9".parse().unwrap(), &trusted);
    assert_eq!(
        peer.client_ip(&headers, &trusted),
        "203.0.113.5".parse::<IpAddr>().unwrap()
    );
    set_forwarded(
        &mut headers,
        &peer,
        "http",
        Some(HeaderValue::from_static("internal:8443")),
    );
    assert_eq!(
        headers["x-forwarded-for"],
        "203.0.113.5, 10.1.1.1, 10.0.0.9"
    );
    assert_eq!(headers["x-forwarded-proto"], "https");
    assert_eq!(headers["x-forwarded-host"], "public.example");
}

#[test]
fn an_entry_that_is_no_address_ends_the_walk_at_the_last_trusted_hop() {
    let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
    let peer = Peer::new("10.0.0.9".parse().unwrap(), &trusted);
    let client = |xff: &str| peer.client_ip(&map(&[("x-forwarded-for", xff)]), &trusted);
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(client("6.6.6.6, unknown"), ip("10.0.0.9"));
    assert_eq!(client("6.6.6.6, 10.1.1.1, garbage"), ip("10.0.0.9"));
    assert_eq!(client("6.6.6.6, 198.51.100.7:5555"), ip("198.51.100.7"));
    assert_eq!(client("6.6.6.6, [2001:db8::7]:5555"), ip("2001:db8::7"));
}

#[test]
fn untrusted_peer_cannot_choose_its_client_ip() {
    let headers = map(&[("x-forwarded-for", "1.1.1.1")]);
    let peer = Peer::new("192.0.2.1".parse().unwrap(), &[]);
    assert_eq!(
        peer.client_ip(&headers, &[]),
        "192.0.2.1".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn consumed_api_keys_are_removed_but_bearer_kept() {
    let mut headers = map(&[("authorization", "ApiKey pcs_x"), ("x-api-key", "pcs_y")]);
    remove_consumed_credentials(&mut headers);
    assert!(headers.is_empty());
    let mut headers = map(&[("authorization", "Bearer eyJ")]);
    remove_consumed_credentials(&mut headers);
    assert_eq!(headers["authorization"], "Bearer eyJ");
}

#[test]
fn routing_overrides_are_dropped_unless_a_trusted_proxy_sent_them() {
    let pairs = [
        ("x-original-url", "/admin"),
        ("X-Rewrite-URL", "/admin"),
        ("x-forwarded-prefix", "/app"),
        ("x-real-ip", "10.9.9.9"),
        ("x-original-host", "admin.internal"),
    ];
    let mut headers = map(&pairs);
    headers.append("x_real_ip", "10.9.9.9".parse().unwrap());
    strip_routing_overrides(&mut headers, &Peer::new("192.0.2.1".parse().unwrap(), &[]));
    assert!(headers.is_empty(), "{headers:?}");
    let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
    let mut headers = map(&pairs);
    strip_routing_overrides(
        &mut headers,
        &Peer::new("10.0.0.2".parse().unwrap(), &trusted),
    );
    assert_eq!(headers.len(), pairs.len());
    // A spelling that is not the header's own never comes from a proxy.
    let mut headers = map(&[
        ("x_forwarded_for", "6.6.6.6"),
        ("x-forwarded-for", "1.1.1.1"),
    ]);
    strip_routing_overrides(
        &mut headers,
        &Peer::new("10.0.0.2".parse().unwrap(), &trusted),
    );
    let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
    assert_eq!(left, ["x-forwarded-for"]);
}
