#![allow(clippy::unwrap_used)]

use super::*;
use crate::checksum::Desync;
use crate::server::{ActionRef, encode_frame};

fn summary(frames: u64) -> GameSummary {
    GameSummary {
        match_id: "lobby-1-00000000000000ff".into(),
        room_id: "lobby-1".into(),
        players: vec!["1001".into(), "1002".into()],
        seed: 42,
        frame_interval_ms: 50,
        checksum_interval: 60,
        started_at: 1_700_000_000.0,
        ended_at: 1_700_000_060.0,
        end_reason: EndReason::AllLeft,
        results: None,
        first_desync_frame: None,
        game_frame_count: frames,
    }
}

/// The `sync_frame` message of frame `n`: every other frame carries an action of each player.
fn frame(n: u64) -> Vec<u8> {
    let data = serde_json::value::RawValue::from_string(format!(r#"{{"move":[{},{}]}}"#, n % 3, n % 5)).unwrap();
    let actions: Vec<ActionRef<'_>> = if n.is_multiple_of(2) {
        vec![
            ActionRef { uid: "1001", timestamp: 1_700_000_000.0 + n as f64 * 0.05, action_data: &data },
            ActionRef { uid: "1002", timestamp: 1_700_000_000.01 + n as f64 * 0.05, action_data: &data },
        ]
    } else {
        vec![]
    };
    encode_frame(n, &actions).body.to_vec()
}

fn record(frames: u64, max_bytes: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut writer = ReplayWriter::new(ReplayLimits { max_bytes });
    let bodies: Vec<Vec<u8>> = (0..frames).map(frame).collect();
    for body in &bodies {
        writer.push_frame(body);
    }
    (writer.finish(summary(frames)), bodies)
}

#[test]
fn every_frame_comes_back_byte_for_byte_and_verifies() {
    let (file, bodies) = record(5000, 16 << 20);
    let replay = Replay::parse(file.clone()).unwrap();
    assert!(replay.block_count() > 1, "5000 frames fill several 64 KiB blocks");
    let read: Vec<(u64, Vec<u8>)> = replay.frames().map(Result::unwrap).collect();
    assert_eq!(read.len(), bodies.len());
    for (i, (n, body)) in read.iter().enumerate() {
        assert_eq!((*n, body), (i as u64, &bodies[i]));
    }
    let header = &replay.header;
    assert_eq!((header.frame_count, header.game_frame_count, header.truncated), (5000, 5000, false));
    assert_eq!((header.seed, header.frame_interval_ms, header.players.len()), (42, 50, 2));
    let verified = replay.verify();
    assert!(verified.is_ok(), "{:?}", verified.problems);
    assert_eq!(verified.frames, 5000);
    let raw: usize = bodies.iter().map(|b| b.len()).sum();
    assert!(file.len() * 5 < raw, "compressed {} of {raw} raw bytes", file.len());
}

#[test]
fn the_size_limit_truncates_with_a_flag_and_keeps_a_sound_prefix() {
    let (file, bodies) = record(20_000, 20_000);
    assert!(file.len() < 20_000 + 4096, "{} bytes", file.len());
    let replay = Replay::parse(file).unwrap();
    let header = &replay.header;
    assert!(header.truncated);
    assert_eq!(header.game_frame_count, 20_000);
    assert!(header.frame_count > 500 && header.frame_count < 20_000, "{}", header.frame_count);
    let verified = replay.verify();
    assert!(verified.is_ok(), "{:?}", verified.problems);
    let read: Vec<Vec<u8>> = replay.frames().map(|f| f.unwrap().1).collect();
    assert_eq!(read, bodies[..header.frame_count as usize]);
    // No room for even one frame: an empty, truncated, sound replay.
    let (file, _) = record(10, 10);
    let replay = Replay::parse(file).unwrap();
    assert_eq!((replay.header.frame_count, replay.header.truncated), (0, true));
    assert!(replay.verify().is_ok());
}

#[test]
fn tampering_is_found() {
    let (file, _) = record(3000, 16 << 20);
    let replay = Replay::parse(file.clone()).unwrap();
    let header_end = PREAMBLE_LEN + u32::from_le_bytes(file[10..14].try_into().unwrap()) as usize;
    // A flipped byte inside the first block's compressed data.
    let mut bad = file.clone();
    bad[header_end + BLOCK_HEADER_LEN + 40] ^= 0x55;
    let verified = Replay::parse(bad).unwrap().verify();
    assert!(!verified.is_ok());
    // Another hash in the header.
    let mut header = replay.header.clone();
    header.frames_sha256 = "00".repeat(32);
    let verified = with_header(&file, &header).verify();
    assert!(verified.problems.iter().any(|p| p.contains("SHA-256")), "{:?}", verified.problems);
    // A frame count that is not the file's, and a missing flag.
    let mut header = replay.header.clone();
    header.game_frame_count += 1;
    let verified = with_header(&file, &header).verify();
    assert!(verified.problems.iter().any(|p| p.contains("not truncated")), "{:?}", verified.problems);
    // A block dropped from the middle: a gap.
    let second = header_end
        + BLOCK_HEADER_LEN
        + u32::from_le_bytes(file[header_end + 16..header_end + 20].try_into().unwrap()) as usize;
    let len = BLOCK_HEADER_LEN + u32::from_le_bytes(file[second + 16..second + 20].try_into().unwrap()) as usize;
    let mut gap = file[..second].to_vec();
    gap.extend_from_slice(&file[second + len..]);
    let verified = Replay::parse(gap).unwrap().verify();
    assert!(verified.problems.iter().any(|p| p.contains("expected")), "{:?}", verified.problems);
}

fn with_header(file: &[u8], header: &ReplayHeader) -> Replay {
    let old_len = u32::from_le_bytes(file[10..14].try_into().unwrap()) as usize;
    let json = serde_json::to_vec(header).unwrap();
    let mut out = file[..10].to_vec();
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&file[PREAMBLE_LEN + old_len..]);
    Replay::parse(out).unwrap()
}

