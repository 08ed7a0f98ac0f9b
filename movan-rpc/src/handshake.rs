//! Mutual challenge-response authentication with a shared secret, without IO.
//!
//! ```text
//! server → client  challenge {nonce: b64(Ns)}
//! client → server  auth      {node: Nc_id, nonce: b64(Nc), mac: b64(HMAC(secret, "movan-rpc/client" ‖ Ns ‖ Nc ‖ Nc_id))}
//! server → client  welcome   {node: Ns_id,                mac: b64(HMAC(secret, "movan-rpc/server" ‖ Nc ‖ Ns ‖ Ns_id))}
//!             or   error     {code: "unauthenticated", message}   and the server closes
//! ```
//!
//! The secret never crosses the wire. Both nonces are fresh for each connection, so a recorded `auth` or
//! `welcome` is useless on another connection; the two labels keep a server MAC from being reflected back as a
//! client MAC. MACs are compared in constant time. The node ids are covered by the MACs, so they cannot be
//! swapped in transit. This authenticates peers, it does not encrypt: run the link over a trusted network or a
//! tunnel.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::codes;
use crate::wire::{ErrorBody, Message};

/// Length of each nonce in bytes.
pub const NONCE_LEN: usize = 32;
/// Longest node id accepted in `auth` and `welcome`, in bytes.
pub const MAX_NODE_ID_LEN: usize = 256;

const CLIENT_LABEL: &[u8] = b"movan-rpc/client";
const SERVER_LABEL: &[u8] = b"movan-rpc/server";

/// A handshake nonce: 32 random bytes, fresh for every connection.
pub type Nonce = [u8; NONCE_LEN];
/// An HMAC-SHA256 tag.
pub type Tag = [u8; 32];

/// Why a handshake failed. The connection is closed after any of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The peer sent another message than the one the handshake expects next.
    #[error("expected `{expected}`, got `{got}`")]
    Unexpected {
        /// The message type expected.
        expected: &'static str,
        /// The message type received.
        got: &'static str,
    },
    /// A field is not valid base64 of the right length, or the node id is too long.
    #[error("malformed `{0}` field")]
    Malformed(&'static str),
    /// The MAC does not verify: the peer does not know the shared secret (or the message was tampered with).
    #[error("MAC mismatch: the peer does not know the shared secret")]
    BadMac,
    /// The server refused us with an `error` message.
    #[error("refused by the server: {0}")]
    Refused(String),
}

/// HMAC-SHA256(secret, "movan-rpc/client" ‖ server_nonce ‖ client_nonce ‖ client_node).
pub fn client_mac(secret: &[u8], server_nonce: &Nonce, client_nonce: &Nonce, client_node: &str) -> Tag {
    mac(secret, CLIENT_LABEL, server_nonce, client_nonce, client_node)
}

/// HMAC-SHA256(secret, "movan-rpc/server" ‖ client_nonce ‖ server_nonce ‖ server_node).
pub fn server_mac(secret: &[u8], client_nonce: &Nonce, server_nonce: &Nonce, server_node: &str) -> Tag {
    mac(secret, SERVER_LABEL, client_nonce, server_nonce, server_node)
}

/// The server's side: sends a challenge, checks the client's `auth`, answers `welcome`.
pub struct ServerHandshake {
    secret: Vec<u8>,
    node: String,
    nonce: Nonce,
}

impl std::fmt::Debug for ServerHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandshake").field("node", &self.node).finish_non_exhaustive()
    }
}

impl ServerHandshake {
    /// A handshake for the server `node`, with a fresh random `nonce`.
    pub fn new(secret: &[u8], node: &str, nonce: Nonce) -> Self {
        Self { secret: secret.to_vec(), node: node.to_owned(), nonce }
    }

    /// The first message to send.
    pub fn challenge(&self) -> Message {
        Message::Challenge { nonce: BASE64.encode(self.nonce) }
    }

    /// Checks the client's answer. On success returns the client's node id and the `welcome` to send; on failure
    /// send [`Self::rejection`] and close.
    pub fn on_message(&self, message: Message) -> Result<(String, Message), HandshakeError> {
        let Message::Auth { node, nonce, mac } = message else {
            return Err(HandshakeError::Unexpected { expected: "auth", got: type_name(&message) });
        };
        if node.len() > MAX_NODE_ID_LEN {
            return Err(HandshakeError::Malformed("node"));
        }
        let client_nonce = decode_nonce(&nonce).ok_or(HandshakeError::Malformed("nonce"))?;
        let expected = client_mac(&self.secret, &self.nonce, &client_nonce, &node);
        verify(&expected, &mac)?;
        let welcome = server_mac(&self.secret, &client_nonce, &self.nonce, &self.node);
        Ok((node, Message::Welcome { node: self.node.clone(), mac: BASE64.encode(welcome) }))
    }

