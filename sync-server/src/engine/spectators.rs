//! Spectators: `room_spectate` on a waiting or running room. A spectator is not a member: it takes no seat, does
//! not count for the start and cannot act. It gets `room_state` (which counts spectators), the `game_start`, the
//! history as a reload, then every frame `sync.spectator_delay_frames` frames after the players, the same bytes, and
//! `game_over`. It leaves with `room_leave`, or by closing its connection (no reconnect grace).

use movan_protocol::server::{LEFT_ROOM_CLOSED, frame_message};

use super::*;

impl Engine {
    /// `room_spectate`: watch room `room_id` on connection `conn`.
    pub(super) fn spectate(&mut self, conn: ConnId, uid: &Arc<str>, room_id: String) -> Outcome {
        if let Some(current) = self.player_room(uid).or_else(|| self.spectated_room(uid)) {
            return Err(ProtocolError::new(
                ErrorCode::AlreadyInRoom,
                format!("already in room {current:?}; send room_leave first"),
            ));
        }
        // Watching a running game starts a reload of its history: one at a time, as for sync_request_reload_frames.
        self.check_no_reload(conn)?;
        let max = self.config.max_spectators;
        let Some((id, room)) = self.rooms.get_key_value(room_id.as_str()) else {
            return Err(ProtocolError::new(ErrorCode::RoomNotFound, format!("there is no room {room_id:?}")));
        };
        if room.spectators.len() >= max {
            return Err(ProtocolError::new(
                ErrorCode::RoomFull,
                format!("room {room_id:?} has all its {max} spectator places taken (sync.max_spectators)"),
            ));
        }
        let id = id.clone();
        let (chunk_frames, chunk_bytes) = (self.config.reload_chunk_frames, self.config.reload_chunk_bytes);
        let delay = self.config.spectator_delay_frames;
        let Some(room) = self.rooms.get_mut(&id) else { return Err(internal("room vanished")) };
        room.spectators.push((uid.clone(), conn));
        self.players.entry(uid.clone()).or_default().spectating = Some(id.clone());
        self.broadcast_room_state(&id);
        let Some(game) = self.rooms.get(&id).and_then(|r| r.game.as_ref()) else { return Ok(()) };
        // What the players have seen, up to where the delayed stream goes on.
        let frontier = game.history.next_frame().saturating_sub(delay);
        let oldest = game.history.oldest();
        let reload = if oldest <= frontier {
            let reload =
                game.history.reload(oldest, chunk_frames, chunk_bytes).map_err(|e| internal(&e.to_string()))?;
            Some(reload.until(frontier))
        } else {
            None // The history is shorter than the delay (sync.history_secs): the delayed stream starts later.
        };
        let start_wire = game.start_wire.clone();
        self.send(conn, start_wire);
        let Some(mut reload) = reload else { return Ok(()) };
        let token = Arc::new(());
        self.reloads.insert(conn, Arc::downgrade(&token));
        reload.hold(token);
        crate::metrics::get().reloads.increment(1);
        self.outputs.push_back(Output::Reload { conn, reload });
        Ok(())
    }

    /// The room `uid` watches, if any.
    pub(super) fn spectated_room(&self, uid: &str) -> Option<Arc<str>> {
        self.players.get(uid).and_then(|p| p.spectating.clone())
    }

    /// `uid` stops watching; the room's members (and other spectators) get the new count. Returns the room.
    pub(super) fn stop_spectating(&mut self, uid: &str) -> Option<Arc<str>> {
        let id = self.players.get_mut(uid)?.spectating.take()?;
        if let Some(room) = self.rooms.get_mut(&id) {
            room.spectators.retain(|(u, _)| &**u != uid);
            self.broadcast_room_state(&id);
        }
        Some(id)
    }

    /// The room closes without a game: every spectator gets `room_left` with reason `room_closed`.
    pub(super) fn dismiss_spectators(&mut self, id: &Arc<str>) {
        let Some(room) = self.rooms.get_mut(id) else { return };
        let spectators = std::mem::take(&mut room.spectators);
        for (uid, conn) in spectators {
            if let Some(p) = self.players.get_mut(&uid) {
                p.spectating = None;
            }
            let left = RoomLeft {
                room_id: id.to_string(),
                reason: Some(LEFT_ROOM_CLOSED.into()),
                message: Some("the last player left the room before a game started".into()),
            };
            self.send(conn, ServerMessage::RoomLeft(left).to_body());
        }
    }

    /// After frame `frame` of room `id` was broadcast: the spectators get the frame their delay lets them see now.
    pub(super) fn feed_spectators(&mut self, id: &Arc<str>, frame: u64, live: &Bytes) {
        let Some(room) = self.rooms.get(id) else { return };
        if room.spectators.is_empty() {
            return;
        }
        let delay = self.config.spectator_delay_frames;
        let body = if delay == 0 {
            Some(live.clone())
        } else {
            let game = room.game.as_ref();
            frame.checked_sub(delay).and_then(|f| game?.history.frame(f)).map(|f| frame_message(&f))
        };
        if let Some(body) = body {
            for (_, conn) in &room.spectators {
                self.outputs.push_back(Output::Send { conn: *conn, bytes: body.clone() });
            }
        }
    }

    /// The game of room `id` ends: its spectators get the frames their delay still held back, before `game_over`.
    pub(super) fn flush_spectators(&mut self, id: &Arc<str>) {
        let delay = self.config.spectator_delay_frames;
        let Some(room) = self.rooms.get(id) else { return };
        let Some(game) = room.game.as_ref() else { return };
        if delay == 0 || room.spectators.is_empty() {
            return;
        }
        let next = game.history.next_frame();
        for f in next.saturating_sub(delay)..next {
            let Some(frame) = game.history.frame(f) else { continue };
            let body = frame_message(&frame);
            for (_, conn) in &room.spectators {
                self.outputs.push_back(Output::Send { conn: *conn, bytes: body.clone() });
            }
        }
    }

    /// The error for a request only players may make, sent by someone in no room or watching one.
    pub(super) fn not_playing(&self, uid: &str) -> ProtocolError {
        match self.spectated_room(uid) {
            Some(id) => ProtocolError::new(
                ErrorCode::NotInRoom,
                format!("you are watching room {id:?}: spectators cannot play (room_leave, then room_enter)"),
            ),
            None => not_in_room(),
        }
    }
}
