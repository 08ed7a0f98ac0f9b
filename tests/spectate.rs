//! End-to-end spectating: real binaries, two encrypted players and a spectator (`GameClient`) that joins mid-game
//! with `sync.spectator_delay_frames = 5`. The spectator gets every frame from 0, the same bytes as the players,
//! then `game_over`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use movan_client::{ErrorCode, GameClient, GameEvent, SyncClient};
use movan_protocol::server::ServerEvent;
use movan_tests::{Cluster, Options, TcpCutter, WAIT, start_game};
use serde_json::json;

/// Reads until `frames` frames arrived (from 0; the other player acts), then leaves; returns the raw frames.
async fn play(mut client: SyncClient, frames: u64) -> Vec<String> {
    let mut got = Vec::new();
    while (got.len() as u64) < frames {
        match client.next_event_timeout(WAIT).await.unwrap() {
            Some(ServerEvent::Frame(f)) => {
                assert_eq!(f.frame_count, got.len() as u64);
                got.push(f.raw.get().to_owned());
            }
            Some(ServerEvent::Error(e)) => panic!("{}: {e:?}", client.uid()),
            Some(_) => {}
            None => panic!("closed"),
        }
    }
    client.leave(WAIT).await.unwrap();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spectator_sees_every_frame_byte_identical_behind_its_delay() {
    let cluster = Cluster::start_with(Options {
        sync: vec!["spectator_delay_frames = 5".into(), "tick_interval_ms = 20".into()],
        ..Options::default()
    })
    .await
    .unwrap();
    let (_, mut players, _, _) = start_game(&cluster, "arena", &["pl1", "pl2"]).await;
    // Let the game run a while before the spectator comes.
    players[0].wait_for(|e| matches!(e, ServerEvent::Frame(f) if f.frame_count == 15), WAIT).await.unwrap();
    let watcher = cluster.login("watcher").await;
    let mut spectator = GameClient::connect(watcher).await.unwrap();
    spectator.spectate("arena").await.unwrap();
    // The players' own streams, from frame 0: the first player's was partly consumed above, so use the second's.
    let p2 = players.pop().unwrap();
    let p1 = players.pop().unwrap();
    let a = tokio::spawn(play(p2, 60));
    let b = tokio::spawn(async move {
        let mut p1 = p1;
        // Keep the first player acting too, from where it is.
        loop {
            match p1.next_event_timeout(WAIT).await.unwrap() {
                Some(ServerEvent::Frame(f)) if f.frame_count >= 59 => break,
                Some(ServerEvent::Frame(f)) => p1.send_action(&json!({"m": f.frame_count})).await.unwrap(),
                Some(_) => {}
                None => panic!("closed"),
            }
        }
        p1.leave(WAIT).await.unwrap();
    });
    let mut seen = Vec::new();
    let mut spectators_counted = false;
    let mut started = false;
    loop {
        match tokio::time::timeout(WAIT, spectator.next_event()).await.unwrap() {
            Some(GameEvent::Frame(f)) => seen.push(f.raw.get().to_owned()),
            Some(GameEvent::Server(ServerEvent::GameStart(_))) => started = true,
            Some(GameEvent::Server(ServerEvent::RoomState(s))) => spectators_counted |= s.spectators == 1,
            Some(GameEvent::Server(ServerEvent::GameOver(_))) => break,
            Some(GameEvent::Server(ServerEvent::Error(e))) => panic!("spectator: {e:?}"),
            Some(_) => {}
            None => panic!("spectator closed: {:?}", spectator.close_reason()),
        }
    }
    let played = a.await.unwrap();
    b.await.unwrap();
    assert!(started, "the spectator got game_start");
    assert!(spectators_counted, "room_state counts the spectator");
    assert!(seen.len() >= played.len(), "{} frames seen, {} played", seen.len(), played.len());
    assert_eq!(seen[..played.len()], played[..], "byte-identical, in order, from frame 0");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spectator_whose_network_drops_watches_again_and_misses_nothing() {
    let cluster = Cluster::start_with(Options { sync: vec!["tick_interval_ms = 20".into()], ..Options::default() })
        .await
        .unwrap();
    let (_, mut players, _, _) = start_game(&cluster, "stage", &["st1", "st2"]).await;
    let mut watcher = cluster.login("watcher2").await;
    let proxy = TcpCutter::start(watcher.sync_addr.clone()).await;
    watcher.sync_addr = proxy.addr.clone();
    let mut spectator = GameClient::connect(watcher).await.unwrap();
    spectator.spectate("stage").await.unwrap();
    let p2 = players.pop().unwrap();
    let p1 = players.pop().unwrap();
    let a = tokio::spawn(play(p1, 100));
    let b = tokio::spawn(play(p2, 100));
    let (mut seen, mut reconnected) = (Vec::new(), false);
    loop {
        match tokio::time::timeout(WAIT, spectator.next_event()).await.unwrap() {
            Some(GameEvent::Frame(f)) => {
                assert_eq!(f.frame_count, seen.len() as u64, "each frame once, in order");
                seen.push(f.raw.get().to_owned());
                if seen.len() == 20 {
                    proxy.outage(Duration::from_millis(300)).await;
                }
            }
            Some(GameEvent::Reconnected { .. }) => reconnected = true,
            Some(GameEvent::Server(ServerEvent::GameOver(_))) => break,
            Some(GameEvent::Server(ServerEvent::Error(e))) => panic!("spectator: {e:?}"),
            Some(_) => {}
            None => panic!("spectator closed: {:?}", spectator.close_reason()),
        }
    }
    let played = a.await.unwrap();
    b.await.unwrap();
    assert!(reconnected, "the connection was cut and came back");
    assert_eq!(seen[..played.len()], played[..], "every frame, byte for byte, across the cut");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spectator_forgets_a_room_that_is_gone() {
    let cluster = Cluster::start().await.unwrap();
    let mut spectator = GameClient::connect(cluster.login("watcher3").await).await.unwrap();
    spectator.spectate("nowhere").await.unwrap();
    assert_eq!(spectator.watching().as_deref(), Some("nowhere"));
    loop {
        match tokio::time::timeout(WAIT, spectator.next_event()).await.unwrap() {
            Some(GameEvent::Server(ServerEvent::Error(e))) => {
                assert_eq!(e.code, ErrorCode::RoomNotFound);
                break;
            }
            Some(_) => {}
            None => panic!("spectator closed: {:?}", spectator.close_reason()),
        }
    }
    assert_eq!(spectator.watching(), None, "nothing to watch again after a reconnect");
}
