//! Desync detection: who gets `desync`, when, what the room decides, and what stays bounded.

use super::*;
use crate::room::{Desync, DesyncVerdict};
use movan_protocol::checksum::LEFT_DESYNC;

/// Checksums every 10 frames, compared at the latest 1 s after a frame's first report.
fn every_10() -> EngineConfig {
    EngineConfig { checksum_interval: 10, checksum_timeout: Duration::from_secs(1), ..EngineConfig::default() }
}

impl Harness {
    fn checksum(&mut self, conn: u64, frame: u64, hash: &str, at_ms: u64) {
        self.send(conn, Request::Checksum { frame, hash: hash.into() }, None, at_ms);
    }

    fn desyncs(&mut self) -> Vec<(u64, Desync)> {
        self.drain()
            .into_iter()
            .filter_map(|(c, e)| match e {
                ServerEvent::Desync(d) => Some((c, d)),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn game_start_tells_the_interval_and_agreeing_players_never_get_desync() {
    let mut h = Harness::new(every_10());
    for i in 1..=3 {
        h.join(i);
        h.enter(i, Some("r"));
    }
    for i in 1..=3 {
        h.prepare(i, 0);
    }
    let start = h.drain().into_iter().find_map(|(_, e)| match e {
        ServerEvent::GameStart(s) => Some(s),
        _ => None,
    });
    assert_eq!(start.unwrap().checksum_interval, 10);
    for n in 0..5u64 {
        let frame = n * 10;
        h.tick((frame + 1) * 50);
        for i in 1..=3 {
            h.checksum(i, frame, &format!("state-{frame}"), (frame + 1) * 50);
        }
    }
    h.tick(10_000);
    let events = h.drain();
    let bad: Vec<_> =
        events.iter().filter(|(_, e)| matches!(e, ServerEvent::Desync(_) | ServerEvent::Error(_))).collect();
    assert!(bad.is_empty(), "{bad:?}");
    h.send(1, Request::RoomLeave, None, 10_000);
    h.send(2, Request::RoomLeave, None, 10_000);
    h.send(3, Request::RoomLeave, None, 10_000);
    h.drain();
    assert_eq!(h.reports[0].first_desync_frame, None);
}

#[test]
fn a_divergent_player_is_named_as_soon_as_everyone_reported() {
    let mut h = Harness::started(every_10(), 3);
    h.tick(11 * 50);
    h.checksum(1, 10, "aa", 560);
    h.checksum(2, 10, "aa", 560);
    assert!(h.desyncs().is_empty(), "waits for the third");
    h.checksum(3, 10, "bb", 570);
    let got = h.desyncs();
    assert_eq!(got.iter().map(|(c, _)| *c).collect::<Vec<_>>(), [1, 2, 3], "every member is told");
    let d = &got[0].1;
    assert_eq!((d.frame, d.majority.as_deref()), (10, Some("aa")));
    assert_eq!(d.diverged().collect::<Vec<_>>(), ["u3"]);
    assert_eq!(d.groups[0].uids, ["u1", "u2"]);
    // Later desyncs are told too, but the report keeps the first.
    h.tick(21 * 50);
    for (i, hash) in [(1, "x"), (2, "y"), (3, "y")] {
        h.checksum(i, 20, hash, 1060);
    }
    assert_eq!(h.desyncs()[0].1.diverged().collect::<Vec<_>>(), ["u1"]);
    for i in 1..=3 {
        h.send(i, Request::RoomLeave, None, 1100);
    }
    h.drain();
    assert_eq!(h.reports[0].first_desync_frame, Some(10));
}

#[test]
fn the_deadline_compares_what_came_and_late_reports_are_ignored() {
    let mut h = Harness::started(every_10(), 3);
    h.tick(11 * 50);
    h.checksum(1, 10, "aa", 550);
    h.checksum(2, 10, "bb", 550);
    h.tick(1500);
    assert!(h.desyncs().is_empty(), "the deadline is 1 s after the first report");
    h.tick(1550);
    let got = h.desyncs();
    assert_eq!(got.len(), 3, "all three members are told, also the one that did not report");
    assert_eq!(got[0].1.majority, None, "a tie has no majority");
    h.checksum(3, 10, "aa", 1600);
    assert!(h.drain().iter().all(|(_, e)| !matches!(e, ServerEvent::Desync(_) | ServerEvent::Error(_))));
}

#[test]
fn a_disconnected_member_is_not_waited_for() {
    let mut h = Harness::started(EngineConfig { reconnect_grace: Duration::from_secs(30), ..every_10() }, 3);
    h.engine.disconnect(ConnId(3), h.at(100));
    h.tick(11 * 50);
    h.checksum(1, 10, "aa", 560);
    h.checksum(2, 10, "bb", 560);
    assert_eq!(h.desyncs().len(), 2, "compared at once: both connected members reported");
}

#[test]
fn bad_reports_get_codes_and_nothing_is_kept_for_them() {
    let mut h = Harness::started(every_10(), 2);
    h.checksum(1, 0, "aa", 10);
    assert_eq!(h.errors_of(1), [ErrorCode::BadFrameRange], "frame 0 is not broadcast yet");
    h.tick(20 * 50);
    h.checksum(1, 5, "aa", 1000);
    assert_eq!(h.errors_of(1), [ErrorCode::BadFrameRange], "not a multiple of the interval");
    h.checksum(1, 10, "aa", 1000);
    h.checksum(1, 10, "aa", 1000);
    assert_eq!(h.errors_of(1), [ErrorCode::BadMessage], "twice for one frame");
    let mut off = Harness::started(EngineConfig { checksum_interval: 0, ..EngineConfig::default() }, 2);
    off.tick(100);
    off.checksum(1, 0, "aa", 100);
    assert_eq!(off.errors_of(1), [ErrorCode::BadMessage]);
    let mut waiting = Harness::new(every_10());
    waiting.join(1);
    waiting.checksum(1, 0, "aa", 0);
    assert_eq!(waiting.errors_of(1), [ErrorCode::NotInRoom]);
    waiting.enter(1, Some("w"));
    waiting.checksum(1, 0, "aa", 0);
    assert_eq!(waiting.errors_of(1), [ErrorCode::GameNotRunning]);
}

#[test]
fn open_comparisons_are_bounded_and_settle_oldest_first() {
    let mut h = Harness::started(every_10(), 2);
    let frames = (MAX_OPEN_COMPARISONS as u64 + 4) * 10;
    h.tick((frames + 1) * 50);
    h.drain();
    // Player 1 reports every frame; player 2 disagrees on the first one only, and reports it last.
    for n in 0..=MAX_OPEN_COMPARISONS as u64 + 3 {
        h.checksum(1, n * 10, "aa", (frames + 1) * 50);
        let open = h.engine.rooms.get("r").unwrap().game.as_ref().unwrap().checksums.open_count();
        assert!(open <= MAX_OPEN_COMPARISONS, "{open} open");
    }
    assert!(h.desyncs().is_empty(), "one report alone is no comparison");
    h.checksum(2, 0, "bb", (frames + 1) * 50);
    assert!(h.errors_of(2).is_empty(), "a late report is ignored, not an error");
}

/// Rules that drop the minority, or end the game, on a desync.
struct Strict {
    end: bool,
}

impl Room for Strict {
    fn on_desync(&mut self, room: &RoomInfo<'_>, desync: &Desync) -> DesyncVerdict {
        assert_eq!(room.members.len(), 3, "the room still has everyone when it decides");
        if self.end {
            DesyncVerdict::End { results: Some(serde_json::json!({"desync_frame": desync.frame})) }
        } else {
            DesyncVerdict::DropMinority
        }
    }
}

fn strict(end: bool) -> Harness {
    let factory = move |_: &str| -> Box<dyn Room> { Box::new(Strict { end }) };
    let mut h = Harness::with_rooms(every_10(), Box::new(factory));
    for i in 1..=3 {
        h.join(i);
        h.enter(i, Some("r"));
    }
    for i in 1..=3 {
        h.prepare(i, 0);
    }
    h.drain();
    h.tick(11 * 50);
    h.drain();
    for (i, hash) in [(1, "aa"), (2, "zz"), (3, "aa")] {
        h.checksum(i, 10, hash, 560);
    }
    h
}

#[test]
fn drop_minority_takes_the_divergent_player_out_and_the_others_play_on() {
    let mut h = strict(false);
    let events = h.drain();
    let left: Vec<_> = events
        .iter()
        .filter_map(|(c, e)| match e {
            ServerEvent::RoomLeft(l) => Some((*c, l.reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(left, [(2, Some(LEFT_DESYNC.to_owned()))]);
    h.tick(12 * 50);
    assert_eq!(h.frames_of(1).len(), 1);
    let members = h.engine.rooms.get("r").unwrap().members.iter().map(|m| m.uid.clone()).collect::<Vec<_>>();
    assert_eq!(members, ["u1", "u3"]);
}

#[test]
fn end_stops_the_game_with_reason_desync() {
    let mut h = strict(true);
    let over = h.drain().into_iter().find_map(|(_, e)| match e {
        ServerEvent::GameOver(o) => Some(o),
        _ => None,
    });
    let over = over.unwrap();
    assert_eq!(over.reason, EndReason::Desync);
    assert_eq!(over.results, Some(serde_json::json!({"desync_frame": 10})));
    assert_eq!((h.reports[0].end_reason, h.reports[0].first_desync_frame), (EndReason::Desync, Some(10)));
}
