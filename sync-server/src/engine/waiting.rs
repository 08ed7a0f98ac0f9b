//! Waiting rooms: quick match, the limits on creating rooms, and closing rooms that wait too long.
//!
//! A few accounts holding rooms that never start must not lock everyone else out:
//! - named rooms stop short of `max_rooms` by `quick_match_reserved_percent`, so quick match can still create one;
//! - one account may have created at most `max_rooms_per_account` rooms that still wait;
//! - quick match prefers rooms that are filling (ready members, then members) and skips stale ones;
//! - a room that waits `waiting_room_timeout` since its creation or its last new ready flag is closed.

use std::collections::hash_map::Entry;

use movan_protocol::server::LEFT_WAITING_TIMEOUT;

use super::*;

impl Engine {
    /// The waiting room quick match seats `uid` in, if any: among those with a free seat, a connected member and
    /// rules that accept `uid`, and that are not stale (nobody ready `quick_match_stale` after creation), the one with
    /// the most ready members, then the most members, then the oldest.
    pub(super) fn quick_match(&mut self, uid: &str, now: Instant) -> Option<Arc<str>> {
        let stale_after = self.config.quick_match_stale;
        // (ready members, members, older first), and the room.
        type Rank = (usize, usize, Reverse<u64>);
        let mut best: Option<(Rank, Arc<str>)> = None;
        for (seq, id) in &self.waiting {
            let Some(room) = self.rooms.get_mut(id) else {
                continue;
            };
            let members = room.members.len();
            let ready = room.members.iter().filter(|m| m.ready).count();
            let stale = ready == 0 && stale_after.is_some_and(|s| now >= room.created_at + s);
            if members >= room.capacity as usize || stale || !room.members.iter().any(|m| m.connected) {
                continue;
            }
            let key = (ready, members, Reverse(*seq));
            if best.as_ref().is_some_and(|(b, _)| *b >= key) {
                continue;
            }
            let info = room_info!(room);
            if room.rules.can_join(&info, uid).is_ok() {
                best = Some((key, id.clone()));
            }
        }
        best.map(|(_, id)| id)
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

    /// Creates waiting room `id` for `creator`; `quick` when quick match creates it, which may use the reserve.
    pub(super) fn create_room(
        &mut self,
        id: Arc<str>,
        creator: &Arc<str>,
        quick: bool,
        now: Instant,
    ) -> Result<Arc<str>, ProtocolError> {
        let config = &self.config;
        let limit = if quick { config.max_rooms } else { config.named_room_limit() };
        if self.rooms.len() >= limit {
            let why = if self.rooms.len() >= config.max_rooms {
                format!("the server already runs its maximum of {} rooms (sync.max_rooms)", config.max_rooms)
            } else {
                format!(
                    "the server runs {} rooms; the last {} of its {} (sync.quick_match_reserved_percent) are kept for \
                     quick match: send room_enter without a room_id",
                    self.rooms.len(),
                    config.max_rooms - limit,
                    config.max_rooms
                )
            };
            return Err(ProtocolError::new(ErrorCode::TooManyRooms, why));
        }
        let created = self.rooms_created.get(creator).copied().unwrap_or(0);
        if config.max_rooms_per_account > 0 && created >= config.max_rooms_per_account {
            return Err(ProtocolError::new(
                ErrorCode::TooManyRooms,
                format!(
                    "you already created {created} rooms that are still waiting (sync.max_rooms_per_account); join one \
                     or use quick match"
                ),
            ));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let expiry = config.waiting_room_timeout.map(|t| (now + t, seq));
        let rules = self.factory.create(&id);
        self.rooms.insert(
            id.clone(),
            RoomSlot {
                id: id.clone(),
                seq,
                rules,
                capacity: self.config.max_players,
                min_players: self.config.min_players,
                creator: Some(creator.clone()),
                created_at: now,
                expiry,
                waiting_since: now,
                members: Vec::new(),
                member_conns: Vec::new(),
                spectators: Vec::new(),
                game: None,
            },
        );
        *self.rooms_created.entry(creator.clone()).or_default() += 1;
        self.waiting.insert(seq, id.clone());
        if let Some(key) = expiry {
            self.expiries.insert(key, id.clone());
        }
        Ok(id)
    }

    /// Room `id` no longer waits (its game starts, or it goes): out of quick match, its deadline and its creator's
    /// count.
    pub(super) fn stop_waiting(&mut self, id: &Arc<str>) {
        let Some(room) = self.rooms.get_mut(id) else {
            return;
        };
        self.waiting.remove(&room.seq);
        if let Some(key) = room.expiry.take() {
            self.expiries.remove(&key);
        }
        if let Some(creator) = room.creator.take()
            && let Entry::Occupied(mut n) = self.rooms_created.entry(creator)
        {
            *n.get_mut() -= 1;
            if *n.get() == 0 {
                n.remove();
            }
        }
    }

    /// Removes room `id`; its spectators watch nothing any more (they were told `game_over` or `room_left`).
    pub(super) fn free_room(&mut self, id: &Arc<str>) {
        self.stop_waiting(id);
        if let Some(room) = self.rooms.remove(id) {
            if let Some(game) = &room.game {
                self.games -= 1;
                if let Some(writer) = &game.replay {
                    self.replay_budget.release(writer);
                }
            }
            for (uid, _) in &room.spectators {
                if let Some(p) = self.players.get_mut(uid)
                    && p.spectating.as_ref() == Some(id)
                {
                    p.spectating = None;
                }
            }
        }
    }

    /// Closes the waiting rooms whose deadline passed by `now`; a room whose deadline moved on (a member became ready)
    /// is put back at its new one.
    pub(super) fn expire_waiting_rooms(&mut self, now: Instant) {
        let Some(timeout) = self.config.waiting_room_timeout else {
            return;
        };
        while let Some(entry) = self.expiries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, seq), id) = entry.remove_entry();
            let Some(room) = self.rooms.get_mut(&id) else {
                continue;
            };
            room.expiry = None;
            let due = room.waiting_since + timeout;
            if due > now {
                room.expiry = Some((due, seq));
                self.expiries.insert((due, seq), id);
            } else {
                self.close_waiting_room(&id, timeout);
            }
        }
    }

    /// Every member gets `room_left` with reason `waiting_room_timeout` and is out of the room, which goes.
    fn close_waiting_room(&mut self, id: &Arc<str>, timeout: Duration) {
        let message = format!(
            "no game started in this room within {} s of its creation or its last ready player \
             (sync.waiting_room_timeout_secs); the room was closed",
            timeout.as_secs()
        );
        self.close_room_before_game(id, LEFT_WAITING_TIMEOUT, message);
    }

    /// Every member (and spectator) of the waiting room `id` gets `room_left` with `reason` and `message` and is out
    /// of the room, which goes.
    pub(super) fn close_room_before_game(&mut self, id: &Arc<str>, reason: &str, message: String) {
        let Some(room) = self.rooms.get(id) else {
            return;
        };
        let uids: Vec<String> = room.members.iter().map(|m| m.uid.clone()).collect();
        let left = ServerMessage::RoomLeft(RoomLeft {
            room_id: id.to_string(),
            reason: Some(reason.into()),
            message: Some(message),
        });
        self.broadcast(id, left.to_body());
        for uid in &uids {
            if let Some(p) = self.players.get_mut(uid.as_str()) {
                if p.room.as_deref() == Some(&**id) {
                    p.room = None;
                    self.players_in_rooms -= 1;
                }
                if p.grace.take().is_some() {
                    self.in_grace -= 1;
                }
            }
            self.forget_if_idle(uid);
        }
        self.free_room(id);
    }
}
