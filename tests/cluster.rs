//! Several nodes on PostgreSQL (issue 18): two account servers sharing one throwaway PostgreSQL, three sync nodes
//! each linked to both. Logins through either account server go to the least loaded node; games run on two nodes.
//! The third node is killed: logins stop pointing at it within the heartbeat timeout, and the games on the others
//! lose no frame. Then one account server is killed: the other keeps serving, and its logout still reaches the nodes.
#![allow(clippy::unwrap_used)]

#[path = "../account-server/tests/common/postgres.rs"]
mod postgres;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use movan_client::{AccountClient, ErrorCode, Session, SyncClient};
use movan_protocol::server::ServerEvent;
use movan_tests::{Cluster, Options, PASSWORD, WAIT, connect, login};
use serde_json::json;

/// Logs `name` in through `account`, pointed at the node at `addr` (any node takes any session: keys come from the
/// shared database).
async fn on_node(account: &AccountClient, name: &str, addr: &str) -> (Session, SyncClient) {
    let mut session: Session = login(account, name).await;
    session.sync_addr = addr.to_owned();
    let client = connect(&session).await;
    (session, client)
}

/// Starts a 2-player game in `room` on the node at `addr`, one player logged in through each account server.
async fn game(accounts: [&AccountClient; 2], names: [&str; 2], room: &str, addr: &str) -> Vec<SyncClient> {
    let mut clients = Vec::new();
    for (account, name) in accounts.into_iter().zip(names) {
        let (_, c) = on_node(account, name, addr).await;
        c.enter_room(Some(room)).await.unwrap();
        clients.push(c);
    }
    for c in &mut clients {
        c.wait_for(|e| matches!(e, ServerEvent::RoomState(s) if s.members.len() == 2), WAIT).await.unwrap();
        c.prepare().await.unwrap();
    }
    for c in &mut clients {
        c.wait_for(|e| matches!(e, ServerEvent::GameStart(_)), WAIT).await.unwrap();
    }
    clients
}

/// Plays every client until `until`, checking each gets every frame in order (counted in `next`).
async fn play_until(clients: &mut [SyncClient], next: &mut [u64], until: Instant) {
    while Instant::now() < until {
        for (i, c) in clients.iter_mut().enumerate() {
            match c.next_event_timeout(Duration::from_millis(5)).await {
                Ok(Some(ServerEvent::Frame(f))) => {
                    assert_eq!(f.frame_count, next[i], "{}: every frame, in order", c.uid());
                    next[i] += 1;
                    if f.frame_count % 5 == 0 {
                        c.send_action(&json!({"n": f.frame_count})).await.unwrap();
                    }
                }
                Ok(Some(ServerEvent::Error(e))) => panic!("{}: {e:?}", c.uid()),
                Ok(None) => panic!("{}: closed", c.uid()),
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_account_servers_three_nodes_one_database() {
    let Some(url) = postgres::fresh_database().await else { return };
    let mut cluster = Cluster::start_with(Options {
        account: vec!["store = \"postgres\"".into(), format!("database_url = \"{url}\"")],
        sync: vec!["tick_interval_ms = 20".into()],
        ..Options::default()
    })
    .await
    .unwrap();
    let mut second = cluster.link_second_account().await.unwrap();
    let node2 = cluster.start_extra_sync("sync-2").await.unwrap();
    let mut node3 = cluster.start_extra_sync("sync-3").await.unwrap();
    let (a, b) = (AccountClient::new(&cluster.account_url), AccountClient::new(&second.url));
    let nodes: BTreeSet<String> = [cluster.sync_addr.clone(), node2.addr.clone(), node3.addr.clone()].into();

    // Every node registered with both account servers: a burst of logins through either spreads over all three
    // (each login counts on its node until the node's next heartbeat).
    for account in [&a, &b] {
        let mut seen = BTreeSet::new();
        let deadline = Instant::now() + WAIT;
        while seen.len() < 3 && Instant::now() < deadline {
            for i in 0..3 {
                if let Ok(s) = account.register_or_login(&format!("spread{i}"), PASSWORD).await {
                    assert!(nodes.contains(&s.sync_addr), "{}", s.sync_addr);
                    seen.insert(s.sync_addr);
                }
            }
        }
        assert_eq!(seen, nodes, "logins through {} reach all three nodes", account.base_url());
    }

    // A game on node 1 and one on node 2, each with a player of each account server.
    let mut g1 = game([&a, &b], ["c1a", "c1b"], "one", &cluster.sync_addr).await;
    let mut g2 = game([&a, &b], ["c2a", "c2b"], "two", &node2.addr).await;
    let (mut n1, mut n2) = (vec![0u64; 2], vec![0u64; 2]);

    // Node 3 dies: logins stop pointing at it once its heartbeats are missed; the games go on.
    node3.kill().await.unwrap();
    let killed = Instant::now();
    let moved = loop {
        play_until(&mut g1, &mut n1, Instant::now() + Duration::from_millis(20)).await;
        play_until(&mut g2, &mut n2, Instant::now() + Duration::from_millis(20)).await;
        let logins = [a.login("spread0", PASSWORD).await.unwrap(), b.login("spread1", PASSWORD).await.unwrap()];
        if logins.iter().all(|s| s.sync_addr != node3.addr) {
            // Five more rounds must agree, through both (least-loaded choice would otherwise pick node 3 again).
            let mut stays = true;
            for _ in 0..5 {
                for account in [&a, &b] {
                    stays &= account.login("spread0", PASSWORD).await.unwrap().sync_addr != node3.addr;
                }
            }
            if stays {
                break killed.elapsed();
            }
        }
        assert!(killed.elapsed() < Duration::from_secs(5), "logins still point at the dead node");
    };
    eprintln!("node 3 killed: logins moved away after {moved:?} (heartbeat timeout 3 x 200 ms)");

    // Account server 1 dies: the other keeps serving, and the games lose nothing.
    cluster.kill_account().await.unwrap();
    let fresh = b.register_or_login("after", PASSWORD).await.unwrap();
    assert!(fresh.sync_addr == cluster.sync_addr || fresh.sync_addr == node2.addr, "{}", fresh.sync_addr);
    let (late_session, mut late) = on_node(&b, "late", &node2.addr).await;
    late.ping().await.unwrap();
    late.wait_for(|e| matches!(e, ServerEvent::Pong(_)), WAIT).await.unwrap();
    play_until(&mut g1, &mut n1, Instant::now() + Duration::from_millis(600)).await;
    play_until(&mut g2, &mut n2, Instant::now() + Duration::from_millis(600)).await;
    for n in n1.iter().chain(&n2) {
        assert!(*n > 30, "frames kept coming: {n1:?} {n2:?}");
    }
    eprintln!("frames received without a gap: game 1 {n1:?}, game 2 {n2:?}; frames lost: 0");

    // A logout through the surviving account server closes that session's game connection on its node.
    b.logout(&late_session.token).await.unwrap();
    let events = late.wait_closed(WAIT).await.unwrap();
    assert!(
        events.iter().any(|e| matches!(e, ServerEvent::Error(x) if x.code == ErrorCode::SessionRevoked)),
        "{events:?}"
    );
    second.kill().await.unwrap();
}
