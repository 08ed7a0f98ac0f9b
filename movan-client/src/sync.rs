//! TCP client of the sync server: connect (token, handshake, sealing), send requests, receive [`ServerEvent`]s,
//! collect reloads.
//!
//! A [`SyncClient`] owns one connection. [`SyncClient::connect_session`] performs the whole connection sequence of
//! `docs/encryption.md` before it returns: a plaintext `ping` carrying the token, the server's plaintext handshake,
//! a sealed `ping` proving the session key, and the `pong`s. From then on every frame is sealed both ways, unless the server runs with
//! `encryption = "off"`. A background reader task opens and decodes frames into [`ServerEvent`]s and queues them in
//! a bounded channel, so a slow consumer slows the socket (and eventually gets disconnected by the server) instead of
//! growing memory. [`SyncClient::split`] gives a cloneable [`SyncSender`] and a [`SyncEvents`] receiver, so a bot can
//! send on its own schedule while another task receives. For a connection that survives drops, see
//! [`crate::GameClient`].
//!
//! Any crypto failure is fatal: the reader closes the connection and [`SyncEvents::close_reason`] holds a
//! [`ClientError::Crypto`] saying why.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use movan_protocol::ErrorCode;
use movan_protocol::OutgoingMessage;
use movan_protocol::codec::{DEFAULT_MAX_SERVER_FRAME, FrameCodec, frame_bytes};
use movan_protocol::crypto::{Sealer, SessionKey};
use movan_protocol::server::{Frame, RoomLeft, ServerEvent};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio::time::error::Elapsed;
use tokio::time::{Instant, timeout_at};
use tokio_util::codec::FramedRead;

use crate::account::Session;
use crate::error::ClientError;
use crate::udp::UdpSender;
use futures::StreamExt;
use movan_protocol::udp::KcpTuning;
use reader::Reader;

mod events;
mod reader;
#[cfg(test)]
mod sealed_tests;
mod sender;
#[cfg(test)]
pub(crate) mod test_server;
#[cfg(test)]
mod tests;

/// Server messages buffered between the reader task and the consumer.
const EVENT_QUEUE: usize = 1024;
const RELOAD_PROTO: &str = "sync_request_reload_frames";
/// Longest wait, in [`SyncClient::connect_with`], for the handshake and the `pong` after the TCP connect.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// One connection to the sync server: a [`SyncSender`] and a [`SyncEvents`] in one value.
#[derive(Debug)]
pub struct SyncClient {
    sender: SyncSender,
    events: SyncEvents,
}

/// The sending half of a connection. Cheap to clone; clones share the socket and send in call order.
///
/// Every send is sealed once the server's handshake switched encryption on; only [`SyncSender::send_raw_bytes`]
/// bypasses sealing. The first typed message (anything but the `*_raw_*` methods) carries the access token; later
/// ones omit it (on a connection from [`SyncClient::connect_with`] that first message was the connect `ping`).
/// A send future must be driven to completion: cancelling it midway can leave half a frame on the wire.
#[derive(Debug, Clone)]
pub struct SyncSender {
    uid: Arc<str>,
    writer: Arc<Mutex<Writer>>,
    encryption: Arc<OnceLock<Encryption>>,
}

/// Whether a connection's frames are sealed, as the server's handshake decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// No handshake yet: only on a [`SyncClient::connect_unauthenticated`] connection before the server answered.
    Pending,
    /// The server runs with `encryption = "off"`: every frame is plaintext.
    Plaintext,
    /// Every frame after the handshake is sealed with ChaCha20-Poly1305, both ways.
    Sealed,
}

/// The receiving half of a connection: server messages in arrival order.
///
/// Dropping it stops the reader task.
#[derive(Debug)]
pub struct SyncEvents {
    rx: mpsc::Receiver<Result<ServerEvent, ClientError>>,
    /// Events set aside while collecting a reload, delivered before anything newer.
    pending: VecDeque<ServerEvent>,
    close_reason: Option<ClientError>,
    closed: bool,
    reader: JoinHandle<()>,
}

