//! The config sections both services read from the shared `config/config.toml`: `[token]` and `[rpc]`.
//!
//! One definition, with one set of defaults and one set of range checks, so the account server and the sync server
//! cannot disagree about a key. Loading the file is [`crate::config`]'s job (feature `config`); these types only need
//! serde, so `movan-rpc` can turn an [`RpcSection`] into its settings.

use std::path::PathBuf;

use serde::Deserialize;

/// A key of a section whose value is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct InvalidKey {
    /// Dotted key path, e.g. `rpc.heartbeat_misses`.
    pub key: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The `[token]` section: how access tokens are signed (account server) and verified (sync server), and how long
/// tokens live.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSection {
    /// `iss` claim written by the account server and required by the sync server.
    pub issuer: String,
    /// `aud` claim written by the account server and required by the sync server.
    pub audience: String,
    /// Ed25519 private key, PKCS#8 PEM; the account server creates it with the public key if missing.
    pub private_key_path: PathBuf,
    /// Ed25519 public key, SPKI PEM; the sync server reads only this file.
    pub public_key_path: PathBuf,
    /// Lifetime of an access token, seconds; also how long the sync server remembers revocations.
    pub access_ttl_secs: u64,
    /// Lifetime of a refresh token, seconds.
    pub refresh_ttl_secs: u64,
}

impl Default for TokenSection {
    fn default() -> Self {
        Self {
            issuer: "movan-account".into(),
            audience: "movan-sync".into(),
            private_key_path: PathBuf::from("data/jwt_ed25519.pem"),
            public_key_path: PathBuf::from("data/jwt_ed25519.pub.pem"),
            access_ttl_secs: 3600,
            refresh_ttl_secs: 30 * 24 * 3600,
        }
    }
}

impl TokenSection {
    /// The first key out of range, if any.
    pub fn validate(&self) -> Result<(), InvalidKey> {
        const YEAR: u64 = 365 * 24 * 3600;
        let checks: [(&str, bool, &str); 6] = [
            ("token.issuer", !self.issuer.is_empty(), "must not be empty"),
            ("token.audience", !self.audience.is_empty(), "must not be empty"),
            ("token.private_key_path", !self.private_key_path.as_os_str().is_empty(), "must not be empty"),
            (
                "token.public_key_path",
                !self.public_key_path.as_os_str().is_empty() && self.public_key_path != self.private_key_path,
                "must not be empty and must differ from token.private_key_path",
            ),
            ("token.access_ttl_secs", (1..=YEAR).contains(&self.access_ttl_secs), "must be 1 to 31536000 (one year)"),
            (
                "token.refresh_ttl_secs",
                (1..=10 * YEAR).contains(&self.refresh_ttl_secs),
                "must be 1 to 315360000 (ten years)",
            ),
        ];
        first_violation(checks)
    }
}

/// The `[rpc]` section: the link between the account server and the sync servers. Both ends read it, so they agree
/// on the secret and the timings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcSection {
    /// Shared secret (32 random bytes, base64); the account server creates it (mode 0600) if missing, the sync
    /// servers only read it.
    pub secret_path: PathBuf,
    /// Milliseconds between heartbeats, both ways.
    pub heartbeat_interval_ms: u64,
    /// Heartbeat intervals without a word from the peer before its connection is closed.
    pub heartbeat_misses: u32,
    /// Milliseconds a call waits for its answer.
    pub call_timeout_ms: u64,
    /// Largest RPC frame body, bytes.
    pub max_frame_bytes: usize,
    /// Calls a connection may have unanswered at once, each way.
    pub max_in_flight: usize,
}

impl Default for RpcSection {
    fn default() -> Self {
        Self {
            secret_path: PathBuf::from("data/rpc_secret"),
            heartbeat_interval_ms: 1000,
            heartbeat_misses: 3,
            call_timeout_ms: 5000,
            max_frame_bytes: 1 << 20,
            max_in_flight: 256,
        }
    }
}

impl RpcSection {
    /// The first key out of range, if any.
    pub fn validate(&self) -> Result<(), InvalidKey> {
        let checks: [(&str, bool, &str); 6] = [
            ("rpc.secret_path", !self.secret_path.as_os_str().is_empty(), "must not be empty"),
            ("rpc.heartbeat_interval_ms", (10..=60_000).contains(&self.heartbeat_interval_ms), "must be 10 to 60000"),
            ("rpc.heartbeat_misses", (1..=100).contains(&self.heartbeat_misses), "must be 1 to 100"),
            ("rpc.call_timeout_ms", (10..=600_000).contains(&self.call_timeout_ms), "must be 10 to 600000"),
            (
                "rpc.max_frame_bytes",
                (1024..=64 * 1024 * 1024).contains(&self.max_frame_bytes),
                "must be 1024 to 67108864 (64 MiB)",
            ),
            ("rpc.max_in_flight", (1..=65_536).contains(&self.max_in_flight), "must be 1 to 65536"),
        ];
        first_violation(checks)
    }

    /// `heartbeat_interval_ms` as a duration.
    pub fn heartbeat_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.heartbeat_interval_ms)
    }

    /// `call_timeout_ms` as a duration.
    pub fn call_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.call_timeout_ms)
    }
}

fn first_violation<const N: usize>(checks: [(&'static str, bool, &'static str); N]) -> Result<(), InvalidKey> {
    match checks.into_iter().find(|(_, ok, _)| !ok) {
        Some((key, _, reason)) => Err(InvalidKey { key, reason }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(TokenSection::default().validate(), Ok(()));
        assert_eq!(RpcSection::default().validate(), Ok(()));
        assert_eq!(RpcSection::default().heartbeat_interval(), std::time::Duration::from_secs(1));
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        let key = |r: Result<(), InvalidKey>| r.map_err(|e| e.key);
        let token = TokenSection::default();
        assert_eq!(key(TokenSection { issuer: String::new(), ..token.clone() }.validate()), Err("token.issuer"));
        assert_eq!(key(TokenSection { audience: String::new(), ..token.clone() }.validate()), Err("token.audience"));
        let same = TokenSection { public_key_path: token.private_key_path.clone(), ..token.clone() };
        assert_eq!(key(same.validate()), Err("token.public_key_path"));
        assert_eq!(key(TokenSection { access_ttl_secs: 0, ..token }.validate()), Err("token.access_ttl_secs"));
        let rpc = RpcSection::default();
        assert_eq!(key(RpcSection { secret_path: PathBuf::new(), ..rpc.clone() }.validate()), Err("rpc.secret_path"));
        let fast = RpcSection { heartbeat_interval_ms: 0, ..rpc.clone() };
        assert_eq!(key(fast.validate()), Err("rpc.heartbeat_interval_ms"));
        assert_eq!(key(RpcSection { call_timeout_ms: 5, ..rpc.clone() }.validate()), Err("rpc.call_timeout_ms"));
        assert_eq!(key(RpcSection { max_frame_bytes: 10, ..rpc.clone() }.validate()), Err("rpc.max_frame_bytes"));
        assert_eq!(key(RpcSection { max_in_flight: 0, ..rpc }.validate()), Err("rpc.max_in_flight"));
    }
}