    /// The `error` message telling the client why it is refused.
    pub fn rejection(error: &HandshakeError) -> Message {
        Message::Error(ErrorBody::new(codes::UNAUTHENTICATED, error.to_string()))
    }
}

/// The client's side: answers the challenge, then checks the server's `welcome`.
pub struct ClientHandshake {
    secret: Vec<u8>,
    node: String,
    nonce: Nonce,
    server_nonce: Option<Nonce>,
}

impl std::fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandshake").field("node", &self.node).finish_non_exhaustive()
    }
}

impl ClientHandshake {
    /// A handshake for the client `node`, with a fresh random `nonce`.
    pub fn new(secret: &[u8], node: &str, nonce: Nonce) -> Self {
        Self { secret: secret.to_vec(), node: node.to_owned(), nonce, server_nonce: None }
    }

    /// Answers the server's `challenge` with the `auth` message to send.
    pub fn on_challenge(&mut self, message: Message) -> Result<Message, HandshakeError> {
        let nonce = match message {
            Message::Challenge { nonce } => nonce,
            Message::Error(body) => return Err(HandshakeError::Refused(body.message)),
            other => return Err(HandshakeError::Unexpected { expected: "challenge", got: type_name(&other) }),
        };
        let server_nonce = decode_nonce(&nonce).ok_or(HandshakeError::Malformed("nonce"))?;
        self.server_nonce = Some(server_nonce);
        let mac = client_mac(&self.secret, &server_nonce, &self.nonce, &self.node);
        Ok(Message::Auth { node: self.node.clone(), nonce: BASE64.encode(self.nonce), mac: BASE64.encode(mac) })
    }

    /// Checks the server's answer to our `auth`; returns the server's node id. An `error` answer is
    /// [`HandshakeError::Refused`].
    pub fn on_welcome(&self, message: Message) -> Result<String, HandshakeError> {
        let (node, mac) = match message {
            Message::Welcome { node, mac } => (node, mac),
            Message::Error(body) => return Err(HandshakeError::Refused(body.message)),
            other => return Err(HandshakeError::Unexpected { expected: "welcome", got: type_name(&other) }),
        };
        let Some(server_nonce) = self.server_nonce else {
            return Err(HandshakeError::Unexpected { expected: "challenge", got: "welcome" });
        };
        if node.len() > MAX_NODE_ID_LEN {
            return Err(HandshakeError::Malformed("node"));
        }
        verify(&server_mac(&self.secret, &self.nonce, &server_nonce, &node), &mac)?;
        Ok(node)
    }
}

/// The `type` of `message`, for error reports.
pub(crate) fn type_name(message: &Message) -> &'static str {
    match message {
        Message::Challenge { .. } => "challenge",
        Message::Auth { .. } => "auth",
        Message::Welcome { .. } => "welcome",
        Message::Error(_) => "error",
        Message::Call { .. } => "call",
        Message::Reply { .. } => "reply",
        Message::Notify { .. } => "notify",
        Message::Ping { .. } => "ping",
        Message::Pong { .. } => "pong",
    }
}

fn mac(secret: &[u8], label: &[u8], first: &Nonce, second: &Nonce, node: &str) -> Tag {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(label);
    mac.update(first);
    mac.update(second);
    mac.update(node.as_bytes());
    mac.finalize().into_bytes().into()
}

fn decode_nonce(text: &str) -> Option<Nonce> {
    BASE64.decode(text).ok()?.try_into().ok()
}

