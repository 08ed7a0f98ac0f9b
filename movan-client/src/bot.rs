//! The load generator behind the `movan-bot` binary, callable from tests.
//!
//! Each bot logs in, fills a room with its peers, gets ready, and once the game starts sends actions at a fixed
//! rate (open loop: on schedule, whatever it receives) while a receive loop checks what comes back: frames are
//! consecutive from 0, each own action appears exactly once, and every member of a room saw the same bytes. What a
//! bot sends is an [`ActionTemplate`] (`movan-bot --action`).

mod actions;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::time::{Instant, MissedTickBehavior, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::account::AccountClient;
use crate::error::ClientError;
use crate::game::{FrameLog, FrameLogError, Pushed};
use crate::sync::{Encryption, SyncClient, SyncEvents, SyncSender, Transport};
use movan_protocol::EndReason;
use movan_protocol::server::{Frame, GameOver, ServerEvent};

use actions::ActionTally;
pub use actions::ActionTemplate;

/// Error messages kept per bot; further errors are only counted.
const MAX_MESSAGES_PER_BOT: usize = 10;
/// How long one reload may take.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// What a bot run does.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// Account server base URL, e.g. `http://127.0.0.1:2026`.
    pub account: String,
    /// Sync server address overriding the one the login returns (the login's session key is used either way).
    pub sync: Option<String>,
    /// Number of bots.
    pub bots: usize,
    /// Members a room needs before its bots get ready.
    pub room_size: usize,
    /// How long each bot sends actions once its game started.
    pub duration: Duration,
    /// Actions each bot sends per second (0 = none).
    pub actions_per_sec: f64,
    /// What each action is (`{seq}` and `{bot}` filled in).
    pub action: ActionTemplate,
    /// Usernames are `{prefix}-{i}`, rooms `{prefix}-room-{i / room_size}`.
    pub prefix: String,
    /// Password of every bot account.
    pub password: String,
    /// Enter rooms by quick match instead of explicit room ids.
    pub quick_match: bool,
    /// Longest wait for a room to fill and for the game to start.
    pub join_timeout: Duration,
    /// Ticks to keep receiving after the last action, so it can land in a frame.
    pub linger_ticks: u32,
    /// After the game, reload every frame from 0 and check the reload matches the live frames byte for byte.
    pub check_reload: bool,
    /// Live counters of the run, for progress displays; shared by clones of the config.
    pub progress: Arc<Progress>,
    /// TCP or UDP (KCP) to the sync server.
    pub transport: Transport,
}

/// Counters a bot run updates as it goes (read them from another task while [`run`] runs).
#[derive(Debug, Default)]
pub struct Progress {
    /// Bots whose game has started and not yet ended.
    pub playing: AtomicU64,
    /// Frames received so far, summed over bots.
    pub frames: AtomicU64,
    /// Actions sent so far, summed over bots.
    pub actions: AtomicU64,
}

impl Progress {
    /// (playing, frames, actions) now.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.playing.load(Ordering::Relaxed),
            self.frames.load(Ordering::Relaxed),
            self.actions.load(Ordering::Relaxed),
        )
    }
}

impl BotConfig {
    /// A configuration with the `movan-bot` defaults against the account server at `account`.
    pub fn new(account: impl Into<String>) -> Self {
        Self {
            account: account.into(),
            sync: None,
            bots: 8,
            room_size: 4,
            duration: Duration::from_secs(10),
            actions_per_sec: 20.0,
            action: ActionTemplate::default(),
            prefix: "bot".into(),
            password: "movan-bot-pass".into(),
            quick_match: false,
            join_timeout: Duration::from_secs(30),
            linger_ticks: 3,
            check_reload: false,
            progress: Arc::default(),
            transport: Transport::Tcp,
        }
    }

    /// The room bot `i` enters (unless quick-matching).
    pub fn room_id(&self, i: usize) -> String {
        format!("{}-room-{}", self.prefix, i / self.room_size.max(1))
    }

