//! Messages a game client sends, in the Movan shape:
//!
//! ```json
//! {"uid": "1001", "token": "<jwt>", "extra_data": {"proto": "sync_action", "timestamp": 1700000000.25,
//!  "action_data": {"move": [1, 0]}}}
//! ```
//!
//! [`parse_client_message`] turns a frame body into a typed [`ClientMessage`] or a [`ProtocolError`] with the code
//! to send back. It never panics, whatever the input. [`OutgoingMessage`] is the other direction, for clients.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{ErrorCode, ProtocolError};

mod encode;

pub use encode::OutgoingMessage;

/// Longest accepted room id.
pub const MAX_ROOM_ID_LEN: usize = 64;
/// Longest accepted uid.
pub const MAX_UID_LEN: usize = 64;
/// Deepest nesting accepted inside `action_data`. The server relays actions verbatim to every player, so it
/// refuses what common client JSON parsers would choke on (System.Text.Json stops at 64 by default).
pub const MAX_ACTION_DEPTH: usize = 32;

/// One parsed client message.
#[derive(Debug, Clone)]
pub struct ClientMessage {
    /// The uid the client claims; must match the token's subject.
    pub uid: String,
    /// The access token; required on the first message of a connection.
    pub token: Option<String>,
    /// The client's send time in seconds since the Unix epoch, if given.
    pub timestamp: Option<f64>,
    /// What the client asks for.
    pub request: Request,
}

/// The typed request carried by `extra_data`.
#[derive(Debug, Clone)]
pub enum Request {
    /// `room_enter`: join `room_id` (created when missing), or quick-match when `None`.
    RoomEnter {
        /// The room to enter.
        room_id: Option<String>,
    },
    /// `room_leave`: leave the current room.
    RoomLeave,
    /// `room_prepare`: mark the player ready.
    RoomPrepare,
    /// `sync_action`: an action for the next frame. `action_data` is kept as raw JSON and relayed verbatim.
    SyncAction {
        /// The action, a JSON object.
        action_data: Box<RawValue>,
    },
    /// `sync_request_reload_frames`: resend frames from `start_frame` to the newest.
    ReloadFrames {
        /// First frame wanted.
        start_frame: u64,
    },
    /// `sync_checksum`: the client's hash of its game state after frame `frame`, for desync detection.
    Checksum {
        /// The frame the hash is of: a multiple of `game_start.checksum_interval`.
        frame: u64,
        /// An opaque string of 1 to [`MAX_CHECKSUM_LEN`](crate::checksum::MAX_CHECKSUM_LEN) bytes.
        hash: String,
    },
    /// `ping`: answered by `pong`.
    Ping,
    /// `room_spectate`: watch a waiting or running room without playing.
    RoomSpectate {
        /// The room to watch.
        room_id: String,
    },
}

impl Request {
    /// The proto name of this request.
    pub fn proto(&self) -> &'static str {
        match self {
            Self::RoomEnter { .. } => "room_enter",
            Self::RoomLeave => "room_leave",
            Self::RoomPrepare => "room_prepare",
            Self::SyncAction { .. } => "sync_action",
            Self::ReloadFrames { .. } => "sync_request_reload_frames",
            Self::Checksum { .. } => "sync_checksum",
            Self::RoomSpectate { .. } => "room_spectate",
            Self::Ping => "ping",
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    uid: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(borrow)]
    extra_data: &'a RawValue,
}

#[derive(Deserialize)]
struct ExtraData<'a> {
    proto: String,
    #[serde(default)]
    timestamp: Option<f64>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
    #[serde(default, borrow)]
    action_data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RoomEnterData {
    #[serde(default)]
    room_id: Option<String>,
}

#[derive(Deserialize)]
struct ReloadData {
    start_frame: u64,
}

#[derive(Deserialize)]
struct ChecksumData {
    frame: u64,
    hash: String,
}

/// Parses one frame body sent by a client. An error names the request's `proto` whenever the body is JSON with a
/// string at `extra_data.proto`, however malformed the rest is.
pub fn parse_client_message(body: &[u8]) -> Result<ClientMessage, ProtocolError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ProtocolError::new(ErrorCode::BadJson, format!("body is not UTF-8: {e}")))?;
    parse_text(text).map_err(|mut e| {
        if e.proto.is_none() {
            e.proto = sniff_proto(text);
        }
        e
    })
}

