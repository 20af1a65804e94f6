//! The PostgreSQL store over TLS, against a real server of this test's own that accepts
//! nothing else from TCP: each libpq `sslmode` checks what it promises, the change feed's
//! connection is encrypted too, and failover across hosts still works.

use std::fs::Permissions;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portcullis::store::{NewUser, PostgresStore, Store};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::Value;

use crate::common::TestGateway;
use crate::common::process::free_port;

/// A PostgreSQL cluster in a temporary directory, TLS only from 127.0.0.1, with a certificate
/// for `localhost` (and no IP address) signed by a CA of its own; stopped on drop.
struct TlsCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// The CA that signed the server's certificate.
    ca: PathBuf,
}

impl TlsCluster {
    fn start() -> TlsCluster {
        let bin = server_bin();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // initdb refuses to run as root: the cluster belongs to `postgres`.
        chown_to_postgres(dir.path());
        run(postgres_tool(&bin, "initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres"]));

        let (ca_pem, issuer) = new_ca("portcullis test CA");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_pem).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let (cert_file, key_file) = (data.join("server.crt"), data.join("server.key"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        std::fs::set_permissions(&key_file, Permissions::from_mode(0o600)).unwrap();
        chown_to_postgres(&cert_file);
        chown_to_postgres(&key_file);

        let port = free_port();
        let settings = format!(
            "\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n\
             listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n",
            cert_file.display(),
            key_file.display(),
            dir.path().display(),
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap()
            .write_all(settings.as_bytes())
            .unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        run(postgres_tool(&bin, "pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("log"))
            .args(["-w", "start"]));
        let cluster = TlsCluster { bin, dir, port, ca };
        for database in ["portcullis", "gateway"] {
            run(postgres_tool(&cluster.bin, "createdb")
                .arg("-h")
                .arg(cluster.dir.path())
                .arg("-p")
                .arg(port.to_string())
                .arg(database));
        }
        cluster
    }

    /// `postgres://postgres@<host>:<port>/<database>?<query>`.
    fn url(&self, host: &str, database: &str, query: &str) -> String {
        format!(
            "postgres://postgres@{host}:{}/{database}?{query}",
            self.port
        )
    }

    fn verify(&self, mode: &str, ca: &Path) -> String {
        format!("sslmode={mode}&sslrootcert={}", ca.display())
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = postgres_tool(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The newest installed server's `bin` directory.
fn server_bin() -> PathBuf {
    let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_string();
            let version = name
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = entry.path().join("bin");
            let usable = bin.join("initdb").is_file() && bin.join("pg_ctl").is_file();
            usable.then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "this test starts a PostgreSQL server of its own and needs its binaries \
             (initdb, pg_ctl) under /usr/lib/postgresql/<version>/bin: \
             apt-get install postgresql"
        ),
    }
}

fn is_root() -> bool {
    // /proc/self belongs to the effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn chown_to_postgres(path: &Path) {
    if is_root() {
        run(Command::new("chown").arg("postgres:").arg(path));
    }
}

/// A PostgreSQL program, run as the `postgres` user when this test runs as root.
fn postgres_tool(bin: &Path, tool: &str) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        command
    } else {
        Command::new(bin.join(tool))
    }
}

fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A fresh CA: its certificate (PEM) and what signs with it.
fn new_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

async fn connect(url: &str) -> PostgresStore {
    match PostgresStore::connect(url).await {
        Ok(store) => store,
        Err(error) => panic!("{url}: {error}"),
    }
}

async fn refused(url: &str) -> String {
    match PostgresStore::connect(url).await {
        Ok(_) => panic!("{url}: connected"),
        Err(error) => error.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_speaks_tls_as_its_sslmode_says() {
    let cluster = TlsCluster::start();
    let full = cluster.verify("verify-full", &cluster.ca);

    // verify-full with the right CA and name: the store works.
    let store = connect(&cluster.url("localhost", "portcullis", &full)).await;
    let user = NewUser {
        username: "tls-admin".into(),
        password_hash: "$argon2id$hash".into(),
        roles: vec![],
        is_admin: true,
    };
    assert!(store.create_first_user(user).await.unwrap().is_some());
    let users = store.users().await.unwrap();
    assert_eq!(
        users
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["tls-admin"]
    );
    drop(store);

    // The whole gateway on it; the change feed follows, so its connection is TLS too (the
    // server refuses any other).
    let url = cluster.url("localhost", "gateway", &full);
    let gateway = TestGateway::start_with(|c| {
        c.store.backend = portcullis::config::StoreBackend::Postgres;
        c.store.url = Some(url.clone());
    })
    .await;
    let admin = gateway.admin_token().await;
    assert!(!admin.is_empty());
    let started = Instant::now();
    loop {
        let ready: Value = gateway.get("/readyz", None).await.json().await.unwrap();
        if ready["changes"] == "following" {
            assert_eq!(ready["store"], "ok");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the change feed did not connect: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(gateway);

    // Another CA: the server's certificate is refused.
    let (other_pem, _) = new_ca("someone else's CA");
    let other = cluster.dir.path().join("other-ca.pem");
    std::fs::write(&other, other_pem).unwrap();
    let error = refused(&cluster.url(
        "localhost",
        "portcullis",
        &cluster.verify("verify-full", &other),
    ))
    .await;
    assert!(
        error.to_lowercase().contains("certificate"),
        "a wrong CA: {error}"
    );
    let error = refused(&cluster.url(
        "localhost",
        "portcullis",
        &cluster.verify("verify-ca", &other),
    ))
    .await;
    assert!(
        error.to_lowercase().contains("certificate"),
        "a wrong CA: {error}"
    );

    // The certificate names `localhost` only: verify-ca takes it for 127.0.0.1, verify-full
    // does not.
    let ip_ca = cluster.url(
        "127.0.0.1",
        "portcullis",
        &cluster.verify("verify-ca", &cluster.ca),
    );
    drop(connect(&ip_ca).await);
    let error = refused(&cluster.url("127.0.0.1", "portcullis", &full)).await;
    assert!(
        error.contains("not valid for name"),
        "the wrong name: {error}"
    );

    // Without TLS the server refuses; require (and the default, prefer) encrypt without a CA.
    let error = refused(&cluster.url("127.0.0.1", "portcullis", "sslmode=disable")).await;
    assert!(
        error.contains("pg_hba.conf") && error.contains("no encryption"),
        "without TLS: {error}"
    );
    drop(connect(&cluster.url("127.0.0.1", "portcullis", "sslmode=require")).await);
    drop(connect(&cluster.url("127.0.0.1", "portcullis", "connect_timeout=5")).await);

    // Failover: the first host is down, the second is the TLS server.
    let closed = free_port();
    let failover = format!(
        "postgres://postgres@127.0.0.1:{closed},localhost:{}/portcullis?{full}\
         &target_session_attrs=read-write",
        cluster.port
    );
    let store = connect(&failover).await;
    assert_eq!(store.users().await.unwrap().len(), 1);
}
