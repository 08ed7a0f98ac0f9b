//! Several account servers: the sync node links to two (`sync.account_rpc_addrs`), each with its own database
//! here (with a shared PostgreSQL they would share it). The node registers with both, so logins through either
//! point to it; a player of each plays in one room (the node asks each account server in turn for the session key);
//! a logout on the second reaches the node; and when the first is killed the second keeps serving and the game
//! loses no frame.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use movan_client::{AccountClient, ErrorCode};
use movan_protocol::server::ServerEvent;
use movan_tests::{Cluster, PASSWORD, WAIT, connect, login};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serves_players_of_two_account_servers_and_outlives_one() {
    let mut cluster = Cluster::start().await.unwrap();
    let mut second = cluster.link_second_account().await.unwrap();
    let (first, other) = (AccountClient::new(&cluster.account_url), AccountClient::new(&second.url));
    // The node registered with both: logins through either point to it.
    let mut sessions = Vec::new();
    for (account, name) in [(&first, "ma1"), (&other, "ma2")] {
        let mut session = None;
        for _ in 0..50 {
            match account.register_or_login(name, PASSWORD).await {
                Ok(s) => {
                    session = Some(s);
                    break;
                }
                Err(e) => {
                    eprintln!("{name}: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
            }
        }
        let session = session.expect("login answered with the node");
        assert_eq!(session.sync_addr, cluster.sync_addr);
        sessions.push(session);
    }
    let ready: serde_json::Value =
        reqwest::get(format!("{}/readyz", cluster.sync_health_url)).await.unwrap().json().await.unwrap();
    assert_eq!(ready["account_links"].as_array().map(Vec::len), Some(2), "{ready}");

    // One room, a player of each account server; both connections are sealed with keys from their own server.
    let mut clients = Vec::new();
    for s in &sessions {
        let c = connect(s).await;
        c.enter_room(Some("shared")).await.unwrap();
        clients.push(c);
    }
    for c in &mut clients {
        c.wait_for(|e| matches!(e, ServerEvent::RoomState(s) if s.members.len() == 2), WAIT).await.unwrap();
        c.prepare().await.unwrap();
    }
    for c in &mut clients {
        c.wait_for(|e| matches!(e, ServerEvent::GameStart(_)), WAIT).await.unwrap();
    }
    // The first account server dies mid-game: the game goes on, every frame arrives, the second keeps serving.
    cluster.kill_account().await.unwrap();
    let mut next = [0u64, 0];
    let until = tokio::time::Instant::now() + Duration::from_millis(1500);
    while tokio::time::Instant::now() < until {
        for (i, c) in clients.iter_mut().enumerate() {
            if let Ok(Some(ServerEvent::Frame(f))) = c.next_event_timeout(Duration::from_millis(20)).await {
                assert_eq!(f.frame_count, next[i], "player {i}: frames in order, none lost");
                next[i] += 1;
            }
        }
    }
    assert!(next.iter().all(|n| *n > 10), "{next:?}");
    let again = login(&other, "ma3").await;
    let mut late = connect(&again).await;
    late.ping().await.unwrap();
    late.wait_for(|e| matches!(e, ServerEvent::Pong(_)), WAIT).await.unwrap();

    // A logout on the second account server reaches the node.
    other.logout(&sessions[1].token).await.unwrap();
    let events = clients[1].wait_closed(WAIT).await.unwrap();
    assert!(
        events.iter().any(|e| matches!(e, ServerEvent::Error(b) if b.code == ErrorCode::SessionRevoked)),
        "{events:?}"
    );
    second.kill().await.unwrap();
}
