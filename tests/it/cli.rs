//! The command line, run as a user would run it.

use std::io::Write;
use std::process::{Command, Stdio};

use http::StatusCode;
use serde_json::json;

use crate::common::process::GatewayProcess;
use crate::common::{Upstream, client_for, json_of};

fn portcullis(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env_clear()
        .env("PORTCULLIS_DATA_DIR", dir.join("data"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn check_config_accepts_the_example_and_prints_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    std::fs::write(&path, "[[rules]]\npath = \"/static\"\npublic = true\n\n[[rules]]\npath = \"/admin\"\nroles = [\"ops\"]\n").unwrap();
    let (ok, out) = portcullis(
        dir.path(),
        &["check-config", "-c", path.to_str().unwrap()],
        None,
    );
    assert!(ok, "{out}");
    assert!(out.contains("/static") && out.contains("public"), "{out}");
    assert!(out.contains("any of roles [ops]"), "{out}");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let (ok, out) = portcullis(dir.path(), &["check-config", "-c", example], None);
    assert!(ok, "{out}");
    std::fs::write(&path, "[server]\nlisten = \"nowhere\"\n").unwrap();
    let (ok, out) = portcullis(
        dir.path(),
        &["check-config", "-c", path.to_str().unwrap()],
        None,
    );
    assert!(!ok && out.contains("listen"), "{out}");
}

#[tokio::test]
async fn users_made_on_the_command_line_can_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = portcullis(
        dir.path(),
        &["user", "add", "judy", "--role", "ops", "--password-stdin"],
        Some("judy-password-1\n"),
    );
    assert!(ok, "{out}");
    let (ok, out) = portcullis(dir.path(), &["user", "add", "ken", "--admin"], None);
    assert!(ok, "{out}");
    let generated = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap()
        .to_string();
    let (ok, out) = portcullis(dir.path(), &["user", "add", "judy"], None);
    assert!(!ok && out.contains("already taken"), "{out}");
    let (ok, out) = portcullis(
        dir.path(),
        &["user", "passwd", "judy", "--password-stdin"],
        Some("judy-password-2\n"),
    );
    assert!(ok, "{out}");
    let (ok, out) = portcullis(dir.path(), &["user", "list"], None);
    assert!(ok, "{out}");
    assert!(
        out.contains("judy") && out.contains("ops") && out.contains("ken"),
        "{out}"
    );

    let upstream = Upstream::start().await;
    let process = GatewayProcess::spawn(dir.path(), &[("PORTCULLIS_UPSTREAM_URL", upstream.url())]);
    assert!(
        !process.log_text().contains("First start"),
        "users existed, so no admin was generated"
    );
    let client = client_for(Some(&dir.path().join("data/tls.crt")));
    let url = format!(
        "https://localhost:{}/api/accounts/token/",
        process.addr.port()
    );
    for (user, password, expected) in [
        ("judy", "judy-password-1", StatusCode::UNAUTHORIZED),
        ("judy", "judy-password-2", StatusCode::OK),
        ("ken", generated.as_str(), StatusCode::OK),
    ] {
        let (status, _) = json_of(
            client
                .post(&url)
                .json(&json!({"username": user, "password": password}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, expected, "{user}");
    }
}
