//! The UDP transport's shell: one task owns the socket (read and written in batches) and the sans-IO
//! [`Endpoint`]; every session gets the same [`Connection`](crate::connection::Connection), engine queue and writer
//! as a TCP connection, with a reader that also confirms address moves.
//!
//! Datagrams → endpoint → one KCP message per Movan body → the session's reader → its `Connection`. Engine output →
//! the session's writer (sealing) → the endpoint (KCP) → the socket, every session's datagrams of one turn of the
//! loop in `sendmmsg` batches.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::engine_task::Input;
use super::writer::{Outgoing, Transport};
use super::{ConnShared, SharedConnection, lock, now, reader, sleep_until};
use crate::connection::CloseReason;
use crate::engine::ConnId;
use crate::limits::ConnectionPermit;
use crate::udp::batch::BatchSocket;
use crate::udp::{Endpoint, Transmit, UdpEvent};

/// Commands from the sessions' tasks to the endpoint task.
const COMMAND_QUEUE: usize = 64 * 1024;
/// Messages queued from the endpoint to one session's reader; a reader this far behind is dropped.
const INBOUND_QUEUE: usize = 256;
/// Commands taken per turn of the loop before the datagrams go out.
const COMMANDS_PER_TURN: usize = 8192;
/// Receive calls per turn of the loop (each up to a batch of datagrams).
const RECEIVES_PER_TURN: usize = 16;

/// What a session's tasks ask of the endpoint.
#[derive(Debug)]
pub(super) enum Command {
    /// Send one message body (sealed by the writer) on the session.
    Send { conv: u32, body: Bytes },
    /// The writer is done: deliver what is queued, then end the session.
    Close { conv: u32 },
    /// A message from `to` opened: the session moves there.
    Migrate { conv: u32, to: SocketAddr },
    /// The session's connection is authenticated.
    Authenticated { conv: u32 },
}

/// A session's side of the endpoint task: where its messages go.
struct SessionLink {
    inbound: mpsc::Sender<Inbound>,
    /// The session's connection.
    id: ConnId,
}

/// One message for a session's reader.
pub(super) struct Inbound {
    body: Bytes,
    candidate: Option<SocketAddr>,
}

/// The sending side of a session, for its writer.
#[derive(Debug)]
pub(super) struct UdpOut {
    conv: u32,
    commands: mpsc::Sender<Command>,
    /// The longest message one KCP message carries.
    max_message: usize,
}

impl UdpOut {
    /// Bytes of frames per reload chunk that fit one KCP message with room for the chunk's envelope and seal.
    pub(super) fn reload_chunk_bytes(&self) -> usize {
        self.max_message.saturating_sub(4096).max(1024)
    }

    pub(super) async fn send(&self, body: Bytes) -> std::io::Result<()> {
        let conv = self.conv;
        self.commands.send(Command::Send { conv, body }).await.map_err(|_| closed())
    }

    pub(super) async fn close(&self) {
        let _ = self.commands.send(Command::Close { conv: self.conv }).await;
    }
}

fn closed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the UDP endpoint stopped")
}

/// Runs the endpoint on `socket` until `stop`.
pub(super) async fn run(
    mut socket: BatchSocket,
    mut endpoint: Endpoint,
    shared: Arc<ConnShared>,
    ids: Arc<AtomicU64>,
    tracker: TaskTracker,
    stop: CancellationToken,
) {
    let (commands_tx, mut commands) = mpsc::channel(COMMAND_QUEUE);
    let mut sessions: HashMap<u32, SessionLink> = HashMap::new();
    let mut out: Vec<Transmit> = Vec::new();
    loop {
        let deadline = endpoint.poll_timeout();
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            ready = socket.readable() => {
                if let Err(e) = ready {
                    warn!(error = %e, "udp socket failed");
                    break;
                }
                for _ in 0..RECEIVES_PER_TURN {
                    let t = now();
                    match socket.try_recv(|from, d| endpoint.handle_datagram(from, d, t)) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => {
                            debug!(error = %e, "udp receive failed");
                            break;
                        }
                    }
                }
            }
            command = commands.recv() => {
                let Some(command) = command else { break };
                handle_command(&mut endpoint, &mut sessions, command);
                for _ in 0..COMMANDS_PER_TURN {
                    match commands.try_recv() {
                        Ok(command) => handle_command(&mut endpoint, &mut sessions, command),
                        Err(_) => break,
                    }
                }
            }
            () = sleep_until(deadline) => endpoint.handle_timeout(now()),
        }
        if !drive(&mut endpoint, &mut sessions, &shared, &ids, &tracker, &commands_tx, &mut socket, &mut out).await {
            return;
        }
    }
    // The last messages of the sessions (their writers are done by now).
    while let Ok(command) = commands.try_recv() {
        handle_command(&mut endpoint, &mut sessions, command);
    }
    let _ = drive(&mut endpoint, &mut sessions, &shared, &ids, &tracker, &commands_tx, &mut socket, &mut out).await;
}

/// Carries out the endpoint's events and sends its datagrams; false when the engine is gone.
#[allow(clippy::too_many_arguments)]
async fn drive(
    endpoint: &mut Endpoint,
    sessions: &mut HashMap<u32, SessionLink>,
    shared: &Arc<ConnShared>,
    ids: &AtomicU64,
    tracker: &TaskTracker,
    commands_tx: &mpsc::Sender<Command>,
    socket: &mut BatchSocket,
    out: &mut Vec<Transmit>,
) -> bool {
    {
        while let Some(event) = endpoint.poll_event() {
            if !handle_event(event, endpoint, sessions, shared, ids, tracker, commands_tx).await {
                return false;
            }
        }
        let t = now();
        while let Some(transmit) = endpoint.poll_transmit(t) {
            out.push(transmit);
        }
        if !out.is_empty() {
            if let Err(e) = socket.send_all(out).await {
                debug!(error = %e, "udp send failed");
            }
            out.clear();
        }
    }
    true
}

