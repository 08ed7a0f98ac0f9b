//! What one bot checks and measures, sans-IO: its own actions from send to the frame that holds them, and the
//! frames it receives. Times are passed in, so the bookkeeping is tested without sockets or clocks.

use std::collections::VecDeque;
use std::time::Instant;

/// The window in which samples count (warm-up before it, linger after it).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// First instant whose sends and frames are measured.
    pub start: Instant,
    /// End of the measurement: no action is sent from then on.
    pub end: Instant,
}

impl Window {
    /// True when `t` lies in the window.
    pub fn contains(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }
}

/// One bot's actions: sent (with their send time) and found in frames.
///
/// A bot's own actions appear in frames in the order it sent them (the server orders a frame by clamped timestamp,
/// then uid, then arrival, and a bot's timestamps never decrease), so an action not found by the time a later one
/// shows up is missing, and one showing up again is a duplicate.
#[derive(Debug, Default)]
pub struct ActionTracker {
    /// Sent and not seen yet: (seq, sent at).
    outstanding: VecDeque<(u64, Instant)>,
    next_seq: u64,
    last_seen: Option<u64>,
    /// Latencies of actions sent inside the window, microseconds.
    pub latencies_us: Vec<u64>,
    /// Actions sent.
    pub sent: u64,
    /// Actions found in frames (first appearance).
    pub seen: u64,
    /// Actions that never appeared (counted when a later one did, or at [`ActionTracker::finish`]).
    pub missing: u64,
    /// Appearances of an action already seen, or of one never sent.
    pub duplicated: u64,
    /// Actions the server refused (`limit_exceeded`: too many waiting for the next frame); they count as missing.
    pub refused: u64,
}

impl ActionTracker {
    /// Registers a send at `at`; returns the sequence number to put in the action.
    pub fn on_send(&mut self, at: Instant) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.sent += 1;
        self.outstanding.push_back((seq, at));
        seq
    }

    /// A send that failed: the action never left, so it is not expected.
    pub fn on_send_failed(&mut self, seq: u64) {
        if let Some(i) = self.outstanding.iter().rposition(|(s, _)| *s == seq) {
            self.outstanding.remove(i);
            self.sent -= 1;
        }
    }

    /// Own action `seq` found in a frame received at `at`; its latency counts when it was sent inside `window`.
    pub fn on_seen(&mut self, seq: u64, at: Instant, window: Option<&Window>) {
        if self.last_seen.is_some_and(|last| seq <= last) {
            self.duplicated += 1;
            return;
        }
        while let Some(&(s, sent_at)) = self.outstanding.front() {
            if s > seq {
                break;
            }
            self.outstanding.pop_front();
            if s < seq {
                self.missing += 1;
                continue;
            }
            self.seen += 1;
            self.last_seen = Some(seq);
            if window.is_some_and(|w| w.contains(sent_at)) {
                let us = at.saturating_duration_since(sent_at).as_micros();
                self.latencies_us.push(u64::try_from(us).unwrap_or(u64::MAX));
            }
            return;
        }
        // Never sent (or already popped as missing): not a valid appearance.
        self.duplicated += 1;
    }

    /// The run is over: whatever is still outstanding never arrived.
    pub fn finish(&mut self) {
        self.missing += self.outstanding.len() as u64;
        self.outstanding.clear();
    }
}

/// The frames one bot receives: consecutive from the first, gaps between arrivals.
#[derive(Debug, Default)]
pub struct FrameChecker {
    next: Option<u64>,
    last_at: Option<Instant>,
    /// Frames received.
    pub received: u64,
    /// Frames skipped (a later frame arrived first).
    pub lost: u64,
    /// Frames received again, or older than one already received.
    pub duplicated: u64,
    /// Gaps between consecutive frames arriving inside the window, microseconds.
    pub gaps_us: Vec<u64>,
}

impl FrameChecker {
    /// Frame `frame_count` arrived at `at`.
    pub fn on_frame(&mut self, frame_count: u64, at: Instant, window: Option<&Window>) {
        self.received += 1;
        match self.next {
            Some(next) if frame_count < next => {
                self.duplicated += 1;
                return;
            }
            Some(next) if frame_count > next => self.lost += frame_count - next,
            _ => {}
        }
        self.next = Some(frame_count + 1);
        if let (Some(last), Some(w)) = (self.last_at, window)
            && w.contains(last)
            && w.contains(at)
        {
            let us = at.saturating_duration_since(last).as_micros();
            self.gaps_us.push(u64::try_from(us).unwrap_or(u64::MAX));
        }
        self.last_at = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn latency_counts_only_inside_the_window_and_order_finds_missing_and_duplicates() {
        let t0 = Instant::now();
        let w = Window { start: t0 + ms(100), end: t0 + ms(1000) };
        let mut t = ActionTracker::default();
        let a = t.on_send(t0); // warm-up: checked, not timed
        let b = t.on_send(t0 + ms(200));
        let c = t.on_send(t0 + ms(250));
        let d = t.on_send(t0 + ms(300));
        t.on_seen(a, t0 + ms(40), Some(&w));
        t.on_seen(b, t0 + ms(230), Some(&w));
        t.on_seen(b, t0 + ms(240), Some(&w)); // again
        t.on_seen(d, t0 + ms(330), Some(&w)); // c skipped: missing
        t.on_seen(99, t0 + ms(340), Some(&w)); // never sent
        let e = t.on_send(t0 + ms(400));
        t.finish();
        assert_eq!((t.sent, t.seen, t.missing, t.duplicated), (5, 3, 2, 2));
        assert_eq!(t.latencies_us, vec![30_000, 30_000]);
        let _ = (c, e);
    }

    #[test]
    fn a_failed_send_is_not_expected() {
        let t0 = Instant::now();
        let mut t = ActionTracker::default();
        let a = t.on_send(t0);
        let b = t.on_send(t0);
        t.on_send_failed(b);
        t.on_seen(a, t0, None);
        t.finish();
        assert_eq!((t.sent, t.seen, t.missing, t.duplicated), (1, 1, 0, 0));
    }

    #[test]
    fn frames_must_be_consecutive() {
        let t0 = Instant::now();
        let w = Window { start: t0, end: t0 + ms(1000) };
        let mut f = FrameChecker::default();
        f.on_frame(7, t0 + ms(10), Some(&w)); // a bot joins at any frame
        f.on_frame(8, t0 + ms(60), Some(&w));
        f.on_frame(8, t0 + ms(61), Some(&w));
        f.on_frame(11, t0 + ms(200), Some(&w));
        f.on_frame(12, t0 + ms(1200), Some(&w)); // after the window: no gap sample
        assert_eq!((f.received, f.lost, f.duplicated), (5, 2, 1));
        assert_eq!(f.gaps_us, vec![50_000, 140_000]);
    }
}
