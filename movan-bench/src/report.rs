//! Results of a benchmark point and of a sweep: percentiles from HDR histograms, JSON, a markdown table.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Percentiles of one distribution, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

impl Percentiles {
    /// From microsecond samples, through an HDR histogram (1 µs to 1 h, 3 significant digits).
    pub fn from_micros(samples: impl IntoIterator<Item = u64>) -> Self {
        let Ok(mut h) = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3) else {
            return Self::default();
        };
        for s in samples {
            h.saturating_record(s.max(1));
        }
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// One measured point: a number of players for a duration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Point {
    /// Players (bots) connected and playing.
    pub players: usize,
    /// Rooms.
    pub rooms: usize,
    /// Actions per second each player sent.
    pub rate: f64,
    /// Length of the measurement window, seconds (after warm-up).
    pub duration_secs: f64,
    /// Send → receipt of the frame holding the action, as the sender sees it.
    pub latency_ms: Percentiles,
    /// Time between consecutive frames as clients see them (the tick interval when all is well).
    pub frame_gap_ms: Percentiles,
    /// Frames received by all bots.
    pub frames_received: u64,
    /// Frames a bot never received (skipped).
    pub frames_lost: u64,
    /// Frames received twice or out of order.
    pub frames_duplicated: u64,
    /// Actions sent.
    pub actions_sent: u64,
    /// Actions never seen in a frame by their sender.
    pub actions_missing: u64,
    /// Actions seen twice (or never sent).
    pub actions_duplicated: u64,
    /// Actions the server refused with `limit_exceeded` (overload: too many waiting for one frame); also missing.
    #[serde(default)]
    pub actions_refused: u64,
    /// Bots that failed (could not join, connection lost, server error).
    pub bot_errors: u64,
    /// First few bot error messages.
    pub errors: Vec<String>,
    /// Sync server CPU seconds during the window, if its pid was given.
    pub server_cpu_secs: Option<f64>,
    /// Sync server CPU milliseconds per player-second of play.
    pub server_cpu_ms_per_player_sec: Option<f64>,
    /// Sync server CPU use as a share of one core, percent.
    pub server_cpu_percent: Option<f64>,
    /// Sync server peak RSS during the point, MiB.
    pub server_peak_rss_mib: Option<f64>,
    /// Sync server RSS growth from before the bots connected to the peak, per room, KiB.
    pub server_rss_per_room_kib: Option<f64>,
    /// This benchmark process's CPU seconds during the window (the load generator's own cost).
    pub bench_cpu_secs: Option<f64>,
}

impl Point {
    /// No frame or action lost or duplicated and no bot failed.
    pub fn clean(&self) -> bool {
        self.frames_lost == 0
            && self.actions_refused == 0
            && self.frames_duplicated == 0
            && self.actions_missing == 0
            && self.actions_duplicated == 0
            && self.bot_errors == 0
            && self.frames_received > 0
    }
}

/// A whole run: the machine, the settings and every point.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Run {
    /// When, UTC, RFC 3339-ish (`date -u` style is fine).
    pub date: String,
    /// CPU model and cores.
    pub machine: String,
    /// Players per room.
    pub room_size: usize,
    /// Whether the connections were sealed.
    pub encrypted: bool,
    /// The command line.
    pub command: String,
    /// Measured points, in sweep order.
    pub points: Vec<Point>,
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.decimals$}"))
}

/// The points as a markdown table.
pub fn markdown_table(points: &[Point]) -> String {
    let mut out = String::from(
        "| players | rooms | p50 ms | p90 ms | p99 ms | max ms | frame gap p99 / max ms | frames lost / dup | \
         actions missing / dup / refused | bot errors | server CPU % of a core | CPU ms per player-s | server peak RSS MiB | \
         RSS per room KiB | bench CPU s |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for p in points {
        out.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} | {} / {} | {} / {} / {} | {} | {} | {} | {} | {} | {} |\n",
            p.players,
            p.rooms,
            p.latency_ms.p50,
            p.latency_ms.p90,
            p.latency_ms.p99,
            p.latency_ms.max,
            p.frame_gap_ms.p99,
            p.frame_gap_ms.max,
            p.frames_lost,
            p.frames_duplicated,
            p.actions_missing,
            p.actions_duplicated,
            p.actions_refused,
            p.bot_errors,
            opt(p.server_cpu_percent, 0),
            opt(p.server_cpu_ms_per_player_sec, 3),
            opt(p.server_peak_rss_mib, 1),
            opt(p.server_rss_per_room_kib, 1),
            opt(p.bench_cpu_secs, 1),
        ));
    }
    out
}

/// The load generator's own CPU milliseconds per player-second.
fn bench_ms_per_player_sec(p: &Point) -> Option<f64> {
    p.bench_cpu_secs.map(|cpu| cpu * 1000.0 / (p.players.max(1) as f64 * p.duration_secs.max(1e-9)))
}

