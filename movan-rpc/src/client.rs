//! The connecting end: keeps one authenticated connection to a server, reconnecting forever with backoff.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{debug, error, info, warn};

use crate::backoff::Backoff;
use crate::config::{ConfigError, RpcConfig};
use crate::connection::{self, Endpoint, HandshakeFailure, Reader, Writer};
use crate::error::CallError;
use crate::handlers::Handlers;
use crate::peer::{Link, LinkParams, Peer};

/// Runs each time the client is connected and authenticated, with the new connection.
type OnConnectFn = dyn Fn(Peer) -> BoxFuture<'static, ()> + Send + Sync;

/// Where the client stands; watch it with [`RpcClient::watch_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not connected; (re)connecting with backoff.
    Disconnected,
    /// Connected and authenticated.
    Connected,
    /// The last attempt reached the server, but authentication failed (different shared secrets). Still retrying.
    Rejected,
    /// [`RpcClient::shutdown`] was called or the client was dropped; no more attempts.
    Stopped,
}

/// A client that keeps a connection to one server: it reconnects by itself after any failure, forever, with
/// exponential backoff and jitter, and runs `on_connect` after each successful (re)connection. Cheap to clone;
/// the connection loop stops when [`shutdown`](Self::shutdown) is called or the last clone is dropped.
#[derive(Clone)]
pub struct RpcClient {
    shared: Arc<Shared>,
    _stop_on_drop: Arc<DropGuard>,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient").field("addr", &self.shared.addr).field("state", &self.state()).finish()
    }
}

/// State shared by the client handles and the connection loop.
struct Shared {
    addr: String,
    endpoint: Arc<Endpoint>,
    on_connect: Box<OnConnectFn>,
    current: Mutex<Option<Peer>>,
    state: watch::Sender<ConnectionState>,
    stop: CancellationToken,
}

impl RpcClient {
    /// Starts connecting to `addr` (`host:port`) in the background and returns at once.
    ///
    /// `handlers` answer the server's calls; `heartbeat_payload` is attached to every ping (the sync server
    /// reports its load this way); `on_connect` runs after every successful authentication, concurrently with the
    /// connection, and may call through the [`Peer`] it gets (e.g. to register again after a reconnect); it is
    /// cancelled if that connection closes first.
    ///
    /// Fails when `config` is invalid (e.g. an empty secret).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (the connection loop is spawned on it).
    pub fn connect(
        addr: impl Into<String>,
        config: RpcConfig,
        handlers: Handlers,
        heartbeat_payload: impl Fn() -> Option<Value> + Send + Sync + 'static,
        on_connect: impl Fn(Peer) -> BoxFuture<'static, ()> + Send + Sync + 'static,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            addr: addr.into(),
            endpoint: Arc::new(Endpoint { config, handlers, heartbeat_payload: Some(Arc::new(heartbeat_payload)) }),
            on_connect: Box::new(on_connect),
            current: Mutex::new(None),
            state: watch::Sender::new(ConnectionState::Disconnected),
            stop: stop.clone(),
        });
        tokio::spawn(reconnect_loop(shared.clone()));
        Ok(Self { shared, _stop_on_drop: Arc::new(stop.drop_guard()) })
    }

    /// Calls `method` on the server, with the configured `call_timeout`. Fails at once with
    /// [`CallError::Disconnected`] (or [`CallError::Unauthenticated`] after a refused attempt) when not
    /// connected; never waits for a reconnection.
    pub async fn call<Req, Resp>(&self, method: &str, req: &Req) -> Result<Resp, CallError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        self.current()?.call(method, req).await
    }

    /// Like [`call`](Self::call), with its own timeout.
    pub async fn call_with_timeout<Req, Resp>(
        &self,
        method: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        self.current()?.call_with_timeout(method, req, timeout).await
    }

    /// Sends a notification to the server; fails at once when not connected.
    pub fn notify<Req>(&self, method: &str, req: &Req) -> Result<(), CallError>
    where
        Req: Serialize + ?Sized,
    {
        self.current()?.notify(method, req)
    }

    /// The current connection, if connected.
    pub fn peer(&self) -> Option<Peer> {
        self.current().ok()
    }

    /// Whether a connection is up and authenticated.
    pub fn is_connected(&self) -> bool {
        self.state() == ConnectionState::Connected
    }

    /// The current state.
    pub fn state(&self) -> ConnectionState {
        *self.shared.state.borrow()
    }

    /// A receiver that sees every state change.
    pub fn watch_state(&self) -> watch::Receiver<ConnectionState> {
        self.shared.state.subscribe()
    }

    /// Waits until connected, at most `timeout`; returns whether connected.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut state = self.watch_state();
        let connected = state.wait_for(|s| *s == ConnectionState::Connected || *s == ConnectionState::Stopped);
        matches!(tokio::time::timeout(timeout, connected).await, Ok(Ok(s)) if *s == ConnectionState::Connected)
    }

    /// Closes the connection and stops reconnecting. Pending calls fail with [`CallError::Disconnected`].
    pub fn shutdown(&self) {
        self.shared.stop.cancel();
    }

    fn current(&self) -> Result<Peer, CallError> {
        match self.shared.current().clone() {
            Some(peer) if peer.is_connected() => Ok(peer),
            _ if self.state() == ConnectionState::Rejected => Err(CallError::Unauthenticated),
            _ => Err(CallError::Disconnected),
        }
    }
}

