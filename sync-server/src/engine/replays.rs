//! Replays: every game is recorded as it runs (each frame as broadcast and each checksum comparison, in zstd blocks)
//! and handed over with its match report when it ends ([`FinishedGame`]), for the account server to keep.
//!
//! Bounded twice: one game's replay holds at most `sync.replay_max_bytes`, and the replays of all running games
//! together at most `sync.replay_memory_bytes`. A replay that reaches either stops recording and says `truncated`.

use movan_protocol::checksum::Desync;
use movan_protocol::replay::{GameSummary, ReplayWriter};
use tracing::warn;

use super::*;

/// A game that ended: its report, and its replay file (`None` when replays are off).
#[derive(Debug)]
pub struct FinishedGame {
    /// The match report for the account server.
    pub report: MatchReport,
    /// The replay file (docs/replay.md), byte for byte what the account server serves.
    pub replay: Option<Vec<u8>>,
}

/// The bytes every running game's recording holds, against `sync.replay_memory_bytes`.
#[derive(Debug, Default)]
pub(super) struct ReplayBudget {
    pub(super) held: usize,
}

impl ReplayBudget {
    /// Records `body` (frame `frame`'s `sync_frame` message) in `writer`, unless that would take the recordings of
    /// all games over `limit` bytes: then this game's replay ends here, truncated.
    pub(super) fn record(&mut self, writer: &mut ReplayWriter, body: &[u8], limit: usize, room: &str) {
        if writer.is_truncated() {
            return;
        }
        let before = writer.bytes();
        if self.held + body.len() + 4 > limit {
            warn!(
                room,
                frames = writer.frames(),
                held = self.held,
                "sync.replay_memory_bytes reached: the replay of this game is truncated"
            );
            writer.truncate();
            return;
        }
        writer.push_frame(body);
        self.held = self.held - before + writer.bytes();
        if writer.is_truncated() {
            warn!(
                room,
                frames = writer.frames(),
                "sync.replay_max_bytes reached: the replay of this game is truncated"
            );
        }
    }

    /// Gives back what a finished (or dropped) recording held.
    pub(super) fn release(&mut self, writer: &ReplayWriter) {
        self.held = self.held.saturating_sub(writer.bytes());
    }
}

impl Engine {
    /// The replay file of room `id`'s game, which ends now with `report`.
    pub(super) fn finish_replay(&mut self, id: &Arc<str>, report: &MatchReport) -> Option<Vec<u8>> {
        let game = self.rooms.get_mut(id)?.game.as_mut()?;
        let writer = game.replay.take()?;
        self.replay_budget.release(&writer);
        let summary = GameSummary {
            match_id: report.match_id.clone(),
            room_id: report.room_id.clone(),
            players: game.players.clone(),
            seed: game.start.seed,
            frame_interval_ms: game.start.frame_interval_ms,
            checksum_interval: game.start.checksum_interval,
            started_at: game.start.start_time,
            ended_at: report.ended_at,
            end_reason: report.end_reason,
            results: report.results.clone(),
            first_desync_frame: report.first_desync_frame,
            game_frame_count: report.frame_count,
        };
        Some(writer.finish(summary))
    }
}

/// Records a finished checksum comparison of `frame` in `game`'s replay: everyone reported `agreed`, or `desync`.
pub(super) fn record_checksum(game: &mut Game, frame: u64, agreed: Option<&str>, desync: Option<&Desync>) {
    if let Some(writer) = game.replay.as_mut() {
        writer.push_checksum(frame, agreed, desync);
    }
}
