//! Liveness of one connection, without IO or a clock: the caller passes `now` in.
//!
//! Both sides ping every `interval` whatever else they send, and answer every ping with a pong. Any frame received
//! proves the peer alive; a peer silent for `misses` intervals is dead, which also catches a peer whose socket
//! stays open but which stopped reading or answering.

use std::time::{Duration, Instant};

/// The heartbeat state of one connection.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    interval: Duration,
    dead_after: Duration,
    last_receive: Instant,
    next_ping: Instant,
    seq: u64,
}

/// What the connection must do after [`Heartbeat::handle_timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a ping that is not sent or a dead peer that is not closed breaks liveness detection"]
pub enum HeartbeatAction {
    /// Nothing is due yet.
    None,
    /// Send a ping with this sequence number.
    SendPing {
        /// Sequence number of the ping, starting at 1.
        seq: u64,
    },
    /// The peer has been silent for too long: close the connection.
    Dead,
}

impl Heartbeat {
    /// Starts the clock at `now` (the connection just opened). Pings every `interval`; the peer is dead when
    /// nothing has been received for `misses` intervals (at least one).
    pub fn new(now: Instant, interval: Duration, misses: u32) -> Self {
        Self {
            interval,
            dead_after: interval.saturating_mul(misses.max(1)),
            last_receive: now,
            next_ping: now + interval,
            seq: 0,
        }
    }

    /// A frame (of any kind) arrived at `now`.
    pub fn on_receive(&mut self, now: Instant) {
        self.last_receive = self.last_receive.max(now);
    }

    /// When [`Self::handle_timeout`] must next be called.
    #[must_use = "the deadline is when to call `handle_timeout` next"]
    pub fn poll_timeout(&self) -> Instant {
        self.next_ping.min(self.dead_at())
    }

    /// Advances to `now` and says what is due. Once dead, stays dead.
    #[must_use = "the action (send a ping, or declare the peer dead) must be carried out"]
    pub fn handle_timeout(&mut self, now: Instant) -> HeartbeatAction {
        if now >= self.dead_at() {
            return HeartbeatAction::Dead;
        }
        if now < self.next_ping {
            return HeartbeatAction::None;
        }
        // After a stall, ping once and continue from now rather than catching up on every missed ping.
        self.next_ping = now + self.interval;
        self.seq += 1;
        HeartbeatAction::SendPing { seq: self.seq }
    }

    fn dead_at(&self) -> Instant {
        self.last_receive + self.dead_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn ping_is_due_after_each_interval() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(t0, SECOND, 3);
        assert_eq!(hb.poll_timeout(), t0 + SECOND);
        assert_eq!(hb.handle_timeout(t0 + SECOND / 2), HeartbeatAction::None);
        assert_eq!(hb.handle_timeout(t0 + SECOND), HeartbeatAction::SendPing { seq: 1 });
        assert_eq!(hb.handle_timeout(t0 + SECOND), HeartbeatAction::None, "one ping per interval");
        hb.on_receive(t0 + SECOND);
        assert_eq!(hb.poll_timeout(), t0 + 2 * SECOND);
        assert_eq!(hb.handle_timeout(t0 + 2 * SECOND), HeartbeatAction::SendPing { seq: 2 });
    }

    #[test]
    fn silent_peer_is_dead_after_the_configured_misses() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(t0, SECOND, 3);
        assert_eq!(hb.handle_timeout(t0 + SECOND), HeartbeatAction::SendPing { seq: 1 });
        assert_eq!(hb.handle_timeout(t0 + 2 * SECOND), HeartbeatAction::SendPing { seq: 2 });
        assert_eq!(hb.poll_timeout(), t0 + 3 * SECOND);
        assert_eq!(hb.handle_timeout(t0 + 3 * SECOND - Duration::from_millis(1)), HeartbeatAction::None);
        assert_eq!(hb.handle_timeout(t0 + 3 * SECOND), HeartbeatAction::Dead);
        assert_eq!(hb.handle_timeout(t0 + 4 * SECOND), HeartbeatAction::Dead, "dead is final");
    }

    #[test]
    fn receiving_resets_the_dead_timer() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(t0, SECOND, 3);
        for i in 1..=10u32 {
            let now = t0 + SECOND * i;
            assert_eq!(hb.handle_timeout(now), HeartbeatAction::SendPing { seq: u64::from(i) });
            hb.on_receive(now);
        }
        // Ten intervals in, but last heard from at 10 s: dead only at 13 s.
        assert_eq!(hb.handle_timeout(t0 + SECOND * 12), HeartbeatAction::SendPing { seq: 11 });
        assert_eq!(hb.handle_timeout(t0 + SECOND * 13), HeartbeatAction::Dead);
    }

    #[test]
    fn a_stall_yields_one_ping_not_a_burst() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(t0, SECOND, 100);
        assert_eq!(hb.handle_timeout(t0 + SECOND * 10), HeartbeatAction::SendPing { seq: 1 });
        assert_eq!(hb.handle_timeout(t0 + SECOND * 10), HeartbeatAction::None);
        assert_eq!(hb.poll_timeout(), t0 + SECOND * 11);
    }

    #[test]
    fn out_of_order_receive_times_do_not_go_back() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(t0, SECOND, 2);
        hb.on_receive(t0 + SECOND);
        hb.on_receive(t0);
        assert_eq!(hb.poll_timeout(), t0 + SECOND);
        let _ = hb.handle_timeout(t0 + SECOND);
        assert_eq!(hb.poll_timeout(), t0 + 2 * SECOND);
        assert_eq!(hb.handle_timeout(t0 + 3 * SECOND), HeartbeatAction::Dead);
    }
}
