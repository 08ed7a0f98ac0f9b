//! The `[sync]` section of `config/config.toml` and the shared `[token]` and `[rpc]` sections, validated at start.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use movan_protocol::config::{ConfigError, ConfigFile};
use movan_protocol::udp::KcpTuning;
use serde::Deserialize;

use crate::connection::ConnectionConfig;
use crate::engine::EngineConfig;
use crate::udp::UdpConfig;

/// The `[sync]` section. Every field has a default; see `config/config.toml` for what each does.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// TCP listen address for game clients.
    pub listen_addr: SocketAddr,
    /// WebSocket listen address for browser clients (path `/ws`); empty = no WebSocket listener.
    pub ws_addr: String,
    /// Address of the WebSocket listener handed to clients at login (`ws://host:port/ws`); empty = derived from
    /// `public_addr`'s host (or the bound address) and the bound WebSocket port.
    pub public_ws_url: String,
    /// HTTP listen address for probes (`/healthz`, `/readyz`); empty = off.
    pub metrics_addr: String,
    /// Milliseconds between frames.
    pub tick_interval_ms: u64,
    /// Rooms running at once.
    pub max_rooms: usize,
    /// Percent of `max_rooms` kept for quick match: named rooms stop at the rest.
    pub quick_match_reserved_percent: u8,
    /// Waiting rooms one account may have created at once; 0 = no limit.
    pub max_rooms_per_account: usize,
    /// Seconds a room may wait for its game after its creation or its last new ready flag; 0 = forever.
    pub waiting_room_timeout_secs: u64,
    /// Quick match skips a room where nobody is ready this many seconds after its creation; 0 = never.
    pub quick_match_stale_secs: u64,
    /// Seats per room.
    pub max_players: u32,
    /// Players needed before a game starts.
    pub min_players: u32,
    /// Largest accepted client frame body, bytes.
    pub max_frame_bytes: usize,
    /// Frames kept for reload, in seconds of play.
    pub history_secs: u64,
    /// Bytes of frames kept for reload per game.
    pub history_max_bytes: usize,
    /// Frames per `reload_frames` message.
    pub reload_chunk_frames: usize,
    /// Bytes of frames per `reload_frames` message.
    pub reload_chunk_bytes: usize,
    /// Messages queued per connection before it is dropped as too slow.
    pub send_queue_len: usize,
    /// Bytes of `reload_frames` per second and connection, at most (one second's worth may go at once); 0 =
    /// unlimited.
    pub reload_bytes_per_sec: u64,
    /// Bytes of messages queued per connection before it is dropped as too slow (a single larger message still goes).
    pub send_queue_bytes: usize,
    /// Listen backlog of the TCP and WebSocket listeners (capped by the kernel's `net.core.somaxconn`).
    pub listen_backlog: u32,
    /// Actions a room holds for its next frame.
    pub max_pending_actions: usize,
    /// Actions one player may have waiting for the next frame.
    pub max_actions_per_player: usize,
    /// Bytes of actions a room holds for its next frame.
    pub max_pending_bytes: usize,
    /// Longest game in seconds; 0 = no limit.
    pub max_game_secs: u64,
    /// Clients send `sync_checksum` every this many frames (told in `game_start`); 0 = no desync detection.
    pub checksum_interval: u64,
    /// Seconds after a frame's first checksum by which the others must have come; then the server compares those
    /// it has.
    pub checksum_timeout_secs: u64,
    /// Spectators per room (`room_spectate`); 0 = no spectating.
    pub max_spectators: usize,
    /// Frames spectators lag behind the players (against ghosting); 0 = live.
    pub spectator_delay_frames: u64,
    /// Bytes one game's replay holds at most (compressed); a longer game's replay is truncated. 0 = no replays.
    pub replay_max_bytes: usize,
    /// Bytes the replays of all running games hold together at most.
    pub replay_memory_bytes: usize,
    /// Bytes of finished replays kept while the account server is away or slow; the oldest go first.
    pub replay_backlog_bytes: usize,
    /// This node's unique name towards the account server.
    pub node_id: String,
    /// Address handed to clients at login; empty = the address the listener is bound to.
    pub public_addr: String,
    /// The account server's RPC address.
    pub account_rpc_addr: String,
    /// Several account servers' RPC addresses (sharing one database): this node registers with each. Set this or
    /// `account_rpc_addr`, not both.
    pub account_rpc_addrs: Vec<String>,
    /// Players this node accepts; the account server sends no more once it is reached.
    pub capacity: usize,
    /// Whether client connections are sealed with ChaCha20-Poly1305.
    pub encryption: Encryption,
    /// Seconds a disconnected player keeps its seat waiting to reconnect; 0 = leave at once.
    pub reconnect_grace_secs: u64,
    /// Seconds a new connection has to authenticate (first message, and with encryption its first sealed frame).
    pub first_frame_timeout_secs: u64,
    /// Seconds without any message from a client before it is disconnected; 0 = never.
    pub idle_timeout_secs: u64,
    /// Sustained messages per second per connection (token bucket refill); 0 = unlimited.
    pub max_messages_per_sec: u32,
    /// Messages a connection may send at once above the sustained rate (token bucket size).
    pub message_burst: u32,
    /// Client connections at once, authenticated or not.
    pub max_connections: usize,
    /// Connections at once that have not authenticated yet (at most `max_connections`); one more sheds the oldest.
    pub max_unauthenticated: usize,
    /// Seconds to authenticate for a connection opened while half of `max_unauthenticated` or more are in use.
    pub pressure_first_frame_timeout_secs: u64,
    /// Client connections at once from one IP address; 0 = no per-address limit.
    pub max_connections_per_ip: usize,
    /// Client connections at once from one network (`prefix_v4_bits` / `prefix_v6_bits`); 0 = no such limit.
    pub max_connections_per_prefix: usize,
    /// Prefix length of an IPv4 network for `max_connections_per_prefix`.
    pub prefix_v4_bits: u8,
    /// Prefix length of an IPv6 network for `max_connections_per_prefix`.
    pub prefix_v6_bits: u8,
    /// UDP (KCP) listen address for game clients; empty = no UDP listener.
    pub udp_addr: String,
    /// UDP address handed to clients at login; empty = `public_addr`'s host (or the bound address) and the bound
    /// UDP port.
    pub public_udp_addr: String,
    /// UDP sessions at once (they also count against `max_connections`).
    pub udp_max_sessions: usize,
    /// UDP sessions at once whose connection is not yet authenticated.
    pub udp_max_pending: usize,
    /// Length of a cookie's time slot, seconds; a cookie is good for one to two slots.
    pub udp_cookie_secs: u64,
    /// Seconds without any datagram from a UDP client before its session ends.
    pub udp_idle_timeout_secs: u64,
    /// KCP segments waiting to be sent or acknowledged before a UDP session is dropped as too slow.
    pub udp_send_queue_segments: usize,
    /// Bytes per datagram, KCP's 24-byte header included.
    pub udp_mtu: usize,
    /// Milliseconds between KCP updates (the longest a due retransmission waits).
    pub udp_kcp_interval_ms: u32,
    /// KCP nodelay mode (30 ms minimum RTO, backoff x1.5 instead of x2).
    pub udp_kcp_nodelay: bool,
    /// Resend a segment after this many later segments were acknowledged; 0 = off.
    pub udp_kcp_fast_resend: u32,
    /// Turn off KCP's congestion window.
    pub udp_kcp_no_congestion_window: bool,
    /// Lowest retransmission timeout, milliseconds.
    pub udp_kcp_min_rto_ms: u32,
    /// KCP send window, segments.
    pub udp_kcp_send_window: u16,
    /// KCP receive window, segments (at least 128).
    pub udp_kcp_recv_window: u16,
    /// Transmissions of one segment without an acknowledgement after which the session ends.
    pub udp_kcp_dead_link: u32,
}

