//! Session keys for encrypted connections: fetched from the account server once per session, cached for the
//! session's life, forgotten at logout.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use movan_protocol::crypto::SessionKey;
use movan_protocol::{ErrorCode, ProtocolError};

/// Why a session key could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The account server does not know the session (logged out, banned, expired, or not this player's).
    #[error("unknown session")]
    Unknown,
    /// The account server could not be asked.
    #[error("account server unavailable: {0}")]
    Unavailable(String),
}

/// Where session keys come from (the account server, over the RPC link).
pub trait KeySource: Send + Sync + 'static {
    /// The key of session `sid` of `uid`, and the Unix time at which the session ends.
    fn fetch<'a>(&'a self, uid: &'a str, sid: &'a str) -> BoxFuture<'a, Result<(SessionKey, u64), KeyError>>;
}

/// A bounded cache of session keys in front of a [`KeySource`].
pub struct SessionKeys {
    source: Box<dyn KeySource>,
    cache: Mutex<HashMap<String, Cached>>,
    max_entries: usize,
}

struct Cached {
    uid: String,
    key: SessionKey,
    expires_at: u64,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys").field("max_entries", &self.max_entries).finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// A cache of at most `max_entries` sessions in front of `source`.
    pub fn new(source: impl KeySource, max_entries: usize) -> Self {
        Self { source: Box::new(source), cache: Mutex::new(HashMap::new()), max_entries: max_entries.max(1) }
    }

    /// The key of session `sid` of `uid` at Unix time `now`, or the error to send to the client.
    pub async fn get(&self, uid: &str, sid: &str, now: u64) -> Result<SessionKey, ProtocolError> {
        if let Some(key) = self.cached(uid, sid, now) {
            return Ok(key);
        }
        match self.source.fetch(uid, sid).await {
            Ok((key, expires_at)) => {
                self.insert(sid, uid, key.clone(), expires_at, now);
                Ok(key)
            }
            Err(KeyError::Unknown) => Err(ProtocolError::new(
                ErrorCode::SessionRevoked,
                "the account server does not know this session (logged out or expired); log in again",
            )),
            Err(KeyError::Unavailable(why)) => Err(ProtocolError::new(
                ErrorCode::Unavailable,
                format!("cannot get the session key from the account server ({why}); try again shortly"),
            )),
        }
    }

    /// Forgets session `sid` (logged out).
    pub fn forget(&self, sid: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(sid);
        }
    }

    fn cached(&self, uid: &str, sid: &str, now: u64) -> Option<SessionKey> {
        let cache = self.cache.lock().ok()?;
        cache.get(sid).filter(|c| c.uid == uid && c.expires_at > now).map(|c| c.key.clone())
    }

    fn insert(&self, sid: &str, uid: &str, key: SessionKey, expires_at: u64, now: u64) {
        let Ok(mut cache) = self.cache.lock() else { return };
        if cache.len() >= self.max_entries {
            cache.retain(|_, c| c.expires_at > now);
        }
        if cache.len() >= self.max_entries
            && let Some(first) = cache.keys().next().cloned()
        {
            cache.remove(&first);
        }
        cache.insert(sid.to_owned(), Cached { uid: uid.to_owned(), key, expires_at });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Fake {
        calls: Arc<AtomicUsize>,
    }

    impl KeySource for Fake {
        fn fetch<'a>(&'a self, uid: &'a str, sid: &'a str) -> BoxFuture<'a, Result<(SessionKey, u64), KeyError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            async move {
                match (uid, sid) {
                    ("u1", "s1") => Ok((SessionKey::from_bytes([7; 32]), 1000)),
                    ("down", _) => Err(KeyError::Unavailable("link down".into())),
                    _ => Err(KeyError::Unknown),
                }
            }
            .boxed()
        }
    }

    #[tokio::test]
    async fn keys_are_cached_until_expiry_or_logout() {
        let calls = Arc::new(AtomicUsize::new(0));
        let keys = SessionKeys::new(Fake { calls: calls.clone() }, 10);
        let k = keys.get("u1", "s1", 10).await.unwrap();
        assert_eq!(k.as_bytes(), &[7; 32]);
        keys.get("u1", "s1", 20).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the second get is served from the cache");
        assert!(keys.get("u2", "s1", 20).await.is_err(), "another player cannot use the cached session");
        keys.get("u1", "s1", 1000).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3, "expired entries are fetched again");
        keys.forget("s1");
        keys.get("u1", "s1", 30).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 4, "a forgotten session is fetched again");
    }

    #[tokio::test]
    async fn failures_become_client_errors() {
        let keys = SessionKeys::new(Fake { calls: Arc::default() }, 10);
        assert_eq!(keys.get("u9", "s9", 0).await.unwrap_err().code, ErrorCode::SessionRevoked);
        assert_eq!(keys.get("down", "s9", 0).await.unwrap_err().code, ErrorCode::Unavailable);
    }
}
