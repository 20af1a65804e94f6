//! Per-request authentication cost: what the gateway spends to turn a presented credential
//! into a principal. Run with `cargo bench --bench auth`.

use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use portcullis::auth::{Credential, apikey};
use portcullis::store::UserRecord;
use portcullis::{App, Config};

const KEYS: u64 = 100_000;

struct Fixture {
    app: App,
    keys: Vec<(String, u64, String)>,
    _dir: tempfile::TempDir,
}

/// A redb store holding 100 000 users, each with an active API key.
fn fixture(runtime: &tokio::runtime::Runtime) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.bootstrap.admin_password = Some("bench-admin-password".into());
    config.auth.argon2_memory_kib = 1024;
    config.auth.argon2_iterations = 1;
    let app = App::new(config).unwrap();
    let now = portcullis::clock::now_secs();
    let mut users = Vec::new();
    let mut records = Vec::new();
    let mut keys = Vec::new();
    for id in 1..=KEYS {
        users.push(UserRecord {
            id,
            username: format!("user{id}"),
            password_hash: "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
                .into(),
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
    runtime.block_on(app.store.import(users, records)).unwrap();
    Fixture {
        app,
        keys,
        _dir: dir,
    }
}

fn api_key(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let fixture = Arc::new(fixture(&runtime));
    let mut group = c.benchmark_group("api_key");

    let (_, _, key) = fixture.keys[0].clone();
    runtime
        .block_on(fixture.app.auth.authenticate(Credential::ApiKey(&key)))
        .unwrap();
    group.bench_function("cache_hit", |b| {
        b.to_async(&runtime).iter(|| async {
            fixture
                .app
                .auth
                .authenticate(Credential::ApiKey(&key))
                .await
                .unwrap()
        })
    });

    // Each iteration takes a random key whose key and user entries were just evicted, so both
    // are read from the redb file (through the blocking pool, as on the request path).
    let mut next = 0usize;
    group.bench_function("miss_from_redb_100k_keys", |b| {
        b.to_async(&runtime).iter_batched(
            || {
                next = (next + 7919) % fixture.keys.len();
                let (id, user, key) = fixture.keys[next].clone();
                fixture.app.caches.invalidate_key(&id);
                fixture.app.caches.invalidate_user(user);
                key
            },
            |key| {
                let fixture = fixture.clone();
                async move {
                    fixture
                        .app
                        .auth
                        .authenticate(Credential::ApiKey(&key))
                        .await
                        .unwrap()
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, api_key);
criterion_main!(benches);
