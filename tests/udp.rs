//! End-to-end: players over UDP (KCP, `sync.udp_addr`), sharing rooms with TCP players, through a lossy link,
//! moving to a new address mid-game, and with forged datagrams around them.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use movan_client::bot::{self, BotConfig};
use movan_client::{AccountClient, Session, SyncClient, Transport};
use movan_protocol::server::ServerEvent;
use movan_protocol::udp::{Control, REQUEST_LEN};
use movan_tests::lossy::{Impairment, LossyProxy};
use movan_tests::{Cluster, Options};
use serde_json::json;
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(20);

fn options() -> Options {
    Options { sync: vec!["max_players = 4".into(), "min_players = 4".into()], ..Options::default() }
}

async fn login(cluster: &Cluster, name: &str) -> Session {
    AccountClient::new(&cluster.account_url).register_or_login(name, "udp-test-password").await.unwrap()
}

#[tokio::test]
async fn a_game_over_a_lossy_link_loses_and_repeats_nothing() {
    let cluster = Cluster::start_with(options()).await.unwrap();
    let server: SocketAddr = cluster.sync_udp_addr.parse().unwrap();
    let imp = Impairment {
        drop: 0.05,
        duplicate: 0.02,
        delay: Duration::from_millis(40),
        jitter: Duration::from_millis(15),
        seed: 13,
    };
    let proxy = LossyProxy::start(server, imp).await.unwrap();
    let mut config = BotConfig::new(cluster.account_url.clone());
    config.transport = Transport::Udp;
    config.sync = Some(proxy.addr.to_string());
    config.bots = 8;
    config.room_size = 4;
    config.duration = Duration::from_secs(5);
    config.actions_per_sec = 10.0;
    config.prefix = "lossy".into();
    config.linger_ticks = 20;
    config.check_reload = true;
    let report = bot::run(&config).await;
    assert!(report.passed(), "{report:?}");
    assert!(report.encrypted, "sealed over UDP");
    assert_eq!((report.gaps, report.missing, report.duplicated, report.desyncs), (0, 0, 0, 0), "{report:?}");
    assert_eq!(report.actions_seen_own, report.actions_sent, "every action exactly once");
    let dropped = proxy.stats.dropped.load(std::sync::atomic::Ordering::Relaxed);
    let duplicated = proxy.stats.duplicated.load(std::sync::atomic::Ordering::Relaxed);
    assert!(dropped > 0 && duplicated > 0, "the link really was lossy: {dropped} dropped, {duplicated} duplicated");
}

