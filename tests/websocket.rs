//! End-to-end: browser-style clients over WebSocket (`sync.ws_addr`, path `/ws`), one binary message per frame body,
//! sealed like TCP, sharing a room with a TCP player.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use movan_client::{FrameLog, Session, SyncClient};
use movan_protocol::crypto::{Handshake, Opener, Sealer, client_side, parse_handshake};
use movan_protocol::server::{ServerEvent, parse_server_message};
use movan_protocol::{ErrorCode, codec::LENGTH_PREFIX};
use movan_tests::{Cluster, Options};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

const WAIT: Duration = Duration::from_secs(10);

/// A minimal WebSocket player, as a browser would be: JSON bodies in binary messages, sealed after the handshake.
struct WsPlayer {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    uid: String,
    seal: Option<(Sealer, Opener)>,
}

impl WsPlayer {
    async fn connect(url: &str, session: &Session) -> Self {
        let (ws, _) = connect_async(url).await.unwrap();
        let mut p = Self { ws, uid: session.uid.clone(), seal: None };
        let first =
            json!({"uid": session.uid, "token": session.token, "extra_data": {"proto": "ping", "timestamp": 1.0}});
        p.ws.send(Message::Binary(serde_json::to_vec(&first).unwrap().into())).await.unwrap();
        let handshake = p.raw_next().await.expect("a handshake");
        match parse_handshake(&handshake).unwrap() {
            Handshake::Sealed(salt) => {
                let key = session.decode_session_key().unwrap().unwrap();
                p.seal = Some(client_side(&key, &salt));
            }
            Handshake::Plaintext => {}
        }
        // The sealed ping proves the key; then both pongs arrive.
        p.send(json!({"proto": "ping", "timestamp": 2.0})).await;
        for _ in 0..2 {
            p.wait_for(|e| matches!(e, ServerEvent::Pong(_))).await;
        }
        p
    }

    async fn send(&mut self, extra_data: Value) {
        let body = serde_json::to_vec(&json!({"uid": self.uid, "extra_data": extra_data})).unwrap();
        self.send_body(&body).await;
    }

    async fn send_body(&mut self, body: &[u8]) {
        let msg = match self.seal.as_mut() {
            Some((sealer, _)) => sealer.seal(body).unwrap().slice(LENGTH_PREFIX..),
            None => body.to_vec().into(),
        };
        self.ws.send(Message::Binary(msg)).await.unwrap();
    }

