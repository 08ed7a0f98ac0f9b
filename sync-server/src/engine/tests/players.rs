//! Quick match, game ends and reports, replaced connections, shutdown, logout and bans.

use super::*;

#[test]
fn quick_match_fills_waiting_rooms_first() {
    let mut h = Harness::new(EngineConfig::default());
    for i in 1..=5 {
        h.join(i);
        h.enter(i, None);
    }
    let states: HashMap<u64, String> = h
        .drain()
        .into_iter()
        .filter_map(|(c, e)| match e {
            ServerEvent::RoomState(s) => Some((c, s.room_id)),
            _ => None,
        })
        .collect();
    assert_eq!(states[&1], states[&4]);
    assert_ne!(states[&4], states[&5]);
    assert_eq!(h.engine.stats().rooms, 2);
}

#[test]
fn game_ends_when_everyone_left_and_the_room_is_freed() {
    let mut h = Harness::started(grace(0), 2);
    h.tick(100);
    h.send(1, Request::RoomLeave, None, 101);
    let events = h.drain();
    assert!(
        events.iter().any(|(c, e)| *c == 2 && matches!(e, ServerEvent::RoomState(s) if s.members.len() == 1)),
        "the remaining player is told: {events:?}"
    );
    let to_leaver: Vec<_> = events.iter().filter(|(c, _)| *c == 1).map(|(_, e)| e).collect();
    assert!(matches!(to_leaver.last(), Some(ServerEvent::RoomLeft(l)) if l.room_id == "r"), "{to_leaver:?}");
    assert_eq!(to_leaver.iter().filter(|e| matches!(e, ServerEvent::RoomLeft(_))).count(), 1, "{to_leaver:?}");
    h.tick(150);
    assert!(h.drain().iter().all(|(c, _)| *c != 1), "nothing of the room after room_left");
    h.engine.disconnect(ConnId(2), h.at(102));
    assert_eq!(h.engine.stats(), Stats { connections: 1, rooms: 0, games: 0, players_in_rooms: 0, reconnecting: 0 });
    assert_eq!(h.engine.poll_timeout().map(|t| t > h.at(102)), Some(true));
    h.tick(1000);
    assert!(h.drain().is_empty(), "a freed room never ticks again");
}

