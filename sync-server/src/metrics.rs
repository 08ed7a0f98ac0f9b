//! Prometheus metrics of the sync server, served at `GET /metrics` on `sync.metrics_addr` (README: "Metrics").
//!
//! The handles are made once ([`get`]) and updating one is an atomic add. Without [`install`] (unit tests, embedders
//! that do not serve `/metrics`) they go nowhere. Names:
//!
//! | name | type | labels |
//! |---|---|---|
//! | `movan_sync_connections` | gauge | `transport` = `tcp`, `ws`, `udp` |
//! | `movan_sync_players` | gauge | players in rooms, including those in their reconnect grace |
//! | `movan_sync_rooms` | gauge | `state` = `waiting`, `playing` |
//! | `movan_sync_tick_lateness_seconds` | histogram | how long after its deadline each frame went out |
//! | `movan_sync_frames_total` | counter | frames broadcast |
//! | `movan_sync_actions_total` | counter | actions taken into frames |
//! | `movan_sync_received_bytes_total` / `movan_sync_sent_bytes_total` | counter | `transport`; message bodies (sealed), with TCP's length prefixes |
//! | `movan_sync_refusals_total` | counter | `code`: every `error` sent, by its code |
//! | `movan_sync_reconnects_total` | counter | players back within their reconnect grace |
//! | `movan_sync_reloads_total` / `movan_sync_reload_bytes_total` | counter | reloads started (requests, spectators, late joins) and the bytes sent |
//! | `movan_sync_desyncs_total` | counter | checksum comparisons that disagreed |
//! | `movan_sync_games_total` | counter | `reason`: games ended, by `game_over` reason |
//! | `movan_sync_replay_bytes_total` | counter | replay bytes handed to the account link |
//! | `movan_sync_account_link_up` | gauge | 1 while registered with the account server |

use std::sync::OnceLock;

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use movan_protocol::{EndReason, ErrorCode};

/// A transport, as the `transport` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Length-prefixed frames over TCP.
    Tcp,
    /// WebSocket binary messages.
    Ws,
    /// KCP over UDP.
    Udp,
}

impl Transport {
    const ALL: [Self; 3] = [Self::Tcp, Self::Ws, Self::Udp];

    fn label(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Ws => "ws",
            Self::Udp => "udp",
        }
    }
}

/// Every metric's handle.
#[derive(Debug)]
pub struct SyncMetrics {
    connections: [Gauge; 3],
    received: [Counter; 3],
    sent: [Counter; 3],
    /// Players in rooms.
    pub players: Gauge,
    /// Waiting rooms.
    pub rooms_waiting: Gauge,
    /// Rooms with a running game.
    pub rooms_playing: Gauge,
    /// Seconds between a frame's deadline and its broadcast.
    pub tick_lateness: Histogram,
    /// Frames broadcast.
    pub frames: Counter,
    /// Actions in frames.
    pub actions: Counter,
    /// Reconnects within the grace.
    pub reconnects: Counter,
    /// Reloads started.
    pub reloads: Counter,
    /// Reload bytes sent.
    pub reload_bytes: Counter,
    /// Checksum comparisons that disagreed.
    pub desyncs: Counter,
    /// Replay bytes handed over.
    pub replay_bytes: Counter,
    /// 1 while registered with the account server.
    pub account_link_up: Gauge,
}

impl SyncMetrics {
    fn register() -> Self {
        let per_transport =
            |name: &'static str| Transport::ALL.map(|t| metrics::counter!(name, "transport" => t.label()));
        Self {
            connections: Transport::ALL.map(|t| metrics::gauge!("movan_sync_connections", "transport" => t.label())),
            received: per_transport("movan_sync_received_bytes_total"),
            sent: per_transport("movan_sync_sent_bytes_total"),
            players: metrics::gauge!("movan_sync_players"),
            rooms_waiting: metrics::gauge!("movan_sync_rooms", "state" => "waiting"),
            rooms_playing: metrics::gauge!("movan_sync_rooms", "state" => "playing"),
            tick_lateness: metrics::histogram!("movan_sync_tick_lateness_seconds"),
            frames: metrics::counter!("movan_sync_frames_total"),
            actions: metrics::counter!("movan_sync_actions_total"),
            reconnects: metrics::counter!("movan_sync_reconnects_total"),
            reloads: metrics::counter!("movan_sync_reloads_total"),
            reload_bytes: metrics::counter!("movan_sync_reload_bytes_total"),
            desyncs: metrics::counter!("movan_sync_desyncs_total"),
            replay_bytes: metrics::counter!("movan_sync_replay_bytes_total"),
            account_link_up: metrics::gauge!("movan_sync_account_link_up"),
        }
    }

    /// A connection over `transport` opened (`+1`) or closed (`-1`).
    pub fn connection(&self, transport: Transport, delta: f64) {
        self.connections[transport as usize].increment(delta);
    }

    /// `n` bytes read over `transport`.
    pub fn received(&self, transport: Transport, n: usize) {
        self.received[transport as usize].increment(n as u64);
    }

    /// `n` bytes written over `transport`.
    pub fn sent(&self, transport: Transport, n: usize) {
        self.sent[transport as usize].increment(n as u64);
    }

    /// An `error` with `code` went to a client.
    pub fn refusal(&self, code: ErrorCode) {
        metrics::counter!("movan_sync_refusals_total", "code" => code.as_str()).increment(1);
    }

    /// A game ended for `reason`.
    pub fn game_ended(&self, reason: EndReason) {
        metrics::counter!("movan_sync_games_total", "reason" => reason.as_str()).increment(1);
    }
}

static METRICS: OnceLock<SyncMetrics> = OnceLock::new();

/// The handles (made at the first call: after [`install`], if the process serves `/metrics`).
pub fn get() -> &'static SyncMetrics {
    METRICS.get_or_init(SyncMetrics::register)
}

/// Bucket bounds of `movan_sync_tick_lateness_seconds`: 0.5 ms to 1 s.
const LATENESS_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0];

/// Makes the Prometheus recorder the process's recorder; `None` when another is installed already. Call it before
/// the first [`get`].
pub fn install() -> Option<PrometheusHandle> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full("movan_sync_tick_lateness_seconds".into()), &LATENESS_BUCKETS)
        .ok()?;
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).ok()?;
    get();
    Some(handle)
}