/// The second, lenient reading of a body that failed: only `extra_data.proto`, every other field skipped unread (so
/// a number out of range or a field of the wrong type elsewhere does not hide it).
fn sniff_proto(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        extra_data: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Extra<'a> {
        #[serde(borrow)]
        proto: Option<std::borrow::Cow<'a, str>>,
    }
    // Objects only: serde would also read a struct from an array, field by field.
    let is_object = |json: &str| json.trim_start().starts_with('{');
    let envelope: Envelope<'_> = serde_json::from_str(text).ok().filter(|_| is_object(text))?;
    let raw = envelope.extra_data.filter(|raw| is_object(raw.get()))?;
    let extra: Extra<'_> = serde_json::from_str(raw.get()).ok()?;
    extra.proto.map(std::borrow::Cow::into_owned)
}

fn parse_text(text: &str) -> Result<ClientMessage, ProtocolError> {
    let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|e| json_error(&e, "message"))?;
    require_object(text, "the message")?;
    if envelope.uid.is_empty() || envelope.uid.len() > MAX_UID_LEN {
        return Err(ProtocolError::new(
            ErrorCode::BadMessage,
            format!("uid must be a non-empty string of at most {MAX_UID_LEN} bytes"),
        ));
    }
    require_object(envelope.extra_data.get(), "extra_data")?;
    let extra: ExtraData<'_> =
        serde_json::from_str(envelope.extra_data.get()).map_err(|e| json_error(&e, "extra_data"))?;
    let proto = extra.proto;
    let fail = |code, msg: String| ProtocolError::new(code, msg).with_proto(proto.as_str());
    if let Some(ts) = extra.timestamp
        && (!ts.is_finite() || ts < 0.0)
    {
        return Err(fail(
            ErrorCode::BadMessage,
            "extra_data.timestamp must be a non-negative number of seconds".into(),
        ));
    }
    let request = match proto.as_str() {
        "room_enter" => {
            let room_id = match extra.data {
                None => None,
                Some(raw) if raw.get() == "null" => None,
                Some(raw) => {
                    require_object(raw.get(), "extra_data.data").map_err(|e| e.with_proto(proto.as_str()))?;
                    serde_json::from_str::<RoomEnterData>(raw.get())
                        .map_err(|e| json_error(&e, "extra_data.data").with_proto(proto.as_str()))?
                        .room_id
                }
            };
            if let Some(id) = &room_id {
                validate_room_id(id).map_err(|msg| fail(ErrorCode::BadMessage, msg))?;
            }
            Request::RoomEnter { room_id }
        }
        "room_leave" => Request::RoomLeave,
        "room_prepare" => Request::RoomPrepare,
        "ping" => Request::Ping,
        "sync_action" => {
            if extra.timestamp.is_none() {
                return Err(fail(
                    ErrorCode::BadMessage,
                    "sync_action needs extra_data.timestamp (seconds since the Unix epoch)".into(),
                ));
            }
            let raw = extra
                .action_data
                .ok_or_else(|| fail(ErrorCode::BadMessage, "sync_action needs extra_data.action_data".into()))?;
            if !raw.get().starts_with('{') {
                return Err(fail(ErrorCode::BadMessage, "extra_data.action_data must be a JSON object".into()));
            }
            if json_depth(raw.get()) > MAX_ACTION_DEPTH {
                return Err(fail(
                    ErrorCode::BadMessage,
                    format!("extra_data.action_data is nested deeper than {MAX_ACTION_DEPTH} levels"),
                ));
            }
            if let Err(e) = serde_json::from_str::<PlainJson>(raw.get()) {
                return Err(fail(ErrorCode::BadMessage, format!("extra_data.action_data is not plain JSON: {e}")));
            }
            Request::SyncAction { action_data: raw.to_owned() }
        }
        "sync_request_reload_frames" => {
            let data: ReloadData = required_data(extra.data, &proto, "start_frame")?;
            Request::ReloadFrames { start_frame: data.start_frame }
        }
        "room_spectate" => {
            let room_id = required_data::<RoomEnterData>(extra.data, &proto, "room_id")?
                .room_id
                .ok_or_else(|| fail(ErrorCode::BadMessage, "room_spectate needs extra_data.data.room_id".into()))?;
            validate_room_id(&room_id).map_err(|msg| fail(ErrorCode::BadMessage, msg))?;
            Request::RoomSpectate { room_id }
        }
        "sync_checksum" => {
            let data: ChecksumData = required_data(extra.data, &proto, "frame and extra_data.data.hash")?;
            if data.hash.is_empty() || data.hash.len() > crate::checksum::MAX_CHECKSUM_LEN {
                return Err(fail(
                    ErrorCode::BadMessage,
                    format!("hash must be a string of 1 to {} bytes", crate::checksum::MAX_CHECKSUM_LEN),
                ));
            }
            Request::Checksum { frame: data.frame, hash: data.hash }
        }
        _ => {
            let shown: String = proto.chars().take(64).collect();
            return Err(fail(ErrorCode::UnknownProto, format!("unknown proto {shown:?}")));
        }
    };
    Ok(ClientMessage { uid: envelope.uid, token: envelope.token, timestamp: extra.timestamp, request })
}

