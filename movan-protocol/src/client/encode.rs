//! The sending side of [`parse_client_message`](super::parse_client_message): one encoder for every Rust client
//! (`movan-client`, and `movan-bench` through it), so what clients send and what the server parses cannot drift.

use serde::Serialize;
use serde_json::Value;

/// A message to send, in the Movan shape
/// `{"uid", "token"?, "extra_data": {"proto", "timestamp", "data"?, "action_data"?}}`.
///
/// It encodes what it is given without checking it (an unknown `proto`, `action_data` that is not an object), so
/// tests can send what a broken client would; [`parse_client_message`](super::parse_client_message) is the check.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingMessage<'a> {
    /// The sender's uid.
    pub uid: &'a str,
    /// The access token: on the first message of a connection (and after a token refresh), else `None`.
    pub token: Option<&'a str>,
    /// The request's name, e.g. `room_enter` (see [`Request::proto`](super::Request::proto)).
    pub proto: &'a str,
    /// Send time, seconds since the Unix epoch.
    pub timestamp: f64,
    /// `extra_data.data`, e.g. `{"room_id": "lobby"}` for `room_enter`.
    pub data: Option<&'a Value>,
    /// `extra_data.action_data`, the action of a `sync_action`.
    pub action_data: Option<&'a Value>,
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

impl OutgoingMessage<'_> {
    /// The frame body (JSON, without the length prefix).
    pub fn to_body(&self) -> Result<Vec<u8>, serde_json::Error> {
        let extra_data =
            Extra { proto: self.proto, timestamp: self.timestamp, data: self.data, action_data: self.action_data };
        serde_json::to_vec(&Envelope { uid: self.uid, token: self.token, extra_data })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::super::{Request, parse_client_message};
    use super::*;

    fn message<'a>(proto: &'a str, data: Option<&'a Value>, action_data: Option<&'a Value>) -> OutgoingMessage<'a> {
        OutgoingMessage { uid: "1001", token: Some("jwt"), proto, timestamp: 1_700_000_000.25, data, action_data }
    }

    #[test]
    fn encodes_the_documented_shape() {
        let action = json!({"move": [1, 0]});
        let body = message("sync_action", None, Some(&action)).to_body().unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"uid":"1001","token":"jwt","extra_data":{"proto":"sync_action","timestamp":1700000000.25,"action_data":{"move":[1,0]}}}"#
        );
        let body = OutgoingMessage { token: None, ..message("ping", None, None) }.to_body().unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"uid":"1001","extra_data":{"proto":"ping","timestamp":1700000000.25}}"#
        );
    }

    #[test]
    fn what_it_encodes_the_server_parses_back() {
        let room = json!({"room_id": "lobby"});
        let reload = json!({"start_frame": 7});
        let action = json!({"k": "v"});
        let checksum = json!({"frame": 60, "hash": "9f2c"});
        let cases = [
            message("room_enter", Some(&room), None),
            message("room_enter", None, None),
            message("room_leave", None, None),
            message("room_prepare", None, None),
            message("sync_action", None, Some(&action)),
            message("sync_request_reload_frames", Some(&reload), None),
            message("sync_checksum", Some(&checksum), None),
            message("ping", None, None),
        ];
        for sent in cases {
            let parsed = parse_client_message(&sent.to_body().unwrap()).unwrap();
            assert_eq!(parsed.request.proto(), sent.proto);
            assert_eq!((parsed.uid.as_str(), parsed.token.as_deref()), ("1001", Some("jwt")));
            assert_eq!(parsed.timestamp, Some(sent.timestamp));
            match parsed.request {
                Request::RoomEnter { room_id } => assert_eq!(room_id.is_some(), sent.data.is_some()),
                Request::SyncAction { action_data } => assert_eq!(action_data.get(), r#"{"k":"v"}"#),
                Request::ReloadFrames { start_frame } => assert_eq!(start_frame, 7),
                Request::Checksum { frame, hash } => assert_eq!((frame, hash.as_str()), (60, "9f2c")),
                _ => {}
            }
        }
    }
}
