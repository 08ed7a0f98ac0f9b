//! The sync client's requests, events and reloads, against a fake server (plaintext and, where marked, sealed).
#![allow(clippy::unwrap_used)]

use super::test_server::{T, established, pair, unauthenticated_pair};
use super::*;
use bytes::Bytes;
use movan_protocol::ErrorCode;
use movan_protocol::server::{ErrorBody, Pong, ServerMessage, encode_frame, encode_reload_chunk};

fn frame_wire(n: u64) -> Bytes {
    encode_frame(n, &[]).wire()
}

#[tokio::test]
async fn token_goes_on_the_first_message_only() {
    let (client, mut server) = unauthenticated_pair(None).await;
    client.ping().await.unwrap();
    client.enter_room(Some("r-1")).await.unwrap();
    client.prepare().await.unwrap();

    let first = server.recv_json().await;
    assert_eq!(first["uid"], "1001");
    assert_eq!(first["token"], "jwt");
    assert_eq!(first["extra_data"]["proto"], "ping");
    assert!(first["extra_data"]["timestamp"].as_f64().unwrap() > 1.0e9);

    let second = server.recv_json().await;
    assert!(second.get("token").is_none(), "{second}");
    assert_eq!(second["extra_data"]["proto"], "room_enter");
    assert_eq!(second["extra_data"]["data"], serde_json::json!({"room_id": "r-1"}));

    let third = server.recv_json().await;
    assert!(third.get("token").is_none());
    assert_eq!(third["extra_data"]["proto"], "room_prepare");
    assert!(third["extra_data"].get("data").is_none());
}

#[tokio::test]
async fn raw_bodies_do_not_use_up_the_token() {
    let (client, mut server) = unauthenticated_pair(None).await;
    client.send_raw_body(b"{not json").await.unwrap();
    client.enter_room(None).await.unwrap();
    assert_eq!(&server.recv_body().await[..], b"{not json");
    let enter = server.recv_json().await;
    assert_eq!(enter["token"], "jwt");
    assert_eq!(enter["extra_data"]["proto"], "room_enter");
    assert!(enter["extra_data"].get("data").is_none(), "quick match sends no data");
}

#[tokio::test]
async fn actions_and_reload_requests_have_the_documented_shape() {
    for sealed in [false, true] {
        let (client, mut server) = established(sealed).await;
        client.send_action_at(&serde_json::json!({"move": [1, 0]}), 12.5).await.unwrap();
        client.send_action(&serde_json::json!({"fire": true})).await.unwrap();
        client.request_reload(42).await.unwrap();

        let a = server.recv_json().await;
        assert!(a.get("token").is_none(), "the connect ping carried it: {a}");
        assert_eq!(
            a["extra_data"],
            serde_json::json!({"proto": "sync_action", "timestamp": 12.5, "action_data": {"move": [1, 0]}})
        );
        let b = server.recv_json().await;
        assert!((b["extra_data"]["timestamp"].as_f64().unwrap() - unix_now()).abs() < 60.0);
        assert!(b["extra_data"].get("data").is_none());
        let r = server.recv_json().await;
        assert_eq!(r["extra_data"]["proto"], "sync_request_reload_frames");
        assert_eq!(r["extra_data"]["data"], serde_json::json!({"start_frame": 42}));
    }
}

#[tokio::test]
async fn raw_bytes_are_written_unframed() {
    let (client, mut server) = pair().await;
    // A frame assembled by hand, in two writes.
    client.send_raw_bytes(&[0, 0, 0, 2]).await.unwrap();
    client.send_raw_bytes(b"{}").await.unwrap();
    assert_eq!(server.recv_json().await, serde_json::json!({}));
}

