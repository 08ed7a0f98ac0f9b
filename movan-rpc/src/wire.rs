//! The messages on an RPC connection: one JSON object per frame, its `type` field naming the message.
//!
//! [`Message`] is the typed form, decoded once at the edge by [`decode`]. The serde layer goes through a private
//! wire enum so that a `reply` carries exactly one of `result` and `error` (a `null` result is still a result).

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// One message. See the crate documentation for the JSON of each variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Server → client, the first message on a connection: the server's nonce, base64 of 32 random bytes.
    Challenge {
        /// Base64 (standard, padded) of the server nonce.
        nonce: String,
    },
    /// Client → server, answering the challenge: who the client is and proof that it knows the secret.
    Auth {
        /// The client's node id.
        node: String,
        /// Base64 of the client nonce (32 random bytes).
        nonce: String,
        /// Base64 of the client MAC (see [`crate::handshake::client_mac`]).
        mac: String,
    },
    /// Server → client, accepting the client: who the server is and proof that it knows the secret too.
    Welcome {
        /// The server's node id.
        node: String,
        /// Base64 of the server MAC (see [`crate::handshake::server_mac`]).
        mac: String,
    },
    /// A fatal error; the sender closes the connection after it (e.g. `unauthenticated`).
    Error(ErrorBody),
    /// A request that expects a [`Message::Reply`] with the same `id`.
    Call {
        /// Chosen by the caller, unique among its calls in flight on this connection.
        id: u64,
        /// The handler's registered name.
        method: String,
        /// The request; `null` when absent.
        params: Value,
    },
    /// The answer to the call with the same `id`.
    Reply {
        /// The call's id.
        id: u64,
        /// `result` on success, `error` on failure.
        result: Result<Value, ErrorBody>,
    },
    /// A one-way message; no reply.
    Notify {
        /// The handler's registered name.
        method: String,
        /// The payload; `null` when absent.
        params: Value,
    },
    /// Heartbeat, sent by both sides every interval; answered with a [`Message::Pong`] of the same `seq`.
    Ping {
        /// Increments with every ping the sender sends.
        seq: u64,
        /// Optional payload, e.g. the sync server's `{"players": .., "rooms": ..}`.
        load: Option<Value>,
    },
    /// Heartbeat answer.
    Pong {
        /// The `seq` of the ping answered.
        seq: u64,
    },
}

/// The `{"code": ..., "message": ...}` object of an error reply or an `error` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code, one of [`crate::codes`].
    pub code: String,
    /// Human-readable detail.
    #[serde(default)]
    pub message: String,
}

impl ErrorBody {
    /// An error object with `code` and `message`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_owned(), message: message.into() }
    }
}

/// The JSON body of `message` (without the length prefix).
pub fn encode(message: &Message) -> Bytes {
    // A Message holds only strings, integers and `Value`s, whose serialization cannot fail.
    Bytes::from(serde_json::to_vec(message).expect("a Message always serializes"))
}

/// Parses one frame body. Fails on invalid JSON, an unknown `type`, a missing or mistyped field, or a reply with
/// both or neither of `result` and `error`.
pub fn decode(body: &[u8]) -> Result<Message, serde_json::Error> {
    serde_json::from_slice(body)
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let wire = match self {
            Self::Challenge { nonce } => WireRef::Challenge { nonce },
            Self::Auth { node, nonce, mac } => WireRef::Auth { node, nonce, mac },
            Self::Welcome { node, mac } => WireRef::Welcome { node, mac },
            Self::Error(ErrorBody { code, message }) => WireRef::Error { code, message },
            Self::Call { id, method, params } => WireRef::Call { id: *id, method, params },
            Self::Reply { id, result: Ok(result) } => WireRef::Reply { id: *id, result: Some(result), error: None },
            Self::Reply { id, result: Err(error) } => WireRef::Reply { id: *id, result: None, error: Some(error) },
            Self::Notify { method, params } => WireRef::Notify { method, params },
            Self::Ping { seq, load } => WireRef::Ping { seq: *seq, load: load.as_ref() },
            Self::Pong { seq } => WireRef::Pong { seq: *seq },
        };
        wire.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireOwned::deserialize(deserializer)?;
        Ok(match wire {
            WireOwned::Challenge { nonce } => Self::Challenge { nonce },
            WireOwned::Auth { node, nonce, mac } => Self::Auth { node, nonce, mac },
            WireOwned::Welcome { node, mac } => Self::Welcome { node, mac },
            WireOwned::Error { code, message } => Self::Error(ErrorBody { code, message }),
            WireOwned::Call { id, method, params } => Self::Call { id, method, params },
            WireOwned::Reply { id, result: Some(result), error: None } => Self::Reply { id, result: Ok(result) },
            WireOwned::Reply { id, result: None, error: Some(error) } => Self::Reply { id, result: Err(error) },
            WireOwned::Reply { .. } => {
                return Err(serde::de::Error::custom("a reply carries exactly one of `result` and `error`"));
            }
            WireOwned::Notify { method, params } => Self::Notify { method, params },
            WireOwned::Ping { seq, load } => Self::Ping { seq, load },
            WireOwned::Pong { seq } => Self::Pong { seq },
        })
    }
}

