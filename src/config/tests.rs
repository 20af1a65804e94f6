use super::*;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(Some(&path), vars(env))
}

#[test]
fn embedded_defaults_are_valid() {
    let config = Config::load(None, vars(&[])).unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8443");
    assert_eq!(config.server.tls, TlsMode::SelfSigned);
    assert_eq!(
        config.signing_key_path(),
        PathBuf::from("./portcullis-data/jwt.key")
    );
    assert_eq!(
        config.redb_path(),
        PathBuf::from("./portcullis-data/portcullis.redb")
    );
}

#[test]
fn example_file_parses_validates_and_matches_the_defaults() {
    let text = include_str!("../../config.example.toml");
    let example = Config::from_toml(text).unwrap();
    example.validate().unwrap();
    // The example documents the defaults: it must not drift from them.
    let defaults = toml::Value::try_from(Config::default()).unwrap();
    assert_eq!(toml::Value::try_from(example).unwrap(), defaults);
}

#[test]
fn example_file_names_every_key() {
    let text = include_str!("../../config.example.toml");
    let defaults = toml::Table::try_from(Config::default()).unwrap();
    for (section, value) in &defaults {
        let Some(table) = value.as_table() else {
            let documented =
                text.contains(&format!("{section} =")) || text.contains(&format!("[[{section}]]"));
            assert!(documented, "{section} undocumented");
            continue;
        };
        assert!(
            text.contains(&format!("[{section}]")),
            "[{section}] undocumented"
        );
        for key in table.keys() {
            assert!(
                text.contains(&format!("{key} =")),
                "{section}.{key} undocumented"
            );
        }
    }
    for optional in [
        "cert",
        "key",
        "redirect_listen",
        "signing_key_file",
        "path",
        "url",
        "admin_password",
    ] {
        assert!(
            text.contains(&format!("# {optional} =")),
            "{optional} undocumented"
        );
    }
}

#[test]
fn unknown_keys_are_named() {
    let error = Config::from_toml("[server]\nlisen = \"127.0.0.1:1\"\n").unwrap_err();
    assert!(error.to_string().contains("lisen"), "{error}");
    let error = Config::from_toml("[nope]\n").unwrap_err();
    assert!(error.to_string().contains("nope"), "{error}");
}

#[test]
fn validation_reports_every_problem_at_once() {
    let text = r#"
        [server]
        tls = "files"
        max_header_bytes = 10
        [upstream]
        url = "ftp://x"
        [auth]
        api_prefix = "api/"
        access_ttl_secs = 100
        refresh_ttl_secs = 50
        [[rules]]
        path = "nope"
        public = true
        roles = ["Admin"]
    "#;
    let ConfigError::Invalid(problems) = load_text(text, &[]).unwrap_err() else {
        panic!("expected validation problems")
    };
    for expected in [
        "server.cert",
        "server.key",
        "server.max_header_bytes",
        "upstream.url",
        "auth.api_prefix",
        "auth.refresh_ttl_secs",
        "rules[0].path",
        "rules[0]: public and roles",
        "rules[0].roles",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "missing {expected}: {problems:#?}"
        );
    }
}

#[test]
fn environment_overrides_are_typed_by_their_default() {
    let config = load_text(
        "[server]\nlisten = \"127.0.0.1:1\"\n",
        &[
            ("PORTCULLIS_SERVER_LISTEN", "0.0.0.0:9443"),
            ("PORTCULLIS_SERVER_MAX_CONNECTIONS", "17"),
            ("PORTCULLIS_UPSTREAM_FORWARD_CREDENTIALS", "true"),
            (
                "PORTCULLIS_SERVER_TRUSTED_PROXIES",
                "10.0.0.0/8, 192.168.0.0/16",
            ),
            ("PORTCULLIS_RATE_LIMIT_LOGIN_PER_IP_BURST", "3"),
            ("PORTCULLIS_ADMIN_PASSWORD", "123456789"),
            ("PORTCULLIS_DATA_DIR", "/var/lib/portcullis"),
            ("PORTCULLIS_PORT", "tcp://10.0.0.1:8443"),
            ("PORTCULLIS_SERVICE_HOST", "10.0.0.1"),
            ("HOME", "/root"),
        ],
    )
    .unwrap();
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:9443");
    assert_eq!(config.server.max_connections, 17);
    assert!(config.upstream.forward_credentials);
    assert_eq!(config.server.trusted_proxies.len(), 2);
    assert_eq!(config.rate_limit.login_per_ip_burst, 3);
    assert_eq!(
        config.bootstrap.admin_password.as_deref(),
        Some("123456789")
    );
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/portcullis"));
}

#[test]
fn bad_environment_overrides_are_named() {
    let error = load_text(
        "",
        &[
            ("PORTCULLIS_SERVER_MAX_CONNECTIONS", "many"),
            ("PORTCULLIS_SERVR_LISTEN", "x"),
        ],
    )
    .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("PORTCULLIS_SERVER_MAX_CONNECTIONS: expected an integer"),
        "{text}"
    );
    assert!(text.contains("PORTCULLIS_SERVR_LISTEN"), "{text}");
    let error = load_text("", &[("PORTCULLIS_SERVER_LISTN", "x")]).unwrap_err();
    assert!(error.to_string().contains("listn"), "{error}");
}

#[test]
fn missing_file_is_named() {
    let error =
        Config::load(Some(Path::new("/nonexistent/portcullis.toml")), vars(&[])).unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/portcullis.toml"),
        "{error}"
    );
}