/// `sync.encryption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    /// Every frame after the handshake is sealed (the default).
    Required,
    /// Plaintext, for local debugging only.
    Off,
}

impl Default for SyncConfig {
    fn default() -> Self {
        let kcp = KcpTuning::default();
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 2025)),
            ws_addr: "127.0.0.1:2028".into(),
            public_ws_url: String::new(),
            metrics_addr: "127.0.0.1:2030".into(),
            tick_interval_ms: 50,
            max_rooms: 1000,
            quick_match_reserved_percent: 10,
            max_rooms_per_account: 2,
            waiting_room_timeout_secs: 300,
            checksum_interval: 60,
            checksum_timeout_secs: 5,
            max_spectators: 100,
            spectator_delay_frames: 0,
            replay_max_bytes: 16 * 1024 * 1024,
            replay_memory_bytes: 512 * 1024 * 1024,
            replay_backlog_bytes: 256 * 1024 * 1024,
            quick_match_stale_secs: 30,
            max_players: 4,
            min_players: 2,
            max_frame_bytes: movan_protocol::codec::DEFAULT_MAX_FRAME,
            history_secs: 1200,
            history_max_bytes: 8 * 1024 * 1024,
            reload_chunk_frames: 256,
            reload_chunk_bytes: 1024 * 1024,
            send_queue_len: 512,
            listen_backlog: 1024,
            send_queue_bytes: 4 * 1024 * 1024,
            reload_bytes_per_sec: 4 * 1024 * 1024,
            max_pending_actions: 1024,
            max_actions_per_player: 16,
            max_pending_bytes: 256 * 1024,
            max_game_secs: 7200,
            node_id: "sync-1".into(),
            public_addr: String::new(),
            account_rpc_addr: "127.0.0.1:2027".into(),
            account_rpc_addrs: Vec::new(),
            capacity: 4000,
            encryption: Encryption::Required,
            reconnect_grace_secs: 30,
            first_frame_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_messages_per_sec: 100,
            message_burst: 200,
            max_connections: 10_000,
            max_unauthenticated: 1000,
            pressure_first_frame_timeout_secs: 2,
            max_connections_per_ip: 128,
            max_connections_per_prefix: 512,
            prefix_v4_bits: 24,
            prefix_v6_bits: 64,
            udp_addr: "127.0.0.1:2029".into(),
            public_udp_addr: String::new(),
            udp_max_sessions: 10_000,
            udp_max_pending: 1_000,
            udp_cookie_secs: 10,
            udp_idle_timeout_secs: 30,
            udp_send_queue_segments: 4096,
            udp_mtu: kcp.mtu,
            udp_kcp_interval_ms: kcp.interval_ms,
            udp_kcp_nodelay: kcp.nodelay,
            udp_kcp_fast_resend: kcp.fast_resend,
            udp_kcp_no_congestion_window: kcp.no_congestion_window,
            udp_kcp_min_rto_ms: kcp.min_rto_ms,
            udp_kcp_send_window: kcp.send_window,
            udp_kcp_recv_window: kcp.recv_window,
            udp_kcp_dead_link: kcp.dead_link,
        }
    }
}

