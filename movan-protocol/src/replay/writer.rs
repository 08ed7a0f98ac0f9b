//! [`ReplayWriter`]: records a game's frames as they are broadcast, compressed in blocks, within a size limit.

use sha2::{Digest as _, Sha256};

use super::{
    BLOCK_BYTES, BLOCK_HEADER_LEN, FORMAT, GameSummary, MAGIC, MAX_CHECKSUMS, ReplayChecksum, ReplayHeader, VERSION,
    ZSTD_LEVEL, hex,
};
use crate::checksum::Desync;

/// How large a recording may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayLimits {
    /// Bytes of blocks (compressed frames, with their block headers) a replay holds at most; frames beyond it are
    /// not recorded and the header says `truncated`. Raw frames waiting for compression count at their raw size.
    pub max_bytes: usize,
}

/// Records one game: push every frame as broadcast, and the checksum comparisons, then [`ReplayWriter::finish`].
pub struct ReplayWriter {
    limits: ReplayLimits,
    /// Finished blocks, each with its block header.
    blocks: Vec<u8>,
    /// Frames not compressed yet: length and body, one after the other.
    raw: Vec<u8>,
    /// Frames in `raw`.
    raw_frames: u32,
    /// Frames recorded (in blocks and in `raw`).
    frames: u64,
    sha: Sha256,
    truncated: bool,
    checksums: Vec<ReplayChecksum>,
    checksums_truncated: bool,
}

impl std::fmt::Debug for ReplayWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayWriter")
            .field("frames", &self.frames)
            .field("bytes", &self.bytes())
            .field("truncated", &self.truncated)
            .finish_non_exhaustive()
    }
}

impl ReplayWriter {
    /// An empty recording.
    pub fn new(limits: ReplayLimits) -> Self {
        Self {
            limits,
            blocks: Vec::new(),
            raw: Vec::new(),
            raw_frames: 0,
            frames: 0,
            sha: Sha256::new(),
            truncated: false,
            checksums: Vec::new(),
            checksums_truncated: false,
        }
    }

    /// Bytes held: blocks and raw frames waiting for compression.
    pub fn bytes(&self) -> usize {
        self.blocks.len() + self.raw.len()
    }

    /// Frames recorded so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Whether a frame was left out for the size limit; no frame is recorded after that.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Stops recording: this frame and every later one are left out, and the header says `truncated`.
    pub fn truncate(&mut self) {
        self.truncated = true;
    }

    /// Records the next frame's `sync_frame` message, byte for byte as broadcast. Once a frame does not fit
    /// [`ReplayLimits::max_bytes`], it and every later frame are left out.
    pub fn push_frame(&mut self, body: &[u8]) {
        if self.truncated {
            return;
        }
        let Ok(len) = u32::try_from(body.len()) else {
            self.truncated = true;
            return;
        };
        let record = 4 + body.len();
        let fits = |w: &Self| w.bytes() + record + 2 * BLOCK_HEADER_LEN <= w.limits.max_bytes;
        if !fits(self) {
            // Compressing what waits may make room.
            self.seal_block();
            if !fits(self) {
                self.truncated = true;
                return;
            }
        }
        self.raw.extend_from_slice(&len.to_le_bytes());
        self.raw.extend_from_slice(body);
        self.raw_frames += 1;
        self.frames += 1;
        if self.raw.len() >= BLOCK_BYTES {
            self.seal_block();
        }
    }

    /// Records a checksum comparison: everyone reported `hash` for `frame` (`desync` `None`), or they disagreed.
    pub fn push_checksum(&mut self, frame: u64, agreed: Option<&str>, desync: Option<&Desync>) {
        if self.checksums.len() >= MAX_CHECKSUMS {
            self.checksums_truncated = true;
            return;
        }
        let entry = match desync {
            Some(d) => ReplayChecksum { frame, hash: d.majority.clone(), groups: d.groups.clone() },
            None => ReplayChecksum { frame, hash: agreed.map(str::to_owned), groups: Vec::new() },
        };
        self.checksums.push(entry);
    }

    /// Compresses the raw frames into a block.
    fn seal_block(&mut self) {
        if self.raw_frames == 0 {
            return;
        }
        let first = self.frames - u64::from(self.raw_frames);
        let Ok(compressed) = compress(&self.raw) else {
            // Only when memory runs out: the frames waiting are left out, and so is every later one.
            self.frames = first;
            self.truncated = true;
            self.raw = Vec::new();
            self.raw_frames = 0;
            return;
        };
        self.sha.update(&self.raw);
        let raw_len = u32::try_from(self.raw.len()).unwrap_or(u32::MAX);
        let comp_len = u32::try_from(compressed.len()).unwrap_or(u32::MAX);
        self.blocks.reserve(BLOCK_HEADER_LEN + compressed.len());
        self.blocks.extend_from_slice(&first.to_le_bytes());
        self.blocks.extend_from_slice(&self.raw_frames.to_le_bytes());
        self.blocks.extend_from_slice(&raw_len.to_le_bytes());
        self.blocks.extend_from_slice(&comp_len.to_le_bytes());
        self.blocks.extend_from_slice(&compressed);
        self.raw.clear();
        self.raw.shrink_to(BLOCK_BYTES);
        self.raw_frames = 0;
    }

    /// The replay file: the header made of `game` and what was recorded, then the blocks.
    pub fn finish(mut self, game: GameSummary) -> Vec<u8> {
        self.seal_block();
        let header = ReplayHeader {
            format: FORMAT.to_owned(),
            version: VERSION,
            match_id: game.match_id,
            room_id: game.room_id,
            players: game.players,
            seed: game.seed,
            frame_interval_ms: game.frame_interval_ms,
            checksum_interval: game.checksum_interval,
            started_at: game.started_at,
            ended_at: game.ended_at,
            end_reason: game.end_reason,
            results: game.results,
            first_desync_frame: game.first_desync_frame,
            game_frame_count: game.game_frame_count,
            frame_count: self.frames,
            truncated: self.truncated || self.frames < game.game_frame_count,
            frames_sha256: hex(&self.sha.finalize()),
            checksums: self.checksums,
            checksums_truncated: self.checksums_truncated,
        };
        let header = serde_json::to_vec(&header).expect("a replay header serializes");
        let mut out = Vec::with_capacity(super::PREAMBLE_LEN + header.len() + self.blocks.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&u32::try_from(header.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.blocks);
        out
    }
}

/// `raw` as one zstd frame, by this thread's compressor: its context (some hundreds of KiB) is made once per thread,
/// not once per block, which would cost more than compressing the block.
fn compress(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    }
    COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let compressor = match cell.as_mut() {
            Some(c) => c,
            None => cell.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
        };
        compressor.compress(raw)
    })
}
