//! Attempt limits on login and registration: per client address, and per username for failed logins.
//!
//! [`AttemptLimiter`] is the state without IO: one token bucket per key, driven by the `now` its caller passes, with
//! a bound on the keys it tracks. [`Limits`] is what the handlers share: the three limiters of `[account]` behind
//! locks, checked before any password is hashed so that refused attempts cost no argon2 time.
//!
//! What counts:
//! - `login_attempts_per_ip`: every login attempt from an address, whatever its outcome.
//! - `login_failures_per_username`: failed logins per username *and client network* (IPv4 /24, IPv6 /64). The
//!   attempt takes a token before the password is checked (so concurrent guesses cannot all slip through while they
//!   wait for a hash) and a right password gives it back. A successful login resets nothing: a player who mistyped
//!   a few times and then got in keeps those failures until they refill, which with the defaults is one every 90 s.
//!   Someone guessing a username from another network does not lock its owner out.
//! - `login_failures_per_username_global`: failed logins per username from every network together, much higher: it
//!   stops a guesser spread over many networks, and only then refuses the owner too.
//! - `register_per_ip`: every registration attempt from an address, including refused ones (a 409 tells whether a
//!   name exists, so it must not be free).

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::config::AccountConfig;

/// A limit: `attempts` per `window`, as a token bucket that holds `attempts` tokens and refills one every
/// `window / attempts`. `attempts == 0` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Bucket size: attempts allowed at once, and per `window`.
    pub attempts: u32,
    /// Time to refill an empty bucket.
    pub window: Duration,
}

impl Rate {
    /// `attempts` per `window_secs` seconds.
    pub fn per_secs(attempts: u32, window_secs: u64) -> Self {
        Self { attempts, window: Duration::from_secs(window_secs) }
    }

    /// Whether this rate never refuses.
    pub fn is_unlimited(&self) -> bool {
        self.attempts == 0 || self.window.is_zero()
    }
}

/// One token bucket per key, without IO or clock: every call takes `now`.
///
/// A bucket is stored as the instant at which it will be full again (the "theoretical arrival time" of GCRA), so a
/// key costs one `Instant`, and a key whose instant has passed is the same as an untracked one. At most `max_keys`
/// keys are tracked: when a new key finds the table full, the keys whose buckets are full again are dropped; if
/// that is not enough, the eighth of the keys whose buckets are fullest go (forgetting them loses the least), so
/// under a flood of new keys that pruning runs once per `max_keys / 8` insertions.
pub struct AttemptLimiter<K> {
    rate: Rate,
    /// Time to refill one token.
    interval: Duration,
    /// Time to refill the whole bucket: how far past `now` a key's full-again instant may be.
    burst: Duration,
    max_keys: usize,
    full_at: HashMap<K, Instant>,
}

