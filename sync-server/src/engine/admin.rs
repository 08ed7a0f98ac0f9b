//! What an admin does to a node through the account server: list its rooms, end a room, kick a player.

use movan_protocol::rpc::{RoomMemberSummary, RoomSummary};
use movan_protocol::server::LEFT_ROOM_CLOSED;

use super::*;

/// [`Engine::end_room`] found no such room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this node has no room {0:?}")]
pub struct NoSuchRoom(pub String);

impl Engine {
    /// Up to `limit` rooms, by id, and whether there were more.
    pub fn room_summaries(&self, limit: usize) -> (Vec<RoomSummary>, bool) {
        let mut ids: Vec<&Arc<str>> = self.rooms.keys().collect();
        ids.sort_unstable();
        let truncated = ids.len() > limit;
        let rooms = ids
            .into_iter()
            .take(limit)
            .filter_map(|id| self.rooms.get(id))
            .map(|room| RoomSummary {
                room_id: room.id.to_string(),
                state: if room.game.is_some() { "playing" } else { "waiting" }.to_owned(),
                members: room
                    .members
                    .iter()
                    .map(|m| RoomMemberSummary { uid: m.uid.clone(), ready: m.ready, connected: m.connected })
                    .collect(),
                spectators: room.spectators.len() as u64,
                frame_count: room.game.as_ref().map_or(0, |g| g.history.next_frame()),
                started_at: room.game.as_ref().map(|g| g.start.start_time),
            })
            .collect();
        (rooms, truncated)
    }

    /// Ends room `room_id`: a running game ends with `game_over` reason `ended_by_admin` and results
    /// `{"reason": reason}` (true); a waiting room is closed, its members told `room_left` with reason `room_closed`
    /// (false).
    pub fn end_room(&mut self, room_id: &str, reason: &str, now: Instant) -> Result<bool, NoSuchRoom> {
        let Some((id, room)) = self.rooms.get_key_value(room_id) else {
            return Err(NoSuchRoom(room_id.to_owned()));
        };
        let (id, playing) = (id.clone(), room.game.is_some());
        if playing {
            let results = serde_json::json!({ "reason": reason });
            self.end_game(&id, EndReason::EndedByAdmin, Some(results), now);
        } else {
            self.close_room_before_game(&id, LEFT_ROOM_CLOSED, format!("an admin closed the room: {reason}"));
        }
        Ok(playing)
    }

    /// An admin kicked `uid`: its connection (if any) gets `error` `kicked` with `reason` and is closed, and it is
    /// out of its room at once. It may log in and play again. False when this node does not know the player.
    pub fn admin_kick(&mut self, uid: &str, reason: &str, now: Instant) -> bool {
        if !self.players.contains_key(uid) {
            return false;
        }
        let e = ProtocolError::new(ErrorCode::Kicked, format!("an admin took you out: {reason}"));
        self.kick(uid, &e, now);
        true
    }
}
