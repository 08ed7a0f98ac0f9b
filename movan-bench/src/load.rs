//! The load: log players in (reusing cached sessions), connect them, fill rooms, play open-loop, measure.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use movan_client::{AccountClient, ServerEvent, Session, SyncClient, SyncEvents, SyncSender};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::procfs;
use crate::report::{Percentiles, Point};
use crate::tracker::{ActionTracker, FrameChecker, Window};

/// Settings shared by every point of a run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Account server base URL.
    pub account: String,
    /// Sync server address overriding the login's.
    pub sync: Option<String>,
    /// Players per room.
    pub room_size: usize,
    /// Actions per second per player.
    pub rate: f64,
    /// Play before the measurement window.
    pub warmup: Duration,
    /// The measurement window.
    pub duration: Duration,
    /// Receive this long after the window so the last actions land.
    pub linger: Duration,
    /// Usernames are `{prefix}-{i}`.
    pub prefix: String,
    /// Password of every bench account.
    pub password: String,
    /// Logins (argon2 on the server) at once.
    pub login_concurrency: usize,
    /// Connects (TCP + handshake) at once.
    pub connect_concurrency: usize,
    /// Longest wait for every room to fill and start.
    pub join_timeout: Duration,
    /// The sync server's pid, for CPU and RSS.
    pub server_pid: Option<u32>,
    /// Where sessions are kept between runs, so logins (argon2) do not dominate.
    pub session_cache: Option<PathBuf>,
    /// TCP or UDP (KCP) to the sync server.
    pub transport: movan_client::Transport,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    sessions: HashMap<String, Cached>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Cached {
    session: Session,
    obtained_unix: u64,
}

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Sessions for players `0..n`: from the cache while their token has 10 minutes left, else by logging in (and
/// registering on first use).
pub async fn sessions(cfg: &LoadConfig, n: usize, bar: &ProgressBar) -> anyhow::Result<Vec<Session>> {
    let mut cache: Cache = match &cfg.session_cache {
        Some(path) if path.exists() => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).unwrap_or_default()
        }
        _ => Cache::default(),
    };
    let now = unix_secs();
    let account = AccountClient::new(cfg.account.as_str());
    let gate = Arc::new(Semaphore::new(cfg.login_concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut out: Vec<Option<Session>> = vec![None; n];
    for (i, slot) in out.iter_mut().enumerate() {
        let name = format!("{}-{i}", cfg.prefix);
        if let Some(c) = cache.sessions.get(&name)
            && c.obtained_unix + c.session.expires_in > now + 600
        {
            *slot = Some(c.session.clone());
            continue;
        }
        let (account, gate, password) = (account.clone(), gate.clone(), cfg.password.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            (i, name.clone(), account.register_or_login(&name, &password).await)
        });
    }
    bar.set_length(n as u64);
    bar.set_position(out.iter().filter(|s| s.is_some()).count() as u64);
    while let Some(joined) = tasks.join_next().await {
        let (i, name, result) = joined?;
        let session = result.with_context(|| format!("logging in {name}"))?;
        cache.sessions.insert(name, Cached { session: session.clone(), obtained_unix: unix_secs() });
        out[i] = Some(session);
        bar.inc(1);
    }
    if let Some(path) = &cfg.session_cache {
        std::fs::write(path, serde_json::to_vec(&cache)?).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(out.into_iter().flatten().collect())
}

/// What one bot measured.
#[derive(Debug, Default)]
pub(crate) struct BotResult {
    pub(crate) actions: ActionTracker,
    pub(crate) frames: FrameChecker,
    pub(crate) error: Option<String>,
}

/// Live counters for the progress bar.
#[derive(Debug, Default)]
pub struct Live {
    /// Frames received.
    pub frames: AtomicU64,
    /// Bots in a started game.
    pub playing: AtomicU64,
}

/// Runs one point with `sessions.len()` players; `tag` makes its room ids unique.
pub async fn run_point(cfg: &LoadConfig, sessions: &[Session], tag: &str, bar: &ProgressBar) -> Point {
    let n = sessions.len();
    let rooms = n.div_ceil(cfg.room_size.max(1));
    let baseline = cfg.server_pid.and_then(procfs::sample);
    let live = Arc::new(Live::default());
    let (window_tx, window_rx) = watch::channel(None::<Window>);
    let (started_tx, started_rx) = mpsc::channel::<bool>(n.max(1));
    let gate = Arc::new(Semaphore::new(cfg.connect_concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, session) in sessions.iter().enumerate() {
        let mut session = session.clone();
        if let Some(addr) = &cfg.sync {
            override_addr(&mut session, addr, cfg.transport);
        }
        let room = format!("{}-{tag}-{}", cfg.prefix, i / cfg.room_size.max(1));
        let bot = Bot { cfg: cfg.clone(), room, live: live.clone(), window: window_rx.clone() };
        let (gate, started) = (gate.clone(), started_tx.clone());
        tasks.spawn(async move { bot.run(session, gate, started).await });
    }
    drop(started_tx);
    measure(cfg, n, rooms, Bots { live, window_tx, started_rx, tasks, baseline }, bar).await
}

/// The bots of one point, started; what [`measure`] watches.
pub(crate) struct Bots {
    /// Their live counters.
    pub(crate) live: Arc<Live>,
    /// Tells them the measurement window.
    pub(crate) window_tx: watch::Sender<Option<Window>>,
    /// One message per bot once its game started (true) or it failed (false).
    pub(crate) started_rx: mpsc::Receiver<bool>,
    /// The bots, each ending with what it measured.
    pub(crate) tasks: tokio::task::JoinSet<BotResult>,
    /// The server's /proc sample before they connected.
    pub(crate) baseline: Option<procfs::Sample>,
}

/// Waits until every bot's game started (or the bot failed), opens the window after the warm-up, samples the
/// server during it, and sums up what the bots measured.
pub(crate) async fn measure(cfg: &LoadConfig, n: usize, rooms: usize, bots: Bots, bar: &ProgressBar) -> Point {
    let Bots { live, window_tx, mut started_rx, mut tasks, baseline } = bots;
    bar.set_length(n as u64);
    bar.set_position(0);
    bar.set_message("joining");
    let join_deadline = Instant::now() + cfg.join_timeout;
    let mut reported = 0;
    while reported < n {
        match tokio::time::timeout_at(join_deadline, started_rx.recv()).await {
            Ok(Some(_)) => {
                reported += 1;
                bar.set_position(reported as u64);
            }
            Ok(None) | Err(_) => break,
        }
    }
    let start = Instant::now() + cfg.warmup;
    let window = Window { start: start.into_std(), end: (start + cfg.duration).into_std() };
    let _ = window_tx.send(Some(window));

    bar.set_message("warm-up");
    tokio::time::sleep_until(start).await;
    let server_at_start = cfg.server_pid.and_then(procfs::sample);
    let bench_at_start = procfs::sample_self();
    let mut peak_rss = server_at_start.map(|s| s.rss_bytes);
    bar.set_length(cfg.duration.as_secs().max(1));
    bar.set_position(0);
    let end = start + cfg.duration;
    let mut last_frames = live.frames.load(Ordering::Relaxed);
    let mut ticker = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    while Instant::now() < end {
        ticker.tick().await;
        if let Some(s) = cfg.server_pid.and_then(procfs::sample) {
            peak_rss = Some(peak_rss.unwrap_or(0).max(s.rss_bytes));
        }
        let frames = live.frames.load(Ordering::Relaxed);
        bar.set_message(format!(
            "measuring: {} playing, {} frames/s",
            live.playing.load(Ordering::Relaxed),
            frames - last_frames
        ));
        last_frames = frames;
        bar.set_position(start.elapsed().as_secs().min(cfg.duration.as_secs()));
    }
    let server_at_end = cfg.server_pid.and_then(procfs::sample);
    let bench_at_end = procfs::sample_self();
    bar.set_message("finishing");

    let mut results = Vec::with_capacity(n);
    while let Some(joined) = tasks.join_next().await {
        results
            .push(joined.unwrap_or_else(|e| BotResult { error: Some(format!("bot task: {e}")), ..Default::default() }));
    }
    let mut point = Point {
        players: n,
        rooms,
        rate: cfg.rate,
        duration_secs: cfg.duration.as_secs_f64(),
        latency_ms: Percentiles::from_micros(results.iter().flat_map(|r| r.actions.latencies_us.iter().copied())),
        frame_gap_ms: Percentiles::from_micros(results.iter().flat_map(|r| r.frames.gaps_us.iter().copied())),
        ..Point::default()
    };
    for r in &results {
        point.frames_received += r.frames.received;
        point.frames_lost += r.frames.lost;
        point.frames_duplicated += r.frames.duplicated;
        point.actions_sent += r.actions.sent;
        point.actions_missing += r.actions.missing;
        point.actions_duplicated += r.actions.duplicated;
        point.actions_refused += r.actions.refused;
        if let Some(e) = &r.error {
            point.bot_errors += 1;
            if point.errors.len() < 5 {
                point.errors.push(e.clone());
            }
        }
    }
    if let (Some(a), Some(b)) = (server_at_start, server_at_end) {
        let cpu = b.cpu_secs - a.cpu_secs;
        let secs = cfg.duration.as_secs_f64();
        point.server_cpu_secs = Some(cpu);
        point.server_cpu_percent = Some(cpu / secs * 100.0);
        point.server_cpu_ms_per_player_sec = Some(cpu * 1000.0 / (n.max(1) as f64 * secs));
    }
    if let Some(peak) = peak_rss {
        point.server_peak_rss_mib = Some(peak as f64 / (1024.0 * 1024.0));
        if let Some(base) = baseline {
            point.server_rss_per_room_kib =
                Some(peak.saturating_sub(base.rss_bytes) as f64 / 1024.0 / rooms.max(1) as f64);
        }
    }
    if let (Some(a), Some(b)) = (bench_at_start, bench_at_end) {
        point.bench_cpu_secs = Some(b.cpu_secs - a.cpu_secs);
    }
    point
}

struct Bot {
    cfg: LoadConfig,
    room: String,
    live: Arc<Live>,
    window: watch::Receiver<Option<Window>>,
}

#[derive(Deserialize)]
struct Action {
    s: u64,
}

impl Bot {
    async fn run(mut self, session: Session, gate: Arc<Semaphore>, started: mpsc::Sender<bool>) -> BotResult {
        let mut result = BotResult::default();
        let joined = self.join(&session, gate).await;
        let _ = started.send(joined.is_ok()).await;
        let (sender, mut events) = match joined {
            Ok(halves) => halves,
            Err(e) => {
                result.error = Some(format!("{}: {e:#}", session.uid));
                return result;
            }
        };
        self.live.playing.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.play(&session.uid, &sender, &mut events, &mut result).await {
            result.error = Some(format!("{}: {e:#}", session.uid));
        }
        self.live.playing.fetch_sub(1, Ordering::Relaxed);
        result.actions.finish();
        // Leave even after a failure: a bare hang-up would keep the seat for the server's reconnect grace period
        // and spoil the next point.
        if !events.is_closed() {
            // Leave, and wait for `room_left` so the seat is free before hanging up.
            let left = async {
                sender.leave_room().await?;
                events.wait_left(Duration::from_secs(10)).await
            };
            if let Err(e) = left.await
                && result.error.is_none()
            {
                result.error = Some(format!("{}: leaving: {e}", session.uid));
            }
        }
        result
    }

    async fn join(&self, session: &Session, gate: Arc<Semaphore>) -> anyhow::Result<(SyncSender, SyncEvents)> {
        let mut client = {
            let _permit = gate.acquire_owned().await?;
            tokio::time::timeout(self.cfg.join_timeout, SyncClient::connect_session_via(session, self.cfg.transport))
                .await
                .context("connecting: timed out")??
        };
        client.enter_room(Some(&self.room)).await?;
        let size = self.cfg.room_size;
        let full = |e: &ServerEvent| {
            matches!(e, ServerEvent::RoomState(s) if s.members.len() >= size) || matches!(e, ServerEvent::Error(_))
        };
        if let ServerEvent::Error(e) = client.wait_for(full, self.cfg.join_timeout).await? {
            bail!("joining {}: {} {}", self.room, e.code, e.message);
        }
        client.prepare().await?;
        let start = |e: &ServerEvent| matches!(e, ServerEvent::GameStart(_) | ServerEvent::Error(_));
        if let ServerEvent::Error(e) = client.wait_for(start, self.cfg.join_timeout).await? {
            bail!("starting: {} {}", e.code, e.message);
        }
        Ok(client.split())
    }

    /// Sends on schedule (open loop: the scheduled instant is the send time, so a late send counts against
    /// latency) while receiving, until the window ends and the linger passed.
    async fn play(
        &mut self,
        uid: &str,
        sender: &SyncSender,
        events: &mut SyncEvents,
        result: &mut BotResult,
    ) -> anyhow::Result<()> {
        let mut window: Option<Window> = *self.window.borrow();
        let period = Duration::from_secs_f64(1.0 / self.cfg.rate.max(0.001));
        // Spread the bots' send phases over one period so they do not all send at once.
        let phase = Duration::from_nanos(rand_phase(uid, period));
        let mut ticks = tokio::time::interval_at(Instant::now() + phase, period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut sending = self.cfg.rate > 0.0;
        let mut stop_at: Option<Instant> = None;
        loop {
            if window.is_none() {
                window = *self.window.borrow();
            }
            let done_at = window.map(|w| Instant::from_std(w.end) + self.cfg.linger);
            if done_at.is_some_and(|t| Instant::now() >= t) {
                return Ok(());
            }
            let wake = stop_at.or(done_at).unwrap_or_else(|| Instant::now() + Duration::from_millis(100));
            tokio::select! {
                scheduled = ticks.tick(), if sending => {
                    if window.is_some_and(|w| scheduled.into_std() >= w.end) {
                        sending = false;
                        stop_at = done_at;
                        continue;
                    }
                    let seq = result.actions.on_send(scheduled.into_std());
                    if let Err(e) = sender.send_action(&serde_json::json!({ "s": seq })).await {
                        result.actions.on_send_failed(seq);
                        bail!("sending: {e}");
                    }
                }
                ev = events.next_event() => {
                    let at = std::time::Instant::now();
                    match ev {
                        Some(ServerEvent::Frame(frame)) => {
                            self.live.frames.fetch_add(1, Ordering::Relaxed);
                            result.frames.on_frame(frame.frame_count, at, window.as_ref());
                            for a in frame.actions.iter().filter(|a| a.uid == uid) {
                                match serde_json::from_str::<Action>(a.action_data.get()) {
                                    Ok(action) => result.actions.on_seen(action.s, at, window.as_ref()),
                                    Err(_) => result.actions.duplicated += 1,
                                }
                            }
                        }
                        // An overloaded server refuses actions beyond the per-player limit: they are lost (and counted
                        // as refused), but the bot plays on so the point shows degradation rather than collapse.
                        Some(ServerEvent::Error(e)) if e.code == movan_protocol::ErrorCode::LimitExceeded => {
                            result.actions.refused += 1;
                        }
                        Some(ServerEvent::Error(e)) => bail!("server error {} on {:?}: {}", e.code, e.proto, e.message),
                        Some(ServerEvent::GameOver(o)) => bail!("game over ({}) during the run", o.reason),
                        Some(_) => {}
                        None => bail!("connection closed: {:?}", events.close_reason().map(ToString::to_string)),
                    }
                }
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }
}

/// A per-bot offset in `0..period`, from its uid (deterministic, no rng needed).
fn rand_phase(uid: &str, period: Duration) -> u64 {
    let h = uid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    h % u64::try_from(period.as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// Points `session` at `addr` for `transport` (`--sync`).
pub fn override_addr(session: &mut movan_client::Session, addr: &str, transport: movan_client::Transport) {
    match transport {
        movan_client::Transport::Tcp => session.sync_addr = addr.to_owned(),
        movan_client::Transport::Udp => session.sync_udp_addr = Some(addr.to_owned()),
        movan_client::Transport::Ws => session.sync_ws_url = Some(addr.to_owned()),
    }
}