#[tokio::test]
async fn frames_split_and_coalesced_on_the_wire_are_decoded() {
    for sealed in [false, true] {
        let (mut client, mut server) = established(sealed).await;
        let pong = ServerMessage::Pong(Pong { timestamp: Some(1.5), server_time: 2.0 }).to_wire();
        // Two messages in one write, then one byte at a time.
        let mut both = frame_wire(0).to_vec();
        both.extend_from_slice(&frame_wire(1));
        server.send(&both).await;
        for b in server.wire(&pong) {
            server.send_raw(&[b]).await;
        }
        for want in 0..2 {
            match client.next_event_timeout(T).await.unwrap() {
                Some(ServerEvent::Frame(f)) => assert_eq!(f.frame_count, want),
                other => panic!("{other:?}"),
            }
        }
        match client.next_event_timeout(T).await.unwrap() {
            Some(ServerEvent::Pong(p)) => assert_eq!(p.timestamp, Some(1.5)),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn reload_collects_chunks_and_keeps_live_frames_queued() {
    for sealed in [false, true] {
        let (mut client, mut server) = established(sealed).await;
        let frames: Vec<Bytes> = (0..6).map(|n| encode_frame(n, &[]).frame).collect();
        let serve = async {
            let req = server.recv_json().await;
            assert_eq!(req["extra_data"]["data"]["start_frame"], 0);
            server.send(&frame_bytes(&encode_reload_chunk(0, 6, false, &frames[..3]))).await;
            server.send(&frame_wire(6)).await;
            server.send(&frame_bytes(&encode_reload_chunk(3, 6, true, &frames[3..]))).await;
            server.send(&frame_wire(7)).await;
        };
        let (got, ()) = tokio::join!(client.reload(0, T), serve);
        let got = got.unwrap();
        let numbers: Vec<u64> = got.iter().map(|f| f.frame_count).collect();
        assert_eq!(numbers, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(got[4].raw.get().as_bytes(), &frames[4][..]);

        let mut log = crate::FrameLog::new();
        for f in got {
            log.push(f).unwrap();
        }
        for want in [6, 7] {
            match client.next_event_timeout(T).await.unwrap() {
                Some(ServerEvent::Frame(f)) => {
                    assert_eq!(f.frame_count, want);
                    log.push(f).unwrap();
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(log.next_frame(), 8);
    }
}

#[tokio::test]
async fn an_empty_reload_is_one_last_chunk() {
    let (mut client, mut server) = pair().await;
    let serve = async {
        server.recv_json().await;
        server.send(&frame_bytes(&encode_reload_chunk(9, 9, true, &[]))).await;
    };
    let (got, ()) = tokio::join!(client.reload(9, T), serve);
    assert!(got.unwrap().is_empty());
}

#[tokio::test]
async fn reload_errors_and_out_of_order_chunks_fail() {
    let (mut client, mut server) = pair().await;
    let unrelated = ServerMessage::Error(ErrorBody {
        code: ErrorCode::LimitExceeded,
        message: "slow down".into(),
        proto: Some("sync_action".into()),
    });
    let expired = ServerMessage::Error(ErrorBody {
        code: ErrorCode::HistoryExpired,
        message: "too old".into(),
        proto: Some(RELOAD_PROTO.into()),
    });
    let serve = async {
        server.recv_json().await;
        server.send(&unrelated.to_wire()).await;
        server.send(&expired.to_wire()).await;
    };
    let (got, ()) = tokio::join!(client.reload(0, T), serve);
    let err = got.unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::HistoryExpired), "{err}");
    // The error about another request stays queued.
    match client.next_event_timeout(T).await.unwrap() {
        Some(ServerEvent::Error(e)) => assert_eq!(e.code, ErrorCode::LimitExceeded),
        other => panic!("{other:?}"),
    }

    let serve = async {
        server.recv_json().await;
        let frames = [encode_frame(1, &[]).frame];
        server.send(&frame_bytes(&encode_reload_chunk(0, 2, true, &frames))).await;
    };
    let (got, ()) = tokio::join!(client.reload(0, T), serve);
    assert!(matches!(got, Err(ClientError::Protocol(_))), "{got:?}");
}

#[tokio::test]
async fn split_halves_work_from_separate_tasks() {
    for sealed in [false, true] {
        let (client, mut server) = established(sealed).await;
        let (sender, mut events) = client.split();
        let s2 = sender.clone();
        let sending = tokio::spawn(async move {
            for seq in 0..3 {
                s2.send_action(&serde_json::json!({ "seq": seq })).await.unwrap();
            }
        });
        for seq in 0..3 {
            let msg = server.recv_json().await;
            assert_eq!(msg["extra_data"]["action_data"]["seq"], seq);
            assert!(msg.get("token").is_none(), "the connect ping carried it");
            server.send(&frame_wire(seq)).await;
        }
        sending.await.unwrap();
        for seq in 0..3 {
            let ev = events.wait_for(|e| matches!(e, ServerEvent::Frame(_)), T).await.unwrap();
            assert!(matches!(ev, ServerEvent::Frame(f) if f.frame_count == seq));
        }
        assert_eq!(sender.uid(), "1001");
    }
}

#[tokio::test]
async fn close_is_detected_after_queued_events() {
    let (mut client, mut server) = pair().await;
    server.send(&frame_wire(0)).await;
    drop(server);
    let seen = client.wait_closed(T).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert!(client.next_event().await.is_none());
    assert!(client.events().is_closed());
    assert!(client.events().close_reason().is_none(), "a clean close has no error");
    let err = client.wait_for(|_| true, T).await.unwrap_err();
    assert!(matches!(err, ClientError::Closed), "{err}");
}

#[tokio::test]
async fn a_malformed_server_message_ends_the_stream_with_a_reason() {
    let (mut client, mut server) = pair().await;
    server.send(&frame_bytes(br#"{"proto":"mystery","data":{}}"#)).await;
    server.send(&frame_bytes(b"not json")).await;
    assert!(client.next_event_timeout(T).await.unwrap().is_none());
    assert!(matches!(client.events().close_reason(), Some(ClientError::Parse(_))));
}

#[tokio::test]
async fn timeouts_are_reported() {
    let (mut client, _server) = pair().await;
    let short = Duration::from_millis(20);
    assert!(client.next_event_timeout(short).await.is_err());
    assert!(matches!(client.wait_for(|_| true, short).await, Err(ClientError::Timeout)));
    assert!(matches!(client.wait_closed(short).await, Err(ClientError::Timeout)));
    assert!(matches!(client.reload(0, short).await, Err(ClientError::Timeout)));
}

#[tokio::test]
async fn shutdown_ends_the_servers_stream() {
    let (client, mut server) = pair().await;
    client.shutdown().await.unwrap();
    assert!(server.recv_end().await);
}

#[tokio::test]
async fn dropping_every_sender_ends_the_servers_stream() {
    for sealed in [false, true] {
        let (client, mut server) = established(sealed).await;
        let (sender, _events) = client.split();
        drop(sender);
        assert!(server.recv_end().await, "the reader task does not keep the socket open");
    }
}

#[tokio::test]
async fn leave_waits_for_room_left_and_keeps_the_frames_before_it() {
    use movan_protocol::server::RoomLeft;
    let (mut client, mut server) = established(false).await;
    let serve = async {
        let req = server.recv_json().await;
        assert_eq!(req["extra_data"]["proto"], "room_leave");
        server.send(&frame_wire(4)).await;
        server.send(&ServerMessage::RoomLeft(RoomLeft::asked("r-1")).to_wire()).await;
        let req = server.recv_json().await;
        assert_eq!(req["extra_data"]["proto"], "room_leave");
        let e =
            ErrorBody { code: ErrorCode::NotInRoom, message: "not in a room".into(), proto: Some("room_leave".into()) };
        server.send(&ServerMessage::Error(e).to_wire()).await;
    };
    let left = async {
        let first = client.leave(T).await.unwrap();
        let second = client.leave(T).await.unwrap();
        (first, second)
    };
    let ((first, second), ()) = tokio::join!(left, serve);
    assert_eq!(first.unwrap().room_id, "r-1");
    assert!(second.is_none(), "not_in_room: nothing to leave");
    match client.next_event_timeout(T).await.unwrap() {
        Some(ServerEvent::Frame(f)) => assert_eq!(f.frame_count, 4, "the frame before room_left is kept"),
        other => panic!("{other:?}"),
    }
}
