//! End-to-end late join: `examples/drop_in.rs` (a room whose `can_join_in_progress` says yes) in place of the stock
//! sync server. Two encrypted players start a game and play; a third enters the running room, gets `game_start`
//! with `joined_frame`, catches up through the reload, then plays on. Its simulation of every frame matches the
//! others', frame for frame and byte for byte, and its actions land like theirs.
#![allow(clippy::unwrap_used)]

use movan_client::SyncClient;
use movan_protocol::server::{Frame, ServerEvent};
use movan_tests::{Cluster, Options, WAIT, connect, login, start_game};
use serde_json::json;

/// A toy deterministic simulation: FNV-1a over the bytes of every frame applied, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sim(u64);

impl Sim {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn apply(&mut self, frame: &Frame) {
        for b in frame.raw.get().as_bytes() {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// Plays until frame `until` (exclusive): applies each frame in order (reloaded ones too), sends an action per
/// live frame; returns the frames applied and the state after each.
async fn play(client: &mut SyncClient, mut frames: Vec<Frame>, until: u64) -> (Vec<Frame>, Vec<Sim>) {
    let mut sim = Sim::new();
    let mut states = Vec::new();
    for f in &frames {
        sim.apply(f);
        states.push(sim);
    }
    while (frames.len() as u64) < until {
        let live = match client.next_event_timeout(WAIT).await.unwrap() {
            Some(ServerEvent::Frame(f)) => vec![f],
            Some(ServerEvent::Reload(chunk)) => chunk.frames,
            Some(ServerEvent::Error(e)) => panic!("{}: {e:?}", client.uid()),
            Some(_) => continue,
            None => panic!("{}: closed", client.uid()),
        };
        for f in live {
            if f.frame_count < frames.len() as u64 {
                continue;
            }
            assert_eq!(f.frame_count, frames.len() as u64, "{}: frames in order, none lost", client.uid());
            sim.apply(&f);
            states.push(sim);
            frames.push(f);
        }
        client.send_action(&json!({"from": client.uid(), "at": frames.len()})).await.unwrap();
    }
    (frames, states)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_catches_up_and_its_simulation_matches_the_others() {
    let cluster = Cluster::start_with(Options {
        sync: vec!["tick_interval_ms = 20".into(), "min_players = 2".into()],
        sync_example: Some("drop_in"),
        ..Options::default()
    })
    .await
    .unwrap();
    let (_, clients, _, _) = start_game(&cluster, "drop-in", &["lj1", "lj2"]).await;
    let mut early = Vec::new();
    for mut c in clients {
        early.push(tokio::spawn(async move {
            let played = play(&mut c, Vec::new(), 120).await;
            c.leave(WAIT).await.unwrap();
            played
        }));
    }
    // Let the game run a while, then come in.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let account = movan_client::AccountClient::new(&cluster.account_url);
    let session = login(&account, "lj3").await;
    let mut late = connect(&session).await;
    late.enter_room(Some("drop-in")).await.unwrap();
    let start = match late.wait_for(|e| matches!(e, ServerEvent::GameStart(_)), WAIT).await.unwrap() {
        ServerEvent::GameStart(g) => g,
        _ => unreachable!(),
    };
    let joined = start.joined_frame.expect("a late joiner's game_start says when it joined");
    assert!(joined >= 10, "joined at frame {joined}: the game was running");
    assert_eq!(start.members.len(), 3);
    // The reload of everything before `joined` comes first; `play` takes it and the live frames in order.
    let (late_frames, late_states) = play(&mut late, Vec::new(), 120).await;
    late.leave(WAIT).await.unwrap();
    let mut results = Vec::new();
    for g in early {
        results.push(g.await.unwrap());
    }
    for (frames, states) in &results {
        assert_eq!(frames, &late_frames, "the late joiner saw every frame the others saw, byte for byte");
        assert_eq!(states, &late_states, "and its simulation is in the same state after every frame");
    }
    let from_late = late_frames.iter().flat_map(|f| &f.actions).filter(|a| a.uid == session.uid).count();
    assert!(from_late > 20, "the late joiner's actions landed: {from_late}");
    assert!(
        late_frames[..joined as usize].iter().all(|f| f.actions.iter().all(|a| a.uid != session.uid)),
        "and none before it joined"
    );
}
