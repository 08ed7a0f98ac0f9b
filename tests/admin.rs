//! End-to-end admin API: an admin lists the nodes and a node's rooms, kicks a player, ends a running game and a
//! waiting room, and drains the node, through `movan-admin` and the Rust SDK; a player cannot.
#![allow(clippy::unwrap_used)]

use movan_client::{AccountClient, ClientError, ErrorCode};
use movan_protocol::EndReason;
use movan_protocol::server::ServerEvent;
use movan_tests::{Cluster, Options, PASSWORD, WAIT, binary, connect, login, start_game};

fn status(e: &ClientError) -> (Option<u16>, &str) {
    match e {
        ClientError::Http { status, code, .. } => (Some(*status), code.as_str()),
        _ => (None, ""),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sees_the_rooms_kicks_ends_rooms_and_drains_the_node() {
    let cluster = Cluster::start_with(Options { account: vec!["admins = [\"boss\"]".into()], ..Options::default() })
        .await
        .unwrap();
    let account = AccountClient::new(&cluster.account_url);
    let boss = login(&account, "boss").await.token;
    let (sessions, mut clients, _, _) = start_game(&cluster, "arena", &["ad1", "ad2", "ad3"]).await;
    let waiting = login(&account, "ad4").await;
    let mut lonely = connect(&waiting).await;
    lonely.enter_room(Some("lobby-x")).await.unwrap();
    lonely.wait_for(|e| matches!(e, ServerEvent::RoomState(_)), WAIT).await.unwrap();
    clients[0].wait_for(|e| matches!(e, ServerEvent::Frame(f) if f.frame_count >= 3), WAIT).await.unwrap();

    let nodes = account.admin_nodes(&boss).await.unwrap();
    assert_eq!(nodes.len(), 1);
    let node = nodes[0].node_id.clone();
    assert_eq!((node.as_str(), nodes[0].draining), ("sync-test", false));
    let list = account.admin_rooms(&boss, &node).await.unwrap();
    let ids: Vec<&str> = list.rooms.iter().map(|r| r.room_id.as_str()).collect();
    assert_eq!(ids, ["arena", "lobby-x"], "by id");
    let (arena, lobby) = (&list.rooms[0], &list.rooms[1]);
    assert_eq!((arena.state.as_str(), arena.members.len()), ("playing", 3));
    assert!(arena.frame_count >= 3 && arena.started_at.is_some(), "{arena:?}");
    assert_eq!((lobby.state.as_str(), lobby.members.len(), lobby.frame_count), ("waiting", 1, 0));

    // A kick: the player is told `kicked`, its connection closes, and it is out of the game.
    let kicked = account.admin_kick(&boss, &sessions[2].uid, "afk").await.unwrap();
    assert_eq!(kicked.nodes, 1);
    let events = clients[2].wait_closed(WAIT).await.unwrap();
    let told = events.iter().find_map(|e| match e {
        ServerEvent::Error(b) if b.code == ErrorCode::Kicked => Some(b.message.clone()),
        _ => None,
    });
    assert!(told.is_some_and(|m| m.contains("afk")), "{events:?}");
    clients[0].wait_for(|e| matches!(e, ServerEvent::RoomState(s) if s.members.len() == 2), WAIT).await.unwrap();

    // Ending the running game, then the waiting room.
    let ended = account.admin_end_room(&boss, &node, "arena", "maintenance").await.unwrap();
    assert!(ended.game_ended);
    for c in &mut clients[..2] {
        match c.wait_for(|e| matches!(e, ServerEvent::GameOver(_)), WAIT).await.unwrap() {
            ServerEvent::GameOver(over) => {
                assert_eq!(over.reason, EndReason::EndedByAdmin);
                assert_eq!(over.results, Some(serde_json::json!({"reason": "maintenance"})));
            }
            _ => unreachable!(),
        }
    }
    assert!(!account.admin_end_room(&boss, &node, "lobby-x", "closing").await.unwrap().game_ended);
    match lonely.wait_for(|e| matches!(e, ServerEvent::RoomLeft(_)), WAIT).await.unwrap() {
        ServerEvent::RoomLeft(left) => assert_eq!(left.reason.as_deref(), Some("room_closed")),
        _ => unreachable!(),
    }
    assert_eq!(
        status(&account.admin_end_room(&boss, &node, "arena", "again").await.unwrap_err()),
        (Some(404), "room_not_found")
    );
    assert_eq!(status(&account.admin_rooms(&boss, "sync-nope").await.unwrap_err()), (Some(404), "node_not_found"));
    assert_eq!(status(&account.admin_nodes(&sessions[0].token).await.unwrap_err()), (Some(403), "forbidden"));

    // movan-admin shows the same.
    let cli = |args: &[&str]| {
        let mut all = vec!["--account", &cluster.account_url, "--user", "boss", "--password", PASSWORD];
        all.extend_from_slice(args);
        std::process::Command::new(binary("movan-admin")).args(&all).output().unwrap()
    };
    let out = cli(&["nodes"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("sync-test"), "{out:?}");
    let out = cli(&["rooms", "sync-test"]);
    assert!(out.status.success(), "{out:?}");
    let out = cli(&["end-room", "sync-test", "nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("room_not_found"), "{out:?}");

    // Draining: logins go nowhere (the only node is drained), until it is undrained.
    let out = cli(&["drain", "sync-test"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(status(&account.login("ad1", PASSWORD).await.unwrap_err()), (Some(503), "no_sync_server"));
    assert!(account.admin_nodes(&boss).await.unwrap()[0].draining);
    account.admin_drain(&boss, &node, false).await.unwrap();
    account.login("ad1", PASSWORD).await.unwrap();
    // A kicked player may come back: a kick is not a ban.
    let back = login(&account, "ad3").await;
    let mut c = connect(&back).await;
    c.ping().await.unwrap();
    c.wait_for(|e| matches!(e, ServerEvent::Pong(_)), WAIT).await.unwrap();
}
