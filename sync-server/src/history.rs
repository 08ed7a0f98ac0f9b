//! A game's broadcast frames, bounded, and the reloads served from them.

use std::collections::VecDeque;

use bytes::Bytes;
use movan_protocol::server::encode_reload_chunk;

/// The newest frames of a game, at most `capacity` frames and `max_bytes` bytes, each the exact frame bytes that
/// were broadcast.
#[derive(Debug)]
pub struct FrameHistory {
    frames: VecDeque<Bytes>,
    first: u64,
    capacity: usize,
    bytes: usize,
    max_bytes: usize,
}

/// Why a reload cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    /// The start frame was dropped from history.
    #[error("frame {start} is no longer in history; the oldest kept frame is {oldest}")]
    Expired {
        /// Requested start.
        start: u64,
        /// Oldest frame kept.
        oldest: u64,
    },
    /// The start frame has not been broadcast yet.
    #[error("frame {start} has not been broadcast yet; the next frame is {next}")]
    NotYet {
        /// Requested start.
        start: u64,
        /// Next frame to be broadcast.
        next: u64,
    },
}

impl FrameHistory {
    /// An empty history keeping at most `capacity` frames (at least 1) and at most `max_bytes` bytes of frames
    /// (the newest frame is always kept, whatever its size).
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Self { frames: VecDeque::new(), first: 0, capacity: capacity.max(1), bytes: 0, max_bytes }
    }

    /// Bytes of frames kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The number of the next frame to be pushed.
    pub fn next_frame(&self) -> u64 {
        self.first + self.frames.len() as u64
    }

    /// The oldest frame still kept.
    pub fn oldest(&self) -> u64 {
        self.first
    }

    /// Appends the next frame's bytes, dropping the oldest frames while over either bound.
    pub fn push(&mut self, frame: Bytes) {
        while !self.frames.is_empty()
            && (self.frames.len() >= self.capacity || self.bytes + frame.len() > self.max_bytes)
            && let Some(old) = self.frames.pop_front()
        {
            self.bytes -= old.len();
            self.first += 1;
        }
        self.bytes += frame.len();
        self.frames.push_back(frame);
    }

    /// The frames from `start` to the newest, as `reload_frames` messages of at most `chunk` frames each.
    ///
    /// `start` equal to [`Self::next_frame`] is valid and yields one empty, final chunk: the client is up to date.
    /// Each message holds at most `chunk` frames and, unless it holds a single frame, at most `max_bytes` of frames.
    pub fn reload(&self, start: u64, chunk: usize, max_bytes: usize) -> Result<Reload, ReloadError> {
        let next = self.next_frame();
        if start > next {
            return Err(ReloadError::NotYet { start, next });
        }
        if start < self.first {
            return Err(ReloadError::Expired { start, oldest: self.first });
        }
        let skip = (start - self.first) as usize;
        Ok(Reload {
            in_flight: None,
            frames: self.frames.range(skip..).cloned().collect(),
            start,
            end: next,
            chunk: chunk.max(1),
            max_bytes,
            sent: 0,
            done: false,
        })
    }
}

/// A reload being served: yields `reload_frames` message bodies lazily, so a long reload costs one reference per
/// frame until the connection's writer gets to it, not a copy of the history.
#[derive(Debug)]
pub struct Reload {
    /// Held while the reload exists, so the engine sees it is still being written ([`Reload::hold`]).
    in_flight: Option<std::sync::Arc<()>>,
    frames: Vec<Bytes>,
    start: u64,
    end: u64,
    chunk: usize,
    max_bytes: usize,
    sent: usize,
    done: bool,
}

impl Reload {
    /// Caps the bytes of frames per chunk, for a transport with a smaller message limit (UDP); a single larger
    /// frame still goes alone.
    pub fn cap_chunk_bytes(&mut self, max: usize) {
        self.max_bytes = self.max_bytes.min(max);
    }

    /// Keeps `token` alive for as long as this reload exists: until the writer has sent its last chunk, or drops it
    /// with its connection.
    pub fn hold(&mut self, token: std::sync::Arc<()>) {
        self.in_flight = Some(token);
    }
}

