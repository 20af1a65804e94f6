//! WebSockets and other protocol upgrades: authenticated at the handshake, then tunnelled.

use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{TestGateway, raw};

/// An upstream that accepts a WebSocket, records the handshake headers, and echoes.
// tungstenite fixes the callback's error type; its size is not ours to choose.
#[allow(clippy::result_large_err)]
async fn websocket_upstream() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<http::HeaderMap>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (seen, handshakes) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let callback =
                    |request: &tokio_tungstenite::tungstenite::handshake::server::Request,
                     response| {
                        let _ = seen.send(request.headers().clone());
                        Ok(response)
                    };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_text() && ws.send(message).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (url, handshakes)
}

#[tokio::test]
async fn websockets_are_authenticated_at_the_handshake_then_tunnelled() {
    let (upstream_url, mut handshakes) = websocket_upstream().await;
    let gw = TestGateway::start_with(|c| c.upstream.url = upstream_url).await;
    let token = gw.admin_token().await;
    let cert = gw.config.tls_paths().0;
    let url = format!("wss://localhost:{}/socket", gw.addr.port());

    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
        .headers_mut()
        .insert("x-authenticated-user", "forged".parse().unwrap());
    let tls = raw::connect(gw.addr, &cert, &[b"http/1.1"]).await;
    let (mut ws, response) = tokio_tungstenite::client_async(request, tls).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let seen = handshakes.recv().await.unwrap();
    assert_eq!(seen["x-authenticated-user"], "admin");
    assert_eq!(seen["x-authenticated-method"], "jwt");
    assert_eq!(seen.get_all("x-authenticated-user").iter().count(), 1);
    for text in ["hello", "through the gateway"] {
        ws.send(Message::text(text)).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(text));
    }
    ws.close(None).await.unwrap();

    // Without a credential, the handshake is refused and never reaches the upstream.
    let tls = raw::connect(gw.addr, &cert, &[b"http/1.1"]).await;
    let refused = tokio_tungstenite::client_async(url.as_str(), tls)
        .await
        .unwrap_err();
    match refused {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED)
        }
        other => panic!("expected an HTTP refusal, got {other}"),
    }
    assert!(
        handshakes.try_recv().is_err(),
        "an unauthenticated handshake reached the upstream"
    );
}
