//! The session cookie: how it is set and checked, renewed while in use, and ended.

use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};

use super::{bare, origin, set_cookie_pair, sign_in};
use crate::common::{
    ADMIN_PASSWORD, ADMIN_USER, Fetch, TestGateway, assert_detail, client_for, json_of,
};

#[tokio::test]
async fn signing_in_sets_a_hardened_cookie_that_the_proxy_accepts_and_never_forwards() {
    let gw = TestGateway::start().await;
    let (response, cookie) = sign_in(&gw, ADMIN_USER, ADMIN_PASSWORD, "/app/dashboard?tab=2").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/app/dashboard?tab=2");
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    for flag in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=86400",
    ] {
        assert!(
            set_cookie.contains(flag),
            "{flag} missing from {set_cookie}"
        );
    }
    let cookie = cookie.unwrap();
    let response = bare(&gw)
        .get(gw.url("/app"))
        .header("cookie", format!("theme=dark; {cookie}; lang=en"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = gw.upstream.last();
    assert_eq!(seen.headers["x-authenticated-user"], "admin");
    assert_eq!(seen.headers["x-authenticated-method"], "session");
    assert_eq!(
        seen.headers["cookie"], "theme=dark; lang=en",
        "only the session cookie is removed"
    );
    let (_, me) = json_of(
        bare(&gw)
            .get(gw.api("/me/"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(me["auth_method"], "session");
}

#[tokio::test]
async fn cookie_borne_unsafe_requests_must_come_from_this_site() {
    let gw = TestGateway::start().await;
    let (_, cookie) = sign_in(&gw, ADMIN_USER, ADMIN_PASSWORD, "/").await;
    let cookie = cookie.unwrap();
    let csrf = "CSRF check failed: the request did not come from this site.";
    let before = gw.upstream.count();
    for (what, header) in [
        (
            "cross-site origin",
            Some(("origin", "https://evil.example")),
        ),
        ("null origin", Some(("origin", "null"))),
        (
            "cross-site referer",
            Some(("referer", "https://evil.example/page")),
        ),
        ("no origin at all", None),
    ] {
        let mut request = bare(&gw)
            .post(gw.url("/app/transfer"))
            .header("cookie", &cookie)
            .body("amount=1000");
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let (status, body) = json_of(request.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
        assert_eq!(body["detail"], csrf, "{what}");
    }
    let delete = bare(&gw)
        .delete(gw.api("/users/1/"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send();
    assert_detail(delete.await.unwrap(), StatusCode::FORBIDDEN, csrf).await;
    assert_eq!(
        gw.upstream.count(),
        before,
        "no cross-site request reached the upstream"
    );
    // The same request from the gateway's own origin goes through; so does one without a
    // cookie (a bearer or API key cannot be sent by a third-party page).
    let ok = bare(&gw)
        .post(gw.url("/app/transfer"))
        .header("cookie", &cookie)
        .header("origin", origin(&gw))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let token = gw.admin_token().await;
    let ok = bare(&gw)
        .post(gw.url("/app/transfer"))
        .bearer_auth(&token)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    // Signing in from another site is refused too (login CSRF).
    let login = bare(&gw)
        .post(gw.url("/_portcullis/login"))
        .header("origin", "https://evil.example")
        .form(&[("username", ADMIN_USER), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_detail(login, StatusCode::FORBIDDEN, csrf).await;
}

#[tokio::test]
async fn signing_out_and_revocation_end_the_session_at_once() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    gw.create_user(&admin, "nina", "nina-password-1", &[]).await;
    let (_, cookie) = sign_in(&gw, "nina", "nina-password-1", "/").await;
    let cookie = cookie.unwrap();
    let get = |cookie: String| {
        bare(&gw)
            .get(gw.url("/app"))
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(get(cookie.clone()).await.unwrap().status(), StatusCode::OK);

    let out = bare(&gw)
        .post(gw.url("/_portcullis/logout"))
        .header("cookie", &cookie)
        .header("origin", origin(&gw))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_detail(
        get(cookie.clone()).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "Invalid token.",
    )
    .await;
    let navigation = bare(&gw)
        .get(gw.url("/app"))
        .header("cookie", &cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        navigation.status(),
        StatusCode::FOUND,
        "a stale cookie in a browser means: sign in again"
    );

    let (_, cookie) = sign_in(&gw, "nina", "nina-password-1", "/").await;
    let cookie = cookie.unwrap();
    let patch = gw
        .client
        .patch(gw.api("/users/2/"))
        .bearer_auth(&admin)
        .json(&json!({"is_active": false}));
    assert_eq!(patch.send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        get(cookie).await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "deactivation ends the session"
    );
}

#[tokio::test]
async fn changing_my_password_keeps_this_session_and_ends_the_others() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    gw.create_user(&admin, "omar", "omar-password-1", &[]).await;
    let (_, here) = sign_in(&gw, "omar", "omar-password-1", "/").await;
    let (_, elsewhere) = sign_in(&gw, "omar", "omar-password-1", "/").await;
    let (here, elsewhere) = (here.unwrap(), elsewhere.unwrap());
    let change = |body: Value| {
        bare(&gw)
            .post(gw.api("/me/password/"))
            .header("cookie", &here)
            .header("origin", origin(&gw))
            .json(&body)
            .send()
    };
    let wrong = change(json!({"current_password": "not-it", "new_password": "omar-password-2"}))
        .await
        .unwrap();
    assert_detail(
        wrong,
        StatusCode::BAD_REQUEST,
        "current_password: The current password is incorrect.",
    )
    .await;
    let changed =
        change(json!({"current_password": "omar-password-1", "new_password": "omar-password-2"}))
            .await
            .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let fresh = set_cookie_pair(&changed);
    let get = |cookie: String| {
        bare(&gw)
            .get(gw.url("/app"))
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(
        get(fresh).await.unwrap().status(),
        StatusCode::OK,
        "this browser stays signed in"
    );
    assert_eq!(
        get(elsewhere).await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "other sessions end"
    );
    gw.login("omar", "omar-password-2").await;
}

#[tokio::test]
async fn a_session_in_use_is_renewed() {
    let gw = TestGateway::start_with(|c| {
        c.auth.access_ttl_secs = 1;
        c.auth.refresh_ttl_secs = 4;
        c.auth.leeway_secs = 0;
    })
    .await;
    let (_, cookie) = sign_in(&gw, ADMIN_USER, ADMIN_PASSWORD, "/").await;
    let cookie = cookie.unwrap();
    let early = bare(&gw)
        .get(gw.url("/app"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(
        !early.headers().contains_key("set-cookie"),
        "no renewal while young"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let later = bare(&gw)
        .get(gw.url("/app"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(later.status(), StatusCode::OK);
    let renewed = set_cookie_pair(&later);
    assert_ne!(renewed, cookie);
    // Past the first cookie's lifetime (exp has whole-second granularity: allow one more).
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(
        bare(&gw)
            .get(gw.url("/app"))
            .header("cookie", &cookie)
            .fetch_status()
            .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        bare(&gw)
            .get(gw.url("/app"))
            .header("cookie", &renewed)
            .fetch_status()
            .await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn behind_a_tls_terminating_proxy_the_browser_session_still_works() {
    let upstream = crate::common::Upstream::start().await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let mut config = crate::common::test_config(dir.path(), &upstream);
    config.server.tls = portcullis::config::TlsMode::Off;
    config.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let gw = TestGateway::start_in(config, upstream, dir).await;
    let _ = client_for(None);
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = plain
        .post(gw.url("/_portcullis/login"))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "app.example.com")
        .header("origin", "https://app.example.com")
        .form(&[
            ("username", ADMIN_USER),
            ("password", ADMIN_PASSWORD),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("; Secure"),
        "the browser used HTTPS: {cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let post = plain
        .post(gw.url("/app"))
        .header("cookie", &session)
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "app.example.com")
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::OK);
    let evil = plain
        .post(gw.url("/app"))
        .header("cookie", &session)
        .header("x-forwarded-proto", "https")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status(), StatusCode::FORBIDDEN);
}
