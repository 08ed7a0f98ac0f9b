//! End-to-end: players whose network drops mid-game. A TCP proxy between one player and the real sync server cuts
//! the connection and refuses new ones for a while; the player's `GameClient` reconnects on its own.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use movan_client::{FrameLog, GameClient, GameEvent, ReconnectPolicy, SyncClient};
use movan_protocol::ErrorCode;
use movan_protocol::server::{Frame, ServerEvent};
use movan_tests::{Cluster, Options, TcpCutter as Proxy};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);

/// Player A connects directly; player B through a proxy, with a `GameClient`. Both are in `room`, the game started.
async fn start(cluster: &Cluster, room: &str) -> (SyncClient, GameClient, Proxy) {
    let a = cluster.login(&format!("{room}-a")).await;
    let mut b = cluster.login(&format!("{room}-b")).await;
    let proxy = Proxy::start(b.sync_addr.clone()).await;
    b.sync_addr = proxy.addr.clone();
    let mut a = SyncClient::connect_session(&a).await.unwrap();
    let mut b = GameClient::connect(b).await.unwrap();
    a.enter_room(Some(room)).await.unwrap();
    a.wait_for(|e| matches!(e, ServerEvent::RoomState(_)), WAIT).await.unwrap();
    b.enter_room(Some(room)).await.unwrap();
    a.wait_for(|e| matches!(e, ServerEvent::RoomState(s) if s.members.len() == 2), WAIT).await.unwrap();
    a.prepare().await.unwrap();
    b.prepare().await.unwrap();
    a.wait_for(|e| matches!(e, ServerEvent::GameStart(_)), WAIT).await.unwrap();
    loop {
        match tokio::time::timeout(WAIT, b.next_event()).await.unwrap().unwrap() {
            GameEvent::Server(ServerEvent::GameStart(_)) => break,
            GameEvent::Server(ServerEvent::Error(e)) => panic!("{e:?}"),
            _ => {}
        }
    }
    (a, b, proxy)
}

/// B's events until it has delivered frames up to `until` (exclusive): the frames, and the other events.
async fn play_b(b: &mut GameClient, until: u64) -> (Vec<Frame>, Vec<GameEvent>) {
    let mut frames = Vec::new();
    let mut other = Vec::new();
    while b.next_frame() < until {
        match tokio::time::timeout(WAIT, b.next_event()).await.expect("B stalled") {
            Some(GameEvent::Frame(f)) => {
                // Every 4th frame, B acts; while disconnected the send fails, and that action is simply lost.
                if f.frame_count % 4 == 0 {
                    let _ = b.send_action(&json!({"b": f.frame_count})).await;
                }
                frames.push(f);
            }
            Some(ev) => other.push(ev),
            None => panic!("B ended: {:?}", b.close_reason()),
        }
    }
    (frames, other)
}