    /// The next binary message's body, unsealed; `None` at the close.
    async fn raw_next(&mut self) -> Option<Vec<u8>> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.unwrap()? {
                Ok(Message::Binary(b)) => {
                    return Some(match self.seal.as_mut() {
                        Some((_, opener)) => opener.open(&b).unwrap(),
                        None => b.to_vec(),
                    });
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    async fn next_event(&mut self) -> Option<ServerEvent> {
        let body = self.raw_next().await?;
        Some(parse_server_message(&body).unwrap())
    }

    async fn wait_for(&mut self, pred: impl Fn(&ServerEvent) -> bool) -> ServerEvent {
        loop {
            let ev = self.next_event().await.expect("connection closed");
            if pred(&ev) {
                return ev;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_and_tcp_players_share_a_room_and_see_the_same_frames() {
    let cluster =
        Cluster::start_with(Options { sync: vec!["max_players = 2".into()], ..Options::default() }).await.unwrap();
    let tcp_session = cluster.login("tcp-player").await;
    let ws_session = cluster.login("ws-player").await;
    assert_eq!(ws_session.sync_ws_url.as_deref(), Some(cluster.sync_ws_url.as_str()), "login names the endpoint");
    let mut tcp = SyncClient::connect_session(&tcp_session).await.unwrap();
    let mut ws = WsPlayer::connect(&cluster.sync_ws_url, &ws_session).await;
    assert!(ws.seal.is_some(), "WebSocket connections are sealed like TCP ones");

    tcp.enter_room(Some("mixed")).await.unwrap();
    ws.send(json!({"proto": "room_enter", "data": {"room_id": "mixed"}})).await;
    ws.wait_for(|e| matches!(e, ServerEvent::RoomState(s) if s.members.len() == 2)).await;
    tcp.prepare().await.unwrap();
    ws.send(json!({"proto": "room_prepare"})).await;
    ws.wait_for(|e| matches!(e, ServerEvent::GameStart(_))).await;
    tcp.wait_for(|e| matches!(e, ServerEvent::GameStart(_)), WAIT).await.unwrap();

    let mut tcp_log = FrameLog::new();
    let mut ws_log = FrameLog::new();
    let ws_task = tokio::spawn(async move {
        while ws_log.next_frame() < 40 {
            if let Some(ServerEvent::Frame(f)) = ws.next_event().await {
                if f.frame_count % 5 == 0 {
                    let ts = movan_client::unix_now();
                    ws.send(json!({"proto": "sync_action", "timestamp": ts, "action_data": {"ws": f.frame_count}}))
                        .await;
                }
                ws_log.push(f).unwrap();
            }
        }
        (ws, ws_log)
    });
    while tcp_log.next_frame() < 45 {
        if let Some(ServerEvent::Frame(f)) = tcp.next_event_timeout(WAIT).await.unwrap() {
            if f.frame_count % 7 == 0 {
                tcp.send_action(&json!({"tcp": f.frame_count})).await.unwrap();
            }
            tcp_log.push(f).unwrap();
        }
    }
    let (mut ws, ws_log) = ws_task.await.unwrap();
    for f in ws_log.frames() {
        assert_eq!(Some(f), tcp_log.get(f.frame_count), "frame {} differs between transports", f.frame_count);
    }
    let actions: Vec<&str> =
        tcp_log.frames().iter().flat_map(|f| f.actions.iter()).map(|a| a.action_data.get()).collect();
    assert!(actions.iter().any(|a| a.contains("\"ws\"")) && actions.iter().any(|a| a.contains("\"tcp\"")));

    // A reload over WebSocket returns the broadcast bytes too.
    ws.send(json!({"proto": "sync_request_reload_frames", "data": {"start_frame": 0}})).await;
    let ServerEvent::Reload(chunk) = ws.wait_for(|e| matches!(e, ServerEvent::Reload(_))).await else { unreachable!() };
    assert_eq!(chunk.start_frame, 0);
    for f in &chunk.frames {
        if let Some(live) = tcp_log.get(f.frame_count) {
            assert_eq!(f, live);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_limits_and_bad_input() {
    let cluster = Cluster::start_with(Options {
        sync: vec!["max_frame_bytes = 1024".into(), "first_frame_timeout_secs = 1".into()],
        ..Options::default()
    })
    .await
    .unwrap();
    let session = cluster.login("ws-mallory").await;

    // Another path: refused at the HTTP upgrade.
    let wrong = cluster.sync_ws_url.replace("/ws", "/other");
    let err = connect_async(wrong.as_str()).await.unwrap_err().to_string();
    assert!(err.contains("404"), "{err}");

    // Plain HTTP, as `curl http://127.0.0.1:2028/ws` sends it: an HTTP answer that says what the port is.
    let authority = cluster.sync_ws_url.trim_start_matches("ws://").trim_end_matches("/ws").to_owned();
    let plain = |head: &'static str| {
        let authority = authority.clone();
        async move {
            let mut s = TcpStream::connect(authority.as_str()).await.unwrap();
            s.write_all(head.as_bytes()).await.unwrap();
            let mut answer = String::new();
            tokio::time::timeout(WAIT, s.read_to_string(&mut answer)).await.unwrap().unwrap();
            answer
        }
    };
    let answer = plain("GET /ws HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
    assert!(answer.contains("open it with a WebSocket client"), "{answer}");
    let answer = plain("GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");
    assert!(answer.contains("endpoint is /ws"), "{answer}");

    // A message over sync.max_frame_bytes: frame_too_large, then the close.
    let mut p = WsPlayer::connect(&cluster.sync_ws_url, &session).await;
    p.send_body(&vec![b' '; 2000]).await;
    let ev = p.next_event().await;
    assert!(matches!(&ev, Some(ServerEvent::Error(e)) if e.code == ErrorCode::FrameTooLarge), "{ev:?}");
    assert!(p.next_event().await.is_none(), "closed after frame_too_large");

    // A tampered sealed message closes the connection without a word.
    let mut p = WsPlayer::connect(&cluster.sync_ws_url, &session).await;
    let (sealer, _) = p.seal.as_mut().unwrap();
    let mut sealed =
        sealer.seal(br#"{"uid":"x","extra_data":{"proto":"ping"}}"#).unwrap().slice(LENGTH_PREFIX..).to_vec();
    sealed[3] ^= 1;
    p.ws.send(Message::Binary(sealed.into())).await.unwrap();
    assert!(p.raw_next().await.is_none());

    // Bad JSON on an authenticated connection: bad_json, and the connection stays usable.
    let mut p = WsPlayer::connect(&cluster.sync_ws_url, &session).await;
    p.send_body(b"{not json").await;
    p.wait_for(|e| matches!(e, ServerEvent::Error(b) if b.code == ErrorCode::BadJson)).await;
    p.send(json!({"proto": "ping"})).await;
    p.wait_for(|e| matches!(e, ServerEvent::Pong(_))).await;

    // A connection that upgrades and then says nothing: timeout, then the close.
    let (mut silent, _) = connect_async(cluster.sync_ws_url.as_str()).await.unwrap();
    let mut got = Vec::new();
    while let Some(Ok(msg)) = tokio::time::timeout(WAIT, silent.next()).await.unwrap() {
        if let Message::Binary(b) = msg {
            got.push(parse_server_message(&b).unwrap());
        }
    }
    assert!(matches!(&got[..], [ServerEvent::Error(e)] if e.code == ErrorCode::Timeout), "{got:?}");
}
