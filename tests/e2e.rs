//! End-to-end: the real `account-server` and `sync-server` binaries on free ports, real games through
//! `movan-client`.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use movan_client::{AccountClient, FrameLog, SessionKey, SyncClient};
use movan_protocol::ErrorCode;
use movan_protocol::server::{Frame, ServerEvent};
use movan_tests::{Cluster, Options, PASSWORD, WAIT, binary, body, connect, forge, login, now_secs, start_game};
use serde_json::{Value, json};

/// Receives frames until `count` consecutive frames from 0 are held.
async fn collect_frames(client: &mut SyncClient, count: u64) -> Vec<Frame> {
    let mut log = FrameLog::new();
    while log.next_frame() < count {
        match client.next_event_timeout(WAIT).await.unwrap() {
            Some(ServerEvent::Frame(f)) => {
                log.push(f).unwrap();
            }
            Some(ServerEvent::Error(e)) => panic!("unexpected error {e:?}"),
            Some(_) => {}
            None => panic!("connection closed"),
        }
    }
    log.into_frames().into_iter().take(count as usize).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_players_play_a_game_in_lockstep() {
    const ACTIONS: u64 = 12;
    const FRAMES: u64 = 40;
    let cluster = Cluster::start().await.unwrap();
    let names = ["ann", "bob", "cyd", "dee"];
    let (sessions, clients, t0, interval) = start_game(&cluster, "e2e-four", &names).await;

    // Each player sends on its own schedule while receiving frames on another task.
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let (sender, mut events) = client.split();
        tasks.push(tokio::spawn(async move {
            let send = async {
                for seq in 0..ACTIONS {
                    sender.send_action(&json!({ "p": i, "seq": seq })).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(13 + 7 * i as u64)).await;
                }
            };
            let receive = async {
                let mut log = FrameLog::new();
                while log.next_frame() < FRAMES {
                    match events.next_event_timeout(WAIT).await.unwrap() {
                        Some(ServerEvent::Frame(f)) => {
                            log.push(f).unwrap();
                        }
                        Some(ServerEvent::Error(e)) => panic!("player {i}: {e:?}"),
                        Some(_) => {}
                        None => panic!("player {i}: connection closed"),
                    }
                }
                log
            };
            let ((), log) = tokio::join!(send, receive);
            (sender, events, log)
        }));
    }
    let mut logs = Vec::new();
    let mut conns = Vec::new();
    for t in tasks {
        let (sender, events, log) = t.await.unwrap();
        logs.push(log.into_frames());
        conns.push((sender, events));
    }

    // Identical frame sequences, byte for byte.
    let reference: Vec<&str> = logs[0].iter().take(FRAMES as usize).map(|f| f.raw.get()).collect();
    for log in &logs[1..] {
        let this: Vec<&str> = log.iter().take(FRAMES as usize).map(|f| f.raw.get()).collect();
        assert_eq!(this, reference, "all players see the same frames");
    }

    // Every action exactly once, in the frame whose window received it, in the documented order.
    let uid_of: BTreeMap<&str, usize> = sessions.iter().enumerate().map(|(i, s)| (s.uid.as_str(), i)).collect();
    let mut seen = BTreeSet::new();
    let mut last_seq: BTreeMap<usize, u64> = BTreeMap::new();
    for frame in logs[0].iter().take(FRAMES as usize) {
        let n = frame.frame_count as f64;
        for a in &frame.actions {
            let (lo, hi) = (t0 + n * interval, t0 + (n + 1.0) * interval);
            assert!(
                a.timestamp >= lo - 1e-6 && a.timestamp <= hi + 1e-6,
                "action in frame {n} at {} outside [{lo}, {hi}]",
                a.timestamp
            );
            let v: Value = serde_json::from_str(a.action_data.get()).unwrap();
            let (p, seq) = (v["p"].as_u64().unwrap() as usize, v["seq"].as_u64().unwrap());
            assert_eq!(uid_of[a.uid.as_str()], p, "action attributed to its sender");
            assert!(seen.insert((p, seq)), "action {p}/{seq} appears twice");
            if let Some(prev) = last_seq.insert(p, seq) {
                assert!(seq > prev, "player {p}'s actions stay in send order");
            }
        }
        for w in frame.actions.windows(2) {
            let key = |a: &movan_protocol::server::FrameAction| (a.timestamp, a.uid.clone());
            assert!(key(&w[0]) <= key(&w[1]), "frame {} ordered by (timestamp, uid)", frame.frame_count);
        }
    }
    assert_eq!(seen.len() as u64, ACTIONS * 4, "every action appears exactly once");

    // A reload returns the broadcast frames byte for byte.
    let (sender, events) = conns.remove(0);
    let mut client = SyncClient::join(sender, events);
    let reloaded = client.reload(0, WAIT).await.unwrap();
    assert!(reloaded.len() as u64 >= FRAMES);
    let reloaded: Vec<&str> = reloaded.iter().take(FRAMES as usize).map(|f| f.raw.get()).collect();
    assert_eq!(reloaded, reference);
    // An out-of-range reload is refused.
    let err = client.reload(1_000_000, WAIT).await.unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::BadFrameRange));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn game_over_at_the_maximum_game_length() {
    let cluster = Cluster::start_with(Options {
        sync: vec!["max_game_secs = 1".into(), "tick_interval_ms = 20".into()],
        ..Options::default()
    })
    .await
    .unwrap();
    let (_, mut clients, _, _) = start_game(&cluster, "short", &["sho", "rty"]).await;
    for c in &mut clients {
        let frames = collect_frames(c, 50).await;
        assert_eq!(frames.len(), 50);
        match c.wait_for(|e| matches!(e, ServerEvent::GameOver(_)), WAIT).await.unwrap() {
            ServerEvent::GameOver(g) => {
                assert_eq!(g.reason, "max_duration");
                assert_eq!(g.frame_count, 50);
            }
            _ => unreachable!(),
        }
    }
    // The room is freed: the same players can start again.
    clients[0].enter_room(Some("short")).await.unwrap();
    clients[0].wait_for(|e| matches!(e, ServerEvent::RoomState(s) if s.members.len() == 1), WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_errors() {
    let cluster = Cluster::start().await.unwrap();
    let account = AccountClient::new(&cluster.account_url);
    let uid = account.register("erin", PASSWORD).await.unwrap();
    let dup = account.register("erin", PASSWORD).await.unwrap_err();
    assert_eq!(dup.http_status(), Some(409));
    let wrong = account.login("erin", "not-the-password").await.unwrap_err();
    let unknown = account.login("nobody-here", "not-the-password").await.unwrap_err();
    assert_eq!(wrong.http_status(), Some(401));
    assert_eq!(wrong.to_string(), unknown.to_string(), "wrong password and unknown user look the same");
    let session = account.login("erin", PASSWORD).await.unwrap();
    assert_eq!(session.uid, uid);
    assert_eq!(account.me(&session.token).await.unwrap().username, "erin");
    let refreshed = account.refresh(&session.refresh_token).await.unwrap();
    account.logout(&refreshed.token).await.unwrap();
    assert_eq!(account.me(&refreshed.token).await.unwrap_err().http_status(), Some(401));
}

/// Sends one raw first message on a fresh connection and expects `code`, then a close.
async fn first_message_refused(cluster: &Cluster, key: Option<SessionKey>, body: &[u8], code: ErrorCode) {
    let mut c = SyncClient::connect_unauthenticated(&cluster.sync_addr, "-", None, key).await.unwrap();
    c.send_raw_body(body).await.unwrap();
    let events = c.wait_closed(WAIT).await.unwrap();
    let codes: Vec<ErrorCode> = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Error(b) => Some(b.code),
            _ => None,
        })
        .collect();
    assert_eq!(codes, vec![code], "{}", String::from_utf8_lossy(body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_documented_errors_while_other_rooms_keep_ticking() {
    let cluster = Cluster::start_with(Options { sync: vec!["max_frame_bytes = 1024".into()], ..Options::default() })
        .await
        .unwrap();
    // A game in another room runs throughout; it must not lose a frame.
    let (_, mut game, _, _) = start_game(&cluster, "bystanders", &["by1", "by2"]).await;
    let mut bystander = game.remove(0);
    let watch = tokio::spawn(async move {
        let frames = collect_frames(&mut bystander, 60).await;
        frames.len()
    });

    let account = AccountClient::new(&cluster.account_url);
    let me = login(&account, "mallory").await;
    let other = login(&account, "victim").await;
    let ping = json!({"proto": "ping", "timestamp": 1.0});

    // Failures on the first message close the connection.
    first_message_refused(&cluster, None, &body(&me.uid, None, ping.clone()), ErrorCode::Unauthenticated).await;
    first_message_refused(&cluster, None, &body(&me.uid, Some("garbage"), ping.clone()), ErrorCode::BadToken).await;
    let expired = forge(&cluster, &me.uid, "forged", now_secs() - 600, |_| {});
    first_message_refused(&cluster, None, &body(&me.uid, Some(&expired), ping.clone()), ErrorCode::TokenExpired).await;
    first_message_refused(&cluster, None, &body(&me.uid, Some(&other.token), ping.clone()), ErrorCode::UidMismatch)
        .await;
    first_message_refused(&cluster, None, b"{not json", ErrorCode::BadJson).await;
    // An over-size frame: only the length prefix is needed for the verdict.
    let mut c = connect(&me).await;
    c.send_raw_bytes(&2048u32.to_be_bytes()).await.unwrap();
    let events = c.wait_closed(WAIT).await.unwrap();
    assert!(matches!(&events[..], [ServerEvent::Error(e)] if e.code == ErrorCode::FrameTooLarge), "{events:?}");

    // On an authenticated connection, bad requests get an error and the connection stays usable.
    let mut c = connect(&me).await;
    c.ping().await.unwrap();
    c.wait_for(|e| matches!(e, ServerEvent::Pong(_)), WAIT).await.unwrap();
    let uid = me.uid.as_str();
    let cases: Vec<(Vec<u8>, ErrorCode)> = vec![
        (b"{\"uid\":".to_vec(), ErrorCode::BadJson),
        (vec![0xff, 0xfe, 0x00], ErrorCode::BadJson),
        (b"[1,2,3]".to_vec(), ErrorCode::BadMessage),
        (body(uid, None, json!({"proto": "dance"})), ErrorCode::UnknownProto),
        (serde_json::to_vec(&json!({"uid": uid})).unwrap(), ErrorCode::BadMessage),
        (serde_json::to_vec(&json!({"uid": 5, "extra_data": {"proto": "ping"}})).unwrap(), ErrorCode::BadMessage),
        (body(uid, None, json!({"proto": "sync_action", "action_data": {}})), ErrorCode::BadMessage),
        (
            body(uid, None, json!({"proto": "sync_action", "timestamp": "soon", "action_data": {}})),
            ErrorCode::BadMessage,
        ),
        (body(uid, None, json!({"proto": "sync_action", "timestamp": 1.0, "action_data": 7})), ErrorCode::BadMessage),
        (
            body(uid, None, json!({"proto": "sync_request_reload_frames", "data": {"start_frame": "0"}})),
            ErrorCode::BadMessage,
        ),
        (body(uid, None, json!({"proto": "room_enter", "data": {"room_id": "no spaces"}})), ErrorCode::BadMessage),
        (body(&other.uid, None, ping.clone()), ErrorCode::UidMismatch),
        (body(uid, Some(&other.token), ping.clone()), ErrorCode::UidMismatch),
        (body(uid, None, json!({"proto": "sync_action", "timestamp": 1.0, "action_data": {}})), ErrorCode::NotInRoom),
        (body(uid, None, json!({"proto": "room_prepare"})), ErrorCode::NotInRoom),
        (body(uid, None, json!({"proto": "room_leave"})), ErrorCode::NotInRoom),
        (body(uid, None, json!({"proto": "room_enter", "data": {"room_id": "bystanders"}})), ErrorCode::RoomInGame),
        (
            body(uid, None, json!({"proto": "sync_checksum", "data": {"frame": 0, "hash": "h".repeat(65)}})),
            ErrorCode::BadMessage,
        ),
        (body(uid, None, json!({"proto": "sync_checksum", "data": {"frame": -1, "hash": "a"}})), ErrorCode::BadMessage),
        (body(uid, None, json!({"proto": "sync_checksum", "data": {"frame": 0, "hash": "a"}})), ErrorCode::NotInRoom),
        (body(uid, None, json!({"proto": "room_spectate"})), ErrorCode::BadMessage),
        (body(uid, None, json!({"proto": "room_spectate", "data": {"room_id": "no spaces"}})), ErrorCode::BadMessage),
        (body(uid, None, json!({"proto": "room_spectate", "data": {"room_id": "nowhere"}})), ErrorCode::RoomNotFound),
    ];
    for (bytes, code) in cases {
        c.send_raw_body(&bytes).await.unwrap();
        let got = c.wait_for(|e| matches!(e, ServerEvent::Error(_)), WAIT).await.unwrap();
        match got {
            ServerEvent::Error(e) => assert_eq!(e.code, code, "{} -> {}", String::from_utf8_lossy(&bytes), e.message),
            _ => unreachable!(),
        }
    }
    // In a waiting room, actions and reloads are refused until the game starts.
    c.enter_room(Some("mallory-room")).await.unwrap();
    c.wait_for(|e| matches!(e, ServerEvent::RoomState(_)), WAIT).await.unwrap();
    c.send_action(&json!({"x": 1})).await.unwrap();
    let e = c.wait_for(|e| matches!(e, ServerEvent::Error(_)), WAIT).await.unwrap();
    assert!(matches!(e, ServerEvent::Error(b) if b.code == ErrorCode::GameNotRunning));
    let err = c.reload(0, WAIT).await.unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::GameNotRunning));
    c.ping().await.unwrap();
    c.wait_for(|e| matches!(e, ServerEvent::Pong(_)), WAIT).await.unwrap();

    assert_eq!(watch.await.unwrap(), 60, "the other room kept ticking without a gap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_match_puts_players_together() {
    let cluster =
        Cluster::start_with(Options { sync: vec!["max_players = 2".into()], ..Options::default() }).await.unwrap();
    let account = AccountClient::new(&cluster.account_url);
    let mut rooms = Vec::new();
    let mut clients = Vec::new();
    for name in ["qm1", "qm2", "qm3"] {
        let mut c = connect(&login(&account, name).await).await;
        c.enter_room(None).await.unwrap();
        match c.wait_for(|e| matches!(e, ServerEvent::RoomState(_)), WAIT).await.unwrap() {
            ServerEvent::RoomState(s) => rooms.push(s.room_id),
            _ => unreachable!(),
        }
        clients.push(c);
    }
    assert_eq!(rooms[0], rooms[1]);
    assert_ne!(rooms[1], rooms[2], "a full room is not matched again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connection_replaces_the_old_one() {
    let cluster = Cluster::start().await.unwrap();
    let account = AccountClient::new(&cluster.account_url);
    let s = login(&account, "twotabs").await;
    let mut first = connect(&s).await;
    first.ping().await.unwrap();
    first.wait_for(|e| matches!(e, ServerEvent::Pong(_)), WAIT).await.unwrap();
    let mut second = connect(&s).await;
    second.ping().await.unwrap();
    second.wait_for(|e| matches!(e, ServerEvent::Pong(_)), WAIT).await.unwrap();
    let events = first.wait_closed(WAIT).await.unwrap();
    assert!(events.iter().any(|e| matches!(e, ServerEvent::Error(b) if b.code == ErrorCode::Replaced)));
    second.ping().await.unwrap();
    second.wait_for(|e| matches!(e, ServerEvent::Pong(_)), WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_games_with_game_over_and_exits_cleanly() {
    let mut cluster = Cluster::start().await.unwrap();
    let (_, mut clients, _, _) = start_game(&cluster, "doomed", &["sd1", "sd2"]).await;
    collect_frames(&mut clients[0], 3).await;
    let status = cluster.terminate_sync().await.unwrap();
    assert!(status.success(), "sync-server exit status {status}");
    for c in &mut clients {
        let events = c.wait_closed(WAIT).await.unwrap();
        assert!(events.iter().any(|e| matches!(e, ServerEvent::GameOver(g) if g.reason == "shutdown")), "{events:?}");
    }
    let status = cluster.terminate_account().await.unwrap();
    assert!(status.success(), "account-server exit status {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn movan_bot_plays_and_verifies_its_frames_over_every_transport() {
    let cluster = Cluster::start().await.unwrap();
    for transport in ["tcp", "ws", "udp"] {
        movan_bot_plays(&cluster, transport).await;
    }
}

async fn movan_bot_plays(cluster: &Cluster, transport: &str) {
    let out = tokio::process::Command::new(binary("movan-bot"))
        .args(["--account", &cluster.account_url, "--bots", "4", "--room-size", "2"])
        .args(["--duration-secs", "2", "--actions-per-sec", "10", "--json"])
        .args(["--transport", transport, "--prefix", &format!("bot-{transport}")])
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "movan-bot over {transport} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = stdout.lines().rev().find_map(|l| serde_json::from_str(l).ok()).expect("a JSON summary line");
    assert_eq!(summary["bots"], 4, "{transport}");
    assert_eq!(summary["missing"], 0);
    assert_eq!(summary["duplicated"], 0);
    assert_eq!(summary["gaps"], 0);
    assert!(summary["actions_sent"].as_u64().unwrap() > 0);
    assert_eq!(summary["actions_sent"], summary["actions_seen_own"]);
    assert_eq!(summary["encrypted"], true, "bots speak the encrypted protocol by default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_drops_the_connection_and_finished_games_reach_the_match_history() {
    let cluster = Cluster::start().await.unwrap();
    let account = AccountClient::new(&cluster.account_url);
    let (sessions, mut clients, _, _) = start_game(&cluster, "history", &["his1", "his2"]).await;
    collect_frames(&mut clients[1], 5).await;

    // Logout of a player in a game: the account server pushes it, the sync server closes that connection.
    account.logout(&sessions[0].token).await.unwrap();
    let events = clients[0].wait_closed(WAIT).await.unwrap();
    assert!(
        events.iter().any(|e| matches!(e, ServerEvent::Error(b) if b.code == ErrorCode::SessionRevoked)),
        "{events:?}"
    );
    clients[1].wait_for(|e| matches!(e, ServerEvent::RoomState(s) if s.members.len() == 1), WAIT).await.unwrap();
    // The logged-out token cannot connect again.
    first_message_refused(
        &cluster,
        sessions[0].decode_session_key().unwrap(),
        &body(&sessions[0].uid, Some(&sessions[0].token), json!({"proto": "ping"})),
        ErrorCode::SessionRevoked,
    )
    .await;

    // The last player leaves: the game ends and is reported for both players.
    clients[1].leave_room().await.unwrap();
    let second = login(&account, "his1").await;
    for token in [&second.token, &sessions[1].token] {
        let page = poll_matches(&account, token).await;
        let m = &page.matches[0].report;
        assert_eq!(m.room_id, "history");
        let mut players = m.players.clone();
        players.sort();
        let mut want = vec![sessions[0].uid.clone(), sessions[1].uid.clone()];
        want.sort();
        assert_eq!(players, want, "both players, in join order");
        assert_eq!(m.end_reason, "all_left");
        assert!(m.frame_count >= 5);
        assert_eq!(page.matches[0].node_id, "sync-test");
    }
}

async fn poll_matches(account: &AccountClient, token: &str) -> movan_client::MatchPage {
    for _ in 0..100 {
        let page = account.matches(token, 10, None).await.unwrap();
        if !page.matches.is_empty() {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the finished game never showed up in /v1/me/matches");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_ban_drops_the_player_at_once() {
    let cluster = Cluster::start_with(Options { account: vec!["admins = [\"boss\"]".into()], ..Options::default() })
        .await
        .unwrap();
    let account = AccountClient::new(&cluster.account_url);
    let boss = login(&account, "boss").await;
    let (sessions, mut clients, _, _) = start_game(&cluster, "banned", &["cheater", "honest"]).await;
    account.ban(&boss.token, &sessions[0].uid).await.unwrap();
    let events = clients[0].wait_closed(WAIT).await.unwrap();
    assert!(events.iter().any(|e| matches!(e, ServerEvent::Error(b) if b.code == ErrorCode::Banned)), "{events:?}");
    assert_eq!(account.login("cheater", PASSWORD).await.unwrap_err().http_status(), Some(403));
    let not_admin = account.ban(&sessions[1].token, &sessions[1].uid).await.unwrap_err();
    assert_eq!(not_admin.http_status(), Some(403));
    account.unban(&boss.token, &sessions[0].uid).await.unwrap();
    let again = login(&account, "cheater").await;
    let mut c = connect(&again).await;
    c.ping().await.unwrap();
    c.wait_for(|e| matches!(e, ServerEvent::Pong(_)), WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_follow_the_sync_server_through_restarts_of_either_service() {
    let mut cluster = Cluster::start().await.unwrap();
    // The sync server stops: logins answer 503 once its heartbeats are missed.
    assert!(cluster.terminate_sync().await.unwrap().success());
    let stopped = std::time::Instant::now();
    cluster.wait_for_node(false).await.unwrap();
    eprintln!("sync server stopped; login answered 503 after {:?}", stopped.elapsed());
    let account = AccountClient::new(&cluster.account_url);
    let _ = account.register("latecomer", PASSWORD).await;
    let e = account.login("latecomer", PASSWORD).await.unwrap_err();
    assert!(e.to_string().contains("no_sync_server"), "{e}");
    // It comes back and registers.
    cluster.start_sync().await.unwrap();
    // The account server restarts under it: the sync server reconnects and registers again by itself.
    let restarted = std::time::Instant::now();
    cluster.restart_account().await.unwrap();
    cluster.wait_for_node(true).await.unwrap();
    assert!(restarted.elapsed() < Duration::from_secs(10), "re-registered after {:?}", restarted.elapsed());
    eprintln!(
        "account server restarted; sync server registered again {:?} after the restart began",
        restarted.elapsed()
    );
    let s = login(&AccountClient::new(&cluster.account_url), "latecomer").await;
    assert_eq!(s.sync_addr, cluster.sync_addr);
}

/// Receives `count` more frames and checks they continue `log` (which starts at frame 0) without a gap.
async fn keep_ticking(client: &mut SyncClient, log: &mut FrameLog, count: u64) {
    let until = log.next_frame() + count;
    while log.next_frame() < until {
        match client.next_event_timeout(WAIT).await.unwrap() {
            Some(ServerEvent::Frame(f)) => {
                log.push(f).unwrap();
            }
            Some(ServerEvent::Error(e)) => panic!("unexpected error {e:?}"),
            Some(_) => {}
            None => panic!("the bystander's connection closed"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_frames_resist_tampering_replay_and_stolen_tokens() {
    let cluster = Cluster::start().await.unwrap();
    let account = AccountClient::new(&cluster.account_url);
    let (sessions, mut clients, _, _) = start_game(&cluster, "sealed", &["eve", "mal", "okay"]).await;
    let mut bystander = clients.pop().unwrap();
    let mut ticks = FrameLog::new();
    keep_ticking(&mut bystander, &mut ticks, 3).await;
    let action =
        |uid: &str| body(uid, None, json!({"proto": "sync_action", "timestamp": 1.0, "action_data": {"x": 1}}));

    // A captured sealed frame replayed on the same connection: the first copy counts, the replay closes it.
    let eve = &mut clients[0];
    let captured = eve.seal_raw_body(&action(&sessions[0].uid)).await.unwrap();
    eve.send_raw_bytes(&captured).await.unwrap();
    eve.send_raw_bytes(&captured).await.unwrap();
    let events = eve.wait_closed(WAIT).await.unwrap();
    assert!(events.iter().all(|e| !matches!(e, ServerEvent::Error(_))), "closed without a word: {events:?}");
    // ... and on a new connection of the same session (new salt, new keys).
    let mut again = connect(&sessions[0]).await;
    again.send_raw_bytes(&captured).await.unwrap();
    again.wait_closed(WAIT).await.unwrap();

    // A flipped bit in a sealed frame closes that connection.
    let mal = &mut clients[1];
    let mut tampered = mal.seal_raw_body(&action(&sessions[1].uid)).await.unwrap().to_vec();
    let last = tampered.len() - 20;
    tampered[last] ^= 0x01;
    mal.send_raw_bytes(&tampered).await.unwrap();
    mal.wait_closed(WAIT).await.unwrap();

    // Meanwhile the room ticks on for the player who did nothing wrong, without a gap.
    keep_ticking(&mut bystander, &mut ticks, 10).await;

    // Another player's token without that player's session key: the handshake is keyed for the token's session,
    // so frames sealed with any other key do not open.
    let victim = &sessions[2];
    let mut thief = SyncClient::connect_unauthenticated(
        &cluster.sync_addr,
        &victim.uid,
        Some(&victim.token),
        sessions[1].decode_session_key().unwrap(),
    )
    .await
    .unwrap();
    thief.ping().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    thief.ping().await.unwrap();
    let events = thief.wait_closed(WAIT).await.unwrap();
    assert!(events.iter().all(|e| !matches!(e, ServerEvent::Pong(_))), "{events:?}");

    // After logout, the old token and session key no longer work.
    account.logout(&sessions[0].token).await.unwrap();
    let err = SyncClient::connect_session(&sessions[0]).await.unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::SessionRevoked), "{err}");
    keep_ticking(&mut bystander, &mut ticks, 3).await;
}

/// The message bodies the server sends on a fresh TCP connection after `first`, as JSON: until it closes, or `max`.
async fn raw_answers(cluster: &Cluster, first: &[u8], max: usize) -> Vec<Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(&cluster.sync_addr).await.unwrap();
    s.write_all(&[&(first.len() as u32).to_be_bytes()[..], first].concat()).await.unwrap();
    let mut bodies = Vec::new();
    while bodies.len() < max
        && let Ok(Ok(len)) = tokio::time::timeout(WAIT, s.read_u32()).await
    {
        let mut body = vec![0; len as usize];
        s.read_exact(&mut body).await.unwrap();
        bodies.push(serde_json::from_slice(&body).unwrap());
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_out_token_gets_session_revoked_in_place_of_the_handshake_with_encryption_off() {
    let mut cluster =
        Cluster::start_with(Options { sync: vec!["encryption = \"off\"".into()], ..Options::default() }).await.unwrap();
    let account = AccountClient::new(&cluster.account_url);
    let me = login(&account, "plain-logout").await;
    let first = body(&me.uid, Some(&me.token), json!({"proto": "ping"}));
    assert_eq!(raw_answers(&cluster, &first, 1).await[0]["proto"], "handshake", "before the logout");
    account.logout(&me.token).await.unwrap();
    // The logout reaches the sync server over RPC; until then the token still connects.
    let deadline = std::time::Instant::now() + WAIT;
    let answers = loop {
        let answers = raw_answers(&cluster, &first, 2).await;
        if answers.first().is_some_and(|a| a["proto"] == "error") {
            break answers;
        }
        assert!(std::time::Instant::now() < deadline, "the logout never reached the sync server: {answers:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(answers.len(), 1, "only the error, no handshake, then the close (not a pong): {answers:?}");
    assert_eq!(answers[0]["data"]["code"], "session_revoked", "{answers:?}");
    assert_eq!(answers[0]["data"]["proto"], "ping", "{answers:?}");

    // A restarted sync server forgets nothing: its registration reply carries the logout (issue 14 point 8).
    assert!(cluster.terminate_sync().await.unwrap().success());
    cluster.start_sync().await.unwrap();
    cluster.wait_for_node(true).await.unwrap();
    let answers = raw_answers(&cluster, &first, 2).await;
    assert_eq!(answers.len(), 1, "refused after the restart too: {answers:?}");
    assert_eq!(answers[0]["data"]["code"], "session_revoked", "{answers:?}");
}
