//! The engine task: owns the [`Engine`], feeds it the readers' inputs and its deadlines, and routes its outputs to
//! the connections' send queues.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use movan_protocol::rpc::RoomSummary;
use movan_protocol::{ProtocolError, Request};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::writer::Outgoing;
use super::{LoadGauge, now, sleep_until};
use crate::connection::CloseReason;
use crate::engine::{ConnId, Engine, FinishedGame, Identity, NoSuchRoom, Output};
use crate::limits::QueuedBytes;

/// Inputs to the engine task, from the accept loop, the readers and the [`Control`](super::Control) handle.
#[derive(Debug)]
pub(super) enum Input {
    /// A new connection and its send queue.
    Opened { conn: ConnId, handle: ConnHandle },
    /// The connection is bound to this player.
    Authenticated { conn: ConnId, identity: Identity },
    /// A request of a bound connection.
    Request { conn: ConnId, request: Request, timestamp: Option<f64> },
    /// An `error` for the connection, ordered after the engine's answers to its earlier requests.
    Error { conn: ConnId, error: ProtocolError },
    /// Close the connection (with the reason's `error` first, if any), ordered after the engine's answers to its
    /// earlier requests.
    Close { conn: ConnId, reason: CloseReason },
    /// The reader ended.
    Closed { conn: ConnId },
    /// The account server logged out a session.
    RevokeSession { uid: String, sid: String },
    /// The account server banned a player.
    Ban { uid: String, at_unix: u64 },
    /// An admin's request, answered on its channel.
    Admin(AdminRequest),
}

/// What an admin asks the engine (through the account server), with where the answer goes.
#[derive(Debug)]
pub(super) enum AdminRequest {
    /// Up to `limit` rooms, and whether there are more.
    ListRooms { limit: usize, reply: oneshot::Sender<(Vec<RoomSummary>, bool)> },
    /// End a room's game or close a waiting room.
    EndRoom { room_id: String, reason: String, reply: oneshot::Sender<Result<bool, NoSuchRoom>> },
    /// Kick a player.
    Kick { uid: String, reason: String },
}

/// Where the engine's outputs go: connections, the load gauge, the match-report channel.
pub(super) struct Outlets {
    conns: HashMap<ConnId, ConnHandle>,
    load: Arc<LoadGauge>,
    reports: Option<mpsc::Sender<FinishedGame>>,
}

impl Outlets {
    pub(super) fn new(load: Arc<LoadGauge>, reports: Option<mpsc::Sender<FinishedGame>>) -> Self {
        Self { conns: HashMap::new(), load, reports }
    }
}

/// The engine task's grip on a connection: its send queue and its kill switch.
#[derive(Debug)]
pub(super) struct ConnHandle {
    pub(super) queue: mpsc::Sender<Outgoing>,
    pub(super) cancel: CancellationToken,
    /// Bytes of `queue`'s messages (`sync.send_queue_bytes`), shared with the writer.
    pub(super) queued: QueuedBytes,
}

/// Runs the engine until `stop`, then shuts it down (every game ends, every connection gets `shutting_down`).
pub(super) async fn run(
    mut engine: Engine,
    mut inputs: mpsc::Receiver<Input>,
    mut out: Outlets,
    stop: CancellationToken,
) {
    let mut stats_every = tokio::time::interval(Duration::from_secs(30));
    stats_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let deadline = engine.poll_timeout();
        tokio::select! {
            biased;
            () = stop.cancelled() => {
                engine.shutdown(now());
                dispatch(&mut engine, &mut out);
                return;
            }
            () = sleep_until(deadline) => engine.handle_timeout(now()),
            input = inputs.recv() => {
                let Some(input) = input else { return };
                handle_input(&mut engine, &mut out, input);
                // Take what else is already queued before dispatching, bounded so ticks stay on time.
                for _ in 0..256 {
                    match inputs.try_recv() {
                        Ok(input) => handle_input(&mut engine, &mut out, input),
                        Err(_) => break,
                    }
                }
            }
            _ = stats_every.tick() => {
                let s = engine.stats();
                info!(connections = s.connections, rooms = s.rooms, games = s.games, players = s.players_in_rooms, "stats");
            }
        }
        dispatch(&mut engine, &mut out);
        let s = engine.stats();
        out.load.players.store(s.players_in_rooms, Ordering::Relaxed);
        out.load.rooms.store(s.rooms, Ordering::Relaxed);
        out.load.connections.store(s.connections, Ordering::Relaxed);
        let m = crate::metrics::get();
        m.players.set(s.players_in_rooms as f64);
        m.rooms_waiting.set((s.rooms - s.games) as f64);
        m.rooms_playing.set(s.games as f64);
    }
}

