//! The connection sequence and encrypted sessions, against a fake server that seals like the real one.
#![allow(clippy::unwrap_used)]

use movan_protocol::ErrorCode;
use movan_protocol::codec::LENGTH_PREFIX;
use movan_protocol::crypto::{self, TAG_LEN};
use movan_protocol::server::{encode_frame, encode_reload_chunk};

use super::test_server::{
    FakeServer, SALT, T, accept_fake, error_wire, established, listen, pong, test_key, unauthenticated_pair,
};
use super::*;

/// A `room_state` for an empty room `r`, in wire form.
fn room_state_wire() -> Bytes {
    let body =
        br#"{"proto":"room_state","data":{"room_id":"r","capacity":2,"min_players":2,"status":"waiting","members":[]}}"#;
    frame_bytes(body)
}

/// Connects with `key` while `serve` plays the server; returns the connect result and the server end.
async fn connect_against<F, Fut>(key: Option<SessionKey>, serve: F) -> (Result<SyncClient, ClientError>, FakeServer)
where
    F: FnOnce(FakeServer) -> Fut,
    Fut: Future<Output = FakeServer>,
{
    let (listener, addr) = listen().await;
    let serve = async { serve(accept_fake(&listener).await).await };
    tokio::join!(SyncClient::connect_with(&addr, "1001", "jwt", key), serve)
}

#[tokio::test]
async fn a_sealed_session_round_trips_requests_frames_and_reloads() {
    let (got, mut server) = connect_against(Some(test_key()), |mut server| async move {
        let ping = server.recv_json().await;
        assert_eq!((ping["token"].as_str(), ping["extra_data"]["proto"].as_str()), (Some("jwt"), Some("ping")));
        server.handshake(true).await;
        // The client proves it holds the key with a sealed ping (client→server counter 0); the token is used up.
        let proof = server.recv_json().await;
        assert_eq!(proof["extra_data"]["proto"], "ping", "{proof}");
        assert!(proof.get("token").is_none(), "{proof}");
        // Rejoining a room: the server pushes the room before answering the pings.
        server.send(&room_state_wire()).await;
        server.send(&pong()).await;
        server.send(&pong()).await;
        server
    })
    .await;
    let mut client = got.unwrap();
    assert_eq!(client.encryption(), Encryption::Sealed);
    match client.next_event_timeout(T).await.unwrap() {
        Some(ServerEvent::RoomState(s)) => assert_eq!(s.room_id, "r"),
        other => panic!("the event before the connect pong stays queued: {other:?}"),
    }

    // Client → server: sealed on the wire, counter 1 first (0 was the proof ping).
    client.enter_room(Some("r")).await.unwrap();
    let (raw, opened) = server.recv_frame().await;
    assert!(!raw.windows(10).any(|w| w == b"room_enter"), "sealed on the wire");
    assert_eq!(opener_plain_at(&raw, 1), opened.unwrap(), "client→server counter 1, after the proof ping");
    let enter: Value = serde_json::from_slice(&opener_plain_at(&raw, 1)).unwrap();
    assert_eq!(enter["extra_data"]["proto"], "room_enter");
    assert!(enter.get("token").is_none());

    // Server → client: live frames and a reload, all sealed.
    let frames: Vec<Bytes> = (0..4).map(|n| encode_frame(n, &[]).frame).collect();
    server.send(&encode_frame(0, &[]).wire()).await;
    assert!(matches!(client.next_event_timeout(T).await.unwrap(), Some(ServerEvent::Frame(f)) if f.frame_count == 0));
    let serve = async {
        assert_eq!(server.recv_json().await["extra_data"]["data"]["start_frame"], 0);
        server.send(&frame_bytes(&encode_reload_chunk(0, 4, false, &frames[..2]))).await;
        server.send(&encode_frame(4, &[]).wire()).await;
        server.send(&frame_bytes(&encode_reload_chunk(2, 4, true, &frames[2..]))).await;
    };
    let (reloaded, ()) = tokio::join!(client.reload(0, T), serve);
    let numbers: Vec<u64> = reloaded.unwrap().iter().map(|f| f.frame_count).collect();
    assert_eq!(numbers, vec![0, 1, 2, 3]);
    assert!(matches!(client.next_event_timeout(T).await.unwrap(), Some(ServerEvent::Frame(f)) if f.frame_count == 4));
}

#[tokio::test]
async fn the_server_opens_every_request_in_order() {
    let (client, mut server) = established(true).await;
    client.ping().await.unwrap();
    client.send_raw_body(b"{raw json, sealed}").await.unwrap();
    client.prepare().await.unwrap();
    assert_eq!(server.recv_json().await["extra_data"]["proto"], "ping");
    assert_eq!(&server.recv_body().await[..], b"{raw json, sealed}");
    assert_eq!(server.recv_json().await["extra_data"]["proto"], "room_prepare");
}

