//! Replays: a finished game as a file, version 1 (`docs/replay.md` is the specification).
//!
//! ```text
//! "MOVANRPL"            8 bytes, the magic
//! version               u16 little-endian, 1
//! header length         u32 little-endian
//! header                UTF-8 JSON, a ReplayHeader
//! blocks...             until the end of the file
//!
//! block:
//!   first frame         u64 little-endian: the frame number of its first frame
//!   frames              u32 little-endian: how many frames it holds
//!   raw length          u32 little-endian: its size once decompressed
//!   compressed length   u32 little-endian
//!   compressed data     one zstd frame; decompressed, `frames` records of
//!                         body length   u32 little-endian
//!                         body          the `sync_frame` message exactly as broadcast
//! ```
//!
//! [`ReplayWriter`] records a game as it runs (the sync server keeps one per game) and [`Replay`] reads a file back
//! ([`Replay::parse`], [`Replay::frames`], [`Replay::verify`]).

mod reader;
mod writer;

use serde::{Deserialize, Serialize};

pub use reader::{Replay, ReplayError, Verified};
pub use writer::{ReplayLimits, ReplayWriter};

use crate::EndReason;
use crate::checksum::HashGroup;

/// The first 8 bytes of every replay file.
pub const MAGIC: &[u8; 8] = b"MOVANRPL";
/// The format version this crate writes and reads.
pub const VERSION: u16 = 1;
/// The `format` field of every header.
pub const FORMAT: &str = "movan-replay";
/// Bytes before the header: magic, version, header length.
pub const PREAMBLE_LEN: usize = 8 + 2 + 4;
/// Bytes of a block's own header: first frame, frames, raw length, compressed length.
pub const BLOCK_HEADER_LEN: usize = 8 + 4 + 4 + 4;
/// Raw bytes a writer gathers before compressing them into a block (a block may hold one frame more).
pub const BLOCK_BYTES: usize = 64 * 1024;
/// The largest header a reader accepts, bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024 * 1024;
/// The largest decompressed block a reader accepts, bytes.
pub const MAX_BLOCK_RAW_BYTES: usize = 64 * 1024 * 1024;
/// Checksum comparisons a header records at most; later ones set `checksums_truncated`.
pub const MAX_CHECKSUMS: usize = 4096;
/// The zstd level blocks are compressed at.
pub const ZSTD_LEVEL: i32 = 3;

/// What a replay says about its game: the JSON header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayHeader {
    /// Always `movan-replay`.
    pub format: String,
    /// The format version, the same as the file's.
    pub version: u16,
    /// The match (as in the match history).
    pub match_id: String,
    /// The room it was played in.
    pub room_id: String,
    /// Uids of everyone who played, in join order.
    pub players: Vec<String>,
    /// The `seed` of `game_start`.
    pub seed: u32,
    /// Milliseconds between frames.
    pub frame_interval_ms: u64,
    /// The `checksum_interval` of `game_start` (0: none were compared).
    pub checksum_interval: u64,
    /// The `start_time` of `game_start`, seconds since the Unix epoch.
    pub started_at: f64,
    /// When the game ended, seconds since the Unix epoch.
    pub ended_at: f64,
    /// Why it ended.
    pub end_reason: EndReason,
    /// The results the room set, if any.
    #[serde(default)]
    pub results: Option<serde_json::Value>,
    /// The first frame whose checksums disagreed, if any.
    #[serde(default)]
    pub first_desync_frame: Option<u64>,
    /// Frames the game broadcast.
    pub game_frame_count: u64,
    /// Frames in this file: `game_frame_count` unless `truncated`.
    pub frame_count: u64,
    /// True when the replay reached its size limit: it holds the first `frame_count` frames only.
    pub truncated: bool,
    /// SHA-256 (lowercase hex) of the decompressed blocks one after the other: each frame's length (u32 LE) and
    /// body, for every frame in the file.
    pub frames_sha256: String,
    /// Every checksum comparison made, oldest first.
    #[serde(default)]
    pub checksums: Vec<ReplayChecksum>,
    /// True when there were more than [`MAX_CHECKSUMS`] comparisons; the first ones are kept.
    #[serde(default)]
    pub checksums_truncated: bool,
}

/// One checksum comparison of the game.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayChecksum {
    /// The frame the hashes are of.
    pub frame: u64,
    /// The hash everyone reported, or the majority's on a desync; `None` on a desync without a majority.
    pub hash: Option<String>,
    /// On a desync, every hash with its players (the `groups` of `desync`); empty when everyone agreed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<HashGroup>,
}

/// What the sync server knows of a game once it ended, for [`ReplayWriter::finish`].
#[derive(Debug, Clone, PartialEq)]
pub struct GameSummary {
    /// The match id.
    pub match_id: String,
    /// The room.
    pub room_id: String,
    /// Everyone who played, in join order.
    pub players: Vec<String>,
    /// `game_start.seed`.
    pub seed: u32,
    /// Milliseconds between frames.
    pub frame_interval_ms: u64,
    /// `game_start.checksum_interval`.
    pub checksum_interval: u64,
    /// `game_start.start_time`.
    pub started_at: f64,
    /// Unix seconds.
    pub ended_at: f64,
    /// Why it ended.
    pub end_reason: EndReason,
    /// The room's results.
    pub results: Option<serde_json::Value>,
    /// The first desync.
    pub first_desync_frame: Option<u64>,
    /// Frames broadcast.
    pub game_frame_count: u64,
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A frame body on one line: JSON allows a line break only as whitespace between tokens, never inside a string, so
/// turning each into a space keeps the message's meaning (and every other byte).
pub fn one_line(body: &[u8]) -> Vec<u8> {
    body.iter().map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }).collect()
}

#[cfg(test)]
mod tests;
