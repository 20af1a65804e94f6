//! Login throttling: per client IP and per username, token buckets from `governor`.
//!
//! Both are checked before any password work, so a throttled attempt costs no argon2 time.
//! The username bucket stops a distributed guess at one account; the IP bucket stops one
//! client spraying many accounts. Buckets live in this process (see README, several replicas).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::RateLimitConfig;

pub struct LoginThrottle {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_username: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl LoginThrottle {
    pub fn new(config: &RateLimitConfig) -> LoginThrottle {
        let quota = |per_minute: u32, burst: u32| {
            let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            Quota::per_minute(per_minute).allow_burst(burst)
        };
        let enabled = config.enabled;
        LoginThrottle {
            per_ip: enabled.then(|| {
                DefaultKeyedRateLimiter::keyed(quota(
                    config.login_per_ip_per_minute,
                    config.login_per_ip_burst,
                ))
            }),
            per_username: enabled.then(|| {
                DefaultKeyedRateLimiter::keyed(quota(
                    config.login_per_username_per_minute,
                    config.login_per_username_burst,
                ))
            }),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(wait)` when either bucket is empty. The username bucket is only charged when the
    /// IP bucket let the attempt through, so one noisy client cannot lock a user out faster.
    pub fn check(&self, ip: IpAddr, username: &str) -> Result<(), Duration> {
        if let Some(limiter) = &self.per_ip {
            limiter
                .check_key(&ip)
                .map_err(|n| n.wait_time_from(self.clock.now()))?;
        }
        if let Some(limiter) = &self.per_username {
            let key = username.to_lowercase();
            limiter
                .check_key(&key)
                .map_err(|n| n.wait_time_from(self.clock.now()))?;
        }
        Ok(())
    }

    /// Forgets idle buckets; called periodically so memory tracks recent clients only.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.per_ip {
            limiter.retain_recent();
        }
        if let Some(limiter) = &self.per_username {
            limiter.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_bucket_empties_and_reports_wait() {
        let config = RateLimitConfig {
            enabled: true,
            login_per_ip_per_minute: 1000,
            login_per_ip_burst: 1000,
            login_per_username_per_minute: 6,
            login_per_username_burst: 2,
        };
        let throttle = LoginThrottle::new(&config);
        let ip = IpAddr::from([127, 0, 0, 1]);
        assert!(throttle.check(ip, "alice").is_ok());
        assert!(throttle.check(ip, "ALICE").is_ok());
        let wait = throttle.check(ip, "alice").unwrap_err();
        assert!(
            wait > Duration::from_secs(5) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        assert!(throttle.check(ip, "bob").is_ok());
    }

    #[test]
    fn ip_bucket_is_separate_per_address() {
        let config = RateLimitConfig {
            login_per_ip_burst: 1,
            ..RateLimitConfig::default()
        };
        let throttle = LoginThrottle::new(&config);
        assert!(throttle.check(IpAddr::from([10, 0, 0, 1]), "a").is_ok());
        assert!(throttle.check(IpAddr::from([10, 0, 0, 1]), "b").is_err());
        assert!(throttle.check(IpAddr::from([10, 0, 0, 2]), "c").is_ok());
    }

    #[test]
    fn disabled_never_throttles() {
        let config = RateLimitConfig {
            enabled: false,
            ..RateLimitConfig::default()
        };
        let throttle = LoginThrottle::new(&config);
        for _ in 0..100 {
            assert!(throttle.check(IpAddr::from([10, 0, 0, 1]), "a").is_ok());
        }
    }
}
