//! The tokio shell of one connection: handshake IO, then a task that reads frames, drives the [`Heartbeat`] and
//! the call deadlines with the current time, and dispatches messages; a writer task drains the outgoing queue.
//!
//! Tasks per authenticated connection: this driver, one writer, one notification runner (notifications run in
//! order), one task per incoming call (at most `max_in_flight`), and the client's on-connect hook. All of them
//! end when the connection closes.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, SinkExt, StreamExt};
use movan_protocol::{FrameCodec, FrameError};
use rand::RngCore;
use rand::rngs::OsRng;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::{debug, warn};

use crate::codes;
use crate::config::RpcConfig;
use crate::error::CallError;
use crate::handlers::Handlers;
use crate::handshake::{ClientHandshake, HandshakeError, Nonce, ServerHandshake};
use crate::heartbeat::{Heartbeat, HeartbeatAction};
use crate::peer::{DisconnectReason, Link, Peer};
use crate::wire::{self, ErrorBody, Message};

/// Produces the optional payload of each heartbeat ping.
pub(crate) type PayloadFn = Arc<dyn Fn() -> Option<Value> + Send + Sync>;
pub(crate) type Reader = FramedRead<OwnedReadHalf, FrameCodec>;
pub(crate) type Writer = FramedWrite<OwnedWriteHalf, FrameCodec>;

/// Most queued messages written before a flush.
const WRITE_BATCH: usize = 64;
/// Largest frame accepted before authentication: handshake messages are a few hundred bytes, and an
/// unauthenticated peer must not make us buffer a megabyte.
const HANDSHAKE_MAX_FRAME: usize = 4096;

/// What every connection of a server or client shares.
pub(crate) struct Endpoint {
    pub config: RpcConfig,
    pub handlers: Handlers,
    pub heartbeat_payload: Option<PayloadFn>,
}

/// Why connecting or authenticating failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeFailure {
    #[error(transparent)]
    Auth(#[from] HandshakeError),
    #[error("connection closed during the handshake")]
    Closed,
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("malformed message: {0}")]
    Malformed(serde_json::Error),
}

impl HandshakeFailure {
    /// Whether the peer was reached but the shared secret did not match.
    pub(crate) fn is_auth_failure(&self) -> bool {
        matches!(self, Self::Auth(HandshakeError::BadMac | HandshakeError::Refused(_)))
    }
}

/// Splits `stream` into framed halves. Reading is limited to handshake-sized frames until [`authenticated`].
pub(crate) fn framed(stream: TcpStream, max_frame: usize) -> (Reader, Writer) {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let handshake_limit = FrameCodec::new(HANDSHAKE_MAX_FRAME.min(max_frame));
    (FramedRead::new(read, handshake_limit), FramedWrite::new(write, FrameCodec::new(max_frame)))
}

/// Lifts the read limit to the configured frame size once the peer is authenticated.
fn authenticated(reader: &mut Reader, config: &RpcConfig) {
    // The codec holds only its limit; buffered bytes live in the FramedRead, so swapping it loses nothing.
    *reader.decoder_mut() = FrameCodec::new(config.max_frame_bytes);
}

/// The server's half of the handshake; returns the client's node id. A failed client gets an `unauthenticated`
/// error message before the caller closes the connection.
pub(crate) async fn server_handshake(
    reader: &mut Reader,
    writer: &mut Writer,
    config: &RpcConfig,
) -> Result<String, HandshakeFailure> {
    let handshake = ServerHandshake::new(config.secret.as_bytes(), &config.node_id, random_nonce());
    send_direct(writer, &handshake.challenge()).await?;
    let outcome = match recv_direct(reader).await {
        Ok(message) => handshake.on_message(message).map_err(HandshakeFailure::Auth),
        Err(e) => Err(e),
    };
    match outcome {
        Ok((node, welcome)) => {
            send_direct(writer, &welcome).await?;
            authenticated(reader, config);
            Ok(node)
        }
        Err(failure) => {
            let reason = match &failure {
                HandshakeFailure::Auth(e) => e.clone(),
                _ => HandshakeError::Malformed("auth"),
            };
            let _ = send_direct(writer, &ServerHandshake::rejection(&reason)).await;
            Err(failure)
        }
    }
}

/// The client's half of the handshake; returns the server's node id.
pub(crate) async fn client_handshake(
    reader: &mut Reader,
    writer: &mut Writer,
    config: &RpcConfig,
) -> Result<String, HandshakeFailure> {
    let mut handshake = ClientHandshake::new(config.secret.as_bytes(), &config.node_id, random_nonce());
    let auth = handshake.on_challenge(recv_direct(reader).await?)?;
    send_direct(writer, &auth).await?;
    let server_node = handshake.on_welcome(recv_direct(reader).await?)?;
    authenticated(reader, config);
    Ok(server_node)
}

