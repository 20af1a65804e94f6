//! argon2id password hashing, off the async reactor and bounded.
//!
//! A hash costs tens of milliseconds of one core and ~19 MiB. Running it inline would stall
//! every connection on that worker; running it unbounded would let a login storm take every
//! core and the memory with it. So hashes run on the blocking pool behind a semaphore sized
//! to the cores, and the proxy path keeps its latency during a storm.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::AuthConfig;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("argon2 parameters: {0}")]
    Params(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

#[derive(Clone)]
pub struct Passwords {
    argon: Argon2<'static>,
    /// Caps concurrent hashes; waiting logins queue here, not on the reactor.
    permits: Arc<Semaphore>,
    /// Verified against when the username is unknown, so both cases cost the same time.
    dummy_hash: Arc<str>,
}

impl Passwords {
    pub fn new(config: &AuthConfig) -> Result<Passwords, PasswordError> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )
        .map_err(|e| PasswordError::Params(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let concurrency = match config.hash_concurrency {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|e| PasswordError::Hash(e.to_string()))?;
        let dummy_hash = hash_with(&argon, &random)?;
        Ok(Passwords {
            argon,
            permits: Arc::new(Semaphore::new(concurrency)),
            dummy_hash: dummy_hash.into(),
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let password = password.to_string();
        self.run(move |argon| hash_with(&argon, password.as_bytes()))
            .await?
    }

    /// Checks `password` against `hash`, or against a dummy hash when there is no user, so a
    /// caller learns nothing from the time it took.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let password = password.to_string();
        let (hash, real) = match hash {
            Some(hash) => (hash.to_string(), true),
            None => (self.dummy_hash.to_string(), false),
        };
        let verified = self
            .run(move |argon| {
                argon
                    .verify_password(password.as_bytes(), hash.as_str())
                    .is_ok()
            })
            .await;
        real && verified.unwrap_or(false)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Hash("hasher shut down".into()))?;
        let argon = self.argon.clone();
        tokio::task::spawn_blocking(move || work(argon))
            .await
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }
}

fn hash_with(argon: &Argon2<'static>, password: &[u8]) -> Result<String, PasswordError> {
    argon
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast_config() -> AuthConfig {
        AuthConfig {
            argon2_memory_kib: 1024,
            argon2_iterations: 1,
            ..AuthConfig::default()
        }
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let passwords = Passwords::new(&fast_config()).unwrap();
        let hash = passwords.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(passwords.verify("correct horse", Some(&hash)).await);
        assert!(!passwords.verify("wrong horse", Some(&hash)).await);
        assert!(!passwords.verify("correct horse", None).await);
        assert!(!passwords.verify("x", Some("not a phc string")).await);
    }

    #[test]
    fn defaults_are_owasp() {
        let c = AuthConfig::default();
        assert_eq!(
            (
                c.argon2_memory_kib,
                c.argon2_iterations,
                c.argon2_parallelism
            ),
            (19_456, 2, 1)
        );
    }
}