/// Waits for a `sync_frame` and returns its frame number.
async fn next_frame(c: &mut SyncClient) -> u64 {
    match c.wait_for(|e| matches!(e, ServerEvent::Frame(_)), WAIT).await.unwrap() {
        ServerEvent::Frame(f) => f.frame_count,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn udp_and_tcp_players_share_a_room_and_a_udp_player_moves_mid_game() {
    share_and_move(false).await;
}

#[tokio::test]
async fn without_encryption_a_udp_player_moves_mid_game_too() {
    share_and_move(true).await;
}

/// A UDP and a TCP player in one game; the UDP one changes its local port mid-game and loses nothing. Without
/// encryption any accepted message moves the session (protocol.md §2.2).
async fn share_and_move(plaintext: bool) {
    let mut sync = vec!["max_players = 2".into(), "min_players = 2".into()];
    if plaintext {
        sync.push("encryption = \"off\"".into());
    }
    let cluster = Cluster::start_with(Options { sync, ..Options::default() }).await.unwrap();
    let (a, b) = (login(&cluster, "mover").await, login(&cluster, "stayer").await);
    assert_eq!(a.sync_udp_addr.as_deref(), Some(cluster.sync_udp_addr.as_str()), "login names the UDP endpoint");
    let mut udp = SyncClient::connect_session_via(&a, Transport::Udp).await.unwrap();
    let mut tcp = SyncClient::connect_session_via(&b, Transport::Tcp).await.unwrap();
    for c in [&udp, &tcp] {
        c.enter_room(Some("mixed")).await.unwrap();
        c.prepare().await.unwrap();
    }
    let sealed = if plaintext { movan_client::Encryption::Plaintext } else { movan_client::Encryption::Sealed };
    assert_eq!(udp.encryption(), sealed);
    let start = next_frame(&mut udp).await;
    udp.send_action(&json!({"before": "move"})).await.unwrap();
    // The phone changes networks: a new local port. The next sealed message moves the session there.
    let old = udp.sender().rebind_udp().await;
    assert!(old.is_some_and(|r| r.is_ok()));
    udp.send_action(&json!({"after": "move"})).await.unwrap();
    let mut seen = Vec::new();
    let mut last = start;
    while seen.len() < 2 {
        let ServerEvent::Frame(f) = tcp.wait_for(|e| matches!(e, ServerEvent::Frame(_)), WAIT).await.unwrap() else {
            unreachable!()
        };
        seen.extend(f.actions.iter().filter(|x| x.uid == a.uid).map(|x| x.action_data.get().to_owned()));
        last = f.frame_count;
    }
    assert_eq!(seen, vec![r#"{"before":"move"}"#.to_owned(), r#"{"after":"move"}"#.to_owned()]);
    // The moved player goes on receiving every frame, in order, at its new address.
    let mut n = next_frame(&mut udp).await;
    while n < last + 5 {
        let m = next_frame(&mut udp).await;
        assert_eq!(m, n + 1, "no frame lost or repeated across the move");
        n = m;
    }
}

#[tokio::test]
async fn a_tampered_datagram_closes_only_its_session() {
    let options = Options { sync: vec!["max_players = 2".into(), "min_players = 2".into()], ..Options::default() };
    let cluster = Cluster::start_with(options).await.unwrap();
    let server: SocketAddr = cluster.sync_udp_addr.parse().unwrap();
    let clean = Impairment { drop: 0.0, duplicate: 0.0, delay: Duration::ZERO, jitter: Duration::ZERO, seed: 1 };
    let proxy = LossyProxy::start(server, clean).await.unwrap();
    let (mut a, b) = (login(&cluster, "tampered").await, login(&cluster, "bystander").await);
    a.sync_udp_addr = Some(proxy.addr.to_string());
    let mut victim = SyncClient::connect_session_via(&a, Transport::Udp).await.unwrap();
    let mut other = SyncClient::connect_session_via(&b, Transport::Udp).await.unwrap();
    for c in [&victim, &other] {
        c.enter_room(Some("tamper")).await.unwrap();
        c.prepare().await.unwrap();
    }
    next_frame(&mut victim).await;
    next_frame(&mut other).await;
    // One flipped bit in a sealed message on the way in: the server ends that session, without a word (the client
    // finds out by its own timeout, protocol.md §2.2), and the seat waits for a reconnect.
    proxy.tamper_next_push();
    victim.send_action(&json!({"x": 1})).await.unwrap();
    let dropped = |s: &movan_protocol::server::RoomState| s.members.iter().any(|m| m.uid == a.uid && !m.connected);
    other.wait_for(|e| matches!(e, ServerEvent::RoomState(s) if dropped(s)), WAIT).await.unwrap();
    drop(victim);
    // The other player's game goes on, every frame in order; the victim comes back on a new session.
    let mut n = next_frame(&mut other).await;
    let mut back = SyncClient::connect_session_via(&a, Transport::Udp).await.unwrap();
    let rejoined = |s: &movan_protocol::server::RoomState| s.members.iter().all(|m| m.connected);
    back.wait_for(|e| matches!(e, ServerEvent::RoomState(s) if rejoined(s)), WAIT).await.unwrap();
    for _ in 0..10 {
        let m = next_frame(&mut other).await;
        assert_eq!(m, n + 1, "no frame lost for the bystander");
        n = m;
    }
}

#[tokio::test]
async fn forged_and_cookieless_datagrams_get_small_replies_and_leave_a_game_alone() {
    let cluster = Cluster::start_with(options()).await.unwrap();
    let server: SocketAddr = cluster.sync_udp_addr.parse().unwrap();
    let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    attacker.connect(server).await.unwrap();
    // A hello gets a cookie no longer than itself; a short hello, garbage and guessed cookies get nothing or less.
    attacker.send(&Control::Hello { nonce: [1; 8] }.encode()).await.unwrap();
    let mut buf = [0u8; 2048];
    let n = tokio::time::timeout(WAIT, attacker.recv(&mut buf)).await.unwrap().unwrap();
    assert!(n <= REQUEST_LEN);
    assert!(matches!(Control::parse(&buf[..n]), Ok(Control::Cookie { .. })));
    let flood = tokio::spawn(async move {
        let forged = Control::Connect { nonce: [2; 8], cookie: movan_protocol::udp::Cookie { slot: 0, mac: [0; 16] } };
        for i in 0u32..20_000 {
            let _ = attacker.send(&Control::Hello { nonce: [3; 8] }.encode()[..20]).await;
            let _ = attacker.send(&forged.encode()).await;
            let mut kcp = vec![0u8; 48];
            kcp[..4].copy_from_slice(&(i | 1).to_le_bytes());
            kcp[4] = 81;
            let _ = attacker.send(&kcp).await;
            if i % 256 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let mut total = 0usize;
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(300), attacker.recv(&mut buf)).await {
            assert!(n <= REQUEST_LEN, "a reply of {n} bytes");
            total += 1;
        }
        total
    });
    let mut config = BotConfig::new(cluster.account_url.clone());
    config.transport = Transport::Udp;
    config.bots = 4;
    config.room_size = 4;
    config.duration = Duration::from_secs(3);
    config.prefix = "flooded".into();
    let report = bot::run(&config).await;
    let replies = flood.await.unwrap();
    assert!(report.passed(), "{report:?}");
    assert!(replies <= 20_000, "only the forged connects are answered (refused), at most once each");
}

/// A player on the reference KCP (ikcp.c through PyPI's `kcp`, tests/interop/kcp_client.py, written from
/// docs/protocol.md) plays a game with a Rust player over UDP. Needs python3 with `kcp` and `cryptography`
/// (.ci/run installs them).
#[tokio::test]
async fn a_reference_kcp_client_plays_a_game() {
    let probe = std::process::Command::new("python3").args(["-c", "import kcp, cryptography"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPING the reference KCP interop test: python3 with `kcp` and `cryptography` is missing");
        return;
    }
    let options = Options { sync: vec!["max_players = 2".into(), "min_players = 2".into()], ..Options::default() };
    let cluster = Cluster::start_with(options).await.unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/kcp_client.py");
    let python = tokio::process::Command::new("python3")
        .args([script, &cluster.account_url, "ikcp-player", "interop", "10"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let rust = login(&cluster, "rust-player").await;
    let mut c = SyncClient::connect_session_via(&rust, Transport::Udp).await.unwrap();
    c.enter_room(Some("interop")).await.unwrap();
    c.prepare().await.unwrap();
    let mut theirs = Vec::new();
    while theirs.len() < 10 {
        let ServerEvent::Frame(f) = c.wait_for(|e| matches!(e, ServerEvent::Frame(_)), WAIT).await.unwrap() else {
            unreachable!()
        };
        theirs.extend(f.actions.iter().filter(|a| a.uid != rust.uid).map(|a| a.action_data.get().to_owned()));
    }
    let out = tokio::time::timeout(WAIT, python.wait_with_output()).await.unwrap().unwrap();
    assert!(out.status.success(), "the KCP client failed");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["mine"], json!((0..10).collect::<Vec<_>>()), "{report}");
    assert_eq!(theirs, (0..10).map(|n| format!(r#"{{"n":{n}}}"#)).collect::<Vec<_>>());
}