    /// Checks the values make sense before anything connects.
    pub fn validate(&self) -> Result<(), String> {
        if self.bots == 0 || self.room_size == 0 {
            return Err("--bots and --room-size must be at least 1".into());
        }
        if !self.actions_per_sec.is_finite() || self.actions_per_sec < 0.0 {
            return Err("--actions-per-sec must be a non-negative number".into());
        }
        movan_protocol::client::validate_room_id(&self.room_id(self.bots - 1))
            .map_err(|e| format!("--prefix gives bad room ids: {e}"))
    }
}

/// The outcome of a bot run; [`Report::passed`] says whether every check held.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Bots started.
    pub bots: usize,
    /// Distinct rooms the bots played in.
    pub rooms: usize,
    /// Frames received, summed over bots (each frame counted once per bot).
    pub frames_received: u64,
    /// Actions sent, summed over bots.
    pub actions_sent: u64,
    /// Own actions found in frames, summed over bots (duplicates included).
    pub actions_seen_own: u64,
    /// Actions sent that never appeared in a frame (not counting [`Report::unconfirmed`] ones).
    pub missing: u64,
    /// Actions sent after the last frame of a game that the room (or its maximum length) ended before the bot
    /// stopped sending: they had no frame to land in. Not a failure.
    #[serde(default)]
    pub unconfirmed: u64,
    /// How the bots' games ended: `game_over` reason → bots that saw it (none when a bot left first).
    #[serde(default)]
    pub game_overs: BTreeMap<String, u64>,
    /// The `results` of each room's `game_over`, when the room set some (a custom room's scores, say).
    #[serde(default)]
    pub results: BTreeMap<String, serde_json::Value>,
    /// Actions that appeared in more than one frame slot.
    pub duplicated: u64,
    /// Times a bot found a frame missing (it then reloaded to fill the gap).
    pub gaps: u64,
    /// Frames whose bytes differed between members of one room, or between live and reload.
    pub desyncs: u64,
    /// Bot failures and server `error` messages.
    pub errors: u64,
    /// The first few error messages.
    pub error_messages: Vec<String>,
    /// True when at least one bot connected and every connection was sealed; false when the server runs with
    /// `encryption = "off"` (or no bot connected).
    #[serde(default)]
    pub encrypted: bool,
}

impl Report {
    /// True when no action went missing or was duplicated, no gap, desync or error occurred, and frames arrived.
    pub fn passed(&self) -> bool {
        self.missing == 0
            && self.duplicated == 0
            && self.gaps == 0
            && self.desyncs == 0
            && self.errors == 0
            && self.frames_received > 0
    }
}

/// Runs every bot to completion and checks what they saw.
pub async fn run(config: &BotConfig) -> Report {
    let runs = run_bots(config).await;
    summarize(config.bots, runs)
}

/// [`run`], also returning every bot's frames, in bot order (`movan-bot --frames-out`).
pub async fn run_recording(config: &BotConfig) -> (Report, Vec<FrameLog>) {
    let runs = run_bots(config).await;
    let logs = runs.iter().map(|run| run.log.clone()).collect();
    (summarize(config.bots, runs), logs)
}

async fn run_bots(config: &BotConfig) -> Vec<BotRun> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..config.bots {
        let config = config.clone();
        tasks.spawn(async move { (i, run_bot(i, &config).await) });
    }
    let mut runs = Vec::with_capacity(config.bots);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, run)) => runs.push((i, run)),
            Err(e) => {
                let mut run = BotRun::default();
                run.error(format!("bot task failed: {e}"));
                runs.push((usize::MAX, run));
            }
        }
    }
    runs.sort_by_key(|(i, _)| *i);
    runs.into_iter().map(|(_, run)| run).collect()
}

/// What one bot saw.
#[derive(Debug, Default)]
struct BotRun {
    room_id: Option<String>,
    game_over: Option<GameOver>,
    /// Whether the connection was sealed; `None` until connected.
    encrypted: Option<bool>,
    log: FrameLog,
    tally: ActionTally,
    gaps: u64,
    desyncs: u64,
    error_count: u64,
    errors: Vec<String>,
}

