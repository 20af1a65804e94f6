//! Per-request authentication cost: what the gateway spends to turn a presented credential
//! into a principal. Run with `cargo bench --bench auth`.

use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use portcullis::auth::jwt::{KeyFile, Keyring, TokenType, Tokens, generate_key};
use portcullis::auth::{Credential, UserState, apikey};
use portcullis::config::{AuthConfig, JwtAlgorithm};
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
    let app = runtime
        .block_on(App::new(config, portcullis::AccessLog::disabled()))
        .unwrap();
    let now = portcullis::clock::now_secs();
    let mut users = Vec::new();
    let mut records = Vec::new();
    let mut keys = Vec::new();
    for id in 1..=KEYS {
        users.push(user(id));
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

fn user(id: u64) -> UserRecord {
    UserRecord {
        id,
        username: format!("user{id}"),
        password_hash: String::new(),
        roles: vec!["reader".into(), "writer".into()],
        is_admin: false,
        is_active: true,
        tokens_valid_after: 0,
        created_at: 0,
        updated_at: 0,
    }
}

/// Signature and claim checks alone: a token seen for the first time, and the same token again
/// (served from the verified-token cache).
fn jwt(c: &mut Criterion) {
    let mut group = c.benchmark_group("jwt");
    for (name, alg) in [
        ("hs256", JwtAlgorithm::HS256),
        ("eddsa", JwtAlgorithm::EdDSA),
    ] {
        let now = portcullis::clock::now_secs();
        let file = KeyFile {
            keys: vec![generate_key(alg, now).unwrap()],
        };
        let config = AuthConfig {
            algorithm: alg,
            ..AuthConfig::default()
        };
        let tokens = Tokens::new(&config, Keyring::from_file(&file, alg).unwrap());
        let mut n = 0u64;
        group.bench_function(format!("{name}_first_sight"), |b| {
            b.iter_batched(
                || {
                    n += 1;
                    tokens
                        .issue(
                            &UserState::from_record(&user(n)),
                            TokenType::Access,
                            "session",
                            now,
                        )
                        .unwrap()
                        .token
                },
                |token| tokens.verify(&token, TokenType::Access).unwrap(),
                BatchSize::SmallInput,
            )
        });
        let token = tokens
            .issue(
                &UserState::from_record(&user(1)),
                TokenType::Access,
                "session",
                now,
            )
            .unwrap()
            .token;
        group.bench_function(format!("{name}_repeated"), |b| {
            b.iter(|| tokens.verify(&token, TokenType::Access).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, jwt, api_key);
criterion_main!(benches);
