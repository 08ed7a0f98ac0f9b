//! The handle to one authenticated connection, and the set of a server's connections.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::call_table::{CallTable, StartError};
use crate::error::CallError;
use crate::wire::{self, ErrorBody, Message};

/// Why a connection closed. Logged, and available from [`Peer::disconnect_reason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The peer closed the connection.
    Closed,
    /// Nothing received for `heartbeat_misses` heartbeat intervals.
    HeartbeatTimeout,
    /// The outgoing queue was full, or a write made no progress: the peer stopped reading.
    TooSlow,
    /// More notifications queued than `max_in_flight`: the peer sends faster than they are handled.
    NotificationBacklog,
    /// The peer broke the protocol (bad frame or message); the detail says how.
    Protocol(String),
    /// The peer sent an `error` message and closed.
    PeerError(ErrorBody),
    /// Reading or writing the socket failed.
    Io(String),
    /// A newer connection authenticated with the same node id.
    Replaced,
    /// [`Peer::close`] was called.
    ClosedLocally,
    /// The server or client is shutting down.
    Shutdown,
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Closed => f.write_str("closed by the peer"),
            Self::HeartbeatTimeout => f.write_str("peer silent for too long (heartbeat timeout)"),
            Self::TooSlow => f.write_str("peer too slow to read (send queue full or write stalled)"),
            Self::NotificationBacklog => f.write_str("too many notifications waiting to be handled"),
            Self::Protocol(detail) => write!(f, "protocol violation: {detail}"),
            Self::PeerError(body) => write!(f, "peer error {}: {}", body.code, body.message),
            Self::Io(detail) => write!(f, "i/o error: {detail}"),
            Self::Replaced => f.write_str("replaced by a newer connection from the same node"),
            Self::ClosedLocally => f.write_str("closed locally"),
            Self::Shutdown => f.write_str("shutting down"),
        }
    }
}

/// A handle to one authenticated connection: call or notify the node at the other end. Cheap to clone; a
/// handle outliving its connection fails every call with [`CallError::Disconnected`].
#[derive(Clone)]
pub struct Peer {
    link: Arc<Link>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("id", &self.link.id)
            .field("node_id", &self.link.node_id)
            .field("remote", &self.link.remote)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Peer {
    /// Calls `method` with `req` and waits for the reply, at most the configured `call_timeout`.
    pub async fn call<Req, Resp>(&self, method: &str, req: &Req) -> Result<Resp, CallError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        self.call_with_timeout(method, req, self.link.call_timeout).await
    }

    /// Calls `method` with `req` and waits for the reply, at most `timeout`. Fails at once with
    /// [`CallError::Disconnected`] when the connection is closed, and with [`CallError::Overloaded`] when
    /// `max_in_flight` of our calls already await replies on it.
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
        let params = serde_json::to_value(req).map_err(|e| CallError::BadParams(format!("could not encode: {e}")))?;
        let result = self.link.call(method, params, timeout).await?;
        serde_json::from_value(result).map_err(|e| CallError::BadResponse(e.to_string()))
    }

    /// Sends a notification (no reply). Returns once queued; fails with [`CallError::Disconnected`] when the
    /// connection is closed.
    pub fn notify<Req>(&self, method: &str, req: &Req) -> Result<(), CallError>
    where
        Req: Serialize + ?Sized,
    {
        let params = serde_json::to_value(req).map_err(|e| CallError::BadParams(format!("could not encode: {e}")))?;
        self.link.send(&Message::Notify { method: method.to_owned(), params })
    }

    /// Whether the connection is still open.
    pub fn is_connected(&self) -> bool {
        !self.link.closed.is_cancelled()
    }

    /// The node id the peer authenticated with.
    pub fn node_id(&self) -> &str {
        &self.link.node_id
    }

    /// This connection's id, unique within the process.
    pub fn id(&self) -> u64 {
        self.link.id
    }

    /// The peer's socket address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.link.remote
    }

    /// Closes the connection; calls waiting on it fail with [`CallError::Disconnected`]. A client reconnects.
    pub fn close(&self) {
        self.link.close(DisconnectReason::ClosedLocally);
    }

    /// Why the connection closed; `None` while it is open.
    pub fn disconnect_reason(&self) -> Option<DisconnectReason> {
        if self.is_connected() { None } else { Some(self.link.reason().unwrap_or(DisconnectReason::Shutdown)) }
    }

    pub(crate) fn link(&self) -> &Arc<Link> {
        &self.link
    }
}

/// The connected peers of a server. Cheap to clone; always current.
#[derive(Debug, Clone, Default)]
pub struct PeerSet {
    peers: Arc<Mutex<BTreeMap<u64, Peer>>>,
}

impl PeerSet {
    /// Every connected peer, oldest connection first.
    pub fn list(&self) -> Vec<Peer> {
        self.lock().values().cloned().collect()
    }

    /// The peer of connection `id`.
    pub fn get(&self, id: u64) -> Option<Peer> {
        self.lock().get(&id).cloned()
    }

    /// The peer that authenticated as `node_id` (the newest, should there be several).
    pub fn by_node(&self, node_id: &str) -> Option<Peer> {
        self.lock().values().rev().find(|p| p.node_id() == node_id).cloned()
    }

    /// Number of connected peers.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no peer is connected.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Adds `peer`; returns the older connections of the same node id, which it replaces.
    pub(crate) fn insert(&self, peer: Peer) -> Vec<Peer> {
        let mut peers = self.lock();
        let replaced = peers.values().filter(|p| p.node_id() == peer.node_id()).cloned().collect();
        peers.insert(peer.id(), peer);
        replaced
    }

