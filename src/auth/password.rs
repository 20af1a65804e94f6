//! argon2id password hashing, off the async reactor and bounded.
//!
//! A hash costs tens of milliseconds of one core and ~19 MiB. Running it inline would stall
//! every connection on that worker; running it unbounded would let a login storm take every
//! core and the memory with it. So hashes run on their own threads, as many as the cores,
//! behind a semaphore of that size, at the lowest scheduling priority: the operating system
//! hands the CPU to the proxy path whenever it wants it, and a login storm only gets what is
//! left.

use std::sync::Arc;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
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
    /// Caps concurrent hashes to the number of hashing threads; waiting logins queue here,
    /// not on the reactor.
    permits: Arc<Semaphore>,
    jobs: std::sync::mpsc::Sender<Job>,
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
            jobs: hashing_threads(concurrency)?,
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
            .run(move |_| verify_with(password.as_bytes(), &hash))
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
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work(argon));
        });
        let gone = || PasswordError::Hash("hashing threads stopped".into());
        self.jobs.send(job).map_err(|_| gone())?;
        result.await.map_err(|_| gone())
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// `count` threads taking hashing jobs from one queue, each at the lowest priority. They end
/// when the last `Passwords` handle (the queue's sender) is dropped.
fn hashing_threads(count: usize) -> Result<std::sync::mpsc::Sender<Job>, PasswordError> {
    let (jobs, queue) = std::sync::mpsc::channel::<Job>();
    let queue = Arc::new(std::sync::Mutex::new(queue));
    for n in 0..count {
        let queue = queue.clone();
        std::thread::Builder::new()
            .name(format!("portcullis-hash-{n}"))
            .spawn(move || {
                lowest_priority();
                loop {
                    let next = queue.lock().map(|q| q.recv());
                    match next {
                        Ok(Ok(job)) => job(),
                        _ => return,
                    }
                }
            })
            .map_err(|e| PasswordError::Hash(format!("cannot start a hashing thread: {e}")))?;
    }
    Ok(jobs)
}

/// Linux's SCHED_IDLE runs a thread only when nothing else wants the core, and preempts it at
/// once when something does; elsewhere, the lowest priority of the normal policy. Best effort:
/// a platform that refuses still hashes, at normal priority.
fn lowest_priority() {
    use thread_priority::*;
    #[cfg(target_os = "linux")]
    let idle = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
    );
    #[cfg(not(target_os = "linux"))]
    let idle: Result<(), Error> = Err(Error::Priority("no idle policy"));
    if idle.is_err() {
        let _ = set_current_thread_priority(ThreadPriority::Min);
    }
}

/// glibc serves an allocation above its largest mmap threshold (32 MiB) from a fresh mapping
/// and returns it whole when freed. Argon2's working area (19 MiB by default), allocated plainly,
/// would raise glibc's threshold after the first hash and stay resident for the life of the
/// process; allocated with this much capacity (pages never touched cost nothing), it leaves
/// nothing behind.
const ALWAYS_MAPPED_BYTES: usize = 33 << 20;

fn working_area(params: &Params) -> Vec<Block> {
    let blocks = params.block_count();
    let mut area = Vec::with_capacity(blocks.max(ALWAYS_MAPPED_BYTES / Block::SIZE));
    area.resize(blocks, Block::new());
    area
}

/// An argon2id PHC string for `password`, with a fresh 16-byte salt.
fn hash_with(argon: &Argon2<'static>, password: &[u8]) -> Result<String, PasswordError> {
    let error = |e: &dyn std::fmt::Display| PasswordError::Hash(e.to_string());
    let params = argon.params().clone();
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| error(&e))?;
    let mut out = [0u8; 32];
    argon
        .hash_password_into_with_memory(password, &salt, &mut out, working_area(&params))
        .map_err(|e| error(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| error(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| error(&e))?),
        hash: Some(Output::new(&out).map_err(|e| error(&e))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`, with the parameters written in it.
fn verify_with(password: &[u8], phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        Params::try_from(&hash),
    ) else {
        return false;
    };
    let Ok(version) = hash.version.map_or(Ok(Version::V0x13), Version::try_from) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    let computed =
        argon.hash_password_into_with_memory(password, salt, &mut out, working_area(&params));
    computed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
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

    #[tokio::test]
    async fn hashes_run_on_their_own_threads_at_the_lowest_priority() {
        let passwords = Passwords::new(&fast_config()).unwrap();
        let (name, policy) = passwords
            .run(|_| {
                let name = std::thread::current().name().map(str::to_string);
                let policy = thread_priority::thread_schedule_policy().ok();
                (name, policy)
            })
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("portcullis-hash-"));
        #[cfg(target_os = "linux")]
        assert_eq!(
            policy,
            Some(thread_priority::ThreadSchedulePolicy::Normal(
                thread_priority::NormalThreadSchedulePolicy::Idle
            ))
        );
    }

    #[test]
    fn hashes_interoperate_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let params = Params::new(1024, 1, 1, None).unwrap();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let ours = hash_with(&argon, b"pw-one").unwrap();
        assert!(argon.verify_password(b"pw-one", ours.as_str()).is_ok());
        let theirs = argon.hash_password(b"pw-two").unwrap().to_string();
        assert!(verify_with(b"pw-two", &theirs));
        assert!(!verify_with(b"pw-one", &theirs));
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