/// Which transport a [`SyncClient`] connects over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Transport {
    /// TCP to the login's `sync_addr`: length-prefixed frames.
    #[default]
    Tcp,
    /// UDP to the login's `sync_udp_addr`: KCP sessions, one KCP message per message body (`docs/protocol.md`,
    /// section UDP). Keeps lockstep smooth on lossy links, and survives the client's address changing.
    Udp,
    /// WebSocket to the login's `sync_ws_url`: one binary message per message body, as browsers speak it.
    Ws,
}

/// Where a connection's frames go.
#[derive(Debug)]
enum Outbound {
    Tcp(OwnedWriteHalf),
    Udp(UdpSender),
    Ws(Box<crate::ws::WsSink>),
}

/// The socket's write half and what every send needs: the token for the first message and the sealer.
#[derive(Debug)]
struct Writer {
    stream: Outbound,
    /// `Some` until the first typed message took it.
    token: Option<String>,
    /// Installed by the reader task when a sealed handshake arrives; every later frame goes through it.
    sealer: Option<Sealer>,
    /// Set once this client closed the connection after a crypto failure; sends then fail with `Closed`.
    closed: bool,
}

/// The current time as the protocol's `timestamp`: seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl SyncClient {
    /// Connects with a [`Session`] from the account server: [`SyncClient::connect_with`] its `sync_addr`, `uid`,
    /// `token` and `session_key`.
    ///
    /// A `session_key` that is not base64 of 32 bytes fails with [`ClientError::Crypto`] before connecting.
    pub async fn connect_session(session: &Session) -> Result<SyncClient, ClientError> {
        Self::connect_session_via(session, Transport::Tcp).await
    }

    /// [`SyncClient::connect_session`] over `transport`; UDP needs the login's `sync_udp_addr`, WebSocket its
    /// `sync_ws_url`.
    pub async fn connect_session_via(session: &Session, transport: Transport) -> Result<SyncClient, ClientError> {
        let key = session.decode_session_key()?;
        let addr = match transport {
            Transport::Tcp => session.sync_addr.as_str(),
            Transport::Udp => session.sync_udp_addr.as_deref().ok_or_else(|| {
                ClientError::Protocol("the login named no UDP endpoint (sync_udp_addr): is sync.udp_addr set?".into())
            })?,
            Transport::Ws => session.sync_ws_url.as_deref().ok_or_else(|| {
                ClientError::Protocol(
                    "the login named no WebSocket endpoint (sync_ws_url): is sync.ws_addr set?".into(),
                )
            })?,
        };
        Self::connect_via(transport, addr, &session.uid, &session.token, key).await
    }

    /// [`SyncClient::connect_with`] over `transport` (`addr` is the UDP `host:port` for [`Transport::Udp`], the
    /// `ws://host:port/ws` URL for [`Transport::Ws`]).
    pub async fn connect_via(
        transport: Transport,
        addr: &str,
        uid: &str,
        token: &str,
        session_key: Option<SessionKey>,
    ) -> Result<SyncClient, ClientError> {
        let client = Self::open(transport, addr, uid, Some(token), session_key).await?;
        client.complete_setup().await
    }

    /// Connects to the sync server at `addr` (`host:port`) as `uid` and completes the connection sequence.
    ///
    /// Sends a plaintext `ping` carrying `token` and reads the server's plaintext handshake; with encryption on it
    /// then sends a sealed `ping` proving the session key. It waits for the `pong` of each ping and consumes them;
    /// messages the server sends before that pong (`room_state` and
    /// `game_start` when rejoining a room) stay queued. Returns once the connection is authenticated, so every later
    /// send is sealed when the server announced encryption ([`SyncClient::encryption`] says which).
    ///
    /// Fails with [`ClientError::Server`] when the server refuses the first message (bad token, revoked session, ...;
    /// the server then closes), [`ClientError::Crypto`] when the handshake announces encryption but `session_key`
    /// is `None`, or the handshake is malformed, names an unknown cipher, or is missing (a server without encrypted
    /// sessions answers with a plain `pong`), [`ClientError::Closed`] when the server closes first, and
    /// [`ClientError::Timeout`] after [`HANDSHAKE_TIMEOUT`]. A plaintext handshake (`encryption = "off"`) is
    /// accepted even when a key was given.
    pub async fn connect_with(
        addr: &str,
        uid: &str,
        token: &str,
        session_key: Option<SessionKey>,
    ) -> Result<SyncClient, ClientError> {
        let client = Self::connect_unauthenticated(addr, uid, Some(token), session_key).await?;
        client.complete_setup().await
    }

    /// The connect `ping`s and the handshake of [`SyncClient::connect_with`].
    async fn complete_setup(mut self) -> Result<SyncClient, ClientError> {
        let client = &mut self;
        client.ping().await?;
        let setup = async {
            let encryption = client.sender.encryption.clone();
            client.events.await_handshake(&encryption).await?;
            if client.encryption() == Encryption::Sealed {
                // The server runs the first request only once a sealed frame proves that we hold the session key.
                client.ping().await?;
                client.events.await_connect_pong().await?;
            }
            client.events.await_connect_pong().await
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, setup).await??;
        Ok(self)
    }

    /// [`SyncClient::connect_with`] without a session key: works only with servers running `encryption = "off"`.
    pub async fn connect(addr: &str, uid: &str, token: &str) -> Result<SyncClient, ClientError> {
        Self::connect_with(addr, uid, token, None).await
    }

    /// Opens the TCP connection and sends nothing, for tests of the first message and the handshake.
    ///
    /// The first typed message carries `token` (if any), in plaintext; `*_raw_*` sends do not use it up. When the
    /// server's handshake arrives, the reader task switches the connection to sealing with `session_key` (or to
    /// plaintext). A sealed handshake without a key closes the connection with [`ClientError::Crypto`]. An `error`
    /// refusing the first message arrives as a [`ServerEvent::Error`], then the close. Wait until
    /// [`SyncClient::encryption`] is no longer [`Encryption::Pending`] before sending a second message (until the
    /// handshake has been read, sends stay plaintext). With encryption on, the server answers the first message
    /// only after a sealed frame has proved the key, so send one (a `ping`) rather than waiting for that reply.
    pub async fn connect_unauthenticated(
        addr: &str,
        uid: &str,
        token: Option<&str>,
        session_key: Option<SessionKey>,
    ) -> Result<SyncClient, ClientError> {
        Self::open(Transport::Tcp, addr, uid, token, session_key).await
    }

    /// [`SyncClient::connect_unauthenticated`] over `transport`.
    pub async fn open(
        transport: Transport,
        addr: &str,
        uid: &str,
        token: Option<&str>,
        session_key: Option<SessionKey>,
    ) -> Result<SyncClient, ClientError> {
        let (stream, frames) = match transport {
            Transport::Tcp => {
                let stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                let (read, write) = stream.into_split();
                (Outbound::Tcp(write), FramedRead::new(read, FrameCodec::new(DEFAULT_MAX_SERVER_FRAME)).boxed())
            }
            Transport::Udp => {
                let (sender, messages) = crate::udp::connect(addr, KcpTuning::default()).await?;
                (Outbound::Udp(sender), messages)
            }
            Transport::Ws => {
                let (sink, messages) = crate::ws::connect(addr).await?;
                (Outbound::Ws(Box::new(sink)), messages)
            }
        };
        let writer = Writer { stream, token: token.map(str::to_owned), sealer: None, closed: false };
        let writer = Arc::new(Mutex::new(writer));
        let encryption = Arc::new(OnceLock::new());
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let reader = Reader::new(frames, tx, Arc::downgrade(&writer), encryption.clone(), session_key);
        let reader = tokio::spawn(reader.run());
        let sender = SyncSender { uid: uid.into(), writer, encryption };
        let events = SyncEvents { rx, pending: VecDeque::new(), close_reason: None, closed: false, reader };
        Ok(SyncClient { sender, events })
    }

    /// Splits into a cloneable sender and the event receiver.
    pub fn split(self) -> (SyncSender, SyncEvents) {
        (self.sender, self.events)
    }

    /// Puts the halves of one connection back together (they must come from the same [`SyncClient::split`]).
    pub fn join(sender: SyncSender, events: SyncEvents) -> SyncClient {
        SyncClient { sender, events }
    }

    /// The sending half, to clone for another task.
    pub fn sender(&self) -> &SyncSender {
        &self.sender
    }

    /// The receiving half.
    pub fn events(&mut self) -> &mut SyncEvents {
        &mut self.events
    }

    /// The uid this connection speaks for.
    pub fn uid(&self) -> &str {
        self.sender.uid()
    }

    /// Whether frames are sealed; never [`Encryption::Pending`] after [`SyncClient::connect_with`].
    pub fn encryption(&self) -> Encryption {
        self.sender.encryption()
    }

    /// `room_enter`: joins `room_id` (created when missing), or quick-matches when `None`.
    pub async fn enter_room(&self, room_id: Option<&str>) -> Result<(), ClientError> {
        self.sender.enter_room(room_id).await
    }

    /// `room_leave`: leaves the current room. The server answers `room_left`; see [`SyncClient::leave`].
    pub async fn leave_room(&self) -> Result<(), ClientError> {
        self.sender.leave_room().await
    }

    /// `room_leave`, then waits for its `room_left` ([`SyncEvents::wait_left`]): the clean way to give up a seat
    /// before closing. `None` when there was no room to leave.
    pub async fn leave(&mut self, timeout: Duration) -> Result<Option<RoomLeft>, ClientError> {
        self.sender.leave_room().await?;
        self.events.wait_left(timeout).await
    }

    /// `room_prepare`: marks the player ready.
    pub async fn prepare(&self) -> Result<(), ClientError> {
        self.sender.prepare().await
    }

    /// `sync_action` stamped with the current time.
    pub async fn send_action(&self, action_data: &Value) -> Result<(), ClientError> {
        self.sender.send_action(action_data).await
    }

    /// `sync_action` with an explicit `timestamp` (seconds since the Unix epoch).
    pub async fn send_action_at(&self, action_data: &Value, timestamp: f64) -> Result<(), ClientError> {
        self.sender.send_action_at(action_data, timestamp).await
    }

    /// `sync_request_reload_frames` from `start_frame`; the answer arrives as events (see [`SyncClient::reload`]).
    pub async fn request_reload(&self, start_frame: u64) -> Result<(), ClientError> {
        self.sender.request_reload(start_frame).await
    }

    /// `room_spectate`: watch `room_id` without playing (see [`SyncSender::spectate`]).
    pub async fn spectate(&self, room_id: &str) -> Result<(), ClientError> {
        self.sender.spectate(room_id).await
    }

    /// `sync_checksum`: this client's hash of its game state after `frame` (see [`SyncSender::send_checksum`]).
    pub async fn send_checksum(&self, frame: u64, hash: &str) -> Result<(), ClientError> {
        self.sender.send_checksum(frame, hash).await
    }

    /// `ping`, stamped with the current time (echoed in the `pong`).
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.sender.ping().await
    }

    /// Sends any proto with optional `data`, in the normal envelope.
    pub async fn send_proto(&self, proto: &str, data: Option<&Value>) -> Result<(), ClientError> {
        self.sender.send_proto(proto, data).await
    }

    /// Sends `body` as one frame without checking it, sealed when encrypted (see [`SyncSender::send_raw_body`]).
    pub async fn send_raw_body(&self, body: &[u8]) -> Result<(), ClientError> {
        self.sender.send_raw_body(body).await
    }

    /// The frame [`SyncClient::send_raw_body`] would write next, without writing it (see
    /// [`SyncSender::seal_raw_body`]).
    pub async fn seal_raw_body(&self, body: &[u8]) -> Result<Bytes, ClientError> {
        self.sender.seal_raw_body(body).await
    }

    /// Writes `bytes` as they are: no framing, no sealing.
    pub async fn send_raw_bytes(&self, bytes: &[u8]) -> Result<(), ClientError> {
        self.sender.send_raw_bytes(bytes).await
    }

    /// Shuts down the sending direction; the server sees end-of-stream while events still arrive.
    pub async fn shutdown(&self) -> Result<(), ClientError> {
        self.sender.shutdown().await
    }

    /// The next server message, or `None` once the connection closed.
    pub async fn next_event(&mut self) -> Option<ServerEvent> {
        self.events.next_event().await
    }

    /// [`SyncClient::next_event`] giving up after `timeout`.
    pub async fn next_event_timeout(&mut self, timeout: Duration) -> Result<Option<ServerEvent>, Elapsed> {
        self.events.next_event_timeout(timeout).await
    }

    /// The first event matching `pred` within `timeout`, discarding the others.
    pub async fn wait_for(
        &mut self,
        pred: impl FnMut(&ServerEvent) -> bool,
        timeout: Duration,
    ) -> Result<ServerEvent, ClientError> {
        self.events.wait_for(pred, timeout).await
    }

    /// Waits until the server closes the connection, returning the events received meanwhile.
    pub async fn wait_closed(&mut self, timeout: Duration) -> Result<Vec<ServerEvent>, ClientError> {
        self.events.wait_closed(timeout).await
    }

    /// Requests frames from `start_frame` and collects every `reload_frames` chunk (see [`SyncEvents::recv_reload`]).
    pub async fn reload(&mut self, start_frame: u64, timeout: Duration) -> Result<Vec<Frame>, ClientError> {
        self.sender.request_reload(start_frame).await?;
        self.events.recv_reload(start_frame, timeout).await
    }
}

