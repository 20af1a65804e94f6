//! The web pages in a real headless Chromium: sign in, use the protected app, manage a key,
//! sign out; and the admin page. Each page is screenshotted into `target/screenshots/`.

use fantoccini::Locator;
use http::StatusCode;
use serde_json::Value;

use crate::common::browser::Browser;
use crate::common::{ADMIN_PASSWORD, ADMIN_USER, TestGateway};

async fn sign_in(browser: &Browser, username: &str, password: &str) {
    browser
        .find("#username")
        .await
        .send_keys(username)
        .await
        .unwrap();
    browser
        .find("#password")
        .await
        .send_keys(password)
        .await
        .unwrap();
    browser.find("#login-submit").await.click().await.unwrap();
}

/// The JSON the test upstream answered with, as Chromium shows a JSON document.
async fn upstream_reply(browser: &Browser) -> Value {
    let text = browser.find("body").await.text().await.unwrap();
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn a_user_signs_in_uses_the_app_manages_a_key_and_signs_out() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    gw.create_user(&admin, "petra", "petra-password-1", &["staff"])
        .await;
    let browser = Browser::start().await;

    // A protected page sends the browser to sign in, then back.
    browser
        .client
        .goto(&gw.url("/app/reports?year=2026"))
        .await
        .unwrap();
    browser.find("#login-form").await;
    assert!(
        browser
            .client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains("/_portcullis/login?next=")
    );
    browser.screenshot("login").await;
    sign_in(&browser, "petra", "petra-password-1").await;
    browser
        .client
        .wait()
        .for_url(&url::Url::parse(&gw.url("/app/reports?year=2026")).unwrap())
        .await
        .unwrap();
    let reply = upstream_reply(&browser).await;
    assert_eq!(reply["path"], "/app/reports?year=2026");
    assert_eq!(reply["user"], "petra");
    assert_eq!(reply["method"], "session");
    assert!(
        !gw.upstream.last().headers.contains_key("cookie"),
        "the session cookie is never forwarded"
    );
    browser.screenshot("protected-app").await;

    // The profile page: generate a key, see it once, use it from a script.
    browser.client.goto(&gw.url("/_portcullis/")).await.unwrap();
    let username = browser.find("#me-username").await;
    browser
        .client
        .wait()
        .for_element(Locator::XPath(
            "//*[@id='me-username'][normalize-space()='petra']",
        ))
        .await
        .unwrap();
    assert_eq!(username.text().await.unwrap(), "petra");
    browser.screenshot("profile").await;
    browser.find("#generate-key").await.click().await.unwrap();
    let key = browser
        .find("#new-key-box:not([hidden]) #new-key")
        .await
        .text()
        .await
        .unwrap();
    assert!(key.starts_with("pcs_"), "{key}");
    browser.screenshot("profile-new-key").await;
    let script = gw
        .client
        .get(gw.url("/app/export"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(gw.upstream.last().headers["x-authenticated-user"], "petra");

    // Revoke it on the page: the script is refused at once.
    browser.find("#revoke-key").await.click().await.unwrap();
    browser.client.accept_alert().await.unwrap();
    browser.find("#no-key:not([hidden])").await;
    let script = gw
        .client
        .get(gw.url("/app/export"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::UNAUTHORIZED);

    // Sign out: the protected page asks to sign in again.
    browser.find("#logout").await.click().await.unwrap();
    browser.find("#login-form").await;
    browser.client.goto(&gw.url("/app/reports")).await.unwrap();
    browser.find("#login-form").await;
    browser.screenshot("signed-out").await;
    browser.close().await;
}

#[tokio::test]
async fn an_admin_manages_users_keys_and_reads_the_audit_trail() {
    let gw = TestGateway::start().await;
    let browser = Browser::start().await;
    browser
        .client
        .goto(&gw.url("/_portcullis/admin"))
        .await
        .unwrap();
    browser.find("#login-form").await;
    sign_in(&browser, ADMIN_USER, ADMIN_PASSWORD).await;
    browser.find("#users tr[data-user-id='1']").await;

    browser
        .find("#new-username")
        .await
        .send_keys("quinn")
        .await
        .unwrap();
    browser
        .find("#new-user-password")
        .await
        .send_keys("quinn-password-1")
        .await
        .unwrap();
    browser
        .find("#new-user-roles")
        .await
        .send_keys("staff, billing")
        .await
        .unwrap();
    browser
        .find("#create-user-submit")
        .await
        .click()
        .await
        .unwrap();
    let row = browser.find("#users tr[data-user-id='2']").await;
    assert_eq!(
        row.find(Locator::Css(".username"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "quinn"
    );
    gw.login("quinn", "quinn-password-1").await;

    // A key for quinn, made by the admin, shown once, working from a script.
    browser
        .find("#key-user option[value='2']")
        .await
        .click()
        .await
        .unwrap();
    browser
        .click_until(
            "#generate-for-user-submit",
            "#admin-new-key-box:not([hidden]) #admin-new-key",
        )
        .await;
    let key = browser.find("#admin-new-key").await.text().await.unwrap();
    let script = gw
        .client
        .get(gw.url("/app"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(gw.upstream.last().headers["x-authenticated-user"], "quinn");

    // Deactivate quinn: the key stops working, and the audit trail shows what happened.
    browser
        .find("#users tr[data-user-id='2'] .toggle-active")
        .await
        .click()
        .await
        .unwrap();
    browser.find("#users tr[data-user-id='2'].inactive").await;
    let script = gw
        .client
        .get(gw.url("/app"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::UNAUTHORIZED);
    browser.client.refresh().await.unwrap();
    browser.find("#audit tr[data-event-id]").await;
    let kinds: Vec<String> = {
        let cells = browser
            .client
            .find_all(Locator::Css("#audit .kind"))
            .await
            .unwrap();
        let mut kinds = Vec::new();
        for cell in cells {
            kinds.push(cell.text().await.unwrap());
        }
        kinds
    };
    for expected in ["user_changed", "api_key_created", "user_created", "login"] {
        assert!(
            kinds.iter().any(|k| k == expected),
            "{expected} not in {kinds:?}"
        );
    }
    browser.screenshot("admin").await;
    browser.close().await;
}
