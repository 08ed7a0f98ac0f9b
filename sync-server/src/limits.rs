//! Per-connection defenses, sans-IO: the message rate limit (a token bucket) and the count of open connections,
//! overall and per IP address. Both take the time or the address as arguments, so they are tested without sockets
//! or sleeps.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A token bucket: `burst` tokens at most, refilled at `per_sec` tokens per second. Each message takes one.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`. `per_sec == 0` means unlimited.
    pub fn new(per_sec: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self { per_sec: f64::from(per_sec), burst, tokens: burst, last: now }
    }

    /// Takes a token for a message arriving at `now`; false when the bucket is empty (the message is over the
    /// limit). Time going backwards is treated as no time passing.
    pub fn try_take(&mut self, now: Instant) -> bool {
        if self.per_sec == 0.0 {
            return true;
        }
        let elapsed = now.checked_duration_since(self.last).unwrap_or(Duration::ZERO);
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_sec).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A byte budget per second for bulk output (reloads): one second's worth at most, refilled continuously. Taking
/// more than is left is allowed and answered with how long to wait before sending, so a chunk larger than the budget
/// still goes, just later.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl ByteBudget {
    /// A full budget at `now`. `per_sec == 0` means unlimited.
    pub fn new(per_sec: u64, now: Instant) -> Self {
        Self { per_sec: per_sec as f64, tokens: per_sec as f64, last: now }
    }

    /// Spends `bytes` at `now`; returns how long to wait before sending them (zero when within the budget).
    pub fn spend(&mut self, bytes: usize, now: Instant) -> Duration {
        if self.per_sec == 0.0 {
            return Duration::ZERO;
        }
        let elapsed = now.checked_duration_since(self.last).unwrap_or(Duration::ZERO);
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_sec).min(self.per_sec);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / self.per_sec) }
    }
}

/// Bytes of messages waiting in one connection's send queue, shared by the engine task (which adds them) and the
/// connection's writer (which takes them away once written), bounded by `sync.send_queue_bytes`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct QueuedBytes {
    bytes: Arc<std::sync::atomic::AtomicUsize>,
    max: usize,
}

impl QueuedBytes {
    /// An empty queue holding at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { bytes: Arc::default(), max }
    }

    /// Counts `len` more bytes queued; false (counting nothing) when that would pass the bound. A message alone in
    /// an empty queue always fits, so that one larger than the bound still goes.
    pub fn try_add(&self, len: usize) -> bool {
        use std::sync::atomic::Ordering;
        self.bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                let total = queued.checked_add(len)?;
                (queued == 0 || total <= self.max).then_some(total)
            })
            .is_ok()
    }

    /// `len` bytes left the queue.
    pub fn remove(&self, len: usize) {
        self.bytes.fetch_sub(len, std::sync::atomic::Ordering::AcqRel);
    }

    /// Bytes queued now.
    pub fn get(&self) -> usize {
        self.bytes.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// Why a connection was refused by [`ConnectionLimits::admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `sync.max_connections` reached.
    Total(usize),
    /// `sync.max_connections_per_ip` reached for this address.
    PerIp(usize),
    /// `sync.max_connections_per_prefix` reached for this address's network.
    PerPrefix(usize),
}

impl Refusal {
    /// The reason for the client's `error` message, naming the limit.
    pub fn message(self) -> String {
        match self {
            Self::Total(max) => {
                format!("the server already holds its maximum of {max} connections (sync.max_connections)")
            }
            Self::PerIp(max) => {
                format!("your address already holds the maximum of {max} connections (sync.max_connections_per_ip)")
            }
            Self::PerPrefix(max) => {
                format!("your network already holds the maximum of {max} connections (sync.max_connections_per_prefix)")
            }
        }
    }
}

/// Open connections, overall, per IP address and per network prefix (IPv4 /24 and IPv6 /64 by default: what one
/// attacker easily holds many addresses of). Cheap to clone; clones share the counts.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    inner: Arc<Mutex<Counts>>,
    max_total: usize,
    max_per_ip: usize,
    max_per_prefix: usize,
    /// Prefix lengths, IPv4 then IPv6.
    prefix_bits: (u8, u8),
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    per_prefix: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it gives its place back.
#[derive(Debug)]
pub struct ConnectionPermit {
    limits: ConnectionLimits,
    ip: IpAddr,
    prefix: IpAddr,
}