impl Writer {
    /// `body` as a wire frame: sealed with the next counter when encrypted, else just length-prefixed.
    ///
    /// A sealing failure (the counter is exhausted) is fatal, so it closes the connection.
    async fn frame(&mut self, body: &[u8]) -> Result<Bytes, ClientError> {
        if self.closed {
            return Err(ClientError::Closed);
        }
        // UDP and WebSocket: the KCP or WebSocket message is the framing.
        let message_framed = !matches!(self.stream, Outbound::Tcp(_));
        let Some(sealer) = self.sealer.as_mut() else {
            return Ok(if message_framed { Bytes::copy_from_slice(body) } else { frame_bytes(body) });
        };
        let sealed = if message_framed {
            let mut dst = bytes::BytesMut::with_capacity(body.len() + 16);
            sealer.seal_body_into(body, &mut dst).map(|()| dst.freeze())
        } else {
            sealer.seal(body)
        };
        match sealed {
            Ok(wire) => Ok(wire),
            Err(e) => {
                self.close().await;
                Err(ClientError::Crypto(format!("cannot seal a frame: {e}")))
            }
        }
    }

    async fn write(&mut self, wire: &[u8]) -> Result<(), ClientError> {
        if self.closed {
            return Err(ClientError::Closed);
        }
        match &mut self.stream {
            Outbound::Tcp(s) => s.write_all(wire).await?,
            Outbound::Udp(s) => s.send(Bytes::copy_from_slice(wire)).await?,
            Outbound::Ws(s) => crate::ws::send(s, wire).await?,
        }
        Ok(())
    }

    /// Closes the connection after a crypto failure: the server sees end-of-stream and later sends fail.
    async fn close(&mut self) {
        self.closed = true;
        self.sealer = None;
        match &mut self.stream {
            Outbound::Tcp(s) => {
                if let Err(e) = s.shutdown().await {
                    tracing::debug!(error = %e, "shutting down the sync connection");
                }
            }
            Outbound::Udp(s) => s.close().await,
            Outbound::Ws(s) => {
                if let Err(e) = crate::ws::close(s).await {
                    tracing::debug!(error = %e, "closing the sync websocket");
                }
            }
        }
    }
}
