//! Spectators: what they get (the same bytes, with their delay), what they cannot do, and their limits.

use super::*;

impl Harness {
    fn spectate(&mut self, conn: u64, room: &str, at_ms: u64) {
        self.send(conn, Request::RoomSpectate { room_id: room.into() }, None, at_ms);
    }
}

/// Every frame `conn` got, live or reloaded, as raw frame JSON, in arrival order; plus whether `game_over` came.
fn frames_seen(events: &[(u64, ServerEvent)], conn: u64) -> (Vec<(u64, String)>, bool) {
    let mut frames = Vec::new();
    let mut over = false;
    for (c, e) in events {
        if *c != conn {
            continue;
        }
        match e {
            ServerEvent::Frame(f) => frames.push((f.frame_count, f.raw.get().to_owned())),
            ServerEvent::Reload(r) => frames.extend(r.frames.iter().map(|f| (f.frame_count, f.raw.get().to_owned()))),
            ServerEvent::GameOver(_) => over = true,
            _ => {}
        }
    }
    (frames, over)
}

fn spectator_count(events: &[(u64, ServerEvent)], to: u64) -> Option<u32> {
    events.iter().rev().find_map(|(c, e)| match e {
        ServerEvent::RoomState(s) if *c == to => Some(s.spectators),
        _ => None,
    })
}

