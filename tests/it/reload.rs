//! Reloading the certificate, the rules and the signing keys of a running gateway.

use std::path::Path;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::process::GatewayProcess;
use crate::common::{Fetch, Upstream, client_for, raw};

const PASSWORD: &str = "reload-admin-password";

fn write_certificate(dir: &Path, name: &str) -> Vec<u8> {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), name.to_string()])
            .unwrap();
    std::fs::write(dir.join("tls.crt"), generated.cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), generated.signing_key.serialize_pem()).unwrap();
    generated.cert.der().to_vec()
}

/// The certificate a fresh handshake is served, trusting `ca`.
async fn served_certificate(addr: std::net::SocketAddr, ca: &Path) -> Vec<u8> {
    let stream = raw::connect(addr, ca, &[b"http/1.1"]).await;
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn sighup(process: &GatewayProcess) {
    let status = std::process::Command::new("kill")
        .arg("-HUP")
        .arg(process.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn logged(process: &GatewayProcess, needle: &str) -> usize {
    process.log_text().matches(needle).count()
}

/// Waits until `needle` has been logged more than `seen` times.
async fn wait_for_log(process: &GatewayProcess, needle: &str, seen: usize) {
    for _ in 0..400 {
        if logged(process, needle) > seen {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never logged {needle:?} again:\n{}", process.log_text());
}

/// Replaces a file in one step, as a deployment tool (or kubelet) does.
fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

#[tokio::test]
async fn a_new_certificate_serves_new_handshakes_while_old_connections_keep_working() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let first = write_certificate(&tls, "first.example");
    std::fs::copy(tls.join("tls.crt"), dir.path().join("first.pem")).unwrap();
    let env = [
        ("PORTCULLIS_ADMIN_PASSWORD", PASSWORD.to_string()),
        ("PORTCULLIS_UPSTREAM_URL", upstream.url()),
        ("PORTCULLIS_SERVER_TLS", "files".to_string()),
        (
            "PORTCULLIS_SERVER_CERT",
            tls.join("tls.crt").display().to_string(),
        ),
        (
            "PORTCULLIS_SERVER_KEY",
            tls.join("tls.key").display().to_string(),
        ),
        ("PORTCULLIS_SERVER_RELOAD_CHECK_SECS", "0".to_string()),
    ];
    let process = GatewayProcess::spawn(dir.path(), &env);
    assert_eq!(
        served_certificate(process.addr, &dir.path().join("first.pem")).await,
        first
    );

    // A connection opened before the swap, kept alive across it.
    let mut old = raw::connect(process.addr, &dir.path().join("first.pem"), &[b"http/1.1"]).await;
    let health = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    old.write_all(health).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = old.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    let second = write_certificate(&tls, "second.example");
    std::fs::copy(tls.join("tls.crt"), dir.path().join("second.pem")).unwrap();
    sighup(&process);
    wait_for_log(&process, "certificate reloaded", 0).await;
    assert_eq!(
        served_certificate(process.addr, &dir.path().join("second.pem")).await,
        second
    );
    old.write_all(health).await.unwrap();
    let n = old.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "the old connection survives"
    );

    // A broken file is refused; the second certificate keeps serving.
    std::fs::write(
        tls.join("tls.crt"),
        "-----BEGIN CERTIFICATE-----\ngarbage\n",
    )
    .unwrap();
    sighup(&process);
    wait_for_log(&process, "new certificate refused", 0).await;
    assert_eq!(
        served_certificate(process.addr, &dir.path().join("second.pem")).await,
        second
    );

    // A good certificate for another key: the log names the certificate, not the key.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(tls.join("tls.crt"), other.cert.pem()).unwrap();
    sighup(&process);
    wait_for_log(&process, "does not match the private key", 0).await;
    let crt = tls.join("tls.crt").display().to_string();
    assert!(
        process
            .log_text()
            .contains(&format!("{crt}: does not match the private key in")),
        "the refusal names {crt}"
    );
    assert_eq!(
        served_certificate(process.addr, &dir.path().join("second.pem")).await,
        second
    );
}

#[tokio::test]
async fn rules_and_signing_keys_reload_when_their_files_change() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portcullis.toml");
    std::fs::write(&config, "[server]\nreload_check_secs = 1\n").unwrap();
    let env = [
        ("PORTCULLIS_ADMIN_PASSWORD", PASSWORD.to_string()),
        ("PORTCULLIS_UPSTREAM_URL", upstream.url()),
    ];
    let process = GatewayProcess::spawn_with_config(dir.path(), &config, &env);
    let client = client_for(Some(&dir.path().join("data/tls.crt")));
    let url = |path: &str| format!("https://localhost:{}{path}", process.addr.port());
    assert_eq!(
        client.get(url("/docs/intro")).fetch_status().await,
        StatusCode::UNAUTHORIZED
    );

    let public_docs =
        "[server]\nreload_check_secs = 1\n\n[[rules]]\npath = \"/docs\"\npublic = true\n";
    replace(&config, public_docs);
    wait_for_log(&process, "access rules reloaded", 0).await;
    assert_eq!(
        client.get(url("/docs/intro")).fetch_status().await,
        StatusCode::OK
    );

    // A broken file keeps the rules in force.
    replace(&config, "[[rules]]\npath = \"no-slash\"\n");
    wait_for_log(&process, "configuration refused", 0).await;
    assert_eq!(
        client.get(url("/docs/intro")).fetch_status().await,
        StatusCode::OK
    );
    replace(&config, public_docs);
    wait_for_log(&process, "access rules reloaded", 1).await;

    // Rotating the signing key: old tokens keep working, new ones carry the new key id.
    let login = json!({"username": "admin", "password": PASSWORD});
    let before: serde_json::Value = client
        .post(url("/api/accounts/token/"))
        .json(&login)
        .fetch_json()
        .await;
    let old_token = before["access"].as_str().unwrap().to_string();
    let key_reloads = logged(&process, "signing keys reloaded");
    let rotate = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["keys", "rotate", "-c", config.to_str().unwrap()])
        .env("PORTCULLIS_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert!(
        rotate.status.success(),
        "{}",
        String::from_utf8_lossy(&rotate.stderr)
    );
    wait_for_log(&process, "signing keys reloaded", key_reloads).await;
    let after: serde_json::Value = client
        .post(url("/api/accounts/token/"))
        .json(&login)
        .fetch_json()
        .await;
    let new_token = after["access"].as_str().unwrap().to_string();
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    assert_ne!(kid(&old_token), kid(&new_token));
    for token in [&old_token, &new_token] {
        assert_eq!(
            client
                .get(url("/app"))
                .bearer_auth(token)
                .fetch_status()
                .await,
            StatusCode::OK
        );
    }
}