fn handle_input(engine: &mut Engine, out: &mut Outlets, input: Input) {
    let now = now();
    match input {
        Input::Opened { conn, handle } => {
            out.conns.insert(conn, handle);
        }
        Input::Authenticated { conn, identity } => {
            if out.conns.contains_key(&conn) {
                info!(conn = conn.0, uid = %identity.uid, "player connected");
                engine.connect(conn, &identity, now);
            }
        }
        Input::RevokeSession { uid, sid } => {
            info!(uid = %uid, "session revoked");
            engine.revoke_session(&uid, &sid, now);
        }
        Input::Ban { uid, at_unix } => {
            info!(uid = %uid, "player banned");
            engine.ban(&uid, at_unix, now);
        }
        Input::Admin(AdminRequest::ListRooms { limit, reply }) => {
            let _ = reply.send(engine.room_summaries(limit));
        }
        Input::Admin(AdminRequest::EndRoom { room_id, reason, reply }) => {
            let ended = engine.end_room(&room_id, &reason, now);
            info!(room = %room_id, reason = %reason, found = ended.is_ok(), "room ended by an admin");
            let _ = reply.send(ended);
        }
        Input::Admin(AdminRequest::Kick { uid, reason }) => {
            let known = engine.admin_kick(&uid, &reason, now);
            info!(uid = %uid, reason = %reason, known, "player kicked by an admin");
        }
        Input::Request { conn, request, timestamp } => engine.handle(conn, request, timestamp, now),
        Input::Error { conn, error } => engine.send_error(conn, &error),
        Input::Close { conn, reason } => engine.close(conn, reason),
        Input::Closed { conn } => {
            // Hand the connection what the engine queued for it first (such as the error that made the reader
            // close). Dropping the handle (not cancelling it) lets the writer flush that and then stop when the
            // queue runs dry.
            dispatch(engine, out);
            out.conns.remove(&conn);
            engine.disconnect(conn, now);
        }
    }
}

/// Carries the engine's outputs to the connections' queues, dropping connections whose queue is full.
fn dispatch(engine: &mut Engine, out: &mut Outlets) {
    let conns = &mut out.conns;
    while let Some(output) = engine.poll_output() {
        let (conn, item) = match output {
            Output::Send { conn, bytes } => {
                if let Some(handle) = conns.get(&conn)
                    && !handle.queued.try_add(bytes.len())
                {
                    let queued = handle.queued.get();
                    warn!(conn = conn.0, reason = %CloseReason::SlowReader, queued, "send queue over sync.send_queue_bytes: dropping slow connection");
                    if let Some(handle) = conns.remove(&conn) {
                        handle.cancel.cancel();
                    }
                    engine.disconnect(conn, now());
                    continue;
                }
                (conn, Outgoing::Message(bytes))
            }
            Output::Reload { conn, reload } => (conn, Outgoing::Reload(reload)),
            Output::Close { conn, reason } => {
                debug!(conn = conn.0, reason = %reason, "closing");
                if let Some(handle) = conns.remove(&conn)
                    && handle.queue.try_send(Outgoing::Close).is_err()
                {
                    handle.cancel.cancel();
                }
                continue;
            }
            Output::GameEnded(game) => {
                let report = &game.report;
                let replay_bytes = game.replay.as_ref().map_or(0, Vec::len);
                info!(room = %report.room_id, reason = %report.end_reason, frames = report.frame_count, replay_bytes, "game ended");
                if let Some(reports) = &out.reports
                    && reports.try_send(game).is_err()
                {
                    warn!("match report queue full or closed: report dropped");
                }
                continue;
            }
        };
        let Some(handle) = conns.get(&conn) else {
            continue;
        };
        match handle.queue.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                warn!(conn = conn.0, reason = %CloseReason::SlowReader, "send queue full: dropping slow connection");
                if let Some(handle) = conns.remove(&conn) {
                    handle.cancel.cancel();
                }
                engine.disconnect(conn, now());
            }
            Err(TrySendError::Closed(_)) => {
                conns.remove(&conn);
                engine.disconnect(conn, now());
            }
        }
    }
}
