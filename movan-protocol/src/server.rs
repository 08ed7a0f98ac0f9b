//! Messages the server sends: `{"proto": "...", "data": ...}`.
//!
//! The server side builds `sync_frame` and `reload_frames` with [`encode_frame`] and [`encode_reload_chunk`]: a
//! frame is serialized once, and the very same bytes are broadcast and later replayed inside reloads. The client
//! side parses anything the server sends with [`parse_server_message`].

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use crate::checksum::Desync;
use crate::codec::frame_bytes;
use crate::error::{ErrorCode, ProtocolError};
use crate::matches::EndReason;

/// Where a room is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomStatus {
    /// Gathering players; `room_prepare` marks them ready.
    Waiting,
    /// The game runs and frames tick.
    Playing,
}

/// One member as shown in `room_state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberState {
    /// The member's uid.
    pub uid: String,
    /// Whether the member sent `room_prepare`.
    pub ready: bool,
    /// Whether the member currently has a live connection.
    pub connected: bool,
    /// Present for a player who joined the running game: the first frame it played (late join).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_frame: Option<u64>,
}

/// `room_state`: sent to every member on every membership or readiness change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomState {
    /// The room's id.
    pub room_id: String,
    /// Seats in the room.
    pub capacity: u32,
    /// Players needed before the game can start.
    pub min_players: u32,
    /// Lifecycle state.
    pub status: RoomStatus,
    /// Members in join order.
    pub members: Vec<MemberState>,
    /// Spectators watching (`room_spectate`); they are not members.
    #[serde(default)]
    pub spectators: u32,
}

/// `room_left`: the answer to `room_leave`, or the server closed the waiting room. The player is out of the room:
/// nothing of it follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomLeft {
    /// The room it left.
    pub room_id: String,
    /// Absent when the player asked (`room_leave`); otherwise why the server took it out: [`LEFT_WAITING_TIMEOUT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// With a `reason`: a human-readable explanation; do not parse it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `room_left.reason`: the room waited `sync.waiting_room_timeout_secs` without a game starting and was closed.
pub const LEFT_WAITING_TIMEOUT: &str = "waiting_room_timeout";

/// `room_left.reason` for a spectator: the room closed before a game started (its last member left).
pub const LEFT_ROOM_CLOSED: &str = "room_closed";

impl RoomLeft {
    /// The answer to `room_leave`.
    pub fn asked(room_id: impl Into<String>) -> Self {
        Self { room_id: room_id.into(), reason: None, message: None }
    }
}

/// `game_start`: the game begins; frames count from 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GameStart {
    /// The room's id.
    pub room_id: String,
    /// Server wall-clock time of the start, seconds since the Unix epoch.
    pub start_time: f64,
    /// Milliseconds between frames.
    pub frame_interval_ms: u64,
    /// Players in the game, in join order.
    pub members: Vec<String>,
    /// A random seed shared by all players, for deterministic game logic.
    pub seed: u32,
    /// Send `sync_checksum` for every frame that is a multiple of this (0: the server compares no checksums).
    #[serde(default)]
    pub checksum_interval: u64,
    /// Present only for a player who joined the running game: the first frame it plays. Frames before it come as a
    /// reload right after this message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_frame: Option<u64>,
}

/// `game_over`: the game ended; the room is freed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GameOver {
    /// The room's id.
    pub room_id: String,
    /// Why it ended.
    pub reason: EndReason,
    /// Number of frames broadcast (the last frame is `frame_count - 1`).
    pub frame_count: u64,
    /// Per-player results a custom room may set, otherwise `null`.
    #[serde(default)]
    pub results: Option<serde_json::Value>,
}

/// `pong`: the answer to `ping`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pong {
    /// The `timestamp` of the ping, echoed so the client can measure round trips.
    #[serde(default)]
    pub timestamp: Option<f64>,
    /// Server wall-clock time, seconds since the Unix epoch.
    pub server_time: f64,
}

/// `error`: a request failed (see [`ErrorCode`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable reason.
    pub message: String,
    /// The proto of the failing request, or `null`.
    pub proto: Option<String>,
}

impl From<&ProtocolError> for ErrorBody {
    fn from(e: &ProtocolError) -> Self {
        Self { code: e.code, message: e.message.clone(), proto: e.proto.clone() }
    }
}

/// The messages the server serializes through serde (frames have their own encoders).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "proto", content = "data", rename_all = "snake_case")]
pub enum ServerMessage {
    /// `room_state`.
    RoomState(RoomState),
    /// `room_left`.
    RoomLeft(RoomLeft),
    /// `game_start`.
    GameStart(GameStart),
    /// `game_over`.
    GameOver(GameOver),
    /// `pong`.
    Pong(Pong),
    /// `desync`.
    Desync(Desync),
    /// `error`.
    Error(ErrorBody),
}

