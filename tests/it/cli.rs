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

#[tokio::test]
async fn a_redb_store_moves_to_postgres_with_export_and_import() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = portcullis(
        dir.path(),
        &["user", "add", "sam", "--role", "ops", "--password-stdin"],
        Some("sam-password-1\n"),
    );
    assert!(ok, "{out}");
    let (ok, out) = portcullis(dir.path(), &["apikey", "create", "--user", "sam"], None);
    assert!(ok, "{out}");
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .unwrap()
        .to_string();
    let dump = dir.path().join("dump.json");
    let (ok, out) = portcullis(
        dir.path(),
        &["store", "export", "--output", dump.to_str().unwrap()],
        None,
    );
    assert!(ok, "{out}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dump).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !std::fs::read_to_string(&dump)
            .unwrap()
            .contains(&key[key.len() - 43..]),
        "no key secret in the export"
    );

    let schema = crate::common::postgres::PgSchema::create().await;
    let import = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["store", "import", dump.to_str().unwrap()])
        .env_clear()
        .env("PORTCULLIS_DATA_DIR", dir.path().join("pg-data"))
        .env("PORTCULLIS_STORE_BACKEND", "postgres")
        .env("PORTCULLIS_STORE_URL", &schema.url)
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    assert!(String::from_utf8_lossy(&import.stdout).contains("imported 1 users and 1 API keys"));

    let upstream = Upstream::start().await;
    let served = dir.path().join("pg");
    std::fs::create_dir_all(&served).unwrap();
    let env = [
        ("PORTCULLIS_UPSTREAM_URL", upstream.url()),
        ("PORTCULLIS_STORE_BACKEND", "postgres".to_string()),
        ("PORTCULLIS_STORE_URL", schema.url.clone()),
    ];
    let process = GatewayProcess::spawn(&served, &env);
    let client = client_for(Some(&served.join("data/tls.crt")));
    let base = format!("https://localhost:{}", process.addr.port());
    let login = json!({"username": "sam", "password": "sam-password-1"});
    let (status, _) = json_of(
        client
            .post(format!("{base}/api/accounts/token/"))
            .json(&login)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the password hash moved");
    let response = client
        .get(format!("{base}/app"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the API key moved");
    assert_eq!(upstream.last().headers["x-authenticated-roles"], "ops");
}
