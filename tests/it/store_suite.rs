//! One behaviour, two backends: the same store suite runs against the redb file and against
//! PostgreSQL, so the shared store is a drop-in replacement for the embedded one.

use std::sync::Arc;

use portcullis::store::{
    Actor, ApiKeyRecord, Change, DeletedUser, NewAuditEvent, NewUser, PostgresStore, RedbStore,
    RefreshFamily, RotateOutcome, Store, StoreError, UserPatch, UserRecord,
};

use crate::common::postgres::PgSchema;

fn new_user(name: &str) -> NewUser {
    NewUser {
        username: name.into(),
        password_hash: "$argon2id$hash".into(),
        roles: vec!["staff".into()],
        is_admin: false,
    }
}

fn key(id: &str, user: u64, at: u64) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        user_id: user,
        secret_sha256: [7; 32],
        created_at: at,
        last_used_at: None,
        revoked_at: None,
    }
}

async fn users_and_usernames(store: &dyn Store) {
    assert!(
        store
            .create_first_user(new_user("root"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .create_first_user(new_user("second"))
            .await
            .unwrap()
            .is_none(),
        "only once"
    );
    let alice = store
        .create_user(new_user("Alice"), &Actor::cli())
        .await
        .unwrap();
    assert!(matches!(
        store.create_user(new_user("alice"), &Actor::cli()).await,
        Err(StoreError::UsernameTaken)
    ));
    assert_eq!(
        store.user_by_name("ALICE").await.unwrap().unwrap().id,
        alice.id
    );
    assert_eq!(
        store.user_by_name("alice").await.unwrap().unwrap().username,
        "Alice",
        "case kept"
    );
    assert!(store.user(9_999).await.unwrap().is_none());
    assert!(alice.is_active && alice.tokens_valid_after == 0);

    let patch = UserPatch {
        roles: Some(vec!["a".into(), "b".into()]),
        tokens_valid_after: Some(500),
        ..UserPatch::default()
    };
    let changed = store
        .update_user(alice.id, patch, &Actor::cli(), "user_changed")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (changed.roles.clone(), changed.tokens_valid_after),
        (vec!["a".to_string(), "b".to_string()], 500)
    );
    let earlier = UserPatch {
        tokens_valid_after: Some(100),
        ..UserPatch::default()
    };
    let changed = store
        .update_user(alice.id, earlier, &Actor::cli(), "user_changed")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        changed.tokens_valid_after, 500,
        "tokens_valid_after never moves back"
    );
    let deactivate = UserPatch {
        is_active: Some(false),
        ..UserPatch::default()
    };
    let before = portcullis::clock::now_secs();
    let changed = store
        .update_user(alice.id, deactivate, &Actor::cli(), "user_changed")
        .await
        .unwrap()
        .unwrap();
    assert!(!changed.is_active);
    assert!(
        changed.tokens_valid_after > before,
        "a deactivation revokes every token issued up to now"
    );
    assert_eq!(
        changed.password_hash, "$argon2id$hash",
        "untouched fields stay"
    );
    assert!(
        store
            .update_user(9_999, UserPatch::default(), &Actor::cli(), "user_changed")
            .await
            .unwrap()
            .is_none()
    );
    let names: Vec<String> = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["root", "Alice"]);
}