fn verify(expected: &Tag, received_b64: &str) -> Result<(), HandshakeError> {
    let received = BASE64.decode(received_b64).map_err(|_| HandshakeError::Malformed("mac"))?;
    // `ct_eq` on slices of different lengths is false without comparing contents.
    if bool::from(expected.as_slice().ct_eq(&received)) { Ok(()) } else { Err(HandshakeError::BadMac) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const SECRET: &[u8] = b"correct horse battery staple";

    fn run(client_secret: &[u8], server_secret: &[u8]) -> Result<(String, String), HandshakeError> {
        let server = ServerHandshake::new(server_secret, "account", [1; NONCE_LEN]);
        let mut client = ClientHandshake::new(client_secret, "sync-1", [2; NONCE_LEN]);
        let auth = client.on_challenge(server.challenge())?;
        let (client_node, welcome) = server.on_message(auth)?;
        let server_node = client.on_welcome(welcome)?;
        Ok((client_node, server_node))
    }

    #[test]
    fn right_secret_authenticates_both_ways() {
        assert_eq!(run(SECRET, SECRET).unwrap(), ("sync-1".to_owned(), "account".to_owned()));
    }

    #[test]
    fn wrong_secret_fails_at_the_server() {
        assert_eq!(run(b"guess", SECRET), Err(HandshakeError::BadMac));
    }

    #[test]
    fn impostor_server_fails_at_the_client() {
        // A server that does not know the secret cannot produce the welcome MAC, whatever it answers.
        let mut client = ClientHandshake::new(SECRET, "sync-1", [2; NONCE_LEN]);
        let impostor = ServerHandshake::new(b"guess", "account", [1; NONCE_LEN]);
        client.on_challenge(impostor.challenge()).unwrap();
        let forged = server_mac(b"guess", &[2; NONCE_LEN], &[1; NONCE_LEN], "account");
        let welcome = Message::Welcome { node: "account".into(), mac: BASE64.encode(forged) };
        assert_eq!(client.on_welcome(welcome), Err(HandshakeError::BadMac));
    }

    #[test]
    fn tampered_fields_fail() {
        let server = ServerHandshake::new(SECRET, "account", [1; NONCE_LEN]);
        let mut client = ClientHandshake::new(SECRET, "sync-1", [2; NONCE_LEN]);
        let Message::Auth { node, nonce, mac } = client.on_challenge(server.challenge()).unwrap() else {
            panic!("expected auth");
        };
        let mut flipped = BASE64.decode(&mac).unwrap();
        flipped[0] ^= 1;
        let tampered = [
            Message::Auth { node: node.clone(), nonce: nonce.clone(), mac: BASE64.encode(&flipped) },
            Message::Auth { node: "sync-2".into(), nonce: nonce.clone(), mac: mac.clone() },
            Message::Auth { node: node.clone(), nonce: BASE64.encode([3; NONCE_LEN]), mac: mac.clone() },
            Message::Auth { node: node.clone(), nonce: nonce.clone(), mac: BASE64.encode(&flipped[..16]) },
        ];
        for auth in tampered {
            assert_eq!(server.on_message(auth), Err(HandshakeError::BadMac));
        }
        let short_nonce = Message::Auth { node, nonce: BASE64.encode([0; 8]), mac };
        assert_eq!(server.on_message(short_nonce), Err(HandshakeError::Malformed("nonce")));

        let (_, welcome) = server.on_message(client.on_challenge(server.challenge()).unwrap()).unwrap();
        let Message::Welcome { mac, .. } = welcome else { panic!("expected welcome") };
        let renamed = Message::Welcome { node: "evil".into(), mac };
        assert_eq!(client.on_welcome(renamed), Err(HandshakeError::BadMac));
    }

    #[test]
    fn replays_do_not_authenticate() {
        // Record a genuine exchange.
        let server = ServerHandshake::new(SECRET, "account", [1; NONCE_LEN]);
        let mut client = ClientHandshake::new(SECRET, "sync-1", [2; NONCE_LEN]);
        let recorded_auth = client.on_challenge(server.challenge()).unwrap();
        let (_, recorded_welcome) = server.on_message(recorded_auth.clone()).unwrap();

        // Replaying the client's auth to a server with a fresh nonce fails.
        let fresh_server = ServerHandshake::new(SECRET, "account", [9; NONCE_LEN]);
        assert_eq!(fresh_server.on_message(recorded_auth), Err(HandshakeError::BadMac));

        // Replaying the old challenge and welcome to a client with a fresh nonce fails.
        let mut fresh_client = ClientHandshake::new(SECRET, "sync-1", [8; NONCE_LEN]);
        fresh_client.on_challenge(server.challenge()).unwrap();
        assert_eq!(fresh_client.on_welcome(recorded_welcome.clone()), Err(HandshakeError::BadMac));

        // Reflecting the server's MAC back as a client MAC fails: the labels differ.
        let Message::Welcome { mac, .. } = recorded_welcome else { panic!("expected welcome") };
        let reflected = Message::Auth { node: "account".into(), nonce: BASE64.encode([2; NONCE_LEN]), mac };
        assert_eq!(server.on_message(reflected), Err(HandshakeError::BadMac));
    }

    #[test]
    fn out_of_order_and_refusals() {
        let server = ServerHandshake::new(SECRET, "account", [1; NONCE_LEN]);
        let call = Message::Call { id: 1, method: "m".into(), params: serde_json::Value::Null };
        assert_eq!(server.on_message(call), Err(HandshakeError::Unexpected { expected: "auth", got: "call" }));
        let mut client = ClientHandshake::new(SECRET, "sync-1", [2; NONCE_LEN]);
        let refusal = ServerHandshake::rejection(&HandshakeError::BadMac);
        assert!(matches!(client.on_welcome(refusal.clone()), Err(HandshakeError::Refused(_))));
        assert!(matches!(client.on_challenge(refusal), Err(HandshakeError::Refused(_))));
        let early = Message::Welcome { node: "account".into(), mac: String::new() };
        assert!(matches!(client.on_welcome(early), Err(HandshakeError::Unexpected { .. })));
    }
}