impl Iterator for Reload {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let mut upto = self.sent;
        let mut bytes = 0;
        while let Some(frame) = self.frames.get(upto) {
            let taken = upto - self.sent;
            if taken == self.chunk || (taken > 0 && bytes + frame.len() > self.max_bytes) {
                break;
            }
            bytes += frame.len();
            upto += 1;
        }
        let first = self.start + self.sent as u64;
        let last = upto == self.frames.len();
        let body = encode_reload_chunk(first, self.end, last, &self.frames[self.sent..upto]);
        self.sent = upto;
        self.done = last;
        Some(body)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use movan_protocol::server::{ServerEvent, encode_frame, parse_server_message};

    fn history(n: u64, cap: usize) -> (FrameHistory, Vec<Bytes>) {
        let mut h = FrameHistory::new(cap, usize::MAX);
        let mut all = Vec::new();
        for i in 0..n {
            let f = encode_frame(i, &[]).frame;
            h.push(f.clone());
            all.push(f);
        }
        (h, all)
    }

    fn chunks(r: Reload) -> Vec<(u64, u64, bool, Vec<String>)> {
        r.map(|wire| match parse_server_message(&wire).unwrap() {
            ServerEvent::Reload(c) => {
                (c.start_frame, c.end_frame, c.last, c.frames.iter().map(|f| f.raw.get().to_owned()).collect())
            }
            other => panic!("{other:?}"),
        })
        .collect()
    }

    #[test]
    fn bounded_history_drops_the_oldest() {
        let (h, _) = history(10, 4);
        assert_eq!((h.oldest(), h.next_frame()), (6, 10));
        assert_eq!(h.reload(5, 10, usize::MAX).unwrap_err(), ReloadError::Expired { start: 5, oldest: 6 });
        assert_eq!(h.reload(11, 10, usize::MAX).unwrap_err(), ReloadError::NotYet { start: 11, next: 10 });
        assert!(h.reload(6, 10, usize::MAX).is_ok());
    }

    #[test]
    fn reload_is_chunked_and_byte_identical() {
        let (h, all) = history(10, 100);
        let got = chunks(h.reload(3, 3, usize::MAX).unwrap());
        assert_eq!(got.len(), 3);
        assert_eq!(
            got.iter().map(|c| (c.0, c.1, c.2)).collect::<Vec<_>>(),
            vec![(3, 10, false), (6, 10, false), (9, 10, true)]
        );
        let frames: Vec<String> = got.into_iter().flat_map(|c| c.3).collect();
        let want: Vec<String> = all[3..].iter().map(|b| String::from_utf8(b.to_vec()).unwrap()).collect();
        assert_eq!(frames, want);
    }

    #[test]
    fn exact_chunk_multiple_has_no_trailing_empty_chunk() {
        let (h, _) = history(6, 100);
        let got = chunks(h.reload(0, 3, usize::MAX).unwrap());
        assert_eq!(got.len(), 2);
        assert!(got[1].2);
    }

    #[test]
    fn up_to_date_client_gets_one_empty_final_chunk() {
        let (h, _) = history(4, 100);
        let got = chunks(h.reload(4, 3, usize::MAX).unwrap());
        assert_eq!(got, vec![(4, 4, true, vec![])]);
        let (empty, _) = history(0, 100);
        assert_eq!(chunks(empty.reload(0, 3, usize::MAX).unwrap()), vec![(0, 0, true, vec![])]);
    }

    #[test]
    fn chunks_are_bounded_in_bytes_but_never_empty() {
        let (h, all) = history(5, 100);
        let one = all[0].len();
        // Room for two frames per chunk by bytes, five by count.
        let got = chunks(h.reload(0, 5, 2 * one + 1).unwrap());
        assert_eq!(got.iter().map(|c| c.3.len()).collect::<Vec<_>>(), vec![2, 2, 1]);
        // A single frame larger than the budget still goes out, alone.
        let got = chunks(h.reload(0, 5, 1).unwrap());
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn history_is_bounded_in_bytes_too() {
        let mut h = FrameHistory::new(1000, 100);
        for i in 0..10u8 {
            h.push(Bytes::from(vec![i; 30]));
        }
        assert_eq!((h.oldest(), h.next_frame(), h.bytes()), (7, 10, 90), "the newest frames that fit in 100 bytes");
        assert!(matches!(h.reload(6, 10, 1 << 20), Err(ReloadError::Expired { start: 6, oldest: 7 })));
        h.push(Bytes::from(vec![0; 500]));
        assert_eq!((h.oldest(), h.next_frame(), h.bytes()), (10, 11, 500), "an oversized frame is still kept, alone");
    }
}
