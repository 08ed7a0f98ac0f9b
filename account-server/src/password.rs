//! argon2id password hashing, run off the async workers and bounded in concurrency and memory.
//!
//! Each hash costs tens of MiB and tens of milliseconds of one core, so hashes run on tokio's blocking pool and a
//! semaphore lets at most `max_concurrent_hashes` run at once; further requests wait their turn.
//!
//! The argon2 working memory comes from a [`MemoryPool`] of at most one buffer per permit, allocated on first need and
//! reused for every later hash, so hashing holds at most `max_concurrent_hashes × argon2_memory_kib`. Allocating it
//! afresh per hash (what `Argon2::hash_password` does) left an idle server at hundreds of MiB: after the first free of
//! a large mmapped chunk glibc raises its mmap threshold, and later buffers come from per-thread arenas and stay
//! resident.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::{self, Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use rand::rngs::OsRng;
use tokio::sync::{OnceCell, Semaphore};
use tracing::debug;

/// The algorithm and version of new hashes. Verification takes both from the stored string.
const ALGORITHM: Algorithm = Algorithm::Argon2id;
const VERSION: Version = Version::V0x13;

/// A failure to hash or verify (never a wrong password: that is `Ok(false)`).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// argon2 rejected the input or a stored hash is not a valid PHC string.
    #[error("argon2: {0}")]
    Argon2(password_hash::Error),
    /// The blocking task panicked or was cancelled.
    #[error("password hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Hashes and verifies passwords with argon2id. Cheap to clone; clones share the concurrency limit and the memory.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// Hashes waiting for a permit.
    queued: Arc<AtomicUsize>,
    memory: Arc<MemoryPool>,
    /// A hash of a random password, verified for unknown usernames so they take as long as known ones.
    dummy_hash: Arc<OnceCell<String>>,
}

impl PasswordHasher {
    /// Hashes with `params`, running at most `max_concurrent` (at least 1) hashes at once, each in one of at most
    /// `max_concurrent` reused buffers of `params.m_cost()` KiB.
    pub fn new(params: Params, max_concurrent: usize) -> Self {
        let memory = Arc::new(MemoryPool::new(params.block_count()));
        Self {
            argon2: Argon2::new(ALGORITHM, VERSION, params),
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            queued: Arc::default(),
            memory,
            dummy_hash: Arc::new(OnceCell::new()),
        }
    }

    /// A PHC string (`$argon2id$v=19$m=...`) of `password` with a random salt.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        let argon2 = self.argon2.clone();
        self.run(move |memory| {
            let salt = SaltString::generate(&mut OsRng);
            phc_hash(&argon2, password.as_bytes(), &salt, memory)
        })
        .await
    }

    /// Whether `password` matches the PHC string `stored`. With `None` (unknown user) it verifies against a dummy
    /// hash and returns `false`, taking as long as a real verification.
    ///
    /// Cost parameters, algorithm and version come from `stored`, so hashes made under older settings still verify.
    /// One whose memory cost exceeds the configured one gets a buffer of its own for that verification, freed after.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, PasswordError> {
        let (phc, known) = match stored {
            Some(phc) => (phc, true),
            None => (self.dummy_hash().await?.clone(), false),
        };
        let matches =
            self.run(move |memory| phc_verify(password.as_bytes(), &PasswordHash::new(&phc)?, memory)).await?;
        Ok(known && matches)
    }

    /// Computes the dummy hash now rather than on the first login with an unknown username.
    pub async fn warm_up(&self) -> Result<(), PasswordError> {
        self.dummy_hash().await.map(drop)
    }

    async fn dummy_hash(&self) -> Result<&String, PasswordError> {
        self.dummy_hash
            .get_or_try_init(|| {
                let mut random = [0u8; 32];
                OsRng.fill_bytes(&mut random);
                self.hash(random.iter().map(|b| format!("{b:02x}")).collect())
            })
            .await
    }

    /// Hashes waiting for a free hasher (`account.max_concurrent_hashes` run at once).
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Runs `job` with a pooled buffer on the blocking pool once a permit is free. The permit is held until `job`
    /// ends, even if the caller stops waiting, so the limit counts the CPU really in use.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut [Block]) -> Result<T, password_hash::Error> + Send + 'static,
    ) -> Result<T, PasswordError> {
        self.queued.fetch_add(1, Ordering::Relaxed);
        let permit = Arc::clone(&self.permits).acquire_owned().await;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        let permit = permit.expect("the semaphore is never closed");
        let memory = Arc::clone(&self.memory);
        let result = tokio::task::spawn_blocking(move || {
            let result = memory.with_buffer(job);
            // Only now, with the buffer back in the pool: the next holder finds it there instead of allocating.
            drop(permit);
            result
        })
        .await?;
        result.map_err(PasswordError::Argon2)
    }
}

