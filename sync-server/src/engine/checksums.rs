//! Desync detection: collecting the players' `sync_checksum` reports, comparing them once every connected member
//! reported a frame (or its deadline passed), telling everyone `desync`, and carrying out what the room decides.
//!
//! Bounded: a game keeps at most [`MAX_OPEN_COMPARISONS`] unfinished comparisons, each with at most one hash of at
//! most 64 bytes per player. A report for a frame at or before the newest comparison already made is late and
//! ignored.

use movan_protocol::checksum::{Desync, LEFT_DESYNC};

use super::*;
use crate::room::DesyncVerdict;

/// Unfinished comparisons a game keeps; a report for a further frame first settles the oldest with what it has.
pub const MAX_OPEN_COMPARISONS: usize = 8;

/// A game's checksum state.
#[derive(Debug, Default)]
pub(super) struct Checksums {
    /// Frames with reports not yet compared, and when each must be compared at the latest.
    open: BTreeMap<u64, Comparison>,
    /// The newest frame compared: reports for it or older ones are ignored.
    compared_through: Option<u64>,
    /// The first frame whose checksums disagreed.
    pub(super) first_desync: Option<u64>,
}

impl Checksums {
    /// Comparisons not made yet.
    #[cfg(test)]
    pub(super) fn open_count(&self) -> usize {
        self.open.len()
    }
}

#[derive(Debug)]
struct Comparison {
    deadline: Instant,
    reports: Vec<(Arc<str>, String)>,
}

impl Engine {
    /// `sync_checksum`: records `uid`'s hash of `frame`, and compares the frame once every connected member has one.
    pub(super) fn checksum(&mut self, uid: &Arc<str>, frame: u64, hash: String, now: Instant) -> Outcome {
        let interval = self.config.checksum_interval;
        if interval == 0 {
            return Err(ProtocolError::new(
                ErrorCode::BadMessage,
                "this server compares no checksums (sync.checksum_interval = 0): do not send sync_checksum",
            ));
        }
        let id = self.player_room(uid).ok_or_else(|| self.not_playing(uid))?;
        let timeout = self.config.checksum_timeout;
        let room = self.rooms.get_mut(&id).ok_or_else(not_in_room)?;
        let game = room
            .game
            .as_mut()
            .ok_or_else(|| ProtocolError::new(ErrorCode::GameNotRunning, "the game has not started"))?;
        if !frame.is_multiple_of(interval) {
            return Err(ProtocolError::new(
                ErrorCode::BadFrameRange,
                format!("frame {frame} is not a multiple of the checksum interval {interval}"),
            ));
        }
        if frame >= game.history.next_frame() {
            return Err(ProtocolError::new(
                ErrorCode::BadFrameRange,
                format!("frame {frame} has not been broadcast yet (next frame {})", game.history.next_frame()),
            ));
        }
        let sums = &mut game.checksums;
        if sums.compared_through.is_some_and(|done| frame <= done) {
            return Ok(());
        }
        let mut settle_first = None;
        if let Some(open) = sums.open.get_mut(&frame) {
            if open.reports.iter().any(|(u, _)| u == uid) {
                return Err(ProtocolError::new(
                    ErrorCode::BadMessage,
                    format!("you already sent the checksum of frame {frame}"),
                ));
            }
            open.reports.push((uid.clone(), hash));
        } else {
            if sums.open.len() >= MAX_OPEN_COMPARISONS {
                settle_first = sums.open.keys().next().copied();
            }
            sums.open.insert(frame, Comparison { deadline: now + timeout, reports: vec![(uid.clone(), hash)] });
        }
        if let Some(oldest) = settle_first {
            self.compare_checksums(&id, oldest, now);
        }
        if self.rooms.get(&id).is_some_and(|room| room.all_reported(frame)) {
            self.compare_checksums(&id, frame, now);
        }
        Ok(())
    }

    /// Compares every frame of room `id` whose deadline passed by `now`.
    pub(super) fn expire_checksums(&mut self, id: &Arc<str>, now: Instant) {
        let due: Vec<u64> = match self.rooms.get(id).and_then(|r| r.game.as_ref()) {
            Some(game) => game.checksums.open.iter().filter(|(_, c)| c.deadline <= now).map(|(f, _)| *f).collect(),
            None => return,
        };
        for frame in due {
            self.compare_checksums(id, frame, now);
        }
    }

    /// Compares `frame` and every older frame still open in room `id`, oldest first.
    fn compare_checksums(&mut self, id: &Arc<str>, frame: u64, now: Instant) {
        loop {
            let oldest = self.rooms.get(id).and_then(|r| r.game.as_ref()).and_then(|g| g.checksums.open.keys().next());
            match oldest.copied() {
                Some(next) if next <= frame => self.compare_one(id, next, now),
                _ => return,
            }
        }
    }

    /// Compares the reports of `frame` and, if they disagree, tells every member and does what the room decides.
    fn compare_one(&mut self, id: &Arc<str>, frame: u64, now: Instant) {
        let Some(room) = self.rooms.get_mut(id) else { return };
        let Some(game) = room.game.as_mut() else { return };
        let Some(open) = game.checksums.open.remove(&frame) else { return };
        game.checksums.compared_through = game.checksums.compared_through.max(Some(frame));
        let Some(desync) = Desync::compare(frame, open.reports.iter().map(|(u, h)| (&**u, h.as_str()))) else {
            replays::record_checksum(game, frame, open.reports.first().map(|(_, h)| h.as_str()), None);
            return;
        };
        replays::record_checksum(game, frame, None, Some(&desync));
        game.checksums.first_desync.get_or_insert(frame);
        crate::metrics::get().desyncs.increment(1);
        self.broadcast(id, ServerMessage::Desync(desync.clone()).to_body());
        let Some(room) = self.rooms.get_mut(id) else { return };
        let info = room_info!(room);
        match room.rules.on_desync(&info, &desync) {
            DesyncVerdict::Continue => {}
            DesyncVerdict::End { results } => self.end_game(id, EndReason::Desync, results, now),
            DesyncVerdict::DropMinority => {
                for uid in desync.diverged() {
                    self.drop_for_desync(id, uid, now);
                }
            }
        }
    }

    /// Takes `uid` out of room `id` (if it is still in it), telling it `room_left` with reason `desync`.
    fn drop_for_desync(&mut self, id: &Arc<str>, uid: &str, now: Instant) {
        let Some((uid, player)) = self.players.get_key_value(uid) else { return };
        if player.room.as_ref() != Some(id) {
            return;
        }
        let (uid, conn) = (uid.clone(), player.conn);
        self.leave_room(&uid, now);
        if let Some(conn) = conn {
            let left = RoomLeft {
                room_id: id.to_string(),
                reason: Some(LEFT_DESYNC.into()),
                message: Some("your checksum disagreed with the majority's; the room took you out of the game".into()),
            };
            self.send(conn, ServerMessage::RoomLeft(left).to_body());
        }
    }
}

impl RoomSlot {
    /// Whether every connected member has reported `frame`, which is still open.
    fn all_reported(&self, frame: u64) -> bool {
        let Some(open) = self.game.as_ref().and_then(|g| g.checksums.open.get(&frame)) else { return false };
        let reported = |uid: &str| open.reports.iter().any(|(u, _)| &**u == uid);
        self.members.iter().filter(|m| m.connected).all(|m| reported(&m.uid))
    }
}