/// Serialization view: borrows from a [`Message`] so that encoding never copies params.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireRef<'a> {
    Challenge {
        nonce: &'a str,
    },
    Auth {
        node: &'a str,
        nonce: &'a str,
        mac: &'a str,
    },
    Welcome {
        node: &'a str,
        mac: &'a str,
    },
    Error {
        code: &'a str,
        message: &'a str,
    },
    Call {
        id: u64,
        method: &'a str,
        params: &'a Value,
    },
    Reply {
        id: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<&'a Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a ErrorBody>,
    },
    Notify {
        method: &'a str,
        params: &'a Value,
    },
    Ping {
        seq: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        load: Option<&'a Value>,
    },
    Pong {
        seq: u64,
    },
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireOwned {
    Challenge {
        nonce: String,
    },
    Auth {
        node: String,
        nonce: String,
        mac: String,
    },
    Welcome {
        node: String,
        mac: String,
    },
    Error {
        code: String,
        #[serde(default)]
        message: String,
    },
    Call {
        id: u64,
        method: String,
        #[serde(default)]
        params: Value,
    },
    Reply {
        id: u64,
        #[serde(default, deserialize_with = "present")]
        result: Option<Value>,
        #[serde(default)]
        error: Option<ErrorBody>,
    },
    Notify {
        method: String,
        #[serde(default)]
        params: Value,
    },
    Ping {
        seq: u64,
        #[serde(default)]
        load: Option<Value>,
    },
    Pong {
        seq: u64,
    },
}

/// A present field is `Some`, even when it is `null` (a handler returning `()` replies `"result": null`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn round_trip(message: Message, expected: Value) {
        let body = encode(&message);
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), expected, "encoding of {message:?}");
        assert_eq!(decode(&body).unwrap(), message);
    }

    #[test]
    fn every_message_round_trips_with_the_documented_json() {
        round_trip(Message::Challenge { nonce: "bm9uY2U=".into() }, json!({"type": "challenge", "nonce": "bm9uY2U="}));
        round_trip(
            Message::Auth { node: "sync-1".into(), nonce: "n".into(), mac: "m".into() },
            json!({"type": "auth", "node": "sync-1", "nonce": "n", "mac": "m"}),
        );
        round_trip(
            Message::Welcome { node: "account".into(), mac: "m".into() },
            json!({"type": "welcome", "node": "account", "mac": "m"}),
        );
        round_trip(
            Message::Error(ErrorBody::new("unauthenticated", "bad mac")),
            json!({"type": "error", "code": "unauthenticated", "message": "bad mac"}),
        );
        round_trip(
            Message::Call { id: 1, method: "m".into(), params: json!({"a": 1}) },
            json!({"type": "call", "id": 1, "method": "m", "params": {"a": 1}}),
        );
        round_trip(Message::Reply { id: 1, result: Ok(json!({})) }, json!({"type": "reply", "id": 1, "result": {}}));
        round_trip(
            Message::Reply { id: 2, result: Ok(Value::Null) },
            json!({"type": "reply", "id": 2, "result": null}),
        );
        round_trip(
            Message::Reply { id: 3, result: Err(ErrorBody::new("unknown_method", "no such method: x")) },
            json!({"type": "reply", "id": 3, "error": {"code": "unknown_method", "message": "no such method: x"}}),
        );
        round_trip(
            Message::Notify { method: "n".into(), params: json!([1, 2]) },
            json!({"type": "notify", "method": "n", "params": [1, 2]}),
        );
        round_trip(
            Message::Ping { seq: 3, load: Some(json!({"players": 5, "rooms": 2})) },
            json!({"type": "ping", "seq": 3, "load": {"players": 5, "rooms": 2}}),
        );
        round_trip(Message::Ping { seq: 4, load: None }, json!({"type": "ping", "seq": 4}));
        round_trip(Message::Pong { seq: 3 }, json!({"type": "pong", "seq": 3}));
    }

    #[test]
    fn readme_example_bytes() {
        let wire = movan_protocol::codec::frame_bytes(&encode(&Message::Pong { seq: 3 }));
        let hex: Vec<String> = wire.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex.join(" "), "00 00 00 17 7b 22 74 79 70 65 22 3a 22 70 6f 6e 67 22 2c 22 73 65 71 22 3a 33 7d");
    }

    #[test]
    fn absent_params_are_null_and_unknown_fields_are_ignored() {
        let message = decode(br#"{"type":"call","id":7,"method":"m","extra":true}"#).unwrap();
        assert_eq!(message, Message::Call { id: 7, method: "m".into(), params: Value::Null });
        let message = decode(br#"{"type":"ping","seq":1,"load":null}"#).unwrap();
        assert_eq!(message, Message::Ping { seq: 1, load: None });
    }

    #[test]
    fn malformed_messages_are_rejected() {
        let bad: &[&[u8]] = &[
            b"",
            b"not json",
            b"[]",
            b"{}",
            br#"{"type":"nope"}"#,
            br#"{"type":"call","method":"m"}"#,
            br#"{"type":"call","id":-1,"method":"m"}"#,
            br#"{"type":"call","id":"1","method":"m"}"#,
            br#"{"type":"reply","id":1}"#,
            br#"{"type":"reply","id":1,"result":1,"error":{"code":"x","message":"y"}}"#,
            br#"{"type":"reply","id":1,"error":{"message":"no code"}}"#,
            br#"{"type":"ping"}"#,
            b"\xff\xfe",
        ];
        for body in bad {
            assert!(decode(body).is_err(), "accepted {:?}", String::from_utf8_lossy(body));
        }
    }
}
