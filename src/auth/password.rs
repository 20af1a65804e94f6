//! argon2id password hashing, off the async reactor and bounded.
//!
//! A hash costs tens of milliseconds of one core and ~19 MiB. Running it inline would stall
//! every connection on that worker; running it unbounded would let a login storm take every
//! core and the memory with it. So hashes run on their own threads, as many as the cores,
//! behind a semaphore of that size, at the lowest scheduling priority: the operating system
//! hands the CPU to the proxy path whenever it wants it, and a login storm only gets what is
//! left. Working areas are kept while logins keep coming (mapping 19 MiB afresh for each hash
//! faults in every page again: ~40% of a login's CPU) and freed after a second without one, so
//! a quiet gateway stays small.

use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    jobs: Sender<Job>,
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
        let dummy_hash = hash_with(&argon, &random, &mut WorkingArea::default())?;
        Ok(Passwords {
            argon,
            permits: Arc::new(Semaphore::new(concurrency)),
            jobs: hashing_threads(concurrency, KEEP_AREAS_IDLE)?.0,
            dummy_hash: dummy_hash.into(),
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let password = password.to_string();
        self.run(move |argon, area| hash_with(&argon, password.as_bytes(), area))
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
            .run(move |_, area| verify_with(password.as_bytes(), &hash, area))
            .await;
        real && verified.unwrap_or(false)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(Argon2<'static>, &mut WorkingArea) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Hash("hasher shut down".into()))?;
        let argon = self.argon.clone();
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |area| {
            let _ = done.send(work(argon, area));
        });
        let gone = || PasswordError::Hash("hashing threads stopped".into());
        self.jobs.send(job).map_err(|_| gone())?;
        result.await.map_err(|_| gone())
    }
}

type Job = Box<dyn FnOnce(&mut WorkingArea) + Send>;

/// How long working areas are kept with no job to use them on.
const KEEP_AREAS_IDLE: Duration = Duration::from_secs(1);

/// Working areas not in use, shared by the hashing threads.
type SpareAreas = Arc<Mutex<Vec<WorkingArea>>>;

/// `count` threads taking hashing jobs from one queue, each at the lowest priority, each job
/// with a working area from the spares. Whichever thread finds the queue empty for `keep_idle`
/// frees every spare. The threads end when the last `Passwords` handle (the queue's sender) is
/// dropped.
fn hashing_threads(
    count: usize,
    keep_idle: Duration,
) -> Result<(Sender<Job>, SpareAreas), PasswordError> {
    let (jobs, queue) = std::sync::mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    let spare = SpareAreas::default();
    for n in 0..count {
        let (queue, spare) = (queue.clone(), spare.clone());
        std::thread::Builder::new()
            .name(format!("portcullis-hash-{n}"))
            .spawn(move || {
                lowest_priority();
                loop {
                    let next = queue.lock().map(|q| q.recv_timeout(keep_idle));
                    match next {
                        Ok(Ok(job)) => {
                            let spare_area = spare.lock().ok().and_then(|mut s| s.pop());
                            let mut area = spare_area.unwrap_or_default();
                            job(&mut area);
                            if let Ok(mut spare) = spare.lock() {
                                spare.push(area);
                            }
                        }
                        Ok(Err(RecvTimeoutError::Timeout)) => {
                            if let Ok(mut spare) = spare.lock() {
                                spare.clear();
                            }
                        }
                        _ => return,
                    }
                }
            })
            .map_err(|e| PasswordError::Hash(format!("cannot start a hashing thread: {e}")))?;
    }
    Ok((jobs, spare))
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

/// The memory argon2 fills, kept from one hash to the next. Argon2's first pass overwrites
/// every block before reading it, so what a previous hash left there does not matter. Those
/// leftovers derive from passwords, as freed memory's would: nothing here is readable from
/// outside the process.
#[derive(Default)]
struct WorkingArea(Vec<Block>);

/// glibc serves an allocation above its largest mmap threshold (32 MiB) from a fresh mapping
/// and returns it whole when freed. Argon2's working area (19 MiB by default), allocated plainly,
/// would raise glibc's threshold after the first drop and stay resident for the life of the
/// process; allocated with this much capacity (pages never touched cost nothing), it leaves
/// nothing behind.
const ALWAYS_MAPPED_BYTES: usize = 33 << 20;

impl WorkingArea {
    /// At least the blocks `params` needs, grown (never shrunk) to fit.
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let blocks = params.block_count();
        if self.0.capacity() < blocks {
            self.0 = Vec::with_capacity(blocks.max(ALWAYS_MAPPED_BYTES / Block::SIZE));
        }
        if self.0.len() < blocks {
            self.0.resize(blocks, Block::new());
        }
        &mut self.0[..blocks]
    }
}