#[test]
fn broken_files_are_errors_not_panics() {
    let (file, _) = record(500, 16 << 20);
    assert!(matches!(Replay::parse(b"hello".to_vec()), Err(ReplayError::NotAReplay)));
    let mut v2 = file.clone();
    v2[8] = 2;
    assert!(matches!(Replay::parse(v2), Err(ReplayError::Version(2))));
    for cut in [9, 12, 20, file.len() - 1] {
        assert!(matches!(Replay::parse(file[..cut].to_vec()), Err(ReplayError::Truncated(_))), "cut at {cut}");
    }
    let mut huge = file.clone();
    huge[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(Replay::parse(huge), Err(ReplayError::Header(_))));
    // Every prefix and every single-byte change parses or fails cleanly, and verifies without panicking.
    for cut in (0..file.len()).step_by(97) {
        if let Ok(replay) = Replay::parse(file[..cut].to_vec()) {
            let _ = replay.verify();
        }
    }
    for at in (0..file.len()).step_by(31) {
        let mut bad = file.clone();
        bad[at] = bad[at].wrapping_add(1);
        if let Ok(replay) = Replay::parse(bad) {
            let _ = replay.verify();
            let _ = replay.frames().count();
        }
    }
}

#[test]
fn frame_numbers_at_the_end_of_the_range_are_problems_not_overflows() {
    // Found by fuzz/fuzz_targets/replay.rs: a block that says it starts at frame u64::MAX - 1.
    let (mut file, _) = record(5, 1 << 20);
    let header_end = PREAMBLE_LEN + u32::from_le_bytes(file[10..14].try_into().unwrap()) as usize;
    file[header_end..header_end + 8].copy_from_slice(&(u64::MAX - 1).to_le_bytes());
    let replay = Replay::parse(file).unwrap();
    let numbers: Vec<u64> = replay.frames().map(|f| f.unwrap().0).collect();
    assert_eq!(numbers, [u64::MAX - 1, u64::MAX, u64::MAX, u64::MAX, u64::MAX]);
    let verified = replay.verify();
    assert!(verified.problems.iter().any(|p| p.contains("starts at frame")), "{:?}", verified.problems);
}

