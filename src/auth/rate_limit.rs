//! Login throttling, checked before any password work so a throttled guess costs no argon2
//! time. Three budgets, so that guessing is bounded without handing anyone a way to lock a
//! user out (OWASP's "device cookies"):
//!
//! - per client address, whatever the username: one client spraying many accounts. In this
//!   process's memory (`governor`), the cheap first line that keeps a flood off the store;
//! - per username and client address, or per username and *device*: a client that signed in
//!   as that user before holds a device cookie and with it a budget of its own, which nobody
//!   else can spend;
//! - per username for every client without a device cookie, together: a guess spread over
//!   many addresses. When an attacker exhausts it, the user's own devices still get in.
//!
//! The last two live in the store, so with PostgreSQL every replica spends the same budgets.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::RateLimitConfig;
use crate::store::{LoginBudget, Store, StoreError};

pub struct LoginThrottle {
    /// `None` when throttling is off.
    limits: Option<Limits>,
    store: Arc<dyn Store>,
}

struct Limits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    /// (interval ms, burst) of the per-username-and-client budgets.
    per_client: (u64, u32),
    /// (interval ms, burst) of the per-username budget of clients without a device cookie.
    per_account: (u64, u32),
}

/// Who is attempting a login, as far as the budgets care.
pub struct Attempt<'a> {
    pub ip: IpAddr,
    pub username: &'a str,
    /// The id of a device cookie that this very username was given at an earlier sign-in.
    pub device: Option<&'a str>,
}

impl LoginThrottle {
    pub fn new(config: &RateLimitConfig, store: Arc<dyn Store>) -> LoginThrottle {
        let per_minute = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        let interval = |n: u32| 60_000 / u64::from(per_minute(n).get()).max(1);
        let limits = config.enabled.then(|| Limits {
            per_ip: DefaultKeyedRateLimiter::keyed(
                Quota::per_minute(per_minute(config.login_per_ip_per_minute))
                    .allow_burst(per_minute(config.login_per_ip_burst)),
            ),
            clock: DefaultClock::default(),
            per_client: (
                interval(config.login_per_username_per_minute),
                config.login_per_username_burst.max(1),
            ),
            per_account: (
                interval(config.login_per_account_per_minute),
                config.login_per_account_burst.max(1),
            ),
        });
        LoginThrottle { limits, store }
    }

    /// `Some(wait)` when one of the attempt's budgets is empty; each budget is only charged
    /// when the ones before it let the attempt through.
    pub async fn wait_before(&self, attempt: &Attempt<'_>) -> Result<Option<Duration>, StoreError> {
        let Some(limits) = &self.limits else {
            return Ok(None);
        };
        if let Err(not_until) = limits.per_ip.check_key(&attempt.ip) {
            return Ok(Some(not_until.wait_time_from(limits.clock.now())));
        }
        let user = attempt.username.to_lowercase();
        let budget = |key: String, (interval_ms, burst): (u64, u32)| LoginBudget {
            key,
            interval_ms,
            burst,
        };
        let budgets = match attempt.device {
            Some(device) => vec![budget(format!("device:{user}:{device}"), limits.per_client)],
            None => vec![
                budget(
                    format!("client:{user}:{}", attempt.ip.to_canonical()),
                    limits.per_client,
                ),
                budget(format!("account:{user}"), limits.per_account),
            ],
        };
        let now_ms = crate::clock::now_millis();
        let wait = self.store.take_login_budgets(budgets, now_ms).await?;
        Ok(wait.map(Duration::from_millis))
    }

    /// Forgets idle budgets; called periodically so memory and the store track recent
    /// clients only.
    pub async fn forget_idle(&self) {
        if let Some(limits) = &self.limits {
            limits.per_ip.retain_recent();
        }
        if let Err(error) = self
            .store
            .prune_login_budgets(crate::clock::now_millis())
            .await
        {
            tracing::warn!(%error, "pruning login budgets failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RedbStore;

    fn throttle(config: RateLimitConfig) -> (LoginThrottle, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        (LoginThrottle::new(&config, Arc::new(store)), dir)
    }

    fn config() -> RateLimitConfig {
        RateLimitConfig {
            enabled: true,
            login_per_ip_per_minute: 1000,
            login_per_ip_burst: 1000,
            login_per_username_per_minute: 6,
            login_per_username_burst: 2,
            login_per_account_per_minute: 6,
            login_per_account_burst: 3,
        }
    }

    fn attempt<'a>(ip: [u8; 4], username: &'a str, device: Option<&'a str>) -> Attempt<'a> {
        Attempt {
            ip: IpAddr::from(ip),
            username,
            device,
        }
    }

    #[tokio::test]
    async fn one_address_cannot_lock_the_user_out_of_another() {
        let (throttle, _dir) = throttle(config());
        let from = |ip, user| attempt(ip, user, None);
        for _ in 0..2 {
            assert_eq!(
                throttle
                    .wait_before(&from([10, 0, 0, 1], "alice"))
                    .await
                    .unwrap(),
                None
            );
        }
        let wait = throttle
            .wait_before(&from([10, 0, 0, 1], "ALICE"))
            .await
            .unwrap()
            .expect("the pair's budget is spent");
        assert!(
            wait > Duration::from_secs(5) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        assert_eq!(
            throttle
                .wait_before(&from([10, 0, 0, 2], "alice"))
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            throttle
                .wait_before(&from([10, 0, 0, 1], "bob"))
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn a_device_keeps_its_budget_when_the_account_budget_is_spent() {
        let (throttle, _dir) = throttle(config());
        for last in 1..=3 {
            let spray = attempt([10, 0, 1, last], "alice", None);
            assert_eq!(throttle.wait_before(&spray).await.unwrap(), None);
        }
        let stranger = attempt([10, 0, 2, 1], "alice", None);
        assert!(throttle.wait_before(&stranger).await.unwrap().is_some());
        let device = attempt([10, 0, 2, 1], "alice", Some("d1"));
        assert_eq!(throttle.wait_before(&device).await.unwrap(), None);
    }

    #[tokio::test]
    async fn ip_bucket_is_separate_per_address() {
        let (throttle, _dir) = throttle(RateLimitConfig {
            login_per_ip_burst: 1,
            ..RateLimitConfig::default()
        });
        let first = attempt([10, 0, 0, 1], "a", None);
        assert_eq!(throttle.wait_before(&first).await.unwrap(), None);
        assert!(
            throttle
                .wait_before(&attempt([10, 0, 0, 1], "b", None))
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            throttle
                .wait_before(&attempt([10, 0, 0, 2], "c", None))
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn disabled_never_throttles() {
        let (throttle, _dir) = throttle(RateLimitConfig {
            enabled: false,
            ..RateLimitConfig::default()
        });
        for _ in 0..100 {
            let any = attempt([10, 0, 0, 1], "a", None);
            assert_eq!(throttle.wait_before(&any).await.unwrap(), None);
        }
    }
}