/// The `extra_data.data` object a request needs, read as `T`: `bad_message` when it is missing (naming `fields`)
/// or not an object, `bad_json` or `bad_message` (as [`json_error`] decides) when its fields do not fit.
fn required_data<'a, T: Deserialize<'a>>(
    data: Option<&'a RawValue>,
    proto: &str,
    fields: &str,
) -> Result<T, ProtocolError> {
    let raw = data.ok_or_else(|| {
        ProtocolError::new(ErrorCode::BadMessage, format!("{proto} needs extra_data.data.{fields}")).with_proto(proto)
    })?;
    require_object(raw.get(), "extra_data.data").map_err(|e| e.with_proto(proto))?;
    serde_json::from_str(raw.get()).map_err(|e| json_error(&e, "extra_data.data").with_proto(proto))
}

/// serde also reads a struct from a JSON array, field by field in declaration order (`["1001", null, {...}]` would
/// pass as an envelope); the protocol's messages are objects, so anything else is `bad_message`. `json` is valid JSON.
fn require_object(json: &str, what: &str) -> Result<(), ProtocolError> {
    if json.trim_start().starts_with('{') {
        Ok(())
    } else {
        Err(ProtocolError::new(ErrorCode::BadMessage, format!("{what} must be a JSON object")))
    }
}

/// Checks a room id: 1 to 64 characters from `[A-Za-z0-9_.-]`.
pub fn validate_room_id(id: &str) -> Result<(), String> {
    let ok_len = !id.is_empty() && id.len() <= MAX_ROOM_ID_LEN;
    let ok_chars = id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(format!("room_id must be 1 to {MAX_ROOM_ID_LEN} characters from A-Z, a-z, 0-9, '_', '-', '.'"))
    }
}

/// Maximum nesting depth of a JSON text already known to be valid.
fn json_depth(json: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in json.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Any JSON value, read and dropped. Reading `action_data` as one checks what skipping it as raw JSON does not: every
/// number fits a 64-bit float (`1e999` does not) and every string is valid Unicode (no lone surrogate escape like
/// `"\ud800"`). The server relays actions verbatim to every player, and clients that read numbers as doubles (serde_json,
/// Go's encoding/json) or insist on valid Unicode (serde_json) would otherwise fail on the whole frame.
struct PlainJson;

impl<'de> Deserialize<'de> for PlainJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PlainJson)
    }
}

impl<'de> serde::de::Visitor<'de> for PlainJson {
    type Value = PlainJson;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<PlainJson>()?.is_some() {}
        Ok(self)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<PlainJson, PlainJson>()?.is_some() {}
        Ok(self)
    }
}