impl<K: Hash + Eq + Clone> AttemptLimiter<K> {
    /// An empty limiter allowing `rate`, tracking at most `max_keys` (at least 1) keys.
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        let interval = if rate.is_unlimited() { Duration::ZERO } else { rate.window / rate.attempts };
        let burst = interval * rate.attempts;
        Self { rate, interval, burst, max_keys: max_keys.max(1), full_at: HashMap::new() }
    }

    /// The rate this limiter allows.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes a token from `key`'s bucket at `now`. An empty bucket takes nothing and gives the time until a
    /// token is back.
    pub fn try_acquire(&mut self, key: K, now: Instant) -> Result<(), Duration> {
        if self.rate.is_unlimited() {
            return Ok(());
        }
        let start = self.full_at.get(&key).copied().filter(|&at| at > now).unwrap_or(now);
        let next = start + self.interval;
        let ahead = next.duration_since(now);
        if ahead > self.burst {
            return Err(ahead - self.burst);
        }
        if !self.full_at.contains_key(&key) && self.full_at.len() >= self.max_keys {
            self.make_room(now);
        }
        self.full_at.insert(key, next);
        Ok(())
    }

    /// Gives back a token taken by [`AttemptLimiter::try_acquire`], e.g. when the attempt turned out not to count.
    /// Never fills a bucket beyond its size.
    pub fn refund(&mut self, key: &K, now: Instant) {
        let Some(at) = self.full_at.get_mut(key) else { return };
        match at.checked_sub(self.interval) {
            Some(earlier) if earlier > now => *at = earlier,
            _ => {
                self.full_at.remove(key);
            }
        }
    }

    /// Keys tracked now (at most `max_keys`).
    pub fn tracked(&self) -> usize {
        self.full_at.len()
    }

    /// Frees at least one slot: drops the keys whose buckets are full again, then, if none was, the fullest eighth.
    fn make_room(&mut self, now: Instant) {
        self.full_at.retain(|_, at| *at > now);
        if self.full_at.len() < self.max_keys {
            return;
        }
        let excess = (self.full_at.len() + 1 - self.max_keys + self.max_keys / 8).min(self.full_at.len());
        let mut by_fullness: Vec<(Instant, K)> = self.full_at.iter().map(|(k, at)| (*at, k.clone())).collect();
        by_fullness.select_nth_unstable_by_key(excess - 1, |(at, _)| *at);
        for (_, key) in by_fullness.drain(..excess) {
            self.full_at.remove(&key);
        }
    }
}

impl<K> fmt::Debug for AttemptLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the keys: they are client addresses, and there may be many.
        f.debug_struct("AttemptLimiter")
            .field("rate", &self.rate)
            .field("max_keys", &self.max_keys)
            .field("tracked", &self.full_at.len())
            .finish()
    }
}

/// Which limit refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// `account.login_attempts_per_ip` per `account.login_ip_window_secs`.
    LoginPerIp,
    /// `account.login_failures_per_username` per `account.login_username_window_secs`, per client network.
    LoginFailuresPerUsername,
    /// `account.login_failures_per_username_global` per `account.login_username_window_secs`, all networks.
    LoginFailuresPerUsernameGlobal,
    /// `account.register_per_ip` per `account.register_ip_window_secs`.
    RegisterPerIp,
}

impl LimitKind {
    /// The config keys of the limit: the count, then the window.
    pub fn config_keys(self) -> (&'static str, &'static str) {
        match self {
            Self::LoginPerIp => ("account.login_attempts_per_ip", "account.login_ip_window_secs"),
            Self::LoginFailuresPerUsername => {
                ("account.login_failures_per_username", "account.login_username_window_secs")
            }
            Self::LoginFailuresPerUsernameGlobal => {
                ("account.login_failures_per_username_global", "account.login_username_window_secs")
            }
            Self::RegisterPerIp => ("account.register_per_ip", "account.register_ip_window_secs"),
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::LoginPerIp => "login attempts from this address",
            Self::LoginFailuresPerUsername => "failed logins for this username from your network",
            Self::LoginFailuresPerUsernameGlobal => "failed logins for this username",
            Self::RegisterPerIp => "registrations from this address",
        }
    }
}

/// An attempt refused by a limit: which one, its rate, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The limit.
    pub kind: LimitKind,
    /// Its configured rate.
    pub rate: Rate,
    /// Time until the next attempt would be allowed.
    pub retry_after: Duration,
}

impl Refusal {
    /// [`Refusal::retry_after`] in whole seconds, rounded up and at least 1 (for `Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (count_key, window_key) = self.kind.config_keys();
        write!(
            f,
            "too many {}: at most {} per {} s ({count_key}, {window_key}); try again in {} s",
            self.kind.what(),
            self.rate.attempts,
            self.rate.window.as_secs(),
            self.retry_after_secs(),
        )
    }
}

/// A username as the failed-login limiter keys it: a digest of its lowercase form, so that a key has a fixed size
/// whatever the length of the name sent, and names differing in ASCII case (one account, as the store sees it)
/// share a bucket.
type UsernameKey = [u8; 16];

