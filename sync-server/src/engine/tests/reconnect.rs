//! The reconnect grace: seats kept, reloads, and when the seat is given up.

use super::*;

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
