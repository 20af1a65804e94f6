//! What the upstream framework reads that the rules did not judge: matrix parameters, method
//! overrides, lowercase and tracing methods, protocol upgrades, and host, scheme and address
//! overrides. None of them may make the upstream serve something other than what was authorized.

use std::time::Duration;

use http::StatusCode;
use portcullis::config::RuleConfig;

use super::{assert_invariant, gateway_with_alice, refused};
use crate::common::{Fetch, TestGateway, assert_detail, client_for, raw};

fn bearer(token: Option<&str>) -> String {
    token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default()
}

/// Sends raw HTTP/1.1 bytes (no client library tidies them) and returns the whole answer.
async fn raw_answer(gw: &TestGateway, request: &str) -> String {
    let cert = gw.config.tls_paths().0;
    raw::send(gw.addr, &cert, request.as_bytes(), Duration::from_secs(2)).await
}

/// `name` folded the way upstream frameworks fold header names.
fn folded(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

const MATRIX: [&str; 9] = [
    "/admin;x=1",
    "/admin;jsessionid=abc/x",
    "/admin;/x",
    "/admin;",
    "/public;/../admin",
    "/public/..;/admin",
    "/admin%3Bx",
    "/admin%3bx",
    "/x;y/admin",
];

#[tokio::test]
async fn matrix_parameters_are_refused_on_every_segment() {
    let (gw, alice) = gateway_with_alice(|_| {}).await;
    for target in MATRIX {
        for token in [None, Some(alice.as_str())] {
            let request = format!(
                "GET {target} HTTP/1.1\r\nHost: localhost\r\n{}Connection: close\r\n\r\n",
                bearer(token)
            );
            let answer = raw_answer(&gw, &request).await;
            let who = if token.is_some() {
                "alice"
            } else {
                "anonymous"
            };
            assert_eq!(
                raw::statuses(&answer),
                vec![400],
                "{who} {target}: {answer}"
            );
            assert!(
                answer.contains("Malformed request path."),
                "{target}: {answer}"
            );
        }
    }
    // The same over HTTP/2. The client resolves dot segments itself, so a target it would
    // rewrite (`/public;/../admin`) is only sent raw, above.
    let _ = client_for(None);
    let cert = gw.config.tls_paths().0;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .tls_backend_preconfigured(raw::tls_client_config(&cert, &[b"h2"]))
        .build()
        .unwrap();
    for target in MATRIX {
        let url = gw.url(target);
        if url::Url::parse(&url).unwrap().path() != target {
            continue;
        }
        for token in [None, Some(alice.as_str())] {
            let mut request = h2.get(&url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.version(), http::Version::HTTP_2, "{target}");
            assert_detail(response, StatusCode::BAD_REQUEST, "Malformed request path.").await;
        }
    }
    assert_eq!(
        gw.upstream.count(),
        0,
        "a matrix parameter reached the upstream"
    );
    assert_invariant(&gw);
}

/// `DELETE /reports…` needs the admin role; any other method on it any user.
fn reports_rule() -> RuleConfig {
    RuleConfig {
        path: "/reports".into(),
        methods: vec!["DELETE".into()],
        public: false,
        roles: vec!["admin".into()],
    }
}

const OVERRIDE_SPELLINGS: [&str; 5] = [
    "X-HTTP-Method-Override",
    "X-HTTP-Method",
    "X-Method-Override",
    "x_http_method_override",
    "X.HTTP.Method.Override",
];

fn is_override(name: &str) -> bool {
    [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ]
    .contains(&folded(name).as_str())
}

fn post_report(
    gw: &TestGateway,
    token: &str,
    query: &str,
    headers: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let request = gw
        .client
        .post(gw.url(&format!("/reports/1{query}")))
        .bearer_auth(token);
    headers.iter().fold(request, |r, (n, v)| r.header(*n, *v))
}

/// `?_method=` is an override whatever the switch says: the rules judge it.
async fn the_method_query_parameter_is_judged(gw: &TestGateway, alice: &str) {
    let send = post_report(gw, alice, "?_method=DELETE", &[]).send();
    refused(gw, StatusCode::FORBIDDEN, "?_method=DELETE", send).await;
    let status = post_report(gw, alice, "?_method=PATCH", &[])
        .fetch_status()
        .await;
    assert_eq!(status, StatusCode::OK, "?_method=PATCH");
    assert_eq!(
        gw.upstream.last().path_and_query,
        "/reports/1?_method=PATCH"
    );
}

#[tokio::test]
async fn method_override_headers_are_removed_unless_overrides_are_enabled() {
    let (gw, alice) = gateway_with_alice(|c| c.rules.push(reports_rule())).await;
    for name in OVERRIDE_SPELLINGS {
        let status = post_report(&gw, &alice, "", &[(name, "DELETE")])
            .fetch_status()
            .await;
        assert_eq!(status, StatusCode::OK, "{name}");
        let seen = gw.upstream.last();
        assert_eq!(seen.method, "POST", "{name}");
        let left: Vec<_> = seen
            .headers
            .keys()
            .filter(|k| is_override(k.as_str()))
            .collect();
        assert!(left.is_empty(), "{name}: {left:?} reached the upstream");
    }
    the_method_query_parameter_is_judged(&gw, &alice).await;
    assert_invariant(&gw);
}

#[tokio::test]
async fn honoured_method_overrides_are_judged_by_the_rules() {
    let (gw, alice) = gateway_with_alice(|c| {
        c.rules.push(reports_rule());
        c.upstream.method_override = true;
    })
    .await;
    for name in OVERRIDE_SPELLINGS {
        let send = post_report(&gw, &alice, "", &[(name, "DELETE")]).send();
        refused(&gw, StatusCode::FORBIDDEN, name, send).await;
    }
    let status = post_report(&gw, &alice, "", &[("X-HTTP-Method-Override", "GET")])
        .fetch_status()
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(gw.upstream.last().headers["x-http-method-override"], "GET");
    // Two overrides that disagree: which one the upstream reads is unknowable.
    for pair in [
        [
            ("X-HTTP-Method-Override", "GET"),
            ("X-Method-Override", "DELETE"),
        ],
        [
            ("X-HTTP-Method-Override", "GET"),
            ("X-HTTP-Method-Override", "DELETE"),
        ],
    ] {
        let send = post_report(&gw, &alice, "", &pair).send();
        refused(&gw, StatusCode::BAD_REQUEST, &format!("{pair:?}"), send).await;
    }
    the_method_query_parameter_is_judged(&gw, &alice).await;
    assert_invariant(&gw);
}

#[tokio::test]
async fn head_is_judged_by_the_get_rules() {
    let (gw, alice) = gateway_with_alice(|c| {
        c.rules.push(RuleConfig {
            path: "/ledger".into(),
            methods: vec!["GET".into()],
            public: false,
            roles: vec!["admin".into()],
        })
    })
    .await;
    // HEAD answers carry no body, so no `detail` to read: status and upstream only.
    let head = gw.client.head(gw.url("/ledger")).bearer_auth(&alice);
    assert_eq!(
        head.fetch_status().await,
        StatusCode::FORBIDDEN,
        "alice HEAD"
    );
    let send = gw.client.get(gw.url("/ledger")).bearer_auth(&alice).send();
    refused(&gw, StatusCode::FORBIDDEN, "alice GET", send).await;
    assert_eq!(gw.upstream.count(), 0, "alice's HEAD reached the upstream");
    let admin = gw.admin_token().await;
    let head = gw.client.head(gw.url("/ledger")).bearer_auth(&admin);
    assert_eq!(head.fetch_status().await, StatusCode::OK, "admin HEAD");
    assert_eq!(gw.upstream.last().method, "HEAD");
    assert_invariant(&gw);
}

#[tokio::test]
async fn lowercase_and_tracing_methods_are_refused() {
    let (gw, alice) = gateway_with_alice(|_| {}).await;
    for method in ["get", "Delete", "gET", "post"] {
        for (target, token) in [
            ("/admin", Some(alice.as_str())),
            ("/app", Some(alice.as_str())),
            ("/public/x", None),
        ] {
            let request = format!(
                "{method} {target} HTTP/1.1\r\nHost: localhost\r\n{}Connection: close\r\n\r\n",
                bearer(token)
            );
            let answer = raw_answer(&gw, &request).await;
            assert_eq!(
                raw::statuses(&answer),
                vec![400],
                "{method} {target}: {answer}"
            );
        }
    }
    assert_eq!(
        gw.upstream.count(),
        0,
        "a lowercase method reached the upstream"
    );
    for name in ["TRACE", "TRACK"] {
        let method = http::Method::from_bytes(name.as_bytes()).unwrap();
        let send = gw
            .client
            .request(method.clone(), gw.url("/app"))
            .bearer_auth(&alice)
            .send();
        refused(&gw, StatusCode::METHOD_NOT_ALLOWED, name, send).await;
        let send = gw.client.request(method, gw.url("/public/x")).send();
        refused(&gw, StatusCode::METHOD_NOT_ALLOWED, name, send).await;
    }
    assert_invariant(&gw);
}

/// Headers through which frameworks learn the request's host, scheme, port, method or client
/// address from a proxy in front, with a value an attacker would pick.
const OVERRIDES: [(&str, &str); 17] = [
    ("X-Original-Host", "evil.example"),
    ("X-Host", "evil.example"),
    ("X-Forwarded-Server", "evil.example"),
    ("X-HTTP-Host-Override", "evil.example"),
    ("X-Forwarded-Port", "8443"),
    ("X-Forwarded-Scheme", "http"),
    ("X-Forwarded-Ssl", "off"),
    ("X-Url-Scheme", "http"),
    ("Front-End-Https", "off"),
    ("X-Real-IP", "203.0.113.9"),
    ("True-Client-IP", "203.0.113.9"),
    ("X-Client-IP", "203.0.113.9"),
    ("X-Cluster-Client-IP", "203.0.113.9"),
    ("CF-Connecting-IP", "203.0.113.9"),
    ("Fastly-Client-IP", "203.0.113.9"),
    ("X-Original-Method", "DELETE"),
    ("X-Forwarded-Method", "DELETE"),
];

#[tokio::test]
async fn host_scheme_and_address_overrides_reach_the_upstream_only_from_a_trusted_peer() {
    for trusted in [false, true] {
        let (gw, alice) = gateway_with_alice(|c| {
            if trusted {
                c.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
            }
        })
        .await;
        let mut request = gw.client.get(gw.url("/app")).bearer_auth(&alice);
        for (name, value) in OVERRIDES {
            request = request
                .header(name, value)
                .header(name.replace('-', "_"), format!("{value}-underscored"));
        }
        assert_eq!(
            request.fetch_status().await,
            StatusCode::OK,
            "trusted: {trusted}"
        );
        let seen = gw.upstream.last();
        for (name, value) in OVERRIDES {
            let own = name.to_ascii_lowercase();
            let arrived: Vec<(String, String)> = seen
                .headers
                .iter()
                .filter(|(k, _)| folded(k.as_str()) == own)
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string()))
                .collect();
            // A trusted proxy sends the header's own spelling, which passes unchanged; no proxy
            // sends the underscore spelling, which only a client behind it could have written.
            let expected = if trusted {
                vec![(own.clone(), value.to_string())]
            } else {
                vec![]
            };
            assert_eq!(arrived, expected, "{name}, trusted: {trusted}");
        }
        assert_invariant(&gw);
    }
}

#[tokio::test]
async fn request_trailers_never_reach_the_upstream() {
    // Over HTTP/2 to the upstream, trailers would be passed on as they came.
    let (gw, alice) = gateway_with_alice(|c| c.upstream.http2 = true).await;
    let request = format!(
        "POST /app HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {alice}\r\n\
         Transfer-Encoding: chunked\r\nTrailer: X-Authenticated-User, X-Original-URL\r\n\
         Connection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Authenticated-User: admin\r\n\
         X-Original-URL: /admin\r\n\r\n"
    );
    let answer = raw_answer(&gw, &request).await;
    assert_eq!(raw::statuses(&answer), [200], "{answer}");
    let received = gw.upstream.last();
    assert_eq!(received.body.as_ref(), b"hello");
    let trailers = received.trailers.unwrap_or_default();
    assert!(
        trailers.is_empty(),
        "trailers reached the upstream: {trailers:?}"
    );
    assert_invariant(&gw);
}
