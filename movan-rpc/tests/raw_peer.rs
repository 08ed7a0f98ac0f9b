//! A hand-written peer on a raw socket, speaking the wire protocol directly: it can misbehave in ways the real
//! client never does (go silent after authenticating, skip the handshake, stop reading).
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::{FutureExt, SinkExt, StreamExt};
use movan_protocol::FrameCodec;
use movan_rpc::handshake::{self, NONCE_LEN};
use movan_rpc::wire::{self, Message};
use movan_rpc::{CallError, ConnectionState, DisconnectReason, Handlers, RpcConfig};
use serde_json::json;
use support::*;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

type Raw = Framed<TcpStream, FrameCodec>;

async fn raw_connect(addr: SocketAddr) -> Raw {
    Framed::new(TcpStream::connect(addr).await.unwrap(), FrameCodec::new(1 << 20))
}

async fn send(raw: &mut Raw, message: &Message) {
    raw.send(&wire::encode(message)[..]).await.unwrap();
}

/// The next message, or `None` once the server has closed the connection.
async fn recv(raw: &mut Raw) -> Option<Message> {
    match soon("a frame or the end of the stream", raw.next()).await {
        Some(Ok(body)) => Some(wire::decode(&body).unwrap()),
        Some(Err(_)) | None => None,
    }
}

/// Reads (and drops) whatever comes until the server closes the connection.
async fn until_closed(raw: &mut Raw) {
    while recv(raw).await.is_some() {}
}

/// Completes the client side of the handshake by hand, as `node`.
async fn raw_authenticate(raw: &mut Raw, secret: &str, node: &str) -> Message {
    let Some(Message::Challenge { nonce }) = recv(raw).await else { panic!("expected a challenge") };
    let server_nonce: [u8; NONCE_LEN] = BASE64.decode(nonce).unwrap().try_into().unwrap();
    let client_nonce = [7u8; NONCE_LEN];
    let mac = handshake::client_mac(secret.as_bytes(), &server_nonce, &client_nonce, node);
    let auth = Message::Auth { node: node.into(), nonce: BASE64.encode(client_nonce), mac: BASE64.encode(mac) };
    send(raw, &auth).await;
    recv(raw).await.unwrap()
}

fn disconnect_recorder() -> (Handlers, mpsc::Receiver<(String, Option<DisconnectReason>)>) {
    let (tx, rx) = mpsc::channel(8);
    let handlers = Handlers::new().on_disconnect(move |peer| {
        let _ = tx.try_send((peer.node_id().to_owned(), peer.disconnect_reason()));
    });
    (handlers, rx)
}

#[tokio::test]
async fn silent_peer_is_declared_dead_after_the_configured_misses() {
    let (handlers, mut disconnects) = disconnect_recorder();
    let server = start_server(config("account"), handlers).await;
    let mut raw = raw_connect(server.addr).await;
    let welcome = raw_authenticate(&mut raw, SECRET, "zombie").await;
    assert!(matches!(welcome, Message::Welcome { ref node, .. } if node == "account"), "{welcome:?}");
    eventually("server lists the raw peer", || server.peers.by_node("zombie").is_some()).await;

    // From now on the raw peer neither reads nor writes; its socket stays open.
    let started = Instant::now();
    let (node, reason) = soon("dead peer detected", disconnects.recv()).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(node, "zombie");
    assert_eq!(reason, Some(DisconnectReason::HeartbeatTimeout));
    // 3 misses of 100 ms: detected after about 300 ms, well before several seconds.
    assert!(waited < Duration::from_secs(3), "took {waited:?}");
    assert!(server.peers.is_empty());

    // The server pinged meanwhile, then closed.
    let mut pings = 0;
    while let Some(message) = recv(&mut raw).await {
        if matches!(message, Message::Ping { .. }) {
            pings += 1;
        }
    }
    assert!(pings >= 1);
    server.stop().await;
}

#[tokio::test]
async fn answering_pings_keeps_a_peer_alive() {
    let (handlers, mut disconnects) = disconnect_recorder();
    let server = start_server(config("account"), handlers).await;
    let mut raw = raw_connect(server.addr).await;
    raw_authenticate(&mut raw, SECRET, "polite").await;
    let until = Instant::now() + Duration::from_millis(800);
    while Instant::now() < until {
        if let Some(Message::Ping { seq, .. }) = recv(&mut raw).await {
            send(&mut raw, &Message::Pong { seq }).await;
        }
    }
    assert!(disconnects.try_recv().is_err(), "a peer that answers pings stays connected");
    assert!(server.peers.by_node("polite").is_some());
    server.stop().await;
}

#[tokio::test]
async fn client_declares_a_silent_server_dead_and_reconnects() {
    let listener = bind("127.0.0.1:0".parse().unwrap());
    let addr = listener.local_addr().unwrap();
    let client = plain_client(addr, config("sync-1"));
    let mut states = client.watch_state();

    // A fake server that authenticates properly and then never says another word.
    let mut held = Vec::new();
    for round in 0..2 {
        let (stream, _) = soon("client connects", listener.accept()).await.unwrap();
        let mut raw = Framed::new(stream, FrameCodec::new(1 << 20));
        let server = handshake::ServerHandshake::new(SECRET.as_bytes(), "fake", [round; NONCE_LEN]);
        send(&mut raw, &server.challenge()).await;
        let auth = recv(&mut raw).await.unwrap();
        let (node, welcome) = server.on_message(auth).unwrap();
        assert_eq!(node, "sync-1");
        send(&mut raw, &welcome).await;
        soon("connected", states.wait_for(|s| *s == ConnectionState::Connected)).await.unwrap();
        soon("declared dead", states.wait_for(|s| *s == ConnectionState::Disconnected)).await.unwrap();
        held.push(raw); // keep the socket open: only the heartbeat can tell the server is gone
    }
}

