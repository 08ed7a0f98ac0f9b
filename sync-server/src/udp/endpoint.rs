//! The sans-IO UDP endpoint: every session of one UDP listener. It takes datagrams and the time, and says which
//! datagrams to send and which Movan messages arrived; it reads no clock and touches no socket.
//!
//! - Control datagrams (`conv` 0) run the stateless cookie exchange of [`movan_protocol::udp`]: nothing is kept and
//!   no reply is longer than its request until a `connect` echoes a cookie minted for its source address.
//! - Every other datagram is checked ([`check_kcp_datagram`]) and fed to its session's KCP state machine (the
//!   `kcp` crate, the reference implementation's algorithm and header). One complete KCP message is one Movan
//!   message body, handed out as [`UdpEvent::Message`] for the session's `Connection`.
//! - A datagram of a live session from another address is fed to KCP too, and its messages say so
//!   ([`UdpEvent::Message::candidate`]): the shell moves the session with [`Endpoint::migrate`] once such a
//!   message opened (a sealed frame only its real client can make). Until then replies go to the old address.
//! - Sessions end on the idle timeout (no datagram from the peer), a dead link (a segment sent `dead_link` times
//!   unacknowledged), a send queue over its bound, or when the shell closes them.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kcp::Kcp;
use movan_protocol::udp::{Control, KcpTuning, RefuseCode, check_kcp_datagram, conv_of};
use rand::{Rng, SeedableRng, rngs::StdRng};
use thiserror::Error;

use super::cookie::CookieJar;
use crate::limits::{ConnectionLimits, ConnectionPermit};

/// How long a closed session lingers to deliver what it still has to send (its last `error`).
const LINGER: Duration = Duration::from_secs(2);

/// The `sync.udp_*` settings.
#[derive(Debug, Clone)]
pub struct UdpConfig {
    /// `sync.udp_kcp_*`.
    pub kcp: KcpTuning,
    /// `sync.udp_max_sessions`: sessions at once.
    pub max_sessions: usize,
    /// `sync.udp_max_pending`: sessions at once whose connection is not yet authenticated.
    pub max_pending: usize,
    /// `sync.udp_cookie_secs`: a cookie is good for one to two such slots.
    pub cookie_slot: Duration,
    /// `sync.udp_idle_timeout_secs`: a session with no datagram from its peer for this long ends.
    pub idle_timeout: Duration,
    /// `sync.udp_send_queue_segments`: KCP segments waiting to be sent or acknowledged before the session is
    /// dropped as too slow.
    pub send_queue_segments: usize,
}

impl Default for UdpConfig {
    fn default() -> Self {
        Self {
            kcp: KcpTuning::default(),
            max_sessions: 10_000,
            max_pending: 1_000,
            cookie_slot: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(15),
            send_queue_segments: 4096,
        }
    }
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub to: SocketAddr,
    /// The datagram.
    pub bytes: Bytes,
}

/// What the shell must do.
#[derive(Debug)]
pub enum UdpEvent {
    /// A session opened: give it a `Connection` (its first-frame timeout starts now). `permit` holds its place in
    /// the connection limits, as a TCP connection's does.
    Opened {
        /// The session's KCP `conv`.
        conv: u32,
        /// Its client's address.
        peer: SocketAddr,
        /// Its place in `sync.max_connections` and `sync.max_connections_per_ip`.
        permit: ConnectionPermit,
        /// Opened while half of `sync.udp_max_pending` or more were in use: give it the shorter
        /// `sync.pressure_first_frame_timeout_secs`.
        pressure: bool,
    },
    /// A Movan message body arrived on a session.
    Message {
        /// The session.
        conv: u32,
        /// One whole KCP message.
        body: Bytes,
        /// Set when the datagram that completed it came from another address than the session's: call
        /// [`Endpoint::migrate`] if the message is good.
        candidate: Option<SocketAddr>,
    },
    /// The session had not authenticated and was shed to make room for a new one (`sync.udp_max_pending`): close its
    /// connection with [`CloseReason::Shed`](crate::connection::CloseReason::Shed). It no longer counts as pending.
    Shed {
        /// The session.
        conv: u32,
    },
    /// The endpoint ended a session; its connection must close (no more messages will come).
    Closed {
        /// The session.
        conv: u32,
        /// Why.
        reason: SessionEnd,
    },
}

/// Why the endpoint ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// No datagram from the peer for `sync.udp_idle_timeout_secs`.
    Idle,
    /// A segment went unacknowledged `sync.udp_kcp_dead_link` times.
    DeadLink,
    /// More than `sync.udp_send_queue_segments` segments waiting: the peer does not keep up.
    SendQueueFull,
}

