//! `movan-bot`: load generator and end-to-end checker for a running Movan deployment.
//!
//! Exit status: 0 when every check held, 1 when a check failed or a bot errored, 2 on bad arguments.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use movan_client::bot::{self, ActionTemplate, BotConfig, Report};
use tracing_subscriber::EnvFilter;

/// Play games with bots and check lockstep delivery: frames consecutive from 0, every own action exactly once,
/// identical frames for every member of a room.
#[derive(Debug, Parser)]
#[command(name = "movan-bot", version)]
struct Args {
    /// Account server base URL.
    #[arg(long, env = "MOVAN_ACCOUNT", default_value = "http://127.0.0.1:2026")]
    account: String,
    /// Sync server address (host:port); default: the `sync_addr` the login returns. Connections are sealed with the
    /// login's session key whenever the server's handshake asks for it.
    #[arg(long, env = "MOVAN_SYNC")]
    sync: Option<String>,
    /// Number of bots.
    #[arg(long, default_value_t = 8)]
    bots: usize,
    /// Members a room needs before its bots get ready; bot i enters room `{prefix}-room-{i / room-size}`.
    #[arg(long, default_value_t = 4)]
    room_size: usize,
    /// Seconds each bot sends actions once its game started.
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Actions each bot sends per second, on schedule whatever it receives (0 = none).
    #[arg(long, default_value_t = 20.0)]
    actions_per_sec: f64,
    /// What each action is: JSON, where `{seq}` becomes the action's number (0, 1, ... per bot) and `{bot}` the
    /// bot's index. With `{seq}` as a number in it, every action is checked to arrive exactly once; without (e.g.
    /// '{"points": 1}' for examples/race_room.rs), own actions are only counted.
    #[arg(long, value_name = "JSON", default_value = ActionTemplate::DEFAULT)]
    action: String,
    /// Prefix of usernames (`{prefix}-{i}`) and room ids.
    #[arg(long, default_value = "bot")]
    prefix: String,
    /// Password of every bot account (registered on first use).
    #[arg(long, env = "MOVAN_BOT_PASSWORD", default_value = "movan-bot-pass")]
    password: String,
    /// Enter rooms by quick match instead of explicit room ids.
    #[arg(long)]
    quick_match: bool,
    /// Seconds to wait for a room to fill and its game to start.
    #[arg(long, default_value_t = 30.0)]
    join_timeout_secs: f64,
    /// Ticks to keep receiving after the last action.
    #[arg(long, default_value_t = 3)]
    linger_ticks: u32,
    /// After the game, reload all frames from 0 and check they match the live ones byte for byte.
    #[arg(long)]
    check_reload: bool,
    /// Print the result as one JSON line on stdout (the human summary then goes to stderr).
    #[arg(long)]
    json: bool,
    /// Every this many seconds, print a progress line on stderr: players in a game, frames and actions so far, and
    /// frames per second since the previous line (0 = no progress lines).
    #[arg(long, default_value_t = 0.0)]
    progress_secs: f64,
    /// After the run, write every frame each bot received to FILE, one line per frame: the bot's index, a tab, and
    /// the frame object byte for byte as the server sent it (the `data` of its `sync_frame`), bots in order.
    #[arg(long, value_name = "FILE")]
    frames_out: Option<std::path::PathBuf>,
    /// Transport to the sync server: tcp, udp (KCP to the login's `sync_udp_addr`) or ws (WebSocket to its
    /// `sync_ws_url`).
    #[arg(long, value_enum, default_value_t = movan_client::Transport::Tcp)]
    transport: movan_client::Transport,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();

