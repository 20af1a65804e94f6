//! Reloading without a restart: the TLS certificate, the access rules and the JWT signing keys,
//! on SIGHUP or when one of their files changes (cert-manager rewriting a Secret, `portcullis
//! keys rotate` on another replica, an edited rule).
//!
//! A new file that does not load is refused with a log line and what was loaded before keeps
//! serving. Nothing here touches a connection: a new certificate is used from the next
//! handshake on, new rules from the next request on.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::app::App;
use crate::auth::jwt::{KeyFile, Keyring};
use crate::config::{Config, TlsMode};
use crate::gateway::rules::Rules;
use crate::tls::CertificateSlot;

pub struct Reloader {
    app: App,
    certificate: Option<Arc<CertificateSlot>>,
    /// Each watched file and the modification time it had at the last load.
    watched: Vec<(PathBuf, Option<SystemTime>)>,
}

impl Reloader {
    pub fn new(app: App, certificate: Option<Arc<CertificateSlot>>) -> Reloader {
        let config = &app.config;
        let mut files: Vec<PathBuf> = config.source.iter().cloned().collect();
        if config.server.tls != TlsMode::Off {
            let (cert, key) = config.tls_paths();
            files.extend([cert, key]);
        }
        files.push(config.signing_key_path());
        let watched = files
            .into_iter()
            .map(|f| (f.clone(), modified(&f)))
            .collect();
        Reloader {
            app,
            certificate,
            watched,
        }
    }

    /// Reloads on SIGHUP, and when a watched file changes (checked every
    /// `server.reload_check_secs`), until `shutdown` fires.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut hangup = signal(SignalKind::hangup()).ok();
        let period = self.app.config.server.reload_check_secs;
        let mut tick = tokio::time::interval(Duration::from_secs(period.max(1)));
        loop {
            tokio::select! {
                Some(()) = async { hangup.as_mut()?.recv().await } => self.reload("SIGHUP"),
                _ = tick.tick(), if period > 0 => {
                    if self.watched.iter().any(|(file, seen)| modified(file) != *seen) {
                        self.reload("a watched file changed");
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }

    pub fn reload(&mut self, why: &str) {
        for (file, seen) in &mut self.watched {
            *seen = modified(file);
        }
        let config = &self.app.config;
        tracing::info!(
            reason = why,
            "reloading certificate, access rules and signing keys"
        );
        if let Some(slot) = &self.certificate {
            let (cert, key) = config.tls_paths();
            match slot.reload(&cert, &key) {
                Ok(()) => tracing::info!(cert = %cert.display(), "certificate reloaded"),
                Err(error) => {
                    tracing::warn!(%error, "new certificate refused; keeping the current one")
                }
            }
        }
        if let Some(source) = &config.source {
            let rules = Config::load(Some(source), std::env::vars())
                .map_err(|e| e.to_string())
                .and_then(|new| Rules::new(&new.rules));
            match rules {
                Ok(rules) => {
                    tracing::info!(rules = rules.len(), "access rules reloaded");
                    self.app.rules.store(Arc::new(rules));
                }
                Err(error) => {
                    tracing::warn!(%error, "configuration refused; keeping the current access rules")
                }
            }
        }
        let keys = config.signing_key_path();
        let loaded = KeyFile::read(&keys).and_then(|file| {
            Keyring::from_file(&file, config.auth.algorithm).map_err(|reason| {
                crate::auth::jwt::KeyError::File {
                    path: keys.display().to_string(),
                    reason,
                }
            })
        });
        match loaded {
            Ok(keyring) => {
                self.app.auth.tokens.replace_keyring(keyring);
                tracing::info!("signing keys reloaded");
            }
            Err(error) => tracing::warn!(%error, "signing keys refused; keeping the current ones"),
        }
    }
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
