//! Settings shared by both ends of a link.

use std::time::Duration;

use crate::handshake::MAX_NODE_ID_LEN;

/// Smallest accepted `max_frame_bytes`: the handshake messages must fit.
pub(crate) const MIN_FRAME_BYTES: usize = 1024;

/// Settings of an [`RpcServer`](crate::RpcServer) or [`RpcClient`](crate::RpcClient). Both ends need the same
/// `secret`; the other fields may differ per node.
#[derive(Clone)]
pub struct RpcConfig {
    /// Shared secret proving membership of the cluster. Never sent; must not be empty.
    pub secret: String,
    /// This node's name, sent in the handshake (the peer sees it as [`Peer::node_id`](crate::Peer::node_id)).
    pub node_id: String,
    /// Largest frame body accepted or sent, in bytes. Default 1 MiB.
    pub max_frame_bytes: usize,
    /// Time between heartbeat pings. Default 1 s.
    pub heartbeat_interval: Duration,
    /// A peer silent for this many intervals is declared dead and disconnected. Default 3.
    pub heartbeat_misses: u32,
    /// Timeout of [`Peer::call`](crate::Peer::call). Default 5 s.
    pub call_timeout: Duration,
    /// Calls in flight per connection and direction: incoming calls over it are answered `overloaded` at once,
    /// and our own calls over it fail with `overloaded` locally. Default 256.
    pub max_in_flight: usize,
    /// Outgoing messages queued per connection; a full queue means the peer is not reading and the connection is
    /// closed. Default 1024.
    pub send_queue: usize,
    /// Time allowed for connecting and authenticating. Default 5 s.
    pub handshake_timeout: Duration,
    /// First reconnect delay of a client. Default 100 ms.
    pub backoff_initial: Duration,
    /// Largest reconnect delay of a client. Default 5 s.
    pub backoff_max: Duration,
}

/// An [`RpcConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `secret` is empty: peers could not authenticate each other.
    #[error("rpc secret is empty: set the same non-empty shared secret on every node")]
    EmptySecret,
    /// A field is out of range.
    #[error("rpc config `{field}` {reason}")]
    Invalid {
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            secret: String::new(),
            node_id: String::new(),
            max_frame_bytes: 1024 * 1024,
            heartbeat_interval: Duration::from_secs(1),
            heartbeat_misses: 3,
            call_timeout: Duration::from_secs(5),
            max_in_flight: 256,
            send_queue: 1024,
            handshake_timeout: Duration::from_secs(5),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for RpcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcConfig")
            .field("secret", &"<redacted>")
            .field("node_id", &self.node_id)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("heartbeat_misses", &self.heartbeat_misses)
            .field("call_timeout", &self.call_timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("send_queue", &self.send_queue)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .finish()
    }
}

impl RpcConfig {
    /// The defaults with `secret` and `node_id` set.
    pub fn new(secret: impl Into<String>, node_id: impl Into<String>) -> Self {
        Self { secret: secret.into(), node_id: node_id.into(), ..Self::default() }
    }

    /// The settings of the shared `[rpc]` config section for node `node_id` with the shared `secret`; the fields the
    /// section has no key for keep their defaults.
    pub fn from_section(
        section: &movan_protocol::sections::RpcSection,
        secret: impl Into<String>,
        node_id: impl Into<String>,
    ) -> Self {
        Self {
            max_frame_bytes: section.max_frame_bytes,
            heartbeat_interval: section.heartbeat_interval(),
            heartbeat_misses: section.heartbeat_misses,
            call_timeout: section.call_timeout(),
            max_in_flight: section.max_in_flight,
            ..Self::new(secret, node_id)
        }
    }

    /// Checks every field; the server and client constructors call this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason| Err(ConfigError::Invalid { field, reason });
        if self.secret.is_empty() {
            return Err(ConfigError::EmptySecret);
        }
        if self.node_id.len() > MAX_NODE_ID_LEN {
            return invalid("node_id", "is longer than 256 bytes");
        }
        if self.max_frame_bytes < MIN_FRAME_BYTES {
            return invalid("max_frame_bytes", "must be at least 1024");
        }
        if self.max_frame_bytes > u32::MAX as usize {
            return invalid("max_frame_bytes", "must fit the 4-byte length prefix");
        }
        let durations = [
            ("heartbeat_interval", self.heartbeat_interval),
            ("call_timeout", self.call_timeout),
            ("handshake_timeout", self.handshake_timeout),
            ("backoff_initial", self.backoff_initial),
        ];
        for (field, value) in durations {
            if value.is_zero() {
                return invalid(field, "must be positive");
            }
        }
        if self.backoff_max < self.backoff_initial {
            return invalid("backoff_max", "must be at least backoff_initial");
        }
        let counts = [
            ("heartbeat_misses", self.heartbeat_misses as usize),
            ("max_in_flight", self.max_in_flight),
            ("send_queue", self.send_queue),
        ];
        for (field, value) in counts {
            if value == 0 {
                return invalid(field, "must be at least 1");
            }
        }
        Ok(())
    }

    /// How long a peer may stay silent before it is declared dead.
    pub fn dead_after(&self) -> Duration {
        self.heartbeat_interval.saturating_mul(self.heartbeat_misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_only_a_secret() {
        assert_eq!(RpcConfig::default().validate(), Err(ConfigError::EmptySecret));
        assert_eq!(RpcConfig::new("s", "node").validate(), Ok(()));
        let config = RpcConfig::default();
        assert_eq!(config.max_frame_bytes, 1 << 20);
        assert_eq!(config.dead_after(), Duration::from_secs(3));
    }

    #[test]
    fn bad_values_name_their_field() {
        let field_of = |config: RpcConfig| match config.validate() {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        };
        let base = RpcConfig::new("s", "n");
        assert_eq!(field_of(RpcConfig { max_in_flight: 0, ..base.clone() }), "max_in_flight");
        assert_eq!(field_of(RpcConfig { heartbeat_interval: Duration::ZERO, ..base.clone() }), "heartbeat_interval");
        assert_eq!(field_of(RpcConfig { max_frame_bytes: 10, ..base.clone() }), "max_frame_bytes");
        assert_eq!(field_of(RpcConfig { backoff_max: Duration::ZERO, ..base.clone() }), "backoff_max");
        assert_eq!(field_of(RpcConfig { node_id: "x".repeat(300), ..base }), "node_id");
    }

    #[test]
    fn the_shared_section_gives_its_timings_and_default_limits() {
        let section = movan_protocol::sections::RpcSection {
            heartbeat_interval_ms: 200,
            call_timeout_ms: 700,
            max_in_flight: 9,
            ..Default::default()
        };
        let config = RpcConfig::from_section(&section, "s", "sync-1");
        assert_eq!((config.secret.as_str(), config.node_id.as_str()), ("s", "sync-1"));
        assert_eq!(config.heartbeat_interval, Duration::from_millis(200));
        assert_eq!(config.call_timeout, Duration::from_millis(700));
        assert_eq!((config.max_in_flight, config.heartbeat_misses), (9, 3));
        assert_eq!(config.send_queue, RpcConfig::default().send_queue);
        assert_eq!(RpcConfig::from_section(&Default::default(), "s", "n").validate(), Ok(()));
    }

    #[test]
    fn debug_hides_the_secret() {
        let text = format!("{:?}", RpcConfig::new("hunter2", "n"));
        assert!(!text.contains("hunter2"));
    }
}
