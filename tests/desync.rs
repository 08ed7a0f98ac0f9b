//! End-to-end desync detection: real binaries, encrypted players that hash the frames they applied and report every
//! `checksum_interval` frames. One player's simulation diverges on purpose; every member is told who at the first
//! checksum after, and the match history records the frame. Agreeing players never get `desync`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use movan_client::{AccountClient, SyncClient};
use movan_protocol::checksum::Desync;
use movan_protocol::server::ServerEvent;
use movan_tests::{Cluster, Options, WAIT, start_game};

/// A toy deterministic simulation: FNV-1a over the bytes of every frame applied, in order.
struct Sim {
    state: u64,
    /// Frame from which this player's simulation goes wrong, if it does.
    diverge_from: Option<u64>,
}

impl Sim {
    fn apply(&mut self, frame: u64, raw: &[u8]) {
        for b in raw {
            self.state = (self.state ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        if self.diverge_from.is_some_and(|f| frame >= f) {
            self.state ^= 1;
        }
    }
}

/// Plays `client` for `frames` frames, reporting every `interval`; returns the `desync`s it got.
async fn play(mut client: SyncClient, mut sim: Sim, interval: u64, frames: u64) -> Vec<Desync> {
    let mut desyncs = Vec::new();
    let mut next = 0;
    while next < frames {
        match client.next_event_timeout(WAIT).await.unwrap() {
            Some(ServerEvent::Frame(f)) => {
                assert_eq!(f.frame_count, next, "frames in order, none lost");
                sim.apply(f.frame_count, f.raw.get().as_bytes());
                if f.frame_count.is_multiple_of(interval) {
                    client.send_checksum(f.frame_count, &format!("{:016x}", sim.state)).await.unwrap();
                }
                next += 1;
            }
            Some(ServerEvent::Desync(d)) => desyncs.push(d),
            Some(ServerEvent::Error(e)) => panic!("{}: {e:?}", client.uid()),
            Some(_) => {}
            None => panic!("{}: connection closed", client.uid()),
        }
    }
    // The comparison of the last reported frame may still be on its way.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, client.next_event()).await {
        if let ServerEvent::Desync(d) = event {
            desyncs.push(d);
        }
    }
    // Wait for room_left, so that the last one out ends the game now (not at the end of a reconnect grace).
    client.leave(WAIT).await.unwrap();
    desyncs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_divergent_player_is_named_within_one_interval_and_agreeing_players_never_hear_of_desync() {
    let cluster = Cluster::start_with(Options {
        sync: vec!["checksum_interval = 10".into(), "tick_interval_ms = 20".into()],
        ..Options::default()
    })
    .await
    .unwrap();
    let (sessions, clients, _, _) = start_game(&cluster, "honest", &["ho1", "ho2", "ho3"]).await;
    let (cheat_sessions, cheat_clients, _, _) = start_game(&cluster, "diverging", &["dv1", "dv2", "dv3", "dv4"]).await;
    let mut games = Vec::new();
    for c in clients {
        games.push(tokio::spawn(play(c, Sim { state: 0xcbf2_9ce4_8422_2325, diverge_from: None }, 10, 60)));
    }
    let divergent = cheat_sessions[2].uid.clone();
    for (i, c) in cheat_clients.into_iter().enumerate() {
        let diverge_from = (i == 2).then_some(25);
        games.push(tokio::spawn(play(c, Sim { state: 0xcbf2_9ce4_8422_2325, diverge_from }, 10, 60)));
    }
    let mut results = Vec::new();
    for g in games {
        results.push(g.await.unwrap());
    }
    for (i, desyncs) in results[..3].iter().enumerate() {
        assert!(desyncs.is_empty(), "honest player {i} got {desyncs:?}");
    }
    for desyncs in &results[3..] {
        // Frames 30, 40 and 50 are compared after the divergence at 25; the first is within one interval.
        let frames: Vec<u64> = desyncs.iter().map(|d| d.frame).collect();
        assert_eq!(frames, [30, 40, 50], "{desyncs:?}");
        for d in desyncs {
            assert_eq!(d.diverged().collect::<Vec<_>>(), [divergent.as_str()]);
            assert_eq!(d.groups.len(), 2);
            assert_eq!(d.groups[0].uids.len(), 3);
        }
    }
    // Everyone left: both games ended and were reported; the history keeps the first desync frame.
    let account = AccountClient::new(&cluster.account_url);
    for (session, expected) in [(&sessions[0], None), (&cheat_sessions[0], Some(30))] {
        let mut recorded = None;
        for _ in 0..50 {
            let page = account.matches(&session.token, 10, None).await.unwrap();
            if let Some(m) = page.matches.first() {
                recorded = Some(m.report.first_desync_frame);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(recorded, Some(expected), "match history of {}", session.uid);
    }
}
