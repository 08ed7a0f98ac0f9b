//! Starting, ticking, ordering, reloads, the state and size limits of requests.

use super::*;

#[test]
fn game_starts_when_all_ready_and_enough_players() {
    let mut h = Harness::new(EngineConfig::default());
    h.join(1);
    h.enter(1, Some("r"));
    h.prepare(1, 0);
    let events = h.drain();
    assert!(events.iter().all(|(_, e)| !matches!(e, ServerEvent::GameStart(_))), "one player is below min_players");
    match &events.last().unwrap().1 {
        ServerEvent::RoomState(s) => {
            assert_eq!(s.status, RoomStatus::Waiting);
            assert_eq!(s.members.len(), 1);
            assert!(s.members[0].ready);
        }
        other => panic!("{other:?}"),
    }
    h.join(2);
    h.enter(2, Some("r"));
    let events = h.drain();
    assert_eq!(events.len(), 2, "room_state to both members: {events:?}");
    assert!(events.iter().all(|(_, e)| matches!(e, ServerEvent::RoomState(s) if s.members.len() == 2)));
    h.prepare(2, 0);
    let events = h.drain();
    let starts: Vec<&GameStart> = events
        .iter()
        .filter_map(|(_, e)| match e {
            ServerEvent::GameStart(g) => Some(g),
            _ => None,
        })
        .collect();
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[0].members, vec!["u1", "u2"]);
    assert_eq!(starts[0].frame_interval_ms, 50);
    assert_eq!(starts[0].seed, starts[1].seed);
    assert_eq!(h.engine.poll_timeout(), Some(h.at(50)));
    assert_eq!(h.engine.stats().games, 1);
}

#[test]
fn frames_are_consecutive_and_empty_frames_are_sent() {
    let mut h = Harness::started(EngineConfig::default(), 2);
    h.tick(49);
    assert!(h.drain().is_empty());
    h.tick(50);
    let f = h.frames_of(1);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].frame_count, 0);
    assert!(f[0].actions.is_empty());
    h.tick(100);
    assert_eq!(h.frames_of(2).iter().map(|f| f.frame_count).collect::<Vec<_>>(), vec![1]);
}

#[test]
fn late_ticks_catch_up_without_skipping_or_drifting() {
    let mut h = Harness::started(EngineConfig::default(), 2);
    h.tick(175);
    let counts: Vec<u64> = h.frames_of(1).iter().map(|f| f.frame_count).collect();
    assert_eq!(counts, vec![0, 1, 2]);
    assert_eq!(h.engine.poll_timeout(), Some(h.at(200)), "deadlines stay on the start-based grid");
    h.tick(199);
    assert!(h.frames_of(1).is_empty());
    h.tick(200);
    assert_eq!(h.frames_of(1)[0].frame_count, 3);
}

