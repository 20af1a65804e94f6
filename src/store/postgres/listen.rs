//! Following other replicas' changes: one dedicated connection `LISTEN`s on the change
//! channel and reports each notification, so a revocation made on one replica reaches every
//! other within a round trip.
//!
//! If that connection drops, nothing is announced for a while: caches fall back to their TTL
//! (the outer bound on staleness), the connection is retried with backoff, and on return every
//! cache is emptied, since anything may have changed meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_postgres::AsyncMessage;

use crate::store::{Change, ChangeSink};

pub const CHANNEL: &str = "portcullis_changes";

impl Change {
    pub(super) fn payload(&self) -> String {
        match self {
            Change::User(id) => format!("user:{id}"),
            Change::ApiKey(id) => format!("key:{id}"),
            Change::Session(id) => format!("session:{id}"),
            Change::Everything => "all".to_string(),
        }
    }

    fn parse(payload: &str) -> Option<Change> {
        match payload.split_once(':') {
            Some(("user", id)) => id.parse().ok().map(Change::User),
            Some(("key", id)) => Some(Change::ApiKey(id.to_string())),
            Some(("session", id)) => Some(Change::Session(id.to_string())),
            _ => (payload == "all").then_some(Change::Everything),
        }
    }
}

/// Listens until the process ends, reconnecting as needed.
pub async fn follow(
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    listening: Arc<AtomicBool>,
    sink: ChangeSink,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let (notifications, mut received) = tokio::sync::mpsc::unbounded_channel();
                // The connection delivers notifications only while polled; when it ends, the
                // sender drops and the loop below notices.
                let driver = tokio::spawn(async move {
                    while let Some(message) =
                        std::future::poll_fn(|cx| connection.poll_message(cx)).await
                    {
                        match message {
                            Ok(AsyncMessage::Notification(n)) => {
                                if notifications.send(n.payload().to_string()).is_err() {
                                    break;
                                }
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                if client
                    .batch_execute(&format!("LISTEN {CHANNEL}"))
                    .await
                    .is_ok()
                {
                    listening.store(true, Ordering::Relaxed);
                    backoff = Duration::from_millis(100);
                    tracing::info!("following changes from other replicas");
                    sink(Change::Everything);
                    while let Some(payload) = received.recv().await {
                        if let Some(change) = Change::parse(&payload) {
                            sink(change);
                        }
                    }
                }
                listening.store(false, Ordering::Relaxed);
                driver.abort();
                tracing::warn!(
                    "lost the change feed; caches fall back to their TTL until it returns"
                );
            }
            Err(error) => {
                let error = super::tls::describe(&error);
                tracing::warn!(%error, "cannot open the change feed");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        for change in [
            Change::User(7),
            Change::ApiKey("0123abcd".into()),
            Change::Session("s1".into()),
            Change::Everything,
        ] {
            assert_eq!(Change::parse(&change.payload()), Some(change));
        }
        assert_eq!(Change::parse("user:x"), None);
        assert_eq!(Change::parse("nonsense"), None);
    }
}