#[tokio::test]
async fn a_plaintext_handshake_keeps_the_connection_plaintext() {
    for key in [None, Some(test_key())] {
        let (listener, addr) = listen().await;
        let serve = async {
            let mut server = accept_fake(&listener).await;
            server.accept(false).await;
            server
        };
        let (client, mut server) = tokio::join!(SyncClient::connect_with(&addr, "1001", "jwt", key), serve);
        let client = client.unwrap();
        assert_eq!(client.encryption(), Encryption::Plaintext);
        client.send_raw_body(b"plain").await.unwrap();
        let (raw, opened) = server.recv_frame().await;
        assert_eq!((&raw[..], &opened.unwrap()[..]), (&b"plain"[..], &b"plain"[..]));
    }
}

#[tokio::test]
async fn a_refused_token_fails_the_connect_with_the_servers_error() {
    let (got, mut server) = connect_against(Some(test_key()), |mut server| async move {
        server.recv_json().await;
        server.send_raw(&error_wire("bad_token")).await;
        server
    })
    .await;
    match got {
        Err(ClientError::Server { code, proto, .. }) => {
            assert_eq!((code, proto.as_deref()), (ErrorCode::BadToken, Some("ping")));
        }
        other => panic!("{other:?}"),
    }
    assert!(server.recv_end().await, "the failed client is dropped");
}

#[tokio::test]
async fn an_error_after_the_handshake_fails_the_connect() {
    // A revoked session is refused once the sealed proof ping binds the connection, so the error is sealed.
    let (got, _server) = connect_against(Some(test_key()), |mut server| async move {
        server.recv_json().await;
        server.handshake(true).await;
        assert_eq!(server.recv_json().await["extra_data"]["proto"], "ping", "the sealed proof");
        server.send(&error_wire("session_revoked")).await;
        server
    })
    .await;
    assert_eq!(got.unwrap_err().server_code(), Some(ErrorCode::SessionRevoked));
}

