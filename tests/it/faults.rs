//! Faults an operator meets, against the real thing: an upstream that closes kept-alive
//! connections as they are reused, a disk that fills and empties again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::{Fetch, TestGateway};

/// Request heads an upstream read, by method.
#[derive(Default)]
struct Heads {
    get: AtomicUsize,
    post: AtomicUsize,
}

/// An upstream that answers the first request on each connection, keeps the connection open
/// as HTTP/1.1 allows, and closes it without an answer when the next request arrives: what
/// Node, uvicorn or gunicorn do when their idle timeout strikes just as a proxy reuses the
/// connection.
async fn closes_reused_connections() -> (String, Arc<Heads>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let heads = Arc::new(Heads::default());
    let counted = heads.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let heads = counted.clone();
            tokio::spawn(async move {
                for answered in [true, false] {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let counter = if head.starts_with(b"POST") {
                        &heads.post
                    } else {
                        &heads.get
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    if answered {
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
                // Dropped unanswered: the second request's connection closes under it.
            });
        }
    });
    (url, heads)
}

#[tokio::test]
async fn a_reused_connection_the_upstream_closed_is_retried_once_when_it_is_safe() {
    let (url, heads) = closes_reused_connections().await;
    let gw = TestGateway::start_with(|c| c.upstream.url = url).await;
    let admin = gw.admin_token().await;
    for n in 0..20 {
        let status = gw
            .client
            .get(gw.url("/reports"))
            .bearer_auth(&admin)
            .fetch_status()
            .await;
        assert_eq!(status, StatusCode::OK, "GET {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every reused connection was closed under a request, and each was sent once more.
    assert!(heads.get.load(Ordering::SeqCst) > 20, "no GET was retried");

    // A POST is never sent twice: the client hears that it failed.
    let first = gw.client.get(gw.url("/warm")).bearer_auth(&admin);
    assert_eq!(first.fetch_status().await, StatusCode::OK);
    let status = gw
        .client
        .post(gw.url("/reports"))
        .bearer_auth(&admin)
        .body("a report")
        .fetch_status()
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        heads.post.load(Ordering::SeqCst),
        1,
        "the POST was sent once"
    );
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status();
        assert!(
            mounted.is_ok_and(|s| s.success()),
            "this test mounts a {size} tmpfs to fill it and must run as root (CI does): \
             mount -t tmpfs failed"
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Grows a filler file until the disk refuses another byte.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&filler)
            .unwrap();
        let chunk = vec![0u8; 16 * 1024];
        while file.write_all(&chunk).is_ok() {}
        while file.write_all(&chunk[..512]).is_ok() {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

async fn create_user(gw: &TestGateway, admin: &str, name: &str) -> StatusCode {
    let body = serde_json::json!({"username": name, "password": "a-long-password", "roles": []});
    let request = gw
        .client
        .post(gw.api("/users/"))
        .bearer_auth(admin)
        .json(&body);
    request.fetch_status().await
}

async fn readiness(gw: &TestGateway) -> (StatusCode, serde_json::Value) {
    crate::common::json_of(gw.client.get(gw.url("/readyz")).send().await.unwrap()).await
}

#[tokio::test]
async fn after_the_disk_fills_and_empties_the_store_heals_without_a_restart() {
    let disk = SmallDisk::mount("4m");
    let data = disk.path().join("data");
    let gw = TestGateway::start_with(|c| c.data_dir = data.clone()).await;
    let admin = gw.admin_token().await;
    let key = gw.client.post(gw.api("/api-keys/")).bearer_auth(&admin);
    let key: serde_json::Value = key.fetch_json().await;
    let (key_id, secret) = (key["id"].as_str().unwrap(), key["key"].as_str().unwrap());

    // Writes go on until the disk is full; every one answered 201 must survive. A failed
    // write can leave room behind it (the store gives back what it had allocated), so the
    // filler takes that too, until writes fail twice in a row.
    let mut filler = disk.fill();
    let mut acknowledged = Vec::new();
    let mut failed_in_a_row = 0;
    for n in 0..500 {
        let name = format!("user{n}");
        match create_user(&gw, &admin, &name).await {
            StatusCode::CREATED => {
                acknowledged.push(name);
                failed_in_a_row = 0;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                failed_in_a_row += 1;
                if failed_in_a_row == 2 {
                    break;
                }
                filler = disk.fill();
            }
            other => panic!("creating {name}: {other}"),
        }
    }
    assert_eq!(failed_in_a_row, 2, "the disk never filled");
    // While writes fail, readiness says so. Its probe is a write too: if room a failed write
    // gave back takes it, the store is writable for that moment, so the filler takes that
    // room and a write fails again before the next look.
    let mut said = serde_json::Value::Null;
    for attempt in 0..5 {
        filler = disk.fill();
        let (status, body) = readiness(&gw).await;
        if body["store"] == "read_only" {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            said = body;
            break;
        }
        let name = format!("retry{attempt}");
        match create_user(&gw, &admin, &name).await {
            StatusCode::CREATED => acknowledged.push(name),
            StatusCode::SERVICE_UNAVAILABLE => {}
            other => panic!("creating {name}: {other}"),
        }
    }
    assert_eq!(said["store"], "read_only", "readiness never said read_only");
    // A revocation is a small write: room the failed writes gave back inside the file may take
    // it, or not. Either way it is answered, and it holds once the disk has room again.
    let revoke = gw.client.delete(gw.api(&format!("/api-keys/{key_id}/")));
    let status = revoke.bearer_auth(&admin).fetch_status().await;
    assert!(
        [StatusCode::SERVICE_UNAVAILABLE, StatusCode::NO_CONTENT].contains(&status),
        "revoking on a full disk: {status}"
    );

    // Room again: the store comes back by itself, no restart.
    std::fs::remove_file(filler).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = readiness(&gw).await;
        if status == StatusCode::OK {
            assert_eq!(body["store"], "ok");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never ready again: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(create_user(&gw, &admin, "after").await, StatusCode::CREATED);
    acknowledged.push("after".into());
    let revoke = gw.client.delete(gw.api(&format!("/api-keys/{key_id}/")));
    assert_eq!(
        revoke.bearer_auth(&admin).fetch_status().await,
        StatusCode::NO_CONTENT
    );
    let with_key = gw.client.get(gw.url("/app")).header("x-api-key", secret);
    assert_eq!(with_key.fetch_status().await, StatusCode::UNAUTHORIZED);

    // Every acknowledged write is there, and still there after a restart.
    let listed = |users: serde_json::Value| -> Vec<String> {
        let users = users.as_array().unwrap().iter();
        users
            .map(|u| u["username"].as_str().unwrap().to_string())
            .collect()
    };
    let users = gw.client.get(gw.api("/users/")).bearer_auth(&admin);
    let names = listed(users.fetch_json().await);
    for name in &acknowledged {
        assert!(names.contains(name), "{name} was acknowledged and lost");
    }
    let (config, upstream, dir) = gw.stop().await;
    let gw = TestGateway::start_in(config, upstream, dir).await;
    let admin = gw.admin_token().await;
    let users = gw.client.get(gw.api("/users/")).bearer_auth(&admin);
    let names = listed(users.fetch_json().await);
    for name in &acknowledged {
        assert!(names.contains(name), "{name} lost across a restart");
    }
    drop(gw);
}

#[tokio::test]
async fn a_deactivation_cut_off_halfway_leaves_the_user_unchanged() {
    let proxy = crate::common::tcp_proxy::TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let schema = crate::common::postgres::PgSchema::create_via(&proxy.addr.to_string()).await;
    // In clear, so the relay sees which statement goes by.
    let url = format!("{}&sslmode=disable", schema.url);
    let gw = TestGateway::start_with(|c| {
        c.store.backend = portcullis::config::StoreBackend::Postgres;
        c.store.url = Some(url);
    })
    .await;
    let admin = gw.admin_token().await;
    let dora = gw.create_user(&admin, "dora", "dora-password-1", &[]).await;
    let key = gw.client.post(gw.api("/api-keys/")).bearer_auth(&admin);
    let key: serde_json::Value = key
        .json(&serde_json::json!({"user": dora}))
        .fetch_json()
        .await;
    let secret = key["key"].as_str().unwrap().to_string();
    let with_key = || gw.client.get(gw.url("/app")).header("x-api-key", &secret);
    assert_eq!(with_key().fetch_status().await, StatusCode::OK);

    // The connection dies as the deactivation revokes the key, after it changed the user row.
    proxy.cut_on(b"UPDATE api_keys SET revoked_at");
    let deactivate = || {
        gw.client
            .patch(gw.api(&format!("/users/{dora}/")))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"is_active": false}))
    };
    assert_eq!(
        deactivate().fetch_status().await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    proxy.disarm();

    // Nothing of it happened: the user is active, the key works, no event claims otherwise.
    let user = gw
        .client
        .get(gw.api(&format!("/users/{dora}/")))
        .bearer_auth(&admin);
    assert_eq!(user.fetch_json().await["is_active"], true);
    assert_eq!(with_key().fetch_status().await, StatusCode::OK);
    let audit = gw.client.get(gw.api("/audit/")).bearer_auth(&admin);
    let audit: serde_json::Value = audit.fetch_json().await;
    let changed = audit["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "user_changed" && e["target"] == "dora");
    assert!(
        !changed,
        "an event for a change that did not happen: {audit}"
    );

    // Done again in one piece, all of it at once.
    assert_eq!(deactivate().fetch_status().await, StatusCode::OK);
    assert_eq!(with_key().fetch_status().await, StatusCode::UNAUTHORIZED);
}
