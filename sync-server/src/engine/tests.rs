//! Engine tests: injected time, no sockets, no sleeps.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::room::DefaultRoom;
use movan_protocol::server::{Frame, ServerEvent, parse_server_message};

const UNIX0: f64 = 1_000_000.0;

struct Harness {
    engine: Engine,
    t0: Instant,
    closed: Vec<(ConnId, CloseReason)>,
    reports: Vec<MatchReport>,
}

fn who(uid: &str, sid: &str) -> Identity {
    Identity { uid: uid.into(), sid: sid.into(), iat: 100 }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn raw(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_owned()).unwrap()
}

impl Harness {
    fn new(config: EngineConfig) -> Self {
        Self::with_rooms(config, Box::new(crate::room::default_rooms()))
    }

    fn with_rooms(config: EngineConfig, factory: Box<dyn RoomFactory>) -> Self {
        let t0 = Instant::now();
        Self { engine: Engine::new(config, factory, t0, UNIX0, 7), t0, closed: Vec::new(), reports: Vec::new() }
    }

    fn at(&self, offset_ms: u64) -> Instant {
        self.t0 + ms(offset_ms)
    }

    fn unix(&self, offset_ms: u64) -> f64 {
        UNIX0 + offset_ms as f64 / 1000.0
    }

    /// Connects player `n` (uid `"u{n}"`) on connection `n`.
    fn join(&mut self, n: u64) {
        self.engine.connect(ConnId(n), &who(&format!("u{n}"), "s1"), self.t0);
    }

    fn send(&mut self, conn: u64, request: Request, ts: Option<f64>, at_ms: u64) {
        let now = self.at(at_ms);
        self.engine.handle(ConnId(conn), request, ts, now);
    }

    fn enter(&mut self, conn: u64, room: Option<&str>) {
        self.send(conn, Request::RoomEnter { room_id: room.map(str::to_owned) }, None, 0);
    }

    fn prepare(&mut self, conn: u64, at_ms: u64) {
        self.send(conn, Request::RoomPrepare, None, at_ms);
    }

    fn act(&mut self, conn: u64, body: &str, client_ts: f64, at_ms: u64) {
        self.send(conn, Request::SyncAction { action_data: raw(body) }, Some(client_ts), at_ms);
    }

    fn tick(&mut self, at_ms: u64) {
        let now = self.at(at_ms);
        self.engine.handle_timeout(now);
    }

    /// Everything sent since the last drain, parsed, per connection.
    fn drain(&mut self) -> Vec<(u64, ServerEvent)> {
        let mut out = Vec::new();
        while let Some(o) = self.engine.poll_output() {
            match o {
                Output::Send { conn, bytes } => out.push((conn.0, parse(&bytes))),
                Output::Reload { conn, reload } => out.extend(reload.map(|b| (conn.0, parse(&b)))),
                Output::Close { conn, reason } => self.closed.push((conn, reason)),
                Output::GameEnded(report) => self.reports.push(report),
            }
        }
        out
    }

    fn frames_of(&mut self, conn: u64) -> Vec<Frame> {
        self.drain()
            .into_iter()
            .filter_map(|(c, e)| match e {
                ServerEvent::Frame(f) if c == conn => Some(f),
                _ => None,
            })
            .collect()
    }

    fn errors_of(&mut self, conn: u64) -> Vec<ErrorCode> {
        self.drain()
            .into_iter()
            .filter_map(|(c, e)| match e {
                ServerEvent::Error(b) if c == conn => Some(b.code),
                _ => None,
            })
            .collect()
    }

    /// Players 1..=n in room "r", all ready, game started at t0.
    fn started(config: EngineConfig, n: u64) -> Self {
        let mut h = Self::new(config);
        for i in 1..=n {
            h.join(i);
            h.enter(i, Some("r"));
        }
        for i in 1..=n {
            h.prepare(i, 0);
        }
        assert!(h.drain().iter().any(|(_, e)| matches!(e, ServerEvent::GameStart(_))));
        h
    }
}

fn parse(body: &Bytes) -> ServerEvent {
    parse_server_message(body).unwrap()
}