/// Runs an authenticated connection until it closes; returns why. `on_open` (the client's hook) runs as one of
/// the connection's tasks, so it can call the peer.
pub(crate) async fn run(
    peer: Peer,
    mut reader: Reader,
    writer: Writer,
    out_rx: mpsc::Receiver<Bytes>,
    endpoint: Arc<Endpoint>,
    on_open: Option<BoxFuture<'static, ()>>,
) -> DisconnectReason {
    let link = peer.link().clone();
    let config = &endpoint.config;
    let writer_task = tokio::spawn(write_loop(writer, out_rx, link.clone(), config.dead_after()));
    let mut tasks = JoinSet::new();
    let (notify_tx, notify_rx) = mpsc::channel(config.max_in_flight);
    tasks.spawn(notification_loop(notify_rx, peer.clone(), endpoint.clone()));
    if let Some(hook) = on_open {
        tasks.spawn(hook);
    }
    let mut driver = Driver {
        heartbeat: Heartbeat::new(crate::now(), config.heartbeat_interval, config.heartbeat_misses),
        in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
        notify_tx,
        peer,
        link: link.clone(),
        endpoint: endpoint.clone(),
    };
    let reason = driver.drive(&mut reader, &mut tasks).await;
    link.close(reason);
    link.fail_pending_calls();
    tasks.shutdown().await;
    let _ = writer_task.await;
    link.reason().unwrap_or(DisconnectReason::Shutdown)
}

/// The per-connection state the driver loop owns.
struct Driver {
    heartbeat: Heartbeat,
    in_flight: Arc<Semaphore>,
    notify_tx: mpsc::Sender<(String, Value)>,
    peer: Peer,
    link: Arc<Link>,
    endpoint: Arc<Endpoint>,
}

impl Driver {
    async fn drive(&mut self, reader: &mut Reader, tasks: &mut JoinSet<()>) -> DisconnectReason {
        loop {
            let deadline = self.next_deadline();
            // The reader comes before the timer so that a stall never declares a peer dead while its frames
            // wait unread; timers still run after every frame, so a busy reader cannot starve them.
            let step = tokio::select! {
                biased;
                () = self.link.closed.cancelled() => {
                    return self.link.reason().unwrap_or(DisconnectReason::Shutdown);
                }
                frame = reader.next() => match frame {
                    Some(Ok(body)) => {
                        let now = crate::now();
                        self.heartbeat.on_receive(now);
                        self.on_frame(&body, tasks).and_then(|()| self.on_timeout_if_due(now))
                    }
                    Some(Err(FrameError::TooLarge { len, max })) => {
                        Err(DisconnectReason::Protocol(format!("frame of {len} bytes exceeds the maximum of {max}")))
                    }
                    Some(Err(FrameError::Io(e))) => Err(DisconnectReason::Io(e.to_string())),
                    None => Err(DisconnectReason::Closed),
                },
                () = tokio::time::sleep_until(deadline.into()) => self.on_timeout_if_due(crate::now()),
                () = self.link.wake.notified() => Ok(()),
                Some(joined) = tasks.join_next() => {
                    if let Err(e) = joined
                        && e.is_panic()
                    {
                        warn!(peer = self.link.id(), "a connection task panicked");
                    }
                    Ok(())
                }
            };
            if let Err(reason) = step {
                return reason;
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        let heartbeat = self.heartbeat.poll_timeout();
        self.link.next_call_deadline().map_or(heartbeat, |calls| calls.min(heartbeat))
    }

    fn on_timeout_if_due(&mut self, now: Instant) -> Result<(), DisconnectReason> {
        if now < self.next_deadline() {
            return Ok(());
        }
        match self.heartbeat.handle_timeout(now) {
            HeartbeatAction::None => {}
            HeartbeatAction::SendPing { seq } => self.send_ping(seq),
            HeartbeatAction::Dead => return Err(DisconnectReason::HeartbeatTimeout),
        }
        self.link.expire_calls(now);
        Ok(())
    }

    fn send_ping(&self, seq: u64) {
        let load = self.endpoint.heartbeat_payload.as_ref().and_then(|payload| payload());
        let with_load = load.is_some();
        if let Err(CallError::TooLarge(detail)) = self.link.send(&Message::Ping { seq, load }) {
            warn!(peer = self.link.id(), with_load, "heartbeat payload too large ({detail}); sent without it");
            let _ = self.link.send(&Message::Ping { seq, load: None });
        }
        // Any other failure closed the link; the loop sees it next.
    }

    fn on_frame(&mut self, body: &[u8], tasks: &mut JoinSet<()>) -> Result<(), DisconnectReason> {
        let message = wire::decode(body).map_err(|e| DisconnectReason::Protocol(format!("malformed message: {e}")))?;
        match message {
            Message::Call { id, method, params } => self.on_call(id, &method, params, tasks),
            Message::Reply { id, result } => {
                if !self.link.finish_call(id, result.map_err(CallError::from_remote)) {
                    debug!(peer = self.link.id(), id, "dropped a reply to an unknown or timed-out call");
                }
            }
            Message::Notify { method, params } => match self.notify_tx.try_send((method, params)) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
                Err(mpsc::error::TrySendError::Full(_)) => return Err(DisconnectReason::NotificationBacklog),
            },
            Message::Ping { seq, load } => {
                let _ = self.link.send(&Message::Pong { seq });
                self.endpoint.handlers.heartbeat(&self.peer, load);
            }
            Message::Pong { .. } => {}
            Message::Error(body) => return Err(DisconnectReason::PeerError(body)),
            Message::Challenge { .. } | Message::Auth { .. } | Message::Welcome { .. } => {
                return Err(DisconnectReason::Protocol("handshake message after authentication".to_owned()));
            }
        }
        Ok(())
    }

    /// Answers at once when the method is unknown, the connection is at its limit, or the params do not fit;
    /// otherwise runs the handler in its own task.
    fn on_call(&self, id: u64, method: &str, params: Value, tasks: &mut JoinSet<()>) {
        let Some(handler) = self.endpoint.handlers.method_handler(method) else {
            let error = ErrorBody::new(codes::UNKNOWN_METHOD, format!("no method `{method}`"));
            return self.link.reply(id, Err(error));
        };
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            let limit = self.endpoint.config.max_in_flight;
            let error = ErrorBody::new(codes::OVERLOADED, format!("more than {limit} calls in flight"));
            return self.link.reply(id, Err(error));
        };
        match handler(self.peer.clone(), params) {
            Err(error) => self.link.reply(id, Err(error)),
            Ok(reply) => {
                let link = self.link.clone();
                tasks.spawn(async move {
                    let result = reply.await;
                    link.reply(id, result);
                    drop(permit);
                });
            }
        }
    }
}

