//! Bad input to the accounts API: malformed, missing, oversized, unknown.

use http::StatusCode;
use serde_json::Value;

use crate::common::{ADMIN_PASSWORD, ADMIN_USER, TestGateway, assert_detail, json_of};

#[tokio::test]
async fn malformed_missing_and_oversized_bodies_are_refused_clearly() {
    let gw = TestGateway::start_with(|c| c.server.max_body_bytes = 1024).await;
    let raw = |body: &'static str, content_type: &'static str| {
        gw.client
            .post(gw.api("/token/"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let (status, body) = json_of(raw("{\"username\": ", "application/json").await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error"),
        "{body}"
    );
    assert_detail(
        raw("[]", "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "Expected a JSON object.",
    )
    .await;
    assert_detail(
        raw("{\"username\":\"a\"}", "application/json")
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "password: This field is required.",
    )
    .await;
    assert_detail(
        raw("{\"password\":\"a\"}", "application/json")
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "username: This field is required.",
    )
    .await;
    assert_detail(
        raw("{\"username\":1,\"password\":\"a\"}", "application/json")
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "username: Not a valid string.",
    )
    .await;
    assert_detail(
        raw("username=a&password=b", "application/x-www-form-urlencoded")
            .await
            .unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Unsupported media type in request; use application/json.",
    )
    .await;
    let big = format!(
        "{{\"username\":\"{}\",\"password\":\"x\"}}",
        "a".repeat(4096)
    );
    let response = gw
        .client
        .post(gw.api("/token/"))
        .json(&serde_json::from_str::<Value>(&big).unwrap())
        .send()
        .await
        .unwrap();
    assert_detail(
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request body is too large.",
    )
    .await;
    // A body that says nothing of its length and runs past the cap.
    let stream = futures_stream(vec![vec![b' '; 600], vec![b' '; 600]]);
    let response = gw
        .client
        .post(gw.api("/token/"))
        .header("content-type", "application/json")
        .body(stream)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // The endpoint still works afterwards.
    gw.login(ADMIN_USER, ADMIN_PASSWORD).await;
}

fn futures_stream(chunks: Vec<Vec<u8>>) -> reqwest::Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        for chunk in chunks {
            let _ = tx.send(Ok(bytes::Bytes::from(chunk))).await;
        }
    });
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|item| (item.map(http_body::Frame::data), rx))
    });
    reqwest::Body::wrap(http_body_util::StreamBody::new(frames))
}

#[tokio::test]
async fn unknown_paths_and_methods_are_named() {
    let gw = TestGateway::start().await;
    let response = gw.client.put(gw.api("/users/7/")).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "GET, PATCH, DELETE");
    assert_detail(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed.",
    )
    .await;
    assert_detail(
        gw.client.get(gw.api("/token/")).send().await.unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed.",
    )
    .await;
    assert_detail(
        gw.client.get(gw.api("/nope/")).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "Not found.",
    )
    .await;
    assert_eq!(
        gw.upstream.count(),
        0,
        "the accounts API is never forwarded"
    );
}
