//! TCP client of the sync server: send requests, receive [`ServerEvent`]s, collect reloads.
//!
//! A [`SyncClient`] owns one connection. A background reader task decodes length-prefixed frames into
//! [`ServerEvent`]s and queues them in a bounded channel, so a slow consumer slows the socket (and eventually gets
//! disconnected by the server) instead of growing memory. [`SyncClient::split`] gives a cloneable [`SyncSender`] and
//! a [`SyncEvents`] receiver, so a bot can send on its own schedule while another task receives.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use movan_protocol::codec::{DEFAULT_MAX_SERVER_FRAME, FrameCodec, frame_bytes};
use movan_protocol::server::{Frame, ServerEvent, ServerParseError, parse_server_message};
use serde::Serialize;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio::time::error::Elapsed;
use tokio::time::{Instant, timeout_at};
use tokio_util::codec::FramedRead;

use crate::error::ClientError;

/// Server messages buffered between the reader task and the consumer.
const EVENT_QUEUE: usize = 1024;
const RELOAD_PROTO: &str = "sync_request_reload_frames";

/// One connection to the sync server: a [`SyncSender`] and a [`SyncEvents`] in one value.
#[derive(Debug)]
pub struct SyncClient {
    sender: SyncSender,
    events: SyncEvents,
}

/// The sending half of a connection. Cheap to clone; clones share the socket and send in call order.
///
/// The first typed message (anything but the `send_raw_*` methods) carries the access token; later ones omit it.
/// A send future must be driven to completion: cancelling it midway can leave half a frame on the wire.
#[derive(Debug, Clone)]
pub struct SyncSender {
    uid: Arc<str>,
    writer: Arc<Mutex<Writer>>,
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

#[derive(Debug)]
struct Writer {
    stream: OwnedWriteHalf,
    /// `Some` until the first typed message took it.
    token: Option<String>,
}

/// The current time as the protocol's `timestamp`: seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl SyncClient {
    /// Connects to the sync server at `addr` (`host:port`) as `uid`, presenting `token` on the first message.
    ///
    /// Nothing is sent yet: the server authenticates the connection on its first message.
    pub async fn connect(addr: &str, uid: &str, token: &str) -> Result<SyncClient, ClientError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let reader = tokio::spawn(read_events(read, tx));
        let sender = SyncSender {
            uid: uid.into(),
            writer: Arc::new(Mutex::new(Writer { stream: write, token: Some(token.to_owned()) })),
        };
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

    /// `room_enter`: joins `room_id` (created when missing), or quick-matches when `None`.
    pub async fn enter_room(&self, room_id: Option<&str>) -> Result<(), ClientError> {
        self.sender.enter_room(room_id).await
    }

    /// `room_leave`: leaves the current room.
    pub async fn leave_room(&self) -> Result<(), ClientError> {
        self.sender.leave_room().await
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

    /// `ping`, stamped with the current time (echoed in the `pong`).
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.sender.ping().await
    }

    /// Sends any proto with optional `data`, in the normal envelope.
    pub async fn send_proto(&self, proto: &str, data: Option<&Value>) -> Result<(), ClientError> {
        self.sender.send_proto(proto, data).await
    }

    /// Frames and sends `body` as is.
    pub async fn send_raw_body(&self, body: &[u8]) -> Result<(), ClientError> {
        self.sender.send_raw_body(body).await
    }

    /// Writes `bytes` unframed.
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

impl SyncSender {
    /// The uid this connection speaks for.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// `room_enter`: joins `room_id` (created when missing), or quick-matches when `None`.
    pub async fn enter_room(&self, room_id: Option<&str>) -> Result<(), ClientError> {
        let data = room_id.map(|id| serde_json::json!({ "room_id": id }));
        self.send_proto("room_enter", data.as_ref()).await
    }

    /// `room_leave`: leaves the current room.
    pub async fn leave_room(&self) -> Result<(), ClientError> {
        self.send_proto("room_leave", None).await
    }

