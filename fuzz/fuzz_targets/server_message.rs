//! What a client parses from the server: `parse_handshake` and `parse_server_message` on arbitrary bytes.
//!
//! Properties:
//! - neither panics, whatever the input;
//! - `parse_handshake`: a `Sealed(salt)` result comes from a body whose `proto` is `handshake`, whose cipher is
//!   `chacha20poly1305` and whose salt decodes to those 32 bytes, and `handshake_message(salt)` parses back to it;
//!   `Plaintext` comes from cipher `none`; `NotHandshake` and `UnsupportedCipher` name what was really there;
//! - `parse_server_message`: whatever parses, the server's own encoder (`ServerMessage::to_wire`, `encode_frame`,
//!   `encode_reload_chunk`) writes back into bytes that parse to the same event, so the server and a client cannot
//!   disagree on a message; an unknown proto is reported only for protos the client really does not know.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use movan_protocol::codec::LENGTH_PREFIX;
use movan_protocol::crypto::{CIPHER, Handshake, HandshakeError, handshake_message, parse_handshake};
use movan_protocol::server::{
    ActionRef, Frame, ServerEvent, ServerMessage, ServerParseError, encode_frame, encode_reload_chunk,
    parse_server_message,
};
use serde_json::Value;

const KNOWN: [&str; 9] =
    ["room_state", "room_left", "game_start", "sync_frame", "reload_frames", "game_over", "pong", "error", "desync"];

fuzz_target!(|data: &[u8]| {
    check_handshake(data);
    check_server_message(data);
});

fn check_handshake(body: &[u8]) {
    let value = serde_json::from_slice::<Value>(body).ok();
    let field = |path: &[&str]| {
        let mut v = value.as_ref()?;
        for key in path {
            v = v.get(key)?;
        }
        v.as_str().map(str::to_owned)
    };
    match parse_handshake(body) {
        Ok(Handshake::Sealed(salt)) => {
            let wire = handshake_message(&salt);
            assert_eq!(parse_handshake(&wire[LENGTH_PREFIX..]).expect("own handshake parses"), Handshake::Sealed(salt));
            if value.is_some() {
                assert_eq!(field(&["proto"]).as_deref(), Some("handshake"));
                assert_eq!(field(&["data", "cipher"]).as_deref(), Some(CIPHER));
                let text = field(&["data", "salt"]).expect("a sealed handshake has a salt");
                assert_eq!(BASE64.decode(text).expect("salt is base64"), salt);
            }
        }
        Ok(Handshake::Plaintext) => {
            if value.is_some() {
                assert_eq!(field(&["proto"]).as_deref(), Some("handshake"));
                assert_eq!(field(&["data", "cipher"]).as_deref(), Some("none"));
            }
        }
        Err(HandshakeError::NotHandshake(proto)) => assert_ne!(proto, "handshake"),
        Err(HandshakeError::UnsupportedCipher(cipher)) => assert!(cipher != "none" && cipher != CIPHER),
        Err(HandshakeError::Json(_) | HandshakeError::BadSalt(_)) => {}
    }
}