impl ServerMessage {
    /// The message body (JSON); the transport frames it.
    pub fn to_body(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(128).writer();
        // Serializing these plain structs into memory cannot fail.
        serde_json::to_writer(&mut out, self).expect("server message serializes");
        out.into_inner().freeze()
    }

    /// The message as a TCP frame: length prefix and JSON body.
    pub fn to_wire(&self) -> Bytes {
        frame_bytes(&self.to_body())
    }
}

/// One action of a frame, as the server orders and encodes it.
#[derive(Debug, Clone, Copy)]
pub struct ActionRef<'a> {
    /// Who sent it.
    pub uid: &'a str,
    /// The timestamp it was ordered by (the client's, clamped to when the server received it).
    pub timestamp: f64,
    /// The action as the client sent it (or as the room rewrote it).
    pub action_data: &'a RawValue,
}

/// A frame encoded once: the message body to broadcast, and the frame object alone for reloads.
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    /// `{"proto":"sync_frame","data":<frame>}`; the transport frames it.
    pub body: Bytes,
    /// `<frame>`: `{"frame_count":n,"actions":[...]}` — a slice of `body`, no copy.
    pub frame: Bytes,
}

impl EncodedFrame {
    /// The message as a TCP frame: length prefix and body (a copy).
    pub fn wire(&self) -> Bytes {
        frame_bytes(&self.body)
    }
}

const FRAME_HEAD: &[u8] = br#"{"proto":"sync_frame","data":"#;

/// Encodes a `sync_frame` message for `frame_count` with `actions` in their final order.
pub fn encode_frame(frame_count: u64, actions: &[ActionRef<'_>]) -> EncodedFrame {
    #[derive(Serialize)]
    struct Extra<'a> {
        timestamp: f64,
        action_data: &'a RawValue,
    }
    #[derive(Serialize)]
    struct Action<'a> {
        uid: &'a str,
        extra_data: Extra<'a>,
    }
    #[derive(Serialize)]
    struct FrameOut<'a> {
        frame_count: u64,
        actions: Vec<Action<'a>>,
    }
    let frame = FrameOut {
        frame_count,
        actions: actions
            .iter()
            .map(|a| Action { uid: a.uid, extra_data: Extra { timestamp: a.timestamp, action_data: a.action_data } })
            .collect(),
    };
    let size: usize = 64 + actions.iter().map(|a| a.action_data.get().len() + 64).sum::<usize>();
    let mut out = BytesMut::with_capacity(size).writer();
    out.get_mut().put_slice(FRAME_HEAD);
    serde_json::to_writer(&mut out, &frame).expect("frame serializes");
    let mut buf = out.into_inner();
    buf.put_u8(b'}');
    let body = buf.freeze();
    let frame = body.slice(FRAME_HEAD.len()..body.len() - 1);
    EncodedFrame { body, frame }
}

/// The `sync_frame` message body of a frame (the `frame` part of an [`EncodedFrame`]): byte for byte the `body`
/// [`encode_frame`] made, for sending a frame again later (to spectators, after their delay).
pub fn frame_message(frame: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(FRAME_HEAD.len() + frame.len() + 1);
    buf.put_slice(FRAME_HEAD);
    buf.put_slice(frame);
    buf.put_u8(b'}');
    buf.freeze()
}

/// Encodes one `reload_frames` message body (the transport frames it) holding `frames` (each the `frame` part of an [`EncodedFrame`]).
///
/// `data` is `{"start_frame":s,"end_frame":e,"last":b,"frames":[...]}`: this chunk holds frames `s..s+len`, the whole
/// reload ends before frame `e` (the next frame to be broadcast), and `last` is true on the final chunk.
pub fn encode_reload_chunk(start_frame: u64, end_frame: u64, last: bool, frames: &[Bytes]) -> Bytes {
    let size = 96 + frames.iter().map(|f| f.len() + 1).sum::<usize>();
    let mut buf = BytesMut::with_capacity(size);
    buf.put_slice(
        format!(
            r#"{{"proto":"reload_frames","data":{{"start_frame":{start_frame},"end_frame":{end_frame},"last":{last},"frames":["#
        )
        .as_bytes(),
    );
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            buf.put_u8(b',');
        }
        buf.put_slice(f);
    }
    buf.put_slice(b"]}}");
    buf.freeze()
}

/// A `sync_frame` (or a frame inside `reload_frames`) as a client sees it.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Frame number, from 0, consecutive.
    pub frame_count: u64,
    /// The actions in their deterministic order.
    pub actions: Vec<FrameAction>,
    /// The frame object exactly as the server sent it.
    pub raw: Box<RawValue>,
}