    /// `room_prepare`: marks the player ready.
    pub async fn prepare(&self) -> Result<(), ClientError> {
        self.send_proto("room_prepare", None).await
    }

    /// `sync_action` stamped with the current time.
    pub async fn send_action(&self, action_data: &Value) -> Result<(), ClientError> {
        self.send_action_at(action_data, unix_now()).await
    }

    /// `sync_action` with an explicit `timestamp`. `action_data` is sent as given, even if it is not an object.
    pub async fn send_action_at(&self, action_data: &Value, timestamp: f64) -> Result<(), ClientError> {
        self.send_typed(Extra { proto: "sync_action", timestamp, data: None, action_data: Some(action_data) }).await
    }

    /// `sync_request_reload_frames` from `start_frame`.
    pub async fn request_reload(&self, start_frame: u64) -> Result<(), ClientError> {
        let data = serde_json::json!({ "start_frame": start_frame });
        self.send_proto(RELOAD_PROTO, Some(&data)).await
    }

    /// `ping`, stamped with the current time.
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.send_proto("ping", None).await
    }

    /// Sends any proto, known or not, with optional `data` and the current time as `timestamp`.
    pub async fn send_proto(&self, proto: &str, data: Option<&Value>) -> Result<(), ClientError> {
        self.send_typed(Extra { proto, timestamp: unix_now(), data, action_data: None }).await
    }

    /// Frames and sends `body` as is, for bad-input tests. It does not count as the first message: the token still
    /// goes on the next typed message.
    pub async fn send_raw_body(&self, body: &[u8]) -> Result<(), ClientError> {
        self.send_raw_bytes(&frame_bytes(body)).await
    }

    /// Writes `bytes` with no framing, for framing tests.
    pub async fn send_raw_bytes(&self, bytes: &[u8]) -> Result<(), ClientError> {
        let mut w = self.writer.lock().await;
        w.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Shuts down the sending direction of the socket; later sends fail.
    pub async fn shutdown(&self) -> Result<(), ClientError> {
        let mut w = self.writer.lock().await;
        w.stream.shutdown().await?;
        Ok(())
    }

    async fn send_typed(&self, extra_data: Extra<'_>) -> Result<(), ClientError> {
        let mut w = self.writer.lock().await;
        let token = w.token.take();
        let body = serde_json::to_vec(&Envelope { uid: &self.uid, token: token.as_deref(), extra_data })?;
        w.stream.write_all(&frame_bytes(&body)).await?;
        Ok(())
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    uid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
    extra_data: Extra<'a>,
}

#[derive(Serialize)]
struct Extra<'a> {
    proto: &'a str,
    timestamp: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action_data: Option<&'a Value>,
}

impl SyncEvents {
    /// The next server message, or `None` once the connection closed (then see [`SyncEvents::close_reason`]).
    ///
    /// Cancel-safe: no event is lost if the future is dropped.
    pub async fn next_event(&mut self) -> Option<ServerEvent> {
        if let Some(ev) = self.pending.pop_front() {
            return Some(ev);
        }
        if self.closed {
            return None;
        }
        match self.rx.recv().await {
            Some(Ok(ev)) => Some(ev),
            Some(Err(e)) => {
                tracing::debug!(error = %e, "sync connection failed");
                self.close_reason = Some(e);
                self.closed = true;
                None
            }
            None => {
                self.closed = true;
                None
            }
        }
    }

    /// [`SyncEvents::next_event`] giving up after `timeout`.
    pub async fn next_event_timeout(&mut self, timeout: Duration) -> Result<Option<ServerEvent>, Elapsed> {
        tokio::time::timeout(timeout, self.next_event()).await
    }

