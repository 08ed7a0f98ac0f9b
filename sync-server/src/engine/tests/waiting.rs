//! Waiting rooms: the waiting-room timeout, the per-account limit, the quick-match reserve and preferences.

use super::*;
use movan_protocol::server::{LEFT_WAITING_TIMEOUT, RoomLeft};

const SEC: u64 = 1000;

impl Harness {
    fn enter_at(&mut self, conn: u64, room: Option<&str>, at_ms: u64) {
        self.send(conn, Request::RoomEnter { room_id: room.map(str::to_owned) }, None, at_ms);
    }

    /// The `room_left` messages sent since the last drain, per connection.
    fn lefts(&mut self) -> Vec<(u64, RoomLeft)> {
        self.drain()
            .into_iter()
            .filter_map(|(c, e)| match e {
                ServerEvent::RoomLeft(l) => Some((c, l)),
                _ => None,
            })
            .collect()
    }

    /// The room each connection's last `room_state` named.
    fn room_of(&mut self, conn: u64) -> Option<String> {
        self.drain()
            .into_iter()
            .filter_map(|(c, e)| match e {
                ServerEvent::RoomState(s) if c == conn => Some(s.room_id),
                _ => None,
            })
            .next_back()
    }
}

fn timeout(secs: u64) -> EngineConfig {
    EngineConfig { waiting_room_timeout: Some(Duration::from_secs(secs)), ..grace(30) }
}

#[test]
fn a_room_nobody_readies_is_closed_and_its_members_are_told_why() {
    let mut h = Harness::new(timeout(300));
    for i in 1..=3 {
        h.join(i);
        h.enter_at(i, Some("idle"), 0);
    }
    h.engine.disconnect(ConnId(3), h.at(10 * SEC)); // keeps its seat in its reconnect grace
    h.drain();
    assert_eq!(h.engine.poll_timeout(), Some(h.at(40 * SEC)), "the grace ends first");
    h.tick(40 * SEC);
    assert_eq!(h.engine.poll_timeout(), Some(h.at(300 * SEC)), "then the room's deadline, from its creation");
    h.tick(300 * SEC - 1);
    assert!(h.lefts().is_empty(), "not before its deadline");
    h.tick(300 * SEC);
    let lefts = h.lefts();
    assert_eq!(lefts.iter().map(|(c, _)| *c).collect::<Vec<_>>(), vec![1, 2], "every connected member is told");
    for (_, l) in &lefts {
        assert_eq!((l.room_id.as_str(), l.reason.as_deref()), ("idle", Some(LEFT_WAITING_TIMEOUT)));
        assert!(l.message.as_deref().is_some_and(|m| m.contains("300 s")), "{l:?}");
    }
    let stats = h.engine.stats();
    assert_eq!((stats.rooms, stats.players_in_rooms, stats.reconnecting), (0, 0, 0), "{stats:?}");
    assert!(h.engine.expiries.is_empty() && h.engine.rooms_created.is_empty() && h.engine.waiting.is_empty());
    h.enter_at(1, Some("idle"), 301 * SEC);
    assert!(h.errors_of(1).is_empty(), "the members are free to enter a room again");
    h.join(3);
    assert!(h.drain().iter().all(|(_, e)| !matches!(e, ServerEvent::RoomState(_))), "the dropped member has no seat");
}

#[test]
fn a_new_ready_flag_moves_the_deadline_and_a_started_game_is_never_closed() {
    let mut h = Harness::new(EngineConfig { max_players: 3, ..timeout(300) });
    for i in 1..=3 {
        h.join(i);
    }
    h.enter_at(1, Some("slow"), 0);
    h.enter_at(2, Some("slow"), 0);
    h.prepare(1, 200 * SEC);
    h.tick(300 * SEC);
    assert!(h.lefts().is_empty(), "a member became ready at 200 s");
    assert_eq!(h.engine.poll_timeout(), Some(h.at(500 * SEC)));
    h.prepare(1, 400 * SEC); // already ready: not new
    h.tick(500 * SEC);
    assert_eq!(h.lefts().len(), 2, "closed 300 s after the last new ready flag");

    h.enter_at(1, Some("go"), 600 * SEC);
    h.enter_at(2, Some("go"), 600 * SEC);
    h.prepare(1, 600 * SEC);
    h.prepare(2, 600 * SEC);
    assert!(h.drain().iter().any(|(_, e)| matches!(e, ServerEvent::GameStart(_))));
    assert!(h.engine.expiries.is_empty(), "a started game has no waiting deadline");
    h.tick(1000 * SEC);
    assert!(h.lefts().is_empty());
    assert_eq!(h.engine.stats().games, 1);
}

#[test]
fn waiting_forever_when_the_timeout_is_off() {
    let mut h = Harness::new(EngineConfig { waiting_room_timeout: None, ..EngineConfig::default() });
    h.join(1);
    h.enter(1, Some("r"));
    assert_eq!(h.engine.poll_timeout(), None);
    h.tick(100_000 * SEC);
    assert!(h.lefts().is_empty());
    assert_eq!(h.engine.stats().rooms, 1);
}

