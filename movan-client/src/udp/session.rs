//! The client side of a UDP session, sans-IO: the cookie exchange, then KCP with the server's tuning. It takes
//! datagrams and the time and says what to send and which messages arrived; [`super::link`] drives it.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kcp::Kcp;
use movan_protocol::udp::{Control, KcpTuning, RefuseCode, check_kcp_datagram, conv_of};

/// Resend `hello`/`connect` after this long without an answer.
const RETRY: Duration = Duration::from_millis(250);
/// Give up the set-up after this many requests.
const MAX_REQUESTS: u32 = 20;
/// With nothing sent for this long, send a window probe so that the server (and NATs on the way) see the
/// session alive.
pub const KEEPALIVE: Duration = Duration::from_secs(5);

/// Why a UDP session could not open or ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UdpSessionError {
    /// No answer to [`MAX_REQUESTS`] set-up requests.
    #[error("the server did not answer the UDP session set-up")]
    NoAnswer,
    /// The server refused the session.
    #[error("the server refused the UDP session: {0:?}")]
    Refused(RefuseCode),
    /// A segment went unacknowledged too often.
    #[error("the UDP session's peer stopped acknowledging (dead link)")]
    DeadLink,
    /// The message is longer than one KCP message can carry.
    #[error("message of {0} bytes is too long for one KCP message")]
    TooLarge(usize),
}

/// One client UDP session. See the module docs.
pub struct UdpSession {
    tuning: KcpTuning,
    epoch: Instant,
    nonce: [u8; 8],
    state: State,
    outbox: Outbox,
    transmits: VecDeque<Bytes>,
    messages: VecDeque<Bytes>,
    /// Messages queued before the session opened.
    queued: Vec<Bytes>,
    last_sent: Instant,
    next_update: Option<Instant>,
}

enum State {
    Hello { sent: u32, at: Instant },
    Connect { cookie: movan_protocol::udp::Cookie, sent: u32, at: Instant },
    Open(Box<Kcp<Outbox>>),
    Failed(UdpSessionError),
}

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

impl std::fmt::Debug for UdpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSession").field("conv", &self.conv()).finish_non_exhaustive()
    }
}

impl UdpSession {
    /// Starts the set-up at `now` with a random `nonce`: the first `hello` is ready in [`Self::poll_transmit`].
    pub fn new(tuning: KcpTuning, nonce: [u8; 8], now: Instant) -> Self {
        let mut s = Self {
            tuning,
            epoch: now,
            nonce,
            state: State::Hello { sent: 1, at: now },
            outbox: Outbox::default(),
            transmits: VecDeque::new(),
            messages: VecDeque::new(),
            queued: Vec::new(),
            last_sent: now,
            next_update: None,
        };
        s.transmits.push_back(Control::Hello { nonce }.encode().into());
        s
    }

    /// The session's `conv` once open.
    pub fn conv(&self) -> Option<u32> {
        match &self.state {
            State::Open(k) => Some(k.conv()),
            _ => None,
        }
    }

