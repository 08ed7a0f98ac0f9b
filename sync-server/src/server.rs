//! The tokio shell around the [`Engine`]: it accepts connections, turns bytes into parsed requests, feeds the engine
//! with the current time, and carries its outputs to per-connection writer tasks. It holds no game logic.
//!
//! Tasks: one accept loop, one engine task (owns the engine and every connection's send queue), and per connection
//! a reader (framing, parsing, authentication) and a writer (drains a bounded queue into the socket, batching
//! writes). A connection whose queue is full is dropped so that a slow reader never delays a tick.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use futures::SinkExt;
use futures::StreamExt;
use futures::stream::{BoxStream, SplitSink};
use movan_protocol::codec::LENGTH_PREFIX;
use movan_protocol::crypto::{self, Opener, Sealer};
use movan_protocol::server::{ErrorBody, ServerMessage};
use movan_protocol::{ErrorCode, FrameCodec, FrameError, ProtocolError, Request, TokenClaims, parse_client_message};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request as WsRequest, Response as WsResponse};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, error::CapacityError};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::auth::TokenVerifier;
use crate::config::{Config, Encryption};
use crate::engine::{ConnId, Engine, Identity, MatchReport, Output};
use crate::history::Reload;
use crate::keys::SessionKeys;
use crate::limits::{ConnectionLimits, ConnectionPermit, TokenBucket};
use crate::room::{RoomFactory, default_rooms};

/// Events from the accept loop and the readers to the engine task.
const EVENT_QUEUE: usize = 16 * 1024;
/// How long a graceful shutdown waits for connections to flush.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Buffered bytes per connection writer before a flush.
const WRITE_BUFFER: usize = 64 * 1024;
/// A write that makes no progress for this long means the peer stopped reading: the connection is dropped.
const WRITE_STALL: Duration = Duration::from_secs(10);

/// A configured sync server, ready to [`run`](Self::run) on a listener.
pub struct Server {
    config: Config,
    verifier: Arc<TokenVerifier>,
    factory: Box<dyn RoomFactory>,
    events: mpsc::Sender<Event>,
    events_rx: mpsc::Receiver<Event>,
    load: Arc<Load>,
    reports: Option<mpsc::Sender<MatchReport>>,
    keys: Arc<OnceLock<Arc<SessionKeys>>>,
}

/// A handle to a [`Server`] for the services around it (the account-server link): push revocations, read the
/// load. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Control {
    events: mpsc::Sender<Event>,
    load: Arc<Load>,
    keys: Arc<OnceLock<Arc<SessionKeys>>>,
}

