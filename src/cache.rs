//! The hot path's memory: users, API keys and revoked login sessions, cached in front of the
//! store with a TTL (`cache.ttl_secs`) as the outer bound on staleness.
//!
//! Whoever changes a user, a key or a session invalidates the entry here at once, so the
//! change takes effect on the very next request in this process. A load that raced with an
//! invalidation (read the store before the change, would insert after it) is not inserted:
//! every invalidation bumps `generation`, and a load only caches if the generation it started
//! under is still current.

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use foldhash::fast::RandomState;
use moka::sync::Cache as MokaCache;

/// moka's default hasher is SipHash; foldhash, randomly seeded, resists flooding as well and
/// costs a fraction of it on the request path.
type Cache<K, V> = MokaCache<K, V, RandomState>;

use crate::auth::user::UserState;
use crate::config::CacheConfig;
use crate::metrics::Metrics;
use crate::store::{StoreError, UserId};

/// What the hot path needs to check a presented API key: only active keys have one.
#[derive(Debug)]
pub struct KeyState {
    pub user_id: UserId,
    pub secret_sha256: [u8; 32],
}

pub struct Caches {
    /// `None` caches "no such user" too, so a token for a deleted user costs no store read.
    users: Cache<UserId, Option<Arc<UserState>>>,
    keys: Cache<String, Option<Arc<KeyState>>>,
    /// Session (refresh family) id → revoked.
    sessions: Cache<String, bool>,
    generation: AtomicU64,
    metrics: Metrics,
}

impl Caches {
    pub fn new(config: &CacheConfig, metrics: Metrics) -> Caches {
        let ttl = Duration::from_secs(config.ttl_secs);
        Caches {
            users: cache(config.max_entries, ttl),
            keys: cache(config.max_entries, ttl),
            sessions: cache(config.max_entries, ttl),
            generation: AtomicU64::new(0),
            metrics,
        }
    }

    pub async fn user<F>(&self, id: UserId, load: F) -> Result<Option<Arc<UserState>>, StoreError>
    where
        F: Future<Output = Result<Option<Arc<UserState>>, StoreError>>,
    {
        self.get_or_load("user", &self.users, &id, load).await
    }

    pub async fn key<F>(&self, id: &str, load: F) -> Result<Option<Arc<KeyState>>, StoreError>
    where
        F: Future<Output = Result<Option<Arc<KeyState>>, StoreError>>,
    {
        self.get_or_load("api_key", &self.keys, id, load).await
    }

    pub async fn session_revoked<F>(&self, id: &str, load: F) -> Result<bool, StoreError>
    where
        F: Future<Output = Result<bool, StoreError>>,
    {
        self.get_or_load("session", &self.sessions, id, load).await
    }

    pub fn invalidate_user(&self, id: UserId) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.users.invalidate(&id);
    }

    pub fn invalidate_key(&self, id: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.keys.invalidate(id);
    }

    /// Drops every entry: after an interruption of the change feed, anything may be stale.
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.users.invalidate_all();
        self.keys.invalidate_all();
        self.sessions.invalidate_all();
    }

    pub fn invalidate_session(&self, id: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.sessions.invalidate(id);
    }

    async fn get_or_load<K, Q, V, F>(
        &self,
        name: &'static str,
        cache: &Cache<K, V>,
        key: &Q,
        load: F,
    ) -> Result<V, StoreError>
    where
        K: Borrow<Q> + Hash + Eq + Send + Sync + 'static,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
        V: Clone + Send + Sync + 'static,
        F: Future<Output = Result<V, StoreError>>,
    {
        if let Some(value) = cache.get(key) {
            self.metrics.cache_lookup(name, true);
            return Ok(value);
        }
        self.metrics.cache_lookup(name, false);
        let generation = self.generation.load(Ordering::Acquire);
        let value = load.await?;
        if self.generation.load(Ordering::Acquire) == generation {
            cache.insert(key.to_owned(), value.clone());
        }
        Ok(value)
    }
}

fn cache<K, V>(max_entries: u64, ttl: Duration) -> Cache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    MokaCache::builder()
        .max_capacity(max_entries)
        .time_to_live(ttl)
        .build_with_hasher(RandomState::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caches() -> Caches {
        Caches::new(&CacheConfig::default(), Metrics::new())
    }

    #[tokio::test]
    async fn second_lookup_is_served_from_memory() {
        let caches = caches();
        assert!(
            caches
                .session_revoked("s", async { Ok(true) })
                .await
                .unwrap()
        );
        let not_called = async { panic!("loaded twice") };
        assert!(caches.session_revoked("s", not_called).await.unwrap());
    }

    #[tokio::test]
    async fn invalidation_forces_a_reload() {
        let caches = caches();
        assert!(
            !caches
                .session_revoked("s", async { Ok(false) })
                .await
                .unwrap()
        );
        caches.invalidate_session("s");
        assert!(
            caches
                .session_revoked("s", async { Ok(true) })
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_load_racing_an_invalidation_is_not_cached() {
        let caches = caches();
        // The load read "not revoked" from the store, then the revocation landed.
        let stale = async {
            caches.invalidate_session("s");
            Ok(false)
        };
        assert!(!caches.session_revoked("s", stale).await.unwrap());
        assert!(
            caches
                .session_revoked("s", async { Ok(true) })
                .await
                .unwrap()
        );
    }
}
