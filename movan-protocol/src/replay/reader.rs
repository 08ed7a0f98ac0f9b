//! [`Replay`]: reads a replay file and checks it.

use sha2::{Digest as _, Sha256};

use super::{
    BLOCK_HEADER_LEN, FORMAT, MAGIC, MAX_BLOCK_RAW_BYTES, MAX_HEADER_BYTES, PREAMBLE_LEN, ReplayHeader, VERSION, hex,
};

/// A file that is not a readable replay.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// It does not start with `MOVANRPL`.
    #[error("not a Movan replay (the file does not start with MOVANRPL)")]
    NotAReplay,
    /// A version this reader does not know.
    #[error("replay format version {0} is not supported (this reader knows version 1)")]
    Version(u16),
    /// The file ends inside its preamble, its header or a block.
    #[error("the file is cut short at byte {0}")]
    Truncated(usize),
    /// The header is not the JSON of a replay header.
    #[error("bad header: {0}")]
    Header(String),
    /// A block that cannot be decompressed, or whose content does not match its block header.
    #[error("block {index} (at byte {offset}): {reason}")]
    Block {
        /// Position of the block, from 0.
        index: usize,
        /// Where its block header starts in the file.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Where one block is in the file.
#[derive(Debug, Clone, Copy)]
struct BlockRef {
    offset: usize,
    first_frame: u64,
    frames: u32,
    raw_len: usize,
    data_start: usize,
    data_end: usize,
}

/// A parsed replay file: the header and where its blocks are (frames are decompressed as they are read).
#[derive(Debug, Clone)]
pub struct Replay {
    /// The header.
    pub header: ReplayHeader,
    bytes: Vec<u8>,
    blocks: Vec<BlockRef>,
}

/// What [`Replay::verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// Frames read.
    pub frames: u64,
    /// Blocks read.
    pub blocks: usize,
    /// Checksum comparisons in the header.
    pub checksums: usize,
    /// Every inconsistency found, in file order; empty for a sound replay.
    pub problems: Vec<String>,
}

impl Verified {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)
}

