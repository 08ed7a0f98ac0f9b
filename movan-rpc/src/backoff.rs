//! Reconnect delays: exponential growth up to a cap, with jitter so that many clients cut off together do not
//! reconnect together. The random source is passed in, so tests are deterministic.

use std::time::Duration;

use rand::Rng;

/// How the delay is randomised around the exponential schedule `base = min(initial · factor^attempt, max)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// Exactly `base`.
    None,
    /// Uniform in `[0, base]`: the widest spread, but some retries come almost at once.
    Full,
    /// Uniform in `[base/2, base]`: spread out, yet never sooner than half the schedule.
    #[default]
    Equal,
}

/// The retry schedule of one client.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    factor: u32,
    jitter: Jitter,
    attempt: u32,
}

impl Backoff {
    /// Starts at `initial`, doubles after every failed attempt, never exceeds `max`; [`Jitter::Equal`].
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max, factor: 2, jitter: Jitter::default(), attempt: 0 }
    }

    /// Grows by `factor` (at least 1) per attempt instead of 2.
    pub fn with_factor(mut self, factor: u32) -> Self {
        self.factor = factor.max(1);
        self
    }

    /// Uses `jitter` instead of [`Jitter::Equal`].
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The delay before the next attempt; each call moves one step along the schedule.
    pub fn next_delay<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Duration {
        let base = self.base();
        self.attempt = self.attempt.saturating_add(1);
        match self.jitter {
            Jitter::None => base,
            Jitter::Full => uniform(rng, Duration::ZERO, base),
            Jitter::Equal => uniform(rng, base / 2, base),
        }
    }

    /// Back to `initial`, after a successful connection.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failed attempts since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    fn base(&self) -> Duration {
        let growth = self.factor.checked_pow(self.attempt).unwrap_or(u32::MAX);
        self.initial.saturating_mul(growth).min(self.max)
    }
}

fn uniform<R: Rng + ?Sized>(rng: &mut R, low: Duration, high: Duration) -> Duration {
    let to_nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.gen_range(to_nanos(low)..=to_nanos(high)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn schedule_doubles_up_to_the_cap() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut backoff = Backoff::new(100 * MS, 5000 * MS).with_jitter(Jitter::None);
        let delays: Vec<_> = (0..10).map(|_| backoff.next_delay(&mut rng)).collect();
        let expected: Vec<_> = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000].map(|ms| ms * MS).into();
        assert_eq!(delays, expected);
        assert_eq!(backoff.attempt(), 10);
    }

    #[test]
    fn many_attempts_do_not_overflow() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut backoff = Backoff::new(100 * MS, 5000 * MS).with_jitter(Jitter::None).with_factor(10);
        for _ in 0..1000 {
            assert!(backoff.next_delay(&mut rng) <= 5000 * MS);
        }
        assert_eq!(backoff.next_delay(&mut rng), 5000 * MS);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let mut rng = StdRng::seed_from_u64(7);
        for (jitter, low_fraction) in [(Jitter::Full, 0.0), (Jitter::Equal, 0.5)] {
            let mut backoff = Backoff::new(100 * MS, 5000 * MS).with_jitter(jitter);
            let mut plain = Backoff::new(100 * MS, 5000 * MS).with_jitter(Jitter::None);
            let mut distinct = std::collections::HashSet::new();
            for _ in 0..200 {
                let base = plain.next_delay(&mut rng);
                let delay = backoff.next_delay(&mut rng);
                assert!(delay <= base, "{jitter:?}: {delay:?} > {base:?}");
                assert!(delay >= base.mul_f64(low_fraction), "{jitter:?}: {delay:?} too small for {base:?}");
                distinct.insert(delay);
            }
            assert!(distinct.len() > 100, "{jitter:?} should spread delays");
        }
    }

    #[test]
    fn same_seed_same_delays() {
        let delays = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut backoff = Backoff::new(100 * MS, 5000 * MS);
            (0..8).map(|_| backoff.next_delay(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(delays(3), delays(3));
        assert_ne!(delays(3), delays(4));
    }

    #[test]
    fn reset_after_success_starts_over() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut backoff = Backoff::new(100 * MS, 5000 * MS).with_jitter(Jitter::None);
        for _ in 0..5 {
            backoff.next_delay(&mut rng);
        }
        backoff.reset();
        assert_eq!(backoff.attempt(), 0);
        assert_eq!(backoff.next_delay(&mut rng), 100 * MS);
        assert_eq!(backoff.next_delay(&mut rng), 200 * MS);
    }
}
