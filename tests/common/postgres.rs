//! A fresh schema in the local PostgreSQL (127.0.0.1:5432, database `test`, trust auth) for
//! each test, so tests never see each other's rows. `.ci/run` starts the server when it is not
//! answering; without it, these tests fail and say so.

use std::time::Duration;

use tokio_postgres::NoTls;

pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";

pub struct PgSchema {
    pub name: String,
    pub url: String,
}

impl PgSchema {
    pub async fn create() -> PgSchema {
        PgSchema::create_via("127.0.0.1:5432").await
    }

    /// A schema reached through `address` (a proxy standing in for the server, say).
    pub async fn create_via(address: &str) -> PgSchema {
        let server =
            std::env::var("PORTCULLIS_TEST_POSTGRES").unwrap_or_else(|_| SERVER.to_string());
        let connected = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_postgres::connect(&server, NoTls),
        )
        .await;
        let (client, connection) = match connected {
            Ok(Ok(pair)) => pair,
            Ok(Err(error)) => panic!("{}", unavailable(&server, &error.to_string())),
            Err(_) => panic!("{}", unavailable(&server, "timed out")),
        };
        tokio::spawn(connection);
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap();
        let base = server.replacen("127.0.0.1:5432", address, 1);
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-csearch_path%3D{name}");
        PgSchema { name, url }
    }
}

fn unavailable(server: &str, why: &str) -> String {
    format!(
        "PostgreSQL is required for this test at {server} ({why}). .ci/run starts it; by hand: \
         pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start \
         (or set PORTCULLIS_TEST_POSTGRES to another server)"
    )
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        let server =
            std::env::var("PORTCULLIS_TEST_POSTGRES").unwrap_or_else(|_| SERVER.to_string());
        // Drop runs outside any runtime's control, so the cleanup gets a small one of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok((client, connection)) = tokio_postgres::connect(&server, NoTls).await {
                    tokio::spawn(connection);
                    // A failed test may leave a transaction open on this runtime's connections,
                    // which cannot finish while this drop blocks the runtime: wait a little, then
                    // leave the schema to whoever cleans the test database.
                    let drop =
                        format!("SET lock_timeout = '3s'; DROP SCHEMA IF EXISTS {name} CASCADE");
                    let _ = client.batch_execute(&drop).await;
                }
            });
        })
        .join();
    }
}
