//! The OpenAPI document and Swagger UI, exercised in a real headless Chromium.

use http::StatusCode;
use serde_json::Value;

use crate::common::browser::Browser;
use crate::common::{TestGateway, json_of};

#[tokio::test]
async fn the_schema_is_served_with_both_security_schemes() {
    let gw = TestGateway::start().await;
    let (status, document) = json_of(gw.get("/api/schema/", None).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["servers"][0]["url"], "/api/accounts");
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["Bearer"]["scheme"], "bearer");
    assert_eq!(schemes["ApiKey"]["name"], "X-API-Key");
    assert_eq!(gw.get("/api/swagger/", None).await.status(), StatusCode::OK);
    let redirect = gw.client.get(gw.url("/api/swagger")).send().await.unwrap();
    assert_eq!(
        redirect.url().path(),
        "/api/swagger/",
        "followed to the slash"
    );
    assert_eq!(gw.upstream.count(), 0, "the docs are the gateway's own");

    let gw = TestGateway::start_with(|c| c.server.api_docs = false).await;
    assert_eq!(
        gw.get("/api/schema/", None).await.status(),
        StatusCode::UNAUTHORIZED,
        "the upstream's path again"
    );
}

#[tokio::test]
async fn swagger_ui_authorizes_with_an_api_key_and_tries_me() {
    let gw = TestGateway::start().await;
    let admin = gw.admin_token().await;
    let created = gw
        .client
        .post(gw.api("/api-keys/"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let key: Value = created.json().await.unwrap();
    let key = key["key"].as_str().unwrap().to_string();

    let browser = Browser::start().await;
    browser.client.goto(&gw.url("/api/swagger/")).await.unwrap();
    let title = browser.find(".swagger-ui .info .title").await;
    assert!(
        title
            .text()
            .await
            .unwrap()
            .contains("Portcullis accounts API")
    );
    browser.screenshot("swagger-ui").await;

    // Authorize: the ApiKey scheme, in the dialog Swagger UI opens.
    browser
        .find(".swagger-ui .auth-wrapper .authorize")
        .await
        .click()
        .await
        .unwrap();
    let api_key_box = "//div[contains(@class,'auth-container')][.//h4[contains(., 'ApiKey')]]";
    browser
        .find_xpath(&format!("{api_key_box}//input"))
        .await
        .send_keys(&key)
        .await
        .unwrap();
    browser
        .find_xpath(&format!(
            "{api_key_box}//button[contains(@class,'authorize')]"
        ))
        .await
        .click()
        .await
        .unwrap();
    browser.screenshot("swagger-ui-authorized").await;
    browser
        .find(".swagger-ui .dialog-ux .close-modal")
        .await
        .click()
        .await
        .unwrap();

    // Try it out on GET /me/.
    browser.find_xpath("//div[contains(@class,'opblock-get')][.//*[@data-path='/me/']]//button[contains(@class,'opblock-summary-control')]").await.click().await.unwrap();
    browser.find(".opblock-get.is-open .try-out__btn").await;
    let execute = browser
        .click_until(
            ".opblock-get.is-open .try-out__btn",
            ".opblock-get.is-open .execute",
        )
        .await;
    execute.click().await.unwrap();
    let status = browser
        .find(".opblock-get.is-open .live-responses-table tbody .response-col_status")
        .await;
    assert_eq!(status.text().await.unwrap().trim(), "200");
    let body = browser.find(".opblock-get.is-open .live-responses-table tbody .response-col_description .highlight-code pre").await;
    let text = body.text().await.unwrap();
    let me: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    assert_eq!(me["username"], "admin");
    assert_eq!(me["auth_method"], "api_key");
    let status = serde_json::to_value(&status).unwrap();
    browser
        .client
        .execute(
            "arguments[0].scrollIntoView({block: 'center'})",
            vec![status],
        )
        .await
        .unwrap();
    browser.screenshot("swagger-ui-try-me").await;
    browser.close().await;
    assert_eq!(gw.upstream.count(), 0);
}
