//! Players: binding connections, replacing, revoking, dropping, and the reconnect grace.

use super::*;

impl Engine {
    /// Binds an authenticated connection to its player. A token of a logged-out session or a banned player is
    /// refused (`session_revoked` / `banned`, then a close). A previous connection of the same player is replaced:
    /// it gets an `error` with code `replaced` and is closed, and the player keeps its room seat. A player that
    /// still has a seat — replacing a live connection or back within its reconnect grace — gets the room's
    /// `room_state` (the others too) and, when the game runs, its `game_start` again; it then reloads the frames it
    /// missed.
    pub fn connect(&mut self, conn: ConnId, identity: &Identity, _now: Instant) {
        if let Err(e) = self.revocations.check(&identity.uid, &identity.sid, identity.iat) {
            self.close(conn, CloseReason::Revoked(e));
            return;
        }
        let uid: Arc<str> = match self.players.get_key_value(identity.uid.as_str()) {
            Some((k, _)) => k.clone(),
            None => Arc::from(identity.uid.as_str()),
        };
        self.conns.insert(conn, uid.clone());
        let player = self.players.entry(uid.clone()).or_default();
        player.sid = Some(identity.sid.clone());
        if player.grace.take().is_some() {
            self.in_grace -= 1;
            crate::metrics::get().reconnects.increment(1);
        }
        let old = player.conn.replace(conn);
        let room = player.room.clone();
        if let Some(old) = old.filter(|old| *old != conn) {
            self.conns.remove(&old);
            self.close(old, CloseReason::Replaced);
            // A spectator's watch ends with its connection; the new one starts in no room.
            self.stop_spectating(&uid);
        }
        if let Some(room_id) = room
            && let Some(room) = self.rooms.get_mut(&room_id)
        {
            room.set_conn(&uid, Some(conn));
            let start = room.start_message_for(&uid);
            self.broadcast_room_state(&room_id);
            if let Some(start) = start {
                self.send(conn, start);
            }
        }
    }

    /// The account server revoked session `sid` of `uid` (logout): its connection is closed with
    /// `session_revoked`, the player leaves its room, and the session's tokens are refused from now on.
    pub fn revoke_session(&mut self, uid: &str, sid: &str, now: Instant) {
        self.revocations.revoke_session(sid, now);
        if self.players.get(uid).is_some_and(|p| p.sid.as_deref() == Some(sid)) {
            let e = ProtocolError::new(ErrorCode::SessionRevoked, "this session was logged out");
            self.kick(uid, &e, now);
        }
    }

    /// The account server banned `uid` at Unix time `at_unix`: its connection is closed with `banned`, the player
    /// leaves its room, and tokens issued before the second of the ban are refused from now on.
    pub fn ban(&mut self, uid: &str, at_unix: u64, now: Instant) {
        self.revocations.ban(uid, at_unix, now);
        if self.players.contains_key(uid) {
            self.kick(uid, &ProtocolError::new(ErrorCode::Banned, "this player is banned"), now);
        }
    }

    /// Closes the player's connection (if it has one) with `e`, and removes it from its room at once, reconnect
    /// grace or not.
    pub(super) fn kick(&mut self, uid: &str, e: &ProtocolError, now: Instant) {
        let Some(uid) = self.players.get_key_value(uid).map(|(k, _)| k.clone()) else {
            return;
        };
        if let Some(conn) = self.players.get_mut(&uid).and_then(|p| p.conn.take()) {
            self.conns.remove(&conn);
            self.close(conn, CloseReason::Revoked(e.clone()));
        }
        self.stop_spectating(&uid);
        self.drop_player(&uid, now);
    }

    /// The connection is gone. Only the player's current connection counts: the cleanup of a replaced connection
    /// never touches its successor. A player with a seat keeps it for [`EngineConfig::reconnect_grace`]: the others
    /// see it as not `connected` and the game goes on; if it has not reconnected by then, it leaves the room.
    pub fn disconnect(&mut self, conn: ConnId, now: Instant) {
        self.reloads.remove(&conn);
        let Some(uid) = self.conns.remove(&conn) else {
            return;
        };
        let grace = self.config.reconnect_grace;
        let Some(player) = self.players.get_mut(&uid) else {
            return;
        };
        if player.conn != Some(conn) {
            return;
        }
        player.conn = None;
        if player.spectating.is_some() {
            self.stop_spectating(&uid);
            self.forget_if_idle(&uid);
            return;
        }
        let Some(player) = self.players.get_mut(&uid) else {
            return;
        };
        let Some(room_id) = player.room.clone().filter(|_| !grace.is_zero()) else {
            self.drop_player(&uid, now);
            return;
        };
        let drop_no = self.next_seq;
        self.next_seq += 1;
        player.grace = Some(drop_no);
        self.in_grace += 1;
        self.graces.push(Reverse((now + grace, drop_no, uid.clone())));
        if let Some(room) = self.rooms.get_mut(&room_id) {
            room.set_conn(&uid, None);
        }
        self.broadcast_room_state(&room_id);
    }

    /// The player has no connection any more and gives up its seat: it leaves its room and is forgotten.
    pub(super) fn drop_player(&mut self, uid: &Arc<str>, now: Instant) {
        let Some(player) = self.players.get_mut(uid) else {
            return;
        };
        player.sid = None;
        if player.grace.take().is_some() {
            self.in_grace -= 1;
        }
        if player.room.is_some() {
            self.leave_room(uid, now);
        }
        self.forget_if_idle(uid);
    }

    pub(super) fn forget_if_idle(&mut self, uid: &str) {
        if self.players.get(uid).is_some_and(|p| p.conn.is_none() && p.room.is_none())
            && let Some(p) = self.players.remove(uid)
            && p.grace.is_some()
        {
            self.in_grace -= 1;
        }
    }

    pub(super) fn player_room(&self, uid: &str) -> Option<Arc<str>> {
        self.players.get(uid).and_then(|p| p.room.clone())
    }
}
