//! The sans-IO core of the sync server: connections, players, rooms, ticking, ordering, history and reload.
//!
//! [`Engine`] never reads a clock or touches a socket. The shell feeds it events with the current time
//! (`connect`, `handle`, `disconnect`, `handle_timeout`), asks when it next needs to run (`poll_timeout`), and
//! carries out what it returns (`poll_output`). Everything here is therefore testable with made-up `Instant`s.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use movan_protocol::server::{
    ActionRef, ErrorBody, GameOver, GameStart, MemberState, Pong, RoomState, RoomStatus, ServerMessage, encode_frame,
};
use movan_protocol::{ErrorCode, ProtocolError, Request};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::value::RawValue;

use crate::history::{FrameHistory, Reload, ReloadError};
use crate::revocation::Revocations;
use crate::room::{ActionVerdict, FrameOutcome, MemberInfo, OrderedAction, Room, RoomFactory, RoomInfo};

/// Engine settings (derived from the `[sync]` config section).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Time between frames.
    pub tick_interval: Duration,
    /// Rooms at once.
    pub max_rooms: usize,
    /// Seats per room.
    pub max_players: u32,
    /// Players needed to start.
    pub min_players: u32,
    /// Frames kept per game for reload.
    pub history_frames: usize,
    /// Bytes of frames kept per game for reload (the oldest go first when over it).
    pub history_max_bytes: usize,
    /// Frames per `reload_frames` message.
    pub reload_chunk_frames: usize,
    /// Bytes of frames per `reload_frames` message (a single larger frame still goes out alone).
    pub reload_chunk_bytes: usize,
    /// Actions a room holds for its next frame.
    pub max_pending_actions: usize,
    /// Actions one player may have waiting for the next frame.
    pub max_actions_per_player: usize,
    /// Bytes of `action_data` a room holds for its next frame: bounds the size of one frame.
    pub max_pending_bytes: usize,
    /// Longest game, if limited.
    pub max_game_duration: Option<Duration>,
    /// How long revoked sessions and bans are remembered: the longest an access token lives.
    pub revocation_retention: Duration,
    /// How long a player whose connection dropped keeps its seat (and its place in a running game) waiting for it
    /// to reconnect. Zero: a dropped connection leaves the room at once.
    pub reconnect_grace: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            tick_interval: Duration::from_millis(50),
            max_rooms: 1000,
            max_players: 4,
            min_players: 2,
            history_frames: 24_000,
            history_max_bytes: 8 * 1024 * 1024,
            reload_chunk_frames: 256,
            reload_chunk_bytes: 1024 * 1024,
            max_pending_actions: 1024,
            max_actions_per_player: 16,
            max_pending_bytes: 256 * 1024,
            max_game_duration: None,
            revocation_retention: Duration::from_secs(3600 + 60),
            reconnect_grace: Duration::from_secs(30),
        }
    }
}

/// Identifies one client connection; chosen by the shell, never reused within a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Who an authenticated connection speaks for: from the verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The player's uid (`sub`).
    pub uid: String,
    /// The login session (`sid`).
    pub sid: String,
    /// When the token was issued (`iat`, Unix seconds).
    pub iat: u64,
}

/// A finished game, for the account server's match history.
pub use movan_protocol::link::MatchReport;

pub use crate::connection::CloseReason;

/// Something for the shell to do.
#[derive(Debug)]
pub enum Output {
    /// Send this message body to the connection (the transport frames it, the connection seals it).
    Send {
        /// Recipient.
        conn: ConnId,
        /// The message body, shared with other recipients.
        bytes: Bytes,
    },
    /// Write the messages of a reload, in order, as the connection's writer gets to them.
    Reload {
        /// Recipient.
        conn: ConnId,
        /// Lazily encoded `reload_frames` messages.
        reload: Reload,
    },
    /// Flush what was queued for the connection, then close it.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
    /// A game ended; report it to the account server.
    GameEnded(MatchReport),
}

/// Counts for logs and load reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Authenticated connections.
    pub connections: usize,
    /// Rooms, waiting or playing.
    pub rooms: usize,
    /// Rooms with a running game.
    pub games: usize,
    /// Players in rooms, including those waiting out their reconnect grace.
    pub players_in_rooms: usize,
    /// Players disconnected but keeping their seat until their reconnect grace ends.
    pub reconnecting: usize,
}

