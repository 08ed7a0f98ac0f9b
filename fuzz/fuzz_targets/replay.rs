//! `Replay::parse`, `Replay::frames` and `Replay::verify` (docs/replay.md) on arbitrary bytes, and a round trip of
//! arbitrary frames through `ReplayWriter`.
//!
//! Input layout: byte 0 chooses the mode. Even: the rest is a replay file, read as is (`movan-replay` reads files
//! from anywhere). Odd: the rest is split at 0xFF bytes into frame bodies, written with a size limit from byte 1, and
//! read back.
//!
//! Properties:
//! - reading arbitrary bytes never panics: `parse` is `Ok` or `Err`; on `Ok`, `frames` and `verify` finish, and a
//!   `verify` without problems means `frames` yields exactly `header.frame_count` frames, all `Ok`;
//! - a written replay parses, verifies without problems, and gives back exactly the frames that fit, in order, with
//!   `truncated` set exactly when some did not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use movan_protocol::EndReason;
use movan_protocol::replay::{GameSummary, Replay, ReplayLimits, ReplayWriter};

fn read_any(bytes: &[u8]) {
    let Ok(replay) = Replay::parse(bytes.to_vec()) else { return };
    let frames: Vec<_> = replay.frames().collect();
    let verified = replay.verify();
    if verified.is_ok() {
        assert_eq!(frames.len() as u64, replay.header.frame_count);
        assert!(frames.iter().all(Result::is_ok));
    }
}

fn round_trip(limit: u8, rest: &[u8]) {
    // Real frames are sync_frame messages; verify checks that, so wrap each piece as one.
    let bodies: Vec<Vec<u8>> = rest
        .split(|b| *b == 0xFF)
        .enumerate()
        .map(|(n, piece)| {
            let data = serde_json::to_string(&String::from_utf8_lossy(piece)).expect("a string serializes");
            format!(r#"{{"proto":"sync_frame","data":{{"frame_count":{n},"actions":[],"x":{data}}}}}"#).into_bytes()
        })
        .collect();
    let max_bytes = 64 + usize::from(limit) * 64;
    let mut writer = ReplayWriter::new(ReplayLimits { max_bytes });
    for body in &bodies {
        writer.push_frame(body);
    }
    let file = writer.finish(GameSummary {
        match_id: "m".into(),
        room_id: "r".into(),
        players: vec!["1001".into()],
        seed: 1,
        frame_interval_ms: 50,
        checksum_interval: 0,
        started_at: 0.0,
        ended_at: 1.0,
        end_reason: EndReason::AllLeft,
        results: None,
        first_desync_frame: None,
        game_frame_count: bodies.len() as u64,
    });
    let replay = Replay::parse(file).expect("a written replay parses");
    let verified = replay.verify();
    assert!(verified.is_ok(), "{:?}", verified.problems);
    let read: Vec<Vec<u8>> = replay.frames().map(|f| f.expect("frames of a sound replay read").1).collect();
    assert_eq!(read[..], bodies[..read.len()]);
    assert_eq!(replay.header.truncated, read.len() < bodies.len());
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 1 => match rest.split_first() {
            Some((limit, rest)) => round_trip(*limit, rest),
            None => round_trip(0, &[]),
        },
        Some((_, rest)) => read_any(rest),
        None => read_any(&[]),
    }
});