impl BotRun {
    fn error(&mut self, message: String) {
        tracing::warn!("{message}");
        self.error_count += 1;
        if self.errors.len() < MAX_MESSAGES_PER_BOT {
            self.errors.push(message);
        }
    }
}

async fn run_bot(i: usize, config: &BotConfig) -> BotRun {
    let mut run = BotRun::default();
    if let Err(e) = play(i, config, &mut run).await {
        run.error(format!("bot {i}: {e:#}"));
    }
    run
}

/// One bot's whole life: log in, fill the room, play, verify, leave.
async fn play(i: usize, config: &BotConfig, run: &mut BotRun) -> anyhow::Result<()> {
    let username = format!("{}-{i}", config.prefix);
    let mut session = AccountClient::new(config.account.as_str())
        .register_or_login(&username, &config.password)
        .await
        .with_context(|| format!("logging in as {username}"))?;
    if let Some(addr) = &config.sync {
        match config.transport {
            Transport::Tcp => session.sync_addr.clone_from(addr),
            Transport::Udp => session.sync_udp_addr = Some(addr.clone()),
            Transport::Ws => session.sync_ws_url = Some(addr.clone()),
        }
    }
    let connect = SyncClient::connect_session_via(&session, config.transport);
    let mut client = tokio::time::timeout(config.join_timeout, connect)
        .await
        .map_err(ClientError::from)
        .and_then(|r| r)
        .with_context(|| format!("connecting over {:?} ({})", config.transport, session.sync_addr))?;
    run.encrypted = Some(client.encryption() == Encryption::Sealed);

    let room = (!config.quick_match).then(|| config.room_id(i));
    client.enter_room(room.as_deref()).await?;
    let full = |e: &ServerEvent| matches!(e, ServerEvent::RoomState(s) if s.members.len() >= config.room_size);
    wait_or_fail(client.events(), full, config.join_timeout).await.context("waiting for the room to fill")?;
    client.prepare().await?;
    let started = wait_or_fail(client.events(), |e| matches!(e, ServerEvent::GameStart(_)), config.join_timeout)
        .await
        .context("waiting for game_start")?;
    let ServerEvent::GameStart(start) = started else {
        bail!("expected game_start, got {started:?}");
    };
    tracing::debug!(bot = i, room = %start.room_id, "game started");
    run.room_id = Some(start.room_id);
    let tick = Duration::from_millis(start.frame_interval_ms.max(1));

    let (sender, mut events) = client.split();
    config.progress.playing.fetch_add(1, Ordering::Relaxed);
    let played = receive_while_sending(i, config, tick, &sender, &mut events, run).await;
    config.progress.playing.fetch_sub(1, Ordering::Relaxed);
    played?;
    if config.check_reload {
        check_reload(&sender, &mut events, run).await?;
    }
    if !events.is_closed() {
        // Leave, and wait for `room_left` (or `not_in_room`, when the game already ended) before hanging up: a bare
        // disconnect would keep the seat for the reconnect grace period, and a close with unread data can lose
        // the `room_leave`.
        sender.leave_room().await.context("leaving the room")?;
        events.wait_left(LEAVE_TIMEOUT).await.context("leaving the room")?;
    }
    Ok(())
}

/// Longest wait for the server to confirm a bot's `room_leave`.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits for an event matching `pred`, failing on a server `error` meanwhile.
async fn wait_or_fail(
    events: &mut SyncEvents,
    mut pred: impl FnMut(&ServerEvent) -> bool,
    timeout: Duration,
) -> Result<ServerEvent, ClientError> {
    match events.wait_for(|e| pred(e) || matches!(e, ServerEvent::Error(_)), timeout).await? {
        ServerEvent::Error(body) => Err(body.into()),
        ev => Ok(ev),
    }
}

