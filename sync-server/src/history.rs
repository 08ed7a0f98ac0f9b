//! A game's broadcast frames, bounded, and the reloads served from them.
//!
//! The history keeps its frames in segments of up to [`SEGMENT_FRAMES`] frames or [`SEGMENT_BYTES`] bytes. A closed
//! segment is immutable and shared: a [`Reload`] holds only weak references to the closed segments it covers, plus a
//! copy of the newest, still-open one, and encodes each `reload_frames` chunk when the connection's writer asks for
//! it. So a reload waiting in a send queue pins at most one segment of frames, not the history: frames the history
//! drops meanwhile are freed, and the reload then ends with `history_expired`.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use movan_protocol::server::{ErrorBody, ServerMessage, encode_reload_chunk};
use movan_protocol::{ErrorCode, ProtocolError};

/// Frames per history segment, at most.
pub const SEGMENT_FRAMES: usize = 256;
/// A segment closes once it holds this many bytes of frames (or [`SEGMENT_FRAMES`] frames).
pub const SEGMENT_BYTES: usize = 64 * 1024;

/// The newest frames of a game, at most `capacity` frames and `max_bytes` bytes, each the exact frame bytes that
/// were broadcast. Frames dropped from the front of the oldest segment are freed with the whole segment, so memory
/// exceeds `max_bytes` by less than one segment.
#[derive(Debug)]
pub struct FrameHistory {
    /// Closed segments, oldest first.
    closed: VecDeque<Arc<[Bytes]>>,
    /// Frames at the front of `closed[0]` that are no longer kept.
    head_dropped: usize,
    /// The newest frames, not yet in a closed segment.
    open: Vec<Bytes>,
    open_bytes: usize,
    /// Number of the oldest kept frame.
    first: u64,
    /// Frames kept.
    len: usize,
    capacity: usize,
    /// Bytes of the kept frames.
    bytes: usize,
    max_bytes: usize,
    /// Frames kept before the newest whatever `max_bytes` (for spectators' delay).
    keep: usize,
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
        Self {
            closed: VecDeque::new(),
            head_dropped: 0,
            open: Vec::new(),
            open_bytes: 0,
            first: 0,
            len: 0,
            capacity: capacity.max(1),
            bytes: 0,
            max_bytes,
            keep: 0,
        }
    }

    /// Keeps at least `frames` frames before the newest, whatever `max_bytes` (but never over `capacity`): a
    /// delayed spectator stream needs them.
    pub fn keep_at_least(mut self, frames: usize) -> Self {
        self.keep = frames;
        self
    }

    /// Frame `n`'s bytes, if it is still kept.
    pub fn frame(&self, n: u64) -> Option<Bytes> {
        if n < self.first || n >= self.next_frame() {
            return None;
        }
        let mut at = (n - self.first) as usize + self.head_dropped;
        for segment in &self.closed {
            if at < segment.len() {
                return Some(segment[at].clone());
            }
            at -= segment.len();
        }
        self.open.get(at).cloned()
    }

    /// Bytes of frames kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The number of the next frame to be pushed.
    pub fn next_frame(&self) -> u64 {
        self.first + self.len as u64
    }

    /// The oldest frame still kept.
    pub fn oldest(&self) -> u64 {
        self.first
    }

    /// Appends the next frame's bytes, dropping the oldest frames while over either bound.
    pub fn push(&mut self, frame: Bytes) {
        while self.len > 0
            && (self.len >= self.capacity || (self.len > self.keep && self.bytes + frame.len() > self.max_bytes))
        {
            self.drop_oldest();
        }
        self.bytes += frame.len();
        self.open_bytes += frame.len();
        self.len += 1;
        self.open.push(frame);
        if self.open.len() >= SEGMENT_FRAMES || self.open_bytes >= SEGMENT_BYTES {
            self.closed.push_back(Arc::from(std::mem::take(&mut self.open)));
            self.open_bytes = 0;
        }
    }

    fn drop_oldest(&mut self) {
        let len = if let Some(segment) = self.closed.front() {
            let len = segment[self.head_dropped].len();
            self.head_dropped += 1;
            if self.head_dropped == segment.len() {
                self.closed.pop_front();
                self.head_dropped = 0;
            }
            len
        } else {
            // Only a history shorter than one segment drops from the open one.
            let frame = self.open.remove(0);
            self.open_bytes -= frame.len();
            frame.len()
        };
        self.bytes -= len;
        self.first += 1;
        self.len -= 1;
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
        let mut skip = (start - self.first) as usize;
        let mut offset = self.head_dropped;
        let mut segments = VecDeque::new();
        for segment in &self.closed {
            let kept = segment.len() - offset;
            if skip >= kept {
                skip -= kept;
            } else {
                segments.push_back((Arc::downgrade(segment), offset + skip));
                skip = 0;
            }
            offset = 0;
        }
        Ok(Reload {
            in_flight: None,
            segments,
            tail: self.open[skip..].iter().cloned().collect(),
            next_frame: start,
            end: next,
            chunk: chunk.max(1),
            max_bytes,
            done: false,
        })
    }
}

