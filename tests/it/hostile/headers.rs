//! Headers an attacker writes: forged identity, routing overrides, forwarding headers, size.

use std::time::Duration;

use http::StatusCode;

use super::{assert_invariant, gateway_with_alice, refused};
use crate::common::raw;

#[tokio::test]
async fn forged_identity_in_every_spelling_never_arrives() {
    let (gw, alice) = gateway_with_alice(|_| {}).await;
    let spellings = [
        "X-Authenticated-User",
        "x-authenticated-user",
        "X_AUTHENTICATED_USER",
        "x.authenticated.user",
        "X-Authenticated_User",
        "x_authenticated.user",
    ];
    for (token, path) in [(Some(alice.as_str()), "/app"), (None, "/public/page")] {
        let mut request = gw.client.get(gw.url(path));
        for (i, name) in spellings.iter().enumerate() {
            request = request.header(*name, format!("admin{i}"));
        }
        request = request
            .header("X-Authenticated-User", "admin-again")
            .header("X-Authenticated-Roles", "admin")
            .header("X_Authenticated_Roles", "admin")
            .header("X-Authenticated-User-Id", "1")
            .header("X-Authenticated-Method", "jwt");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        assert_eq!(
            request.send().await.unwrap().status(),
            StatusCode::OK,
            "{path}"
        );
        let seen = gw.upstream.last();
        match token {
            Some(_) => {
                assert_eq!(seen.headers["x-authenticated-user"], "alice");
                assert_eq!(seen.headers["x-authenticated-roles"], "staff");
            }
            None => assert!(!seen.headers.contains_key("x-authenticated-user")),
        }
    }
    // A name with a trailing space is not a header name at all: the request is refused.
    let cert = gw.config.tls_paths().0;
    let before = gw.upstream.count();
    let request = b"GET /public/x HTTP/1.1\r\nHost: localhost\r\nX-Authenticated-User : admin\r\nConnection: close\r\n\r\n";
    let answer = raw::send(gw.addr, &cert, request, Duration::from_secs(5)).await;
    assert_eq!(raw::statuses(&answer), vec![400], "{answer}");
    assert_eq!(gw.upstream.count(), before);
    assert_invariant(&gw);
}

#[tokio::test]
async fn routing_override_headers_change_nothing() {
    let (gw, alice) = gateway_with_alice(|_| {}).await;
    for name in [
        "X-Original-URL",
        "X-Rewrite-URL",
        "X-Forwarded-Uri",
        "X-Original-URI",
        "X-Forwarded-Path",
    ] {
        // Asking for a public path while claiming another: the gateway and upstream see /public.
        let response = gw
            .client
            .get(gw.url("/public/page"))
            .header(name, "/admin/users")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        let seen = gw.upstream.last();
        assert_eq!(seen.path_and_query, "/public/page");
        assert!(
            !seen
                .headers
                .contains_key(name.to_ascii_lowercase().as_str()),
            "{name} forwarded"
        );
        // Asking for a protected path while claiming a public one: still protected.
        let send = gw
            .client
            .get(gw.url("/admin/users"))
            .header(name, "/public/page")
            .send();
        refused(&gw, StatusCode::UNAUTHORIZED, name, send).await;
        let send = gw
            .client
            .get(gw.url("/admin/users"))
            .bearer_auth(&alice)
            .header(name, "/public")
            .send();
        refused(&gw, StatusCode::FORBIDDEN, name, send).await;
    }
    assert_invariant(&gw);
}

#[tokio::test]
async fn forwarding_headers_are_replaced_unless_the_peer_is_trusted() {
    let (gw, alice) = gateway_with_alice(|_| {}).await;
    let spoofed = gw
        .client
        .get(gw.url("/app"))
        .bearer_auth(&alice)
        .header("X-Forwarded-For", "203.0.113.66")
        .header("X-Forwarded-Host", "evil.example")
        .header("X-Forwarded-Proto", "http")
        .header("Forwarded", "for=203.0.113.66;proto=http")
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), StatusCode::OK);
    let seen = gw.upstream.last();
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(
        seen.headers["x-forwarded-host"],
        format!("localhost:{}", gw.addr.port()).as_str()
    );
    assert_eq!(seen.headers["x-forwarded-proto"], "https");
    assert!(!seen.headers.contains_key("forwarded"));

    let (gw, alice) =
        gateway_with_alice(|c| c.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()])
            .await;
    let relayed = gw
        .client
        .get(gw.url("/app"))
        .bearer_auth(&alice)
        .header("X-Forwarded-For", "203.0.113.7")
        .header("X-Forwarded-Host", "app.example.com")
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(relayed.status(), StatusCode::OK);
    let seen = gw.upstream.last();
    assert_eq!(seen.headers["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-host"], "app.example.com");
    assert_invariant(&gw);
}

#[tokio::test]
async fn an_oversized_header_is_431_and_the_connection_survives_for_others() {
    let (gw, alice) = gateway_with_alice(|_| {}).await;
    let big = "a".repeat(200 * 1024);
    let request = format!("GET /public/x HTTP/1.1\r\nHost: localhost\r\nX-Padding: {big}\r\n\r\n");
    let answer = raw::send(
        gw.addr,
        &gw.config.tls_paths().0,
        request.as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(raw::statuses(&answer), vec![431], "HTTP/1.1");
    // HTTP/2 answers with 431 or, for a header block this size, a GOAWAY; never a response.
    if let Ok(response) = gw
        .client
        .get(gw.url("/public/x"))
        .header("X-Padding", &big)
        .send()
        .await
    {
        assert_eq!(
            response.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HTTP/2"
        );
    }
    // HTTP/2 answers a header flood with GOAWAY; any non-error answer would be a failure.
    let many = (0..2000).fold(gw.client.get(gw.url("/public/x")), |r, i| {
        r.header(format!("x-h{i}"), "v")
    });
    if let Ok(response) = many.send().await {
        assert!(
            response.status().is_client_error(),
            "too many headers: {}",
            response.status()
        );
    }
    assert_eq!(gw.upstream.count(), 0);
    assert_eq!(gw.get("/app", Some(&alice)).await.status(), StatusCode::OK);
    assert_invariant(&gw);
}
