//! The proxy path: what reaches the upstream, and what never does.

use std::time::Duration;

use http::StatusCode;
use serde_json::Value;

use crate::common::{TestGateway, Upstream, assert_detail, raw};

const IDENTITY: [&str; 5] = [
    "x-authenticated-user",
    "x-authenticated-user-id",
    "x-authenticated-roles",
    "x-authenticated-method",
    "x-request-id",
];

#[tokio::test]
async fn authenticated_request_reaches_upstream_with_identity() {
    let gw = TestGateway::start().await;
    let token = gw.admin_token().await;
    let response = gw.get("/app/items?page=2&q=a%20b", Some(&token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.version(),
        http::Version::HTTP_2,
        "h2 negotiated by ALPN"
    );
    assert_eq!(response.headers()["x-upstream-reply"], "yes");
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();

    let seen = gw.upstream.last();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.path_and_query, "/app/items?page=2&q=a%20b");
    let h = &seen.headers;
    assert_eq!(h["x-authenticated-user"], "admin");
    assert_eq!(h["x-authenticated-user-id"], "1");
    assert_eq!(h["x-authenticated-roles"], "admin");
    assert_eq!(h["x-authenticated-method"], "jwt");
    assert_eq!(h["x-request-id"], request_id.as_str());
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(
        h["x-forwarded-host"],
        format!("localhost:{}", gw.addr.port()).as_str()
    );
    assert_eq!(
        h["host"],
        gw.upstream.addr.to_string().as_str(),
        "upstream sees its own host"
    );
    assert!(
        h["authorization"].to_str().unwrap().starts_with("Bearer "),
        "a JWT is forwarded"
    );
}

#[tokio::test]
async fn unauthenticated_requests_never_reach_the_upstream() {
    let gw = TestGateway::start().await;
    let response = gw.get("/app", None).await;
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="portcullis""#
    );
    assert_detail(
        response,
        StatusCode::UNAUTHORIZED,
        "Authentication credentials were not provided.",
    )
    .await;
    for method in [
        reqwest::Method::POST,
        reqwest::Method::DELETE,
        reqwest::Method::OPTIONS,
    ] {
        let response = gw
            .client
            .request(method, gw.url("/app/x"))
            .body("payload")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(gw.upstream.count(), 0);
}

#[tokio::test]
async fn forged_identity_headers_are_stripped_on_authenticated_requests() {
    let gw = TestGateway::start().await;
    let token = gw.admin_token().await;
    let response = gw
        .client
        .get(gw.url("/app"))
        .bearer_auth(&token)
        .header("X-Authenticated-User", "root")
        .header("x-authenticated-user", "root2")
        .header("X_Authenticated_User", "root3")
        .header("x.authenticated.user", "root4")
        .header("X-AUTHENTICATED-ROLES", "superuser")
        .header("X-Authenticated-User-Id", "0")
        .header("X_AUTHENTICATED_METHOD", "session")
        .header("X-Request-Id", "forged-id")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = gw.upstream.last();
    for name in IDENTITY {
        assert_eq!(
            seen.headers.get_all(name).iter().count(),
            1,
            "{name} appears once"
        );
    }
    assert_eq!(seen.headers["x-authenticated-user"], "admin");
    assert_eq!(seen.headers["x-authenticated-roles"], "admin");
    assert_ne!(seen.headers["x-request-id"], "forged-id");
    let spelled: Vec<&str> = seen
        .headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.contains('_') || k.contains('.'))
        .collect();
    assert!(
        spelled.is_empty(),
        "variant spellings reached the upstream: {spelled:?}"
    );
}