impl SessionEnd {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "udp_idle",
            Self::DeadLink => "udp_dead_link",
            Self::SendQueueFull => "udp_send_queue_full",
        }
    }
}

/// Why [`Endpoint::send`] did not queue a message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    /// No such session (it ended).
    #[error("no UDP session {0}")]
    UnknownSession(u32),
    /// Longer than one KCP message can carry.
    #[error("message of {len} bytes is over the UDP limit of {max} bytes (127 KCP fragments)")]
    TooLarge {
        /// The message's length.
        len: usize,
        /// [`KcpTuning::max_message`].
        max: usize,
    },
}

/// Counters of what the endpoint dropped or refused, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Datagrams dropped: malformed, too long, or for no live session.
    pub dropped: u64,
    /// Cookies sent.
    pub cookies: u64,
    /// `connect`s refused (busy or bad cookie).
    pub refused: u64,
}

/// All sessions of one UDP listener. See the module docs.
pub struct Endpoint {
    config: UdpConfig,
    jar: CookieJar,
    limits: ConnectionLimits,
    epoch: Instant,
    rng: StdRng,
    sessions: HashMap<u32, Session>,
    /// The sessions whose connection is not yet authenticated, oldest first: (opened at, conv).
    pending: BTreeSet<(Instant, u32)>,
    outbox: Outbox,
    timers: BinaryHeap<Reverse<(Instant, u32)>>,
    dirty: Vec<u32>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<UdpEvent>,
    stats: UdpStats,
}

struct Session {
    kcp: Kcp<Outbox>,
    peer: SocketAddr,
    nonce: [u8; 8],
    opened_at: Instant,
    /// Authenticated, shed or closing: no longer in `Endpoint::pending`.
    authenticated: bool,
    last_heard: Instant,
    /// The deadline of this session's entry in the timer heap (entries with another time are stale).
    deadline: Instant,
    dirty: bool,
    /// Closed by the shell: delivers what it has, takes no more messages, and goes at this time at the latest.
    closing: Option<Instant>,
}

/// Where KCP writes its datagrams: drained into [`Transmit`]s after every call into a session.
#[derive(Clone, Default)]
struct Outbox(Arc<Mutex<Vec<Bytes>>>);