fn handle_command(endpoint: &mut Endpoint, sessions: &mut HashMap<u32, SessionLink>, command: Command) {
    let t = now();
    match command {
        Command::Send { conv, body } => {
            if let Err(e) = endpoint.send(conv, &body, t) {
                // The session goes; its reader sees the end of its messages.
                warn!(conv, error = %e, "udp send refused: closing the session");
                endpoint.close(conv, t);
                sessions.remove(&conv);
            }
        }
        Command::Close { conv } => {
            endpoint.close(conv, t);
            sessions.remove(&conv);
        }
        Command::Migrate { conv, to } => {
            if endpoint.peer(conv).is_some_and(|p| p != to) {
                debug!(conv, %to, "udp session moved");
                endpoint.migrate(conv, to);
            }
        }
        Command::Authenticated { conv } => endpoint.set_authenticated(conv),
    }
}

/// Carries out one endpoint event; false when the engine is gone.
#[allow(clippy::too_many_arguments)]
async fn handle_event(
    event: UdpEvent,
    endpoint: &mut Endpoint,
    sessions: &mut HashMap<u32, SessionLink>,
    shared: &Arc<ConnShared>,
    ids: &AtomicU64,
    tracker: &TaskTracker,
    commands: &mpsc::Sender<Command>,
) -> bool {
    match event {
        UdpEvent::Opened { conv, peer, permit, pressure } => {
            let id = ConnId(ids.fetch_add(1, Ordering::Relaxed) + 1);
            debug!(conn = id.0, conv, %peer, "udp session opened");
            let (inbound, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
            sessions.insert(conv, SessionLink { inbound, id });
            let out = Transport::Udp(UdpOut { conv, commands: commands.clone(), max_message: endpoint.max_message() });
            let Some(super::Opened { connection, queue, cancel }) = super::open(id, out, shared, tracker).await else {
                return false;
            };
            if pressure {
                lock(&connection).set_pressure_timeout(shared.pressure_timeout);
            }
            let session = Session { id, conv, commands: commands.clone(), bound: false };
            tracker.spawn(session.read(inbound_rx, connection, queue, cancel, shared.clone(), permit));
        }
        UdpEvent::Message { conv, body, candidate } => {
            let full = match sessions.get(&conv) {
                Some(link) => link.inbound.try_send(Inbound { body, candidate }).is_err(),
                None => false,
            };
            if full {
                debug!(conv, "udp session's reader is behind: closing it");
                endpoint.close(conv, now());
                sessions.remove(&conv);
            }
        }
        UdpEvent::Shed { conv } => {
            if let Some(link) = sessions.get(&conv) {
                debug!(conn = link.id.0, conv, "udp session shed before authenticating");
                let reason = CloseReason::Shed { max: endpoint.max_pending(), key: "sync.udp_max_pending" };
                if shared.inputs.send(Input::Close { conn: link.id, reason }).await.is_err() {
                    return false;
                }
            }
        }
        UdpEvent::Closed { conv, reason } => {
            debug!(conv, reason = reason.as_str(), "udp session ended");
            sessions.remove(&conv);
        }
    }
    true
}

/// A session's reader: its messages into its `Connection`, as [`reader::run`] does for a byte stream, and the
/// moves and the authentication back to the endpoint.
struct Session {
    id: ConnId,
    conv: u32,
    commands: mpsc::Sender<Command>,
    bound: bool,
}

impl Session {
    async fn read(
        mut self,
        mut inbound: mpsc::Receiver<Inbound>,
        conn: SharedConnection,
        queue: mpsc::Sender<Outgoing>,
        cancel: CancellationToken,
        shared: Arc<ConnShared>,
        _permit: ConnectionPermit,
    ) {
        let id = self.id;
        loop {
            let deadline = lock(&conn).poll_timeout();
            let mut moved_to = None;
            tokio::select! {
                () = cancel.cancelled() => break,
                () = sleep_until(deadline) => lock(&conn).handle_timeout(now()),
                message = inbound.recv() => match message {
                    Some(Inbound { body, candidate }) => {
                        crate::metrics::get().received(crate::metrics::Transport::Udp, body.len());
                        let mut c = lock(&conn);
                        c.handle_frame(&body, now());
                        // The message opened (or, without encryption, was taken): its address is the client's.
                        if c.is_bound() && !c.is_closed() {
                            moved_to = candidate;
                        }
                    }
                    None => {
                        debug!(conn = id.0, reason = %CloseReason::PeerClosed, "udp session ended");
                        break;
                    }
                },
            }
            if let Some(to) = moved_to {
                let _ = self.commands.send(Command::Migrate { conv: self.conv, to }).await;
            }
            if !reader::carry_out(id, &conn, &queue, &shared).await {
                break;
            }
            if !self.bound && lock(&conn).is_bound() {
                self.bound = true;
                let _ = self.commands.send(Command::Authenticated { conv: self.conv }).await;
            }
        }
        let _ = shared.inputs.send(Input::Closed { conn: id }).await;
    }
}