pub use movan_protocol::sections::{RpcSection, TokenSection};

/// The movan-rpc settings of `[rpc]` for node `node_id`, reading the shared secret from `rpc.secret_path`.
pub fn rpc_config(rpc: &RpcSection, node_id: &str) -> Result<movan_rpc::RpcConfig, String> {
    let secret = std::fs::read_to_string(&rpc.secret_path).map_err(|e| {
        format!(
            "cannot read the rpc secret {}: {e} (start the account server once, or run `account-server keygen`, to \
             create it)",
            rpc.secret_path.display()
        )
    })?;
    Ok(movan_rpc::RpcConfig::from_section(rpc, secret.trim(), node_id))
}

/// Everything the sync server reads from the config file.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `[sync]`.
    pub sync: SyncConfig,
    /// `[token]` (the sync server uses the issuer, audience, public key and access token lifetime).
    pub token: TokenSection,
    /// `[rpc]`.
    pub rpc: RpcSection,
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = ConfigFile::read(path)?;
        Self::from_file(&file)
    }

    /// Takes and validates the sections of an already parsed file.
    pub fn from_file(file: &ConfigFile) -> Result<Self, ConfigError> {
        file.check_sections(movan_protocol::config::SECTIONS)?;
        let sync: SyncConfig = file.section("sync")?;
        let token: TokenSection = file.section("token")?;
        let rpc: RpcSection = file.section("rpc")?;
        for shared in [token.validate(), rpc.validate()] {
            shared.map_err(|e| file.invalid(e.key, e.reason))?;
        }
        let checks: [(&str, bool, &str); 16] = [
            ("sync.tick_interval_ms", (1..=10_000).contains(&sync.tick_interval_ms), "must be 1 to 10000"),
            ("sync.max_rooms", sync.max_rooms >= 1, "must be at least 1"),
            ("sync.max_players", (1..=1024).contains(&sync.max_players), "must be 1 to 1024"),
            (
                "sync.min_players",
                sync.min_players >= 1 && sync.min_players <= sync.max_players,
                "must be at least 1 and at most sync.max_players",
            ),
            (
                "sync.max_frame_bytes",
                (256..=16 * 1024 * 1024).contains(&sync.max_frame_bytes),
                "must be 256 to 16777216",
            ),
            ("sync.history_secs", sync.history_secs >= 1, "must be at least 1"),
            (
                "sync.history_max_bytes",
                (64 * 1024..=1 << 30).contains(&sync.history_max_bytes),
                "must be 65536 to 1073741824",
            ),
            ("sync.reload_chunk_frames", (1..=10_000).contains(&sync.reload_chunk_frames), "must be 1 to 10000"),
            ("sync.send_queue_len", sync.send_queue_len >= 8, "must be at least 8"),
            ("sync.listen_backlog", (1..=65_535).contains(&sync.listen_backlog), "must be 1 to 65535"),
            ("sync.send_queue_bytes", sync.send_queue_bytes >= 65_536, "must be at least 65536"),
            (
                "sync.reload_bytes_per_sec",
                sync.reload_bytes_per_sec == 0 || sync.reload_bytes_per_sec >= sync.reload_chunk_bytes as u64,
                "must be 0 (unlimited) or at least sync.reload_chunk_bytes",
            ),
            ("sync.max_pending_actions", sync.max_pending_actions >= 1, "must be at least 1"),
            ("sync.max_actions_per_player", sync.max_actions_per_player >= 1, "must be at least 1"),
            ("sync.max_pending_bytes", (1024..=8 << 20).contains(&sync.max_pending_bytes), "must be 1024 to 8388608"),
            ("sync.reload_chunk_bytes", (1024..=8 << 20).contains(&sync.reload_chunk_bytes), "must be 1024 to 8388608"),
        ];
        for (key, ok, why) in checks {
            if !ok {
                return Err(file.invalid(key, why));
            }
        }
        if !sync.ws_addr.is_empty() && sync.ws_addr.parse::<SocketAddr>().is_err() {
            return Err(file.invalid("sync.ws_addr", "must be an address like \"127.0.0.1:2028\", or empty"));
        }
        if !sync.metrics_addr.is_empty() && sync.metrics_addr.parse::<SocketAddr>().is_err() {
            return Err(file.invalid("sync.metrics_addr", "must be an address like \"127.0.0.1:2030\", or empty"));
        }
        let limit_checks: [(&str, bool, &str); 20] = [
            ("sync.max_unauthenticated", sync.max_unauthenticated >= 1, "must be at least 1"),
            (
                "sync.pressure_first_frame_timeout_secs",
                (1..=300).contains(&sync.pressure_first_frame_timeout_secs),
                "must be 1 to 300 (a value over sync.first_frame_timeout_secs has no effect)",
            ),
            ("sync.quick_match_reserved_percent", sync.quick_match_reserved_percent <= 90, "must be 0 to 90"),
            ("sync.waiting_room_timeout_secs", sync.waiting_room_timeout_secs <= 86_400, "must be 0 to 86400"),
            ("sync.checksum_interval", sync.checksum_interval <= 1_000_000, "must be 0 to 1000000"),
            ("sync.checksum_timeout_secs", (1..=3600).contains(&sync.checksum_timeout_secs), "must be 1 to 3600"),
            ("sync.max_spectators", sync.max_spectators <= 100_000, "must be 0 to 100000"),
            ("sync.spectator_delay_frames", sync.spectator_delay_frames <= 72_000, "must be 0 to 72000"),
            (
                "sync.replay_max_bytes",
                sync.replay_max_bytes == 0 || (4096..=1 << 30).contains(&sync.replay_max_bytes),
                "must be 0 (no replays) or 4096 to 1073741824",
            ),
            (
                "sync.replay_memory_bytes",
                sync.replay_max_bytes == 0 || sync.replay_memory_bytes >= sync.replay_max_bytes,
                "must be at least sync.replay_max_bytes",
            ),
            (
                "sync.replay_backlog_bytes",
                sync.replay_max_bytes == 0 || sync.replay_backlog_bytes >= sync.replay_max_bytes,
                "must be at least sync.replay_max_bytes",
            ),
            ("sync.quick_match_stale_secs", sync.quick_match_stale_secs <= 3600, "must be 0 to 3600"),
            ("sync.reconnect_grace_secs", sync.reconnect_grace_secs <= 3600, "must be 0 to 3600"),
            ("sync.first_frame_timeout_secs", (1..=300).contains(&sync.first_frame_timeout_secs), "must be 1 to 300"),
            ("sync.idle_timeout_secs", sync.idle_timeout_secs <= 3600, "must be 0 to 3600"),
            (
                "sync.message_burst",
                sync.max_messages_per_sec == 0 || sync.message_burst >= 1,
                "must be at least 1 when sync.max_messages_per_sec is set",
            ),
            ("sync.max_connections", sync.max_connections >= 1, "must be at least 1"),
            (
                "sync.max_connections_per_ip",
                sync.max_connections_per_ip <= sync.max_connections,
                "must be at most sync.max_connections (0 = no per-address limit)",
            ),
            ("sync.prefix_v4_bits", (1..=32).contains(&sync.prefix_v4_bits), "must be 1 to 32"),
            ("sync.prefix_v6_bits", (1..=128).contains(&sync.prefix_v6_bits), "must be 1 to 128"),
        ];
        for (key, ok, why) in limit_checks {
            if !ok {
                return Err(file.invalid(key, why));
            }
        }
        if sync.node_id.is_empty() || sync.node_id.len() > 64 {
            return Err(file.invalid("sync.node_id", "must be 1 to 64 characters"));
        }
        check_udp(file, &sync)?;
        check_account_servers(file, &sync)?;
        Ok(Self { sync, token, rpc })
    }

    /// The UDP endpoint's settings derived from `sync.udp_*`.
    pub fn udp(&self) -> UdpConfig {
        let s = &self.sync;
        UdpConfig {
            kcp: KcpTuning {
                mtu: s.udp_mtu,
                interval_ms: s.udp_kcp_interval_ms,
                nodelay: s.udp_kcp_nodelay,
                fast_resend: s.udp_kcp_fast_resend,
                no_congestion_window: s.udp_kcp_no_congestion_window,
                min_rto_ms: s.udp_kcp_min_rto_ms,
                send_window: s.udp_kcp_send_window,
                recv_window: s.udp_kcp_recv_window,
                dead_link: s.udp_kcp_dead_link,
            },
            max_sessions: s.udp_max_sessions,
            max_pending: s.udp_max_pending,
            cookie_slot: Duration::from_secs(s.udp_cookie_secs),
            idle_timeout: Duration::from_secs(s.udp_idle_timeout_secs),
            send_queue_segments: s.udp_send_queue_segments,
        }
    }

    /// The sans-IO engine's settings derived from `[sync]`.
    pub fn engine(&self) -> EngineConfig {
        let s = &self.sync;
        let tick = Duration::from_millis(s.tick_interval_ms);
        EngineConfig {
            tick_interval: tick,
            max_rooms: s.max_rooms,
            quick_match_reserved_percent: s.quick_match_reserved_percent,
            max_rooms_per_account: s.max_rooms_per_account,
            checksum_interval: s.checksum_interval,
            checksum_timeout: Duration::from_secs(s.checksum_timeout_secs),
            max_spectators: s.max_spectators,
            spectator_delay_frames: s.spectator_delay_frames,
            replay_max_bytes: s.replay_max_bytes,
            replay_memory_bytes: s.replay_memory_bytes,
            waiting_room_timeout: (s.waiting_room_timeout_secs > 0)
                .then(|| Duration::from_secs(s.waiting_room_timeout_secs)),
            quick_match_stale: (s.quick_match_stale_secs > 0).then(|| Duration::from_secs(s.quick_match_stale_secs)),
            max_players: s.max_players,
            min_players: s.min_players,
            history_frames: ((s.history_secs * 1000).div_ceil(s.tick_interval_ms)).max(1) as usize,
            history_max_bytes: s.history_max_bytes,
            reload_chunk_frames: s.reload_chunk_frames,
            reload_chunk_bytes: s.reload_chunk_bytes,
            max_pending_actions: s.max_pending_actions,
            max_actions_per_player: s.max_actions_per_player,
            max_pending_bytes: s.max_pending_bytes,
            max_game_duration: (s.max_game_secs > 0).then(|| Duration::from_secs(s.max_game_secs)),
            revocation_retention: Duration::from_secs(self.token.access_ttl_secs + 60),
            reconnect_grace: Duration::from_secs(s.reconnect_grace_secs),
        }
    }

    /// The sans-IO connection rules derived from `[sync]`.
    pub fn connection(&self) -> ConnectionConfig {
        let s = &self.sync;
        ConnectionConfig {
            encryption: s.encryption == Encryption::Required,
            first_frame_timeout: Duration::from_secs(s.first_frame_timeout_secs),
            idle_timeout: (s.idle_timeout_secs > 0).then(|| Duration::from_secs(s.idle_timeout_secs)),
            max_messages_per_sec: s.max_messages_per_sec,
            message_burst: s.message_burst,
            max_frame_bytes: s.max_frame_bytes,
        }
    }
}

