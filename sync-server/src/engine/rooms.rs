//! Rooms: entering (by id or quick match), seats, leaving, readiness, and the `room_state` broadcast.

use super::*;

impl Engine {
    pub(super) fn enter_room(&mut self, uid: &Arc<str>, room_id: Option<String>, now: Instant) -> Outcome {
        if let Some(current) = self.player_room(uid) {
            return Err(ProtocolError::new(
                ErrorCode::AlreadyInRoom,
                format!("already in room {current:?}; send room_leave first"),
            ));
        }
        let (id, created) = match room_id {
            Some(id) => match self.rooms.get_key_value(id.as_str()) {
                Some((k, _)) => (k.clone(), false),
                None => (self.create_room(Arc::from(id))?, true),
            },
            None => match self.quick_match(uid) {
                Some(id) => (id, false),
                None => {
                    let id = self.fresh_room_id();
                    (self.create_room(id)?, true)
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
        self.maybe_start(&id, now);
        Ok(())
    }

    pub(super) fn seat(&mut self, uid: &Arc<str>, id: &Arc<str>) -> Outcome {
        let conn = self.players.get(uid).and_then(|p| p.conn);
        let room = self.rooms.get_mut(id).ok_or_else(|| internal("room vanished"))?;
        if room.game.is_some() {
            return Err(ProtocolError::new(ErrorCode::RoomInGame, format!("room {id:?} is already playing")));
        }
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
        room.members.push(MemberInfo { uid: uid.to_string(), ready: false, connected: conn.is_some() });
        room.member_conns.push(conn);
        Ok(())
    }

    pub(super) fn quick_match(&mut self, uid: &str) -> Option<Arc<str>> {
        let candidates: Vec<Arc<str>> = self.waiting.values().cloned().collect();
        for id in candidates {
            let Some(room) = self.rooms.get_mut(&id) else {
                continue;
            };
            if room.members.len() >= room.capacity as usize {
                continue;
            }
            let info = room_info!(room);
            if room.rules.can_join(&info, uid).is_ok() {
                return Some(id);
            }
        }
        None
    }

    pub(super) fn fresh_room_id(&mut self) -> Arc<str> {
        loop {
            let id = format!("auto-{}", self.next_seq);
            if !self.rooms.contains_key(id.as_str()) {
                return Arc::from(id);
            }
            self.next_seq += 1;
        }
    }

    pub(super) fn create_room(&mut self, id: Arc<str>) -> Result<Arc<str>, ProtocolError> {
        if self.rooms.len() >= self.config.max_rooms {
            return Err(ProtocolError::new(
                ErrorCode::TooManyRooms,
                format!("the server already runs its maximum of {} rooms", self.config.max_rooms),
            ));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let rules = self.factory.create(&id);
        self.rooms.insert(
            id.clone(),
            RoomSlot {
                id: id.clone(),
                seq,
                rules,
                capacity: self.config.max_players,
                min_players: self.config.min_players,
                members: Vec::new(),
                member_conns: Vec::new(),
                game: None,
            },
        );
        self.waiting.insert(seq, id.clone());
        Ok(id)
    }

    pub(super) fn free_room(&mut self, id: &Arc<str>) {
        if let Some(room) = self.rooms.remove(id) {
            self.waiting.remove(&room.seq);
            if room.game.is_some() {
                self.games -= 1;
            }
        }
    }

    /// `room_leave`: leaves, then tells the leaver `room_left`, after everything it got from the room.
    pub(super) fn request_leave(&mut self, conn: ConnId, uid: &Arc<str>, now: Instant) -> Outcome {
        let Some(room_id) = self.player_room(uid) else {
            return Err(not_in_room());
        };
        self.leave_room(uid, now);
        let left = ServerMessage::RoomLeft(RoomLeft { room_id: room_id.to_string() });
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
            self.free_room(&id);
            return;
        }
        self.broadcast_room_state(&id);
        self.maybe_start(&id, now);
    }

    pub(super) fn prepare(&mut self, uid: &Arc<str>, now: Instant) -> Outcome {
        let id = self.player_room(uid).ok_or_else(not_in_room)?;
        let room = self.rooms.get_mut(&id).ok_or_else(not_in_room)?;
        if room.game.is_some() {
            return Err(ProtocolError::new(ErrorCode::RoomInGame, "the game has already started"));
        }
        let Some(member) = room.members.iter_mut().find(|m| *m.uid == **uid) else {
            return Err(not_in_room());
        };
        if !member.ready {
            member.ready = true;
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
                .map(|m| MemberState { uid: m.uid.clone(), ready: m.ready, connected: m.connected })
                .collect(),
        });
        self.broadcast(id, state.to_body());
    }
}

impl RoomSlot {
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
