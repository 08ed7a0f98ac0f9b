//! Late join: a room whose rules let players take a free seat in the running game.

use super::*;

#[derive(Default)]
struct OpenDoors;

impl Room for OpenDoors {
    fn can_join_in_progress(&mut self, _: &RoomInfo<'_>, _: &str) -> bool {
        true
    }
}

fn open_doors() -> Harness {
    let factory = |_: &str| -> Box<dyn Room> { Box::new(OpenDoors) };
    let mut h = Harness::with_rooms(EngineConfig::default(), Box::new(factory));
    for i in 1..=2 {
        h.join(i);
        h.enter(i, Some("r"));
    }
    h.prepare(1, 0);
    h.prepare(2, 0);
    h
}

/// Every frame `conn` got, live or reloaded, in arrival order.
fn stream(events: &[(u64, ServerEvent)], conn: u64) -> Vec<(u64, String)> {
    let mut frames = Vec::new();
    for (c, e) in events.iter().filter(|(c, _)| *c == conn) {
        let _ = c;
        match e {
            ServerEvent::Frame(f) => frames.push((f.frame_count, f.raw.get().to_owned())),
            ServerEvent::Reload(r) => frames.extend(r.frames.iter().map(|f| (f.frame_count, f.raw.get().to_owned()))),
            _ => {}
        }
    }
    frames
}

#[test]
fn a_late_joiner_catches_up_through_reload_and_sees_what_everyone_saw() {
    let mut h = open_doors();
    let mut all = h.drain();
    for t in 0..10u64 {
        h.act(1, &format!(r#"{{"t":{t}}}"#), h.unix(t * 50 + 10), t * 50 + 10);
        h.tick(t * 50 + 50);
    }
    all.extend(h.drain());
    h.join(3);
    h.enter(3, Some("r"));
    let joined = h.drain();
    let start = joined.iter().find_map(|(c, e)| match e {
        ServerEvent::GameStart(s) if *c == 3 => Some(s.clone()),
        _ => None,
    });
    let start = start.expect("the late joiner gets game_start");
    assert_eq!(start.joined_frame, Some(10));
    assert_eq!(start.members, ["u1", "u2", "u3"]);
    assert!(joined.iter().all(|(c, e)| *c == 3 || !matches!(e, ServerEvent::GameStart(_))), "only to the joiner");
    let entry = joined.iter().rev().find_map(|(c, e)| match e {
        ServerEvent::RoomState(s) if *c == 1 => s.members.iter().find(|m| m.uid == "u3").cloned(),
        _ => None,
    });
    assert_eq!(entry.unwrap().joined_frame, Some(10), "room_state says since when it is in");
    all.extend(joined);
    for t in 10..15u64 {
        h.act(3, &format!(r#"{{"late":{t}}}"#), h.unix(t * 50 + 10), t * 50 + 10);
        h.tick(t * 50 + 50);
    }
    let late = h.drain();
    assert!(late.iter().all(|(_, e)| !matches!(e, ServerEvent::Error(_))), "the late joiner plays");
    all.extend(late);
    let theirs = stream(&all, 1);
    let mine = stream(&all, 3);
    assert_eq!(mine.iter().map(|f| f.0).collect::<Vec<_>>(), (0..15).collect::<Vec<_>>());
    assert_eq!(mine, theirs, "every frame from 0, byte for byte: a simulation of them matches the others'");
    // Back after a drop: its own game_start again.
    h.engine.disconnect(ConnId(3), h.at(800));
    h.engine.connect(ConnId(33), &who("u3", "s1"), h.at(810));
    let again = h.drain().into_iter().find_map(|(c, e)| match e {
        ServerEvent::GameStart(s) if c == 33 => Some(s),
        _ => None,
    });
    assert_eq!(again.unwrap().joined_frame, Some(10));
    for c in [1, 2, 33] {
        h.send(c, Request::RoomLeave, None, 900);
    }
    h.drain();
    assert_eq!(h.reports[0].players, ["u1", "u2", "u3"], "the match lists the late joiner");
}

#[test]
fn by_default_a_running_game_refuses_newcomers() {
    let mut h = Harness::started(EngineConfig::default(), 2);
    h.join(3);
    h.enter(3, Some("r"));
    assert_eq!(h.errors_of(3), [ErrorCode::RoomInGame]);
    let mut full = open_doors();
    for i in 3..=4 {
        full.join(i);
        full.enter(i, Some("r"));
    }
    full.join(5);
    full.enter(5, Some("r"));
    assert_eq!(full.errors_of(5), [ErrorCode::RoomInGame], "no free seat (capacity 4)");
}
