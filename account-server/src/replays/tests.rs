#![allow(clippy::unwrap_used)]

use super::*;

fn settings(upload_max_bytes: u64) -> ReplaySettings {
    ReplaySettings {
        max_bytes: 1000,
        retention: ReplayRetention { max_count: 10, max_bytes: 10_000 },
        upload_max_bytes,
        upload_timeout_secs: 60,
    }
}

fn chunk(id: &str, offset: u64, total_len: u64) -> ReplayChunk {
    ReplayChunk { match_id: id.into(), offset, total_len, data: String::new() }
}

#[test]
fn chunks_in_order_make_the_file() {
    let (uploads, s) = (Uploads::default(), settings(2000));
    assert_eq!(uploads.add(&s, "sync-1", &chunk("m", 0, 10), b"0123", 100).unwrap(), Progress::Partial(4));
    assert_eq!(uploads.held(), 10, "an upload counts at its full size from its first chunk");
    assert_eq!(uploads.add(&s, "sync-1", &chunk("m", 4, 10), b"4567", 101).unwrap(), Progress::Partial(8));
    let done = uploads.add(&s, "sync-1", &chunk("m", 8, 10), b"89", 102).unwrap();
    assert_eq!(done, Progress::Complete(b"0123456789".to_vec()));
    assert_eq!(uploads.held(), 0);
}

#[test]
fn a_chunk_out_of_place_drops_the_upload_and_offset_0_starts_over() {
    let (uploads, s) = (Uploads::default(), settings(2000));
    uploads.add(&s, "sync-1", &chunk("m", 0, 10), b"0123", 100).unwrap();
    let skipped = uploads.add(&s, "sync-1", &chunk("m", 6, 10), b"67", 100).unwrap_err();
    assert_eq!(skipped.code(), codes::REPLAY_OUT_OF_ORDER);
    assert_eq!(uploads.held(), 0);
    assert_eq!(
        uploads.add(&s, "sync-1", &chunk("m", 4, 10), b"45", 100).unwrap_err().code(),
        codes::REPLAY_OUT_OF_ORDER
    );
    // Starting over, twice: the second start replaces the first.
    uploads.add(&s, "sync-1", &chunk("m", 0, 10), b"01", 100).unwrap();
    uploads.add(&s, "sync-1", &chunk("m", 0, 10), b"0123", 100).unwrap();
    assert_eq!(uploads.held(), 10);
    // Another node cannot write into it, and a chunk past the end is refused.
    assert_eq!(
        uploads.add(&s, "sync-2", &chunk("m", 4, 10), b"45", 100).unwrap_err().code(),
        codes::REPLAY_OUT_OF_ORDER
    );
    uploads.add(&s, "sync-1", &chunk("m", 0, 10), b"0123", 100).unwrap();
    let past = uploads.add(&s, "sync-1", &chunk("m", 4, 10), b"4567890", 100).unwrap_err();
    assert_eq!(past.code(), codes::REPLAY_OUT_OF_ORDER);
}

#[test]
fn sizes_are_bounded_and_stale_uploads_make_room() {
    let (uploads, s) = (Uploads::default(), settings(1500));
    assert_eq!(uploads.add(&s, "sync-1", &chunk("big", 0, 1001), b"x", 0).unwrap_err().code(), codes::REPLAY_TOO_LARGE);
    let huge = vec![0u8; REPLAY_CHUNK_BYTES + 1];
    let s_large = ReplaySettings { max_bytes: 1 << 30, upload_max_bytes: 1 << 30, ..s };
    assert_eq!(
        uploads.add(&s_large, "sync-1", &chunk("c", 0, 1 << 20), &huge, 0).unwrap_err().code(),
        codes::REPLAY_TOO_LARGE
    );
    uploads.add(&s, "sync-1", &chunk("a", 0, 1000), b"x", 100).unwrap();
    let full = uploads.add(&s, "sync-1", &chunk("b", 0, 600), b"y", 120).unwrap_err();
    assert_eq!(full.code(), codes::UPLOADS_FULL);
    // 61 s after its last chunk, `a` is stale and goes when the next upload starts.
    assert_eq!(uploads.add(&s, "sync-1", &chunk("b", 0, 600), b"y", 161).unwrap(), Progress::Partial(1));
    assert_eq!(uploads.held(), 600);
    assert_eq!(
        uploads.add(&s, "sync-1", &chunk("a", 1, 1000), b"x", 161).unwrap_err().code(),
        codes::REPLAY_OUT_OF_ORDER
    );
}
