//! The sign-in pages: what they say, which headers they carry, and where they lead.

use http::StatusCode;

use super::{bare, sign_in};
use crate::common::{ADMIN_PASSWORD, ADMIN_USER, Fetch, TestGateway, assert_detail};

#[tokio::test]
async fn the_sign_in_page_explains_failures_and_throttling() {
    let gw = TestGateway::start_with(|c| {
        c.rate_limit.login_per_username_burst = 2;
        c.rate_limit.login_per_username_per_minute = 1;
    })
    .await;
    let (response, cookie) = sign_in(&gw, ADMIN_USER, "wrong-password", "/").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(cookie.is_none());
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Wrong username or password")
    );
    sign_in(&gw, ADMIN_USER, "wrong-password", "/").await;
    let (response, _) = sign_in(&gw, ADMIN_USER, ADMIN_PASSWORD, "/").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Request was throttled.")
    );
}

#[tokio::test]
async fn next_only_ever_leads_back_to_this_site() {
    let gw = TestGateway::start().await;
    for evil in [
        "//evil.example/",
        "/\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/app\r\nx: y",
        " /app",
    ] {
        let (response, _) = sign_in(&gw, ADMIN_USER, ADMIN_PASSWORD, evil).await;
        assert_eq!(response.headers()["location"], "/_portcullis/", "{evil:?}");
    }
    // The page itself never echoes an unsafe next into its form.
    let page = bare(&gw)
        .get(gw.url("/_portcullis/login?next=%2F%2Fevil.example"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("evil.example"));
    let page = bare(&gw)
        .get(gw.url("/_portcullis/login?next=%2Fapp%22%3E%3Cscript%3E"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<script>"), "next is escaped or refused");
}

#[tokio::test]
async fn browsers_are_sent_to_sign_in_and_scripts_get_json() {
    let gw = TestGateway::start().await;
    let page = bare(&gw)
        .get(gw.url("/app/report?id=7"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::FOUND);
    assert_eq!(
        page.headers()["location"],
        "/_portcullis/login?next=%2Fapp%2Freport%3Fid%3D7"
    );
    let api = bare(&gw)
        .get(gw.url("/app/report"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_detail(
        api,
        StatusCode::UNAUTHORIZED,
        "Authentication credentials were not provided.",
    )
    .await;
    let post = bare(&gw)
        .post(gw.url("/app/report"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        post.status(),
        StatusCode::UNAUTHORIZED,
        "only navigations are redirected"
    );
    assert_eq!(gw.upstream.count(), 0);
}

#[tokio::test]
async fn pages_carry_a_strict_content_security_policy() {
    let gw = TestGateway::start().await;
    let login = bare(&gw)
        .get(gw.url("/_portcullis/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let csp = login.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(login.headers()["x-frame-options"], "DENY");
    for asset in ["app.css", "common.js", "profile.js", "admin.js"] {
        assert_eq!(
            bare(&gw)
                .get(gw.url(&format!("/_portcullis/assets/{asset}")))
                .fetch_status()
                .await,
            StatusCode::OK
        );
    }
    assert_eq!(
        bare(&gw)
            .get(gw.url("/_portcullis/assets/../../etc/passwd"))
            .fetch_status()
            .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        bare(&gw)
            .get(gw.url("/_portcullis/assets/nope.js"))
            .fetch_status()
            .await,
        StatusCode::NOT_FOUND
    );
    let profile = bare(&gw).get(gw.url("/_portcullis/")).send().await.unwrap();
    assert_eq!(
        profile.status(),
        StatusCode::FOUND,
        "the profile needs a session"
    );
    assert_eq!(gw.upstream.count(), 0, "the pages are the gateway's own");
}