fn check_server_message(body: &[u8]) {
    let event = match parse_server_message(body) {
        Ok(event) => event,
        Err(ServerParseError::UnknownProto(proto)) => {
            assert!(!KNOWN.contains(&proto.as_str()), "known proto {proto:?} reported unknown");
            return;
        }
        Err(ServerParseError::Json(_)) => return,
    };
    match event {
        ServerEvent::RoomState(v) => {
            let again = reparse(&ServerMessage::RoomState(v.clone()).to_wire());
            assert!(matches!(again, ServerEvent::RoomState(w) if w == v));
        }
        ServerEvent::RoomLeft(v) => {
            let again = reparse(&ServerMessage::RoomLeft(v.clone()).to_wire());
            assert!(matches!(again, ServerEvent::RoomLeft(ref w) if *w == v), "{v:?} became {again:?}");
        }
        ServerEvent::GameStart(v) => {
            let again = reparse(&ServerMessage::GameStart(v.clone()).to_wire());
            assert!(matches!(again, ServerEvent::GameStart(ref w) if *w == v), "{v:?} became {again:?}");
        }
        ServerEvent::GameOver(v) => {
            let again = reparse(&ServerMessage::GameOver(v.clone()).to_wire());
            assert!(matches!(again, ServerEvent::GameOver(ref w) if *w == v), "{v:?} became {again:?}");
        }
        ServerEvent::Pong(v) => {
            let again = reparse(&ServerMessage::Pong(v.clone()).to_wire());
            assert!(matches!(again, ServerEvent::Pong(ref w) if *w == v), "{v:?} became {again:?}");
        }
        ServerEvent::Error(v) => {
            let again = reparse(&ServerMessage::Error(v.clone()).to_wire());
            assert!(matches!(again, ServerEvent::Error(ref w) if *w == v), "{v:?} became {again:?}");
        }
        ServerEvent::Desync(v) => {
            let again = reparse(&ServerMessage::Desync(v.clone()).to_wire());
            assert!(matches!(again, ServerEvent::Desync(ref w) if *w == v), "{v:?} became {again:?}");
        }
        ServerEvent::Frame(frame) => {
            let encoded = reencode(&frame);
            match reparse(&encoded.wire()) {
                ServerEvent::Frame(again) => {
                    assert_same_frame(&frame, &again);
                    assert_eq!(again.raw.get().as_bytes(), &encoded.frame[..]);
                }
                other => panic!("sync_frame came back as {other:?}"),
            }
        }
        ServerEvent::Reload(chunk) => {
            // Frames inside a reload are relayed byte for byte: the chunk carries the raw frames it was given.
            let raws: Vec<Bytes> =
                chunk.frames.iter().map(|f| Bytes::copy_from_slice(f.raw.get().as_bytes())).collect();
            let wire = movan_protocol::codec::frame_bytes(&encode_reload_chunk(chunk.start_frame, chunk.end_frame, chunk.last, &raws));
            match reparse(&wire) {
                ServerEvent::Reload(again) => {
                    assert_eq!(
                        (again.start_frame, again.end_frame, again.last),
                        (chunk.start_frame, chunk.end_frame, chunk.last)
                    );
                    assert_eq!(again.frames.len(), chunk.frames.len());
                    for (a, b) in chunk.frames.iter().zip(&again.frames) {
                        assert_eq!(a.raw.get(), b.raw.get());
                        assert_same_frame(a, b);
                    }
                }
                other => panic!("reload_frames came back as {other:?}"),
            }
        }
    }
}

fn reencode(frame: &Frame) -> movan_protocol::server::EncodedFrame {
    let actions: Vec<ActionRef<'_>> = frame
        .actions
        .iter()
        .map(|a| ActionRef { uid: &a.uid, timestamp: a.timestamp, action_data: &a.action_data })
        .collect();
    encode_frame(frame.frame_count, &actions)
}

fn assert_same_frame(a: &Frame, b: &Frame) {
    assert_eq!(a.frame_count, b.frame_count);
    assert_eq!(a.actions.len(), b.actions.len());
    for (x, y) in a.actions.iter().zip(&b.actions) {
        assert_eq!(x.uid, y.uid);
        assert_eq!(x.timestamp.to_bits(), y.timestamp.to_bits(), "timestamp {} became {}", x.timestamp, y.timestamp);
        assert_eq!(x.action_data.get(), y.action_data.get());
    }
}

/// Parses wire bytes the server's encoders produced; they must always parse.
fn reparse(wire: &[u8]) -> ServerEvent {
    let len = u32::from_be_bytes(wire[..LENGTH_PREFIX].try_into().expect("prefix")) as usize;
    assert_eq!(len, wire.len() - LENGTH_PREFIX, "length prefix does not match the body");
    let body = &wire[LENGTH_PREFIX..];
    parse_server_message(body).unwrap_or_else(|e| panic!("server's own bytes do not parse: {e}: {body:?}"))
}