impl Write for Outbox {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(Bytes::copy_from_slice(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("sessions", &self.sessions.len()).finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint started at `now`. `secret` keys the cookies; `seed` draws the `conv`s (from the OS's random
    /// source in the server, fixed in tests).
    pub fn new(config: UdpConfig, limits: ConnectionLimits, secret: [u8; 32], seed: u64, now: Instant) -> Self {
        Self {
            jar: CookieJar::new(secret, now, config.cookie_slot),
            config,
            limits,
            epoch: now,
            rng: StdRng::seed_from_u64(seed),
            sessions: HashMap::new(),
            pending: BTreeSet::new(),
            outbox: Outbox::default(),
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: UdpStats::default(),
        }
    }

    /// Sessions open now.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// `sync.udp_max_pending`.
    pub fn max_pending(&self) -> usize {
        self.config.max_pending
    }

    /// Sessions whose connection is not yet authenticated.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The longest Movan message one KCP message carries.
    pub fn max_message(&self) -> usize {
        self.config.kcp.max_message()
    }

    /// What was dropped and refused so far.
    pub fn stats(&self) -> UdpStats {
        self.stats
    }

    /// The session's client address, if it is open.
    pub fn peer(&self, conv: u32) -> Option<SocketAddr> {
        self.sessions.get(&conv).map(|s| s.peer)
    }

    /// Takes one datagram from `from`, received at `now`.
    pub fn handle_datagram(&mut self, from: SocketAddr, data: &[u8], now: Instant) {
        if data.len() > self.config.kcp.mtu {
            self.stats.dropped += 1;
            return;
        }
        match conv_of(data) {
            Some(0) => self.handle_control(from, data, now),
            Some(conv) => self.handle_kcp(conv, from, data, now),
            None => self.stats.dropped += 1,
        }
    }

    /// Queues one Movan message body on a session, to go out at the next [`Self::poll_transmit`].
    pub fn send(&mut self, conv: u32, body: &[u8], now: Instant) -> Result<(), SendError> {
        let max = self.config.kcp.max_message();
        let session = self.sessions.get_mut(&conv).ok_or(SendError::UnknownSession(conv))?;
        if body.len() > max {
            return Err(SendError::TooLarge { len: body.len(), max });
        }
        if session.kcp.send(body).is_err() {
            return Err(SendError::TooLarge { len: body.len(), max });
        }
        if session.kcp.wait_snd() > self.config.send_queue_segments {
            self.end(conv, SessionEnd::SendQueueFull, now);
            return Ok(());
        }
        self.mark_dirty(conv);
        Ok(())
    }

    /// The shell closed the session's connection: it delivers what it still has to send (for at most 2 s), then
    /// goes. No more messages come from it.
    pub fn close(&mut self, conv: u32, now: Instant) {
        let Some(session) = self.sessions.get_mut(&conv) else { return };
        if session.closing.is_none() {
            session.closing = Some(now + LINGER);
            self.unpend(conv);
            self.mark_dirty(conv);
        }
    }

    /// The session's connection is authenticated: it no longer counts against `sync.udp_max_pending`.
    pub fn set_authenticated(&mut self, conv: u32) {
        self.unpend(conv);
    }

    /// The session no longer counts as waiting to authenticate.
    fn unpend(&mut self, conv: u32) {
        if let Some(s) = self.sessions.get_mut(&conv)
            && !s.authenticated
        {
            s.authenticated = true;
            self.pending.remove(&(s.opened_at, conv));
        }
    }

    /// A message from `to` (an [`UdpEvent::Message::candidate`]) opened: the session's datagrams go there now.
    pub fn migrate(&mut self, conv: u32, to: SocketAddr) {
        if let Some(s) = self.sessions.get_mut(&conv) {
            s.peer = to;
        }
    }

    /// Runs the KCP timers (retransmissions) and the idle timeouts due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, conv))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(session) = self.sessions.get_mut(&conv) else { continue };
            if session.deadline != at {
                continue;
            }
            if now >= session.last_heard + self.config.idle_timeout {
                self.end(conv, SessionEnd::Idle, now);
                continue;
            }
            session.deadline = far(now);
            self.flush_session(conv, now);
        }
    }

    /// When [`Self::handle_timeout`] must next run.
    #[must_use = "KCP retransmits and idle sessions end only if the shell calls handle_timeout then"]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// The next datagram to send. Flushes the sessions that got messages or input since the last call first, so
    /// call it after a batch of [`Self::handle_datagram`] and [`Self::send`] calls: their datagrams go out together.
    #[must_use = "datagrams must be sent"]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if self.transmits.is_empty() && !self.dirty.is_empty() {
            for conv in std::mem::take(&mut self.dirty) {
                if let Some(s) = self.sessions.get_mut(&conv) {
                    s.dirty = false;
                    self.flush_session(conv, now);
                }
            }
        }
        self.transmits.pop_front()
    }

    /// The next thing for the shell to do.
    #[must_use = "events carry the sessions and their messages"]
    pub fn poll_event(&mut self) -> Option<UdpEvent> {
        self.events.pop_front()
    }

    fn handle_control(&mut self, from: SocketAddr, data: &[u8], now: Instant) {
        let reply = match Control::parse(data) {
            Ok(Control::Hello { nonce }) => {
                self.stats.cookies += 1;
                Control::Cookie { nonce, cookie: self.jar.mint(from, &nonce, now) }
            }
            Ok(Control::Connect { nonce, cookie }) => {
                if !self.jar.check(from, &nonce, &cookie, now) {
                    self.stats.refused += 1;
                    Control::Refused { nonce, code: RefuseCode::BadCookie }
                } else {
                    match self.open(from, nonce, now) {
                        Some(conv) => Control::Accept { nonce, conv },
                        None => {
                            self.stats.refused += 1;
                            Control::Refused { nonce, code: RefuseCode::Busy }
                        }
                    }
                }
            }
            // Server-to-client kinds, or garbage: no reply.
            _ => {
                self.stats.dropped += 1;
                return;
            }
        };
        let bytes = reply.encode();
        debug_assert!(bytes.len() <= data.len(), "a reply is never longer than its request");
        self.transmits.push_back(Transmit { to: from, bytes: bytes.into() });
    }

    /// Opens a session for a good `connect` (or finds the one an earlier copy of it opened).
    fn open(&mut self, peer: SocketAddr, nonce: [u8; 8], now: Instant) -> Option<u32> {
        if let Some((&conv, _)) = self.sessions.iter().find(|(_, s)| s.peer == peer && s.nonce == nonce) {
            return Some(conv);
        }
        if self.sessions.len() >= self.config.max_sessions {
            return None;
        }
        if self.pending.len() >= self.config.max_pending
            && let Some(&(_, oldest)) = self.pending.first()
        {
            // A flood of sessions that never authenticate must not keep players out: the oldest makes room, and
            // its connection is closed with `too_many_connections`.
            self.unpend(oldest);
            self.events.push_back(UdpEvent::Shed { conv: oldest });
        }
        let permit = self.limits.admit(peer.ip()).ok()?;
        // Below 2^31: KCP bindings that type `conv` as a signed 32-bit int (PyPI's `kcp`, many C# ports) take it.
        let conv = loop {
            let c: u32 = self.rng.r#gen::<u32>() >> 1;
            if c != 0 && !self.sessions.contains_key(&c) {
                break c;
            }
        };
        let mut kcp = Kcp::new(conv, self.outbox.clone());
        self.config.kcp.apply(&mut kcp);
        let _ = kcp.update(self.ms(now));
        let idle = now + self.config.idle_timeout;
        let session = Session {
            kcp,
            peer,
            nonce,
            opened_at: now,
            authenticated: false,
            last_heard: now,
            deadline: idle,
            dirty: false,
            closing: None,
        };
        self.sessions.insert(conv, session);
        self.timers.push(Reverse((idle, conv)));
        let pressure = self.pending.len() >= self.config.max_pending.div_ceil(2);
        self.pending.insert((now, conv));
        self.events.push_back(UdpEvent::Opened { conv, peer, permit, pressure });
        Some(conv)
    }

    fn handle_kcp(&mut self, conv: u32, from: SocketAddr, data: &[u8], now: Instant) {
        if check_kcp_datagram(data).is_err() {
            self.stats.dropped += 1;
            return;
        }
        let max = self.config.kcp.max_message();
        let Some(session) = self.sessions.get_mut(&conv) else {
            self.stats.dropped += 1;
            return;
        };
        if session.kcp.input(data).is_err() {
            self.stats.dropped += 1;
            return;
        }
        session.last_heard = now;
        let candidate = (from != session.peer).then_some(from);
        let closing = session.closing.is_some();
        while let Ok(len) = session.kcp.peeksize() {
            if len > max {
                break;
            }
            let mut body = vec![0; len];
            if session.kcp.recv(&mut body).is_err() {
                break;
            }
            if !closing {
                self.events.push_back(UdpEvent::Message { conv, body: body.into(), candidate });
            }
        }
        self.mark_dirty(conv);
    }

    fn mark_dirty(&mut self, conv: u32) {
        if let Some(s) = self.sessions.get_mut(&conv)
            && !s.dirty
        {
            s.dirty = true;
            self.dirty.push(conv);
        }
    }

    /// Runs a session's KCP at `now`, moves its datagrams to the transmits and sets its next deadline.
    fn flush_session(&mut self, conv: u32, now: Instant) {
        let ms = self.ms(now);
        let idle_timeout = self.config.idle_timeout;
        let Some(s) = self.sessions.get_mut(&conv) else { return };
        let _ = s.kcp.update(ms);
        let _ = s.kcp.flush();
        let peer = s.peer;
        let dead = s.kcp.is_dead_link();
        let waiting = s.kcp.wait_snd();
        let closing = s.closing;
        let mut next = s.last_heard + idle_timeout;
        if waiting > 0 {
            next = next.min(now + Duration::from_millis(u64::from(s.kcp.check(ms).max(1))));
        }
        if let Some(linger) = closing {
            next = next.min(linger);
        }
        let reschedule = next < s.deadline || s.deadline <= now;
        if reschedule {
            s.deadline = next;
        }
        let sent = std::mem::take(&mut *self.outbox.0.lock().unwrap_or_else(PoisonError::into_inner));
        self.transmits.extend(sent.into_iter().map(|bytes| Transmit { to: peer, bytes }));
        if dead {
            self.end(conv, SessionEnd::DeadLink, now);
        } else if closing.is_some_and(|linger| waiting == 0 || now >= linger) {
            self.remove(conv);
        } else if reschedule {
            self.timers.push(Reverse((next, conv)));
        }
    }

    /// Ends a session from the endpoint's side: the shell hears of it unless the shell closed it first.
    fn end(&mut self, conv: u32, reason: SessionEnd, _now: Instant) {
        if let Some(s) = self.remove(conv)
            && s.closing.is_none()
        {
            self.events.push_back(UdpEvent::Closed { conv, reason });
        }
    }

    fn remove(&mut self, conv: u32) -> Option<Session> {
        let s = self.sessions.remove(&conv)?;
        if !s.authenticated {
            self.pending.remove(&(s.opened_at, conv));
        }
        Some(s)
    }

    /// KCP's clock: milliseconds since the endpoint started (wrapping after 49 days, as KCP expects).
    fn ms(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.epoch).as_millis() as u32
    }
}

/// A deadline that never comes first (the session's next one is set right after).
fn far(now: Instant) -> Instant {
    now + Duration::from_secs(24 * 3600)
}

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod tests;