fn json_error(e: &serde_json::Error, what: &str) -> ProtocolError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ProtocolError::new(ErrorCode::BadJson, format!("{what} is not valid JSON: {e}"))
        }
        Category::Data => ProtocolError::new(ErrorCode::BadMessage, format!("bad {what}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ClientMessage, ProtocolError> {
        parse_client_message(s.as_bytes())
    }

    fn code(s: &str) -> ErrorCode {
        parse(s).expect_err("expected an error").code
    }

    #[test]
    fn parses_every_proto() {
        let m = parse(
            r#"{"uid":"7","token":"t","extra_data":{"proto":"room_enter","timestamp":1.5,"data":{"room_id":"r-1"}}}"#,
        )
        .unwrap();
        assert_eq!(m.uid, "7");
        assert_eq!(m.token.as_deref(), Some("t"));
        assert!(matches!(m.request, Request::RoomEnter { room_id: Some(ref r) } if r == "r-1"));
        let m = parse(r#"{"uid":"7","extra_data":{"proto":"room_enter"}}"#).unwrap();
        assert!(matches!(m.request, Request::RoomEnter { room_id: None }));
        let m = parse(r#"{"uid":"7","extra_data":{"proto":"room_enter","data":{}}}"#).unwrap();
        assert!(matches!(m.request, Request::RoomEnter { room_id: None }));
        for (p, want) in [("room_leave", "room_leave"), ("room_prepare", "room_prepare"), ("ping", "ping")] {
            let m = parse(&format!(r#"{{"uid":"7","extra_data":{{"proto":"{p}"}}}}"#)).unwrap();
            assert_eq!(m.request.proto(), want);
        }
        let m =
            parse(r#"{"uid":"7","extra_data":{"proto":"sync_action","timestamp":2.0,"action_data":{"k": [1, 2]}}}"#)
                .unwrap();
        match m.request {
            Request::SyncAction { action_data } => {
                assert_eq!(action_data.get(), r#"{"k": [1, 2]}"#)
            }
            other => panic!("{other:?}"),
        }
        let m = parse(r#"{"uid":"7","extra_data":{"proto":"sync_request_reload_frames","data":{"start_frame":12}}}"#)
            .unwrap();
        assert!(matches!(m.request, Request::ReloadFrames { start_frame: 12 }));
    }

    #[test]
    fn malformed_input_gets_the_documented_codes() {
        assert_eq!(parse_client_message(&[0xff, 0xfe]).unwrap_err().code, ErrorCode::BadJson);
        assert_eq!(code("{"), ErrorCode::BadJson);
        assert_eq!(code(""), ErrorCode::BadJson);
        assert_eq!(code("[]"), ErrorCode::BadMessage);
        // Arrays are never read as objects by position.
        assert_eq!(code(r#"["7","tok",{"proto":"ping"}]"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"uid":"7","extra_data":["ping"]}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"uid":"7","extra_data":{"proto":"room_enter","data":["lobby"]}}"#), ErrorCode::BadMessage);
        assert_eq!(
            code(r#"{"uid":"7","extra_data":{"proto":"sync_request_reload_frames","data":[5]}}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(code(r#"{"extra_data":{"proto":"ping"}}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"uid":7,"extra_data":{"proto":"ping"}}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"uid":"","extra_data":{"proto":"ping"}}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"uid":"7","token":5,"extra_data":{"proto":"ping"}}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"uid":"7"}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"uid":"7","extra_data":{}}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"uid":"7","extra_data":{"proto":"dance"}}"#), ErrorCode::UnknownProto);
        assert_eq!(code(r#"{"uid":"7","extra_data":{"proto":"ping","timestamp":"x"}}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"uid":"7","extra_data":{"proto":"ping","timestamp":-1}}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"uid":"7","extra_data":{"proto":"ping","timestamp":1e999}}"#), ErrorCode::BadJson);
        // sync_action
        assert_eq!(code(r#"{"uid":"7","extra_data":{"proto":"sync_action","timestamp":1}}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"uid":"7","extra_data":{"proto":"sync_action","action_data":{}}}"#), ErrorCode::BadMessage);
        assert_eq!(
            code(r#"{"uid":"7","extra_data":{"proto":"sync_action","timestamp":1,"action_data":[1]}}"#),
            ErrorCode::BadMessage
        );
        // reload
        assert_eq!(code(r#"{"uid":"7","extra_data":{"proto":"sync_request_reload_frames"}}"#), ErrorCode::BadMessage);
        assert_eq!(
            code(r#"{"uid":"7","extra_data":{"proto":"sync_request_reload_frames","data":{"start_frame":-1}}}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(
            code(r#"{"uid":"7","extra_data":{"proto":"sync_request_reload_frames","data":{"start_frame":"3"}}}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(
            code(r#"{"uid":"7","extra_data":{"proto":"sync_request_reload_frames","data":{"start_frame":1e30}}}"#),
            ErrorCode::BadMessage
        );
        // room ids
        assert_eq!(
            code(r#"{"uid":"7","extra_data":{"proto":"room_enter","data":{"room_id":"a b"}}}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(
            code(r#"{"uid":"7","extra_data":{"proto":"room_enter","data":{"room_id":5}}}"#),
            ErrorCode::BadMessage
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!(
            r#"{{"uid":"7","extra_data":{{"proto":"sync_action","timestamp":1,"action_data":{}1{}}}}}"#,
            "{\"a\":".repeat(10_000),
            "}".repeat(10_000)
        );
        assert_eq!(parse(&deep).unwrap_err().code, ErrorCode::BadMessage);
        let ok = format!(
            r#"{{"uid":"7","extra_data":{{"proto":"sync_action","timestamp":1,"action_data":{}"x]}}"{}}}}}"#,
            "{\"a\":".repeat(MAX_ACTION_DEPTH - 1),
            "}".repeat(MAX_ACTION_DEPTH - 1)
        );
        assert!(parse(&ok).is_ok(), "{ok}");
        let deep_envelope = format!(r#"{{"uid":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&deep_envelope).is_err());
    }

    #[test]
    fn action_data_must_be_plain_json() {
        let action = |a: &str| {
            parse(&format!(r#"{{"uid":"7","extra_data":{{"proto":"sync_action","timestamp":1,"action_data":{a}}}}}"#))
        };
        assert_eq!(action(r#"{"x":1e999}"#).unwrap_err().code, ErrorCode::BadMessage);
        assert_eq!(action(r#"{"x":[-1e309]}"#).unwrap_err().code, ErrorCode::BadMessage);
        assert_eq!(action(r#"{"x":"\ud800"}"#).unwrap_err().code, ErrorCode::BadMessage);
        assert_eq!(action(r#"{"\udfff":1}"#).unwrap_err().code, ErrorCode::BadMessage);
        for ok in [r#"{"x":1e308,"y":1e-999,"z":123456789012345678901234567890}"#, r#"{"s":"\ud83d\ude00\n"}"#] {
            let m = action(ok).unwrap();
            assert!(matches!(m.request, Request::SyncAction { ref action_data } if action_data.get() == ok), "{ok}");
        }
    }

    /// Found by `fuzz/fuzz_targets/client_message.rs` (minimized with `cargo fuzz tmin`): `1e700006` is valid JSON
    /// syntax, so skipping `action_data` as raw JSON accepted it, and the server would have relayed a number no
    /// 64-bit float holds to every player.
    #[test]
    fn fuzz_action_data_number_out_of_range() {
        let body = b"{\"uid\":\"10&01\",\t\t\t\t\t\t\t\t\t\t\t\t\t\t\"extra_data\":{\"proto\":\"sync_action\",\"timestamp\":170000102,\
                     \"action_data\":{\"m+ove\":[  {\"uid\":\"1001\",\"token_data\":{\"proto\":\"ping\",\"timgs\":1e700006\r\r\r\r}}     \
                     \t\t     ]}}}";
        assert_eq!(body.len(), 194);
        assert_eq!(parse_client_message(body).unwrap_err().code, ErrorCode::BadMessage);
    }

    #[test]
    fn errors_name_the_proto_whenever_it_was_read() {
        let e = parse(r#"{"uid":"7","extra_data":{"proto":"sync_action","timestamp":1}}"#).unwrap_err();
        assert_eq!(e.proto.as_deref(), Some("sync_action"));
        // Failures of the envelope or of extra_data as a whole still name the proto when it is a string there.
        for (body, code) in [
            (
                r#"{"uid":"7","extra_data":{"proto":"sync_action","timestamp":"5","action_data":{}}}"#,
                ErrorCode::BadMessage,
            ),
            (
                r#"{"uid":"7","extra_data":{"proto":"sync_action","timestamp":1e999,"action_data":{}}}"#,
                ErrorCode::BadJson,
            ),
            (r#"{"uid":7,"extra_data":{"proto":"ping"}}"#, ErrorCode::BadMessage),
            (r#"{"extra_data":{"timestamp":-1,"proto":"room_enter"}}"#, ErrorCode::BadMessage),
            (r#"{"uid":"","extra_data":{"proto":"room_leave"}}"#, ErrorCode::BadMessage),
        ] {
            let e = parse(body).unwrap_err();
            assert_eq!(e.code, code, "{body}");
            let want = body.split(r#""proto":""#).nth(1).and_then(|rest| rest.split('"').next());
            assert_eq!(e.proto.as_deref(), want, "{body}");
        }
        // Without a readable proto it stays null: not JSON, truncated, no proto, a proto that is not a string.
        for body in [
            "hello",
            r#"{"uid":"7","extra_data":{"proto":"ping""#,
            r#"{"uid":"7","extra_data":{}}"#,
            r#"{"uid":"7","extra_data":{"proto":5}}"#,
            r#"{"uid":"7","extra_data":[1]}"#,
            r#"{"uid":"7","extra_data":["ping"]}"#,
            r#"["7",null,{"proto":"ping"}]"#,
            r#"{"uid":"7","extra_data":{"proto":"ping","proto":"ping"}}"#,
        ] {
            assert_eq!(parse(body).unwrap_err().proto, None, "{body}");
        }
    }
}