    pub(crate) fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Peer>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the caller of a call waits on.
pub(crate) type Waiter = oneshot::Sender<Result<Value, CallError>>;

/// State shared between a connection's task, its writer, its handler tasks and every [`Peer`] handle.
pub(crate) struct Link {
    id: u64,
    node_id: String,
    remote: SocketAddr,
    out: mpsc::Sender<Bytes>,
    calls: Mutex<CallTable<Waiter>>,
    /// Wakes the connection task when a call with a possibly earlier deadline starts.
    pub(crate) wake: Notify,
    pub(crate) closed: CancellationToken,
    reason: Mutex<Option<DisconnectReason>>,
    max_frame: usize,
    call_timeout: Duration,
}

/// Settings a [`Link`] needs.
pub(crate) struct LinkParams {
    pub node_id: String,
    pub remote: SocketAddr,
    pub max_frame: usize,
    pub call_timeout: Duration,
    pub max_in_flight: usize,
    pub send_queue: usize,
    /// Cancelled when the endpoint shuts down.
    pub parent: CancellationToken,
}

impl Link {
    /// A new link and the receiving end of its outgoing queue (for the writer).
    pub(crate) fn open(params: LinkParams) -> (Peer, mpsc::Receiver<Bytes>) {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let (out, out_rx) = mpsc::channel(params.send_queue);
        let link = Link {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            node_id: params.node_id,
            remote: params.remote,
            out,
            calls: Mutex::new(CallTable::new(params.max_in_flight)),
            wake: Notify::new(),
            closed: params.parent.child_token(),
            reason: Mutex::new(None),
            max_frame: params.max_frame,
            call_timeout: params.call_timeout,
        };
        (Peer { link: Arc::new(link) }, out_rx)
    }

    /// Queues `message` for the writer, never waiting: a full queue closes the connection as too slow.
    pub(crate) fn send(&self, message: &Message) -> Result<(), CallError> {
        if self.closed.is_cancelled() {
            return Err(CallError::Disconnected);
        }
        let body = wire::encode(message);
        if body.len() > self.max_frame {
            return Err(CallError::TooLarge(format!("{} bytes, the maximum is {}", body.len(), self.max_frame)));
        }
        match self.out.try_send(body) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close(DisconnectReason::TooSlow);
                Err(CallError::Disconnected)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(CallError::Disconnected),
        }
    }

    /// Sends the reply to call `id`; a reply over the frame limit becomes a `too_large` error reply.
    pub(crate) fn reply(&self, id: u64, result: Result<Value, ErrorBody>) {
        let sent = self.send(&Message::Reply { id, result });
        if let Err(CallError::TooLarge(detail)) = sent {
            let error = ErrorBody::new(crate::codes::TOO_LARGE, format!("reply of {detail}"));
            let _ = self.send(&Message::Reply { id, result: Err(error) });
        }
    }

    /// Starts a call and waits for its reply or its deadline (enforced by the connection task).
    async fn call(&self, method: &str, params: Value, timeout: Duration) -> Result<Value, CallError> {
        let (tx, rx) = oneshot::channel();
        let deadline = crate::now() + timeout;
        let id = self.calls().start(deadline, tx).map_err(|e| match e {
            StartError::Full => CallError::Overloaded("too many of our own calls in flight".to_owned()),
            StartError::Closed => CallError::Disconnected,
        })?;
        // Removes the entry if this future is dropped before the reply, so abandoned calls do not pile up.
        let guard = PendingCall { link: self, id };
        self.wake.notify_one();
        self.send(&Message::Call { id, method: method.to_owned(), params })?;
        let outcome = rx.await.unwrap_or(Err(CallError::Disconnected));
        drop(guard);
        outcome
    }

    /// Resolves call `id` with `result`; a reply for an unknown id (e.g. after its timeout) is dropped.
    pub(crate) fn finish_call(&self, id: u64, result: Result<Value, CallError>) -> bool {
        let waiter = self.calls().finish(id);
        waiter.map(|w| w.send(result)).is_some()
    }

    /// Fails every call whose deadline has passed with [`CallError::Timeout`]; returns the next deadline.
    pub(crate) fn expire_calls(&self, now: std::time::Instant) -> Option<std::time::Instant> {
        let mut calls = self.calls();
        let expired = calls.handle_timeout(now);
        let next = calls.poll_timeout();
        drop(calls);
        for (_, waiter) in expired {
            let _ = waiter.send(Err(CallError::Timeout));
        }
        next
    }

    /// The earliest pending call deadline.
    pub(crate) fn next_call_deadline(&self) -> Option<std::time::Instant> {
        self.calls().poll_timeout()
    }

    /// Closes the connection; the first reason given wins.
    pub(crate) fn close(&self, reason: DisconnectReason) {
        self.reason.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(reason);
        self.closed.cancel();
    }

    /// Fails every pending call with [`CallError::Disconnected`] and refuses new ones.
    pub(crate) fn fail_pending_calls(&self) {
        let drained = self.calls().close();
        for (_, waiter) in drained {
            let _ = waiter.send(Err(CallError::Disconnected));
        }
    }

    pub(crate) fn reason(&self) -> Option<DisconnectReason> {
        self.reason.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    fn calls(&self) -> MutexGuard<'_, CallTable<Waiter>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Drop guard of a call in progress.
struct PendingCall<'a> {
    link: &'a Link,
    id: u64,
}

impl Drop for PendingCall<'_> {
    fn drop(&mut self) {
        self.link.calls().finish(self.id);
    }
}