/// A reload being served: yields `reload_frames` message bodies lazily, as the connection's writer gets to them.
/// Until then it holds weak references to the history's closed segments and a copy of its open one (see the module
/// docs). If the history dropped frames it still had to send, it ends with an `error` `history_expired`.
#[derive(Debug)]
pub struct Reload {
    /// Held while the reload exists, so the engine sees it is still being written ([`Reload::hold`]).
    in_flight: Option<Arc<()>>,
    /// The closed segments still to send, each with the index of its next frame.
    segments: VecDeque<(Weak<[Bytes]>, usize)>,
    /// The frames of the open segment, after the closed ones.
    tail: VecDeque<Bytes>,
    /// The number of the next frame to send.
    next_frame: u64,
    end: u64,
    chunk: usize,
    max_bytes: usize,
    done: bool,
}

impl Reload {
    /// Caps the bytes of frames per chunk, for a transport with a smaller message limit (UDP); a single larger
    /// frame still goes alone.
    pub fn cap_chunk_bytes(&mut self, max: usize) {
        self.max_bytes = self.max_bytes.min(max);
    }

    /// Ends the reload before frame `end` (if that is earlier than the next frame at the time of the request): a
    /// spectator's reload stops where its delayed stream goes on. `end_frame` in every chunk says so.
    pub fn until(mut self, end: u64) -> Self {
        self.end = self.end.min(end).max(self.next_frame);
        self
    }

    /// Keeps `token` alive for as long as this reload exists: until the writer has sent its last chunk, or drops it
    /// with its connection.
    pub fn hold(&mut self, token: Arc<()>) {
        self.in_flight = Some(token);
    }

    /// The next frame to send without taking it: `Err` when the history already freed it.
    fn peek(&self) -> Result<Option<Bytes>, ()> {
        match self.segments.front() {
            Some((segment, at)) => match segment.upgrade() {
                Some(segment) => Ok(Some(segment[*at].clone())),
                None => Err(()),
            },
            None => Ok(self.tail.front().cloned()),
        }
    }

    fn advance(&mut self) {
        self.next_frame += 1;
        if let Some((segment, at)) = self.segments.front_mut() {
            *at += 1;
            if segment.upgrade().is_none_or(|s| *at >= s.len()) {
                self.segments.pop_front();
            }
        } else {
            self.tail.pop_front();
        }
    }
}