/// The login and registration limits of `[account]`, shared by the handlers. Requests from
/// `account.limit_exempt_ips`, or without a known address (the router called without a socket), skip the
/// per-address limits; the per-username limit applies to every request.
#[derive(Debug)]
pub struct Limits {
    login_ip: Mutex<AttemptLimiter<IpAddr>>,
    /// Per (username, client network).
    login_username: Mutex<AttemptLimiter<(UsernameKey, Option<IpAddr>)>>,
    /// Per username, every network.
    login_username_global: Mutex<AttemptLimiter<UsernameKey>>,
    register_ip: Mutex<AttemptLimiter<IpAddr>>,
    exempt: Vec<IpAddr>,
}

/// A login let through by [`Limits::begin_login`]. Hand it to [`Limits::password_verified`] if the password was
/// right; dropping it leaves the attempt counted as a failure.
#[derive(Debug)]
pub struct LoginAttempt {
    username: UsernameKey,
    network: Option<IpAddr>,
}

impl Limits {
    /// The limits configured in `[account]`.
    pub fn new(config: &AccountConfig) -> Self {
        fn limiter<K: Hash + Eq + Clone>(attempts: u32, window_secs: u64, max_keys: usize) -> Mutex<AttemptLimiter<K>> {
            Mutex::new(AttemptLimiter::new(Rate::per_secs(attempts, window_secs), max_keys))
        }
        let max = config.limit_max_keys;
        Self {
            login_ip: limiter(config.login_attempts_per_ip, config.login_ip_window_secs, max),
            login_username: limiter(config.login_failures_per_username, config.login_username_window_secs, max),
            login_username_global: limiter(
                config.login_failures_per_username_global,
                config.login_username_window_secs,
                max,
            ),
            register_ip: limiter(config.register_per_ip, config.register_ip_window_secs, max),
            exempt: config.limit_exempt_ips.iter().map(IpAddr::to_canonical).collect(),
        }
    }

    /// Counts a login attempt for `username` from `ip` at `now`: against the address, then (provisionally, see
    /// [`Limits::password_verified`]) against the username from the client's network, then against the username
    /// from all networks. A refusal by a username limit still counts against the address; one by the global limit
    /// takes nothing from the network's.
    pub fn begin_login(&self, ip: Option<IpAddr>, username: &str, now: Instant) -> Result<LoginAttempt, Refusal> {
        if let Some(key) = self.address_key(ip) {
            acquire(&self.login_ip, key, now, LimitKind::LoginPerIp)?;
        }
        let username = username_key(username);
        let network = ip.map(network_of);
        acquire(&self.login_username, (username, network), now, LimitKind::LoginFailuresPerUsername)?;
        if let Err(refusal) =
            acquire(&self.login_username_global, username, now, LimitKind::LoginFailuresPerUsernameGlobal)
        {
            lock(&self.login_username).refund(&(username, network), now);
            return Err(refusal);
        }
        Ok(LoginAttempt { username, network })
    }

    /// The password of `attempt` was right: it does not count as a failure for its username.
    pub fn password_verified(&self, attempt: LoginAttempt, now: Instant) {
        lock(&self.login_username).refund(&(attempt.username, attempt.network), now);
        lock(&self.login_username_global).refund(&attempt.username, now);
    }

    /// Counts a registration attempt from `ip` at `now`.
    pub fn begin_register(&self, ip: Option<IpAddr>, now: Instant) -> Result<(), Refusal> {
        match self.address_key(ip) {
            Some(key) => acquire(&self.register_ip, key, now, LimitKind::RegisterPerIp),
            None => Ok(()),
        }
    }

