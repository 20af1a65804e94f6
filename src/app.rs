//! The gateway's shared state: everything a request needs, built once at start and shared by
//! every connection through a cheap `Clone` handle.

use std::ops::Deref;

use arc_swap::ArcSwap;
use http::HeaderValue;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::Authenticator;
use crate::auth::jwt::{KeyError, Keyring, Tokens};
use crate::auth::password::{PasswordError, Passwords};
use crate::auth::rate_limit::LoginThrottle;
use crate::auth::session::GatewayCookies;
use crate::cache::Caches;
use crate::config::{Config, StoreBackend};
use crate::gateway::headers::IdentityHeaders;
use crate::gateway::rules::Rules;
use crate::gateway::upstream::{Upstream, UpstreamError};
use crate::metrics::Metrics;
use crate::store::{Change, ChangeSink, PostgresStore, RedbStore, Store, StoreError};

#[derive(Clone)]
pub struct App(Arc<State>);

pub struct State {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub caches: Arc<Caches>,
    pub auth: Authenticator,
    pub passwords: Passwords,
    pub throttle: LoginThrottle,
    /// The names of the gateway's own cookies, which it reads, sets, and keeps from the
    /// upstream in both directions.
    pub cookies: GatewayCookies,
    pub upstream: Upstream,
    /// Swapped whole on reload; each request reads the table current when it arrived.
    pub rules: ArcSwap<Rules>,
    pub identity: IdentityHeaders,
    /// `Strict-Transport-Security` for answers the browser gets over HTTPS, built once; none
    /// when disabled.
    pub hsts: Option<HeaderValue>,
    pub docs: crate::openapi::ApiDocs,
    pub access_log: crate::access_log::AccessLog,
    pub metrics: Metrics,
}

impl Deref for App {
    type Target = State;
    fn deref(&self) -> &State {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key: {0}")]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Io(String),
    #[error("cannot start the connection workers: {0}")]
    Workers(std::io::Error),
}

/// Opens the configured store: the redb file (its integrity check is blocking work, so off
/// the reactor) or a PostgreSQL pool.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    match config.store.backend {
        StoreBackend::Redb => {
            let path = config.redb_path();
            let store = tokio::task::spawn_blocking(move || RedbStore::open(&path))
                .await
                .map_err(|e| StartError::Io(e.to_string()))??;
            Ok(Arc::new(store))
        }
        StoreBackend::Postgres => {
            let url = config.store.url.as_deref().ok_or_else(|| {
                invalid("store.url: required when backend = \"postgres\"".to_string())
            })?;
            Ok(Arc::new(PostgresStore::connect(url).await?))
        }
    }
}

impl App {
    /// Builds the state from validated configuration: opens the store, loads (or creates)
    /// the signing key, prepares the password hasher and the upstream pool.
    pub async fn new(
        config: Config,
        access_log: crate::access_log::AccessLog,
    ) -> Result<App, StartError> {
        let store = open_store(&config).await?;
        tokio::task::spawn_blocking(move || App::with_store(config, store, access_log))
            .await
            .map_err(|e| StartError::Io(e.to_string()))?
    }

    pub fn with_store(
        config: Config,
        store: Arc<dyn Store>,
        access_log: crate::access_log::AccessLog,
    ) -> Result<App, StartError> {
        let metrics = Metrics::new();
        let keyring = Keyring::load_or_create(&config.signing_key_path(), config.auth.algorithm)?;
        warn_if_readable_by_others(&config.signing_key_path());
        let caches = Arc::new(Caches::new(&config.cache, metrics.clone()));
        // The caches follow what the store commits, from this process and (PostgreSQL) others.
        store.feed().follow_with(cache_invalidation(&caches));
        let tokens = Tokens::new(&config.auth, keyring);
        let state = State {
            auth: Authenticator::new(tokens, store.clone(), caches.clone()),
            passwords: Passwords::new(&config.auth)?,
            throttle: LoginThrottle::new(&config.rate_limit, store.clone()),
            cookies: GatewayCookies::new(&config.ui.cookie_name),
            upstream: Upstream::new(&config.upstream, metrics.clone())?,
            rules: ArcSwap::from_pointee(Rules::new(&config.rules).map_err(invalid)?),
            identity: IdentityHeaders::new(&config.headers).map_err(invalid)?,
            hsts: hsts(config.server.hsts_max_age_secs),
            docs: crate::openapi::ApiDocs::new(&config.auth.api_prefix),
            access_log,
            store,
            caches,
            metrics,
            config,
        };
        Ok(App(Arc::new(state)))
    }

    /// Follows changes other replicas make to the shared store, dropping what they changed
    /// from this process's caches.
    pub async fn follow_changes(self) {
        let sink = cache_invalidation(&self.caches);
        self.store.follow_changes(sink).await;
    }

    /// Periodic upkeep until `shutdown` fires: batched API-key `last_used_at` writes, idle
    /// rate-limit buckets, expired refresh families. Flushes key usage once more on the way out.
    pub async fn maintain(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut flush =
            tokio::time::interval(Duration::from_secs(self.config.cache.last_used_flush_secs));
        let mut hourly = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = flush.tick() => self.flush_key_usage().await,
                _ = hourly.tick() => {
                    self.throttle.forget_idle().await;
                    if let Err(error) = self.store.prune_families(crate::clock::now_secs()).await {
                        tracing::warn!(%error, "pruning expired sessions failed");
                    }
                }
                _ = shutdown.changed() => break,
            }
        }
        self.flush_key_usage().await;
    }

    async fn flush_key_usage(&self) {
        let uses = self.auth.key_usage().take();
        if uses.is_empty() {
            return;
        }
        if let Err(error) = self.store.record_api_key_use(uses).await {
            tracing::warn!(%error, "recording API key use failed");
        }
    }
}

/// Drops from the caches whatever a change touched.
fn cache_invalidation(caches: &Arc<Caches>) -> ChangeSink {
    let caches = caches.clone();
    Arc::new(move |change| match change {
        Change::User(id) => caches.invalidate_user(id),
        Change::ApiKey(id) => caches.invalidate_key(&id),
        Change::Session(id) => caches.invalidate_session(&id),
        Change::Everything => caches.invalidate_all(),
    })
}

/// A configuration value a constructor refused: validation lets none through, and none is
/// ever replaced by a default.
fn invalid(problem: String) -> StartError {
    StartError::Config(crate::config::ConfigError::Invalid(vec![problem]))
}

/// Kubernetes mounts Secrets 0644 unless told otherwise; say so rather than fail. Group read
/// is how a Secret reaches a non-root container (`fsGroup`), so only world read is flagged.
fn warn_if_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o007 != 0
    {
        tracing::warn!(path = %path.display(), "signing key file is readable by every user; use mode 0600 (or 0640 with a dedicated group)");
    }
}

fn hsts(max_age_secs: u64) -> Option<HeaderValue> {
    if max_age_secs == 0 {
        return None;
    }
    HeaderValue::from_str(&format!("max-age={max_age_secs}; includeSubDomains")).ok()
}