/// A's frames, in a log that refuses gaps and changed copies, until `until` (exclusive); A acts every 3rd frame.
/// Returns the room states A saw.
async fn play_a(a: &mut SyncClient, log: &mut FrameLog, until: u64) -> Vec<Vec<(String, bool)>> {
    let mut states = Vec::new();
    while log.next_frame() < until {
        match a.next_event_timeout(WAIT).await.unwrap() {
            Some(ServerEvent::Frame(f)) => {
                if f.frame_count % 3 == 0 {
                    a.send_action(&json!({"a": f.frame_count})).await.unwrap();
                }
                log.push(f).unwrap();
            }
            Some(ServerEvent::RoomState(s)) => {
                states.push(s.members.iter().map(|m| (m.uid.clone(), m.connected)).collect());
            }
            Some(ServerEvent::Error(e)) => panic!("A got {e:?}"),
            Some(_) => {}
            None => panic!("A's connection closed"),
        }
    }
    states
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_player_reconnects_and_gets_every_frame_exactly_once() {
    let cluster = Cluster::start().await.unwrap();
    let (mut a, mut b, proxy) = start(&cluster, "drop").await;
    let b_uid = b.session().uid.clone();
    let mut a_log = FrameLog::new();
    let b_task = tokio::spawn(async move {
        let (mut frames, mut events) = play_b(&mut b, 20).await;
        proxy.outage(Duration::from_millis(1500)).await;
        let (more, more_events) = play_b(&mut b, 100).await;
        frames.extend(more);
        events.extend(more_events);
        (frames, events, b)
    });
    let states = play_a(&mut a, &mut a_log, 110).await;
    let (b_frames, b_events, b) = b_task.await.unwrap();

    // B's frames: 0..100, consecutive, each byte-identical to A's copy.
    assert_eq!(b_frames.iter().map(|f| f.frame_count).collect::<Vec<_>>(), (0..100).collect::<Vec<_>>());
    for f in &b_frames {
        assert_eq!(f, &a_log.frames()[f.frame_count as usize], "frame {} differs", f.frame_count);
    }
    // B reconnected (after at least one refused attempt) and reloaded what it missed.
    let reconnecting = b_events.iter().filter(|e| matches!(e, GameEvent::Reconnecting { .. })).count();
    assert!(reconnecting >= 2, "the outage refuses attempts: {b_events:?}");
    let reloaded: Vec<usize> = b_events
        .iter()
        .filter_map(|e| match e {
            GameEvent::Reconnected { reloaded } => Some(*reloaded),
            _ => None,
        })
        .collect();
    assert_eq!(reloaded.len(), 1, "{b_events:?}");
    assert!(reloaded[0] >= 20, "1.5 s of frames at 20 Hz were missed and reloaded: {reloaded:?}");
    assert!(b.game().is_some(), "still in the same game");
    // A saw B drop (seat kept) and come back.
    let b_seen: Vec<bool> =
        states.iter().filter_map(|s| s.iter().find(|(uid, _)| *uid == b_uid).map(|(_, c)| *c)).collect();
    assert_eq!(b_seen, vec![false, true], "{states:?}");
    // B's actions sent while connected reached the game, once each.
    let b_actions: Vec<u64> = a_log
        .frames()
        .iter()
        .flat_map(|f| f.actions.iter())
        .filter(|x| x.uid == b_uid)
        .map(|x| serde_json::from_str::<serde_json::Value>(x.action_data.get()).unwrap()["b"].as_u64().unwrap())
        .collect();
    let mut unique = b_actions.clone();
    unique.dedup();
    assert_eq!(unique, b_actions, "no action twice");
    assert!(b_actions.len() >= 15, "{b_actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_grace_period_the_seat_is_gone() {
    let cluster = Cluster::start_with(Options { sync: vec!["reconnect_grace_secs = 1".into()], ..Options::default() })
        .await
        .unwrap();
    let (mut a, mut b, proxy) = start(&cluster, "gone").await;
    let b_uid = b.session().uid.clone();
    play_b(&mut b, 5).await;
    proxy.outage(Duration::from_millis(2500)).await;
    // A sees B drop, then leave when its grace runs out; A's game goes on alone.
    let mut log = FrameLog::new();
    let states = play_a(&mut a, &mut log, 60).await;
    let b_in: Vec<Option<bool>> =
        states.iter().map(|s| s.iter().find(|(uid, _)| *uid == b_uid).map(|(_, c)| *c)).collect();
    assert_eq!(b_in, vec![Some(false), None], "{states:?}");
    // B comes back too late: connected, but no longer in the game.
    let mut events = Vec::new();
    let not_in_room =
        |e: &GameEvent| matches!(e, GameEvent::Server(ServerEvent::Error(x)) if x.code == ErrorCode::NotInRoom);
    while !events.iter().any(not_in_room) {
        let ev = tokio::time::timeout(WAIT, b.next_event()).await.unwrap().unwrap();
        events.push(ev);
    }
    assert!(b.game().is_none(), "the client knows its game is gone");
    assert!(events.iter().any(|e| matches!(e, GameEvent::Reconnected { reloaded: 0 })), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_past_the_history_bound_says_history_expired() {
    let cluster =
        Cluster::start_with(Options { sync: vec!["history_secs = 1".into()], ..Options::default() }).await.unwrap();
    let (mut a, mut b, proxy) = start(&cluster, "expired").await;
    play_b(&mut b, 5).await;
    proxy.outage(Duration::from_millis(2500)).await;
    let mut log = FrameLog::new();
    play_a(&mut a, &mut log, 30).await;
    // Only the last second of frames is kept: B's reload from frame 5 gets an explicit error, not a partial answer.
    let mut saw_expired = false;
    while !saw_expired {
        match tokio::time::timeout(WAIT, b.next_event()).await.unwrap().unwrap() {
            GameEvent::Server(ServerEvent::Error(e)) if e.code == ErrorCode::HistoryExpired => {
                assert_eq!(e.proto.as_deref(), Some("sync_request_reload_frames"));
                saw_expired = true;
            }
            GameEvent::Frame(f) => panic!("no frame may be delivered after a gap: got {}", f.frame_count),
            _ => {}
        }
    }
    // A's own reload from frame 0 is refused the same way.
    let err = a.reload(0, WAIT).await.unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::HistoryExpired));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_can_be_turned_off_and_a_replaced_client_does_not_come_back() {
    let cluster = Cluster::start().await.unwrap();
    let s = cluster.login("noreconnect").await;
    let mut direct = s.clone();
    let proxy = Proxy::start(s.sync_addr.clone()).await;
    direct.sync_addr = proxy.addr.clone();
    let mut off = GameClient::connect_with(direct, ReconnectPolicy::disabled()).await.unwrap();
    proxy.outage(Duration::from_millis(100)).await;
    assert!(tokio::time::timeout(WAIT, off.next_event()).await.unwrap().is_none(), "ends at the first drop");

    // A second connection of the same player replaces the first; the replaced GameClient must not fight back.
    let mut first = GameClient::connect(s.clone()).await.unwrap();
    let _second = SyncClient::connect_session(&s).await.unwrap();
    let mut events = Vec::new();
    while let Some(ev) = tokio::time::timeout(WAIT, first.next_event()).await.unwrap() {
        events.push(ev);
    }
    assert!(
        events.iter().any(|e| matches!(e, GameEvent::Server(ServerEvent::Error(x)) if x.code == ErrorCode::Replaced)),
        "{events:?}"
    );
    assert!(!events.iter().any(|e| matches!(e, GameEvent::Reconnecting { .. })), "{events:?}");
    assert_eq!(first.close_reason().and_then(|e| e.server_code()), Some(ErrorCode::Replaced));
}
