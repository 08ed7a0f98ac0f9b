//! Replays: every frame as broadcast, the checksums, the header, and the bounds.

use movan_protocol::replay::Replay;

use super::*;

impl Harness {
    /// Everything sent since the last drain, unparsed: the `sync_frame` bodies `conn` got, and the `game_start`s.
    fn raw_frames_of(&mut self, conn: u64) -> (Vec<Bytes>, Vec<GameStart>) {
        let (mut frames, mut starts) = (Vec::new(), Vec::new());
        while let Some(o) = self.engine.poll_output() {
            match o {
                Output::Send { conn: c, bytes } if c.0 == conn => match parse(&bytes) {
                    ServerEvent::Frame(_) => frames.push(bytes),
                    ServerEvent::GameStart(s) => starts.push(s),
                    _ => {}
                },
                Output::GameEnded(game) => {
                    self.reports.push(game.report);
                    self.replays.push(game.replay);
                }
                _ => {}
            }
        }
        (frames, starts)
    }
}

fn checksums_every_10() -> EngineConfig {
    EngineConfig { checksum_interval: 10, checksum_timeout: Duration::from_secs(1), ..EngineConfig::default() }
}

#[test]
fn a_replay_holds_every_frame_as_broadcast_and_the_checksums() {
    let mut h = Harness::new(checksums_every_10());
    for i in 1..=3 {
        h.join(i);
        h.enter(i, Some("r"));
    }
    for i in 1..=3 {
        h.prepare(i, 0);
    }
    let (mut sent, starts) = h.raw_frames_of(1);
    let start = starts.into_iter().next().unwrap();
    for n in 0..40u64 {
        let at = n * 50 + 10;
        h.act(1 + n % 3, &format!("{{\"step\":{n}}}"), h.unix(at), at);
        h.act(1 + (n + 1) % 3, "{\"fire\": true,\n \"at\": [1, 2]}", h.unix(at), at + 5);
        h.tick((n + 1) * 50);
        if n == 12 || n == 22 {
            let frame = n - 2;
            for i in 1..=3 {
                let hash = if frame == 20 && i == 3 { "other" } else { "same" };
                h.send(i, Request::Checksum { frame, hash: hash.into() }, None, (n + 1) * 50);
            }
        }
        sent.extend(h.raw_frames_of(1).0);
    }
    for i in 1..=3 {
        h.send(i, Request::RoomLeave, None, 2_000);
    }
    h.raw_frames_of(1);
    assert_eq!(h.reports.len(), 1);
    let report = h.reports[0].clone();
    let replay = Replay::parse(h.replays[0].clone().expect("replays are on by default")).unwrap();
    let header = &replay.header;
    assert_eq!((header.match_id.as_str(), header.room_id.as_str()), (report.match_id.as_str(), "r"));
    assert_eq!(header.players, ["u1", "u2", "u3"]);
    assert_eq!((header.seed, header.started_at, header.frame_interval_ms), (start.seed, start.start_time, 50));
    assert_eq!((header.frame_count, header.game_frame_count, header.truncated), (40, 40, false));
    assert_eq!((header.end_reason, header.first_desync_frame), (EndReason::AllLeft, Some(20)));
    assert_eq!(header.ended_at, report.ended_at);
    assert_eq!(header.checksums.len(), 2);
    assert_eq!((header.checksums[0].frame, header.checksums[0].hash.as_deref()), (10, Some("same")));
    assert!(header.checksums[0].groups.is_empty());
    assert_eq!((header.checksums[1].frame, header.checksums[1].hash.as_deref()), (20, Some("same")));
    assert_eq!(header.checksums[1].groups.len(), 2);
    let recorded: Vec<Vec<u8>> = replay.frames().map(|f| f.unwrap().1).collect();
    let sent: Vec<Vec<u8>> = sent.iter().map(|b| b.to_vec()).collect();
    assert_eq!(recorded.len(), 40);
    assert_eq!(recorded, sent, "byte for byte what player 1 was sent");
    let verified = replay.verify();
    assert!(verified.is_ok(), "{:?}", verified.problems);
    assert_eq!(h.engine.replay_budget.held, 0, "a finished replay leaves the node's budget");
}

#[test]
fn a_game_over_its_replay_limit_keeps_a_truncated_replay() {
    let config = EngineConfig { replay_max_bytes: 8 * 1024, ..EngineConfig::default() };
    let mut h = Harness::started(config, 2);
    // Incompressible-ish action data: a long game's worth of distinct numbers.
    for n in 0..400u64 {
        let at = n * 50 + 10;
        let body = format!("{{\"noise\":\"{:x}{:x}\"}}", n.wrapping_mul(0x9E37_79B9_7F4A_7C15), n * n * 7919);
        h.act(1, &body, h.unix(at), at);
        h.tick((n + 1) * 50);
        h.drain();
    }
    h.send(1, Request::RoomLeave, None, 20_100);
    h.send(2, Request::RoomLeave, None, 20_100);
    h.drain();
    let file = h.replays[0].clone().unwrap();
    assert!(file.len() < 8 * 1024 + 2048, "{} bytes", file.len());
    let replay = Replay::parse(file).unwrap();
    assert!(replay.header.truncated);
    assert_eq!(replay.header.game_frame_count, 400);
    assert!(replay.header.frame_count > 20 && replay.header.frame_count < 400, "{}", replay.header.frame_count);
    assert!(replay.verify().is_ok(), "{:?}", replay.verify().problems);
}

#[test]
fn the_node_budget_truncates_replays_and_is_given_back() {
    let config = EngineConfig { replay_max_bytes: 1 << 20, replay_memory_bytes: 6 * 1024, ..EngineConfig::default() };
    let mut h = Harness::new(config);
    for (i, room) in [(1, "a"), (2, "a"), (3, "b"), (4, "b")] {
        h.join(i);
        h.enter(i, Some(room));
    }
    for i in 1..=4 {
        h.prepare(i, 0);
    }
    for n in 0..100u64 {
        let at = n * 50 + 10;
        h.act(1, &format!("{{\"a\":{n}}}"), h.unix(at), at);
        h.act(3, &format!("{{\"b\":{n}}}"), h.unix(at), at);
        h.tick((n + 1) * 50);
        h.drain();
        assert!(h.engine.replay_budget.held <= 6 * 1024);
    }
    for i in 1..=4 {
        h.send(i, Request::RoomLeave, None, 5_100);
    }
    h.drain();
    assert_eq!(h.replays.len(), 2);
    let truncated = h.replays.iter().map(|r| Replay::parse(r.clone().unwrap()).unwrap().header.truncated);
    assert!(truncated.clone().any(|t| t), "6 KiB cannot hold two games of 100 raw frames");
    assert_eq!(h.engine.replay_budget.held, 0);
}

#[test]
fn replays_can_be_turned_off() {
    let mut h = Harness::started(EngineConfig { replay_max_bytes: 0, ..EngineConfig::default() }, 2);
    h.tick(500);
    h.send(1, Request::RoomLeave, None, 500);
    h.send(2, Request::RoomLeave, None, 500);
    h.drain();
    assert_eq!(h.reports.len(), 1);
    assert_eq!(h.replays, [None]);
}
