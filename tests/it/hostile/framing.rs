//! HTTP framing attacks: request smuggling over HTTP/1.1 and malformed HTTP/2 frames.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{assert_invariant, gateway_with_alice};
use crate::common::{TestGateway, raw};

async fn send(gw: &TestGateway, request: &str) -> String {
    raw::send(
        gw.addr,
        &gw.config.tls_paths().0,
        request.as_bytes(),
        Duration::from_secs(3),
    )
    .await
}

#[tokio::test]
async fn smuggling_over_http1_never_delivers_a_second_request() {
    let (gw, alice) = gateway_with_alice(|_| {}).await;
    let smuggled = "GET /admin/secret HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let cases = [
        (
            "CL.TE",
            format!(
                "POST /public/form HTTP/1.1\r\nHost: localhost\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"
            ),
        ),
        (
            "TE.CL",
            format!(
                "POST /public/form HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{:x}\r\n{smuggled}\r\n0\r\n\r\n",
                smuggled.len()
            ),
        ),
        (
            "two Content-Length",
            format!("POST /public/form HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n{smuggled}", smuggled.len()),
        ),
        (
            "obfuscated Transfer-Encoding",
            format!("POST /public/form HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: xchunked\r\nContent-Length: 0\r\n\r\n{smuggled}"),
        ),
        ("bad chunk size", "POST /public/form HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".to_string()),
        ("negative chunk size", "POST /public/form HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n".to_string()),
        (
            "huge chunk size",
            "POST /public/form HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n".to_string(),
        ),
        ("bare LF line endings", format!("GET /public/x HTTP/1.1\nHost: localhost\n\n{smuggled}")),
        ("header folding", "GET /public/x HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n X-Authenticated-User: admin\r\n\r\n".to_string()),
    ];
    for (what, request) in cases {
        // Whatever the gateway makes of the bytes (a 400, or two pipelined requests each judged
        // on its own), the upstream receives only what the gateway framed and authorized.
        send(&gw, &request).await;
        let admin_hits = gw
            .upstream
            .received()
            .iter()
            .filter(|r| r.path_and_query.starts_with("/admin"))
            .count();
        assert_eq!(
            admin_hits, 0,
            "{what}: the smuggled request reached the upstream"
        );
    }

    // A correctly framed body that merely contains a request is a body, delivered once.
    let before = gw.upstream.count();
    let request = format!(
        "POST /app HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {alice}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{smuggled}",
        smuggled.len()
    );
    assert_eq!(raw::statuses(&send(&gw, &request).await), vec![200]);
    assert_eq!(gw.upstream.count(), before + 1);
    assert_eq!(gw.upstream.last().body, smuggled.as_bytes());
    assert_invariant(&gw);
}

const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const GOAWAY: u8 = 0x7;
/// HPACK indexed field 8 of the static table: `:status: 200`.
const STATUS_200: u8 = 0x88;

/// HPACK "literal header field without indexing, new name", no Huffman (RFC 7541 §6.2.2).
fn literal(name: &str, value: &str) -> Vec<u8> {
    let mut out = vec![0x00];
    for part in [name, value] {
        assert!(part.len() < 127);
        out.push(part.len() as u8);
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Opens an h2 connection and sends one HEADERS frame (END_STREAM | END_HEADERS) built from
/// `fields`; returns the (type, first payload byte) of each frame the gateway answered with.
async fn h2_exchange(gw: &TestGateway, fields: &[(&str, &str)]) -> Vec<(u8, u8)> {
    let mut stream = raw::connect(gw.addr, &gw.config.tls_paths().0, &[b"h2"]).await;
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(0x4, 0, 0, &[]));
    let block: Vec<u8> = fields.iter().flat_map(|(n, v)| literal(n, v)).collect();
    out.extend(frame(0x1, 0x5, 1, &block));
    stream.write_all(&out).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(700), stream.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let mut kinds = Vec::new();
    let mut at = 0;
    while at + 9 <= answer.len() {
        let len = (usize::from(answer[at]) << 16)
            | (usize::from(answer[at + 1]) << 8)
            | usize::from(answer[at + 2]);
        kinds.push((answer[at + 3], answer.get(at + 9).copied().unwrap_or(0)));
        at += 9 + len;
    }
    kinds
}

#[tokio::test]
async fn malformed_http2_requests_are_reset_and_never_forwarded() {
    let (gw, _) = gateway_with_alice(|_| {}).await;
    let ok = [
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "localhost"),
        (":path", "/public/ok"),
    ];
    let kinds = h2_exchange(&gw, &ok).await;
    assert!(
        kinds.contains(&(HEADERS, STATUS_200)),
        "a well-formed h2 request gets 200: {kinds:?}"
    );
    let forwarded = gw.upstream.count();
    assert_eq!(forwarded, 1);

    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "no :path",
            vec![
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", "localhost"),
            ],
        ),
        (
            "relative :path",
            vec![
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", "localhost"),
                (":path", "admin"),
            ],
        ),
        (
            "two :path",
            vec![
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/public/a"),
                (":path", "/admin"),
            ],
        ),
        (
            "pseudo after regular",
            vec![
                (":method", "GET"),
                (":scheme", "https"),
                ("x-a", "1"),
                (":path", "/admin"),
            ],
        ),
        (
            "unknown pseudo",
            vec![
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/public/a"),
                (":user", "admin"),
            ],
        ),
        (
            "uppercase name",
            vec![
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/public/a"),
                ("X-Authenticated-User", "admin"),
            ],
        ),
        (
            "connection header",
            vec![
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/public/a"),
                ("connection", "keep-alive"),
            ],
        ),
        (
            "CR in a value",
            vec![
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/public/a"),
                ("x-a", "1\r\nx-authenticated-user: admin"),
            ],
        ),
    ];
    for (what, fields) in cases {
        let kinds = h2_exchange(&gw, &fields).await;
        assert!(
            !kinds.contains(&(HEADERS, STATUS_200)),
            "{what}: answered 200: {kinds:?}"
        );
        assert!(
            kinds
                .iter()
                .any(|(kind, _)| [HEADERS, RST_STREAM, GOAWAY].contains(kind)),
            "{what}: no answer at all: {kinds:?}"
        );
        assert_eq!(
            gw.upstream.count(),
            forwarded,
            "{what} reached the upstream"
        );
    }
    assert_invariant(&gw);
}
