//! The sans-IO core of the sync server: connections, players, rooms, ticking, ordering, history and reload.
//!
//! [`Engine`] never reads a clock or touches a socket. The shell feeds it events with the current time
//! (`connect`, `handle`, `disconnect`, `handle_timeout`), asks when it next needs to run (`poll_timeout`), and
//! carries out what it returns (`poll_output`). Everything here is therefore testable with made-up `Instant`s.
//!
//! - this file: the engine's types, its state, and the entry points that route to the rest;
//! - `config`: [`EngineConfig`];
//! - `players`: binding connections to players, replacing, revoking, dropping, the reconnect grace;
//! - `rooms`: entering, seats, leaving, readiness, `room_state`;
//! - `waiting`: quick match, room creation limits, and closing rooms that wait too long;
//! - `game`: the start, actions and their limits, ticking and ordering frames, reloads, the end;
//! - `checksums`: desync detection (`sync_checksum`, `desync`, `Room::on_desync`);
//! - `spectators`: watching a room (`room_spectate`), the delayed frame stream.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use movan_protocol::server::{
    ActionRef, ErrorBody, GameOver, GameStart, MemberState, Pong, RoomLeft, RoomState, RoomStatus, ServerMessage,
    encode_frame,
};
use movan_protocol::{EndReason, ErrorCode, ProtocolError, Request};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::value::RawValue;

use crate::history::{FrameHistory, Reload, ReloadError};
use crate::revocation::{Revocations, SharedRevocations};
use crate::room::{ActionVerdict, FrameOutcome, MemberInfo, OrderedAction, Room, RoomFactory, RoomInfo};

pub use admin::NoSuchRoom;
pub use checksums::MAX_OPEN_COMPARISONS;
pub use config::EngineConfig;
pub use replays::FinishedGame;

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
pub use movan_protocol::rpc::MatchReport;

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
    /// A game ended; report it (and its replay) to the account server.
    GameEnded(FinishedGame),
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
    /// The reload each connection is being sent, alive until its writer is done with it: one at a time.
    reloads: HashMap<ConnId, std::sync::Weak<()>>,
    players: HashMap<Arc<str>, Player>,
    rooms: HashMap<Arc<str>, RoomSlot>,
    /// Waiting rooms by creation order, for quick match.
    waiting: BTreeMap<u64, Arc<str>>,
    /// When each waiting room may have to close (`waiting_room_timeout`), by (deadline, room seq): exactly one entry
    /// per waiting room, its key kept in `RoomSlot::expiry`. A room whose deadline moved on is put back when it comes.
    expiries: BTreeMap<(Instant, u64), Arc<str>>,
    /// Waiting rooms each account created that still wait (`max_rooms_per_account`); no zero entries.
    rooms_created: HashMap<Arc<str>, usize>,
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
    revocations: SharedRevocations,
    replay_budget: replays::ReplayBudget,
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
    /// The room this connection watches (`room_spectate`); never set together with `room`.
    spectating: Option<Arc<str>>,
}

struct RoomSlot {
    id: Arc<str>,
    seq: u64,
    rules: Box<dyn Room>,
    capacity: u32,
    min_players: u32,
    /// Who created it, while it waits (counted in `Engine::rooms_created`).
    creator: Option<Arc<str>>,
    created_at: Instant,
    /// Its key in `Engine::expiries`, while it waits.
    expiry: Option<(Instant, u64)>,
    /// Creation, or when a member last became ready: the waiting-room timeout counts from it.
    waiting_since: Instant,
    members: Vec<MemberInfo>,
    /// Parallel to `members`: each member's live connection.
    member_conns: Vec<Option<ConnId>>,
    /// Who watches, and on which connection; not members.
    spectators: Vec<(Arc<str>, ConnId)>,
    game: Option<Game>,
}

