//! argon2id password hashing, run off the async workers and bounded in concurrency.
//!
//! Each hash costs tens of MiB and tens of milliseconds of one core, so hashes run on tokio's blocking pool and a
//! semaphore lets at most `max_concurrent_hashes` run at once; further requests wait their turn.

use std::sync::Arc;

use argon2::password_hash::{self, PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use rand::rngs::OsRng;
use tokio::sync::{OnceCell, Semaphore};

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

/// Hashes and verifies passwords with argon2id. Cheap to clone; clones share the concurrency limit.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified for unknown usernames so they take as long as known ones.
    dummy_hash: Arc<OnceCell<String>>,
}

impl PasswordHasher {
    /// Hashes with `params`, running at most `max_concurrent` (at least 1) hashes at once.
    pub fn new(params: Params, max_concurrent: usize) -> Self {
        Self {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy_hash: Arc::new(OnceCell::new()),
        }
    }

    /// A PHC string (`$argon2id$v=19$m=...`) of `password` with a random salt.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        let argon2 = self.argon2.clone();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Ok(argon2.hash_password(password.as_bytes(), &salt)?.to_string())
        })
        .await
    }

    /// Whether `password` matches the PHC string `stored`. With `None` (unknown user) it verifies against a dummy
    /// hash and returns `false`, taking as long as a real verification.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, PasswordError> {
        let (phc, known) = match stored {
            Some(phc) => (phc, true),
            None => (self.dummy_hash().await?.clone(), false),
        };
        let argon2 = self.argon2.clone();
        let matches = self
            .run(move || {
                // Cost parameters come from the stored string, so hashes made under older settings still verify.
                match argon2.verify_password(password.as_bytes(), &PasswordHash::new(&phc)?) {
                    Ok(()) => Ok(true),
                    Err(password_hash::Error::Password) => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await?;
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

    /// Runs `job` on the blocking pool once a permit is free. The permit is held until `job` ends, even if the
    /// caller stops waiting, so the limit counts the CPU really in use.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T, password_hash::Error> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = Arc::clone(&self.permits).acquire_owned().await.expect("the semaphore is never closed");
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await?;
        result.map_err(PasswordError::Argon2)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::AccountConfig;

    fn hasher() -> PasswordHasher {
        PasswordHasher::new(AccountConfig::default().argon2_params().unwrap(), 2)
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
    }
}