#[test]
fn game_over_reaches_remaining_players_when_the_room_ends_it() {
    struct FirstToScore;
    impl Room for FirstToScore {
        fn on_action(&mut self, _: &RoomInfo<'_>, _: &str, a: Box<RawValue>) -> ActionVerdict {
            if a.get().contains("cheat") {
                ActionVerdict::Reject("no cheating".into())
            } else {
                ActionVerdict::Accept(a)
            }
        }
        fn after_frame(&mut self, _: &RoomInfo<'_>, _: u64, actions: &[OrderedAction]) -> FrameOutcome {
            match actions.iter().find(|a| a.action_data.get().contains("score")) {
                Some(a) => FrameOutcome::End { results: Some(serde_json::json!({ "winner": a.uid })) },
                None => FrameOutcome::Continue,
            }
        }
    }
    let factory = |_: &str| -> Box<dyn Room> { Box::new(FirstToScore) };
    let mut h = Harness::with_rooms(EngineConfig::default(), Box::new(factory));
    for i in 1..=2 {
        h.join(i);
        h.enter(i, Some("r"));
        h.prepare(i, 0);
    }
    h.drain();
    h.act(1, r#"{"cheat":1}"#, h.unix(1), 1);
    assert_eq!(h.errors_of(1), vec![ErrorCode::ActionRejected]);
    h.tick(50);
    h.act(2, r#"{"score":1}"#, h.unix(60), 60);
    h.tick(100);
    let overs: Vec<GameOver> = h
        .drain()
        .into_iter()
        .filter_map(|(_, e)| match e {
            ServerEvent::GameOver(g) => Some(g),
            _ => None,
        })
        .collect();
    assert_eq!(overs.len(), 2);
    assert_eq!(overs[0].reason, "ended_by_room");
    assert_eq!(overs[0].frame_count, 2);
    assert_eq!(overs[0].results, Some(serde_json::json!({"winner": "u2"})));
    assert_eq!(h.engine.stats().rooms, 0);
    h.enter(1, None);
    assert!(h.errors_of(1).is_empty(), "players are free to play again");
}

#[test]
fn max_game_duration_ends_the_game() {
    let config = EngineConfig { max_game_duration: Some(ms(200)), ..EngineConfig::default() };
    let mut h = Harness::started(config, 2);
    h.tick(1000);
    let events = h.drain();
    let frames = events.iter().filter(|(c, e)| *c == 1 && matches!(e, ServerEvent::Frame(_))).count();
    assert_eq!(frames, 4);
    assert!(
        events
            .iter()
            .any(|(_, e)| matches!(e, ServerEvent::GameOver(g) if g.reason == "max_duration" && g.frame_count == 4))
    );
}

#[test]
fn a_second_connection_replaces_the_first_and_old_cleanup_is_harmless() {
    let mut h = Harness::started(EngineConfig::default(), 2);
    h.engine.connect(ConnId(10), &who("u1", "s2"), h.at(5));
    let events = h.drain();
    assert!(events.iter().any(|(c, e)| *c == 1 && matches!(e, ServerEvent::Error(b) if b.code == ErrorCode::Replaced)));
    assert!(
        events.iter().any(|(c, e)| *c == 10 && matches!(e, ServerEvent::GameStart(_))),
        "the new connection learns the game's seed and start time"
    );
    assert_eq!(h.closed, vec![(ConnId(1), CloseReason::Replaced)]);
    h.engine.disconnect(ConnId(1), h.at(6));
    h.tick(50);
    let events = h.drain();
    assert!(events.iter().any(|(c, e)| *c == 10 && matches!(e, ServerEvent::Frame(_))), "the new connection plays on");
    assert!(events.iter().all(|(c, _)| *c != 1));
    assert_eq!(h.engine.stats().players_in_rooms, 2);
}

#[test]
fn without_a_grace_period_a_disconnect_leaves_the_room() {
    let mut h = Harness::new(EngineConfig { reconnect_grace: Duration::ZERO, ..EngineConfig::default() });
    h.join(1);
    h.join(2);
    h.enter(1, Some("r"));
    h.enter(2, Some("r"));
    h.prepare(2, 0);
    h.drain();
    h.engine.disconnect(ConnId(1), h.at(1));
    // u2 alone is below min_players: no start, just the new room_state.
    match &h.drain()[..] {
        [(2, ServerEvent::RoomState(s))] => assert_eq!(s.members.len(), 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ping_echoes_the_timestamp() {
    let mut h = Harness::new(EngineConfig::default());
    h.join(1);
    h.send(1, Request::Ping, Some(12.5), 250);
    match &h.drain()[..] {
        [(1, ServerEvent::Pong(p))] => {
            assert_eq!(p.timestamp, Some(12.5));
            assert_eq!(p.server_time, h.unix(250));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn shutdown_ends_games_and_closes_everyone() {
    let mut h = Harness::started(EngineConfig::default(), 2);
    h.join(3);
    h.engine.shutdown(h.at(0));
    let events = h.drain();
    assert_eq!(
        events.iter().filter(|(_, e)| matches!(e, ServerEvent::GameOver(g) if g.reason == "shutdown")).count(),
        2
    );
    let byes = events.iter().filter(|(_, e)| matches!(e, ServerEvent::Error(b) if b.code == ErrorCode::ShuttingDown));
    assert_eq!(byes.count(), 3);
    assert_eq!(h.closed.len(), 3);
}

#[test]
fn default_room_accepts_everything() {
    let mut r = DefaultRoom;
    let members = vec![MemberInfo { uid: "a".into(), ready: true, connected: true, joined_frame: None }];
    let info =
        RoomInfo { room_id: "r", capacity: 4, min_players: 1, members: &members, playing: false, frame_count: 0 };
    assert!(r.can_join(&info, "b").is_ok());
    assert!(r.should_start(&info));
    assert!(matches!(r.on_action(&info, "a", raw("{}")), ActionVerdict::Accept(_)));
}

#[test]
fn logout_and_ban_close_the_connection_and_refuse_the_old_token() {
    let mut h = Harness::started(EngineConfig::default(), 3);
    h.engine.revoke_session("u1", "other-session", h.at(1));
    assert!(h.drain().is_empty(), "another session of the player is not this connection");
    h.engine.revoke_session("u1", "s1", h.at(2));
    let events = h.drain();
    assert!(
        events
            .iter()
            .any(|(c, e)| *c == 1 && matches!(e, ServerEvent::Error(b) if b.code == ErrorCode::SessionRevoked))
    );
    assert!(events.iter().any(|(c, e)| *c == 2 && matches!(e, ServerEvent::RoomState(s) if s.members.len() == 2)));
    assert!(
        matches!(&h.closed[..], [(ConnId(1), CloseReason::Revoked(e))] if e.code == ErrorCode::SessionRevoked),
        "{:?}",
        h.closed
    );
    h.engine.connect(ConnId(11), &who("u1", "s1"), h.at(3));
    assert_eq!(h.errors_of(11), vec![ErrorCode::SessionRevoked], "the logged-out token cannot come back");
    h.engine.connect(ConnId(12), &who("u1", "s-new"), h.at(3));
    assert!(h.errors_of(12).is_empty(), "a new login is fine");

    h.engine.ban("u2", 101, h.at(4));
    assert_eq!(h.errors_of(2), vec![ErrorCode::Banned]);
    h.engine.connect(ConnId(13), &who("u2", "s9"), h.at(5));
    assert_eq!(h.errors_of(13), vec![ErrorCode::Banned], "tokens issued before the ban are refused");
    let later = Identity { uid: "u2".into(), sid: "s10".into(), iat: 101 };
    // (iat 100 < ban time 101: refused above; iat 101: issued in the ban's second, accepted.)
    h.engine.connect(ConnId(14), &later, h.at(5));
    assert!(h.errors_of(14).is_empty(), "after an unban, new tokens work");
}

#[test]
fn every_game_end_is_reported_with_players_frames_and_duration() {
    let mut h = Harness::started(EngineConfig::default(), 2);
    h.tick(100);
    h.send(1, Request::RoomLeave, None, 120);
    h.send(2, Request::RoomLeave, None, 130);
    h.drain();
    assert_eq!(h.reports.len(), 1);
    let r = &h.reports[0];
    assert_eq!(r.room_id, "r");
    assert_eq!(r.players, vec!["u1", "u2"], "everyone who started, also those who left early");
    assert_eq!((r.frame_count, r.end_reason.as_str()), (2, "all_left"));
    assert!((r.duration_secs - 0.130).abs() < 1e-9, "{}", r.duration_secs);
    assert_eq!(r.started_at, h.unix(0));
    assert!(r.match_id.starts_with("r-"));
}

#[test]
fn rooms_can_set_results_for_any_ending() {
    struct Scored;
    impl Room for Scored {
        fn on_game_over(&mut self, room: &RoomInfo<'_>, reason: EndReason) -> Option<serde_json::Value> {
            Some(serde_json::json!({ "reason_seen": reason, "frames": room.frame_count }))
        }
    }
    let factory = |_: &str| -> Box<dyn Room> { Box::new(Scored) };
    let config = EngineConfig { max_game_duration: Some(ms(100)), ..EngineConfig::default() };
    let mut h = Harness::with_rooms(config, Box::new(factory));
    for i in 1..=2 {
        h.join(i);
        h.enter(i, Some("r"));
        h.prepare(i, 0);
    }
    h.tick(500);
    let over = h
        .drain()
        .into_iter()
        .find_map(|(_, e)| match e {
            ServerEvent::GameOver(g) => Some(g),
            _ => None,
        })
        .unwrap();
    assert_eq!(over.results, Some(serde_json::json!({"reason_seen": "max_duration", "frames": 2})));
    assert_eq!(h.reports[0].results, over.results);
}