impl Shared {
    fn current(&self) -> MutexGuard<'_, Option<Peer>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_state(&self, state: ConnectionState) {
        self.state.send_if_modified(|current| std::mem::replace(current, state) != state);
    }
}

/// Connects, authenticates and serves connections until stopped.
async fn reconnect_loop(shared: Arc<Shared>) {
    let config = &shared.endpoint.config;
    let mut backoff = Backoff::new(config.backoff_initial, config.backoff_max);
    let mut rng = StdRng::from_entropy();
    loop {
        let attempt = tokio::time::timeout(config.handshake_timeout, connect(&shared));
        let outcome = tokio::select! {
            () = shared.stop.cancelled() => break,
            outcome = attempt => outcome,
        };
        match outcome {
            Ok(Ok((reader, writer, server_node))) => {
                backoff.reset();
                serve(&shared, reader, writer, server_node).await;
            }
            Ok(Err(Attempt::Handshake(e))) if e.is_auth_failure() => {
                error!(
                    addr = shared.addr,
                    error = %e,
                    "rpc server refused us or failed to prove the shared secret: check that both use the same secret"
                );
                shared.set_state(ConnectionState::Rejected);
            }
            Ok(Err(e)) => {
                log_failure(&shared.addr, backoff.attempt(), &e);
                shared.set_state(ConnectionState::Disconnected);
            }
            Err(_) => {
                warn!(addr = shared.addr, timeout = ?config.handshake_timeout, "rpc connect timed out");
                shared.set_state(ConnectionState::Disconnected);
            }
        }
        let delay = backoff.next_delay(&mut rng);
        debug!(addr = shared.addr, ?delay, "rpc reconnecting after a delay");
        tokio::select! {
            () = shared.stop.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    shared.set_state(ConnectionState::Stopped);
}

/// Why one connection attempt failed.
#[derive(Debug, thiserror::Error)]
enum Attempt {
    #[error("connect failed: {0}")]
    Connect(#[from] std::io::Error),
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeFailure),
}

async fn connect(shared: &Shared) -> Result<(Reader, Writer, String), Attempt> {
    let stream = TcpStream::connect(&shared.addr).await?;
    let (mut reader, mut writer) = connection::framed(stream, shared.endpoint.config.max_frame_bytes);
    let server_node = connection::client_handshake(&mut reader, &mut writer, &shared.endpoint.config).await?;
    Ok((reader, writer, server_node))
}

/// Serves one authenticated connection until it closes.
async fn serve(shared: &Shared, reader: Reader, writer: Writer, server_node: String) {
    let config = &shared.endpoint.config;
    let remote = match reader.get_ref().peer_addr() {
        Ok(remote) => remote,
        Err(e) => {
            warn!(addr = shared.addr, error = %e, "rpc connection lost right after the handshake");
            return;
        }
    };
    let (peer, out_rx) = Link::open(LinkParams {
        node_id: server_node,
        remote,
        max_frame: config.max_frame_bytes,
        call_timeout: config.call_timeout,
        max_in_flight: config.max_in_flight,
        send_queue: config.send_queue,
        parent: shared.stop.clone(),
    });
    *shared.current() = Some(peer.clone());
    shared.set_state(ConnectionState::Connected);
    info!(addr = shared.addr, node = peer.node_id(), peer = peer.id(), "rpc connected");
    let hook = (shared.on_connect)(peer.clone());
    let reason = connection::run(peer.clone(), reader, writer, out_rx, shared.endpoint.clone(), Some(hook)).await;
    *shared.current() = None;
    shared.set_state(ConnectionState::Disconnected);
    if shared.stop.is_cancelled() {
        info!(addr = shared.addr, "rpc client stopped");
    } else {
        warn!(addr = shared.addr, %reason, "rpc connection lost; reconnecting");
    }
    shared.endpoint.handlers.disconnected(&peer);
}

/// Logs the first failure of a streak as a warning, then every tenth; the rest at debug level.
fn log_failure(addr: &str, attempt: u32, error: &Attempt) {
    if attempt.is_multiple_of(10) {
        warn!(addr, attempt, %error, "rpc connection attempt failed; retrying");
    } else {
        debug!(addr, attempt, %error, "rpc connection attempt failed; retrying");
    }
}
