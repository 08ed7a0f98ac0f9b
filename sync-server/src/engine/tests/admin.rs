//! What an admin does to rooms and players: list, end, kick.

use super::*;

#[test]
fn rooms_are_listed_by_id_with_members_and_frames() {
    let mut h = Harness::started(EngineConfig::default(), 2);
    h.join(9);
    h.enter(9, Some("a-waiting"));
    h.tick(500);
    h.drain();
    let (rooms, truncated) = h.engine.room_summaries(10);
    assert!(!truncated);
    let ids: Vec<&str> = rooms.iter().map(|r| r.room_id.as_str()).collect();
    assert_eq!(ids, ["a-waiting", "r"]);
    assert_eq!((rooms[0].state.as_str(), rooms[0].frame_count, rooms[0].started_at), ("waiting", 0, None));
    assert_eq!((rooms[1].state.as_str(), rooms[1].frame_count), ("playing", 10));
    assert_eq!(rooms[1].members.iter().map(|m| m.uid.as_str()).collect::<Vec<_>>(), ["u1", "u2"]);
    assert!(rooms[1].members.iter().all(|m| m.ready && m.connected));
    assert_eq!(h.engine.room_summaries(1), (vec![rooms[0].clone()], true));
}

#[test]
fn an_admin_ends_a_game_or_closes_a_waiting_room() {
    let mut h = Harness::started(EngineConfig::default(), 2);
    h.join(9);
    h.enter(9, Some("w"));
    h.tick(200);
    h.drain();
    assert_eq!(h.engine.end_room("r", "maintenance", h.at(200)), Ok(true));
    let over: Vec<_> = h
        .drain()
        .into_iter()
        .filter_map(|(c, e)| match e {
            ServerEvent::GameOver(o) => Some((c, o)),
            _ => None,
        })
        .collect();
    assert_eq!(over.len(), 2);
    assert!(over.iter().all(|(_, o)| o.reason == EndReason::EndedByAdmin));
    assert_eq!(over[0].1.results, Some(serde_json::json!({"reason": "maintenance"})));
    assert_eq!(h.reports[0].end_reason, EndReason::EndedByAdmin);
    assert_eq!(h.engine.end_room("w", "closing", h.at(200)), Ok(false));
    let left = h.drain().into_iter().find_map(|(c, e)| match e {
        ServerEvent::RoomLeft(l) if c == 9 => Some(l),
        _ => None,
    });
    assert_eq!(left.unwrap().reason.as_deref(), Some(movan_protocol::server::LEFT_ROOM_CLOSED));
    assert_eq!(h.engine.end_room("w", "again", h.at(200)), Err(NoSuchRoom("w".into())));
    assert_eq!(h.engine.stats().rooms, 0);
}

#[test]
fn a_kicked_player_is_told_why_and_leaves_its_room_at_once() {
    let mut h = Harness::started(grace(30), 3);
    h.tick(100);
    h.drain();
    assert!(h.engine.admin_kick("u3", "afk", h.at(100)));
    let events = h.drain();
    let told = events.iter().find_map(|(c, e)| match e {
        ServerEvent::Error(b) if *c == 3 => Some(b.clone()),
        _ => None,
    });
    let told = told.unwrap();
    assert_eq!(told.code, ErrorCode::Kicked);
    assert!(told.message.contains("afk"));
    assert!(h.closed.iter().any(|(c, _)| *c == ConnId(3)));
    let (rooms, _) = h.engine.room_summaries(10);
    assert_eq!(rooms[0].members.len(), 2, "no reconnect grace for a kicked player");
    assert!(!h.engine.admin_kick("nobody", "x", h.at(100)));
}