#[test]
fn actions_go_to_the_frame_of_their_arrival_even_when_the_tick_is_late() {
    let mut h = Harness::started(EngineConfig::default(), 2);
    h.act(1, r#"{"a":0}"#, h.unix(10), 10);
    h.act(2, r#"{"a":1}"#, h.unix(60), 60);
    h.tick(120);
    let frames = h.frames_of(1);
    assert_eq!(frames.len(), 2);
    assert_eq!(uids(&frames[0]), vec!["u1"]);
    assert_eq!(uids(&frames[1]), vec!["u2"]);
    assert_eq!(frames[1].actions[0].action_data.get(), r#"{"a":1}"#);
}

#[test]
fn ordering_by_clamped_timestamp_then_uid_then_arrival() {
    let mut h = Harness::started(EngineConfig::default(), 3);
    // Frame 0's window is [t0, t0+50ms).
    h.act(3, r#"{"n":"liar-past"}"#, 0.0, 40); // claims the distant past: clamped to the window start
    h.act(1, r#"{"n":"future"}"#, h.unix(10_000), 20); // claims the future: clamped to its arrival (20 ms)
    h.act(2, r#"{"n":"honest"}"#, h.unix(15), 30);
    h.act(1, r#"{"n":"tie-first"}"#, h.unix(25), 31);
    h.act(2, r#"{"n":"tie-uid"}"#, h.unix(25), 32);
    h.act(1, r#"{"n":"tie-second"}"#, h.unix(25), 33);
    h.tick(50);
    let frame = &h.frames_of(1)[0];
    let names: Vec<String> = frame
        .actions
        .iter()
        .map(|a| {
            serde_json::from_str::<serde_json::Value>(a.action_data.get()).unwrap()["n"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(names, vec!["liar-past", "honest", "future", "tie-first", "tie-second", "tie-uid"]);
    let ts: Vec<f64> = frame.actions.iter().map(|a| a.timestamp).collect();
    assert_eq!(ts[0], h.unix(0), "past timestamps clamp to the window start");
    assert_eq!(ts[2], h.unix(20), "future timestamps clamp to the arrival time");
    assert_eq!(ts[1], h.unix(15));
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn every_member_gets_the_same_bytes() {
    let mut h = Harness::started(EngineConfig::default(), 3);
    h.act(2, r#"{"x":1}"#, h.unix(5), 5);
    h.tick(50);
    let mut wires = Vec::new();
    while let Some(o) = h.engine.poll_output() {
        if let Output::Send { bytes, .. } = o {
            wires.push(bytes);
        }
    }
    assert_eq!(wires.len(), 3);
    assert!(wires.iter().all(|w| w.as_ptr() == wires[0].as_ptr()), "one buffer shared by all recipients");
}

#[test]
fn reload_serves_the_broadcast_bytes_in_chunks() {
    let config = EngineConfig { reload_chunk_frames: 2, ..EngineConfig::default() };
    let mut h = Harness::started(config, 2);
    let mut broadcast = Vec::new();
    for i in 0..5u64 {
        h.act(1, &format!(r#"{{"i":{i}}}"#), h.unix(i * 50 + 1), i * 50 + 1);
        h.tick((i + 1) * 50);
        broadcast.extend(h.frames_of(2));
    }
    h.send(2, Request::ReloadFrames { start_frame: 1 }, None, 260);
    let chunks: Vec<_> = h
        .drain()
        .into_iter()
        .map(|(c, e)| match e {
            ServerEvent::Reload(r) if c == 2 => r,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        chunks.iter().map(|c| (c.start_frame, c.end_frame, c.last, c.frames.len())).collect::<Vec<_>>(),
        vec![(1, 5, false, 2), (3, 5, true, 2)]
    );
    let reloaded: Vec<&str> = chunks.iter().flat_map(|c| c.frames.iter().map(|f| f.raw.get())).collect();
    let sent: Vec<&str> = broadcast[1..].iter().map(|f| f.raw.get()).collect();
    assert_eq!(reloaded, sent);
}

#[test]
fn reload_range_and_history_bound() {
    let config = EngineConfig { history_frames: 5, ..EngineConfig::default() };
    let mut h = Harness::started(config, 2);
    h.tick(400); // frames 0..=7
    h.drain();
    h.send(1, Request::ReloadFrames { start_frame: 2 }, None, 401);
    assert_eq!(h.errors_of(1), vec![ErrorCode::HistoryExpired]);
    h.send(1, Request::ReloadFrames { start_frame: 9 }, None, 401);
    assert_eq!(h.errors_of(1), vec![ErrorCode::BadFrameRange]);
    h.send(1, Request::ReloadFrames { start_frame: 3 }, None, 401);
    let got: Vec<u64> = h
        .drain()
        .into_iter()
        .flat_map(|(_, e)| match e {
            ServerEvent::Reload(r) => r.frames.into_iter().map(|f| f.frame_count).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, vec![3, 4, 5, 6, 7]);
    h.send(1, Request::ReloadFrames { start_frame: 8 }, None, 401);
    match &h.drain()[..] {
        [(1, ServerEvent::Reload(r))] => assert!(r.last && r.frames.is_empty() && r.end_frame == 8),
        other => panic!("{other:?}"),
    }
}

#[test]
fn one_reload_at_a_time_per_connection() {
    let mut h = Harness::started(EngineConfig::default(), 2);
    h.tick(400);
    h.drain();
    h.send(1, Request::ReloadFrames { start_frame: 0 }, None, 401);
    // The writer has not finished it: it still holds the reload.
    let pending = match h.engine.poll_output() {
        Some(Output::Reload { conn, reload }) if conn.0 == 1 => reload,
        other => panic!("{other:?}"),
    };
    h.send(1, Request::ReloadFrames { start_frame: 0 }, None, 402);
    assert_eq!(h.errors_of(1), vec![ErrorCode::LimitExceeded], "a second reload while the first is being sent");
    h.send(2, Request::ReloadFrames { start_frame: 0 }, None, 402);
    assert!(matches!(&h.drain()[..], [(2, ServerEvent::Reload(_))]), "another connection is not affected");
    assert_eq!(pending.count(), 1, "the first reload is whole");
    h.send(1, Request::ReloadFrames { start_frame: 5 }, None, 403);
    assert!(matches!(&h.drain()[..], [(1, ServerEvent::Reload(r))] if r.start_frame == 5), "once it is written");
}

#[test]
fn requests_in_the_wrong_state_get_errors() {
    let config = EngineConfig { max_players: 2, max_rooms: 2, ..EngineConfig::default() };
    let mut h = Harness::new(config);
    for i in 1..=5 {
        h.join(i);
    }
    h.act(1, "{}", h.unix(0), 0);
    assert_eq!(h.errors_of(1), vec![ErrorCode::NotInRoom]);
    h.prepare(1, 0);
    assert_eq!(h.errors_of(1), vec![ErrorCode::NotInRoom]);
    h.send(1, Request::RoomLeave, None, 0);
    assert_eq!(h.errors_of(1), vec![ErrorCode::NotInRoom]);
    h.send(1, Request::ReloadFrames { start_frame: 0 }, None, 0);
    assert_eq!(h.errors_of(1), vec![ErrorCode::NotInRoom]);
    h.enter(1, Some("a"));
    h.drain();
    h.enter(1, Some("b"));
    assert_eq!(h.errors_of(1), vec![ErrorCode::AlreadyInRoom]);
    h.act(1, "{}", h.unix(0), 0);
    assert_eq!(h.errors_of(1), vec![ErrorCode::GameNotRunning]);
    h.send(1, Request::ReloadFrames { start_frame: 0 }, None, 0);
    assert_eq!(h.errors_of(1), vec![ErrorCode::GameNotRunning]);
    h.enter(2, Some("a"));
    h.enter(3, Some("a"));
    assert_eq!(h.errors_of(3), vec![ErrorCode::RoomFull]);
    h.enter(3, Some("b"));
    h.enter(4, Some("c"));
    assert_eq!(h.errors_of(4), vec![ErrorCode::TooManyRooms]);
    h.prepare(1, 0);
    h.prepare(2, 0);
    h.drain();
    h.prepare(1, 0);
    assert_eq!(h.errors_of(1), vec![ErrorCode::RoomInGame]);
    h.send(3, Request::RoomLeave, None, 0); // frees room b
    h.enter(4, Some("a"));
    assert_eq!(h.errors_of(4), vec![ErrorCode::RoomInGame]);
    assert_eq!(h.engine.stats().rooms, 1, "a refused room_enter leaves no empty room behind");
}

#[test]
fn pending_actions_are_bounded_per_room_per_player_and_in_bytes() {
    let config = EngineConfig {
        max_pending_actions: 3,
        max_actions_per_player: 2,
        max_pending_bytes: 20,
        ..EngineConfig::default()
    };
    let mut h = Harness::started(config, 2);
    for _ in 0..3 {
        h.act(1, "{}", h.unix(1), 1);
    }
    assert_eq!(h.errors_of(1), vec![ErrorCode::LimitExceeded], "per player");
    h.act(2, "{}", h.unix(1), 1);
    h.act(2, "{}", h.unix(1), 1);
    assert_eq!(h.errors_of(2), vec![ErrorCode::LimitExceeded], "per room");
    h.tick(50);
    assert_eq!(h.frames_of(1)[0].actions.len(), 3);
    h.act(1, r#"{"pad":"0123456789"}"#, h.unix(51), 51);
    assert!(h.errors_of(1).is_empty(), "limits reset after the frame");
    h.act(2, r#"{"pad":"0"}"#, h.unix(52), 52);
    assert_eq!(h.errors_of(2), vec![ErrorCode::LimitExceeded], "bytes");
}
