//! Raw bytes over a real TLS connection, for requests no well-behaved client would send.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A rustls client configuration that trusts only `cert` (PEM) and offers `alpn`.
pub fn tls_client_config(cert: &Path, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// Opens a TLS connection to the gateway speaking `alpn`.
pub async fn connect(addr: SocketAddr, cert: &Path, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    let connector = TlsConnector::from(Arc::new(tls_client_config(cert, alpn)));
    let tcp = TcpStream::connect(addr).await.unwrap();
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// Sends `request` as raw HTTP/1.1 bytes and returns everything the gateway answers until it
/// closes the connection or `wait` passes in silence.
pub async fn send(addr: SocketAddr, cert: &Path, request: &[u8], wait: Duration) -> String {
    let mut stream = connect(addr, cert, &[b"http/1.1"]).await;
    // A request the gateway refuses early (431, 413) may be answered, and the connection
    // closed, before all of it is written: what matters is the answer that came back.
    if let Err(error) = stream.write_all(request).await {
        use std::io::ErrorKind::{BrokenPipe, ConnectionReset};
        assert!(
            matches!(error.kind(), BrokenPipe | ConnectionReset),
            "{error}"
        );
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The status codes of every response in a raw HTTP/1.1 byte stream.
pub fn statuses(raw: &str) -> Vec<u16> {
    raw.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| raw.get(i + 9..i + 12)?.parse().ok())
        .collect()
}