/// The `sync.udp_*` keys.
/// `sync.account_rpc_addrs` or `sync.account_rpc_addr`: `host:port` each, not both, no address twice.
fn check_account_servers(file: &ConfigFile, s: &SyncConfig) -> Result<(), ConfigError> {
    let host_port = |a: &str| a.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
    if !s.account_rpc_addrs.is_empty() && !s.account_rpc_addr.is_empty() {
        return Err(file.invalid(
            "sync.account_rpc_addrs",
            "set either account_rpc_addrs (a list) or account_rpc_addr (one address), not both: set account_rpc_addr = \"\"",
        ));
    }
    if let Some(bad) = s.account_rpc_addrs.iter().find(|a| !host_port(a)) {
        return Err(file.invalid("sync.account_rpc_addrs", format!("{bad:?} is not host:port")));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(twice) = s.account_rpc_addrs.iter().find(|a| !seen.insert(a.as_str())) {
        return Err(file.invalid("sync.account_rpc_addrs", format!("{twice:?} is listed twice")));
    }
    if !s.account_rpc_addr.is_empty() && !host_port(&s.account_rpc_addr) {
        return Err(file.invalid("sync.account_rpc_addr", "must be host:port, or empty"));
    }
    Ok(())
}

impl SyncConfig {
    /// The account servers to link to: `account_rpc_addrs`, or the one `account_rpc_addr`; empty = none.
    pub fn account_servers(&self) -> Vec<String> {
        if self.account_rpc_addrs.is_empty() && !self.account_rpc_addr.is_empty() {
            vec![self.account_rpc_addr.clone()]
        } else {
            self.account_rpc_addrs.clone()
        }
    }
}

fn check_udp(file: &ConfigFile, s: &SyncConfig) -> Result<(), ConfigError> {
    if !s.udp_addr.is_empty() && s.udp_addr.parse::<SocketAddr>().is_err() {
        return Err(file.invalid("sync.udp_addr", "must be an address like \"127.0.0.1:2029\", or empty"));
    }
    if !s.public_udp_addr.is_empty() && !s.public_udp_addr.contains(':') {
        return Err(file.invalid("sync.public_udp_addr", "must be host:port, or empty"));
    }
    let checks: [(&str, bool, &str); 10] = [
        ("sync.udp_max_sessions", s.udp_max_sessions >= 1, "must be at least 1"),
        ("sync.udp_max_pending", s.udp_max_pending >= 1, "must be at least 1"),
        ("sync.udp_cookie_secs", (1..=300).contains(&s.udp_cookie_secs), "must be 1 to 300"),
        ("sync.udp_idle_timeout_secs", (1..=3600).contains(&s.udp_idle_timeout_secs), "must be 1 to 3600"),
        ("sync.udp_send_queue_segments", s.udp_send_queue_segments >= 256, "must be at least 256"),
        ("sync.udp_mtu", (256..=65_000).contains(&s.udp_mtu), "must be 256 to 65000"),
        ("sync.udp_kcp_interval_ms", (10..=5000).contains(&s.udp_kcp_interval_ms), "must be 10 to 5000"),
        ("sync.udp_kcp_min_rto_ms", (1..=60_000).contains(&s.udp_kcp_min_rto_ms), "must be 1 to 60000"),
        (
            "sync.udp_kcp_recv_window",
            s.udp_kcp_recv_window >= 128 && s.udp_kcp_send_window >= 1,
            "must be at least 128 (and udp_kcp_send_window at least 1)",
        ),
        ("sync.udp_kcp_dead_link", (2..=100).contains(&s.udp_kcp_dead_link), "must be 2 to 100"),
    ];
    for (key, ok, why) in checks {
        if !ok {
            return Err(file.invalid(key, why));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