#[tokio::test]
async fn forged_identity_headers_are_stripped_on_public_routes() {
    let gw = TestGateway::start_with(|c| {
        c.rules.push(portcullis::config::RuleConfig {
            path: "/public".into(),
            methods: vec![],
            public: true,
            roles: vec![],
        })
    })
    .await;
    let response = gw
        .client
        .get(gw.url("/public/page"))
        .header("X-Authenticated-User", "root")
        .header("X_Authenticated_Roles", "admin")
        .header("x.authenticated.method", "jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = gw.upstream.last();
    for name in &IDENTITY[..4] {
        assert!(
            !seen.headers.contains_key(*name),
            "{name} reached the upstream anonymously"
        );
    }
    assert!(
        seen.headers
            .keys()
            .all(|k| !k.as_str().contains("authenticated"))
    );
}

#[tokio::test]
async fn connection_header_cannot_remove_injected_identity() {
    let gw = TestGateway::start().await;
    let token = gw.admin_token().await;
    let request = format!(
        "GET /app HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Connection: close, X-Authenticated-User, X-Authenticated-Roles, Authorization\r\n\r\n"
    );
    let cert = gw.config.tls_paths().0;
    let answer = raw::send(gw.addr, &cert, request.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(raw::statuses(&answer), vec![200], "{answer}");
    let seen = gw.upstream.last();
    assert_eq!(seen.headers["x-authenticated-user"], "admin");
    assert_eq!(seen.headers["x-authenticated-roles"], "admin");
    assert!(!seen.headers.contains_key("connection"));
}

#[tokio::test]
async fn duplicate_credential_headers_are_rejected() {
    let gw = TestGateway::start().await;
    let token = gw.admin_token().await;
    let cert = gw.config.tls_paths().0;
    for extra in [
        format!("Authorization: Bearer {token}"),
        "X-API-Key: a\r\nX-API-Key: b".to_string(),
    ] {
        let request = format!(
            "GET /app HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n{extra}\r\nConnection: close\r\n\r\n"
        );
        let answer = raw::send(gw.addr, &cert, request.as_bytes(), Duration::from_secs(5)).await;
        assert_eq!(raw::statuses(&answer), vec![400], "{answer}");
        assert!(answer.contains("Multiple"), "{answer}");
    }
    assert_eq!(gw.upstream.count(), 0);
}

#[tokio::test]
async fn upstream_down_is_502_and_slow_is_504() {
    // An address nothing listens on: bind, note, release.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = TestGateway::start_with(|c| c.upstream.url = format!("http://{dead}")).await;
    let token = gw.admin_token().await;
    assert_detail(
        gw.get("/app", Some(&token)).await,
        StatusCode::BAD_GATEWAY,
        "The upstream service is unavailable.",
    )
    .await;
    let ready = gw.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready.json::<Value>().await.unwrap()["upstream"],
        "unavailable"
    );

    let gw = TestGateway::start_with(|c| c.upstream.response_timeout_secs = 1).await;
    let token = gw.admin_token().await;
    assert_detail(
        gw.get("/slow", Some(&token)).await,
        StatusCode::GATEWAY_TIMEOUT,
        "The upstream service did not respond in time.",
    )
    .await;
}

#[tokio::test]
async fn health_endpoints_answer_without_credentials_and_are_never_forwarded() {
    let gw = TestGateway::start().await;
    for path in ["/healthz", "/readyz"] {
        let response = gw.get(path, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    assert_eq!(
        gw.get("/readyz", None).await.json::<Value>().await.unwrap()["store"],
        "ok"
    );
    // Exact paths only: anything else is the upstream's, behind authentication.
    assert_eq!(
        gw.get("/healthz/x", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        gw.get("/healthzz", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(gw.upstream.count(), 0);
}

#[tokio::test]
async fn request_and_response_bodies_stream_through() {
    let gw = TestGateway::start().await;
    let token = gw.admin_token().await;
    let body = vec![b'x'; 3 * 1024 * 1024];
    let response = gw
        .client
        .post(gw.url("/upload"))
        .bearer_auth(&token)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap()["body_len"],
        3 * 1024 * 1024
    );
    assert_eq!(gw.upstream.last().body.len(), 3 * 1024 * 1024);
}

#[tokio::test]
async fn http1_clients_work_end_to_end() {
    let gw = TestGateway::start().await;
    let token = gw.admin_token().await;
    let cert = gw.config.tls_paths().0;
    let request = format!(
        "GET /h1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    let answer = raw::send(gw.addr, &cert, request.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(raw::statuses(&answer), vec![200]);
    assert_eq!(gw.upstream.last().path_and_query, "/h1");
}

#[tokio::test]
async fn every_request_on_a_kept_alive_connection_is_authenticated() {
    let gw = TestGateway::start().await;
    let token = gw.admin_token().await;
    let cert = gw.config.tls_paths().0;
    let request = format!(
        "GET /one HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n\
         GET /two HTTP/1.1\r\nHost: localhost\r\n\r\n\
         GET /three HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    );
    let answer = raw::send(gw.addr, &cert, request.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(raw::statuses(&answer), vec![200, 401, 401], "{answer}");
    let paths: Vec<String> = gw
        .upstream
        .received()
        .into_iter()
        .map(|r| r.path_and_query)
        .collect();
    assert_eq!(paths, ["/one"]);
}

#[tokio::test]
async fn plain_http_mode_serves_behind_an_ingress() {
    let upstream = Upstream::start().await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let mut config = crate::common::test_config(dir.path(), &upstream);
    config.server.tls = portcullis::config::TlsMode::Off;
    let gw = TestGateway::start_in(config, upstream, dir).await;
    let token = gw.admin_token().await;
    assert_eq!(gw.get("/x", Some(&token)).await.status(), StatusCode::OK);
    assert_eq!(gw.upstream.last().headers["x-forwarded-proto"], "http");
    assert!(
        !gw.data_dir().join("tls.key").exists(),
        "no certificate generated with tls off"
    );
}

#[tokio::test]
async fn http2_to_the_upstream_when_configured() {
    let gw = TestGateway::start_with(|c| c.upstream.http2 = true).await;
    let token = gw.admin_token().await;
    let cert = gw.config.tls_paths().0;
    // An HTTP/1.1 client, an HTTP/2 upstream: the gateway translates.
    let request = format!(
        "GET /h2 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    let answer = raw::send(gw.addr, &cert, request.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(raw::statuses(&answer), vec![200], "{answer}");
    let seen = gw.upstream.last();
    assert_eq!(seen.version, http::Version::HTTP_2);
    assert_eq!(seen.headers["x-authenticated-user"], "admin");
}

#[tokio::test]
async fn hsts_is_sent_over_https_when_configured_and_never_over_plain_http() {
    let hsts = |response: &reqwest::Response| {
        response
            .headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap().to_string())
    };
    let gw = TestGateway::start_with(|c| c.server.hsts_max_age_secs = 600).await;
    let token = gw.admin_token().await;
    let expected = Some("max-age=600; includeSubDomains".to_string());
    // On every answer: proxied, refused, and the gateway's own.
    assert_eq!(hsts(&gw.get("/x", Some(&token)).await), expected);
    assert_eq!(hsts(&gw.get("/x", None).await), expected);
    assert_eq!(hsts(&gw.get("/healthz", None).await), expected);

    let off_by_default = TestGateway::start().await;
    assert_eq!(hsts(&off_by_default.get("/healthz", None).await), None);

    let upstream = Upstream::start().await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let mut config = crate::common::test_config(dir.path(), &upstream);
    config.server.tls = portcullis::config::TlsMode::Off;
    config.server.hsts_max_age_secs = 600;
    config.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let plain = TestGateway::start_in(config, upstream, dir).await;
    assert_eq!(hsts(&plain.get("/healthz", None).await), None);
    // Unless a trusted proxy in front terminated TLS: then the browser is on HTTPS.
    let behind_tls_proxy = plain
        .client
        .get(plain.url("/healthz"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(hsts(&behind_tls_proxy), expected);
}