/// Movan's points beside the bare relay's at the same player counts (`movan-bench --relay`): latency, the server's
/// CPU per player-second and the load generator's own.
pub fn relay_comparison(points: &[Point], relay: &[Point]) -> String {
    let mut out = String::from(
        "| players | relay p99 ms | Movan p99 ms | Movan p99 vs relay | relay CPU ms per player-s | Movan CPU ms per \
         player-s | Movan / relay CPU | bench CPU ms per player-s, relay / Movan |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for p in points {
        let Some(r) = relay.iter().find(|r| r.players == p.players) else { continue };
        let ratio = match (p.server_cpu_ms_per_player_sec, r.server_cpu_ms_per_player_sec) {
            (Some(m), Some(r)) if r > 0.0 => Some(m / r),
            _ => None,
        };
        let p99_vs = if r.latency_ms.p99 > 0.0 { (p.latency_ms.p99 / r.latency_ms.p99 - 1.0) * 100.0 } else { 0.0 };
        out.push_str(&format!(
            "| {} | {:.1} | {:.1} | {:+.0} % | {} | {} | {} | {} / {} |\n",
            p.players,
            r.latency_ms.p99,
            p.latency_ms.p99,
            p99_vs,
            opt(r.server_cpu_ms_per_player_sec, 3),
            opt(p.server_cpu_ms_per_player_sec, 3),
            opt(ratio, 2),
            opt(bench_ms_per_player_sec(r), 3),
            opt(bench_ms_per_player_sec(p), 3),
        ));
    }
    out
}

/// A human summary of one point.
pub fn summary(p: &Point) -> String {
    format!(
        "{} players in {} rooms, {} actions/s each, {:.0} s measured: latency p50 {:.1} ms, p90 {:.1}, p99 {:.1}, \
         max {:.1}; frame gap p50 {:.1} ms, p99 {:.1}, max {:.1}; frames {} (lost {}, dup {}); actions {} (missing \
         {}, dup {}, refused {}); bot errors {}; server CPU {} % of a core ({} ms per player-second), peak RSS {} MiB; bench \
         CPU {} s{}",
        p.players,
        p.rooms,
        p.rate,
        p.duration_secs,
        p.latency_ms.p50,
        p.latency_ms.p90,
        p.latency_ms.p99,
        p.latency_ms.max,
        p.frame_gap_ms.p50,
        p.frame_gap_ms.p99,
        p.frame_gap_ms.max,
        p.frames_received,
        p.frames_lost,
        p.frames_duplicated,
        p.actions_sent,
        p.actions_missing,
        p.actions_duplicated,
        p.actions_refused,
        p.bot_errors,
        opt(p.server_cpu_percent, 0),
        opt(p.server_cpu_ms_per_player_sec, 3),
        opt(p.server_peak_rss_mib, 1),
        opt(p.bench_cpu_secs, 1),
        if p.clean() { "" } else { "  [NOT CLEAN]" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_from_micros() {
        let p = Percentiles::from_micros((1..=1000).map(|i| i * 100));
        assert_eq!(p.count, 1000);
        assert!((p.p50 - 50.0).abs() < 0.1, "{p:?}");
        assert!((p.p99 - 99.0).abs() < 0.1, "{p:?}");
        assert!((p.max - 100.0).abs() < 0.1, "{p:?}");
        assert_eq!(Percentiles::from_micros([]), Percentiles::default());
    }

    #[test]
    fn table_has_a_row_per_point() {
        let points = vec![Point { players: 500, rooms: 125, ..Point::default() }, Point::default()];
        let t = markdown_table(&points);
        assert_eq!(t.lines().count(), 4);
        assert!(t.lines().nth(2).unwrap().starts_with("| 500 | 125 |"));
        assert!(!points[0].clean(), "no frames means not clean");
    }

    #[test]
    fn movan_is_set_beside_the_relay_at_the_same_player_counts() {
        let point = |players: usize, p99: f64, cpu: f64, bench: f64| Point {
            players,
            duration_secs: 10.0,
            latency_ms: Percentiles { p99, ..Percentiles::default() },
            server_cpu_ms_per_player_sec: Some(cpu),
            bench_cpu_secs: Some(bench),
            ..Point::default()
        };
        let movan = [point(500, 55.0, 0.45, 2.5), point(1000, 60.0, 0.40, 5.0)];
        let relay = [point(500, 50.0, 0.25, 1.5)];
        let table = relay_comparison(&movan, &relay);
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(rows, ["| 500 | 50.0 | 55.0 | +10 % | 0.250 | 0.450 | 1.80 | 0.300 / 0.500 |"], "{table}");
    }
}