/// Sends actions on schedule in a separate task while checking every event; returns after the sender finished and
/// `linger_ticks` more ticks passed, or when the game ends.
async fn receive_while_sending(
    i: usize,
    config: &BotConfig,
    tick: Duration,
    sender: &SyncSender,
    events: &mut SyncEvents,
    run: &mut BotRun,
) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let mut send_task = tokio::spawn(send_actions(
        sender.clone(),
        i,
        config.action.clone(),
        config.actions_per_sec,
        config.duration,
        stop.clone(),
        config.progress.clone(),
    ));
    let mut sender_done = false;
    let mut linger_until = Instant::now();
    let outcome: anyhow::Result<()> = loop {
        tokio::select! {
            joined = &mut send_task, if !sender_done => {
                sender_done = true;
                finish_sending(joined, run);
                linger_until = Instant::now() + tick * config.linger_ticks;
            }
            () = sleep_until(linger_until), if sender_done => break Ok(()),
            ev = events.next_event() => match ev {
                None => {
                    let reason = events.close_reason().map_or("end of stream".to_owned(), |e| e.to_string());
                    break Err(anyhow::anyhow!("connection closed during the game: {reason}"));
                }
                Some(ServerEvent::GameOver(over)) => {
                    if !sender_done {
                        if ENDS_OF_PLAY.contains(&over.reason) {
                            run.tally.ended_early = true;
                        } else {
                            run.error(format!("bot {i}: game over ({}) before the bot finished", over.reason));
                        }
                    }
                    run.game_over = Some(over);
                    break Ok(());
                }
                Some(ServerEvent::Frame(frame)) => {
                    config.progress.frames.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = accept_frame(config, frame, sender, events, run).await {
                        break Err(e);
                    }
                }
                Some(ServerEvent::Error(body)) => {
                    run.error(format!("bot {i}: server error {} on {:?}: {}", body.code, body.proto, body.message));
                }
                Some(other) => tracing::trace!(bot = i, ?other, "ignored"),
            }
        }
    };
    if !sender_done {
        stop.cancel();
        finish_sending(send_task.await, run);
    }
    outcome
}

/// `game_over` reasons that end a game by its own rules while bots still play: the room's end (a custom room's
/// winner) and `sync.max_game_secs`.
const ENDS_OF_PLAY: [EndReason; 2] = [EndReason::EndedByRoom, EndReason::MaxDuration];

fn finish_sending(joined: Result<(u64, Option<ClientError>), tokio::task::JoinError>, run: &mut BotRun) {
    match joined {
        Ok((sent, err)) => {
            run.tally.sent = sent;
            if let Some(e) = err {
                run.error(format!("sending actions: {e}"));
            }
        }
        Err(e) => run.error(format!("action sender failed: {e}")),
    }
}

/// Sends `template` (`{"seq": n, "bot": i}` by default) every `1 / rate` seconds for `duration`; returns how many
/// went out.
async fn send_actions(
    sender: SyncSender,
    bot: usize,
    template: ActionTemplate,
    rate: f64,
    duration: Duration,
    stop: CancellationToken,
    progress: Arc<Progress>,
) -> (u64, Option<ClientError>) {
    let end = Instant::now() + duration;
    if rate <= 0.0 {
        stop.run_until_cancelled(sleep_until(end)).await;
        return (0, None);
    }
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    // Open loop: a late tick is made up at once, so the rate holds on average.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut sent = 0u64;
    loop {
        if stop.run_until_cancelled(ticks.tick()).await.is_none() || Instant::now() >= end {
            return (sent, None);
        }
        let action = match serde_json::from_str::<serde_json::Value>(&template.render(sent, bot)) {
            Ok(action) => action,
            Err(e) => return (sent, Some(ClientError::Json(e))),
        };
        if let Err(e) = sender.send_action(&action).await {
            return (sent, Some(e));
        }
        sent += 1;
        progress.actions.fetch_add(1, Ordering::Relaxed);
    }
}