#[tokio::test]
async fn anything_but_auth_before_the_handshake_is_refused() {
    let server = start_server(config("account"), Handlers::new()).await;
    let mut raw = raw_connect(server.addr).await;
    assert!(matches!(recv(&mut raw).await, Some(Message::Challenge { .. })));
    send(&mut raw, &Message::Call { id: 1, method: "add".into(), params: json!([1, 2]) }).await;
    let Some(Message::Error(body)) = recv(&mut raw).await else { panic!("expected an error message") };
    assert_eq!(body.code, "unauthenticated");
    assert_eq!(recv(&mut raw).await, None, "closed after the error");
    assert!(server.peers.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn big_frame_before_the_handshake_is_refused() {
    let server = start_server(config("account"), Handlers::new()).await;
    let mut raw = raw_connect(server.addr).await;
    assert!(matches!(recv(&mut raw).await, Some(Message::Challenge { .. })));
    // Far below max_frame_bytes (1 MiB), but over what an unauthenticated peer may send.
    let padded = Message::Auth { node: "x".repeat(8000), nonce: String::new(), mac: String::new() };
    send(&mut raw, &padded).await;
    until_closed(&mut raw).await;
    assert!(server.peers.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn wrong_mac_gets_unauthenticated_and_closed() {
    let server = start_server(config("account"), Handlers::new()).await;
    let mut raw = raw_connect(server.addr).await;
    let answer = raw_authenticate(&mut raw, "a guess", "intruder").await;
    let Message::Error(body) = answer else { panic!("expected an error, got {answer:?}") };
    assert_eq!(body.code, "unauthenticated");
    assert_eq!(recv(&mut raw).await, None);
    server.stop().await;
}

#[tokio::test]
async fn silence_before_the_handshake_is_cut_off() {
    let config = RpcConfig { handshake_timeout: Duration::from_millis(200), ..config("account") };
    let server = start_server(config, Handlers::new()).await;
    let mut raw = raw_connect(server.addr).await;
    let started = Instant::now();
    until_closed(&mut raw).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    server.stop().await;
}

#[tokio::test]
async fn oversized_frame_closes_the_connection() {
    let config = RpcConfig { max_frame_bytes: 4096, ..config("account") };
    let (handlers, mut disconnects) = disconnect_recorder();
    let server = start_server(config, handlers).await;
    let mut raw = raw_connect(server.addr).await;
    raw_authenticate(&mut raw, SECRET, "big").await;
    let huge = Message::Notify { method: "x".into(), params: json!("a".repeat(10_000)) };
    send(&mut raw, &huge).await;
    let (_, reason) = soon("closed", disconnects.recv()).await.unwrap();
    assert!(matches!(reason, Some(DisconnectReason::Protocol(_))), "{reason:?}");
    until_closed(&mut raw).await;
    server.stop().await;
}

#[tokio::test]
async fn peer_that_stops_reading_is_cut_off_without_blocking() {
    // Long heartbeats, so that only the full send queue (or the stalled write) can end the connection.
    let config = RpcConfig {
        heartbeat_interval: Duration::from_secs(10),
        send_queue: 8,
        max_frame_bytes: 1 << 20,
        ..config("account")
    };
    let (handlers, mut disconnects) = disconnect_recorder();
    let server = start_server(config, handlers).await;
    let mut raw = raw_connect(server.addr).await;
    raw_authenticate(&mut raw, SECRET, "deaf").await;
    eventually("server lists the raw peer", || server.peers.by_node("deaf").is_some()).await;
    let deaf = server.peers.by_node("deaf").unwrap();

    let chunk = json!("x".repeat(64 * 1024));
    let started = Instant::now();
    let mut sent = 0;
    let outcome = loop {
        match deaf.notify("flood", &chunk) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(started.elapsed() < PATIENCE, "still queueing after {sent} messages");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    assert_eq!(outcome, CallError::Disconnected);
    let (_, reason) = soon("closed", disconnects.recv()).await.unwrap();
    assert_eq!(reason, Some(DisconnectReason::TooSlow));
    drop(raw);
    server.stop().await;
}

#[tokio::test]
async fn server_heartbeat_payload_reaches_the_client() {
    let listener = bind("127.0.0.1:0".parse().unwrap());
    let server = movan_rpc::RpcServer::new(config("account"), Handlers::new())
        .unwrap()
        .with_heartbeat_payload(|| Some(json!({"status": "ok"})));
    let server = start_server_on(listener, server);
    let (tx, mut rx) = mpsc::channel(16);
    let handlers = Handlers::new().on_heartbeat(move |peer, load| {
        let _ = tx.try_send((peer.node_id().to_owned(), load));
    });
    let _client = client_with(server.addr, config("sync-1"), handlers, |_| async {}.boxed());
    let (node, load) = soon("server heartbeat", rx.recv()).await.unwrap();
    assert_eq!(node, "account");
    assert_eq!(load, Some(json!({"status": "ok"})));
    server.stop().await;
}