/// Players and rooms, published by the engine task after every batch of events.
#[derive(Debug, Default)]
struct Load {
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
        let _ = self.events.send(Event::RevokeSession { uid: uid.to_owned(), sid: sid.to_owned() }).await;
    }

    /// Bans `uid` as of `at_unix`: its connection is closed and tokens issued before that second refused.
    pub async fn ban(&self, uid: &str, at_unix: u64) {
        let _ = self.events.send(Event::Ban { uid: uid.to_owned(), at_unix }).await;
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
        let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
        Self {
            config,
            verifier: Arc::new(verifier),
            factory: Box::new(default_rooms()),
            events,
            events_rx,
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
        Control { events: self.events.clone(), load: self.load.clone(), keys: self.keys.clone() }
    }

    /// Sends a [`MatchReport`] to `reports` for every game that ends (dropped with a warning when it is full).
    pub fn with_match_reports(mut self, reports: mpsc::Sender<MatchReport>) -> Self {
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
    /// one frame body, with the same messages, encryption and limits as TCP. Players on either transport share rooms.
    pub async fn run_with_websocket(
        self,
        listener: TcpListener,
        ws_listener: Option<TcpListener>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let now = Instant::now();
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let seed = rand::random();
        let engine = Engine::new(self.config.engine(), self.factory, now, unix, seed);
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let outlets = Outlets { conns: HashMap::new(), load: self.load, reports: self.reports };
        let engine_task = tokio::spawn(engine_loop(engine, self.events_rx, outlets, stop.clone()));
        let shared = Arc::new(ConnShared {
            events: self.events,
            verifier: self.verifier,
            max_frame: self.config.sync.max_frame_bytes,
            encryption: self.config.sync.encryption == Encryption::Required,
            keys: self.keys,
            first_frame_timeout: Duration::from_secs(self.config.sync.first_frame_timeout_secs),
            idle_timeout: (self.config.sync.idle_timeout_secs > 0)
                .then(|| Duration::from_secs(self.config.sync.idle_timeout_secs)),
            rate: (self.config.sync.max_messages_per_sec, self.config.sync.message_burst),
        });
        let limits = ConnectionLimits::new(self.config.sync.max_connections, self.config.sync.max_connections_per_ip);
        let ws_config = websocket_config(self.config.sync.max_frame_bytes);
        let queue_len = self.config.sync.send_queue_len;
        let mut next_conn = 0u64;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = accept_opt(ws_listener.as_ref()), if ws_listener.is_some() => match accepted {
                    Ok((stream, peer)) => {
                        let permit = match limits.admit(peer.ip()) {
                            Ok(permit) => permit,
                            Err(refusal) => {
                                debug!(%peer, ?refusal, "websocket connection refused");
                                tracker.spawn(refuse_websocket(stream, refusal.message(), ws_config));
                                continue;
                            }
                        };
                        next_conn += 1;
                        let conn = ConnId(next_conn);
                        debug!(conn = conn.0, %peer, "accepted websocket");
                        tracker.spawn(open_websocket(conn, stream, permit, queue_len, shared.clone(), ws_config));
                    }
                    Err(e) => {
                        warn!(error = %e, "websocket accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let permit = match limits.admit(peer.ip()) {
                            Ok(permit) => permit,
                            Err(refusal) => {
                                debug!(%peer, ?refusal, "connection refused");
                                let e = ProtocolError::new(ErrorCode::TooManyConnections, refusal.message());
                                tracker.spawn(refuse(stream, e));
                                continue;
                            }
                        };
                        next_conn += 1;
                        let conn = ConnId(next_conn);
                        debug!(conn = conn.0, %peer, "accepted");
                        if !open_connection(conn, stream, permit, queue_len, &shared, &tracker).await {
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
        Ok(())
    }
}

/// What every connection task needs.
struct ConnShared {
    events: mpsc::Sender<Event>,
    verifier: Arc<TokenVerifier>,
    max_frame: usize,
    /// `sync.encryption = "required"`.
    encryption: bool,
    keys: Arc<OnceLock<Arc<SessionKeys>>>,
    /// `sync.first_frame_timeout_secs`: until the connection is bound to its player.
    first_frame_timeout: Duration,
    /// `sync.idle_timeout_secs`, if set.
    idle_timeout: Option<Duration>,
    /// (`sync.max_messages_per_sec`, `sync.message_burst`).
    rate: (u32, u32),
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

#[derive(Debug)]
enum Event {
    Opened {
        conn: ConnId,
        handle: ConnHandle,
    },
    Authenticated {
        conn: ConnId,
        identity: Identity,
    },
    Request {
        conn: ConnId,
        request: Request,
        timestamp: Option<f64>,
    },
    Closed {
        conn: ConnId,
    },
    /// An `error` for the connection, then a close when `close` is set: ordered after the engine's answers to the
    /// connection's earlier requests.
    Reply {
        conn: ConnId,
        error: ProtocolError,
        close: bool,
    },
    RevokeSession {
        uid: String,
        sid: String,
    },
    Ban {
        uid: String,
        at_unix: u64,
    },
}

/// Where the engine's outputs go: connections, the load gauge, the match-report channel.
struct Outlets {
    conns: HashMap<ConnId, ConnHandle>,
    load: Arc<Load>,
    reports: Option<mpsc::Sender<MatchReport>>,
}

/// The engine task's grip on a connection: its send queue and its kill switch.
#[derive(Debug)]
struct ConnHandle {
    queue: mpsc::Sender<Outgoing>,
    cancel: CancellationToken,
}

/// One entry of a connection's send queue.
enum Outgoing {
    Bytes(Bytes),
    Reload(Reload),
    /// From now on, seal every frame with this.
    Seal(Box<Sealer>),
    /// Flush and close.
    Close,
}

/// Registers a new connection with the engine and starts its tasks. False when the engine is gone.
async fn open_connection(
    conn: ConnId,
    stream: TcpStream,
    permit: ConnectionPermit,
    queue_len: usize,
    shared: &Arc<ConnShared>,
    tracker: &TaskTracker,
) -> bool {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let frames = FramedRead::new(read, FrameCodec::new(shared.max_frame)).boxed();
    let out = Transport::Tcp(BufWriter::with_capacity(WRITE_BUFFER, write));
    start_connection(conn, frames, out, permit, queue_len, shared, tracker).await
}

/// Registers a connection's queue with the engine and starts its reader and writer. False when the engine is gone.
async fn start_connection(
    conn: ConnId,
    frames: BoxStream<'static, Result<Bytes, FrameError>>,
    out: Transport,
    permit: ConnectionPermit,
    queue_len: usize,
    shared: &Arc<ConnShared>,
    tracker: &TaskTracker,
) -> bool {
    let (queue, queue_rx) = mpsc::channel(queue_len);
    let cancel = CancellationToken::new();
    let handle = ConnHandle { queue: queue.clone(), cancel: cancel.clone() };
    if shared.events.send(Event::Opened { conn, handle }).await.is_err() {
        return false;
    }
    tracker.spawn(write_loop(queue_rx, out, cancel.clone()));
    tracker.spawn(read_loop(conn, frames, queue, cancel, shared.clone(), permit));
    true
}

/// The WebSocket path; other paths get 404.
pub const WS_PATH: &str = "/ws";

/// The WebSocket limits, set explicitly: a message and a frame are at most `max_frame_bytes` (like a TCP frame
/// body), and at most 1 MiB waits in the socket's write buffer (the per-connection send queue bounds the rest).
fn websocket_config(max_frame_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max_frame_bytes))
        .max_frame_size(Some(max_frame_bytes))
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(1024 * 1024)
        .accept_unmasked_frames(false)
}

async fn accept_opt(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// The HTTP upgrade to WebSocket, within the first-frame timeout; only [`WS_PATH`] is served.
async fn websocket_handshake(
    stream: TcpStream,
    config: WebSocketConfig,
    timeout: Duration,
) -> Option<WebSocketStream<TcpStream>> {
    let _ = stream.set_nodelay(true);
    #[allow(clippy::result_large_err)] // The callback's signature is tungstenite's.
    let check_path = |req: &WsRequest, resp: WsResponse| -> Result<WsResponse, ErrorResponse> {
        if req.uri().path() == WS_PATH {
            Ok(resp)
        } else {
            let mut not_found = ErrorResponse::new(Some(format!("Movan's WebSocket endpoint is {WS_PATH}")));
            *not_found.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::NOT_FOUND;
            Err(not_found)
        }
    };
    match tokio::time::timeout(
        timeout,
        tokio_tungstenite::accept_hdr_async_with_config(stream, check_path, Some(config)),
    )
    .await
    {
        Ok(Ok(ws)) => Some(ws),
        Ok(Err(e)) => {
            debug!(error = %e, "websocket handshake failed");
            None
        }
        Err(_) => {
            debug!("websocket handshake timed out");
            None
        }
    }
}

/// Upgrades an accepted WebSocket connection and starts its tasks.
async fn open_websocket(
    conn: ConnId,
    stream: TcpStream,
    permit: ConnectionPermit,
    queue_len: usize,
    shared: Arc<ConnShared>,
    config: WebSocketConfig,
) {
    let Some(ws) = websocket_handshake(stream, config, shared.first_frame_timeout).await else {
        return;
    };
    let (sink, stream) = ws.split();
    let max = shared.max_frame;
    let frames = stream
        .filter_map(move |msg| async move {
            match msg {
                Ok(Message::Binary(body)) => Some(Ok(body)),
                // JSON is text: accept it too (it can only be plaintext, so it fails to open when sealed).
                Ok(Message::Text(text)) => Some(Ok(Bytes::from(text))),
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => None,
                Ok(Message::Close(_)) => Some(Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()))),
                Err(WsError::Capacity(CapacityError::MessageTooLong { size, .. })) => {
                    Some(Err(FrameError::TooLarge { len: size as u64, max }))
                }
                Err(e) => Some(Err(FrameError::Io(std::io::Error::other(e)))),
            }
        })
        .take_while(|item| {
            let eof = matches!(item, Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof);
            std::future::ready(!eof)
        })
        .boxed();
    let tracker = TaskTracker::new();
    if start_connection(conn, frames, Transport::Ws(Box::new(sink)), permit, queue_len, &shared, &tracker).await {
        tracker.close();
        tracker.wait().await;
    }
}

/// Answers a WebSocket connection over a connection limit with one `error` message, then closes it.
async fn refuse_websocket(stream: TcpStream, message: String, config: WebSocketConfig) {
    let Some(mut ws) = websocket_handshake(stream, config, Duration::from_secs(2)).await else {
        return;
    };
    let e = ProtocolError::new(ErrorCode::TooManyConnections, message);
    let wire = ServerMessage::Error(ErrorBody::from(&e)).to_wire();
    let body = wire.slice(LENGTH_PREFIX..);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = ws.send(Message::Binary(body)).await;
        let _ = ws.close(None).await;
    })
    .await;
}

