//! The tokio shell around the [`Engine`] and the [`Connection`]s: it accepts connections, moves message bodies and
//! the current time into them, and carries their outputs to per-connection writer tasks. It holds no protocol or
//! game logic.
//!
//! Tasks: one accept loop (here), one engine task ([`engine_task`]: owns the engine and every connection's send
//! queue), and per connection a [`reader`] (framing in, the connection's rules) and a [`writer`] (drains a bounded
//! queue into the socket, sealing and framing, batching writes). A connection whose queue is full is dropped so
//! that a slow reader never delays a tick. [`websocket`] is the second transport; both share rooms.

mod engine_task;
mod http_head;
mod reader;
mod udp;
mod websocket;
mod writer;

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use movan_protocol::server::{ErrorBody, ServerMessage};
use movan_protocol::{ErrorCode, FrameCodec, FrameError, ProtocolError};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::auth::TokenVerifier;
use crate::config::Config;
use crate::connection::{Connection, ConnectionConfig};
use crate::engine::{ConnId, Engine, FinishedGame};
use crate::keys::SessionKeys;
use crate::limits::{ConnectionLimits, ConnectionPermit, QueuedBytes};
use crate::revocation::SharedRevocations;
use crate::room::{RoomFactory, default_rooms};
use crate::udp::Endpoint;
use crate::udp::batch::BatchSocket;
use crate::unauthenticated::{Pending, Unauthenticated};
use engine_task::{ConnHandle, Input, Outlets};
use writer::Transport;

pub use websocket::WS_PATH;

/// Inputs from the accept loop and the readers to the engine task.
const INPUT_QUEUE: usize = 16 * 1024;
/// How long a graceful shutdown waits for connections to flush.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Buffered bytes per connection writer before a flush.
const WRITE_BUFFER: usize = 64 * 1024;
/// A TCP connection's first read buffer; it grows as messages need.
const READ_BUFFER: usize = 1024;

/// A configured sync server, ready to [`run`](Self::run) on a listener.
pub struct Server {
    config: Config,
    verifier: Arc<TokenVerifier>,
    factory: Box<dyn RoomFactory>,
    inputs: mpsc::Sender<Input>,
    inputs_rx: mpsc::Receiver<Input>,
    load: Arc<LoadGauge>,
    reports: Option<mpsc::Sender<FinishedGame>>,
    keys: Arc<OnceLock<Arc<SessionKeys>>>,
}

/// A handle to a [`Server`] for the services around it (the account-server link): push revocations, read the
/// load. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Control {
    inputs: mpsc::Sender<Input>,
    load: Arc<LoadGauge>,
    keys: Arc<OnceLock<Arc<SessionKeys>>>,
}

/// Players, rooms and connections, published by the engine task after every batch of inputs.
#[derive(Debug, Default)]
struct LoadGauge {
    players: AtomicUsize,
    rooms: AtomicUsize,
    connections: AtomicUsize,
}

impl Control {
    /// Logs out session `sid` of `uid`: its connection is closed and its tokens refused.
    pub async fn revoke_session(&self, uid: &str, sid: &str) {
        if let Some(keys) = self.keys.get() {
            keys.forget(sid);
        }
        let _ = self.inputs.send(Input::RevokeSession { uid: uid.to_owned(), sid: sid.to_owned() }).await;
    }

    /// Bans `uid` as of `at_unix`: its connection is closed and tokens issued before that second refused.
    pub async fn ban(&self, uid: &str, at_unix: u64) {
        let _ = self.inputs.send(Input::Ban { uid: uid.to_owned(), at_unix }).await;
    }