impl Iterator for Reload {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let first = self.next_frame;
        let mut frames = Vec::new();
        let mut bytes = 0;
        loop {
            if self.next_frame >= self.end {
                break;
            }
            let frame = match self.peek() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(()) => {
                    self.done = true;
                    let e = ProtocolError::new(
                        ErrorCode::HistoryExpired,
                        format!(
                            "frames from {} were dropped from history while this reload waited to be sent (the \
                             connection reads too slowly); frames up to {} were sent",
                            self.next_frame,
                            self.next_frame.saturating_sub(1)
                        ),
                    )
                    .with_proto("sync_request_reload_frames");
                    return Some(ServerMessage::Error(ErrorBody::from(&e)).to_body());
                }
            };
            if frames.len() == self.chunk || (!frames.is_empty() && bytes + frame.len() > self.max_bytes) {
                break;
            }
            bytes += frame.len();
            frames.push(frame);
            self.advance();
        }
        let last = self.next_frame >= self.end || (self.segments.is_empty() && self.tail.is_empty());
        self.done = last;
        Some(encode_reload_chunk(first, self.end, last, &frames))
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

    /// A frame body that counts how many frame bodies are alive.
    struct Counted(Arc<std::sync::atomic::AtomicUsize>, Vec<u8>);

    impl AsRef<[u8]> for Counted {
        fn as_ref(&self) -> &[u8] {
            &self.1
        }
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn counted(alive: &Arc<std::sync::atomic::AtomicUsize>, i: u64) -> Bytes {
        alive.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Bytes::from_owner(Counted(alive.clone(), encode_frame(i, &[]).frame.to_vec()))
    }

    #[test]
    fn reloads_cross_segments_and_dropped_heads_byte_identically() {
        let (h, all) = history(1000, 600);
        assert_eq!((h.oldest(), h.next_frame()), (400, 1000));
        assert!(h.closed.len() >= 2 && h.head_dropped > 0, "the oldest kept frame is inside a segment");
        for start in [400, 511, 512, 999, 1000] {
            let got = chunks(h.reload(start, 100, usize::MAX).unwrap());
            let frames: Vec<String> = got.iter().flat_map(|c| c.3.clone()).collect();
            let want: Vec<String> =
                all[start as usize..].iter().map(|b| String::from_utf8(b.to_vec()).unwrap()).collect();
            assert_eq!(frames, want, "from {start}");
            assert!(got.last().unwrap().2 && got.iter().rev().skip(1).all(|c| !c.2), "only the last is last");
        }
        assert_eq!(h.bytes(), all[400..].iter().map(Bytes::len).sum::<usize>());
    }

    #[test]
    fn a_waiting_reload_pins_at_most_one_segment_and_ends_with_history_expired() {
        let alive = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut h = FrameHistory::new(1000, usize::MAX);
        for i in 0..1000 {
            h.push(counted(&alive, i));
        }
        let mut reload = h.reload(0, 100, usize::MAX).unwrap();
        let first = reload.next().unwrap();
        assert!(matches!(parse_server_message(&first).unwrap(), ServerEvent::Reload(c) if c.frames.len() == 100));
        // The game goes on: the history drops every frame the reload still has to send.
        for i in 1000..3000 {
            h.push(counted(&alive, i));
        }
        drop(h);
        let pinned = alive.load(std::sync::atomic::Ordering::SeqCst);
        assert!(pinned < SEGMENT_FRAMES, "the reload pins only its copy of the open segment: {pinned} frames");
        let rest: Vec<ServerEvent> = reload.map(|b| parse_server_message(&b).unwrap()).collect();
        match &rest[..] {
            [ServerEvent::Error(e)] => {
                assert_eq!(e.code, ErrorCode::HistoryExpired);
                assert_eq!(e.proto.as_deref(), Some("sync_request_reload_frames"));
                assert!(e.message.contains("frames from 100"), "{}", e.message);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(alive.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing leaks");
    }

    #[test]
    fn frames_are_found_by_number_and_a_reload_can_stop_early() {
        let (h, all) = history(600, 10_000);
        assert_eq!(h.frame(0), Some(all[0].clone()));
        assert_eq!(h.frame(300), Some(all[300].clone()), "inside a closed segment");
        assert_eq!(h.frame(599), Some(all[599].clone()), "in the open segment");
        assert_eq!(h.frame(600), None);
        let got = chunks(h.reload(250, 100, usize::MAX).unwrap().until(300));
        let frames: Vec<String> = got.iter().flat_map(|c| c.3.clone()).collect();
        let want: Vec<String> = all[250..300].iter().map(|f| String::from_utf8(f.to_vec()).unwrap()).collect();
        assert_eq!(frames, want);
        assert!(got.iter().all(|c| c.1 == 300), "end_frame is where the reload stops");
        assert!(got.last().unwrap().2, "and the last chunk says last");
    }

    #[test]
    fn keep_at_least_holds_frames_past_the_byte_bound() {
        let mut h = FrameHistory::new(1000, 100).keep_at_least(30);
        for i in 0..100 {
            h.push(encode_frame(i, &[]).frame);
        }
        assert_eq!(h.oldest(), 100 - 31, "30 frames before the newest are kept whatever max_bytes");
        assert!(h.frame(100 - 31).is_some());
    }
}
