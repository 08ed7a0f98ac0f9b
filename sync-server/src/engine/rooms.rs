//! Rooms: entering (by id or quick match), seats, leaving, readiness, and the `room_state` broadcast.
//! Creating rooms and quick match are in `waiting`.

use super::*;

impl Engine {
    pub(super) fn enter_room(&mut self, uid: &Arc<str>, room_id: Option<String>, now: Instant) -> Outcome {
        if let Some(current) = self.player_room(uid).or_else(|| self.spectated_room(uid)) {
            return Err(ProtocolError::new(
                ErrorCode::AlreadyInRoom,
                format!("already in room {current:?}; send room_leave first"),
            ));
        }
        // A late join starts a reload of the history: one at a time per connection.
        let playing = room_id.as_deref().is_some_and(|id| self.rooms.get(id).is_some_and(|r| r.game.is_some()));
        if let Some(conn) = self.players.get(uid).and_then(|p| p.conn).filter(|_| playing) {
            self.check_no_reload(conn)?;
        }
        let (id, created) = match room_id {
            Some(id) => match self.rooms.get_key_value(id.as_str()) {
                Some((k, _)) => (k.clone(), false),
                None => (self.create_room(Arc::from(id), uid, false, now)?, true),
            },
            None => match self.quick_match(uid, now) {
                Some(id) => (id, false),
                None => {
                    let id = self.fresh_room_id();
                    (self.create_room(id, uid, true, now)?, true)
                }
            },
        };
        if let Err(e) = self.seat(uid, &id) {
            if created {
                self.free_room(&id);
            }
            return Err(e);
        }
        self.players.entry(uid.clone()).or_default().room = Some(id.clone());
        self.players_in_rooms += 1;
        self.broadcast_room_state(&id);
        if self.rooms.get(&id).is_some_and(|r| r.game.is_some()) {
            self.join_running_game(uid, &id);
        }
        self.maybe_start(&id, now);
        Ok(())
    }

    pub(super) fn seat(&mut self, uid: &Arc<str>, id: &Arc<str>) -> Outcome {
        let conn = self.players.get(uid).and_then(|p| p.conn);
        let room = self.rooms.get_mut(id).ok_or_else(|| internal("room vanished"))?;
        let info = room_info!(room);
        let joined_frame = match &room.game {
            Some(game)
                if room.members.len() < room.capacity as usize && room.rules.can_join_in_progress(&info, uid) =>
            {
                Some(game.history.next_frame())
            }
            Some(_) => {
                return Err(ProtocolError::new(ErrorCode::RoomInGame, format!("room {id:?} is already playing")));
            }
            None => None,
        };
        if room.members.len() >= room.capacity as usize {
            return Err(ProtocolError::new(
                ErrorCode::RoomFull,
                format!("room {id:?} is full ({} seats)", room.capacity),
            ));
        }
        let info = room_info!(room);
        room.rules
            .can_join(&info, uid)
            .map_err(|why| ProtocolError::new(ErrorCode::RoomFull, format!("room {id:?} refused: {why}")))?;
        room.members.push(MemberInfo {
            uid: uid.to_string(),
            ready: joined_frame.is_some(),
            connected: conn.is_some(),
            joined_frame,
        });
        room.member_conns.push(conn);
        Ok(())
    }

    /// `room_leave`: leaves, then tells the leaver `room_left`, after everything it got from the room.
    pub(super) fn request_leave(&mut self, conn: ConnId, uid: &Arc<str>, now: Instant) -> Outcome {
        let Some(room_id) = self.player_room(uid) else {
            let id = self.stop_spectating(uid).ok_or_else(not_in_room)?;
            self.send(conn, ServerMessage::RoomLeft(RoomLeft::asked(id.to_string())).to_body());
            return Ok(());
        };
        self.leave_room(uid, now);
        let left = ServerMessage::RoomLeft(RoomLeft::asked(room_id.to_string()));
        self.send(conn, left.to_body());
        Ok(())
    }

    /// Removes `uid` from its room, telling the others, and ends or frees the room when it empties.
    pub(super) fn leave_room(&mut self, uid: &Arc<str>, now: Instant) {
        let Some(id) = self.players.get_mut(uid).and_then(|p| p.room.take()) else {
            return;
        };
        self.players_in_rooms -= 1;
        let Some(room) = self.rooms.get_mut(&id) else {
            return;
        };
        room.remove_member(uid);
        let empty = room.members.is_empty();
        if room.game.is_some() {
            let info = room_info!(room);
            room.rules.on_leave(&info, uid);
            if empty {
                self.end_game(&id, EndReason::AllLeft, None, now);
                return;
            }
        } else if empty {
            self.dismiss_spectators(&id);
            self.free_room(&id);
            return;
        }
        self.broadcast_room_state(&id);
        self.maybe_start(&id, now);
    }

    pub(super) fn prepare(&mut self, uid: &Arc<str>, now: Instant) -> Outcome {
        let id = self.player_room(uid).ok_or_else(|| self.not_playing(uid))?;
        let room = self.rooms.get_mut(&id).ok_or_else(not_in_room)?;
        if room.game.is_some() {
            return Err(ProtocolError::new(ErrorCode::RoomInGame, "the game has already started"));
        }
        let Some(member) = room.members.iter_mut().find(|m| *m.uid == **uid) else {
            return Err(not_in_room());
        };
        if !member.ready {
            member.ready = true;
            room.waiting_since = now;
            self.broadcast_room_state(&id);
        }
        self.maybe_start(&id, now);
        Ok(())
    }

    pub(super) fn broadcast_room_state(&mut self, id: &Arc<str>) {
        let Some(room) = self.rooms.get(id) else {
            return;
        };
        let state = ServerMessage::RoomState(RoomState {
            room_id: id.to_string(),
            capacity: room.capacity,
            min_players: room.min_players,
            status: if room.game.is_some() { RoomStatus::Playing } else { RoomStatus::Waiting },
            members: room
                .members
                .iter()
                .map(|m| MemberState {
                    uid: m.uid.clone(),
                    ready: m.ready,
                    connected: m.connected,
                    joined_frame: m.joined_frame,
                })
                .collect(),
            spectators: room.spectators.len() as u32,
        });
        self.broadcast(id, state.to_body());
    }
}

impl RoomSlot {
    /// The `game_start` member `uid` gets (again, after a reconnect): the game's, or for a late joiner its own,
    /// with the members as they are now and `joined_frame`. `None` when no game runs.
    pub(super) fn start_message_for(&self, uid: &str) -> Option<Bytes> {
        let game = self.game.as_ref()?;
        match self.members.iter().find(|m| m.uid == uid).and_then(|m| m.joined_frame) {
            None => Some(game.start_wire.clone()),
            Some(joined) => {
                let start = GameStart {
                    members: self.members.iter().map(|m| m.uid.clone()).collect(),
                    joined_frame: Some(joined),
                    ..game.start.clone()
                };
                Some(ServerMessage::GameStart(start).to_body())
            }
        }
    }

    pub(super) fn remove_member(&mut self, uid: &str) {
        if let Some(i) = self.members.iter().position(|m| m.uid == uid) {
            self.members.remove(i);
            self.member_conns.remove(i);
        }
    }

    pub(super) fn set_conn(&mut self, uid: &str, conn: Option<ConnId>) {
        if let Some(i) = self.members.iter().position(|m| m.uid == uid) {
            self.members[i].connected = conn.is_some();
            self.member_conns[i] = conn;
        }
    }
}