/// An argon2id PHC string for `password`, with a fresh 16-byte salt, computed in a reused
/// working area. Not the argon2 crate's `PasswordHasher`, which allocates its area for each
/// call: glibc then keeps those 19 MiB resident after the first hash, and a gateway idling
/// after one login holds 35 MiB instead of 15 (release build, `VmRSS` after one login; the
/// idle figure of `benches/memory.sh`). The PHC string is the crate's own type, and
/// `hashes_interoperate_with_the_argon2_crate_through_one_reused_area` checks that the crate
/// verifies what this writes, and that this verifies what the crate writes.
fn hash_with(
    argon: &Argon2<'static>,
    password: &[u8],
    area: &mut WorkingArea,
) -> Result<String, PasswordError> {
    let error = |e: &dyn std::fmt::Display| PasswordError::Hash(e.to_string());
    let params = argon.params().clone();
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| error(&e))?;
    let mut out = [0u8; 32];
    argon
        .hash_password_into_with_memory(password, &salt, &mut out, area.blocks(&params))
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
fn verify_with(password: &[u8], phc: &str, area: &mut WorkingArea) -> bool {
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
        argon.hash_password_into_with_memory(password, salt, &mut out, area.blocks(&params));
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
            .run(|_, _| {
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
    fn hashes_interoperate_with_the_argon2_crate_through_one_reused_area() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let argon_with = |memory_kib| {
            let params = Params::new(memory_kib, 1, 1, None).unwrap();
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        };
        // One area for every call, as on a hashing thread: it grows, then serves a smaller
        // hash while still holding a larger one's blocks.
        let mut area = WorkingArea::default();
        let ours = hash_with(&argon_with(1024), b"pw-one", &mut area).unwrap();
        assert!(
            argon_with(1024)
                .verify_password(b"pw-one", ours.as_str())
                .is_ok()
        );
        let theirs = argon_with(2048)
            .hash_password(b"pw-two")
            .unwrap()
            .to_string();
        assert!(verify_with(b"pw-two", &theirs, &mut area));
        assert!(!verify_with(b"pw-one", &theirs, &mut area));
        assert!(verify_with(b"pw-one", &ours, &mut area));
        let again = hash_with(&argon_with(1024), b"pw-one", &mut area).unwrap();
        assert!(
            argon_with(1024)
                .verify_password(b"pw-one", again.as_str())
                .is_ok()
        );
    }

    #[test]
    fn working_areas_are_reused_while_busy_and_freed_when_idle() {
        let keep_idle = Duration::from_millis(500);
        let (jobs, spare) = hashing_threads(1, keep_idle).unwrap();
        let spares = || spare.lock().unwrap().len();
        let wait_for = |count| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while spares() != count {
                assert!(
                    std::time::Instant::now() < deadline,
                    "never {count} spare areas"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        let params = Params::new(1024, 1, 1, None).unwrap();
        for _ in 0..3 {
            let (done, finished) = std::sync::mpsc::channel();
            let params = params.clone();
            jobs.send(Box::new(move |area| {
                done.send(area.blocks(&params).len()).unwrap();
            }))
            .unwrap();
            assert_eq!(finished.recv().unwrap(), 1024);
        }
        // Three jobs in a row used one area between them, and it outlives them...
        wait_for(1);
        // ...until the queue has been empty for `keep_idle`.
        wait_for(0);
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