/// The sync server's state machine. See the module docs.
pub struct Engine {
    config: EngineConfig,
    factory: Box<dyn RoomFactory>,
    clock: WallClock,
    conns: HashMap<ConnId, Arc<str>>,
    players: HashMap<Arc<str>, Player>,
    rooms: HashMap<Arc<str>, RoomSlot>,
    /// Waiting rooms by creation order, for quick match.
    waiting: BTreeMap<u64, Arc<str>>,
    /// Next frame deadline of each running game: (deadline, room seq, room id). Stale entries are skipped.
    timers: BinaryHeap<Reverse<(Instant, u64, Arc<str>)>>,
    /// End of each disconnected player's reconnect grace: (deadline, drop number, uid). Stale entries are skipped.
    graces: BinaryHeap<Reverse<(Instant, u64, Arc<str>)>>,
    /// Players waiting out their reconnect grace.
    in_grace: usize,
    outputs: VecDeque<Output>,
    rng: StdRng,
    next_seq: u64,
    players_in_rooms: usize,
    games: usize,
    revocations: Revocations,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Player {
    conn: Option<ConnId>,
    /// Session of the current (or, during the reconnect grace, the last) connection's token.
    sid: Option<String>,
    room: Option<Arc<str>>,
    /// Set while the player is disconnected but keeps its seat: the number of the drop, matching its `graces`
    /// entry.
    grace: Option<u64>,
}

struct RoomSlot {
    id: Arc<str>,
    seq: u64,
    rules: Box<dyn Room>,
    capacity: u32,
    min_players: u32,
    members: Vec<MemberInfo>,
    /// Parallel to `members`: each member's live connection.
    member_conns: Vec<Option<ConnId>>,
    game: Option<Game>,
}

struct Game {
    started_at: Instant,
    players: Vec<String>,
    /// The `game_start` message, resent to a connection that replaces a player's previous one.
    start_wire: Bytes,
    pending: VecDeque<Pending>,
    pending_bytes: usize,
    history: FrameHistory,
    arrivals: u64,
}

struct Pending {
    uid: Arc<str>,
    client_ts: f64,
    received_at: Instant,
    arrival: u64,
    action_data: Box<RawValue>,
}

/// Maps the monotonic clock the engine is driven by to wall-clock seconds, fixed at construction.
#[derive(Debug, Clone, Copy)]
struct WallClock {
    anchor: Instant,
    anchor_unix: f64,
}

impl WallClock {
    fn unix(&self, t: Instant) -> f64 {
        match t.checked_duration_since(self.anchor) {
            Some(d) => self.anchor_unix + d.as_secs_f64(),
            None => self.anchor_unix - self.anchor.duration_since(t).as_secs_f64(),
        }
    }
}

type Outcome = Result<(), ProtocolError>;

/// A [`RoomInfo`] of a `RoomSlot`, borrowing only the fields it shows so that `rules` stays free to call.
macro_rules! room_info {
    ($room:expr) => {
        RoomInfo {
            room_id: &$room.id,
            capacity: $room.capacity,
            min_players: $room.min_players,
            members: &$room.members,
            playing: $room.game.is_some(),
            frame_count: $room.game.as_ref().map_or(0, |g| g.history.next_frame()),
        }
    };
}

impl Engine {
    /// A new engine. `anchor` and `anchor_unix` pin the monotonic clock to wall time (the shell passes
    /// `Instant::now()` and the current Unix time); `seed` seeds the per-game random seeds.
    pub fn new(
        config: EngineConfig,
        factory: Box<dyn RoomFactory>,
        anchor: Instant,
        anchor_unix: f64,
        seed: u64,
    ) -> Self {
        let retention = config.revocation_retention;
        Self {
            config,
            factory,
            clock: WallClock { anchor, anchor_unix },
            conns: HashMap::new(),
            players: HashMap::new(),
            rooms: HashMap::new(),
            waiting: BTreeMap::new(),
            timers: BinaryHeap::new(),
            graces: BinaryHeap::new(),
            in_grace: 0,
            outputs: VecDeque::new(),
            rng: StdRng::seed_from_u64(seed),
            next_seq: 0,
            players_in_rooms: 0,
            games: 0,
            revocations: Revocations::new(retention, 100_000),
        }
    }

    /// The settings this engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Wall-clock seconds at `t`, on the engine's clock.
    pub fn unix_time(&self, t: Instant) -> f64 {
        self.clock.unix(t)
    }

