//! Paths built to make the rules and the upstream disagree. With `/public` public and `/admin`
//! for admins, none may turn a protected path public or hand /admin to a non-admin.

use std::time::Duration;

use super::{assert_invariant, gateway_with_alice};
use crate::common::{TestGateway, raw};

/// Sends `GET <target>` as raw HTTP/1.1 (so no client library tidies the path) and returns
/// the status.
async fn status_of(gw: &TestGateway, target: &str, token: Option<&str>) -> u16 {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
    let answer = raw::send(
        gw.addr,
        &gw.config.tls_paths().0,
        request.as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    raw::statuses(&answer).first().copied().unwrap_or(0)
}

#[tokio::test]
async fn traversal_and_encoding_tricks_never_make_admin_public() {
    let (gw, alice) = gateway_with_alice(|_| {}).await;
    // (target, status for anonymous, status for alice, what the upstream may see for alice)
    let cases: &[(&str, u16, u16)] = &[
        ("/public/../admin", 401, 403),
        ("/public/%2e%2e/admin", 401, 403),
        ("/public/%2E%2E/admin", 401, 403),
        ("/public/.%2e/admin", 401, 403),
        ("/public/./../admin/", 401, 403),
        ("//admin", 401, 403),
        ("///admin//users", 401, 403),
        ("/public/../../admin", 401, 403),
        ("/%61dmin", 401, 403),
        ("/admin?x=/public", 401, 403),
        ("/admin?/public/../x", 401, 403),
        ("/admin/..%2fpublic", 400, 400),
        ("/public%2f..%2fadmin", 400, 400),
        ("/public/%2e%2e%2fadmin", 400, 400),
        ("/public/..%5cadmin", 400, 400),
        ("/public/..\\admin", 400, 400),
        ("/public/..;/admin", 400, 400),
        ("/public/.;/admin", 400, 400),
        ("/public/%zz", 400, 400),
        ("/public/%4", 400, 400),
        ("/public/%00", 400, 400),
        ("/public/%0d%0aX-Authenticated-User:%20admin", 400, 400),
        ("/public/%c0%ae%c0%ae/admin", 400, 400),
        ("/admin#/public", 401, 403),
        // Express and IIS serve these as /admin and /public: a restriction covers every case,
        // a public rule only its own spelling.
        ("/ADMIN", 401, 403),
        ("/Admin/x", 401, 403),
        ("/PUBLIC/x", 401, 200),
        ("/publicity", 401, 200),
        // Decoded twice (a second proxy, a framework that decodes again) these are `..`, `/`.
        ("/public/%252e%252e/admin", 400, 400),
        ("/public%252fadmin", 400, 400),
        ("/public/%255cadmin", 400, 400),
    ];
    for (target, anonymous, as_alice) in cases {
        let before = gw.upstream.count();
        assert_eq!(
            status_of(&gw, target, None).await,
            *anonymous,
            "anonymous {target}"
        );
        assert_eq!(
            status_of(&gw, target, Some(&alice)).await,
            *as_alice,
            "alice {target}"
        );
        let forwarded = gw.upstream.count() - before;
        assert_eq!(forwarded, usize::from(*as_alice == 200), "{target}");
    }
    // What alice's two allowed requests looked like upstream: exactly what the rules judged.
    let paths: Vec<String> = gw
        .upstream
        .received()
        .into_iter()
        .map(|r| r.path_and_query)
        .collect();
    assert_eq!(paths, ["/PUBLIC/x", "/publicity"]);
    assert_invariant(&gw);
}

#[tokio::test]
async fn normalized_public_paths_reach_the_upstream_normalized() {
    let (gw, _) = gateway_with_alice(|_| {}).await;
    for (target, upstream_sees) in [
        ("/admin/../public/page", "/public/page"),
        ("/public/%7Euser/./a%20b", "/public/~user/a%20b"),
        ("//public//x?q=%2e%2e", "/public/x?q=%2e%2e"),
    ] {
        assert_eq!(status_of(&gw, target, None).await, 200, "{target}");
        assert_eq!(gw.upstream.last().path_and_query, upstream_sees, "{target}");
    }
    assert_invariant(&gw);
}

#[tokio::test]
async fn absolute_form_and_odd_request_targets_follow_the_same_rules() {
    let (gw, alice) = gateway_with_alice(|_| {}).await;
    assert_eq!(status_of(&gw, "https://localhost/admin", None).await, 401);
    assert_eq!(
        status_of(&gw, "https://evil.example/public/../admin", Some(&alice)).await,
        403
    );
    assert_eq!(status_of(&gw, "*", None).await, 400);
    assert_eq!(gw.upstream.count(), 0);
    assert_invariant(&gw);
}