#[tokio::test]
async fn a_sealed_handshake_without_a_key_fails() {
    let (got, mut server) = connect_against(None, |mut server| async move {
        server.recv_json().await;
        server.handshake(true).await;
        server
    })
    .await;
    match got {
        Err(ClientError::Crypto(reason)) => assert!(reason.contains("no session_key"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(server.recv_end().await);
}

#[tokio::test]
async fn bad_or_missing_handshakes_fail() {
    let unknown_cipher = frame_bytes(br#"{"proto":"handshake","data":{"salt":null,"cipher":"rot13"}}"#);
    let short_salt = frame_bytes(br#"{"proto":"handshake","data":{"salt":"AAAA","cipher":"chacha20poly1305"}}"#);
    // A server from before encrypted sessions answers the ping directly.
    let cases = [(unknown_cipher, "rot13"), (short_salt, "salt"), (pong(), "expected the server's handshake")];
    for (first, want) in cases {
        let (got, _server) = connect_against(Some(test_key()), |mut server| async move {
            server.recv_json().await;
            server.send_raw(&first).await;
            server
        })
        .await;
        match got {
            Err(ClientError::Crypto(reason)) => assert!(reason.contains(want), "{reason}"),
            other => panic!("{want}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_tampered_frame_from_the_server_closes_the_connection() {
    let (mut client, mut server) = established(true).await;
    let mut wire = server.wire(&encode_frame(0, &[]).wire());
    wire[LENGTH_PREFIX + 3] ^= 1;
    server.send_raw(&wire).await;
    assert!(client.next_event_timeout(T).await.unwrap().is_none());
    match client.events().close_reason() {
        Some(ClientError::Crypto(reason)) => {
            assert!(reason.contains("server frame 2") && reason.contains("authentication"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(server.recv_end().await, "the client closed the connection");
    assert!(matches!(client.ping().await, Err(ClientError::Closed)));
    assert!(matches!(client.send_raw_bytes(b"x").await, Err(ClientError::Closed)));
}

#[tokio::test]
async fn replayed_plaintext_and_short_server_frames_close_the_connection() {
    let frame = encode_frame(0, &[]).wire();
    for attack in ["replay", "plaintext", "short"] {
        let (mut client, mut server) = established(true).await;
        let sealed = server.wire(&frame);
        server.send_raw(&sealed).await;
        assert!(matches!(client.next_event_timeout(T).await.unwrap(), Some(ServerEvent::Frame(_))));
        match attack {
            "replay" => server.send_raw(&sealed).await,
            "plaintext" => server.send_raw(&frame).await,
            _ => server.send_raw(&frame_bytes(&[0; TAG_LEN - 1])).await,
        }
        assert!(client.next_event_timeout(T).await.unwrap().is_none(), "{attack}");
        assert!(matches!(client.events().close_reason(), Some(ClientError::Crypto(_))), "{attack}");
    }
}

#[tokio::test]
async fn sealed_frames_can_be_captured_and_replayed_raw() {
    let (client, mut server) = established(true).await;
    let first = client.seal_raw_body(br#"{"n":0}"#).await.unwrap();
    assert_eq!(first.len(), LENGTH_PREFIX + 7 + TAG_LEN);
    client.send_raw_bytes(&first).await.unwrap();
    client.send_raw_body(br#"{"n":1}"#).await.unwrap();
    assert_eq!(server.recv_json().await["n"], 0);
    assert_eq!(server.recv_json().await["n"], 1);
    // The same bytes again: a genuine counter-1 frame (0 was the connect's proof ping), but the server expects
    // counter 3 and refuses it.
    client.send_raw_bytes(&first).await.unwrap();
    let (again, opened) = server.recv_frame().await;
    assert_eq!(opener_plain_at(&again, 1), br#"{"n":0}"#);
    assert_eq!(opened, Err(crypto::CryptoError::Authentication));
    // A plaintext connection frames without sealing.
    let (client, _server) = established(false).await;
    assert_eq!(client.seal_raw_body(b"{}").await.unwrap(), frame_bytes(b"{}"));
}

#[tokio::test]
async fn an_unauthenticated_connection_follows_the_handshake() {
    // A refused first message: the error arrives as an event, then the close.
    let (mut client, mut server) = unauthenticated_pair(None).await;
    client.send_raw_body(b"{not json").await.unwrap();
    assert_eq!(&server.recv_body().await[..], b"{not json");
    server.send_raw(&error_wire("bad_json")).await;
    drop(server);
    let events = client.wait_closed(T).await.unwrap();
    assert!(matches!(&events[..], [ServerEvent::Error(e)] if e.code == ErrorCode::BadJson), "{events:?}");
    assert_eq!(client.encryption(), Encryption::Pending);

    // An accepted first message: the reader switches to sealing when the handshake arrives. The server answers the
    // first message only after the client's first sealed frame opened (proof of the key), so the client watches
    // `encryption()` for the handshake, sends that frame, and then gets the (sealed) reply.
    let (mut client, mut server) = unauthenticated_pair(Some(test_key())).await;
    client.ping().await.unwrap();
    assert_eq!(server.recv_json().await["extra_data"]["proto"], "ping");
    assert_eq!(client.encryption(), Encryption::Pending);
    server.handshake(true).await;
    tokio::time::timeout(T, async {
        while client.encryption() == Encryption::Pending {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(client.encryption(), Encryption::Sealed);
    client.prepare().await.unwrap();
    let (raw, opened) = server.recv_frame().await;
    assert_eq!(opener_plain_at(&raw, 0), opened.unwrap(), "the proof is client→server counter 0");
    let prepare: Value = serde_json::from_slice(&opener_plain_at(&raw, 0)).unwrap();
    assert_eq!(prepare["extra_data"]["proto"], "room_prepare");
    server.send(&pong()).await;
    assert!(matches!(client.next_event_timeout(T).await.unwrap(), Some(ServerEvent::Pong(_))));

    // Without a key, a sealed handshake closes the connection.
    let (mut client, mut server) = unauthenticated_pair(None).await;
    client.ping().await.unwrap();
    assert_eq!(server.recv_json().await["extra_data"]["proto"], "ping");
    server.handshake(true).await;
    assert!(client.next_event_timeout(T).await.unwrap().is_none());
    assert!(matches!(client.events().close_reason(), Some(ClientError::Crypto(_))));
    assert!(server.recv_end().await);
}

#[tokio::test]
async fn connect_session_uses_the_logins_key() {
    let (listener, addr) = listen().await;
    let mut session = crate::Session {
        uid: "1001".into(),
        token: "jwt".into(),
        refresh_token: "r".into(),
        expires_in: 60,
        sync_addr: addr,
        sync_ws_url: None,
        sync_udp_addr: None,
        session_key: Some(test_key().to_base64()),
    };
    let serve = async {
        let mut server = accept_fake(&listener).await;
        server.accept(true).await;
        server
    };
    let (client, mut server) = tokio::join!(SyncClient::connect_session(&session), serve);
    let client = client.unwrap();
    assert_eq!(client.encryption(), Encryption::Sealed);
    client.ping().await.unwrap();
    assert_eq!(server.recv_json().await["extra_data"]["proto"], "ping");

    session.session_key = Some("c2hvcnQ=".into());
    match SyncClient::connect_session(&session).await {
        Err(ClientError::Crypto(reason)) => assert!(reason.contains("session_key"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

/// Opens `raw` as client→server frame `counter` of the fake sealed connection.
fn opener_plain_at(raw: &[u8], counter: u64) -> Vec<u8> {
    let dir = crypto::Direction::ClientToServer;
    let (mut sealer, mut opener) =
        (crypto::Sealer::new(&test_key(), &SALT, dir), crypto::Opener::new(&test_key(), &SALT, dir));
    for _ in 0..counter {
        let filler = sealer.seal(b"{}").unwrap();
        opener.open(&filler[LENGTH_PREFIX..]).unwrap();
    }
    opener.open(raw).unwrap()
}
