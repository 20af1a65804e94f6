//! Faults an operator meets, against the real thing: an upstream that closes kept-alive
//! connections as they are reused, a disk that fills and empties again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::{Fetch, TestGateway};

/// Request heads an upstream read, by method.
#[derive(Default)]
struct Heads {
    get: AtomicUsize,
    post: AtomicUsize,
}

/// An upstream that answers the first request on each connection, keeps the connection open
/// as HTTP/1.1 allows, and closes it without an answer when the next request arrives: what
/// Node, uvicorn or gunicorn do when their idle timeout strikes just as a proxy reuses the
/// connection.
async fn closes_reused_connections() -> (String, Arc<Heads>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let heads = Arc::new(Heads::default());
    let counted = heads.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let heads = counted.clone();
            tokio::spawn(async move {
                for answered in [true, false] {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let counter = if head.starts_with(b"POST") {
                        &heads.post
                    } else {
                        &heads.get
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    if answered {
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
                // Dropped unanswered: the second request's connection closes under it.
            });
        }
    });
    (url, heads)
}

#[tokio::test]
async fn a_reused_connection_the_upstream_closed_is_retried_once_when_it_is_safe() {
    let (url, heads) = closes_reused_connections().await;
    let gw = TestGateway::start_with(|c| c.upstream.url = url).await;
    let admin = gw.admin_token().await;
    for n in 0..20 {
        let status = gw
            .client
            .get(gw.url("/reports"))
            .bearer_auth(&admin)
            .fetch_status()
            .await;
        assert_eq!(status, StatusCode::OK, "GET {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every reused connection was closed under a request, and each was sent once more.
    assert!(heads.get.load(Ordering::SeqCst) > 20, "no GET was retried");

    // A POST is never sent twice: the client hears that it failed.
    let first = gw.client.get(gw.url("/warm")).bearer_auth(&admin);
    assert_eq!(first.fetch_status().await, StatusCode::OK);
    let status = gw
        .client
        .post(gw.url("/reports"))
        .bearer_auth(&admin)
        .body("a report")
        .fetch_status()
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        heads.post.load(Ordering::SeqCst),
        1,
        "the POST was sent once"
    );
}