#[test]
fn a_spectator_gets_the_history_then_the_same_frames_and_cannot_play() {
    let mut h = Harness::started(EngineConfig { max_players: 2, ..EngineConfig::default() }, 2);
    h.act(1, r#"{"a":1}"#, h.unix(10), 10);
    h.tick(250); // frames 0..=4
    let mut all = h.drain();
    h.join(9);
    h.spectate(9, "r", 260);
    let joined = h.drain();
    assert_eq!(spectator_count(&joined, 1), Some(1), "the players see the count");
    assert_eq!(spectator_count(&joined, 9), Some(1));
    assert!(joined.iter().any(|(c, e)| *c == 9 && matches!(e, ServerEvent::GameStart(_))));
    all.extend(joined);
    h.act(2, r#"{"b":2}"#, h.unix(270), 270);
    h.act(9, r#"{"c":3}"#, h.unix(270), 270);
    h.checksum_attempt(9);
    h.tick(500);
    let later = h.drain();
    let errors: Vec<_> = later.iter().filter(|(c, e)| *c == 9 && matches!(e, ServerEvent::Error(_))).collect();
    assert_eq!(errors.len(), 2, "neither an action nor a checksum from a spectator: {errors:?}");
    all.extend(later);
    let (player, _) = frames_seen(&all, 1);
    let (spectator, _) = frames_seen(&all, 9);
    assert_eq!(spectator, player, "every frame, byte for byte, in order");
    assert_eq!(spectator.len(), 10);
    h.send(9, Request::RoomLeave, None, 510);
    let left = h.drain();
    assert!(left.iter().any(|(c, e)| *c == 9 && matches!(e, ServerEvent::RoomLeft(_))));
    assert_eq!(spectator_count(&left, 1), Some(0));
    assert_eq!(h.engine.stats().players_in_rooms, 2, "a spectator is not a player");
}

impl Harness {
    fn checksum_attempt(&mut self, conn: u64) {
        self.send(conn, Request::Checksum { frame: 0, hash: "x".into() }, None, 270);
    }
}

#[test]
fn a_delayed_spectator_lags_by_its_delay_and_still_gets_every_frame_before_game_over() {
    let config = EngineConfig { spectator_delay_frames: 3, max_players: 2, ..EngineConfig::default() };
    let mut h = Harness::started(config, 2);
    h.tick(500); // frames 0..=9
    let mut all = h.drain();
    h.join(9);
    h.spectate(9, "r", 510);
    let joined = h.drain();
    let reloaded: Vec<_> = joined
        .iter()
        .filter_map(|(c, e)| match e {
            ServerEvent::Reload(r) if *c == 9 => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reloaded.last().unwrap().end_frame, 7, "the history up to 3 frames behind");
    all.extend(joined);
    h.tick(550); // frame 10: the spectator gets frame 7
    let tick = h.drain();
    let (seen, _) = frames_seen(&tick, 9);
    assert_eq!(seen.iter().map(|f| f.0).collect::<Vec<_>>(), [7]);
    all.extend(tick);
    h.send(9, Request::ReloadFrames { start_frame: 9 }, None, 560);
    assert_eq!(h.errors_of(9), [ErrorCode::BadFrameRange], "no peeking past the delay");
    h.send(1, Request::RoomLeave, None, 600);
    h.send(2, Request::RoomLeave, None, 600);
    all.extend(h.drain());
    let (player, _) = frames_seen(&all, 1);
    let (spectator, over) = frames_seen(&all, 9);
    assert!(over, "the spectator gets game_over");
    assert_eq!(spectator.iter().map(|f| f.0).collect::<Vec<_>>(), (0..=10).collect::<Vec<_>>());
    assert_eq!(spectator, player[..11], "the same bytes");
    assert_eq!(h.engine.spectated_room("u9"), None, "free again after the game");
}

#[test]
fn spectating_a_waiting_room_and_the_limits() {
    let config = EngineConfig { max_spectators: 1, ..EngineConfig::default() };
    let mut h = Harness::new(config);
    h.join(1);
    h.join(8);
    h.join(9);
    h.spectate(9, "nowhere", 0);
    assert_eq!(h.errors_of(9), [ErrorCode::RoomNotFound]);
    h.enter(1, Some("w"));
    h.spectate(9, "w", 0);
    h.spectate(8, "w", 0);
    assert_eq!(h.errors_of(8), [ErrorCode::RoomFull], "sync.max_spectators");
    h.spectate(9, "w", 0);
    assert_eq!(h.errors_of(9), [ErrorCode::AlreadyInRoom]);
    h.enter(9, Some("other"));
    assert_eq!(h.errors_of(9), [ErrorCode::AlreadyInRoom]);
    h.prepare(1, 0);
    assert!(h.drain().iter().all(|(_, e)| !matches!(e, ServerEvent::GameStart(_))), "a spectator is no second player");
    h.join(2);
    h.enter(2, Some("w"));
    h.prepare(2, 0);
    let started = h.drain();
    assert!(started.iter().any(|(c, e)| *c == 9 && matches!(e, ServerEvent::GameStart(_))));
    h.engine.disconnect(ConnId(9), h.at(10));
    assert_eq!(spectator_count(&h.drain(), 1), Some(0), "a spectator leaves with its connection");
    h.spectate(8, "w", 20);
    assert!(h.errors_of(8).is_empty(), "its place is free");
}

#[test]
fn spectators_of_a_room_that_closes_before_its_game_are_told() {
    let mut h = Harness::new(EngineConfig::default());
    h.join(1);
    h.join(9);
    h.enter(1, Some("w"));
    h.spectate(9, "w", 0);
    h.drain();
    h.send(1, Request::RoomLeave, None, 10);
    let left = h.drain().into_iter().find_map(|(c, e)| match e {
        ServerEvent::RoomLeft(l) if c == 9 => Some(l),
        _ => None,
    });
    assert_eq!(left.unwrap().reason.as_deref(), Some(movan_protocol::server::LEFT_ROOM_CLOSED));
    h.enter(9, Some("w2"));
    assert!(h.errors_of(9).is_empty(), "it may play elsewhere now");
}

#[test]
fn watching_again_while_the_last_history_is_still_being_sent_is_refused() {
    let mut h = Harness::started(EngineConfig::default(), 2);
    h.tick(500);
    h.drain();
    h.join(9);
    h.spectate(9, "r", 510);
    // Keep the reload unsent, as a slow connection would.
    let mut held = Vec::new();
    while let Some(out) = h.engine.poll_output() {
        if let Output::Reload { reload, .. } = out {
            held.push(reload);
        }
    }
    assert_eq!(held.len(), 1);
    h.send(9, Request::RoomLeave, None, 520);
    h.spectate(9, "r", 530);
    assert_eq!(h.errors_of(9), [ErrorCode::LimitExceeded], "spectate/leave loops cannot pile up reloads");
    drop(held);
    h.spectate(9, "r", 540);
    assert!(h.errors_of(9).is_empty(), "once the reload is written, watching again works");
}