impl ConnectionLimits {
    /// `max_per_ip == 0` means no per-address limit; no per-prefix limit either until [`Self::with_prefixes`].
    pub fn new(max_total: usize, max_per_ip: usize) -> Self {
        Self { inner: Arc::default(), max_total, max_per_ip, max_per_prefix: 0, prefix_bits: (24, 64) }
    }

    /// Also at most `max_per_prefix` connections (0 = no limit) from the addresses that share their first `v4_bits`
    /// (IPv4) or `v6_bits` (IPv6) bits.
    pub fn with_prefixes(mut self, max_per_prefix: usize, v4_bits: u8, v6_bits: u8) -> Self {
        self.max_per_prefix = max_per_prefix;
        self.prefix_bits = (v4_bits.min(32), v6_bits.min(128));
        self
    }

    /// The network `ip` counts in for the per-prefix limit.
    fn prefix(&self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let bits = u32::from(self.prefix_bits.0);
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                IpAddr::V4((v4.to_bits() & mask).into())
            }
            IpAddr::V6(v6) => {
                let bits = u32::from(self.prefix_bits.1);
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                IpAddr::V6((v6.to_bits() & mask).into())
            }
        }
    }

    /// Counts a new connection from `ip`, or refuses it when a limit is reached.
    pub fn admit(&self, ip: IpAddr) -> Result<ConnectionPermit, Refusal> {
        self.admit_inner(ip, true)
    }

    /// [`Self::admit`] without the overall limit, for a connection that takes the place of one being shed (whose
    /// permit goes when its task ends): the per-address and per-prefix limits still hold.
    pub fn admit_in_place_of_shed(&self, ip: IpAddr) -> Result<ConnectionPermit, Refusal> {
        self.admit_inner(ip, false)
    }

    fn admit_inner(&self, ip: IpAddr, check_total: bool) -> Result<ConnectionPermit, Refusal> {
        let prefix = self.prefix(ip);
        let mut counts = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if check_total && counts.total >= self.max_total {
            return Err(Refusal::Total(self.max_total));
        }
        let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if self.max_per_ip > 0 && from_ip >= self.max_per_ip {
            return Err(Refusal::PerIp(self.max_per_ip));
        }
        let from_prefix = counts.per_prefix.get(&prefix).copied().unwrap_or(0);
        if self.max_per_prefix > 0 && from_prefix >= self.max_per_prefix {
            return Err(Refusal::PerPrefix(self.max_per_prefix));
        }
        counts.total += 1;
        counts.per_ip.insert(ip, from_ip + 1);
        counts.per_prefix.insert(prefix, from_prefix + 1);
        Ok(ConnectionPermit { limits: self.clone(), ip, prefix })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).total
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.limits.inner.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        let counts = &mut *counts;
        for (map, key) in [(&mut counts.per_ip, self.ip), (&mut counts.per_prefix, self.prefix)] {
            if let Some(n) = map.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_the_sustained_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 5, t0);
        for _ in 0..5 {
            assert!(b.try_take(t0));
        }
        assert!(!b.try_take(t0), "the burst is used up");
        // 10 per second: one token every 100 ms.
        assert!(!b.try_take(t0 + Duration::from_millis(50)));
        assert!(b.try_take(t0 + Duration::from_millis(100)));
        assert!(!b.try_take(t0 + Duration::from_millis(100)));
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            assert!(b.try_take(later));
        }
        assert!(!b.try_take(later));
    }

    #[test]
    fn bucket_sustains_exactly_its_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(20, 1, t0);
        let mut taken = 0;
        // One attempt per millisecond for 10 s: 1 from the burst plus 20 per second.
        for ms in 0..10_000 {
            if b.try_take(t0 + Duration::from_millis(ms)) {
                taken += 1;
            }
        }
        assert!((200..=201).contains(&taken), "{taken}");
    }

    #[test]
    fn zero_rate_is_unlimited_and_time_going_back_is_harmless() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = TokenBucket::new(0, 1, t0);
        assert!((0..10_000).all(|_| b.try_take(t0)));
        let mut b = TokenBucket::new(1, 1, t0);
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0 - Duration::from_secs(5)));
        assert!(!b.try_take(t0 + Duration::from_millis(500)));
        assert!(b.try_take(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn connections_are_limited_overall_and_per_address() {
        let limits = ConnectionLimits::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = limits.admit(a).unwrap();
        let a2 = limits.admit(a).unwrap();
        assert_eq!(limits.admit(a).unwrap_err(), Refusal::PerIp(2));
        let b1 = limits.admit(b).unwrap();
        assert_eq!(limits.admit(b).unwrap_err(), Refusal::Total(3));
        assert_eq!(limits.open(), 3);
        drop(a1);
        assert_eq!(limits.open(), 2);
        let a3 = limits.admit(a).unwrap();
        drop((a2, a3, b1));
        assert_eq!(limits.open(), 0);
        assert!(limits.inner.lock().unwrap().per_ip.is_empty(), "no entry is left behind");
        assert!(Refusal::PerIp(2).message().contains("sync.max_connections_per_ip"));
        assert!(Refusal::Total(3).message().contains("sync.max_connections"));
    }

    #[test]
    fn no_per_address_limit_when_zero() {
        let limits = ConnectionLimits::new(100, 0);
        let a: IpAddr = "::1".parse().unwrap();
        let permits: Vec<_> = (0..100).map(|_| limits.admit(a).unwrap()).collect();
        assert_eq!(limits.admit(a).unwrap_err(), Refusal::Total(100));
        drop(permits);
    }

    #[test]
    fn a_byte_budget_paces_bulk_output_to_its_rate() {
        let t0 = Instant::now();
        let mut budget = ByteBudget::new(1_000_000, t0);
        assert_eq!(budget.spend(600_000, t0), Duration::ZERO, "a second's worth goes at once");
        assert_eq!(budget.spend(400_000, t0), Duration::ZERO);
        assert_eq!(budget.spend(500_000, t0), Duration::from_millis(500), "then at 1 MB/s");
        // After waiting as told, the next 100 kB wait 100 ms more.
        let later = t0 + Duration::from_millis(500);
        assert_eq!(budget.spend(100_000, later), Duration::from_millis(100));
        // Idle time refills at most one second's worth.
        let idle = later + Duration::from_secs(60);
        assert_eq!(budget.spend(1_000_000, idle), Duration::ZERO);
        assert_eq!(budget.spend(1, idle), Duration::from_micros(1));
        let mut free = ByteBudget::new(0, t0);
        assert_eq!(free.spend(usize::MAX, t0), Duration::ZERO, "0 = unlimited");
    }

    #[test]
    fn queued_bytes_are_bounded_but_a_lone_message_always_fits() {
        let q = QueuedBytes::new(1000);
        assert!(q.try_add(600) && q.try_add(400));
        assert!(!q.try_add(1), "full");
        assert_eq!(q.get(), 1000, "a refused message counts nothing");
        q.remove(1000);
        assert!(q.try_add(5000), "alone in an empty queue");
        assert!(!q.try_add(1));
        let writer = q.clone();
        writer.remove(5000);
        assert_eq!(q.get(), 0, "shared with the writer");
    }

    #[test]
    fn connections_are_limited_per_network_prefix() {
        let limits = ConnectionLimits::new(100, 2).with_prefixes(3, 24, 64);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let held: Vec<_> = ["127.0.0.1", "127.0.0.2", "127.0.0.3"].map(|a| limits.admit(ip(a)).unwrap()).into();
        assert_eq!(limits.admit(ip("127.0.0.4")).unwrap_err(), Refusal::PerPrefix(3), "a fourth address of the /24");
        assert!(Refusal::PerPrefix(3).message().contains("sync.max_connections_per_prefix"));
        let other = limits.admit(ip("127.0.1.1")).unwrap();
        let v6: Vec<_> = ["2001:db8::1", "2001:db8::2", "2001:db8::3"].map(|a| limits.admit(ip(a)).unwrap()).into();
        assert_eq!(limits.admit(ip("2001:db8::ffff:1")).unwrap_err(), Refusal::PerPrefix(3), "the same /64");
        assert!(limits.admit(ip("2001:db8:0:1::1")).is_ok());
        drop((held, other, v6));
        assert!(limits.admit(ip("127.0.0.4")).is_ok());
        let counts = limits.inner.lock().unwrap();
        assert_eq!(counts.per_prefix.len(), 0, "every permit above is dropped: {:?}", counts.per_prefix);
    }
}