    /// The key of a client address for the per-address limits, or `None` if it is exempt or unknown. IPv4 clients
    /// of an IPv6 socket count as their IPv4 address; IPv6 clients by their /64 network, which one subscriber
    /// usually has whole.
    fn address_key(&self, ip: Option<IpAddr>) -> Option<IpAddr> {
        let ip = ip?.to_canonical();
        if self.exempt.contains(&ip) {
            return None;
        }
        Some(match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !((1u128 << 64) - 1))),
        })
    }
}

fn acquire<K: Hash + Eq + Clone>(
    limiter: &Mutex<AttemptLimiter<K>>,
    key: K,
    now: Instant,
    kind: LimitKind,
) -> Result<(), Refusal> {
    let mut limiter = lock(limiter);
    limiter.try_acquire(key, now).map_err(|retry_after| Refusal { kind, rate: limiter.rate(), retry_after })
}

fn lock<K>(limiter: &Mutex<AttemptLimiter<K>>) -> MutexGuard<'_, AttemptLimiter<K>> {
    // Every change is a single map operation, so the state is consistent even after a panic.
    limiter.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The network a client address belongs to for the per-username limit: IPv4 /24, IPv6 /64 (IPv4 clients of an
/// IPv6 socket count as IPv4).
fn network_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4((v4.to_bits() & 0xFFFF_FF00).into()),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !((1u128 << 64) - 1))),
    }
}

