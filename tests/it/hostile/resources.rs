//! Exhausting the gateway: slow clients, connection floods, huge and deep bodies, login storms,
//! a damaged store.

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{assert_invariant, gateway_with_alice, refused};
use crate::common::process::start_failure;
use crate::common::{Fetch, raw};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_and_others_still_served() {
    let (gw, alice) = gateway_with_alice(|c| {
        c.server.header_read_timeout_secs = 2;
        c.server.tls_handshake_timeout_secs = 2;
    })
    .await;
    let cert = gw.config.tls_paths().0;
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = raw::connect(gw.addr, &cert, &[b"http/1.1"]).await;
        stream
            .write_all(b"GET /public/x HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(stream);
    }
    // A healthy client is served at once, beside 200 half-sent requests.
    let started = Instant::now();
    assert_eq!(gw.get("/app", Some(&alice)).await.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "healthy request took {:?}",
        started.elapsed()
    );

    // After the header timeout every slow connection has been closed by the gateway.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut closed = 0;
    for stream in &mut slow {
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            Ok(Ok(_)) => closed += 1, // a 408 then close
            Err(_) => {}
        }
    }
    assert_eq!(closed, slow.len(), "slow connections left open");
    assert_eq!(gw.upstream.count(), 1);
    assert_invariant(&gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_past_the_limit_is_shed_and_service_recovers() {
    let (gw, alice) = gateway_with_alice(|c| c.server.max_connections = 20).await;
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(tokio::net::TcpStream::connect(gw.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics = gw.metrics().await;
    let rejected: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("portcullis_rejected_connections_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        rejected >= 20,
        "only {rejected} connections were shed:\n{metrics}"
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = crate::common::client_for(Some(&gw.config.tls_paths().0));
    let response = client
        .get(gw.url("/app"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_invariant(&gw);
}

#[tokio::test]
async fn huge_and_deep_bodies_are_refused_without_buffering() {
    let (gw, _) = gateway_with_alice(|_| {}).await;
    // Declared 10 MB: refused from the head alone, before the body is sent.
    let cert = gw.config.tls_paths().0;
    let mut stream = raw::connect(gw.addr, &cert, &[b"http/1.1"]).await;
    let head = "POST /api/accounts/token/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n\r\n{\"username\":\"";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // 10 MB actually streamed without a length: cut off at the cap.
    let chunk = bytes::Bytes::from(vec![b' '; 1024 * 1024]);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        for _ in 0..10 {
            if tx.send(Ok(chunk.clone())).await.is_err() {
                break;
            }
        }
    });
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|item| (item.map(http_body::Frame::data), rx))
    });
    let body = reqwest::Body::wrap(http_body_util::StreamBody::new(frames));
    let response = gw
        .client
        .post(gw.api("/token/"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    if let Ok(response) = response {
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let send = gw
        .client
        .post(gw.api("/token/"))
        .header("content-type", "application/json")
        .body(deep)
        .send();
    refused(&gw, StatusCode::PAYLOAD_TOO_LARGE, "deep and large", send).await;
    let deep = format!(
        "{{\"username\":{}1{}}}",
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    let send = gw
        .client
        .post(gw.api("/token/"))
        .header("content-type", "application/json")
        .body(deep)
        .send();
    refused(&gw, StatusCode::BAD_REQUEST, "deep", send).await;
    gw.login("alice", super::ALICE_PASSWORD).await;
    assert_invariant(&gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_storm_does_not_starve_authenticated_traffic() {
    let (gw, alice) = gateway_with_alice(|_| {}).await;
    let gw = std::sync::Arc::new(gw);
    let storm: Vec<_> = (0..60)
        .map(|i| {
            let gw = gw.clone();
            tokio::spawn(async move {
                let body = json!({"username": format!("nobody{i}"), "password": "wrong-password"});
                gw.client
                    .post(gw.api("/token/"))
                    .json(&body)
                    .fetch_status()
                    .await
            })
        })
        .collect();
    let mut proxied = Vec::new();
    for _ in 0..20 {
        proxied.push(gw.get("/app", Some(&alice)).await.status());
    }
    let storm_done_after_proxy = storm.iter().any(|h| !h.is_finished());
    for handle in storm {
        assert_eq!(handle.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    assert!(proxied.iter().all(|s| *s == StatusCode::OK));
    assert!(
        storm_done_after_proxy,
        "20 proxied requests finished while logins still queued for hashing"
    );
    assert_invariant(&gw);
}

#[tokio::test]
async fn a_truncated_store_is_an_error_naming_the_file() {
    let (gw, _) = gateway_with_alice(|_| {}).await;
    let (config, _, dir) = gw.stop().await;
    let store = config.redb_path();
    let full = std::fs::read(&store).unwrap();
    std::fs::write(&store, &full[..full.len() / 2]).unwrap();
    let (code, output) = start_failure(
        dir.path(),
        &[("PORTCULLIS_DATA_DIR", config.data_dir.display().to_string())],
    );
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains(store.to_str().unwrap()), "{output}");
    assert_eq!(
        std::fs::read(&store).unwrap().len(),
        full.len() / 2,
        "left as found"
    );
}