/// Adds a live frame to the log, reloading to fill a gap first.
async fn accept_frame(
    config: &BotConfig,
    frame: Frame,
    sender: &SyncSender,
    events: &mut SyncEvents,
    run: &mut BotRun,
) -> anyhow::Result<()> {
    match run.log.push(frame.clone()) {
        Ok(pushed) => {
            run.count_own(&frame, pushed, sender.uid(), &config.action);
            Ok(())
        }
        Err(FrameLogError::Gap { expected, got }) => {
            run.gaps += 1;
            tracing::warn!(expected, got, "frame gap; reloading");
            sender.request_reload(expected).await?;
            let reloaded = events.recv_reload(expected, RELOAD_TIMEOUT).await.context("reloading to fill a gap")?;
            for f in reloaded.into_iter().chain([frame]) {
                let pushed = run.log.push(f.clone()).context("after reload")?;
                run.count_own(&f, pushed, sender.uid(), &config.action);
            }
            Ok(())
        }
        Err(e @ FrameLogError::Conflict { .. }) => {
            run.desyncs += 1;
            Err(e.into())
        }
    }
}

impl BotRun {
    fn count_own(&mut self, frame: &Frame, pushed: Pushed, uid: &str, template: &ActionTemplate) {
        if pushed == Pushed::Duplicate {
            return;
        }
        for action in frame.actions.iter().filter(|a| a.uid == uid) {
            if let Err(what) = self.tally.record(template, &action.action_data) {
                self.error(format!("frame {}: {what}", frame.frame_count));
            }
        }
    }
}

/// Reloads every frame from 0 and checks the frames also held live are byte-identical.
async fn check_reload(sender: &SyncSender, events: &mut SyncEvents, run: &mut BotRun) -> anyhow::Result<()> {
    sender.request_reload(0).await?;
    let reloaded = events.recv_reload(0, RELOAD_TIMEOUT).await.context("reloading from frame 0")?;
    if reloaded.len() < run.log.len() {
        bail!("reload returned {} frames, fewer than the {} received live", reloaded.len(), run.log.len());
    }
    let differing =
        run.log.frames().iter().zip(&reloaded).filter(|(live, again)| live.raw.get() != again.raw.get()).count();
    run.desyncs += differing as u64;
    Ok(())
}

/// Adds up the bots' results and compares the frames of bots that shared a room.
fn summarize(bots: usize, runs: Vec<BotRun>) -> Report {
    let mut report = Report { bots, ..Report::default() };
    let mut rooms: BTreeMap<&str, Vec<&BotRun>> = BTreeMap::new();
    for run in &runs {
        if let Some(room) = &run.room_id {
            rooms.entry(room).or_default().push(run);
        }
        report.frames_received += run.log.len() as u64;
        report.actions_sent += run.tally.sent;
        report.actions_seen_own += run.tally.seen_total();
        report.missing += run.tally.missing();
        report.unconfirmed += run.tally.unconfirmed();
        if let Some(over) = &run.game_over {
            *report.game_overs.entry(over.reason.as_str().to_owned()).or_default() += 1;
            if let Some(results) = &over.results {
                report.results.entry(over.room_id.clone()).or_insert_with(|| results.clone());
            }
        }
        report.duplicated += run.tally.duplicated();
        report.gaps += run.gaps;
        report.desyncs += run.desyncs;
        report.errors += run.error_count;
        report.error_messages.extend(run.errors.iter().cloned());
        let unknown = run.tally.unknown();
        if unknown > 0 {
            report.errors += 1;
            report.error_messages.push(format!("{unknown} own actions seen that were never sent"));
        }
    }
    report.rooms = rooms.len();
    let mut connected = runs.iter().filter_map(|run| run.encrypted).peekable();
    report.encrypted = connected.peek().is_some() && connected.all(|sealed| sealed);
    for members in rooms.values() {
        report.desyncs += room_desyncs(members);
    }
    report
}

/// Frames a member of the room holds with different bytes than the member holding the most frames.
fn room_desyncs(members: &[&BotRun]) -> u64 {
    let Some(reference) = members.iter().max_by_key(|run| run.log.len()) else {
        return 0;
    };
    let reference = reference.log.frames();
    members
        .iter()
        .map(|run| run.log.frames().iter().zip(reference).filter(|(a, b)| a.raw.get() != b.raw.get()).count() as u64)
        .sum()
}

#[cfg(test)]
mod tests;