/// Owns the engine: feeds it events and deadlines, and routes its outputs to the connections.
async fn engine_loop(mut engine: Engine, mut events: mpsc::Receiver<Event>, mut out: Outlets, stop: CancellationToken) {
    let mut stats_every = tokio::time::interval(Duration::from_secs(30));
    stats_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let deadline = engine.poll_timeout();
        tokio::select! {
            biased;
            () = stop.cancelled() => {
                engine.shutdown(Instant::now());
                dispatch(&mut engine, &mut out);
                return;
            }
            () = sleep_until(deadline), if deadline.is_some() => engine.handle_timeout(Instant::now()),
            event = events.recv() => {
                let Some(event) = event else { return };
                handle_event(&mut engine, &mut out, event);
                // Take what else is already queued before dispatching, bounded so ticks stay on time.
                for _ in 0..256 {
                    match events.try_recv() {
                        Ok(event) => handle_event(&mut engine, &mut out, event),
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
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline.into()).await;
    }
}

fn handle_event(engine: &mut Engine, out: &mut Outlets, event: Event) {
    let now = Instant::now();
    match event {
        Event::Opened { conn, handle } => {
            out.conns.insert(conn, handle);
        }
        Event::Authenticated { conn, identity } => {
            if out.conns.contains_key(&conn) {
                info!(conn = conn.0, uid = %identity.uid, "player connected");
                engine.connect(conn, &identity, now);
            }
        }
        Event::RevokeSession { uid, sid } => {
            info!(uid = %uid, "session revoked");
            engine.revoke_session(&uid, &sid, now);
        }
        Event::Ban { uid, at_unix } => {
            info!(uid = %uid, "player banned");
            engine.ban(&uid, at_unix, now);
        }
        Event::Request { conn, request, timestamp } => engine.handle(conn, request, timestamp, now),
        Event::Reply { conn, error, close } => engine.reply(conn, &error, close),
        Event::Closed { conn } => {
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
            Output::Send { conn, bytes } => (conn, Outgoing::Bytes(bytes)),
            Output::Reload { conn, reload } => (conn, Outgoing::Reload(reload)),
            Output::Close { conn, reason } => {
                debug!(conn = conn.0, ?reason, "closing");
                if let Some(handle) = conns.remove(&conn)
                    && handle.queue.try_send(Outgoing::Close).is_err()
                {
                    handle.cancel.cancel();
                }
                continue;
            }
            Output::GameEnded(report) => {
                info!(room = %report.room_id, reason = %report.end_reason, frames = report.frame_count, "game ended");
                if let Some(reports) = &out.reports
                    && reports.try_send(report).is_err()
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
                warn!(conn = conn.0, "send queue full: dropping slow connection");
                if let Some(handle) = conns.remove(&conn) {
                    handle.cancel.cancel();
                }
                engine.disconnect(conn, Instant::now());
            }
            Err(TrySendError::Closed(_)) => {
                conns.remove(&conn);
                engine.disconnect(conn, Instant::now());
            }
        }
    }
}

/// Reads frames, parses them, authenticates the first one, and forwards requests to the engine. Enforces the
/// first-frame and idle timeouts and the message rate limit. `_permit` holds the connection's place in the
/// connection limits until the reader ends.
async fn read_loop(
    conn: ConnId,
    mut frames: BoxStream<'static, Result<Bytes, FrameError>>,
    queue: mpsc::Sender<Outgoing>,
    cancel: CancellationToken,
    shared: Arc<ConnShared>,
    _permit: ConnectionPermit,
) {
    let mut identity: Option<(String, String)> = None;
    let mut opener: Option<Opener> = None;
    // With encryption on, the player is bound (which may replace its other connection) and its first request runs
    // only once a sealed frame opened: a stolen token without the session key does nothing at all.
    let mut deferred: Vec<Event> = Vec::new();
    let opened_at = tokio::time::Instant::now();
    let mut bucket = TokenBucket::new(shared.rate.0, shared.rate.1, Instant::now());
    loop {
        // Until the player is bound, the first-frame timeout runs from the connect; then the idle timeout from the
        // last frame.
        let bound = identity.is_some() && deferred.is_empty();
        let deadline = match (bound, shared.idle_timeout) {
            (false, _) => Some(opened_at + shared.first_frame_timeout),
            (true, idle) => idle.map(|idle| tokio::time::Instant::now() + idle),
        };
        let item = tokio::select! {
            () = cancel.cancelled() => break,
            () = sleep_until_opt(deadline), if deadline.is_some() => {
                let e = if bound {
                    ProtocolError::new(
                        ErrorCode::Timeout,
                        format!(
                            "no message for {} s (sync.idle_timeout_secs); send a ping to keep an idle connection",
                            shared.idle_timeout.unwrap_or_default().as_secs()
                        ),
                    )
                } else {
                    ProtocolError::new(
                        ErrorCode::Timeout,
                        format!(
                            "the connection was not authenticated within {} s (sync.first_frame_timeout_secs)",
                            shared.first_frame_timeout.as_secs()
                        ),
                    )
                };
                debug!(conn = conn.0, bound, "timed out");
                reply(&shared, conn, e, true).await;
                break;
            }
            item = frames.next() => item,
        };
        if matches!(item, Some(Ok(_))) && !bucket.try_take(Instant::now()) {
            let (per_sec, burst) = shared.rate;
            let e = ProtocolError::new(
                ErrorCode::RateLimited,
                format!(
                    "more than {per_sec} messages per second after a burst of {burst} (sync.max_messages_per_sec, \
                     sync.message_burst)"
                ),
            );
            debug!(conn = conn.0, "rate limited: closing");
            reply(&shared, conn, e, true).await;
            break;
        }
        let body = match item {
            None => break,
            Some(Ok(body)) => match opener.as_mut() {
                None => body,
                Some(opener) => match opener.open(&body) {
                    Ok(plain) => {
                        let mut sent = true;
                        for event in deferred.drain(..) {
                            sent &= shared.events.send(event).await.is_ok();
                        }
                        if !sent {
                            break;
                        }
                        Bytes::from(plain)
                    }
                    Err(e) => {
                        // Tampered, replayed, reordered or forged: close without a word (see docs/encryption.md).
                        debug!(conn = conn.0, error = %e, "sealed frame rejected: closing");
                        break;
                    }
                },
            },
            Some(Err(FrameError::TooLarge { len, max })) => {
                let e = ProtocolError::new(
                    ErrorCode::FrameTooLarge,
                    format!("frame of {len} bytes exceeds the maximum of {max} bytes (sync.max_frame_bytes)"),
                );
                reply(&shared, conn, e, true).await;
                break;
            }
            Some(Err(FrameError::Io(e))) => {
                debug!(conn = conn.0, error = %e, "read failed");
                break;
            }
        };
        let message = match parse_client_message(&body) {
            Ok(message) => message,
            Err(e) => {
                // The first message must authenticate; anything else unparseable is answered and skipped.
                let first = identity.is_none();
                reply(&shared, conn, e, first).await;
                if first {
                    break;
                }
                continue;
            }
        };
        let proto = message.request.proto();
        match &identity {
            None => match authenticate(&shared.verifier, message.uid.as_str(), message.token.as_deref()) {
                Ok(claims) => {
                    match handshake(&shared, &claims, &queue).await {
                        Ok(o) => opener = o,
                        Err(e) => {
                            reply(&shared, conn, e.with_proto(proto), true).await;
                            break;
                        }
                    }
                    identity = Some((message.uid.clone(), message.token.clone().unwrap_or_default()));
                    let who = Identity { uid: claims.sub, sid: claims.sid, iat: claims.iat };
                    if opener.is_some() {
                        deferred.push(Event::Authenticated { conn, identity: who });
                        deferred.push(Event::Request { conn, request: message.request, timestamp: message.timestamp });
                        continue;
                    }
                    if shared.events.send(Event::Authenticated { conn, identity: who }).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    reply(&shared, conn, e.with_proto(proto), true).await;
                    break;
                }
            },
            Some((uid, token)) => {
                let token_ok = match message.token.as_deref() {
                    None => Ok(()),
                    Some(t) if t == token => Ok(()),
                    Some(t) => authenticate(&shared.verifier, uid, Some(t)).map(drop),
                };
                if let Err(e) = token_ok {
                    reply(&shared, conn, e.with_proto(proto), false).await;
                    continue;
                }
                if message.uid != *uid {
                    let e = ProtocolError::new(
                        ErrorCode::UidMismatch,
                        format!("this connection belongs to uid {uid:?}, not {:?}", message.uid),
                    );
                    reply(&shared, conn, e.with_proto(proto), false).await;
                    continue;
                }
            }
        }
        let event = Event::Request { conn, request: message.request, timestamp: message.timestamp };
        if shared.events.send(event).await.is_err() {
            break;
        }
    }
    let _ = shared.events.send(Event::Closed { conn }).await;
}

/// Answers a successful first message with the handshake: with encryption on, fetches the session key, queues the
/// plaintext handshake and the writer's sealer, and returns the reader's opener.
async fn handshake(
    shared: &ConnShared,
    claims: &TokenClaims,
    queue: &mpsc::Sender<Outgoing>,
) -> Result<Option<Opener>, ProtocolError> {
    let full = || ProtocolError::new(ErrorCode::LimitExceeded, "send queue full during the handshake");
    if !shared.encryption {
        queue.try_send(Outgoing::Bytes(crypto::plaintext_handshake_message())).map_err(|_| full())?;
        return Ok(None);
    }
    let keys = shared.keys.get().ok_or_else(|| {
        ProtocolError::new(ErrorCode::Unavailable, "this server has no source of session keys (no account server link)")
    })?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let key = keys.get(&claims.sub, &claims.sid, now).await?;
    let salt = crypto::generate_salt(&mut rand::rngs::OsRng);
    let (sealer, opener) = crypto::server_side(&key, &salt);
    queue.try_send(Outgoing::Bytes(crypto::handshake_message(&salt))).map_err(|_| full())?;
    queue.try_send(Outgoing::Seal(Box::new(sealer))).map_err(|_| full())?;
    Ok(Some(opener))
}

/// Checks that `token` is valid and belongs to `uid`.
fn authenticate(verifier: &TokenVerifier, uid: &str, token: Option<&str>) -> Result<TokenClaims, ProtocolError> {
    let token = token.ok_or_else(|| {
        ProtocolError::new(
            ErrorCode::Unauthenticated,
            "the first message of a connection must carry a token from the account server's login",
        )
    })?;
    let claims = verifier.verify(token)?;
    if claims.sub != uid {
        return Err(ProtocolError::new(
            ErrorCode::UidMismatch,
            format!("the token belongs to uid {:?}, not {uid:?}", claims.sub),
        ));
    }
    Ok(claims)
}

/// Has the engine send this connection an `error`, then a close when `close` is set, after its answers to the
/// connection's earlier requests.
async fn reply(shared: &ConnShared, conn: ConnId, error: ProtocolError, close: bool) {
    let _ = shared.events.send(Event::Reply { conn, error, close }).await;
}

/// Drains the connection's queue into the socket, batching what is ready into one flush.
async fn write_loop(mut queue: mpsc::Receiver<Outgoing>, out: Transport, cancel: CancellationToken) {
    let mut out = Writer { out, sealer: None, scratch: BytesMut::new() };
    let work = async {
        while let Some(first) = queue.recv().await {
            let mut item = Some(first);
            while let Some(next) = item.take() {
                if !out.write_item(next).await? {
                    stall_guard(out.out.flush()).await?;
                    return Ok::<(), std::io::Error>(());
                }
                item = queue.try_recv().ok();
            }
            stall_guard(out.out.flush()).await?;
        }
        Ok(())
    };
    tokio::select! {
        () = cancel.cancelled() => {}
        result = work => {
            if let Err(e) = result {
                debug!(error = %e, "write failed");
            }
        }
    }
    let _ = out.out.shutdown().await;
    cancel.cancel();
}

/// Where a connection's frames go: a buffered TCP stream (length prefix and body), or WebSocket binary messages
/// (the body alone; the message boundary replaces the prefix).
enum Transport {
    Tcp(BufWriter<OwnedWriteHalf>),
    Ws(Box<SplitSink<WebSocketStream<TcpStream>, Message>>),
}

impl Transport {
    /// Queues one wire frame (length prefix included).
    async fn write_all(&mut self, wire: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Tcp(w) => w.write_all(wire).await,
            Self::Ws(sink) => {
                let body = Bytes::copy_from_slice(wire.get(LENGTH_PREFIX..).unwrap_or_default());
                sink.feed(Message::Binary(body)).await.map_err(std::io::Error::other)
            }
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Tcp(w) => w.flush().await,
            Self::Ws(sink) => sink.flush().await.map_err(std::io::Error::other),
        }
    }

    async fn shutdown(&mut self) -> std::io::Result<()> {
        match self {
            Self::Tcp(w) => w.shutdown().await,
            Self::Ws(sink) => sink.close().await.map_err(std::io::Error::other),
        }
    }
}

/// A connection's write side: buffered, and sealing every frame once the handshake switched encryption on.
struct Writer {
    out: Transport,
    sealer: Option<Box<Sealer>>,
    scratch: BytesMut,
}

impl Writer {
    /// Writes one queue entry, each write bounded by [`WRITE_STALL`]; false means "close now".
    async fn write_item(&mut self, item: Outgoing) -> std::io::Result<bool> {
        match item {
            Outgoing::Bytes(bytes) => self.write_frame(&bytes).await?,
            Outgoing::Reload(reload) => {
                for chunk in reload {
                    self.write_frame(&chunk).await?;
                }
            }
            Outgoing::Seal(sealer) => self.sealer = Some(sealer),
            Outgoing::Close => return Ok(false),
        }
        Ok(true)
    }

    /// Writes a wire frame (length prefix included), sealed when encryption is on.
    async fn write_frame(&mut self, wire: &[u8]) -> std::io::Result<()> {
        let Some(sealer) = self.sealer.as_mut() else {
            return stall_guard(self.out.write_all(wire)).await;
        };
        self.scratch.clear();
        sealer
            .seal_into(wire.get(LENGTH_PREFIX..).unwrap_or_default(), &mut self.scratch)
            .map_err(|e| std::io::Error::other(format!("cannot seal: {e}")))?;
        stall_guard(self.out.write_all(&self.scratch)).await
    }
}

/// Fails a write that stalls longer than [`WRITE_STALL`].
async fn stall_guard<T>(write: impl Future<Output = std::io::Result<T>>) -> std::io::Result<T> {
    tokio::time::timeout(WRITE_STALL, write)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "peer stopped reading"))?
}