impl PartialEq for Frame {
    fn eq(&self, other: &Self) -> bool {
        self.raw.get() == other.raw.get()
    }
}

/// One action inside a [`Frame`].
#[derive(Debug, Clone)]
pub struct FrameAction {
    /// Who sent it.
    pub uid: String,
    /// The timestamp it was ordered by.
    pub timestamp: f64,
    /// The action object.
    pub action_data: Box<RawValue>,
}

/// `reload_frames` as a client sees it.
#[derive(Debug, Clone)]
pub struct ReloadChunk {
    /// Frame number of the first frame in this chunk.
    pub start_frame: u64,
    /// The reload covers frames up to, not including, this one: the next frame the server will broadcast.
    pub end_frame: u64,
    /// True on the final chunk.
    pub last: bool,
    /// Frames, consecutive.
    pub frames: Vec<Frame>,
}

/// Anything the server sends, parsed by a client.
#[derive(Debug, Clone)]
pub enum ServerEvent {
    /// `room_state`.
    RoomState(RoomState),
    /// `room_left`.
    RoomLeft(RoomLeft),
    /// `game_start`.
    GameStart(GameStart),
    /// `sync_frame`.
    Frame(Frame),
    /// `reload_frames`.
    Reload(ReloadChunk),
    /// `game_over`.
    GameOver(GameOver),
    /// `pong`.
    Pong(Pong),
    /// `desync`: the players' checksums disagree.
    Desync(Desync),
    /// `error`.
    Error(ErrorBody),
}

/// A server message a client could not understand.
#[derive(Debug, thiserror::Error)]
pub enum ServerParseError {
    /// Not JSON, or fields of the wrong shape.
    #[error("malformed server message: {0}")]
    Json(#[from] serde_json::Error),
    /// A proto this client does not know.
    #[error("unknown server proto {0:?}")]
    UnknownProto(String),
}

/// Parses one frame body sent by the server.
pub fn parse_server_message(body: &[u8]) -> Result<ServerEvent, ServerParseError> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        proto: String,
        #[serde(borrow)]
        data: &'a RawValue,
    }
    #[derive(Deserialize)]
    struct ReloadWire<'a> {
        start_frame: u64,
        end_frame: u64,
        last: bool,
        #[serde(borrow)]
        frames: Vec<&'a RawValue>,
    }
    let env: Envelope<'_> = serde_json::from_slice(body)?;
    let data = env.data.get();
    Ok(match env.proto.as_str() {
        "room_state" => ServerEvent::RoomState(serde_json::from_str(data)?),
        "room_left" => ServerEvent::RoomLeft(serde_json::from_str(data)?),
        "game_start" => ServerEvent::GameStart(serde_json::from_str(data)?),
        "sync_frame" => ServerEvent::Frame(parse_frame(env.data)?),
        "reload_frames" => {
            let wire: ReloadWire<'_> = serde_json::from_str(data)?;
            ServerEvent::Reload(ReloadChunk {
                start_frame: wire.start_frame,
                end_frame: wire.end_frame,
                last: wire.last,
                frames: wire.frames.into_iter().map(parse_frame).collect::<Result<_, _>>()?,
            })
        }
        "game_over" => ServerEvent::GameOver(serde_json::from_str(data)?),
        "pong" => ServerEvent::Pong(serde_json::from_str(data)?),
        "desync" => ServerEvent::Desync(serde_json::from_str(data)?),
        "error" => ServerEvent::Error(serde_json::from_str(data)?),
        other => return Err(ServerParseError::UnknownProto(other.to_owned())),
    })
}

