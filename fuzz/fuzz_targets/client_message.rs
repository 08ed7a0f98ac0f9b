//! `parse_client_message` on arbitrary bytes, and on structured messages built to the contract of docs/protocol.md.
//!
//! Properties, on the raw input:
//! - it returns `Ok` or `Err`, never panics;
//! - on `Ok`: the uid is 1..=64 bytes, a timestamp is finite and non-negative, a room id is 1..=64 characters from
//!   `[A-Za-z0-9_.-]`, a `sync_action` has a timestamp and an `action_data` that is a JSON object at most
//!   `MAX_ACTION_DEPTH` deep which `serde_json::Value` reads (numbers within f64 range, valid Unicode strings), and
//!   uid, token, proto and timestamp are what an independent `serde_json::Value` parse of the same bytes reads;
//! - on `Err`: the code is `bad_json`, `bad_message` or `unknown_proto`, with a message; bytes that are not UTF-8
//!   get `bad_json`; `unknown_proto` names a proto that is indeed unknown.
//!
//! And on a [`Message`] built by `arbitrary` and serialized with `serde_json`: the parser returns exactly the
//! request, or exactly the error code, that the rules of docs/protocol.md §4 give for it (an oracle written from the
//! specification, not from the parser).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use movan_protocol::checksum::MAX_CHECKSUM_LEN;
use movan_protocol::client::{MAX_ACTION_DEPTH, MAX_ROOM_ID_LEN, MAX_UID_LEN};
use movan_protocol::{ClientMessage, ErrorCode, Request, parse_client_message};
use serde_json::Value;

const KNOWN: [&str; 8] = [
    "room_enter",
    "room_leave",
    "room_prepare",
    "sync_action",
    "sync_request_reload_frames",
    "ping",
    "sync_checksum",
    "room_spectate",
];

fuzz_target!(|data: &[u8]| {
    check_raw(data);
    if let Ok(msg) = Message::arbitrary_take_rest(Unstructured::new(data)) {
        check_built(&msg);
    }
});

fn check_raw(data: &[u8]) {
    match parse_client_message(data) {
        Ok(m) => check_invariants(&m, data),
        Err(e) => {
            assert!(
                matches!(e.code, ErrorCode::BadJson | ErrorCode::BadMessage | ErrorCode::UnknownProto),
                "parser returned {:?}",
                e.code
            );
            assert!(!e.message.is_empty());
            if std::str::from_utf8(data).is_err() {
                assert_eq!(e.code, ErrorCode::BadJson);
            }
            if e.code == ErrorCode::UnknownProto {
                let proto = e.proto.as_deref().expect("unknown_proto names the proto");
                assert!(!KNOWN.contains(&proto), "known proto {proto:?} reported unknown");
            }
        }
    }
}

fn check_invariants(m: &ClientMessage, data: &[u8]) {
    assert!(!m.uid.is_empty() && m.uid.len() <= MAX_UID_LEN, "uid {:?}", m.uid);
    if let Some(ts) = m.timestamp {
        assert!(ts.is_finite() && ts >= 0.0, "timestamp {ts}");
    }
    assert!(KNOWN.contains(&m.request.proto()));
    match &m.request {
        Request::RoomEnter { room_id: Some(id) } | Request::RoomSpectate { room_id: id } => {
            assert!(room_id_ok(id), "room id {id:?} accepted")
        }
        Request::SyncAction { action_data } => {
            assert!(m.timestamp.is_some(), "sync_action without timestamp");
            // Every client parses what the server relays: it must read as plain JSON values.
            let value: Value = serde_json::from_str(action_data.get()).expect("action_data is plain JSON");
            assert!(value.is_object(), "action_data {} is not an object", action_data.get());
            assert!(depth(&value) <= MAX_ACTION_DEPTH, "action_data deeper than {MAX_ACTION_DEPTH}");
        }
        Request::Checksum { hash, .. } => assert!(hash_ok(hash), "hash of {} bytes accepted", hash.len()),
        _ => {}
    }
    // An independent reading of the same bytes. It can fail where the parser succeeded (e.g. `1e999` in a field
    // the parser skips), but when it succeeds it must read the same fields.
    let Ok(v) = serde_json::from_slice::<Value>(data) else { return };
    assert_eq!(v["uid"].as_str(), Some(m.uid.as_str()));
    assert_eq!(v["token"].as_str(), m.token.as_deref());
    assert_eq!(v["extra_data"]["proto"].as_str(), Some(m.request.proto()));
    assert_eq!(v["extra_data"]["timestamp"].as_f64(), m.timestamp);
}

