//! `movan-bench`: capacity and latency of a running Movan deployment, measured from a separate process.
//!
//! For each player count of the sweep it logs players in (reusing cached sessions), fills rooms, has every player
//! send actions on its own schedule (open loop), and measures over a window after a warm-up: action-to-frame latency
//! (HDR histogram), the gap between frames as clients see them, lost/duplicated frames and actions, and the sync
//! server's CPU and RSS from `/proc`. It prints a summary per point, and can write JSON, a markdown table and an SVG
//! plot. `scripts/bench.sh` runs the standard sweep and writes `docs/benchmarks.md`.
//!
//! Exit status: 0 when every point was clean (nothing lost or duplicated, no bot failed), 1 otherwise, 2 on bad
//! arguments.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use movan_client::{Encryption, SyncClient};
use tracing_subscriber::EnvFilter;

mod load;
mod plot;
mod procfs;
mod relay;
mod report;
mod tracker;

use load::LoadConfig;
use report::Run;

/// Measure Movan: open-loop bots, action-to-frame latency, tick jitter, losses, server CPU and RSS.
#[derive(Debug, Parser)]
#[command(name = "movan-bench", version)]
struct Args {
    /// Account server base URL.
    #[arg(long, env = "MOVAN_ACCOUNT", default_value = "http://127.0.0.1:2026")]
    account: String,
    /// Sync server address (host:port, or a ws:// URL with `--transport ws`); default: the `sync_addr` (with
    /// `--transport udp` the `sync_udp_addr`, with `--transport ws` the `sync_ws_url`) the login returns.
    #[arg(long, env = "MOVAN_SYNC")]
    sync: Option<String>,
    /// Transport to the sync server: tcp, udp (KCP) or ws (WebSocket).
    #[arg(long, value_enum, default_value_t = movan_client::Transport::Tcp)]
    transport: movan_client::Transport,
    /// Player counts to measure, in order, e.g. `500,1000,2000`.
    #[arg(long, value_delimiter = ',', default_value = "100")]
    players: Vec<usize>,
    /// Players per room (the server's `sync.max_players` must allow it).
    #[arg(long, default_value_t = 4)]
    room_size: usize,
    /// Actions per second per player.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Seconds of play before the measurement window.
    #[arg(long, default_value_t = 5.0)]
    warmup_secs: f64,
    /// Seconds measured per point.
    #[arg(long, default_value_t = 30.0)]
    duration_secs: f64,
    /// Milliseconds of receiving after the window, so the last actions land.
    #[arg(long, default_value_t = 1000)]
    linger_ms: u64,
    /// The sync server's pid: measure its CPU time and RSS from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Keep sessions here between runs, so logins (argon2) are not repeated.
    #[arg(long)]
    session_cache: Option<PathBuf>,
    /// Write the run (settings, machine, every point) as JSON here.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Write the results table (markdown) here.
    #[arg(long)]
    markdown_out: Option<PathBuf>,
    /// Draw latency percentiles and server CPU against players into this SVG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Usernames are `{prefix}-{i}`; room ids start with it.
    #[arg(long, default_value = "bench")]
    prefix: String,
    /// Password of every bench account (registered on first use).
    #[arg(long, env = "MOVAN_BENCH_PASSWORD", default_value = "movan-bench-pass")]
    password: String,
    /// Logins at once.
    #[arg(long, default_value_t = 8)]
    login_concurrency: usize,
    /// Connection handshakes at once.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Seconds to wait for all rooms to fill and start.
    #[arg(long, default_value_t = 120.0)]
    join_timeout_secs: f64,
    /// Seconds to pause between points, so the server frees the previous rooms.
    #[arg(long, default_value_t = 3.0)]
    pause_secs: f64,
    /// Measure the bare relay `movan-relay` at this address instead of Movan (no login, no JSON, no encryption);
    /// `--server-pid` is then the relay's.
    #[arg(long, value_name = "ADDR")]
    relay: Option<String>,
    /// A relay run's `--json-out`: the markdown output gets a table of Movan beside the relay.
    #[arg(long, value_name = "FILE")]
    relay_json: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .init();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("movan-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn secs(name: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| anyhow::anyhow!("--{name} must be a non-negative number of seconds"))
}

async fn run(args: Args) -> anyhow::Result<bool> {
    if args.players.is_empty() || args.players.contains(&0) || args.room_size == 0 {
        anyhow::bail!("--players needs positive counts and --room-size must be at least 1");
    }
    if !(args.rate.is_finite() && args.rate > 0.0) {
        anyhow::bail!("--rate must be a positive number");
    }
    let cfg = LoadConfig {
        account: args.account.clone(),
        sync: args.sync.clone(),
        room_size: args.room_size,
        rate: args.rate,
        warmup: secs("warmup-secs", args.warmup_secs)?,
        duration: secs("duration-secs", args.duration_secs)?.max(Duration::from_secs(1)),
        linger: Duration::from_millis(args.linger_ms),
        prefix: args.prefix.clone(),
        password: args.password.clone(),
        login_concurrency: args.login_concurrency,
        connect_concurrency: args.connect_concurrency,
        join_timeout: secs("join-timeout-secs", args.join_timeout_secs)?,
        server_pid: args.server_pid,
        session_cache: args.session_cache.clone(),
        transport: args.transport,
    };
    let style = ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg}")?.progress_chars("=> ");
    let bar = ProgressBar::new(0).with_style(style);
    let max = args.players.iter().copied().max().unwrap_or(1);
    bar.set_prefix("logging in");
    let sessions = if args.relay.is_some() { Vec::new() } else { load::sessions(&cfg, max, &bar).await? };
    let encrypted = match sessions.first() {
        Some(s) => {
            let mut s = s.clone();
            if let Some(addr) = &cfg.sync {
                load::override_addr(&mut s, addr, cfg.transport);
            }
            SyncClient::connect_session_via(&s, cfg.transport).await?.encryption() == Encryption::Sealed
        }
        None => false,
    };
    let mut run = Run {
        date: date_utc(),
        machine: machine(),
        room_size: args.room_size,
        encrypted,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        points: Vec::new(),
    };
    let tag = format!("{:x}", std::process::id());
    for (k, &n) in args.players.iter().enumerate() {
        bar.set_prefix(format!("{n} players"));
        let point = match &args.relay {
            Some(addr) => relay::run_point(&cfg, addr, n, &format!("{tag}-{k}"), &bar).await,
            None => load::run_point(&cfg, &sessions[..n], &format!("{tag}-{k}"), &bar).await,
        };
        bar.suspend(|| println!("{}", report::summary(&point)));
        for e in &point.errors {
            bar.suspend(|| eprintln!("  bot error: {e}"));
        }
        run.points.push(point);
        tokio::time::sleep(secs("pause-secs", args.pause_secs)?).await;
    }
    bar.finish_and_clear();
    let mut table = report::markdown_table(&run.points);
    if let Some(path) = &args.relay_json {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let relay: Run = serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
        table.push_str("\nBeside the bare relay (`movan-relay`, measured in the same run):\n\n");
        table.push_str(&report::relay_comparison(&run.points, &relay.points));
    }
    println!("\n{table}");
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&run)?)?;
    }
    if let Some(path) = &args.markdown_out {
        std::fs::write(path, &table)?;
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "Movan: rooms of {}, {} actions/s per player, {}",
            args.room_size,
            args.rate,
            if encrypted { "encrypted" } else { "plaintext" }
        );
        plot::draw(&run.points, &title, path)?;
    }
    Ok(run.points.iter().all(report::Point::clean))
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {model}")
}

fn date_utc() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}
