//! A fake sync server end for tests in this crate: plays the connection sequence, seals and opens like the server.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use movan_protocol::codec::{FrameCodec, LENGTH_PREFIX, frame_bytes};
use movan_protocol::crypto::{self, CryptoError, Opener, SALT_LEN, Sealer, SessionKey};
use movan_protocol::server::{Pong, ServerMessage};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::FramedRead;

use super::SyncClient;

/// How long a test waits for anything.
pub(crate) const T: Duration = Duration::from_secs(5);
/// The salt every fake sealed handshake announces.
pub(crate) const SALT: [u8; SALT_LEN] = [7; SALT_LEN];

/// The session key of the fake sealed connections.
pub(crate) fn test_key() -> SessionKey {
    SessionKey::from_bytes([42; 32])
}

/// The server end of one test connection: client bodies in (opened when sealed), frames out (sealed when sealed).
pub(crate) struct FakeServer {
    pub(crate) frames: FramedRead<OwnedReadHalf, FrameCodec>,
    pub(crate) write: OwnedWriteHalf,
    sealer: Option<Sealer>,
    opener: Option<Opener>,
}

impl FakeServer {
    /// The next client frame body as received, and opened once the handshake switched encryption on.
    pub(crate) async fn recv_frame(&mut self) -> (Bytes, Result<Vec<u8>, CryptoError>) {
        let body = tokio::time::timeout(T, self.frames.next()).await.unwrap().unwrap().unwrap();
        let opened = match self.opener.as_mut() {
            Some(opener) => opener.open(&body),
            None => Ok(body.to_vec()),
        };
        (body, opened)
    }

    /// The next client frame body, opened once the handshake switched encryption on.
    pub(crate) async fn recv_body(&mut self) -> Bytes {
        self.recv_frame().await.1.unwrap().into()
    }

    pub(crate) async fn recv_json(&mut self) -> Value {
        serde_json::from_slice(&self.recv_body().await).unwrap()
    }

    /// True once the client closed its sending side.
    pub(crate) async fn recv_end(&mut self) -> bool {
        tokio::time::timeout(T, self.frames.next()).await.unwrap().is_none()
    }

    /// Sends whole frames given in wire form, each sealed when encrypted, in one write.
    pub(crate) async fn send(&mut self, wire: &[u8]) {
        let wire = self.wire(wire);
        self.send_raw(&wire).await;
    }

    /// Writes `bytes` as they are.
    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).await.unwrap();
    }

    /// Whole frames in wire form as they go out: sealed one by one when encrypted.
    pub(crate) fn wire(&mut self, mut wire: &[u8]) -> Vec<u8> {
        let Some(sealer) = self.sealer.as_mut() else {
            return wire.to_vec();
        };
        let mut out = Vec::new();
        while !wire.is_empty() {
            let len = u32::from_be_bytes(wire[..LENGTH_PREFIX].try_into().unwrap()) as usize;
            out.extend_from_slice(&sealer.seal(&wire[LENGTH_PREFIX..LENGTH_PREFIX + len]).unwrap());
            wire = &wire[LENGTH_PREFIX + len..];
        }
        out
    }

    /// Sends the plaintext handshake: sealed with [`test_key`] and [`SALT`] when `sealed`, else `cipher: none`.
    pub(crate) async fn handshake(&mut self, sealed: bool) {
        if sealed {
            self.send_raw(&crypto::handshake_message(&SALT)).await;
            let (sealer, opener) = crypto::server_side(&test_key(), &SALT);
            (self.sealer, self.opener) = (Some(sealer), Some(opener));
        } else {
            self.send_raw(&crypto::plaintext_handshake_message()).await;
        }
    }

    /// Plays the server's side of a successful connect: reads the token `ping`, sends the handshake, (when sealed)
    /// reads the sealed ping proving the key, then answers with the pong(s).
    pub(crate) async fn accept(&mut self, sealed: bool) {
        let ping = self.recv_json().await;
        assert_eq!((ping["uid"].as_str(), ping["token"].as_str()), (Some("1001"), Some("jwt")), "{ping}");
        assert_eq!(ping["extra_data"]["proto"], "ping");
        self.handshake(sealed).await;
        if sealed {
            // The client proves it holds the session key with a sealed ping; then both pings are answered.
            let proof = self.recv_json().await;
            assert_eq!(proof["extra_data"]["proto"], "ping", "{proof}");
            self.send(&pong()).await;
        }
        self.send(&pong()).await;
    }
}

/// A `pong` in wire form.
pub(crate) fn pong() -> Bytes {
    ServerMessage::Pong(Pong { timestamp: Some(1.0), server_time: 2.0 }).to_wire()
}

/// A plaintext `error` body in wire form.
pub(crate) fn error_wire(code: &str) -> Bytes {
    let body = format!(r#"{{"proto":"error","data":{{"code":"{code}","message":"no","proto":"ping"}}}}"#);
    frame_bytes(body.as_bytes())
}

/// A listener on a free port and its address.
pub(crate) async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

/// The fake server's end of the next connection to `listener`.
pub(crate) async fn accept_fake(listener: &TcpListener) -> FakeServer {
    let (read, write) = listener.accept().await.unwrap().0.into_split();
    FakeServer { frames: FramedRead::new(read, FrameCodec::default()), write, sealer: None, opener: None }
}

/// A client connected by [`SyncClient::connect_with`] as uid `1001` with token `jwt`: sealed with [`test_key`] when
/// `sealed`, else against a server with encryption off. The connect `pong`s (two when sealed) are consumed.
pub(crate) async fn established(sealed: bool) -> (SyncClient, FakeServer) {
    let (listener, addr) = listen().await;
    let key = sealed.then(test_key);
    let serve = async {
        let mut server = accept_fake(&listener).await;
        server.accept(sealed).await;
        server
    };
    let (client, server) = tokio::join!(SyncClient::connect_with(&addr, "1001", "jwt", key), serve);
    (client.unwrap(), server)
}

/// A plaintext connection (the server runs with encryption off).
pub(crate) async fn pair() -> (SyncClient, FakeServer) {
    established(false).await
}

/// A [`SyncClient::connect_unauthenticated`] client (token `jwt`, `key`) and the server's end; nothing sent yet.
pub(crate) async fn unauthenticated_pair(key: Option<SessionKey>) -> (SyncClient, FakeServer) {
    let (listener, addr) = listen().await;
    let (client, server) =
        tokio::join!(SyncClient::connect_unauthenticated(&addr, "1001", Some("jwt"), key), accept_fake(&listener));
    (client.unwrap(), server)
}
