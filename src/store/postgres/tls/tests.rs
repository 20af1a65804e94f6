use std::time::Duration;

use tokio_postgres::config::{Host, TargetSessionAttrs};

use super::*;

/// A PEM file holding one freshly made CA certificate.
fn ca_file(dir: &std::path::Path) -> String {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    let path = dir.join("ca.pem");
    std::fs::write(&path, params.self_signed(&key).unwrap().pem()).unwrap();
    path.display().to_string()
}

fn error_of(url: &str) -> String {
    parse(url).err().expect("the URL is refused")
}

#[test]
fn takes_out_sslmode_and_sslrootcert_and_keeps_every_other_parameter() {
    let url = "postgres://app:pw@db1:5432,db2:5433/portcullis?connect_timeout=7\
               &sslmode=verify-full&options=-csearch_path%3Dt_1\
               &sslrootcert=%2Fetc%2Fca+1.pem&target_session_attrs=read-write";
    let parts = split(url).unwrap();
    assert_eq!(
        parts,
        Split {
            rest: "postgres://app:pw@db1:5432,db2:5433/portcullis?connect_timeout=7\
                   &options=-csearch_path%3Dt_1&target_session_attrs=read-write"
                .into(),
            mode: Mode::VerifyFull,
            root_cert: Some("/etc/ca+1.pem".into()),
        }
    );
    let config = Config::from_str(&parts.rest).unwrap();
    assert_eq!(
        config.get_hosts(),
        [Host::Tcp("db1".into()), Host::Tcp("db2".into())]
    );
    assert_eq!(config.get_ports(), [5432, 5433]);
    assert_eq!(config.get_dbname(), Some("portcullis"));
    assert_eq!(config.get_options(), Some("-csearch_path=t_1"));
    assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(7)));
    assert_eq!(
        config.get_target_session_attrs(),
        TargetSessionAttrs::ReadWrite
    );

    let only_ours = split("postgres://app@db/portcullis?sslmode=require").unwrap();
    assert_eq!(only_ours.rest, "postgres://app@db/portcullis");
    // A `?` in the password is not the query's.
    let password = split("postgres://app:p?w@db/portcullis?sslmode=require").unwrap();
    assert_eq!(
        (password.rest.as_str(), password.mode, password.root_cert),
        ("postgres://app:p?w@db/portcullis", Mode::Require, None)
    );
    let none = split("postgres://app@db/portcullis").unwrap();
    assert_eq!(
        (none.rest.as_str(), none.mode),
        ("postgres://app@db/portcullis", Mode::Prefer)
    );
}

#[test]
fn reads_keyword_value_strings_too() {
    let parts = split(
        "host=db1,db2 user=app password='p w\\'x' sslmode=verify-ca \
         sslrootcert = /etc/ca.pem dbname=portcullis",
    )
    .unwrap();
    assert_eq!(
        (parts.mode, parts.root_cert.as_deref()),
        (Mode::VerifyCa, Some("/etc/ca.pem"))
    );
    let config = Config::from_str(&parts.rest).unwrap();
    assert_eq!(
        config.get_hosts(),
        [Host::Tcp("db1".into()), Host::Tcp("db2".into())]
    );
    assert_eq!(config.get_password(), Some(&b"p w'x"[..]));
    assert_eq!(config.get_dbname(), Some("portcullis"));
    assert!(split("host=db sslmode='verify-full").is_err());
}

#[test]
fn modes_map_to_what_tokio_postgres_negotiates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_file(dir.path());
    let base = "postgres://app:pw@db/portcullis";
    for (query, expected) in [
        (String::new(), SslMode::Prefer),
        ("?sslmode=disable".into(), SslMode::Disable),
        ("?sslmode=prefer".into(), SslMode::Prefer),
        ("?sslmode=require".into(), SslMode::Require),
        (
            format!("?sslmode=require&sslrootcert={ca}"),
            SslMode::Require,
        ),
        (
            format!("?sslmode=verify-ca&sslrootcert={ca}"),
            SslMode::Require,
        ),
        (
            format!("?sslrootcert={ca}&sslmode=verify-full"),
            SslMode::Require,
        ),
    ] {
        let (config, _) = parse(&format!("{base}{query}")).unwrap();
        assert_eq!(config.get_ssl_mode(), expected, "{query}");
    }
}

#[test]
fn an_unknown_sslmode_is_named_with_the_valid_ones() {
    let error = error_of("postgres://app:s3cret@db/portcullis?sslmode=verify");
    assert_eq!(
        error,
        "unknown sslmode \"verify\": expected one of disable, prefer, require, verify-ca, verify-full"
    );
    let error = error_of("sslmode=allow password=s3cret");
    assert!(error.contains("\"allow\""), "{error}");
    let error = error_of("postgres://app:s3cret@db/portcullis?nonsense=1");
    assert!(
        error.contains("nonsense") && !error.contains("s3cret"),
        "{error}"
    );
}

#[test]
fn verification_needs_a_readable_ca_file() {
    for mode in ["verify-ca", "verify-full"] {
        let error = error_of(&format!("postgres://app:s3cret@db/p?sslmode={mode}"));
        assert!(
            error.contains("sslrootcert") && error.contains(mode),
            "{error}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem").display().to_string();
    let error = error_of(&format!(
        "postgres://app:s3cret@db/p?sslmode=verify-full&sslrootcert={missing}"
    ));
    assert!(
        error.contains(&missing) && !error.contains("s3cret"),
        "{error}"
    );
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let empty = empty.display().to_string();
    let error = error_of(&format!(
        "postgres://app@db/p?sslmode=verify-ca&sslrootcert={empty}"
    ));
    assert!(
        error.contains(&empty) && error.contains("no certificate"),
        "{error}"
    );
    // A CA file given to `require` is used, so it must be readable too.
    assert!(
        error_of(&format!(
            "postgres://app@db/p?sslmode=require&sslrootcert={missing}"
        ))
        .contains(&missing)
    );
}