    /// Current counts.
    pub fn stats(&self) -> Stats {
        Stats {
            connections: self.conns.len(),
            rooms: self.rooms.len(),
            games: self.games,
            players_in_rooms: self.players_in_rooms,
            reconnecting: self.in_grace,
        }
    }

    /// The next thing for the shell to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Self::handle_timeout`] must next be called: the earliest frame deadline or end of a reconnect grace.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let frame = self.timers.peek().map(|Reverse((t, _, _))| *t);
        let grace = self.graces.peek().map(|Reverse((t, _, _))| *t);
        match (frame, grace) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

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
        }
        let old = player.conn.replace(conn);
        let room = player.room.clone();
        if let Some(old) = old.filter(|old| *old != conn) {
            self.conns.remove(&old);
            self.close(old, CloseReason::Replaced);
        }
        if let Some(room_id) = room
            && let Some(room) = self.rooms.get_mut(&room_id)
        {
            room.set_conn(&uid, Some(conn));
            let start = room.game.as_ref().map(|g| g.start_wire.clone());
            self.broadcast_room_state(&room_id);
            if let Some(start) = start {
                self.send(conn, start);
            }
        }
    }

    /// Sends connection `conn` an `error`, in order after everything the engine already queued for it, so that the
    /// answers to the requests before the faulty one arrive first. The shell uses it for what the
    /// [`Connection`](crate::connection::Connection) refuses without closing (a bad request, a bad new token).
    pub fn send_error(&mut self, conn: ConnId, e: &ProtocolError) {
        self.send(conn, ServerMessage::Error(ErrorBody::from(e)).to_body());
    }

    /// Sends connection `conn` the `error` of `reason` (if it has one) and closes it, in order after everything the
    /// engine already queued for it. The engine closes for its own reasons (replaced, revoked, shutdown); the shell
    /// for the connection's (timeouts, rate limit, refused first message, ...).
    pub fn close(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(e) = reason.error() {
            self.send_error(conn, &e);
        }
        self.outputs.push_back(Output::Close { conn, reason });
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
    fn kick(&mut self, uid: &str, e: &ProtocolError, now: Instant) {
        let Some(uid) = self.players.get_key_value(uid).map(|(k, _)| k.clone()) else {
            return;
        };
        if let Some(conn) = self.players.get_mut(&uid).and_then(|p| p.conn.take()) {
            self.conns.remove(&conn);
            self.close(conn, CloseReason::Revoked(e.clone()));
        }
        self.drop_player(&uid, now);
    }

    /// The connection is gone. Only the player's current connection counts: the cleanup of a replaced connection
    /// never touches its successor. A player with a seat keeps it for [`EngineConfig::reconnect_grace`]: the others
    /// see it as not `connected` and the game goes on; if it has not reconnected by then, it leaves the room.
    pub fn disconnect(&mut self, conn: ConnId, now: Instant) {
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
    fn drop_player(&mut self, uid: &Arc<str>, now: Instant) {
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

    /// Handles one parsed request of connection `conn`, received at `now`. `client_ts` is the message's
    /// `timestamp`. Failures become an `error` message to the sender.
    pub fn handle(&mut self, conn: ConnId, request: Request, client_ts: Option<f64>, now: Instant) {
        let Some(uid) = self.conns.get(&conn).cloned() else {
            return;
        };
        let proto = request.proto();
        let result = match request {
            Request::RoomEnter { room_id } => self.enter_room(&uid, room_id, now),
            Request::RoomLeave => self.request_leave(&uid, now),
            Request::RoomPrepare => self.prepare(&uid, now),
            Request::SyncAction { action_data } => {
                self.action(&uid, client_ts.unwrap_or_else(|| self.clock.unix(now)), action_data, now)
            }
            Request::ReloadFrames { start_frame } => self.reload(conn, &uid, start_frame),
            Request::Ping => {
                let pong = ServerMessage::Pong(Pong { timestamp: client_ts, server_time: self.clock.unix(now) });
                self.send(conn, pong.to_body());
                Ok(())
            }
        };
        if let Err(e) = result {
            self.send_error(conn, &e.with_proto(proto));
        }
    }

    /// Produces every frame whose deadline is at or before `now`, in order, for every running game, and removes the
    /// players whose reconnect grace ended by then.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((deadline, seq, room_id))) = self.timers.peek().cloned() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            let live = self.rooms.get(&room_id).is_some_and(|r| r.seq == seq && r.game.is_some());
            if live {
                self.tick_room(&room_id, now);
            }
        }
        // After the frames, so that a game ending because its last player is gone still has every frame due.
        while let Some(Reverse((deadline, drop_no, uid))) = self.graces.peek().cloned() {
            if deadline > now {
                break;
            }
            self.graces.pop();
            if self.players.get(&uid).is_some_and(|p| p.conn.is_none() && p.grace == Some(drop_no)) {
                self.drop_player(&uid, now);
            }
        }
    }

    /// Ends every game with reason `shutdown` and closes every connection, for a graceful stop.
    pub fn shutdown(&mut self, now: Instant) {
        let ids: Vec<Arc<str>> = self.rooms.keys().cloned().collect();
        for id in ids {
            let playing = self.rooms.get(&id).is_some_and(|r| r.game.is_some());
            if playing {
                self.end_game(&id, "shutdown", None, now);
            }
        }
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort();
        for conn in conns {
            self.close(conn, CloseReason::Shutdown);
        }
    }

    fn enter_room(&mut self, uid: &Arc<str>, room_id: Option<String>, now: Instant) -> Outcome {
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

    fn seat(&mut self, uid: &Arc<str>, id: &Arc<str>) -> Outcome {
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

    fn quick_match(&mut self, uid: &str) -> Option<Arc<str>> {
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

    fn fresh_room_id(&mut self) -> Arc<str> {
        loop {
            let id = format!("auto-{}", self.next_seq);
            if !self.rooms.contains_key(id.as_str()) {
                return Arc::from(id);
            }
            self.next_seq += 1;
        }
    }

    fn create_room(&mut self, id: Arc<str>) -> Result<Arc<str>, ProtocolError> {
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

    fn free_room(&mut self, id: &Arc<str>) {
        if let Some(room) = self.rooms.remove(id) {
            self.waiting.remove(&room.seq);
            if room.game.is_some() {
                self.games -= 1;
            }
        }
    }

    fn request_leave(&mut self, uid: &Arc<str>, now: Instant) -> Outcome {
        if self.player_room(uid).is_none() {
            return Err(not_in_room());
        }
        self.leave_room(uid, now);
        Ok(())
    }

    /// Removes `uid` from its room, telling the others, and ends or frees the room when it empties.
    fn leave_room(&mut self, uid: &Arc<str>, now: Instant) {
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
                self.end_game(&id, "all_left", None, now);
                return;
            }
        } else if empty {
            self.free_room(&id);
            return;
        }
        self.broadcast_room_state(&id);
        self.maybe_start(&id, now);
    }

    fn prepare(&mut self, uid: &Arc<str>, now: Instant) -> Outcome {
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

    fn maybe_start(&mut self, id: &Arc<str>, now: Instant) {
        let Some(room) = self.rooms.get_mut(id) else {
            return;
        };
        if room.game.is_some() || room.members.is_empty() {
            return;
        }
        let info = room_info!(room);
        if !room.rules.should_start(&info) {
            return;
        }
        let seq = room.seq;
        let start = GameStart {
            room_id: id.to_string(),
            start_time: self.clock.unix(now),
            frame_interval_ms: self.config.tick_interval.as_millis() as u64,
            members: room.members.iter().map(|m| m.uid.clone()).collect(),
            seed: self.rng.r#gen(),
        };
        let start_wire = ServerMessage::GameStart(start).to_body();
        room.game = Some(Game {
            started_at: now,
            start_wire: start_wire.clone(),
            players: room.members.iter().map(|m| m.uid.clone()).collect(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            history: FrameHistory::new(self.config.history_frames, self.config.history_max_bytes),
            arrivals: 0,
        });
        self.waiting.remove(&seq);
        self.games += 1;
        self.broadcast_room_state(id);
        self.broadcast(id, start_wire);
        self.timers.push(Reverse((now + self.config.tick_interval, seq, id.clone())));
    }

    fn action(&mut self, uid: &Arc<str>, client_ts: f64, action_data: Box<RawValue>, now: Instant) -> Outcome {
        let id = self.player_room(uid).ok_or_else(not_in_room)?;
        let limits =
            (self.config.max_pending_actions, self.config.max_actions_per_player, self.config.max_pending_bytes);
        let room = self.rooms.get_mut(&id).ok_or_else(not_in_room)?;
        let game = room
            .game
            .as_ref()
            .ok_or_else(|| ProtocolError::new(ErrorCode::GameNotRunning, "the game has not started"))?;
        check_pending_limits(game, uid, action_data.get().len(), limits)?;
        let info = room_info!(room);
        let action_data = match room.rules.on_action(&info, uid, action_data) {
            ActionVerdict::Accept(a) => a,
            ActionVerdict::Reject(why) => {
                return Err(ProtocolError::new(ErrorCode::ActionRejected, why));
            }
        };
        let game = room.game.as_mut().ok_or_else(|| internal("game vanished"))?;
        game.arrivals += 1;
        game.pending_bytes += action_data.get().len();
        game.pending.push_back(Pending {
            uid: uid.clone(),
            client_ts,
            received_at: now,
            arrival: game.arrivals,
            action_data,
        });
        Ok(())
    }

    fn reload(&mut self, conn: ConnId, uid: &Arc<str>, start_frame: u64) -> Outcome {
        let id = self.player_room(uid).ok_or_else(not_in_room)?;
        let room = self.rooms.get(&id).ok_or_else(not_in_room)?;
        let game = room
            .game
            .as_ref()
            .ok_or_else(|| ProtocolError::new(ErrorCode::GameNotRunning, "the game has not started"))?;
        let reload = game
            .history
            .reload(start_frame, self.config.reload_chunk_frames, self.config.reload_chunk_bytes)
            .map_err(|e| match e {
                ReloadError::Expired { .. } => ProtocolError::new(ErrorCode::HistoryExpired, e.to_string()),
                ReloadError::NotYet { .. } => ProtocolError::new(ErrorCode::BadFrameRange, e.to_string()),
            })?;
        self.outputs.push_back(Output::Reload { conn, reload });
        Ok(())
    }

    /// Emits every due frame of one room, then schedules its next deadline.
    fn tick_room(&mut self, id: &Arc<str>, now: Instant) {
        let interval = self.config.tick_interval;
        loop {
            let Some(room) = self.rooms.get_mut(id) else {
                return;
            };
            let Some(game) = room.game.as_mut() else {
                return;
            };
            let frame = game.history.next_frame();
            let window_start = frame_deadline(game.started_at, interval, frame);
            let deadline = window_start + interval;
            if deadline > now {
                self.timers.push(Reverse((deadline, room.seq, id.clone())));
                return;
            }
            let actions = order_actions(&mut game.pending, window_start, deadline, &self.clock);
            game.pending_bytes = game.pending.iter().map(|p| p.action_data.get().len()).sum();
            let refs: Vec<ActionRef<'_>> = actions
                .iter()
                .map(|a| ActionRef { uid: &a.uid, timestamp: a.timestamp, action_data: &a.action_data })
                .collect();
            let encoded = encode_frame(frame, &refs);
            drop(refs);
            game.history.push(encoded.frame);
            let played = deadline.duration_since(game.started_at);
            for conn in room.member_conns.iter().flatten() {
                self.outputs.push_back(Output::Send { conn: *conn, bytes: encoded.body.clone() });
            }
            let info = room_info!(room);
            match room.rules.after_frame(&info, frame, &actions) {
                FrameOutcome::End { results } => {
                    self.end_game(id, "ended_by_room", results, deadline);
                    return;
                }
                FrameOutcome::Continue => {}
            }
            if self.config.max_game_duration.is_some_and(|max| played >= max) {
                self.end_game(id, "max_duration", None, deadline);
                return;
            }
        }
    }

    fn end_game(&mut self, id: &Arc<str>, reason: &str, results: Option<serde_json::Value>, now: Instant) {
        let Some(room) = self.rooms.get_mut(id) else { return };
        let Some(game) = room.game.as_ref() else { return };
        let frame_count = game.history.next_frame();
        let results = match results {
            Some(r) => Some(r),
            None => {
                let info = room_info!(room);
                room.rules.on_game_over(&info, reason)
            }
        };
        let Some(game) = room.game.as_ref() else { return };
        let (started_at, ended_at) = (self.clock.unix(game.started_at), self.clock.unix(now));
        let report = MatchReport {
            match_id: format!("{id}-{:016x}", self.rng.r#gen::<u64>()),
            room_id: id.to_string(),
            players: game.players.clone(),
            frame_count,
            duration_secs: (ended_at - started_at).max(0.0),
            end_reason: reason.to_owned(),
            results: results.clone(),
            started_at,
            ended_at,
        };
        let over = ServerMessage::GameOver(GameOver {
            room_id: id.to_string(),
            reason: reason.to_owned(),
            frame_count,
            results,
        });
        let members: Vec<String> = room.members.iter().map(|m| m.uid.clone()).collect();
        self.broadcast(id, over.to_body());
        self.outputs.push_back(Output::GameEnded(report));
        self.free_room(id);
        for uid in members {
            if let Some(p) = self.players.get_mut(uid.as_str()) {
                p.room = None;
                self.players_in_rooms -= 1;
            }
            self.forget_if_idle(uid.as_str());
        }
    }

    fn forget_if_idle(&mut self, uid: &str) {
        if self.players.get(uid).is_some_and(|p| p.conn.is_none() && p.room.is_none())
            && let Some(p) = self.players.remove(uid)
            && p.grace.is_some()
        {
            self.in_grace -= 1;
        }
    }

    fn player_room(&self, uid: &str) -> Option<Arc<str>> {
        self.players.get(uid).and_then(|p| p.room.clone())
    }

    fn broadcast_room_state(&mut self, id: &Arc<str>) {
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

    fn broadcast(&mut self, id: &Arc<str>, bytes: Bytes) {
        let Some(room) = self.rooms.get(id) else {
            return;
        };
        for conn in room.member_conns.iter().flatten() {
            self.outputs.push_back(Output::Send { conn: *conn, bytes: bytes.clone() });
        }
    }

    fn send(&mut self, conn: ConnId, bytes: Bytes) {
        self.outputs.push_back(Output::Send { conn, bytes });
    }
}

impl RoomSlot {
    fn remove_member(&mut self, uid: &str) {
        if let Some(i) = self.members.iter().position(|m| m.uid == uid) {
            self.members.remove(i);
            self.member_conns.remove(i);
        }
    }

    fn set_conn(&mut self, uid: &str, conn: Option<ConnId>) {
        if let Some(i) = self.members.iter().position(|m| m.uid == uid) {
            self.members[i].connected = conn.is_some();
            self.member_conns[i] = conn;
        }
    }
}

/// Start of frame `n`'s collection window: `started_at + n * interval`, computed from the start so ticks never drift.
fn frame_deadline(started_at: Instant, interval: Duration, n: u64) -> Instant {
    let nanos = interval.as_nanos().saturating_mul(u128::from(n));
    started_at + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Takes the actions received before `deadline` and orders them: by timestamp — the client's, clamped into
/// `[max(window_start, ...), received_at]` so nobody can jump the queue by lying — then by uid, then by arrival.
fn order_actions(
    pending: &mut VecDeque<Pending>,
    window_start: Instant,
    deadline: Instant,
    clock: &WallClock,
) -> Vec<OrderedAction> {
    let due = pending.iter().take_while(|p| p.received_at < deadline).count();
    let window_start_unix = clock.unix(window_start);
    let mut keyed: Vec<(f64, u64, Pending)> = pending
        .drain(..due)
        .map(|p| {
            let received = clock.unix(p.received_at);
            let low = window_start_unix.min(received);
            (p.client_ts.clamp(low, received), p.arrival, p)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.2.uid.cmp(&b.2.uid)).then(a.1.cmp(&b.1)));
    keyed
        .into_iter()
        .map(|(timestamp, _, p)| OrderedAction { uid: p.uid.to_string(), timestamp, action_data: p.action_data })
        .collect()
}

/// Refuses an action that would push the room's next frame past its limits: (room actions, actions per player,
/// bytes).
fn check_pending_limits(game: &Game, uid: &str, len: usize, limits: (usize, usize, usize)) -> Outcome {
    let (max_actions, max_per_player, max_bytes) = limits;
    let over = |what: String| Err(ProtocolError::new(ErrorCode::LimitExceeded, what));
    if game.pending.len() >= max_actions {
        return over(format!(
            "the room already holds {max_actions} actions for the next frame (sync.max_pending_actions)"
        ));
    }
    if game.pending.iter().filter(|p| &*p.uid == uid).count() >= max_per_player {
        return over(format!(
            "you already have {max_per_player} actions waiting for the next frame (sync.max_actions_per_player)"
        ));
    }
    if game.pending_bytes + len > max_bytes {
        return over(format!("the next frame already holds {max_bytes} bytes of actions (sync.max_pending_bytes)"));
    }
    Ok(())
}

fn not_in_room() -> ProtocolError {
    ProtocolError::new(ErrorCode::NotInRoom, "not in a room; send room_enter first")
}

fn internal(what: &str) -> ProtocolError {
    ProtocolError::new(ErrorCode::Internal, what)
}

#[cfg(test)]
mod tests;