fn parse_frame(raw: &RawValue) -> Result<Frame, serde_json::Error> {
    #[derive(Deserialize)]
    struct Extra {
        timestamp: f64,
        action_data: Box<RawValue>,
    }
    #[derive(Deserialize)]
    struct ActionWire {
        uid: String,
        extra_data: Extra,
    }
    #[derive(Deserialize)]
    struct FrameWire {
        frame_count: u64,
        actions: Vec<ActionWire>,
    }
    let wire: FrameWire = serde_json::from_str(raw.get())?;
    Ok(Frame {
        frame_count: wire.frame_count,
        actions: wire
            .actions
            .into_iter()
            .map(|a| FrameAction {
                uid: a.uid,
                timestamp: a.extra_data.timestamp,
                action_data: a.extra_data.action_data,
            })
            .collect(),
        raw: raw.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::LENGTH_PREFIX;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn frame_is_encoded_once_and_parses_back() {
        let a = raw(r#"{"move":[1,0]}"#);
        let b = raw(r#"{"fire":true}"#);
        let enc = encode_frame(
            3,
            &[
                ActionRef { uid: "1001", timestamp: 1.25, action_data: &a },
                ActionRef { uid: "1002", timestamp: 1.5, action_data: &b },
            ],
        );
        let body = &enc.body[..];
        assert_eq!(frame_message(&enc.frame), enc.body, "a frame's message is rebuilt byte for byte");
        let wire = enc.wire();
        assert_eq!(u32::from_be_bytes(wire[..4].try_into().unwrap()) as usize, body.len());
        assert_eq!(&wire[LENGTH_PREFIX..], body);
        assert_eq!(
            std::str::from_utf8(body).unwrap(),
            r#"{"proto":"sync_frame","data":{"frame_count":3,"actions":[{"uid":"1001","extra_data":{"timestamp":1.25,"action_data":{"move":[1,0]}}},{"uid":"1002","extra_data":{"timestamp":1.5,"action_data":{"fire":true}}}]}}"#
        );
        assert_eq!(
            std::str::from_utf8(&enc.frame).unwrap(),
            r#"{"frame_count":3,"actions":[{"uid":"1001","extra_data":{"timestamp":1.25,"action_data":{"move":[1,0]}}},{"uid":"1002","extra_data":{"timestamp":1.5,"action_data":{"fire":true}}}]}"#
        );
        match parse_server_message(body).unwrap() {
            ServerEvent::Frame(f) => {
                assert_eq!(f.frame_count, 3);
                assert_eq!(f.actions.len(), 2);
                assert_eq!(f.actions[1].uid, "1002");
                assert_eq!(f.raw.get().as_bytes(), &enc.frame[..]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn empty_frame() {
        let enc = encode_frame(0, &[]);
        assert_eq!(&enc.frame[..], br#"{"frame_count":0,"actions":[]}"#);
    }

    #[test]
    fn uid_is_json_escaped() {
        let a = raw("{}");
        let enc = encode_frame(0, &[ActionRef { uid: "a\"b", timestamp: 0.0, action_data: &a }]);
        assert!(serde_json::from_slice::<serde_json::Value>(&enc.body).is_ok());
    }

    #[test]
    fn reload_chunk_carries_the_broadcast_bytes() {
        let frames: Vec<Bytes> = (5..8).map(|n| encode_frame(n, &[]).frame).collect();
        let body = encode_reload_chunk(5, 9, false, &frames);
        match parse_server_message(&body).unwrap() {
            ServerEvent::Reload(chunk) => {
                assert_eq!((chunk.start_frame, chunk.end_frame, chunk.last), (5, 9, false));
                let got: Vec<&[u8]> = chunk.frames.iter().map(|f| f.raw.get().as_bytes()).collect();
                let want: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
                assert_eq!(got, want);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn serde_messages_have_the_documented_shape() {
        let msg = ServerMessage::Error(ErrorBody {
            code: ErrorCode::NotInRoom,
            message: "no".into(),
            proto: Some("room_prepare".into()),
        });
        let wire = msg.to_wire();
        assert_eq!(
            std::str::from_utf8(&wire[4..]).unwrap(),
            r#"{"proto":"error","data":{"code":"not_in_room","message":"no","proto":"room_prepare"}}"#
        );
        assert!(matches!(parse_server_message(&wire[4..]).unwrap(), ServerEvent::Error(_)));
    }

    /// Found by `fuzz/fuzz_targets/server_message.rs` (minimized with `cargo fuzz tmin`): a number the server writes
    /// must read back as the same f64. serde_json's default float parser is not correctly rounded, so this
    /// `server_time` came back one ulp off once the server re-encoded it; `float_roundtrip` (Cargo.toml) fixes it.
    #[test]
    fn fuzz_floats_read_back_exactly() {
        let body =
            br#"{"proto":"pong","data":{"tim+suidt!amp":170.16,"server_time":17008004444000000000000000063338800.17}}"#;
        let ServerEvent::Pong(pong) = parse_server_message(body).unwrap() else { panic!("not a pong") };
        let wire = ServerMessage::Pong(pong.clone()).to_wire();
        let ServerEvent::Pong(again) = parse_server_message(&wire[4..]).unwrap() else { panic!("not a pong") };
        assert_eq!(again.server_time.to_bits(), pong.server_time.to_bits(), "{}", again.server_time);

        // The case that matters in a game: a full-precision clock reading as an action's timestamp in a frame.
        let t = 1_797_551_324.547_709_5_f64;
        let action = raw("{}");
        let enc = encode_frame(0, &[ActionRef { uid: "1001", timestamp: t, action_data: &action }]);
        let ServerEvent::Frame(frame) = parse_server_message(&enc.body).unwrap() else { panic!("not a frame") };
        assert_eq!(frame.actions[0].timestamp.to_bits(), t.to_bits());
    }
}