    /// Why the session failed, if it did.
    pub fn error(&self) -> Option<&UdpSessionError> {
        match &self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Takes a datagram from the server.
    pub fn handle_datagram(&mut self, d: &[u8], now: Instant) {
        match conv_of(d) {
            Some(0) => self.handle_control(d, now),
            Some(conv) => {
                let State::Open(kcp) = &mut self.state else { return };
                if conv != kcp.conv() || check_kcp_datagram(d).is_err() || kcp.input(d).is_err() {
                    return;
                }
                while let Ok(len) = kcp.peeksize() {
                    let mut body = vec![0; len];
                    if kcp.recv(&mut body).is_err() {
                        break;
                    }
                    self.messages.push_back(body.into());
                }
                // Acknowledge at once: the server's retransmission timer runs on our acks.
                self.flush(now);
            }
            None => {}
        }
    }

    /// Queues one Movan message body (sealed or not, as the connection decided): one KCP message.
    pub fn send(&mut self, body: &[u8], now: Instant) -> Result<(), UdpSessionError> {
        if body.len() > self.tuning.max_message() {
            return Err(UdpSessionError::TooLarge(body.len()));
        }
        match &mut self.state {
            State::Open(kcp) => {
                kcp.send(body).map_err(|_| UdpSessionError::TooLarge(body.len()))?;
                self.flush(now);
                Ok(())
            }
            State::Failed(e) => Err(e.clone()),
            _ => {
                self.queued.push(Bytes::copy_from_slice(body));
                Ok(())
            }
        }
    }

    /// Runs the set-up retries, KCP's timers and the keepalive.
    pub fn handle_timeout(&mut self, now: Instant) {
        let (nonce, ms) = (self.nonce, self.ms(now));
        let request = match &mut self.state {
            State::Hello { sent, at } if now >= *at + RETRY => {
                (*sent, *at) = (*sent + 1, now);
                Some((*sent, Control::Hello { nonce }))
            }
            State::Connect { cookie, sent, at } if now >= *at + RETRY => {
                (*sent, *at) = (*sent + 1, now);
                Some((*sent, Control::Connect { nonce, cookie: *cookie }))
            }
            State::Open(kcp) => {
                if now >= self.last_sent + KEEPALIVE {
                    let probe = window_probe(kcp.conv(), self.tuning.recv_window, ms);
                    self.transmits.push_back(probe.into());
                    self.last_sent = now;
                }
                self.flush(now);
                None
            }
            _ => None,
        };
        match request {
            Some((sent, _)) if sent > MAX_REQUESTS => self.state = State::Failed(UdpSessionError::NoAnswer),
            Some((_, request)) => self.transmits.push_back(request.encode().into()),
            None => {}
        }
    }

    /// When [`Self::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Hello { at, .. } | State::Connect { at, .. } => Some(*at + RETRY),
            State::Open(_) => {
                let keepalive = self.last_sent + KEEPALIVE;
                Some(self.next_update.map_or(keepalive, |u| u.min(keepalive)))
            }
            State::Failed(_) => None,
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmits.pop_front()
    }

    /// The next message that arrived.
    pub fn poll_message(&mut self) -> Option<Bytes> {
        self.messages.pop_front()
    }

    fn handle_control(&mut self, d: &[u8], now: Instant) {
        let Ok(control) = Control::parse(d) else { return };
        match (control, &self.state) {
            (Control::Cookie { nonce, cookie }, State::Hello { .. }) if nonce == self.nonce => {
                self.transmits.push_back(Control::Connect { nonce, cookie }.encode().into());
                self.state = State::Connect { cookie, sent: 1, at: now };
            }
            (Control::Accept { nonce, conv }, State::Connect { .. }) if nonce == self.nonce && conv != 0 => {
                let mut kcp = Kcp::new(conv, self.outbox.clone());
                self.tuning.apply(&mut kcp);
                let _ = kcp.update(self.ms(now));
                self.state = State::Open(Box::new(kcp));
                for body in std::mem::take(&mut self.queued) {
                    let _ = self.send(&body, now);
                }
                self.flush(now);
            }
            (Control::Refused { nonce, code: RefuseCode::BadCookie }, State::Connect { .. }) if nonce == self.nonce => {
                // The cookie went stale on the way: start again.
                self.transmits.push_back(Control::Hello { nonce }.encode().into());
                self.state = State::Hello { sent: 1, at: now };
            }
            (Control::Refused { nonce, code }, State::Connect { .. }) if nonce == self.nonce => {
                self.state = State::Failed(UdpSessionError::Refused(code));
            }
            _ => {}
        }
    }

    fn flush(&mut self, now: Instant) {
        let ms = self.ms(now);
        let State::Open(kcp) = &mut self.state else { return };
        let _ = kcp.update(ms);
        let _ = kcp.flush();
        if kcp.is_dead_link() {
            self.state = State::Failed(UdpSessionError::DeadLink);
            return;
        }
        self.next_update = (kcp.wait_snd() > 0).then(|| now + Duration::from_millis(u64::from(kcp.check(ms).max(1))));
        let sent = std::mem::take(&mut *self.outbox.0.lock().unwrap_or_else(PoisonError::into_inner));
        if !sent.is_empty() {
            self.last_sent = now;
        }
        self.transmits.extend(sent);
    }

    fn ms(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.epoch).as_millis() as u32
    }
}

/// A KCP window probe (`IKCP_CMD_WASK`): a bare 24-byte segment the peer answers with its window. It carries no
/// data and acknowledges nothing (`una` 0), so it only shows the session alive.
fn window_probe(conv: u32, wnd: u16, ts: u32) -> Vec<u8> {
    let mut s = conv.to_le_bytes().to_vec();
    s.extend_from_slice(&[83, 0]);
    s.extend_from_slice(&wnd.to_le_bytes());
    for v in [ts, 0, 0, 0] {
        s.extend_from_slice(&v.to_le_bytes());
    }
    s
}
