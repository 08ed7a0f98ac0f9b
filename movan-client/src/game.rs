//! Client-side game bookkeeping: the frames of one game, checked as they arrive.

use movan_protocol::server::Frame;

/// The frames of one game, held in order from frame 0 with no gaps.
///
/// Live `sync_frame`s and reloaded frames go through the same [`FrameLog::push`]: a frame already held is accepted
/// again only if it is byte-identical, which is the lockstep guarantee (a reload replays the broadcast bytes).
#[derive(Debug, Clone, Default)]
pub struct FrameLog {
    frames: Vec<Frame>,
}

/// What [`FrameLog::push`] did with an accepted frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// The frame was the next one and is now held.
    New,
    /// The frame was already held, byte for byte; nothing changed.
    Duplicate,
}

/// Why [`FrameLog::push`] refused a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameLogError {
    /// Frames between `expected` and `got` are missing; reload from `expected` to fill them.
    #[error("frame gap: expected frame {expected}, got {got}")]
    Gap {
        /// The next frame the log needs.
        expected: u64,
        /// The frame that arrived instead.
        got: u64,
    },
    /// The frame is already held with different bytes: the server sent two versions of one frame.
    #[error("frame {frame_count} differs from the copy already held")]
    Conflict {
        /// The frame number.
        frame_count: u64,
    },
}

impl FrameLog {
    /// An empty log expecting frame 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts the next frame, or an exact duplicate of a frame already held; refuses gaps and conflicting copies.
    ///
    /// A refused frame leaves the log unchanged.
    pub fn push(&mut self, frame: Frame) -> Result<Pushed, FrameLogError> {
        let expected = self.next_frame();
        if frame.frame_count == expected {
            self.frames.push(frame);
            return Ok(Pushed::New);
        }
        if frame.frame_count > expected {
            return Err(FrameLogError::Gap { expected, got: frame.frame_count });
        }
        let held = usize::try_from(frame.frame_count).ok().and_then(|i| self.frames.get(i));
        match held {
            Some(held) if held.raw.get() == frame.raw.get() => Ok(Pushed::Duplicate),
            _ => Err(FrameLogError::Conflict { frame_count: frame.frame_count }),
        }
    }

    /// The frame number the log needs next (= the number of frames held).
    pub fn next_frame(&self) -> u64 {
        self.frames.len() as u64
    }

    /// Number of frames held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True before frame 0 arrived.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The frames held; `frames()[n].frame_count == n`.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    /// The frame numbered `frame_count`, if held.
    pub fn get(&self, frame_count: u64) -> Option<&Frame> {
        usize::try_from(frame_count).ok().and_then(|i| self.frames.get(i))
    }

    /// Gives up the frames.
    pub fn into_frames(self) -> Vec<Frame> {
        self.frames
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use movan_protocol::server::{ActionRef, ServerEvent, encode_frame, parse_server_message};
    use serde_json::value::RawValue;

    fn frame(n: u64, action: Option<&str>) -> Frame {
        let data = action.map(|a| RawValue::from_string(a.to_owned()).unwrap());
        let actions: Vec<ActionRef<'_>> =
            data.iter().map(|d| ActionRef { uid: "7", timestamp: 1.0, action_data: d }).collect();
        let wire = encode_frame(n, &actions).wire();
        match parse_server_message(&wire[4..]).unwrap() {
            ServerEvent::Frame(f) => f,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn consecutive_frames_are_held_in_order() {
        let mut log = FrameLog::new();
        assert!(log.is_empty());
        for n in 0..5 {
            assert_eq!(log.push(frame(n, None)), Ok(Pushed::New));
        }
        assert_eq!(log.len(), 5);
        assert_eq!(log.next_frame(), 5);
        assert!(log.frames().iter().enumerate().all(|(i, f)| f.frame_count == i as u64));
        assert_eq!(log.get(3).unwrap().frame_count, 3);
        assert!(log.get(5).is_none());
    }

    #[test]
    fn the_first_frame_must_be_zero() {
        let mut log = FrameLog::new();
        assert_eq!(log.push(frame(1, None)), Err(FrameLogError::Gap { expected: 0, got: 1 }));
        assert!(log.is_empty());
    }

    #[test]
    fn gaps_are_reported_and_leave_the_log_unchanged() {
        let mut log = FrameLog::new();
        log.push(frame(0, None)).unwrap();
        log.push(frame(1, None)).unwrap();
        assert_eq!(log.push(frame(4, None)), Err(FrameLogError::Gap { expected: 2, got: 4 }));
        assert_eq!(log.next_frame(), 2);
        // Filling the gap (as a reload would) makes the late frame acceptable.
        for n in 2..5 {
            log.push(frame(n, None)).unwrap();
        }
        assert_eq!(log.len(), 5);
    }

    #[test]
    fn identical_duplicates_are_ignored() {
        let mut log = FrameLog::new();
        log.push(frame(0, Some(r#"{"a":1}"#))).unwrap();
        log.push(frame(1, None)).unwrap();
        assert_eq!(log.push(frame(0, Some(r#"{"a":1}"#))), Ok(Pushed::Duplicate));
        assert_eq!(log.push(frame(1, None)), Ok(Pushed::Duplicate));
        assert_eq!(log.len(), 2);
    }

    #[test]
    fn differing_duplicates_are_conflicts() {
        let mut log = FrameLog::new();
        log.push(frame(0, Some(r#"{"a":1}"#))).unwrap();
        assert_eq!(log.push(frame(0, Some(r#"{"a":2}"#))), Err(FrameLogError::Conflict { frame_count: 0 }));
        // Same JSON value, different bytes: still a conflict, because lockstep needs the broadcast bytes.
        assert_eq!(log.push(frame(0, Some(r#"{"a": 1}"#))), Err(FrameLogError::Conflict { frame_count: 0 }));
        assert_eq!(log.frames()[0].actions[0].action_data.get(), r#"{"a":1}"#);
    }
}