async fn one_active_key_per_user(store: &dyn Store) {
    let user = store
        .create_user(new_user("keyholder"), &Actor::cli())
        .await
        .unwrap();
    let other = store
        .create_user(new_user("other"), &Actor::cli())
        .await
        .unwrap();
    assert_eq!(
        store
            .insert_api_key(key("00000000000000a1", user.id, 10), &Actor::cli())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .insert_api_key(key("00000000000000a2", user.id, 20), &Actor::cli())
            .await
            .unwrap()
            .as_deref(),
        Some("00000000000000a1")
    );
    assert_eq!(
        store
            .insert_api_key(key("00000000000000b1", other.id, 30), &Actor::cli())
            .await
            .unwrap(),
        None
    );
    let first = store.api_key("00000000000000a1").await.unwrap().unwrap();
    assert_eq!(first.revoked_at, Some(20));
    assert_eq!(first.secret_sha256, [7; 32]);
    let mine: Vec<String> = store
        .api_keys(Some(user.id))
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(
        mine,
        ["00000000000000a2", "00000000000000a1"],
        "newest first"
    );
    assert_eq!(store.api_keys(None).await.unwrap().len(), 3);

    let cli = Actor::cli();
    let revoked = store
        .revoke_api_key("00000000000000a2", &cli)
        .await
        .unwrap()
        .unwrap();
    assert!(revoked.newly && revoked.key.revoked_at.is_some());
    let again = store
        .revoke_api_key("00000000000000a2", &cli)
        .await
        .unwrap()
        .unwrap();
    assert!(!again.newly);
    assert_eq!(
        again.key.revoked_at, revoked.key.revoked_at,
        "revocation is idempotent"
    );
    assert!(
        store
            .revoke_api_key("ffffffffffffffff", &cli)
            .await
            .unwrap()
            .is_none()
    );
    // A new password revokes the user's key in the same transaction.
    let password = UserPatch {
        password_hash: Some("$argon2id$new".into()),
        ..UserPatch::default()
    };
    store
        .update_user(other.id, password, &cli, "password_changed")
        .await
        .unwrap()
        .unwrap();
    let b1 = store.api_key("00000000000000b1").await.unwrap().unwrap();
    assert!(
        b1.revoked_at.is_some(),
        "the password change revoked the key"
    );
    assert!(
        store
            .active_api_key("00000000000000b1")
            .await
            .unwrap()
            .is_none()
    );

    store
        .insert_api_key(key("00000000000000c1", user.id, 70), &Actor::cli())
        .await
        .unwrap();
    store
        .record_api_key_use(vec![
            ("00000000000000c1".into(), 90),
            ("ffffffffffffffff".into(), 1),
        ])
        .await
        .unwrap();
    store
        .record_api_key_use(vec![("00000000000000c1".into(), 80)])
        .await
        .unwrap();
    assert_eq!(
        store
            .api_key("00000000000000c1")
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(90),
        "newest use wins"
    );

    assert_eq!(
        store.delete_user(user.id, &cli).await.unwrap(),
        Some(DeletedUser {
            username: "keyholder".into(),
            revoked_key: Some("00000000000000c1".into()),
        })
    );
    assert!(
        store
            .api_key("00000000000000c1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert_eq!(store.delete_user(user.id, &cli).await.unwrap(), None);
    // Every change wrote its events, the replaced key's revocation among them.
    let events: Vec<(String, Option<String>, Option<String>)> = store
        .audit_events(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.actor, e.target))
        .collect();
    let cli_event = |kind: &str, target: &str| {
        (
            kind.to_string(),
            Some("cli".to_string()),
            Some(target.to_string()),
        )
    };
    for expected in [
        cli_event("user_created", "keyholder"),
        cli_event("api_key_created", "00000000000000a1"),
        cli_event("api_key_revoked", "00000000000000a1"),
        cli_event("api_key_revoked", "00000000000000a2"),
        cli_event("password_changed", "other"),
        cli_event("api_key_revoked", "00000000000000b1"),
        cli_event("user_deleted", "keyholder"),
        cli_event("api_key_revoked", "00000000000000c1"),
    ] {
        assert!(events.contains(&expected), "{expected:?} not in {events:?}");
    }
    let revoked_twice = events
        .iter()
        .filter(|e| e.0 == "api_key_revoked" && e.2.as_deref() == Some("00000000000000a2"))
        .count();
    assert_eq!(revoked_twice, 1, "revoking a revoked key writes nothing");
    store
        .create_user(new_user("keyholder"), &Actor::cli())
        .await
        .unwrap();
}

async fn refresh_families(store: &dyn Store) {
    let family = |id: &str, expires_at| RefreshFamily {
        id: id.into(),
        user_id: 1,
        current_jti: "j1".into(),
        created_at: 0,
        expires_at,
        revoked_at: None,
    };
    store.create_family(family("f1", 1_000)).await.unwrap();
    assert_eq!(
        store
            .rotate_family("f1", "j1", "j2", 2_000, 5)
            .await
            .unwrap(),
        RotateOutcome::Rotated
    );
    let rotated = store.family("f1").await.unwrap().unwrap();
    assert_eq!(
        (rotated.current_jti.as_str(), rotated.expires_at),
        ("j2", 2_000)
    );
    assert_eq!(
        store
            .rotate_family("f1", "j1", "j3", 3_000, 6)
            .await
            .unwrap(),
        RotateOutcome::ReuseDetected
    );
    assert_eq!(
        store.family("f1").await.unwrap().unwrap().revoked_at,
        Some(6)
    );
    assert_eq!(
        store
            .rotate_family("f1", "j2", "j4", 3_000, 7)
            .await
            .unwrap(),
        RotateOutcome::Revoked
    );
    assert_eq!(
        store.rotate_family("nope", "j1", "j2", 1, 1).await.unwrap(),
        RotateOutcome::Unknown
    );

    store.create_family(family("f2", 1_000)).await.unwrap();
    assert!(store.revoke_family("f2", 9).await.unwrap());
    assert!(!store.revoke_family("nope", 9).await.unwrap());
    store.create_family(family("f3", 100)).await.unwrap();
    assert_eq!(
        store.prune_families(1_500).await.unwrap(),
        2,
        "f2 and f3 have expired"
    );
    assert!(store.family("f1").await.unwrap().is_some());
}

async fn audit_trail(store: &dyn Store) {
    for (i, kind) in ["login", "login_failed", "user_created", "logout"]
        .into_iter()
        .enumerate()
    {
        let event = NewAuditEvent {
            kind,
            actor: Some("root".into()),
            target: None,
            client_ip: Some("127.0.0.1".into()),
        };
        store.append_audit(event, 100 + i as u64).await.unwrap();
    }
    let newest: Vec<String> = store
        .audit_events(None, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(newest, ["logout", "user_created"]);
    let last_id = store.audit_events(None, 2).await.unwrap()[1].id;
    let older: Vec<String> = store
        .audit_events(Some(last_id), 2)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(older, ["login_failed", "login"]);
}

async fn import_keeps_ids(store: &dyn Store) {
    let imported = UserRecord {
        id: 500,
        username: "imported".into(),
        password_hash: "$argon2id$x".into(),
        roles: vec![],
        is_admin: true,
        is_active: true,
        tokens_valid_after: 3,
        created_at: 1,
        updated_at: 2,
    };
    store
        .import(
            vec![imported.clone()],
            vec![key("00000000000005aa", 500, 9)],
        )
        .await
        .unwrap();
    assert_eq!(store.user(500).await.unwrap().unwrap(), imported);
    assert_eq!(
        store
            .api_key("00000000000005aa")
            .await
            .unwrap()
            .unwrap()
            .user_id,
        500
    );
    let next = store
        .create_user(new_user("after-import"), &Actor::cli())
        .await
        .unwrap();
    assert!(
        next.id > 500,
        "new ids never collide with imported ones: {}",
        next.id
    );
    store.ping().await.unwrap();
}

/// What a store reports once a change has committed, and nothing for a change it refused.
async fn changes_are_reported_when_committed(store: &dyn Store) {
    let reported = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = reported.clone();
    store
        .feed()
        .follow_with(Arc::new(move |change| sink.lock().unwrap().push(change)));
    let taken = || std::mem::take(&mut *reported.lock().unwrap());
    let cli = Actor::cli();
    let user = store.create_user(new_user("reported"), &cli).await.unwrap();
    store
        .insert_api_key(key("00000000000007a1", user.id, 1), &cli)
        .await
        .unwrap();
    store
        .insert_api_key(key("00000000000007a2", user.id, 2), &cli)
        .await
        .unwrap();
    assert_eq!(taken(), [Change::ApiKey("00000000000007a1".into())]);
    let deactivate = UserPatch {
        is_active: Some(false),
        ..UserPatch::default()
    };
    store
        .update_user(user.id, deactivate, &cli, "user_changed")
        .await
        .unwrap();
    assert_eq!(
        taken(),
        [
            Change::User(user.id),
            Change::ApiKey("00000000000007a2".into())
        ]
    );
    let admins: Vec<u64> = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .filter(|u| u.is_admin && u.is_active)
        .map(|u| u.id)
        .collect();
    if let [only] = admins[..] {
        let demote = UserPatch {
            is_admin: Some(false),
            ..UserPatch::default()
        };
        let refused = store.update_user(only, demote, &cli, "user_changed").await;
        assert!(matches!(refused, Err(StoreError::LastAdmin)), "{refused:?}");
        assert_eq!(taken(), [], "a refused change reports nothing");
    }
}

async fn the_suite(store: Arc<dyn Store>) {
    users_and_usernames(&*store).await;
    one_active_key_per_user(&*store).await;
    refresh_families(&*store).await;
    audit_trail(&*store).await;
    import_keeps_ids(&*store).await;
    changes_are_reported_when_committed(&*store).await;
}

#[tokio::test]
async fn the_redb_store_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    the_suite(Arc::new(
        RedbStore::open(&dir.path().join("s.redb")).unwrap(),
    ))
    .await;
}

#[tokio::test]
async fn the_postgres_store_passes_the_suite() {
    let schema = PgSchema::create().await;
    the_suite(Arc::new(PostgresStore::connect(&schema.url).await.unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once_and_create_one_first_admin() {
    let schema = PgSchema::create().await;
    let starts: Vec<_> = (0..4)
        .map(|i| {
            let url = schema.url.clone();
            tokio::spawn(async move {
                let store = PostgresStore::connect(&url).await.unwrap();
                store
                    .create_first_user(new_user(&format!("admin{i}")))
                    .await
                    .unwrap()
                    .is_some()
            })
        })
        .collect();
    let mut created = 0;
    for start in starts {
        created += usize::from(start.await.unwrap());
    }
    assert_eq!(created, 1);
    let store = PostgresStore::connect(&schema.url).await.unwrap();
    assert_eq!(store.users().await.unwrap().len(), 1);
}