    /// The first event matching `pred` within `timeout`, discarding the others. Fails with
    /// [`ClientError::Timeout`] or [`ClientError::Closed`].
    pub async fn wait_for(
        &mut self,
        mut pred: impl FnMut(&ServerEvent) -> bool,
        timeout: Duration,
    ) -> Result<ServerEvent, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            match timeout_at(deadline, self.next_event()).await? {
                None => return Err(ClientError::Closed),
                Some(ev) if pred(&ev) => return Ok(ev),
                Some(ev) => tracing::trace!(?ev, "wait_for: discarded"),
            }
        }
    }

    /// Waits until the connection closes, returning the events received meanwhile. Fails with
    /// [`ClientError::Timeout`] if it is still open after `timeout`.
    pub async fn wait_closed(&mut self, timeout: Duration) -> Result<Vec<ServerEvent>, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(ev) = timeout_at(deadline, self.next_event()).await? {
            seen.push(ev);
        }
        Ok(seen)
    }

    /// Collects the `reload_frames` chunks answering a request from `start_frame`, until the one marked `last`.
    ///
    /// Other events arriving meanwhile (live `sync_frame`s, `room_state`, errors about other requests) are kept,
    /// in order, for [`SyncEvents::next_event`]. An `error` about the reload (or about no particular request, such
    /// as `replaced`) fails with [`ClientError::Server`]. Chunks must cover `start_frame..end_frame` consecutively,
    /// otherwise [`ClientError::Protocol`]. The `timeout` covers the whole reload.
    pub async fn recv_reload(&mut self, start_frame: u64, timeout: Duration) -> Result<Vec<Frame>, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut frames = Vec::new();
        let mut next = start_frame;
        loop {
            // Read past `pending`: it holds only events older than this reload's answer.
            let ev = match timeout_at(deadline, self.rx.recv()).await? {
                Some(Ok(ev)) => ev,
                Some(Err(e)) => {
                    self.closed = true;
                    self.close_reason = Some(e);
                    return Err(ClientError::Closed);
                }
                None => {
                    self.closed = true;
                    return Err(ClientError::Closed);
                }
            };
            match ev {
                ServerEvent::Reload(chunk) => {
                    if chunk.start_frame != next {
                        return Err(ClientError::Protocol(format!(
                            "reload chunk starts at frame {}, expected {next}",
                            chunk.start_frame
                        )));
                    }
                    for frame in chunk.frames {
                        if frame.frame_count != next {
                            return Err(ClientError::Protocol(format!(
                                "reload chunk holds frame {}, expected {next}",
                                frame.frame_count
                            )));
                        }
                        next += 1;
                        frames.push(frame);
                    }
                    if chunk.last {
                        if next != chunk.end_frame {
                            return Err(ClientError::Protocol(format!(
                                "reload ended at frame {next}, but the server announced end_frame {}",
                                chunk.end_frame
                            )));
                        }
                        return Ok(frames);
                    }
                }
                ServerEvent::Error(body) if body.proto.as_deref().is_none_or(|p| p == RELOAD_PROTO) => {
                    return Err(body.into());
                }
                other => self.pending.push_back(other),
            }
        }
    }

    /// Why the connection closed, when it was not a clean end-of-stream (a read error or an unparsable message).
    pub fn close_reason(&self) -> Option<&ClientError> {
        self.close_reason.as_ref()
    }

    /// True once [`SyncEvents::next_event`] has seen the end of the connection.
    pub fn is_closed(&self) -> bool {
        self.closed && self.pending.is_empty()
    }
}