/// Reusable argon2 memory: buffers of `blocks` blocks, allocated when none is free and never freed. Callers hold a
/// semaphore permit while using one, so there are never more buffers than permits.
struct MemoryPool {
    blocks: usize,
    free: Mutex<Vec<Vec<Block>>>,
    allocated: AtomicUsize,
}

impl MemoryPool {
    fn new(blocks: usize) -> Self {
        Self { blocks, free: Mutex::new(Vec::new()), allocated: AtomicUsize::new(0) }
    }

    /// Runs `f` with a buffer, returned to the pool afterwards even if `f` panics. Its contents are whatever the
    /// previous hash left: argon2 overwrites every block in its first pass before reading it.
    fn with_buffer<T>(&self, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let popped = self.free.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut lease = Lease { pool: self, buffer: popped.unwrap_or_else(|| self.allocate()) };
        f(&mut lease.buffer)
    }

    fn allocate(&self) -> Vec<Block> {
        let count = self.allocated.fetch_add(1, Ordering::Relaxed) + 1;
        debug!(buffers = count, kib = self.blocks, "allocating an argon2 memory buffer");
        vec![Block::new(); self.blocks]
    }
}

impl fmt::Debug for MemoryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryPool")
            .field("blocks", &self.blocks)
            .field("allocated", &self.allocated.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A buffer out of its pool; dropping it puts it back.
struct Lease<'a> {
    pool: &'a MemoryPool,
    buffer: Vec<Block>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.buffer);
        self.pool.free.lock().unwrap_or_else(PoisonError::into_inner).push(buffer);
    }
}