    let config = match to_config(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("movan-bot: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(
        bots = config.bots,
        room_size = config.room_size,
        account = %config.account,
        "starting bots"
    );
    let progress = (args.progress_secs > 0.0).then(|| {
        let every = Duration::from_secs_f64(args.progress_secs.max(0.1));
        tokio::spawn(print_progress(config.progress.clone(), every))
    });
    let (report, logs) = bot::run_recording(&config).await;
    if let Some(task) = progress {
        task.abort();
    }
    if let Some(path) = &args.frames_out
        && let Err(e) = write_frames(path, &logs)
    {
        eprintln!("movan-bot: cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    let summary = human_summary(&config, &report);
    if args.json {
        eprint!("{summary}");
        match serde_json::to_string(&report) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("movan-bot: cannot encode the report: {e}"),
        }
    } else {
        print!("{summary}");
    }
    if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Prints `movan-bot progress: elapsed_s=.. playing=.. frames=.. frames_per_s=.. actions=..` every `every`.
async fn print_progress(progress: std::sync::Arc<bot::Progress>, every: Duration) {
    let start = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval_at(start + every, every);
    let mut last_frames = 0;
    loop {
        ticks.tick().await;
        let (playing, frames, actions) = progress.snapshot();
        let rate = (frames - last_frames) as f64 / every.as_secs_f64();
        last_frames = frames;
        eprintln!(
            "movan-bot progress: elapsed_s={:.0} playing={playing} frames={frames} frames_per_s={rate:.0} actions={actions}",
            start.elapsed().as_secs_f64()
        );
    }
}

/// Writes `--frames-out`: `{bot}\t{frame}\n` per frame.
fn write_frames(path: &std::path::Path, logs: &[movan_client::FrameLog]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for (bot, log) in logs.iter().enumerate() {
        for frame in log.frames() {
            writeln!(out, "{bot}\t{}", frame.raw.get())?;
        }
    }
    out.flush()
}

fn to_config(args: &Args) -> Result<BotConfig, String> {
    let secs = |name: &str, v: f64| {
        Duration::try_from_secs_f64(v).map_err(|_| format!("--{name} must be a non-negative number of seconds"))
    };
    let config = BotConfig {
        account: args.account.clone(),
        sync: args.sync.clone(),
        bots: args.bots,
        room_size: args.room_size,
        duration: secs("duration-secs", args.duration_secs)?,
        actions_per_sec: args.actions_per_sec,
        action: ActionTemplate::parse(&args.action)?,
        prefix: args.prefix.clone(),
        password: args.password.clone(),
        quick_match: args.quick_match,
        join_timeout: secs("join-timeout-secs", args.join_timeout_secs)?,
        linger_ticks: args.linger_ticks,
        check_reload: args.check_reload,
        progress: Default::default(),
        transport: args.transport,
    };
    config.validate()?;
    Ok(config)
}

fn human_summary(config: &BotConfig, r: &Report) -> String {
    let mut out = format!(
        "movan-bot: {} bots in {} rooms, {:.1} s at {} actions/s each\n\
         frames received {}, actions sent {}, own actions seen {}\n\
         missing {}, duplicated {}, gaps {}, desyncs {}, errors {}\n\
         encrypted {}\n",
        r.bots,
        r.rooms,
        config.duration.as_secs_f64(),
        config.actions_per_sec,
        r.frames_received,
        r.actions_sent,
        r.actions_seen_own,
        r.missing,
        r.duplicated,
        r.gaps,
        r.desyncs,
        r.errors,
        if r.encrypted { "yes (chacha20poly1305)" } else { "no" },
    );
    if r.unconfirmed > 0 {
        out.push_str(&format!(
            "unconfirmed {} (sent after the last frame of a game that ended while bots played)\n",
            r.unconfirmed
        ));
    }
    for (reason, bots) in &r.game_overs {
        out.push_str(&format!("game over: {reason} ({bots} bots)\n"));
    }
    for (room, results) in &r.results {
        out.push_str(&format!("results of {room}: {results}\n"));
    }
    for message in &r.error_messages {
        out.push_str(&format!("  error: {message}\n"));
    }
    out.push_str(if r.passed() { "PASS\n" } else { "FAIL\n" });
    out
}