fn uids(frame: &Frame) -> Vec<&str> {
    frame.actions.iter().map(|a| a.uid.as_str()).collect()
}

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
    let members = vec![MemberInfo { uid: "a".into(), ready: true, connected: true }];
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
        fn on_game_over(&mut self, room: &RoomInfo<'_>, reason: &str) -> Option<serde_json::Value> {
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

fn grace(secs: u64) -> EngineConfig {
    EngineConfig { reconnect_grace: Duration::from_secs(secs), ..EngineConfig::default() }
}

fn connected_flags(events: &[(u64, ServerEvent)], to: u64) -> Vec<Vec<(String, bool)>> {
    events
        .iter()
        .filter_map(|(c, e)| match e {
            ServerEvent::RoomState(s) if *c == to => {
                Some(s.members.iter().map(|m| (m.uid.clone(), m.connected)).collect())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_dropped_player_keeps_its_seat_and_reloads_exactly_the_frames_it_missed() {
    let mut h = Harness::started(grace(30), 2);
    h.tick(100);
    let before = h.frames_of(1);
    assert_eq!(before.iter().map(|f| f.frame_count).collect::<Vec<_>>(), vec![0, 1]);
    h.engine.disconnect(ConnId(1), h.at(110));
    let events = h.drain();
    assert_eq!(connected_flags(&events, 2), vec![vec![("u1".into(), false), ("u2".into(), true)]]);
    assert_eq!(h.engine.stats().reconnecting, 1);
    assert_eq!(h.engine.stats().players_in_rooms, 2, "still a member");
    // The room keeps ticking; u2 still plays and u1's seat waits.
    h.act(2, r#"{"k":1}"#, h.unix(120), 120);
    h.tick(400);
    let missed: Vec<Frame> = h.frames_of(2);
    assert_eq!(missed.iter().map(|f| f.frame_count).collect::<Vec<_>>(), (2..=7).collect::<Vec<_>>());

    // Back with a new connection (and a new token of the same session) within the grace period.
    h.engine.connect(ConnId(21), &who("u1", "s1"), h.at(410));
    let events = h.drain();
    assert_eq!(connected_flags(&events, 2), vec![vec![("u1".into(), true), ("u2".into(), true)]]);
    assert_eq!(connected_flags(&events, 21).len(), 1, "the returning player gets room_state");
    assert!(events.iter().any(|(c, e)| *c == 21 && matches!(e, ServerEvent::GameStart(_))));
    assert_eq!(h.engine.stats().reconnecting, 0);
    // It reloads from the frame after the last it saw, then receives live frames: together exactly what u2 got.
    h.send(21, Request::ReloadFrames { start_frame: 2 }, None, 411);
    h.tick(450);
    let mut seen = before.clone();
    seen.extend(
        h.drain()
            .into_iter()
            .filter_map(|(c, e)| match e {
                ServerEvent::Reload(r) if c == 21 => Some(r.frames),
                ServerEvent::Frame(f) if c == 21 => Some(vec![f]),
                _ => None,
            })
            .flatten(),
    );
    let mut reference = before;
    reference.extend(missed);
    h.tick(450);
    assert_eq!(seen.iter().map(|f| f.frame_count).collect::<Vec<_>>(), (0..=8).collect::<Vec<_>>());
    assert_eq!(&seen[..reference.len()], &reference[..], "byte-identical frames, none missing, none twice");
    assert!(seen[2..].iter().any(|f| f.actions.iter().any(|a| a.uid == "u2")), "u2's action is among them");
    // The old grace deadline passes: the player is connected, so nothing happens.
    h.tick(31_000);
    assert!(h.drain().iter().all(|(_, e)| !matches!(e, ServerEvent::RoomState(_))));
    assert_eq!(h.engine.stats().players_in_rooms, 2);
}

#[test]
fn after_the_grace_period_the_player_leaves_and_the_others_are_told() {
    let mut h = Harness::started(grace(30), 3);
    h.engine.disconnect(ConnId(1), h.at(10));
    h.drain();
    assert_eq!(h.engine.poll_timeout(), Some(h.at(50)), "the next frame comes first");
    h.tick(29_999);
    assert!(connected_flags(&h.drain(), 2).is_empty(), "still within the grace period");
    h.tick(30_010);
    let events = h.drain();
    assert_eq!(connected_flags(&events, 2), vec![vec![("u2".into(), true), ("u3".into(), true)]]);
    assert_eq!(h.engine.stats(), Stats { connections: 2, rooms: 1, games: 1, players_in_rooms: 2, reconnecting: 0 });
    // Coming back now is a fresh start: no seat, no game_start.
    h.engine.connect(ConnId(31), &who("u1", "s1"), h.at(30_020));
    assert!(h.drain().iter().all(|(c, _)| *c != 31));
    h.send(31, Request::ReloadFrames { start_frame: 0 }, None, 30_021);
    assert_eq!(h.errors_of(31), vec![ErrorCode::NotInRoom]);
}

#[test]
fn a_game_whose_players_all_dropped_ends_when_the_last_grace_runs_out() {
    let mut h = Harness::started(grace(5), 2);
    h.engine.disconnect(ConnId(1), h.at(10));
    h.engine.disconnect(ConnId(2), h.at(2_000));
    h.drain();
    h.tick(5_009);
    assert!(h.reports.is_empty() && h.drain().is_empty(), "both graces still run: nobody to send to");
    assert_eq!(h.engine.stats().reconnecting, 2);
    h.tick(5_010);
    assert_eq!(h.engine.stats().reconnecting, 1);
    assert!(h.reports.is_empty());
    h.tick(7_000);
    h.drain();
    assert_eq!(h.reports.len(), 1);
    assert_eq!(h.reports[0].end_reason, "all_left");
    assert_eq!(h.reports[0].frame_count, 140, "the room ticked on while everyone was away");
    assert_eq!(h.engine.stats(), Stats::default());
}

#[test]
fn a_waiting_room_keeps_the_seat_of_a_dropped_player_too() {
    let mut h = Harness::new(grace(30));
    h.join(1);
    h.join(2);
    h.enter(1, Some("r"));
    h.enter(2, Some("r"));
    h.prepare(1, 0);
    h.engine.disconnect(ConnId(1), h.at(1));
    h.drain();
    // u1 was ready: when u2 readies up the game starts, and u1 gets game_start when it comes back.
    h.prepare(2, 2);
    assert!(h.drain().iter().any(|(c, e)| *c == 2 && matches!(e, ServerEvent::GameStart(_))));
    h.engine.connect(ConnId(11), &who("u1", "s1"), h.at(100));
    assert!(h.drain().iter().any(|(c, e)| *c == 11 && matches!(e, ServerEvent::GameStart(_))));
}

#[test]
fn logout_or_ban_during_the_grace_period_frees_the_seat_at_once() {
    let mut h = Harness::started(grace(30), 3);
    h.engine.disconnect(ConnId(1), h.at(10));
    h.engine.disconnect(ConnId(2), h.at(10));
    h.drain();
    h.engine.revoke_session("u1", "s1", h.at(20));
    h.engine.ban("u2", 200, h.at(20));
    let events = h.drain();
    assert_eq!(
        connected_flags(&events, 3),
        vec![vec![("u2".into(), false), ("u3".into(), true)], vec![("u3".into(), true)]]
    );
    assert!(h.closed.is_empty(), "no connection to close");
    assert_eq!(h.engine.stats().reconnecting, 0);
    assert_eq!(h.engine.stats().players_in_rooms, 1);
    h.tick(40_000);
    assert!(connected_flags(&h.drain(), 3).is_empty(), "the stale grace deadlines do nothing");
}

#[test]
fn a_replaced_connection_closing_late_never_starts_a_grace_period() {
    let mut h = Harness::started(grace(30), 2);
    h.engine.connect(ConnId(10), &who("u1", "s1"), h.at(5));
    h.drain();
    h.engine.disconnect(ConnId(1), h.at(6));
    assert!(h.drain().is_empty());
    assert_eq!(h.engine.stats().reconnecting, 0);
    h.tick(40_000);
    assert!(h.drain().iter().any(|(c, e)| *c == 10 && matches!(e, ServerEvent::Frame(_))));
    assert_eq!(h.engine.stats().players_in_rooms, 2);
}