#[test]
fn a_block_claiming_billions_of_frames_allocates_for_what_it_holds() {
    // Found by fuzz/fuzz_targets/replay.rs: the frame count of a block header sized an allocation.
    let (mut file, _) = record(5, 1 << 20);
    let header_end = PREAMBLE_LEN + u32::from_le_bytes(file[10..14].try_into().unwrap()) as usize;
    file[header_end + 8..header_end + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let replay = Replay::parse(file).unwrap();
    assert!(replay.frames().any(|f| f.is_err()), "the count is wrong, and said so");
    assert!(!replay.verify().is_ok());
}

#[test]
fn checksum_comparisons_are_kept_and_checked_against_the_first_desync() {
    let mut writer = ReplayWriter::new(ReplayLimits { max_bytes: 1 << 20 });
    for n in 0..200 {
        writer.push_frame(&frame(n));
    }
    writer.push_checksum(60, Some("aa"), None);
    let desync = Desync::compare(120, [("1001", "bb"), ("1002", "bb"), ("1003", "cc")]).unwrap();
    writer.push_checksum(120, None, Some(&desync));
    let mut game = summary(200);
    game.first_desync_frame = Some(120);
    let replay = Replay::parse(writer.finish(game)).unwrap();
    assert_eq!(replay.header.checksums.len(), 2);
    assert_eq!(replay.header.checksums[0], ReplayChecksum { frame: 60, hash: Some("aa".into()), groups: vec![] });
    assert_eq!(replay.header.checksums[1].hash.as_deref(), Some("bb"));
    assert_eq!(replay.header.checksums[1].groups.len(), 2);
    assert!(replay.verify().is_ok(), "{:?}", replay.verify().problems);
    let mut header = replay.header.clone();
    header.first_desync_frame = None;
    let problems = with_header(replay.as_bytes(), &header).verify().problems;
    assert!(problems.iter().any(|p| p.contains("first_desync_frame")), "{problems:?}");
}

#[test]
fn the_documented_example_holds() {
    // docs/replay.md §Example: two frames, the second with one action.
    let data = serde_json::value::RawValue::from_string(r#"{"move":[1,0]}"#.into()).unwrap();
    let first = encode_frame(0, &[]).body.to_vec();
    let second =
        encode_frame(1, &[ActionRef { uid: "1001", timestamp: 1700000000.05, action_data: &data }]).body.to_vec();
    assert_eq!(first, br#"{"proto":"sync_frame","data":{"frame_count":0,"actions":[]}}"#);
    let mut writer = ReplayWriter::new(ReplayLimits { max_bytes: 1 << 20 });
    writer.push_frame(&first);
    writer.push_frame(&second);
    let replay = Replay::parse(writer.finish(summary(2))).unwrap();
    let mut raw = Vec::new();
    for body in [&first, &second] {
        raw.extend_from_slice(&(body.len() as u32).to_le_bytes());
        raw.extend_from_slice(body);
    }
    assert_eq!(&raw[..4], &[60, 0, 0, 0]);
    assert_eq!(replay.header.frames_sha256, "bf6870b0002db688a92d383351858e8144b47bd074a33714a068785020d540dd");
    let file = replay.as_bytes();
    assert_eq!(&file[..10], b"MOVANRPL\x01\x00");
}

#[test]
fn one_line_keeps_every_byte_but_line_breaks() {
    assert_eq!(one_line(b"{\"a\":\n1,\r\n\"b\":\"x\"}"), b"{\"a\": 1,  \"b\":\"x\"}");
}