/// A client message shaped like the contract, with each field drawn valid or invalid.
#[derive(Debug, Arbitrary)]
struct Message {
    uid: String,
    token: Option<String>,
    proto: Proto,
    timestamp: Timestamp,
    room: RoomData,
    start_frame: StartFrame,
    action: ActionData,
    checksum: Checksum,
}

#[derive(Debug, Arbitrary)]
enum Proto {
    Known(u8),
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Timestamp {
    Absent,
    Null,
    /// Written by serde_json; a non-finite value is written as `1e999`, which is not a valid JSON number for it.
    Number(f64),
    Text(String),
}

/// `extra_data.data` for `room_enter` (and ignored junk for other protos).
#[derive(Debug, Arbitrary)]
enum RoomData {
    Absent,
    Null,
    Empty,
    RoomIdNull,
    RoomId(String),
    RoomIdNumber(u32),
}

/// `extra_data.data` for `sync_request_reload_frames`.
#[derive(Debug, Arbitrary)]
enum StartFrame {
    Absent,
    Empty,
    Valid(u64),
    Negative(i64),
    Float(f64),
    Text(String),
}

/// `extra_data.data` for `sync_checksum`.
#[derive(Debug, Arbitrary)]
enum Checksum {
    Absent,
    Empty,
    Valid { frame: u64, hash: String },
    FrameText { frame: String, hash: String },
    HashNumber { frame: u64, hash: u32 },
}

#[derive(Debug, Arbitrary)]
enum ActionData {
    Absent,
    /// Nested containers, outermost first (true = object, false = array), around a string leaf that may hold
    /// brackets and quotes the depth check must not count.
    Nested {
        levels: Vec<bool>,
        leaf: String,
    },
    Number(u32),
}

/// What the specification says the parser must return for a built message.
#[derive(Debug, PartialEq)]
enum Expected {
    Ok {
        proto: String,
        room_id: Option<String>,
        start_frame: Option<u64>,
        action_data: Option<String>,
        checksum: Option<(u64, String)>,
    },
    Err(ErrorCode),
}

fn check_built(msg: &Message) {
    let proto = match &msg.proto {
        Proto::Known(i) => KNOWN[usize::from(*i) % KNOWN.len()].to_owned(),
        Proto::Other(s) => s.clone(),
    };
    let (ts_text, ts) = timestamp_json(&msg.timestamp);
    let (data_text, room_id) = match proto.as_str() {
        "sync_request_reload_frames" => (start_frame_json(&msg.start_frame), None),
        "sync_checksum" => (checksum_json(&msg.checksum), None),
        _ => room_json(&msg.room),
    };
    let action_text = action_json(&msg.action);

    let mut extra = vec![format!(r#""proto":{}"#, json_string(&proto))];
    extra.extend(ts_text.map(|t| format!(r#""timestamp":{t}"#)));
    extra.extend(data_text.as_ref().map(|d| format!(r#""data":{d}"#)));
    extra.extend(action_text.as_ref().map(|a| format!(r#""action_data":{a}"#)));
    let token = msg.token.as_ref().map(|t| format!(r#""token":{},"#, json_string(t))).unwrap_or_default();
    let body = format!(r#"{{"uid":{},{token}"extra_data":{{{}}}}}"#, json_string(&msg.uid), extra.join(","));

    let expected = expect(msg, &proto, ts, data_text.as_deref(), room_id, action_text.as_deref());
    let actual = match parse_client_message(body.as_bytes()) {
        Ok(m) => {
            assert_eq!(m.uid, msg.uid);
            assert_eq!(m.token, msg.token);
            assert_eq!(m.timestamp.map(f64::to_bits), ts.and_then(Result::ok).map(f64::to_bits));
            let proto = m.request.proto().to_owned();
            let (mut room_id, mut start_frame, mut action_data, mut checksum) = (None, None, None, None);
            match m.request {
                Request::RoomEnter { room_id: id } => room_id = id,
                Request::RoomSpectate { room_id: id } => room_id = Some(id),
                Request::ReloadFrames { start_frame: n } => start_frame = Some(n),
                Request::SyncAction { action_data: a } => action_data = Some(a.get().to_owned()),
                Request::Checksum { frame, hash } => checksum = Some((frame, hash)),
                _ => {}
            }
            Expected::Ok { proto, room_id, start_frame, action_data, checksum }
        }
        Err(e) => Expected::Err(e.code),
    };
    assert_eq!(actual, expected, "for {body}");
}

/// The rules of docs/protocol.md §4. Where one message breaks several rules, the code is the one for the first rule
/// checked, in the parser's order: uid, then the fields of `extra_data`, then the timestamp's range, then the proto.
fn expect(
    msg: &Message,
    proto: &str,
    ts: Option<Result<f64, ErrorCode>>,
    data: Option<&str>,
    room_id: Option<Result<Option<String>, ErrorCode>>,
    action: Option<&str>,
) -> Expected {
    if msg.uid.is_empty() || msg.uid.len() > MAX_UID_LEN {
        return Expected::Err(ErrorCode::BadMessage);
    }
    let ts = match ts {
        None => None,
        Some(Ok(t)) if t.is_finite() && t >= 0.0 => Some(t),
        Some(Ok(_)) => return Expected::Err(ErrorCode::BadMessage),
        Some(Err(code)) => return Expected::Err(code),
    };
    let ok = |room_id, start_frame, action_data| Expected::Ok {
        proto: proto.to_owned(),
        room_id,
        start_frame,
        action_data,
        checksum: None,
    };
    match proto {
        "room_enter" => match room_id.expect("room data is built for room_enter") {
            Ok(Some(id)) if !room_id_ok(&id) => Expected::Err(ErrorCode::BadMessage),
            Ok(id) => ok(id, None, None),
            Err(code) => Expected::Err(code),
        },
        "room_spectate" => match room_id.expect("room data is built for room_spectate") {
            // `data.room_id` is required, and must be valid.
            Ok(Some(id)) if room_id_ok(&id) => ok(Some(id), None, None),
            _ => Expected::Err(ErrorCode::BadMessage),
        },
        "room_leave" | "room_prepare" | "ping" => ok(None, None, None),
        "sync_action" => match action {
            Some(action) if ts.is_some() && action.starts_with('{') && json_text_depth(action) <= MAX_ACTION_DEPTH => {
                ok(None, None, Some(action.to_owned()))
            }
            _ => Expected::Err(ErrorCode::BadMessage),
        },
        "sync_request_reload_frames" => {
            // A JSON integer in u64 range, and nothing else, is a start frame.
            let value = data.and_then(|d| serde_json::from_str::<Value>(d).ok());
            match value.as_ref().and_then(|v| v.get("start_frame")).and_then(Value::as_u64) {
                Some(n) => ok(None, Some(n), None),
                None => Expected::Err(ErrorCode::BadMessage),
            }
        }
        "sync_checksum" => {
            // A u64 frame and a string hash of 1 to MAX_CHECKSUM_LEN bytes.
            let value = data.and_then(|d| serde_json::from_str::<Value>(d).ok());
            let frame = value.as_ref().and_then(|v| v.get("frame")).and_then(Value::as_u64);
            let hash = value.as_ref().and_then(|v| v.get("hash")).and_then(Value::as_str).filter(|h| hash_ok(h));
            match (frame, hash) {
                (Some(frame), Some(hash)) => Expected::Ok {
                    proto: proto.to_owned(),
                    room_id: None,
                    start_frame: None,
                    action_data: None,
                    checksum: Some((frame, hash.to_owned())),
                },
                _ => Expected::Err(ErrorCode::BadMessage),
            }
        }
        _ => Expected::Err(ErrorCode::UnknownProto),
    }
}

fn checksum_json(c: &Checksum) -> Option<String> {
    match c {
        Checksum::Absent => None,
        Checksum::Empty => Some("{}".into()),
        Checksum::Valid { frame, hash } => Some(format!(r#"{{"frame":{frame},"hash":{}}}"#, json_string(hash))),
        Checksum::FrameText { frame, hash } => {
            Some(format!(r#"{{"frame":{},"hash":{}}}"#, json_string(frame), json_string(hash)))
        }
        Checksum::HashNumber { frame, hash } => Some(format!(r#"{{"frame":{frame},"hash":{hash}}}"#)),
    }
}

fn hash_ok(hash: &str) -> bool {
    (1..=MAX_CHECKSUM_LEN).contains(&hash.len())
}

/// The timestamp as written, and as the parser must read it: `None` if absent or null.
fn timestamp_json(ts: &Timestamp) -> (Option<String>, Option<Result<f64, ErrorCode>>) {
    match ts {
        Timestamp::Absent => (None, None),
        Timestamp::Null => (Some("null".into()), None),
        Timestamp::Number(t) if !t.is_finite() => (Some("1e999".into()), Some(Err(ErrorCode::BadJson))),
        Timestamp::Number(t) => {
            let text = serde_json::to_string(t).expect("finite f64 serializes");
            // Read back with the same number parser the message parser uses: this target tests the message rules,
            // not serde_json's float rounding.
            let read: f64 = serde_json::from_str(&text).expect("serde_json reads its own number");
            (Some(text), Some(Ok(read)))
        }
        Timestamp::Text(s) => (Some(json_string(s)), Some(Err(ErrorCode::BadMessage))),
    }
}

/// `data` for `room_enter`, and the room id (or error) the parser must produce from it.
fn room_json(room: &RoomData) -> (Option<String>, Option<Result<Option<String>, ErrorCode>>) {
    match room {
        RoomData::Absent => (None, Some(Ok(None))),
        RoomData::Null => (Some("null".into()), Some(Ok(None))),
        RoomData::Empty => (Some("{}".into()), Some(Ok(None))),
        RoomData::RoomIdNull => (Some(r#"{"room_id":null}"#.into()), Some(Ok(None))),
        RoomData::RoomId(id) => (Some(format!(r#"{{"room_id":{}}}"#, json_string(id))), Some(Ok(Some(id.clone())))),
        RoomData::RoomIdNumber(n) => (Some(format!(r#"{{"room_id":{n}}}"#)), Some(Err(ErrorCode::BadMessage))),
    }
}

fn start_frame_json(sf: &StartFrame) -> Option<String> {
    let field = |v: String| Some(format!(r#"{{"start_frame":{v}}}"#));
    match sf {
        StartFrame::Absent => None,
        StartFrame::Empty => Some("{}".into()),
        StartFrame::Valid(n) => field(n.to_string()),
        StartFrame::Negative(n) => field((-(n.unsigned_abs() as i128) - 1).to_string()),
        StartFrame::Float(f) => field(serde_json::to_string(&Value::from(*f)).expect("value serializes")),
        StartFrame::Text(s) => field(json_string(s)),
    }
}

fn action_json(action: &ActionData) -> Option<String> {
    match action {
        ActionData::Absent => None,
        ActionData::Number(n) => Some(n.to_string()),
        ActionData::Nested { levels, leaf } => {
            // serde_json refuses nesting beyond 128 levels in the envelope; stay under it so the oracle stays simple.
            let levels = &levels[..levels.len().min(100)];
            let mut text = json_string(leaf);
            for &object in levels.iter().rev() {
                text = if object { format!(r#"{{"k":{text}}}"#) } else { format!("[{text}]") };
            }
            Some(text)
        }
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

fn room_id_ok(id: &str) -> bool {
    (1..=MAX_ROOM_ID_LEN).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Depth of a JSON text, through `serde_json::Value` (the texts built here stay under its recursion limit).
fn json_text_depth(text: &str) -> usize {
    depth(&serde_json::from_str(text).expect("built action is JSON"))
}