impl Drop for SyncEvents {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Decodes frames into events until end-of-stream, a framing error, an unparsable message, or the receiver is gone.
async fn read_events(read: OwnedReadHalf, tx: mpsc::Sender<Result<ServerEvent, ClientError>>) {
    let mut frames = FramedRead::new(read, FrameCodec::new(DEFAULT_MAX_SERVER_FRAME));
    while let Some(item) = frames.next().await {
        let result = match item {
            Ok(body) => match parse_server_message(&body) {
                Ok(ev) => Ok(ev),
                // A newer server may know more messages; skipping them keeps this client usable.
                Err(ServerParseError::UnknownProto(proto)) => {
                    tracing::warn!(%proto, "ignoring unknown server message");
                    continue;
                }
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        };
        let failed = result.is_err();
        if tx.send(result).await.is_err() || failed {
            return;
        }
    }
}

/// A fake sync server end for tests in this crate.
#[cfg(test)]
pub(crate) mod test_server {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio::net::TcpListener;

    /// How long a test waits for anything.
    pub(crate) const T: Duration = Duration::from_secs(5);

    /// The server end of one test connection: decoded client bodies in, raw wire bytes out.
    pub(crate) struct FakeServer {
        pub(crate) frames: FramedRead<OwnedReadHalf, FrameCodec>,
        pub(crate) write: OwnedWriteHalf,
    }

    impl FakeServer {
        pub(crate) async fn recv_json(&mut self) -> Value {
            let body = tokio::time::timeout(T, self.frames.next()).await.unwrap().unwrap().unwrap();
            serde_json::from_slice(&body).unwrap()
        }

        pub(crate) async fn send(&mut self, wire: &[u8]) {
            self.write.write_all(wire).await.unwrap();
        }
    }

    /// A connected client and the fake server's end of its connection.
    pub(crate) async fn pair() -> (SyncClient, FakeServer) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (client, accepted) = tokio::join!(SyncClient::connect(&addr, "1001", "jwt"), listener.accept());
        let (read, write) = accepted.unwrap().0.into_split();
        let server = FakeServer { frames: FramedRead::new(read, FrameCodec::default()), write };
        (client.unwrap(), server)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::test_server::{T, pair};
    use super::*;
    use bytes::Bytes;
    use movan_protocol::ErrorCode;
    use movan_protocol::server::{ErrorBody, Pong, ServerMessage, encode_frame, encode_reload_chunk};

    fn frame_wire(n: u64) -> Bytes {
        encode_frame(n, &[]).wire
    }

    #[tokio::test]
    async fn token_goes_on_the_first_message_only() {
        let (client, mut server) = pair().await;
        client.ping().await.unwrap();
        client.enter_room(Some("r-1")).await.unwrap();
        client.prepare().await.unwrap();

        let first = server.recv_json().await;
        assert_eq!(first["uid"], "1001");
        assert_eq!(first["token"], "jwt");
        assert_eq!(first["extra_data"]["proto"], "ping");
        assert!(first["extra_data"]["timestamp"].as_f64().unwrap() > 1.0e9);

        let second = server.recv_json().await;
        assert!(second.get("token").is_none(), "{second}");
        assert_eq!(second["extra_data"]["proto"], "room_enter");
        assert_eq!(second["extra_data"]["data"], serde_json::json!({"room_id": "r-1"}));

        let third = server.recv_json().await;
        assert!(third.get("token").is_none());
        assert_eq!(third["extra_data"]["proto"], "room_prepare");
        assert!(third["extra_data"].get("data").is_none());
    }

    #[tokio::test]
    async fn raw_bodies_do_not_use_up_the_token() {
        let (client, mut server) = pair().await;
        client.send_raw_body(b"{not json").await.unwrap();
        client.enter_room(None).await.unwrap();
        let body = server.frames.next().await.unwrap().unwrap();
        assert_eq!(&body[..], b"{not json");
        let enter = server.recv_json().await;
        assert_eq!(enter["token"], "jwt");
        assert_eq!(enter["extra_data"]["proto"], "room_enter");
        assert!(enter["extra_data"].get("data").is_none(), "quick match sends no data");
    }

    #[tokio::test]
    async fn actions_and_reload_requests_have_the_documented_shape() {
        let (client, mut server) = pair().await;
        client.send_action_at(&serde_json::json!({"move": [1, 0]}), 12.5).await.unwrap();
        client.send_action(&serde_json::json!({"fire": true})).await.unwrap();
        client.request_reload(42).await.unwrap();

        let a = server.recv_json().await;
        assert_eq!(
            a["extra_data"],
            serde_json::json!({"proto": "sync_action", "timestamp": 12.5, "action_data": {"move": [1, 0]}})
        );
        let b = server.recv_json().await;
        assert!((b["extra_data"]["timestamp"].as_f64().unwrap() - unix_now()).abs() < 60.0);
        assert!(b["extra_data"].get("data").is_none());
        let r = server.recv_json().await;
        assert_eq!(r["extra_data"]["proto"], "sync_request_reload_frames");
        assert_eq!(r["extra_data"]["data"], serde_json::json!({"start_frame": 42}));
    }

    #[tokio::test]
    async fn raw_bytes_are_written_unframed() {
        let (client, mut server) = pair().await;
        // A frame assembled by hand, in two writes.
        client.send_raw_bytes(&[0, 0, 0, 2]).await.unwrap();
        client.send_raw_bytes(b"{}").await.unwrap();
        assert_eq!(server.recv_json().await, serde_json::json!({}));
    }

    #[tokio::test]
    async fn frames_split_and_coalesced_on_the_wire_are_decoded() {
        let (mut client, mut server) = pair().await;
        let pong = ServerMessage::Pong(Pong { timestamp: Some(1.5), server_time: 2.0 }).to_wire();
        // Two messages in one write, then one byte at a time.
        let mut both = frame_wire(0).to_vec();
        both.extend_from_slice(&frame_wire(1));
        server.send(&both).await;
        for b in pong.iter() {
            server.send(&[*b]).await;
        }
        for want in 0..2 {
            match client.next_event_timeout(T).await.unwrap() {
                Some(ServerEvent::Frame(f)) => assert_eq!(f.frame_count, want),
                other => panic!("{other:?}"),
            }
        }
        match client.next_event_timeout(T).await.unwrap() {
            Some(ServerEvent::Pong(p)) => assert_eq!(p.timestamp, Some(1.5)),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn reload_collects_chunks_and_keeps_live_frames_queued() {
        let (mut client, mut server) = pair().await;
        let frames: Vec<Bytes> = (0..6).map(|n| encode_frame(n, &[]).frame).collect();
        let serve = async {
            let req = server.recv_json().await;
            assert_eq!(req["extra_data"]["data"]["start_frame"], 0);
            server.send(&encode_reload_chunk(0, 6, false, &frames[..3])).await;
            server.send(&frame_wire(6)).await;
            server.send(&encode_reload_chunk(3, 6, true, &frames[3..])).await;
            server.send(&frame_wire(7)).await;
        };
        let (got, ()) = tokio::join!(client.reload(0, T), serve);
        let got = got.unwrap();
        let numbers: Vec<u64> = got.iter().map(|f| f.frame_count).collect();
        assert_eq!(numbers, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(got[4].raw.get().as_bytes(), &frames[4][..]);

        let mut log = crate::FrameLog::new();
        for f in got {
            log.push(f).unwrap();
        }
        for want in [6, 7] {
            match client.next_event_timeout(T).await.unwrap() {
                Some(ServerEvent::Frame(f)) => {
                    assert_eq!(f.frame_count, want);
                    log.push(f).unwrap();
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(log.next_frame(), 8);
    }

    #[tokio::test]
    async fn an_empty_reload_is_one_last_chunk() {
        let (mut client, mut server) = pair().await;
        let serve = async {
            server.recv_json().await;
            server.send(&encode_reload_chunk(9, 9, true, &[])).await;
        };
        let (got, ()) = tokio::join!(client.reload(9, T), serve);
        assert!(got.unwrap().is_empty());
    }

    #[tokio::test]
    async fn reload_errors_and_out_of_order_chunks_fail() {
        let (mut client, mut server) = pair().await;
        let unrelated = ServerMessage::Error(ErrorBody {
            code: ErrorCode::LimitExceeded,
            message: "slow down".into(),
            proto: Some("sync_action".into()),
        });
        let expired = ServerMessage::Error(ErrorBody {
            code: ErrorCode::HistoryExpired,
            message: "too old".into(),
            proto: Some(RELOAD_PROTO.into()),
        });
        let serve = async {
            server.recv_json().await;
            server.send(&unrelated.to_wire()).await;
            server.send(&expired.to_wire()).await;
        };
        let (got, ()) = tokio::join!(client.reload(0, T), serve);
        let err = got.unwrap_err();
        assert_eq!(err.server_code(), Some(ErrorCode::HistoryExpired), "{err}");
        // The error about another request stays queued.
        match client.next_event_timeout(T).await.unwrap() {
            Some(ServerEvent::Error(e)) => assert_eq!(e.code, ErrorCode::LimitExceeded),
            other => panic!("{other:?}"),
        }

        let serve = async {
            server.recv_json().await;
            let frames = [encode_frame(1, &[]).frame];
            server.send(&encode_reload_chunk(0, 2, true, &frames)).await;
        };
        let (got, ()) = tokio::join!(client.reload(0, T), serve);
        assert!(matches!(got, Err(ClientError::Protocol(_))), "{got:?}");
    }

    #[tokio::test]
    async fn split_halves_work_from_separate_tasks() {
        let (client, mut server) = pair().await;
        let (sender, mut events) = client.split();
        let s2 = sender.clone();
        let sending = tokio::spawn(async move {
            for seq in 0..3 {
                s2.send_action(&serde_json::json!({ "seq": seq })).await.unwrap();
            }
        });
        for seq in 0..3 {
            let msg = server.recv_json().await;
            assert_eq!(msg["extra_data"]["action_data"]["seq"], seq);
            assert_eq!(msg.get("token").is_some(), seq == 0);
            server.send(&frame_wire(seq)).await;
        }
        sending.await.unwrap();
        for seq in 0..3 {
            let ev = events.wait_for(|e| matches!(e, ServerEvent::Frame(_)), T).await.unwrap();
            assert!(matches!(ev, ServerEvent::Frame(f) if f.frame_count == seq));
        }
        assert_eq!(sender.uid(), "1001");
    }

    #[tokio::test]
    async fn close_is_detected_after_queued_events() {
        let (mut client, mut server) = pair().await;
        server.send(&frame_wire(0)).await;
        drop(server);
        let seen = client.wait_closed(T).await.unwrap();
        assert_eq!(seen.len(), 1);
        assert!(client.next_event().await.is_none());
        assert!(client.events().is_closed());
        assert!(client.events().close_reason().is_none(), "a clean close has no error");
        let err = client.wait_for(|_| true, T).await.unwrap_err();
        assert!(matches!(err, ClientError::Closed), "{err}");
    }

    #[tokio::test]
    async fn a_malformed_server_message_ends_the_stream_with_a_reason() {
        let (mut client, mut server) = pair().await;
        server.send(&frame_bytes(br#"{"proto":"mystery","data":{}}"#)).await;
        server.send(&frame_bytes(b"not json")).await;
        assert!(client.next_event_timeout(T).await.unwrap().is_none());
        assert!(matches!(client.events().close_reason(), Some(ClientError::Parse(_))));
    }

    #[tokio::test]
    async fn timeouts_are_reported() {
        let (mut client, _server) = pair().await;
        let short = Duration::from_millis(20);
        assert!(client.next_event_timeout(short).await.is_err());
        assert!(matches!(client.wait_for(|_| true, short).await, Err(ClientError::Timeout)));
        assert!(matches!(client.wait_closed(short).await, Err(ClientError::Timeout)));
        assert!(matches!(client.reload(0, short).await, Err(ClientError::Timeout)));
    }

    #[tokio::test]
    async fn shutdown_ends_the_servers_stream() {
        let (client, mut server) = pair().await;
        client.shutdown().await.unwrap();
        assert!(tokio::time::timeout(T, server.frames.next()).await.unwrap().is_none());
    }
}