fn username_key(username: &str) -> UsernameKey {
    let digest = Sha256::digest(username.to_ascii_lowercase().as_bytes());
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn limiter(attempts: u32, window_secs: u64) -> AttemptLimiter<&'static str> {
        AttemptLimiter::new(Rate::per_secs(attempts, window_secs), 100)
    }

    #[test]
    fn allows_up_to_capacity_then_says_when_to_retry() {
        let t0 = Instant::now();
        let mut l = limiter(3, 60);
        for _ in 0..3 {
            assert_eq!(l.try_acquire("a", t0), Ok(()));
        }
        assert_eq!(l.try_acquire("a", t0), Err(20 * SEC), "one token per 20 s");
        assert_eq!(l.try_acquire("a", t0 + 5 * SEC), Err(15 * SEC), "a refused attempt takes nothing");
    }

    #[test]
    fn refills_one_token_per_interval_up_to_capacity() {
        let t0 = Instant::now();
        let mut l = limiter(3, 60);
        for _ in 0..3 {
            l.try_acquire("a", t0).unwrap();
        }
        assert_eq!(l.try_acquire("a", t0 + 20 * SEC), Ok(()));
        assert_eq!(l.try_acquire("a", t0 + 20 * SEC), Err(20 * SEC));
        // Long idle: the bucket is full again, but holds no more than its size.
        let later = t0 + 3600 * SEC;
        for _ in 0..3 {
            assert_eq!(l.try_acquire("a", later), Ok(()));
        }
        assert!(l.try_acquire("a", later).is_err());
    }

    #[test]
    fn keys_are_isolated() {
        let t0 = Instant::now();
        let mut l = limiter(1, 60);
        l.try_acquire("a", t0).unwrap();
        assert!(l.try_acquire("a", t0).is_err());
        assert_eq!(l.try_acquire("b", t0), Ok(()));
    }

    #[test]
    fn refund_gives_back_one_token_and_never_more_than_capacity() {
        let t0 = Instant::now();
        let mut l = limiter(2, 60);
        l.try_acquire("a", t0).unwrap();
        l.try_acquire("a", t0).unwrap();
        l.refund(&"a", t0);
        assert_eq!(l.try_acquire("a", t0), Ok(()));
        assert!(l.try_acquire("a", t0).is_err());
        for _ in 0..5 {
            l.refund(&"a", t0);
        }
        assert_eq!(l.tracked(), 0, "a full bucket is not tracked");
        l.try_acquire("a", t0).unwrap();
        l.try_acquire("a", t0).unwrap();
        assert!(l.try_acquire("a", t0).is_err(), "refunds did not grow the bucket");
        l.refund(&"unknown", t0);
    }

    #[test]
    fn zero_attempts_is_unlimited_and_tracks_nothing() {
        let t0 = Instant::now();
        let mut l = limiter(0, 60);
        for _ in 0..1000 {
            l.try_acquire("a", t0).unwrap();
        }
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn tracked_keys_are_bounded_and_busy_keys_survive_eviction() {
        let t0 = Instant::now();
        let mut l = AttemptLimiter::new(Rate::per_secs(5, 60), 16);
        for _ in 0..5 {
            l.try_acquire(u32::MAX, t0).unwrap();
        }
        for key in 0..1000u32 {
            l.try_acquire(key, t0 + Duration::from_millis(u64::from(key))).unwrap();
            assert!(l.tracked() <= 16);
        }
        assert!(l.try_acquire(u32::MAX, t0 + SEC).is_err(), "the emptiest bucket was never evicted");
    }

    #[test]
    fn expired_keys_are_dropped_first() {
        let t0 = Instant::now();
        let mut l = AttemptLimiter::new(Rate::per_secs(2, 60), 4);
        for key in 0..4u32 {
            l.try_acquire(key, t0).unwrap();
        }
        l.try_acquire(0, t0).unwrap();
        // Keys 1..4 are full again after 30 s, key 0 after 60 s.
        l.try_acquire(9, t0 + 40 * SEC).unwrap();
        assert_eq!(l.tracked(), 2);
        assert!(l.try_acquire(0, t0 + 40 * SEC).is_ok());
        assert!(l.try_acquire(0, t0 + 40 * SEC).is_err(), "key 0 kept its count");
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        let refusal = |retry_after| Refusal { kind: LimitKind::LoginPerIp, rate: Rate::per_secs(1, 60), retry_after };
        assert_eq!(refusal(Duration::from_millis(1)).retry_after_secs(), 1);
        assert_eq!(refusal(Duration::ZERO).retry_after_secs(), 1);
        assert_eq!(refusal(Duration::from_millis(2001)).retry_after_secs(), 3);
        assert_eq!(refusal(2 * SEC).retry_after_secs(), 2);
        let text = refusal(2 * SEC).to_string();
        assert_eq!(
            text,
            "too many login attempts from this address: at most 1 per 60 s \
             (account.login_attempts_per_ip, account.login_ip_window_secs); try again in 2 s"
        );
    }

    fn limits(edit: impl FnOnce(&mut AccountConfig)) -> Limits {
        let mut config = AccountConfig { limit_exempt_ips: Vec::new(), ..AccountConfig::default() };
        edit(&mut config);
        Limits::new(&config)
    }

    #[test]
    fn only_failed_logins_count_for_the_username_and_case_does_not_matter() {
        let t0 = Instant::now();
        let l = limits(|c| c.login_failures_per_username = 2);
        for _ in 0..10 {
            let attempt = l.begin_login(None, "Alice", t0).unwrap();
            l.password_verified(attempt, t0);
        }
        l.begin_login(None, "alice", t0).unwrap();
        l.begin_login(None, "ALICE", t0).unwrap();
        let refused = l.begin_login(None, "aLiCe", t0).unwrap_err();
        assert_eq!(refused.kind, LimitKind::LoginFailuresPerUsername);
        assert_eq!(refused.retry_after_secs(), 450, "one failure back per 900 s / 2");
        assert!(l.begin_login(None, "bob", t0).is_ok());
    }

    #[test]
    fn every_login_counts_for_the_address() {
        let t0 = Instant::now();
        let l = limits(|c| c.login_attempts_per_ip = 3);
        let ip = Some(IpAddr::from([192, 0, 2, 1]));
        for name in ["a", "b", "c"] {
            let attempt = l.begin_login(ip, name, t0).unwrap();
            l.password_verified(attempt, t0);
        }
        assert_eq!(l.begin_login(ip, "d", t0).unwrap_err().kind, LimitKind::LoginPerIp);
        assert!(l.begin_login(Some(IpAddr::from([192, 0, 2, 2])), "d", t0).is_ok());
        assert!(l.begin_login(None, "d", t0).is_ok(), "no address, no address limit");
    }

    #[test]
    fn addresses_are_grouped_and_exempt_ones_skipped() {
        let t0 = Instant::now();
        let l = limits(|c| {
            c.register_per_ip = 1;
            c.limit_exempt_ips = vec![IpAddr::from([127, 0, 0, 1])];
        });
        let v6 = |last: u16| Some(IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]));
        l.begin_register(v6(1), t0).unwrap();
        assert!(l.begin_register(v6(2), t0).is_err(), "same /64");
        assert!(l.begin_register(Some(IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1])), t0).is_ok());
        l.begin_register(Some(IpAddr::from([192, 0, 2, 1])), t0).unwrap();
        let mapped = Some(IpAddr::from(Ipv6Addr::from([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201])));
        assert!(l.begin_register(mapped, t0).is_err(), "an IPv4-mapped address counts as the IPv4 one");
        for _ in 0..5 {
            l.begin_register(Some(IpAddr::from([127, 0, 0, 1])), t0).unwrap();
        }
    }

    #[test]
    fn login_and_registration_are_counted_separately() {
        let t0 = Instant::now();
        let l = limits(|c| {
            c.register_per_ip = 1;
            c.login_attempts_per_ip = 1;
        });
        let ip = Some(IpAddr::from([192, 0, 2, 1]));
        l.begin_register(ip, t0).unwrap();
        l.begin_login(ip, "a", t0).unwrap();
        assert_eq!(l.begin_register(ip, t0).unwrap_err().kind, LimitKind::RegisterPerIp);
        assert_eq!(l.begin_login(ip, "a", t0).unwrap_err().kind, LimitKind::LoginPerIp);
    }

    fn network_limits(per_network: u32, global: u32) -> Limits {
        let config = AccountConfig {
            login_attempts_per_ip: 0,
            login_failures_per_username: per_network,
            login_failures_per_username_global: global,
            login_username_window_secs: 900,
            ..AccountConfig::default()
        };
        Limits::new(&config)
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn a_guesser_on_another_network_does_not_lock_the_owner_out() {
        let t0 = Instant::now();
        let l = network_limits(3, 10);
        for _ in 0..3 {
            l.begin_login(ip("203.0.113.7"), "Alice", t0).unwrap();
        }
        let refused = l.begin_login(ip("203.0.113.99"), "alice", t0).unwrap_err();
        assert_eq!(refused.kind, LimitKind::LoginFailuresPerUsername, "the same /24, any case");
        // The owner, elsewhere: a right password goes through and costs nothing.
        for _ in 0..5 {
            let attempt = l.begin_login(ip("198.51.100.1"), "alice", t0).unwrap();
            l.password_verified(attempt, t0);
        }
        let v6 = l.begin_login(ip("2001:db8:1:2::1"), "alice", t0).unwrap();
        l.password_verified(v6, t0);
    }

    #[test]
    fn a_guesser_spread_over_networks_meets_the_global_limit() {
        let t0 = Instant::now();
        let l = network_limits(3, 10);
        for i in 0..10 {
            l.begin_login(ip(&format!("10.0.{i}.1")), "alice", t0).unwrap();
        }
        let refused = l.begin_login(ip("10.0.99.1"), "alice", t0).unwrap_err();
        assert_eq!(refused.kind, LimitKind::LoginFailuresPerUsernameGlobal);
        assert!(refused.to_string().contains("account.login_failures_per_username_global"), "{refused}");
        // The refusal took nothing from that network: once the global bucket refills, it has its 3 tries.
        let later = t0 + Duration::from_secs(90);
        l.begin_login(ip("10.0.99.1"), "alice", later).unwrap();
        assert!(l.begin_login(ip("10.0.98.1"), "bob", t0).is_ok(), "other usernames are untouched");
    }
}