/// Runs the connection's notifications one at a time, in arrival order.
async fn notification_loop(mut rx: mpsc::Receiver<(String, Value)>, peer: Peer, endpoint: Arc<Endpoint>) {
    while let Some((method, params)) = rx.recv().await {
        let Some(handler) = endpoint.handlers.notification_handler(&method) else {
            warn!(peer = peer.id(), node = peer.node_id(), method, "dropped a notification nobody handles");
            continue;
        };
        match handler(peer.clone(), params) {
            Ok(run) => {
                if AssertUnwindSafe(run).catch_unwind().await.is_err() {
                    warn!(peer = peer.id(), method, "a notification handler panicked");
                }
            }
            Err(e) => warn!(peer = peer.id(), method, error = %e, "dropped a notification with bad params"),
        }
    }
}

/// Drains the outgoing queue into the socket, batching writes. A batch that makes no progress for `stall`
/// means the peer stopped reading: the connection is closed.
async fn write_loop(mut writer: Writer, mut rx: mpsc::Receiver<Bytes>, link: Arc<Link>, stall: Duration) {
    loop {
        let first = tokio::select! {
            biased;
            () = link.closed.cancelled() => break,
            next = rx.recv() => match next {
                Some(body) => body,
                None => break,
            },
        };
        let batch = async {
            writer.feed(&first[..]).await?;
            for _ in 1..WRITE_BATCH {
                let Ok(body) = rx.try_recv() else { break };
                writer.feed(&body[..]).await?;
            }
            writer.flush().await
        };
        let outcome = tokio::select! {
            biased;
            () = link.closed.cancelled() => break,
            outcome = tokio::time::timeout(stall, batch) => outcome,
        };
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                link.close(DisconnectReason::Io(e.to_string()));
                break;
            }
            Err(_) => {
                link.close(DisconnectReason::TooSlow);
                break;
            }
        }
    }
}

async fn send_direct(writer: &mut Writer, message: &Message) -> Result<(), FrameError> {
    let body = wire::encode(message);
    writer.send(&body[..]).await
}

async fn recv_direct(reader: &mut Reader) -> Result<Message, HandshakeFailure> {
    let body = reader.next().await.ok_or(HandshakeFailure::Closed)??;
    wire::decode(&body).map_err(HandshakeFailure::Malformed)
}

fn random_nonce() -> Nonce {
    let mut nonce = [0; crate::handshake::NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    nonce
}