#[test]
fn one_account_may_have_created_only_so_many_waiting_rooms() {
    let mut h = Harness::new(EngineConfig { max_rooms_per_account: 2, ..EngineConfig::default() });
    for i in 1..=4 {
        h.join(i);
    }
    for (room, guest) in [("a", 2), ("b", 3)] {
        h.enter(1, Some(room));
        h.enter(guest, Some(room));
        h.send(1, Request::RoomLeave, None, 0); // the room stays: the guest is in it
    }
    h.drain();
    h.enter(1, Some("c"));
    let e = h.drain();
    assert!(
        e.iter().any(|(c, ev)| *c == 1
            && matches!(ev, ServerEvent::Error(b) if b.code == ErrorCode::TooManyRooms
                && b.message.contains("sync.max_rooms_per_account"))),
        "{e:?}"
    );
    h.enter(1, None);
    assert_eq!(h.errors_of(1), vec![], "quick match joins a room with a free seat");
    h.send(1, Request::RoomLeave, None, 0);
    h.enter(4, Some("a"));
    h.prepare(2, 0);
    h.prepare(4, 0);
    assert!(h.drain().iter().any(|(_, e)| matches!(e, ServerEvent::GameStart(_))));
    h.enter(1, Some("c"));
    assert_eq!(h.errors_of(1), vec![], "room a started: it no longer counts");
}

#[test]
fn quick_match_keeps_a_reserve_when_named_rooms_run_out() {
    let config = EngineConfig { max_rooms: 10, quick_match_reserved_percent: 20, ..EngineConfig::default() };
    assert_eq!(config.named_room_limit(), 8);
    let mut h = Harness::new(config);
    for i in 1..=12 {
        h.join(i);
    }
    for i in 1..=8 {
        h.enter(i, Some(&format!("named-{i}")));
    }
    assert!(h.drain().iter().all(|(_, e)| !matches!(e, ServerEvent::Error(_))));
    h.enter(9, Some("named-9"));
    let e = h.drain();
    assert!(
        e.iter().any(|(_, ev)| matches!(ev, ServerEvent::Error(b) if b.code == ErrorCode::TooManyRooms
            && b.message.contains("quick match"))),
        "{e:?}"
    );
    h.engine.config.quick_match_stale = Some(Duration::ZERO); // the named rooms are all stale
    h.enter(9, None);
    let auto = h.room_of(9).unwrap();
    assert!(auto.starts_with("auto-"), "quick match creates a room from the reserve: {auto}");
    h.prepare(9, 0);
    h.enter(10, None);
    assert_eq!(h.room_of(10), Some(auto), "... and fills it");
    h.prepare(10, 0);
    h.enter(11, None);
    assert_eq!(h.errors_of(11), vec![], "the reserve serves quick match up to max_rooms");
    assert_eq!(h.engine.stats().rooms, 10);
    h.enter(12, None);
    assert_eq!(h.errors_of(12), vec![ErrorCode::TooManyRooms], "but not beyond");
}

#[test]
fn quick_match_prefers_filling_rooms_and_skips_stale_and_abandoned_ones() {
    let mut h = Harness::new(EngineConfig { quick_match_stale: Some(Duration::from_secs(30)), ..grace(60) });
    for i in 1..=9 {
        h.join(i);
    }
    h.enter_at(1, Some("old-unready"), 0);
    h.enter_at(2, Some("two-unready"), 10 * SEC);
    h.enter_at(3, Some("two-unready"), 10 * SEC);
    h.enter_at(4, Some("one-ready"), 20 * SEC);
    h.prepare(4, 20 * SEC);
    h.drain();
    h.enter_at(5, None, 25 * SEC);
    assert_eq!(h.room_of(5).as_deref(), Some("one-ready"), "a ready member beats more members and age");
    h.enter_at(6, None, 25 * SEC);
    assert_eq!(h.room_of(6).as_deref(), Some("one-ready"));
    h.send(5, Request::RoomLeave, None, 25 * SEC);
    h.send(6, Request::RoomLeave, None, 25 * SEC);
    h.send(4, Request::RoomLeave, None, 25 * SEC);
    h.enter_at(5, None, 25 * SEC);
    assert_eq!(h.room_of(5).as_deref(), Some("two-unready"), "then more members");
    h.send(5, Request::RoomLeave, None, 25 * SEC);
    h.enter_at(6, None, 35 * SEC);
    assert_eq!(h.room_of(6).as_deref(), Some("two-unready"), "not stale yet: created at 10 s");
    h.send(6, Request::RoomLeave, None, 35 * SEC);
    h.enter_at(7, None, 45 * SEC);
    let fresh = h.room_of(7).unwrap();
    assert!(fresh.starts_with("auto-"), "nobody ready 30 s after creation: both are skipped, not {fresh}");
    h.engine.disconnect(ConnId(7), h.at(46 * SEC));
    h.enter_at(8, None, 46 * SEC);
    let other = h.room_of(8).unwrap();
    assert!(other != fresh && other.starts_with("auto-"), "a room whose members all dropped is skipped: {other}");
}

#[test]
fn churning_rooms_keeps_one_deadline_per_waiting_room() {
    let mut h = Harness::new(timeout(300));
    h.join(1);
    h.join(2);
    h.enter(2, Some("stays"));
    for i in 0..1000 {
        h.enter(1, Some(&format!("churn-{i}")));
        h.send(1, Request::RoomLeave, None, 0);
    }
    h.drain();
    assert_eq!(h.engine.expiries.len(), 1);
    assert_eq!(h.engine.rooms_created.len(), 1);
}
