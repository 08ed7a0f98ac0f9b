//! End-to-end replays: real binaries, encrypted players who act every frame and report checksums. When the game ends
//! the sync server sends its replay to the account server in chunks (a small `rpc.max_frame_bytes` makes several);
//! each player downloads it through the Rust SDK, and it holds every frame byte for byte as each of them received
//! it, the checksums they agreed on, and verifies. A stranger cannot download it.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use movan_client::{AccountClient, ClientError, SyncClient};
use movan_protocol::server::{ServerEvent, frame_message};
use movan_tests::{Cluster, Options, WAIT, binary, login, start_game};
use serde_json::json;

/// Plays `frames` frames: an action per frame, a checksum every 10; returns every `sync_frame` message received.
async fn play(mut client: SyncClient, frames: u64) -> Vec<Vec<u8>> {
    let mut received = Vec::new();
    let mut state = 0xcbf2_9ce4_8422_2325u64;
    while (received.len() as u64) < frames {
        match client.next_event_timeout(WAIT).await.unwrap() {
            Some(ServerEvent::Frame(f)) => {
                assert_eq!(f.frame_count, received.len() as u64, "frames in order, none lost");
                let raw = f.raw.get().as_bytes();
                for b in raw {
                    state = (state ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
                }
                received.push(frame_message(raw).to_vec());
                if f.frame_count.is_multiple_of(10) {
                    client.send_checksum(f.frame_count, &format!("{state:016x}")).await.unwrap();
                }
                let step = json!({"move": [f.frame_count % 3, f.frame_count % 5], "uid": client.uid()});
                client.send_action(&step).await.unwrap();
            }
            Some(ServerEvent::Error(e)) => panic!("{}: {e:?}", client.uid()),
            Some(_) => {}
            None => panic!("{}: connection closed", client.uid()),
        }
    }
    client.leave(WAIT).await.unwrap();
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_player_downloads_a_replay_of_exactly_what_they_were_sent() {
    let cluster = Cluster::start_with(Options {
        sync: vec!["checksum_interval = 10".into(), "tick_interval_ms = 20".into()],
        rpc: vec!["max_frame_bytes = 4096".into()],
        ..Options::default()
    })
    .await
    .unwrap();
    let (sessions, clients, _, _) = start_game(&cluster, "recorded", &["rp1", "rp2", "rp3"]).await;
    let games: Vec<_> = clients.into_iter().map(|c| tokio::spawn(play(c, 150))).collect();
    let mut streams = Vec::new();
    for g in games {
        streams.push(g.await.unwrap());
    }
    let account = AccountClient::new(&cluster.account_url);
    // The report comes first, then the replay in chunks: wait for both.
    let mut replay = None;
    for _ in 0..100 {
        let page = account.matches(&sessions[0].token, 1, None).await.unwrap();
        if let Some(m) = page.matches.first() {
            match account.replay(&sessions[0].token, &m.report.match_id).await {
                Ok(r) => {
                    replay = Some((m.clone(), r));
                    break;
                }
                Err(ClientError::Http { status: 404, code, .. }) if code == "replay_not_found" => {}
                Err(e) => panic!("{e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (record, replay) = replay.expect("the replay arrives within 10 s");
    let header = &replay.header;
    // rpc.max_frame_bytes = 4096 carries (4096 - 1024) / 4 * 3 = 2304 bytes of replay per chunk.
    let len = replay.as_bytes().len();
    assert!(len > 2 * 2304, "{len} bytes: at least three chunks");
    assert_eq!(header.match_id, record.report.match_id);
    assert_eq!(header.players, record.report.players);
    assert_eq!(header.game_frame_count, record.report.frame_count);
    assert_eq!(header.frame_count, header.game_frame_count, "not truncated");
    assert!(!header.truncated);
    let verified = replay.verify();
    assert!(verified.is_ok(), "{:?}", verified.problems);
    let frames: Vec<Vec<u8>> = replay.frames().map(|f| f.unwrap().1).collect();
    for (i, stream) in streams.iter().enumerate() {
        assert!(stream.len() <= frames.len());
        assert_eq!(&frames[..stream.len()], stream.as_slice(), "player {i}: byte for byte what they were sent");
    }
    let with_actions = frames.iter().filter(|f| f.windows(6).any(|w| w == b"\"move\"")).count();
    assert!(with_actions > 100, "{with_actions} frames carry actions");
    assert!(header.checksums.len() >= 10, "{:?}", header.checksums);
    assert!(header.checksums.iter().all(|c| c.groups.is_empty() && c.hash.is_some()), "everyone agreed");
    assert_eq!(header.first_desync_frame, None);
    // Every player may download it; a stranger may not.
    for s in &sessions[1..] {
        assert_eq!(account.replay_file(&s.token, &header.match_id).await.unwrap(), replay.as_bytes());
    }
    let stranger = login(&account, "stranger").await;
    match account.replay_file(&stranger.token, &header.match_id).await {
        Err(ClientError::Http { status: 404, code, .. }) => assert_eq!(code, "replay_not_found"),
        other => panic!("{other:?}"),
    }
    movan_replay_reads_it(replay.as_bytes(), &header.match_id, frames.len());
}

/// `movan-replay verify`, `info` and `export` on `file`, then `verify` on a copy with one byte changed.
fn movan_replay_reads_it(file: &[u8], match_id: &str, frames: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("game.movanreplay");
    std::fs::write(&path, file).unwrap();
    let run = |args: &[&str]| std::process::Command::new(binary("movan-replay")).args(args).output().unwrap();
    let path_arg = path.to_str().unwrap();
    let verify = run(&["verify", path_arg]);
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success() && out.contains(&format!("ok: {frames} frames")), "{out}");
    let info = run(&["info", path_arg]);
    let out = String::from_utf8_lossy(&info.stdout);
    assert!(info.status.success() && out.contains(match_id) && out.contains("end reason  all_left"), "{out}");
    let export = run(&["export", path_arg]);
    let lines = String::from_utf8(export.stdout).unwrap();
    assert_eq!(lines.lines().count(), frames + 1, "the header and one line per frame");
    let header: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(header["match_id"], match_id);
    // One byte changed in the last block's data: verify names the problem and exits 1.
    let mut tampered = file.to_vec();
    let at = tampered.len() - 20;
    tampered[at] ^= 0x40;
    std::fs::write(&path, &tampered).unwrap();
    let verify = run(&["verify", path_arg]);
    assert_eq!(verify.status.code(), Some(1), "{}", String::from_utf8_lossy(&verify.stderr));
    assert!(!verify.stderr.is_empty());
}