/// The PHC string of `password` hashed by `argon2` with `salt` in `memory`: the same string
/// `argon2::PasswordHasher::hash_password` makes.
fn phc_hash(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &SaltString,
    memory: &mut [Block],
) -> Result<String, password_hash::Error> {
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let output_len = argon2.params().output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(output_len, |out| {
        Ok(argon2.hash_password_into_with_memory(password, salt_bytes, out, memory)?)
    })?;
    let phc = PasswordHash {
        algorithm: ALGORITHM.ident(),
        version: Some(VERSION.into()),
        params: ParamsString::try_from(argon2.params())?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` hashes to `stored` under `stored`'s own algorithm, version and parameters, computed in
/// `memory` if it is large enough, else in a buffer allocated for this call. Compares in constant time, and treats a
/// PHC string without salt or hash as a mismatch, as `argon2::PasswordVerifier` does.
fn phc_verify(password: &[u8], stored: &PasswordHash<'_>, memory: &mut [Block]) -> Result<bool, password_hash::Error> {
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return Ok(false);
    };
    let algorithm = Algorithm::try_from(stored.algorithm)?;
    let version = stored.version.map(Version::try_from).transpose()?.unwrap_or_default();
    let argon2 = Argon2::new(algorithm, version, Params::try_from(stored)?);
    let mut own;
    let memory = match argon2.params().block_count() {
        needed if needed <= memory.len() => memory,
        needed => {
            own = vec![Block::new(); needed];
            &mut own[..]
        }
    };
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let computed = Output::init_with(expected.len(), |out| {
        Ok(argon2.hash_password_into_with_memory(password, salt_bytes, out, memory)?)
    })?;
    // `Output`'s equality is constant-time.
    Ok(computed == *expected)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;
    use crate::config::AccountConfig;

    fn hasher() -> PasswordHasher {
        PasswordHasher::new(AccountConfig::default().argon2_params().unwrap(), 2)
    }

    /// Cheap parameters (1 MiB, one pass) for tests that hash many times.
    fn small_params() -> Params {
        Params::new(1024, 1, 1, None).unwrap()
    }

    fn stock_hash(algorithm: Algorithm, version: Version, params: Params, password: &str) -> String {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::new(algorithm, version, params).hash_password(password.as_bytes(), &salt).unwrap().to_string()
    }

    fn stock_verifies(password: &str, phc: &str) -> bool {
        Argon2::default().verify_password(password.as_bytes(), &PasswordHash::new(phc).unwrap()).is_ok()
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let h = hasher();
        let phc = h.hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(h.verify("correct horse".into(), Some(phc.clone())).await.unwrap());
        assert!(!h.verify("wrong horse".into(), Some(phc)).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_user_never_matches_and_bad_hashes_are_errors() {
        let h = hasher();
        assert!(!h.verify("anything".into(), None).await.unwrap());
        assert!(h.verify("anything".into(), Some("not a phc string".into())).await.is_err());
        let no_output = "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0";
        assert!(!h.verify("anything".into(), Some(no_output.into())).await.unwrap());
    }

    #[test]
    fn phc_string_is_the_stock_one() {
        let argon2 = Argon2::new(ALGORITHM, VERSION, small_params());
        let salt = SaltString::generate(&mut OsRng);
        // Larger than needed and dirty, as a pooled buffer can be.
        let mut memory = vec![Block::new(); small_params().block_count() * 2];
        for _ in 0..2 {
            let ours = phc_hash(&argon2, b"pw", &salt, &mut memory).unwrap();
            assert_eq!(ours, argon2.hash_password(b"pw", &salt).unwrap().to_string());
        }
    }

    #[tokio::test]
    async fn stock_hashes_verify_with_ours_and_ours_with_stock() {
        let h = PasswordHasher::new(small_params(), 1);
        for i in 0..3 {
            // The same buffer each time, dirty from the previous hash.
            let password = format!("password-{i}");
            let ours = h.hash(password.clone()).await.unwrap();
            assert!(stock_verifies(&password, &ours));
            assert!(!stock_verifies("other", &ours));
            let stock = stock_hash(ALGORITHM, VERSION, small_params(), &password);
            assert!(h.verify(password.clone(), Some(stock.clone())).await.unwrap());
            assert!(!h.verify("other".into(), Some(stock)).await.unwrap());
        }
        assert_eq!(h.memory.allocated.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn hashes_under_other_params_algorithms_and_versions_verify() {
        let h = PasswordHasher::new(small_params(), 1);
        let others = [
            // Less memory than the pooled buffer: computed in part of it.
            (ALGORITHM, VERSION, Params::new(256, 3, 1, None).unwrap()),
            // More memory than the pooled buffer: computed in a buffer of its own.
            (ALGORITHM, VERSION, Params::new(4096, 1, 2, None).unwrap()),
            (Algorithm::Argon2i, Version::V0x10, Params::new(512, 2, 1, None).unwrap()),
            (ALGORITHM, VERSION, Params::new(1024, 1, 1, Some(64)).unwrap()),
        ];
        for (algorithm, version, params) in others {
            let stock = stock_hash(algorithm, version, params, "pw");
            assert!(h.verify("pw".into(), Some(stock.clone())).await.unwrap(), "{stock}");
            assert!(!h.verify("pW".into(), Some(stock.clone())).await.unwrap(), "{stock}");
        }
        assert_eq!(h.memory.allocated.load(Ordering::Relaxed), 1, "own buffers are not pooled");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_hashes_share_at_most_max_concurrent_buffers() {
        let h = PasswordHasher::new(small_params(), 2);
        let jobs: Vec<_> = (0..24)
            .map(|i| {
                let h = h.clone();
                tokio::spawn(async move {
                    let password = format!("password-{i}");
                    let phc = h.hash(password.clone()).await.unwrap();
                    assert!(h.verify(password, Some(phc)).await.unwrap());
                })
            })
            .collect();
        for job in jobs {
            job.await.unwrap();
        }
        let allocated = h.memory.allocated.load(Ordering::Relaxed);
        assert!((1..=2).contains(&allocated), "{allocated} buffers");
    }

    #[tokio::test]
    async fn a_panicking_job_returns_its_buffer() {
        let h = PasswordHasher::new(small_params(), 1);
        let failed = h.run::<()>(|_| panic!("boom")).await;
        assert!(matches!(failed, Err(PasswordError::Task(_))));
        h.hash("pw".into()).await.unwrap();
        assert_eq!(h.memory.allocated.load(Ordering::Relaxed), 1);
    }
}
