//! Store-bound latencies that a criterion mean hides: the p99 of an API-key check that misses
//! the cache (served from redb, and from PostgreSQL), and how long a revocation made on one
//! replica takes to reach another's cache. Run with `cargo bench --bench store`; the PostgreSQL
//! parts use the server at `PORTCULLIS_BENCH_POSTGRES` (default postgres://postgres@127.0.0.1/test).

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::auth::{Credential, apikey};
use portcullis::config::StoreBackend;
use portcullis::store::{Change, ChangeSink, PostgresStore, Store, UserRecord};
use portcullis::{AccessLog, App, Config};

const KEYS: u64 = 100_000;
const SAMPLES: usize = 2_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<40} n={:<5} p50={:>8.1?} p99={:>8.1?} max={:>8.1?}",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
}

/// A schema of its own on the benchmark server, for PostgreSQL runs.
async fn postgres_url() -> Option<String> {
    let server = std::env::var("PORTCULLIS_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1/test".into());
    let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(connection);
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .ok()?;
    Some(format!("{server}?options=-csearch_path%3D{schema}"))
}

async fn app_with_keys(config: Config) -> (App, Vec<(String, u64, String)>) {
    let app = App::new(config, AccessLog::disabled()).await.unwrap();
    let now = portcullis::clock::now_secs();
    let (mut users, mut records, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    for id in 1..=KEYS {
        users.push(UserRecord {
            id,
            username: format!("user{id}"),
            password_hash: String::new(),
            roles: vec!["reader".into()],
            is_admin: false,
            is_active: true,
            tokens_valid_after: 0,
            created_at: now,
            updated_at: now,
        });
        let new = apikey::generate(id, now).unwrap();
        keys.push((new.record.id.clone(), id, new.key));
        records.push(new.record);
    }
    app.store.import(users, records).await.unwrap();
    (app, keys)
}

async fn key_misses(name: &str, config: Config) {
    let (app, keys) = app_with_keys(config).await;
    let mut samples = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let (id, user, key) = &keys[(i * 7919) % keys.len()];
        app.caches.invalidate_key(id);
        app.caches.invalidate_user(*user);
        let started = Instant::now();
        app.auth
            .authenticate(Credential::ApiKey(key))
            .await
            .unwrap();
        samples.push(started.elapsed());
    }
    report(name, samples);
}

/// Replica A revokes a key; replica B's change feed reports it. Measured per revocation.
async fn revocation_delay(url: &str) {
    let a = PostgresStore::connect(url).await.unwrap();
    let b = Arc::new(PostgresStore::connect(url).await.unwrap());
    let (heard, mut hearing) = tokio::sync::mpsc::unbounded_channel::<String>();
    let sink: ChangeSink = Arc::new(move |change| {
        if let Change::ApiKey(id) = change {
            let _ = heard.send(id);
        }
    });
    let follower = b.clone();
    tokio::spawn(async move { follower.follow_changes(sink).await });
    while !b.following_changes() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut samples = Vec::new();
    for user in 1..=500u64 {
        let key = apikey::generate(user, 0).unwrap().record;
        a.insert_api_key(key.clone(), &portcullis::store::Actor::cli())
            .await
            .unwrap();
        let started = Instant::now();
        a.revoke_api_key(&key.id, &portcullis::store::Actor::cli())
            .await
            .unwrap();
        loop {
            let id = tokio::time::timeout(Duration::from_secs(5), hearing.recv())
                .await
                .unwrap()
                .unwrap();
            if id == key.id {
                break;
            }
        }
        samples.push(started.elapsed());
    }
    report("revocation, replica to replica (PostgreSQL)", samples);
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.auth.argon2_memory_kib = 1024;
        config.auth.argon2_iterations = 1;
        key_misses("API-key miss, redb, 100 000 keys", config.clone()).await;
        match postgres_url().await {
            Some(url) => {
                config.store.backend = StoreBackend::Postgres;
                config.store.url = Some(url.clone());
                key_misses("API-key miss, PostgreSQL, 100 000 keys", config).await;
                revocation_delay(&url).await;
            }
            None => println!("PostgreSQL not reachable: its figures were not measured"),
        }
    });
}
