//! Protocol upgrades: only WebSocket is ever tunnelled. An `h2c` upgrade would give the client
//! an HTTP/2 connection to the upstream in which no request is judged.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{assert_invariant, gateway_with_alice};
use crate::common::{TestGateway, raw};

/// Sends raw HTTP/1.1 bytes (no client library tidies them) and returns the whole answer.
async fn raw_answer(gw: &TestGateway, request: &str) -> String {
    let cert = gw.config.tls_paths().0;
    raw::send(gw.addr, &cert, request.as_bytes(), Duration::from_secs(2)).await
}

#[tokio::test]
async fn an_h2c_upgrade_is_never_passed_on() {
    let (gw, alice) = gateway_with_alice(|_| {}).await;
    let request = format!(
        "GET /x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {alice}\r\n\
         Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
         HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
    );
    let answer = raw_answer(&gw, &request).await;
    assert_eq!(raw::statuses(&answer), vec![200], "{answer}");
    assert_eq!(gw.upstream.count(), 1);
    let seen = gw.upstream.last();
    assert_eq!(seen.path_and_query, "/x");
    assert!(!seen.headers.contains_key("upgrade"), "{seen:?}");
    assert!(!seen.headers.contains_key("http2-settings"), "{seen:?}");
    let upgrade_token = seen
        .headers
        .get_all("connection")
        .iter()
        .any(|v| v.to_str().unwrap().to_ascii_lowercase().contains("upgrade"));
    assert!(!upgrade_token, "{seen:?}");
    assert_invariant(&gw);
}

/// An upstream that answers every request head with `101 Switching Protocols` to h2c, then
/// echoes every byte it receives.
async fn switching_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                let end = loop {
                    if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                };
                let answer = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
                if stream.write_all(answer).await.is_err()
                    || stream.write_all(&head[end..]).await.is_err()
                {
                    return;
                }
                let (mut reader, mut writer) = stream.split();
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            });
        }
    });
    addr
}

/// Writes `bytes` (the connection may already be closed) and returns what comes back until
/// the peer closes or falls silent.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> String {
    if stream.write_all(bytes).await.is_ok() {
        let _ = stream.flush().await;
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(1500), stream.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn an_upstream_switching_protocols_unasked_is_a_502_and_nothing_is_tunnelled() {
    let upstream = switching_upstream().await;
    let gw = TestGateway::start_with(|c| {
        c.rules = super::rules();
        c.upstream.url = format!("http://{upstream}");
    })
    .await;
    let token = gw.admin_token().await;
    let cert = gw.config.tls_paths().0;
    let websocket = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    const MARKER: &str = "ECHO-PROBE-5d1c";
    for (what, extra) in [
        ("plain GET", ""),
        ("WebSocket answered with h2c", websocket),
    ] {
        let mut stream = raw::connect(gw.addr, &cert, &[b"http/1.1"]).await;
        let request = format!(
            "GET /x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n{extra}\r\n"
        );
        let answer = exchange(&mut stream, request.as_bytes()).await;
        assert_eq!(raw::statuses(&answer), vec![502], "{what}: {answer}");
        // Bytes written after the answer are HTTP to the gateway, or go nowhere: never to the
        // upstream and back.
        let after = exchange(&mut stream, format!("{MARKER}\r\n\r\n").as_bytes()).await;
        assert!(
            !after.contains(MARKER),
            "{what}: tunnelled, echoed {after:?}"
        );
        assert!(
            after.is_empty() || after.starts_with("HTTP/1.1 "),
            "{what}: not HTTP after the answer: {after:?}"
        );
    }
    assert_invariant(&gw);
}
