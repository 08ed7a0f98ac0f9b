//! Sessions revoked (logout) and players banned, as pushed by the account server, remembered for as long as a token
//! issued before them can still be valid — so a captured or still-cached token cannot reconnect.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use movan_protocol::{ErrorCode, ProtocolError};

/// [`Revocations`] shared by the engine, which records them, and the connections, which refuse a revoked token on the
/// first message, before any handshake. Written only on a logout or a ban; read once per authentication.
#[derive(Debug, Clone)]
pub struct SharedRevocations(Arc<RwLock<Revocations>>);

impl SharedRevocations {
    /// Wraps `revocations`.
    pub fn new(revocations: Revocations) -> Self {
        Self(Arc::new(RwLock::new(revocations)))
    }

    /// [`Revocations::check`].
    pub fn check(&self, uid: &str, sid: &str, iat: u64) -> Result<(), ProtocolError> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).check(uid, sid, iat)
    }

    /// [`Revocations::revoke_session`].
    pub fn revoke_session(&self, sid: &str, now: Instant) {
        self.0.write().unwrap_or_else(PoisonError::into_inner).revoke_session(sid, now);
    }

    /// [`Revocations::ban`].
    pub fn ban(&self, uid: &str, at_unix: u64, now: Instant) {
        self.0.write().unwrap_or_else(PoisonError::into_inner).ban(uid, at_unix, now);
    }
}

/// Revoked session ids and bans, bounded in time and in count.
#[derive(Debug)]
pub struct Revocations {
    /// sid → when it was revoked.
    sessions: HashMap<String, Instant>,
    /// uid → (Unix time of the ban, when it was recorded). Tokens issued in an earlier second are refused; `iat` has
    /// a resolution of one second, and a token issued in the second of the ban may be a new login after an unban.
    bans: HashMap<String, (u64, Instant)>,
    retention: Duration,
    max_entries: usize,
}

impl Revocations {
    /// Entries are kept for `retention` (the longest a token lives) and at most `max_entries` of each kind.
    pub fn new(retention: Duration, max_entries: usize) -> Self {
        Self { sessions: HashMap::new(), bans: HashMap::new(), retention, max_entries: max_entries.max(1) }
    }

    /// Refuses tokens of session `sid` from now on.
    pub fn revoke_session(&mut self, sid: &str, now: Instant) {
        self.prune(now);
        self.sessions.insert(sid.to_owned(), now);
    }

    /// Refuses tokens of `uid` issued before `at_unix` (seconds).
    pub fn ban(&mut self, uid: &str, at_unix: u64, now: Instant) {
        self.prune(now);
        self.bans.insert(uid.to_owned(), (at_unix, now));
    }

    /// Whether a token (`uid`, session `sid`, issued at `iat`) may still be used.
    pub fn check(&self, uid: &str, sid: &str, iat: u64) -> Result<(), ProtocolError> {
        if self.sessions.contains_key(sid) {
            return Err(ProtocolError::new(ErrorCode::SessionRevoked, "this session was logged out; log in again"));
        }
        if self.bans.get(uid).is_some_and(|(at, _)| iat < *at) {
            return Err(ProtocolError::new(ErrorCode::Banned, "this player is banned"));
        }
        Ok(())
    }

    /// Drops expired entries, then the oldest ones beyond the count bound.
    fn prune(&mut self, now: Instant) {
        let retention = self.retention;
        let fresh = |t: Instant| now.saturating_duration_since(t) < retention;
        self.sessions.retain(|_, t| fresh(*t));
        self.bans.retain(|_, (_, t)| fresh(*t));
        while self.sessions.len() >= self.max_entries {
            let Some(oldest) = self.sessions.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone()) else { break };
            self.sessions.remove(&oldest);
        }
        while self.bans.len() >= self.max_entries {
            let Some(oldest) = self.bans.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| k.clone()) else { break };
            self.bans.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_sessions_and_bans_are_refused_until_they_expire() {
        let t0 = Instant::now();
        let mut r = Revocations::new(Duration::from_secs(60), 100);
        assert!(r.check("u1", "s1", 10).is_ok());
        r.revoke_session("s1", t0);
        assert_eq!(r.check("u1", "s1", 10).unwrap_err().code, ErrorCode::SessionRevoked);
        assert!(r.check("u1", "s2", 10).is_ok());
        r.ban("u2", 100, t0);
        assert_eq!(r.check("u2", "s9", 99).unwrap_err().code, ErrorCode::Banned);
        assert!(r.check("u2", "s9", 100).is_ok(), "a token of the ban's second may be a login after an unban");
        // Past the retention, entries go with the next change.
        r.revoke_session("s3", t0 + Duration::from_secs(61));
        assert!(r.check("u1", "s1", 10).is_ok());
        assert!(r.check("u2", "s9", 99).is_ok());
    }

    #[test]
    fn entries_are_bounded_in_count() {
        let t0 = Instant::now();
        let mut r = Revocations::new(Duration::from_secs(60), 3);
        for i in 0..10u64 {
            r.revoke_session(&format!("s{i}"), t0 + Duration::from_millis(i));
        }
        assert!(r.sessions.len() <= 3);
        assert!(r.check("u", "s9", 0).is_err(), "the newest entry is kept");
        assert!(r.check("u", "s0", 0).is_ok(), "the oldest went first");
    }
}