impl Replay {
    /// Parses the preamble, the header and the block headers of a replay file (blocks stay compressed).
    pub fn parse(bytes: Vec<u8>) -> Result<Self, ReplayError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(ReplayError::NotAReplay);
        }
        let version =
            bytes.get(8..10).map(|b| u16::from_le_bytes([b[0], b[1]])).ok_or(ReplayError::Truncated(bytes.len()))?;
        if version != VERSION {
            return Err(ReplayError::Version(version));
        }
        let header_len = u32_at(&bytes, 10).ok_or(ReplayError::Truncated(bytes.len()))? as usize;
        if header_len > MAX_HEADER_BYTES {
            return Err(ReplayError::Header(format!("{header_len} bytes is over the limit of {MAX_HEADER_BYTES}")));
        }
        let header_end = PREAMBLE_LEN + header_len;
        let header_bytes = bytes.get(PREAMBLE_LEN..header_end).ok_or(ReplayError::Truncated(bytes.len()))?;
        let header: ReplayHeader =
            serde_json::from_slice(header_bytes).map_err(|e| ReplayError::Header(e.to_string()))?;
        if header.format != FORMAT || header.version != VERSION {
            return Err(ReplayError::Header(format!(
                "format {:?} version {} (expected {FORMAT:?} version {VERSION})",
                header.format, header.version
            )));
        }
        let mut blocks = Vec::new();
        let mut at = header_end;
        while at < bytes.len() {
            let head = bytes.get(at..at + BLOCK_HEADER_LEN).ok_or(ReplayError::Truncated(bytes.len()))?;
            let first_frame = u64::from_le_bytes(head[..8].try_into().unwrap_or_default());
            let frames = u32_at(head, 8).unwrap_or_default();
            let raw_len = u32_at(head, 12).unwrap_or_default() as usize;
            let comp_len = u32_at(head, 16).unwrap_or_default() as usize;
            let start = at + BLOCK_HEADER_LEN;
            let end = start.checked_add(comp_len).filter(|end| *end <= bytes.len());
            let Some(end) = end else { return Err(ReplayError::Truncated(bytes.len())) };
            if raw_len > MAX_BLOCK_RAW_BYTES {
                let reason = format!("raw length {raw_len} is over the limit of {MAX_BLOCK_RAW_BYTES}");
                return Err(ReplayError::Block { index: blocks.len(), offset: at, reason });
            }
            blocks.push(BlockRef { offset: at, first_frame, frames, raw_len, data_start: start, data_end: end });
            at = end;
        }
        Ok(Self { header, bytes, blocks })
    }

    /// The file's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Blocks in the file.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// Decompresses block `index`: its raw bytes.
    fn raw_block(&self, index: usize) -> Result<Vec<u8>, ReplayError> {
        let block = self.blocks[index];
        let bad = |reason: String| ReplayError::Block { index, offset: block.offset, reason };
        let raw = zstd::bulk::decompress(&self.bytes[block.data_start..block.data_end], block.raw_len)
            .map_err(|e| bad(format!("zstd: {e}")))?;
        if raw.len() != block.raw_len {
            return Err(bad(format!("decompresses to {} bytes, not {}", raw.len(), block.raw_len)));
        }
        Ok(raw)
    }

    /// Splits a block's raw bytes into frame bodies.
    fn split(&self, index: usize, raw: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, ReplayError> {
        let block = self.blocks[index];
        let bad = |reason: String| ReplayError::Block { index, offset: block.offset, reason };
        // Each frame takes at least its 4-byte length: a count beyond that is a lie, not an allocation.
        let mut frames = Vec::with_capacity((block.frames as usize).min(raw.len() / 4));
        let mut at = 0;
        while at < raw.len() {
            let len = u32_at(raw, at).ok_or_else(|| bad("a frame length is cut short".into()))? as usize;
            let body = raw.get(at + 4..at + 4 + len).ok_or_else(|| bad("a frame body is cut short".into()))?;
            frames.push((block.first_frame.saturating_add(frames.len() as u64), body.to_vec()));
            at += 4 + len;
        }
        if frames.len() != block.frames as usize {
            return Err(bad(format!("holds {} frames, not {}", frames.len(), block.frames)));
        }
        Ok(frames)
    }

    /// Every frame in file order: its number (from the block headers) and its `sync_frame` message.
    pub fn frames(&self) -> impl Iterator<Item = Result<(u64, Vec<u8>), ReplayError>> + '_ {
        (0..self.blocks.len()).flat_map(move |index| {
            let frames = self.raw_block(index).and_then(|raw| self.split(index, &raw));
            let items: Vec<Result<(u64, Vec<u8>), ReplayError>> = match frames {
                Ok(frames) => frames.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            items
        })
    }

    /// Checks everything a replay promises: blocks decompress and hold what they say, frames run 0, 1, 2, ... with
    /// no gap (each body a `sync_frame` whose `frame_count` is its number), the frame count and the SHA-256 match the
    /// header, and the checksum comparisons are in range, ordered, and agree with `first_desync_frame`.
    pub fn verify(&self) -> Verified {
        let mut report =
            Verified { blocks: self.blocks.len(), checksums: self.header.checksums.len(), ..Verified::default() };
        let mut sha = Sha256::new();
        let mut expected = 0u64;
        for index in 0..self.blocks.len() {
            let block = self.blocks[index];
            if block.first_frame != expected {
                report
                    .problems
                    .push(format!("block {index} starts at frame {}, expected {expected}", block.first_frame));
            }
            let frames = match self.raw_block(index).and_then(|raw| {
                sha.update(&raw);
                self.split(index, &raw)
            }) {
                Ok(frames) => frames,
                Err(e) => {
                    report.problems.push(e.to_string());
                    expected = block.first_frame.saturating_add(u64::from(block.frames));
                    continue;
                }
            };
            for (_, body) in frames {
                match frame_number(&body) {
                    Some(n) if n == expected => {}
                    Some(n) => report.problems.push(format!("frame {expected} holds frame_count {n}")),
                    None => report.problems.push(format!("frame {expected} is not a sync_frame message")),
                }
                expected = expected.saturating_add(1);
                report.frames += 1;
            }
        }
        let header = &self.header;
        if report.frames != header.frame_count {
            report
                .problems
                .push(format!("{} frames in the file, the header says {}", report.frames, header.frame_count));
        }
        if header.frame_count > header.game_frame_count {
            report.problems.push(format!(
                "frame_count {} is over game_frame_count {}",
                header.frame_count, header.game_frame_count
            ));
        }
        if !header.truncated && header.frame_count != header.game_frame_count {
            report
                .problems
                .push(format!("not truncated, but {} of {} frames", header.frame_count, header.game_frame_count));
        }
        let digest = hex(&sha.finalize());
        if digest != header.frames_sha256 {
            report.problems.push(format!("frames SHA-256 is {digest}, the header says {}", header.frames_sha256));
        }
        self.verify_checksums(&mut report);
        report
    }

    fn verify_checksums(&self, report: &mut Verified) {
        let header = &self.header;
        let mut previous: Option<u64> = None;
        let mut first_desync = None;
        for entry in &header.checksums {
            if previous.is_some_and(|p| entry.frame <= p) {
                report.problems.push(format!("checksum of frame {} comes after frame {previous:?}", entry.frame));
            }
            previous = Some(entry.frame);
            if entry.frame >= header.game_frame_count {
                report.problems.push(format!("checksum of frame {} is past the last frame", entry.frame));
            }
            if header.checksum_interval == 0 || !entry.frame.is_multiple_of(header.checksum_interval) {
                report.problems.push(format!(
                    "checksum of frame {} is not on the interval {}",
                    entry.frame, header.checksum_interval
                ));
            }
            if entry.groups.len() > 1 {
                first_desync.get_or_insert(entry.frame);
            } else if entry.hash.is_none() {
                report.problems.push(format!("checksum of frame {} has no hash", entry.frame));
            }
        }
        let complete = !header.checksums_truncated;
        if complete && first_desync != header.first_desync_frame {
            report.problems.push(format!(
                "first_desync_frame is {:?}, the checksums say {first_desync:?}",
                header.first_desync_frame
            ));
        }
    }
}

/// The `frame_count` of a `sync_frame` message.
fn frame_number(body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Data {
        frame_count: u64,
    }
    #[derive(serde::Deserialize)]
    struct Message {
        proto: String,
        data: Data,
    }
    let message: Message = serde_json::from_slice(body).ok()?;
    (message.proto == "sync_frame").then_some(message.data.frame_count)
}
