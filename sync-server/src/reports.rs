//! Finished games on their way to the account server: the match report (`report_match`), then the replay in chunks
//! (`replay_chunk`), in the order the games ended.
//!
//! While the account server is away the games wait in a backlog bounded in count ([`REPORT_BACKLOG`]) and in replay
//! bytes (`sync.replay_backlog_bytes`): past either, the oldest replays (then the oldest reports) are dropped, with a
//! warning each.

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use movan_protocol::rpc::{ChunkStored, REPLAY_CHUNK, REPLAY_CHUNK_BYTES, REPORT_MATCH, ReplayChunk, Stored, codes};
use movan_rpc::{CallError, RpcClient};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::engine::FinishedGame;

/// Match reports kept while the account server is unreachable; the oldest are dropped beyond it.
pub const REPORT_BACKLOG: usize = 10_000;
/// Attempts at a report or a replay the account server keeps refusing (other than by being away) before it is
/// dropped.
const ATTEMPTS: u32 = 5;
/// Pause after a refused attempt.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// How the loop sends.
#[derive(Debug, Clone, Copy)]
pub struct ReportSettings {
    /// Bytes of replays the backlog holds at most.
    pub backlog_bytes: usize,
    /// Replay bytes per `replay_chunk` call (fits the RPC frame limit once in base64).
    pub chunk_bytes: usize,
}

impl ReportSettings {
    /// Settings for an RPC link whose frames hold at most `max_frame_bytes`.
    pub fn new(backlog_bytes: usize, max_frame_bytes: usize) -> Self {
        // base64 grows 3 bytes to 4; keep 1 KiB for the envelope and the other fields.
        let fits = max_frame_bytes.saturating_sub(1024) / 4 * 3;
        Self { backlog_bytes, chunk_bytes: fits.clamp(1024, REPLAY_CHUNK_BYTES) }
    }
}

/// Waiting games, bounded.
#[derive(Debug, Default)]
struct Backlog {
    games: VecDeque<FinishedGame>,
    replay_bytes: usize,
}

impl Backlog {
    fn push(&mut self, game: FinishedGame, settings: &ReportSettings) {
        if self.games.len() == REPORT_BACKLOG
            && let Some(old) = self.games.pop_front()
        {
            warn!(match_id = %old.report.match_id, "match report backlog full: dropping the oldest report");
            self.replay_bytes -= old.replay.as_ref().map_or(0, Vec::len);
        }
        self.replay_bytes += game.replay.as_ref().map_or(0, Vec::len);
        self.games.push_back(game);
        // Oldest replays go first: their reports stay.
        let mut i = 0;
        while self.replay_bytes > settings.backlog_bytes && i < self.games.len() {
            if let Some(replay) = self.games[i].replay.take() {
                warn!(match_id = %self.games[i].report.match_id, bytes = replay.len(), "sync.replay_backlog_bytes reached: dropping a replay that waits for the account server");
                self.replay_bytes -= replay.len();
            }
            i += 1;
        }
    }

    fn pop_front(&mut self) {
        if let Some(game) = self.games.pop_front() {
            self.replay_bytes -= game.replay.as_ref().map_or(0, Vec::len);
        }
    }
}

/// What one attempt at the front game came to.
enum Step {
    /// Done with it (sent, or given up).
    Done,
    /// The link is down: wait for it.
    Disconnected,
    /// Refused for a passing reason: try again after a pause.
    Retry,
}

/// The first connected of `clients`, waiting up to 5 s for one.
async fn connected(clients: &[RpcClient]) -> Option<&RpcClient> {
    for _ in 0..50 {
        if let Some(client) = clients.iter().find(|c| c.is_connected()) {
            return Some(client);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Sends games in order, each to the first connected account server; on failure keeps them (bounded) and retries
/// once a link is back.
pub async fn report_loop(clients: Vec<RpcClient>, mut games: mpsc::Receiver<FinishedGame>, settings: ReportSettings) {
    let mut backlog = Backlog::default();
    let mut failures = 0u32;
    // The match whose report is stored while its replay is not (it is at the front unless the backlog dropped it).
    let mut reported: Option<String> = None;
    loop {
        if backlog.games.is_empty() {
            match games.recv().await {
                Some(game) => backlog.push(game, &settings),
                None => return,
            }
        }
        while let Ok(game) = games.try_recv() {
            backlog.push(game, &settings);
        }
        let Some(game) = backlog.games.front() else { continue };
        let Some(client) = connected(&clients).await else { continue };
        let is_reported = reported.as_deref() == Some(game.report.match_id.as_str());
        let step = if is_reported {
            upload_replay(client, game, settings.chunk_bytes).await
        } else {
            report(client, game).await
        };
        match step {
            Step::Done => {
                failures = 0;
                if is_reported || game.replay.is_none() {
                    backlog.pop_front();
                    reported = None;
                } else {
                    reported = Some(game.report.match_id.clone());
                }
            }
            // The next turn waits for a connected link.
            Step::Disconnected => tokio::time::sleep(Duration::from_millis(100)).await,
            Step::Retry => {
                failures += 1;
                if failures >= ATTEMPTS {
                    warn!(match_id = %game.report.match_id, failures, is_reported, "giving up on this game's report or replay");
                    backlog.pop_front();
                    (failures, reported) = (0, None);
                } else {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }
}

async fn report(client: &RpcClient, game: &FinishedGame) -> Step {
    match client.call::<_, Stored>(REPORT_MATCH, &game.report).await {
        Ok(_) => Step::Done,
        Err(CallError::Disconnected | CallError::Unauthenticated) => Step::Disconnected,
        Err(e) => {
            // Timeouts and store failures are usually passing; a report refused again and again is dropped.
            warn!(error = %e, match_id = %game.report.match_id, "report_match failed");
            Step::Retry
        }
    }
}

/// Sends the whole replay of `game` from offset 0.
async fn upload_replay(client: &RpcClient, game: &FinishedGame, chunk_bytes: usize) -> Step {
    let Some(replay) = game.replay.as_deref() else { return Step::Done };
    let match_id = &game.report.match_id;
    let mut offset = 0usize;
    loop {
        let end = (offset + chunk_bytes).min(replay.len());
        let chunk = ReplayChunk {
            match_id: match_id.clone(),
            offset: offset as u64,
            total_len: replay.len() as u64,
            data: STANDARD.encode(&replay[offset..end]),
        };
        match client.call::<_, ChunkStored>(REPLAY_CHUNK, &chunk).await {
            Ok(reply) if reply.stored => {
                crate::metrics::get().replay_bytes.increment(replay.len() as u64);
                info!(%match_id, bytes = replay.len(), "replay stored");
                return Step::Done;
            }
            Ok(reply) if reply.received == end as u64 && end < replay.len() => offset = end,
            Ok(reply) => {
                warn!(%match_id, received = reply.received, sent_through = end, "replay upload out of step; starting over");
                return Step::Retry;
            }
            Err(CallError::Disconnected | CallError::Unauthenticated) => return Step::Disconnected,
            Err(e) if e.code() == codes::UNKNOWN_MATCH || e.code() == codes::REPLAY_TOO_LARGE => {
                warn!(error = %e, %match_id, bytes = replay.len(), "the account server refuses this replay; dropping it");
                return Step::Done;
            }
            Err(e) => {
                warn!(error = %e, %match_id, offset, "replay_chunk failed");
                return Step::Retry;
            }
        }
    }
}