    /// Up to `limit` rooms of this node, and whether it has more (`None` when the engine is gone).
    pub async fn list_rooms(&self, limit: usize) -> Option<(Vec<movan_protocol::rpc::RoomSummary>, bool)> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.inputs.send(Input::Admin(engine_task::AdminRequest::ListRooms { limit, reply })).await.ok()?;
        answer.await.ok()
    }

    /// Ends room `room_id`'s game (true) or closes it while it waits (false), telling the players `reason`; `None`
    /// when the engine is gone.
    pub async fn end_room(&self, room_id: &str, reason: &str) -> Option<Result<bool, crate::engine::NoSuchRoom>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request =
            engine_task::AdminRequest::EndRoom { room_id: room_id.to_owned(), reason: reason.to_owned(), reply };
        self.inputs.send(Input::Admin(request)).await.ok()?;
        answer.await.ok()
    }

    /// Kicks `uid` (error `kicked` with `reason`, out of its room), if it is on this node.
    pub async fn kick(&self, uid: &str, reason: &str) {
        let request = engine_task::AdminRequest::Kick { uid: uid.to_owned(), reason: reason.to_owned() };
        let _ = self.inputs.send(Input::Admin(request)).await;
    }

    /// (players in rooms, rooms, connections) as of the last engine step.
    pub fn load(&self) -> (usize, usize, usize) {
        let l = &self.load;
        (l.players.load(Ordering::Relaxed), l.rooms.load(Ordering::Relaxed), l.connections.load(Ordering::Relaxed))
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Server {
    /// A server with the stock [`DefaultRoom`](crate::room::DefaultRoom) rules.
    pub fn new(config: Config, verifier: TokenVerifier) -> Self {
        let (inputs, inputs_rx) = mpsc::channel(INPUT_QUEUE);
        Self {
            config,
            verifier: Arc::new(verifier),
            factory: Box::new(default_rooms()),
            inputs,
            inputs_rx,
            load: Arc::default(),
            reports: None,
            keys: Arc::default(),
        }
    }

    /// Where encrypted connections get their session keys (required with `sync.encryption = "required"`).
    pub fn with_session_keys(self, keys: SessionKeys) -> Self {
        let _ = self.keys.set(Arc::new(keys));
        self
    }

    /// A handle for pushing revocations and reading the load while the server runs.
    pub fn control(&self) -> Control {
        Control { inputs: self.inputs.clone(), load: self.load.clone(), keys: self.keys.clone() }
    }

    /// Sends a [`FinishedGame`] (report and replay) to `reports` for every game that ends (dropped with a warning when it is full).
    pub fn with_match_reports(mut self, reports: mpsc::Sender<FinishedGame>) -> Self {
        self.reports = Some(reports);
        self
    }

    /// Uses `factory` to create the rules of every new room.
    pub fn with_rooms(mut self, factory: impl RoomFactory) -> Self {
        self.factory = Box::new(factory);
        self
    }

    /// Serves clients on `listener` until `shutdown` completes, then ends every game with `game_over` (reason
    /// `shutdown`), flushes what is queued and returns within a few seconds.
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        self.run_with_websocket(listener, None, shutdown).await
    }

    /// [`Server::run`], also serving WebSocket clients on `ws_listener` at path [`WS_PATH`]: one binary message is
    /// one message body, with the same messages, encryption and limits as TCP. Players on either transport share
    /// rooms.
    pub async fn run_with_websocket(
        self,
        listener: TcpListener,
        ws_listener: Option<TcpListener>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        self.run_with_transports(listener, ws_listener, None, shutdown).await
    }

    /// [`Server::run_with_websocket`], also serving UDP clients on `udp_socket`: KCP sessions behind a stateless
    /// cookie (`docs/protocol.md`, section UDP), one KCP message per message body, with the same messages,
    /// encryption and limits as TCP. Players on every transport share rooms.
    pub async fn run_with_transports(
        self,
        listener: TcpListener,
        ws_listener: Option<TcpListener>,
        udp_socket: Option<UdpSocket>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let engine = Engine::new(self.config.engine(), self.factory, now(), unix, rand::random());
        let revocations = engine.revocations();
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let outlets = Outlets::new(self.load, self.reports);
        let engine_task = tokio::spawn(engine_task::run(engine, self.inputs_rx, outlets, stop.clone()));
        let shared = Arc::new(ConnShared {
            inputs: self.inputs,
            verifier: self.verifier,
            rules: self.config.connection(),
            keys: self.keys,
            queue_len: self.config.sync.send_queue_len,
            reload_bytes_per_sec: self.config.sync.reload_bytes_per_sec,
            queue_bytes: self.config.sync.send_queue_bytes,
            revocations,
            unauthenticated: Unauthenticated::new(
                self.config.sync.max_unauthenticated.min(self.config.sync.max_connections),
            ),
            pressure_timeout: Duration::from_secs(self.config.sync.pressure_first_frame_timeout_secs),
        });
        let sync = &self.config.sync;
        let limits = ConnectionLimits::new(sync.max_connections, sync.max_connections_per_ip).with_prefixes(
            sync.max_connections_per_prefix,
            sync.prefix_v4_bits,
            sync.prefix_v6_bits,
        );
        let ws_config = websocket::config(self.config.sync.max_frame_bytes);
        // Connection ids, shared with the UDP endpoint's sessions.
        let ids = Arc::new(AtomicU64::new(0));
        let udp_stop = CancellationToken::new();
        let udp_task = udp_socket.map(|socket| {
            let udp = self.config.udp();
            let socket = BatchSocket::new(socket, udp.kcp.mtu);
            let endpoint = Endpoint::new(udp, limits.clone(), rand::random(), rand::random(), now());
            let task = udp::run(socket, endpoint, shared.clone(), ids.clone(), tracker.clone(), udp_stop.clone());
            tokio::spawn(task)
        });
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = websocket::accept_opt(ws_listener.as_ref()), if ws_listener.is_some() => match accepted {
                    Ok((stream, peer)) => {
                        let permit = match shared.unauthenticated.admit_connection(&limits, peer.ip()) {
                            Ok(permit) => permit,
                            Err(refusal) => {
                                debug!(%peer, ?refusal, "websocket connection refused");
                                tracker.spawn(websocket::refuse(stream, refusal.message(), ws_config));
                                continue;
                            }
                        };
                        let conn = ConnId(ids.fetch_add(1, Ordering::Relaxed) + 1);
                        let pending = shared.unauthenticated.admit(conn.0);
                        debug!(conn = conn.0, %peer, pressure = pending.pressure, "accepted websocket");
                        tracker.spawn(websocket::open(conn, stream, (permit, pending), shared.clone(), ws_config));
                    }
                    Err(e) => {
                        warn!(error = %e, "websocket accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let permit = match shared.unauthenticated.admit_connection(&limits, peer.ip()) {
                            Ok(permit) => permit,
                            Err(refusal) => {
                                debug!(%peer, ?refusal, "connection refused");
                                let e = ProtocolError::new(ErrorCode::TooManyConnections, refusal.message());
                                tracker.spawn(refuse(stream, e));
                                continue;
                            }
                        };
                        let conn = ConnId(ids.fetch_add(1, Ordering::Relaxed) + 1);
                        let pending = shared.unauthenticated.admit(conn.0);
                        debug!(conn = conn.0, %peer, pressure = pending.pressure, "accepted");
                        if !open_tcp(conn, stream, (permit, pending), &shared, &tracker).await {
                            break;
                        }
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        info!("shutting down: ending games and flushing connections");
        drop(listener);
        drop(ws_listener);
        stop.cancel();
        let _ = engine_task.await;
        tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait()).await.is_err() {
            warn!("some connections did not flush within {SHUTDOWN_GRACE:?}");
        }
        // The UDP endpoint outlives the sessions' writers so that their last messages (`shutting_down`) go out.
        udp_stop.cancel();
        if let Some(task) = udp_task {
            let _ = task.await;
        }
        Ok(())
    }
}

/// The shell's clock: tokio's (so `tokio::time::pause` drives it in tests), read as the `Instant` that the engine
/// and the connections take.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// What every connection task needs.
struct ConnShared {
    inputs: mpsc::Sender<Input>,
    verifier: Arc<TokenVerifier>,
    rules: ConnectionConfig,
    keys: Arc<OnceLock<Arc<SessionKeys>>>,
    /// `sync.send_queue_len`.
    queue_len: usize,
    /// `sync.reload_bytes_per_sec`.
    reload_bytes_per_sec: u64,
    /// `sync.send_queue_bytes`.
    queue_bytes: usize,
    /// The engine's logouts and bans, checked on every first message.
    revocations: SharedRevocations,
    /// TCP and WebSocket connections that have not authenticated yet (`sync.max_unauthenticated`).
    unauthenticated: Unauthenticated,
    /// `sync.pressure_first_frame_timeout_secs`.
    pressure_timeout: Duration,
}

/// A TCP or WebSocket connection's place in the connection limits and, until it authenticates, among the
/// unauthenticated.
type Admission = (ConnectionPermit, Pending);

impl ConnShared {
    /// A new connection's protocol state, opened now.
    fn connection(&self) -> Connection {
        Connection::new(self.rules.clone(), self.verifier.clone(), now()).with_revocations(self.revocations.clone())
    }
}

/// A connection's protocol state, shared by its reader (input, timers) and its writer (sealing), as quinn shares
/// its connection between driver and streams. Each holds the lock only for a call that never waits.
type SharedConnection = Arc<Mutex<Connection>>;

fn lock(conn: &SharedConnection) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Answers a connection over a connection limit with one plaintext `error`, then closes it.
async fn refuse(mut stream: TcpStream, e: ProtocolError) {
    let wire = ServerMessage::Error(ErrorBody::from(&e)).to_wire();
    let write = async {
        stream.write_all(&wire).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// Starts a TCP connection: length-prefixed frames both ways. False when the engine is gone.
async fn open_tcp(
    conn: ConnId,
    stream: TcpStream,
    admission: Admission,
    shared: &Arc<ConnShared>,
    tracker: &TaskTracker,
) -> bool {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    // A small first read buffer (it grows as messages need): a connection that never authenticates costs little.
    let codec = FrameCodec::new(shared.rules.max_frame_bytes);
    let bodies = FramedRead::with_capacity(read, codec, READ_BUFFER)
        .inspect(|body| {
            if let Ok(body) = body {
                crate::metrics::get().received(crate::metrics::Transport::Tcp, body.len() + 4);
            }
        })
        .boxed();
    let out = Transport::Tcp(writer::TcpOut::new(write, WRITE_BUFFER));
    start(conn, bodies, out, admission, shared, tracker).await
}

/// Registers a connection's queue with the engine and starts its reader and writer over `bodies` (the message
/// bodies the transport reads) and `out`. False when the engine is gone.
async fn start(
    conn: ConnId,
    bodies: BoxStream<'static, Result<Bytes, FrameError>>,
    out: Transport,
    admission: Admission,
    shared: &Arc<ConnShared>,
    tracker: &TaskTracker,
) -> bool {
    let Some(Opened { connection, queue, cancel }) = open(conn, out, shared, tracker).await else {
        return false;
    };
    if admission.1.pressure {
        lock(&connection).set_pressure_timeout(shared.pressure_timeout);
    }
    tracker.spawn(reader::run(conn, bodies, connection, queue, cancel, shared.clone(), admission));
    true
}

/// What the read side of a connection opened by [`open`] needs.
struct Opened {
    connection: SharedConnection,
    queue: mpsc::Sender<writer::Outgoing>,
    cancel: CancellationToken,
}

/// Registers connection `conn`'s send queue with the engine and starts its writer into `out`, for any transport.
/// `None` when the engine is gone.
async fn open(conn: ConnId, out: Transport, shared: &Arc<ConnShared>, tracker: &TaskTracker) -> Option<Opened> {
    let (queue, queue_rx) = mpsc::channel(shared.queue_len);
    let cancel = CancellationToken::new();
    let queued = QueuedBytes::new(shared.queue_bytes);
    let handle = ConnHandle { queue: queue.clone(), cancel: cancel.clone(), queued: queued.clone() };
    shared.inputs.send(Input::Opened { conn, handle }).await.ok()?;
    let connection: SharedConnection = Arc::new(Mutex::new(shared.connection()));
    let limits = (queued, shared.reload_bytes_per_sec);
    tracker.spawn(writer::run(queue_rx, out, connection.clone(), cancel.clone(), limits));
    Some(Opened { connection, queue, cancel })
}