struct Game {
    started_at: Instant,
    players: Vec<String>,
    /// The `game_start` message, resent to a connection that replaces a player's previous one.
    start_wire: Bytes,
    /// What `start_wire` holds, for the `game_start` of a late joiner.
    start: GameStart,
    pending: VecDeque<Pending>,
    pending_bytes: usize,
    /// How many of `pending` each sender sent, for `sync.max_actions_per_player`: built the first time a frame holds
    /// that many actions (below it nobody can be over the limit), then kept up to date, so a full frame costs a scan
    /// over the senders per action rather than over the pending actions.
    pending_per_player: Option<Vec<(Arc<str>, usize)>>,
    history: FrameHistory,
    arrivals: u64,
    checksums: checksums::Checksums,
    /// The recording of the game, unless replays are off.
    replay: Option<movan_protocol::replay::ReplayWriter>,
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

// After the macro, which they use.
mod admin;
mod checksums;
pub mod config;
mod game;
mod players;
mod replays;
mod rooms;
mod spectators;
mod waiting;

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
            reloads: HashMap::new(),
            players: HashMap::new(),
            rooms: HashMap::new(),
            waiting: BTreeMap::new(),
            expiries: BTreeMap::new(),
            rooms_created: HashMap::new(),
            timers: BinaryHeap::new(),
            graces: BinaryHeap::new(),
            in_grace: 0,
            outputs: VecDeque::new(),
            rng: StdRng::seed_from_u64(seed),
            next_seq: 0,
            players_in_rooms: 0,
            games: 0,
            revocations: SharedRevocations::new(Revocations::new(retention, 100_000)),
            replay_budget: Default::default(),
        }
    }

    /// The logouts and bans this engine records, for the connections to refuse a revoked token before the
    /// handshake ([`Connection::with_revocations`](crate::connection::Connection::with_revocations)).
    pub fn revocations(&self) -> SharedRevocations {
        self.revocations.clone()
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

    /// When [`Self::handle_timeout`] must next be called: the earliest frame deadline, end of a reconnect grace or
    /// waiting-room deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let heaps = [&self.timers, &self.graces].into_iter().filter_map(|h| h.peek().map(|Reverse((t, _, _))| *t));
        heaps.chain(self.expiries.keys().next().map(|(t, _)| *t)).min()
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
            Request::RoomLeave => self.request_leave(conn, &uid, now),
            Request::RoomPrepare => self.prepare(&uid, now),
            Request::SyncAction { action_data } => {
                self.action(&uid, client_ts.unwrap_or_else(|| self.clock.unix(now)), action_data, now)
            }
            Request::ReloadFrames { start_frame } => self.reload(conn, &uid, start_frame),
            Request::Checksum { frame, hash } => self.checksum(&uid, frame, hash, now),
            Request::RoomSpectate { room_id } => self.spectate(conn, &uid, room_id),
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

    /// Produces every frame whose deadline is at or before `now`, in order, for every running game, removes the
    /// players whose reconnect grace ended by then, and closes the rooms that waited too long.
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
        self.expire_waiting_rooms(now);
    }

    /// Ends every game with reason `shutdown` and closes every connection, for a graceful stop.
    pub fn shutdown(&mut self, now: Instant) {
        let ids: Vec<Arc<str>> = self.rooms.keys().cloned().collect();
        for id in ids {
            let playing = self.rooms.get(&id).is_some_and(|r| r.game.is_some());
            if playing {
                self.end_game(&id, EndReason::Shutdown, None, now);
            }
        }
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort();
        for conn in conns {
            self.close(conn, CloseReason::Shutdown);
        }
    }

    /// Sends connection `conn` an `error`, in order after everything the engine already queued for it, so that the
    /// answers to the requests before the faulty one arrive first. The shell uses it for what the
    /// [`Connection`](crate::connection::Connection) refuses without closing (a bad request, a bad new token).
    pub fn send_error(&mut self, conn: ConnId, e: &ProtocolError) {
        crate::metrics::get().refusal(e.code);
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

    fn broadcast(&mut self, id: &Arc<str>, bytes: Bytes) {
        let Some(room) = self.rooms.get(id) else {
            return;
        };
        for conn in room.member_conns.iter().flatten().chain(room.spectators.iter().map(|(_, c)| c)) {
            self.outputs.push_back(Output::Send { conn: *conn, bytes: bytes.clone() });
        }
    }

    fn send(&mut self, conn: ConnId, bytes: Bytes) {
        self.outputs.push_back(Output::Send { conn, bytes });
    }
}

fn not_in_room() -> ProtocolError {
    ProtocolError::new(ErrorCode::NotInRoom, "not in a room; send room_enter first")
}

fn internal(what: &str) -> ProtocolError {
    ProtocolError::new(ErrorCode::Internal, what)
}

#[cfg(test)]
mod tests;
