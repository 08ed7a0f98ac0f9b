//! The UDP transport's datagrams: the stateless cookie exchange that opens a session, the checks every KCP datagram
//! passes before it reaches the KCP state machine, and the KCP tuning both sides use.
//!
//! A datagram whose first 4 bytes (little-endian, as KCP's `conv`) are zero is a *control* datagram of the session
//! set-up; any other datagram is a KCP datagram (one or more 24-byte-header segments of the reference
//! implementation, skywind3000/kcp) of the session the server numbered with that `conv`. The server never picks
//! `conv` 0.
//!
//! ```text
//! client                                     server
//!   hello   (64 B: nonce, zero padding)   ->
//!                                         <-  cookie  (34 B: nonce, slot, mac)      no state kept
//!   connect (64 B: nonce, slot, mac, pad) ->
//!                                         <-  accept  (18 B: nonce, conv)           session allocated
//!   KCP segments with conv, carrying the Movan messages (first message, handshake, sealed frames) ...
//! ```
//!
//! No reply is longer than the datagram it answers, so the set-up cannot amplify a forged source address, and the
//! server allocates nothing before a `connect` echoes a cookie minted for that very address. `docs/protocol.md`
//! (section "UDP") has the byte layout and test vectors; the tests below check them.

use thiserror::Error;

/// Length of `hello` and `connect`: the padding makes every reply at most as long as its request.
pub const REQUEST_LEN: usize = 64;
/// Length of `cookie`.
pub const COOKIE_LEN: usize = 34;
/// Length of `accept`.
pub const ACCEPT_LEN: usize = 18;
/// Length of `refused`.
pub const REFUSED_LEN: usize = 15;
/// Length of the MAC in a cookie (HMAC-SHA256 truncated).
pub const MAC_LEN: usize = 16;
/// The version byte of every control datagram.
pub const VERSION: u8 = 1;
/// The reference KCP segment header: `conv` u32, `cmd` u8, `frg` u8, `wnd` u16, `ts` u32, `sn` u32, `una` u32,
/// `len` u32, all little-endian.
pub const KCP_HEADER: usize = 24;
/// KCP allows at most this many fragments per message (`IKCP_WND_RCV - 1` in ikcp.c).
pub const KCP_MAX_FRAGMENTS: usize = 127;

// No reply is longer than the request it answers.
const _: () = assert!(COOKIE_LEN <= REQUEST_LEN && ACCEPT_LEN <= REQUEST_LEN && REFUSED_LEN <= REQUEST_LEN);

const KIND_HELLO: u8 = 1;
const KIND_COOKIE: u8 = 2;
const KIND_CONNECT: u8 = 3;
const KIND_ACCEPT: u8 = 4;
const KIND_REFUSED: u8 = 5;

/// A stateless cookie: the time slot it was minted in and its MAC over the client's address, the slot and the
/// client's nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookie {
    /// The server's time slot (seconds since the server started, divided by `sync.udp_cookie_secs`).
    pub slot: u32,
    /// HMAC-SHA256(server secret, address ‖ slot ‖ nonce), first 16 bytes.
    pub mac: [u8; MAC_LEN],
}

/// Why the server refuses a `connect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseCode {
    /// `sync.udp_max_sessions`, `sync.udp_max_pending` or a connection limit is reached: try later.
    Busy = 1,
    /// The cookie is stale or was minted for another address: start again with `hello`.
    BadCookie = 2,
}

/// A control datagram (`conv` 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Client → server: asks for a cookie. `nonce` is the client's random pick, echoed in every reply.
    Hello { nonce: [u8; 8] },
    /// Server → client: the cookie for the client's address.
    Cookie { nonce: [u8; 8], cookie: Cookie },
    /// Client → server: echoes the cookie; opens the session.
    Connect { nonce: [u8; 8], cookie: Cookie },
    /// Server → client: the session is open; KCP runs with `conv`.
    Accept { nonce: [u8; 8], conv: u32 },
    /// Server → client: no session.
    Refused { nonce: [u8; 8], code: RefuseCode },
}

/// A datagram that is neither a valid control datagram nor a valid KCP datagram. Such datagrams are dropped
/// without a reply.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DatagramError {
    /// Shorter than a KCP header or a control datagram of its kind.
    #[error("datagram of {0} bytes is too short")]
    TooShort(usize),
    /// Unknown control kind or version.
    #[error("unknown control datagram kind {kind} version {version}")]
    UnknownControl { kind: u8, version: u8 },
    /// A KCP segment with an unknown `cmd`.
    #[error("KCP segment with unknown cmd {0}")]
    UnknownCmd(u8),
    /// A KCP segment whose `len` runs past the datagram.
    #[error("KCP segment length {len} runs past the datagram ({left} bytes left)")]
    BadLength { len: u32, left: usize },
    /// Segments of different `conv`s in one datagram.
    #[error("KCP segments of different conv in one datagram")]
    MixedConv,
    /// A sequence number, `una` or echoed timestamp in the upper half of the 32-bit space (see
    /// [`check_kcp_datagram`]).
    #[error("KCP segment counter out of range")]
    CounterOutOfRange,
}

/// The `conv` of a datagram: 0 for control datagrams.
pub fn conv_of(datagram: &[u8]) -> Option<u32> {
    let head: [u8; 4] = datagram.get(..4)?.try_into().ok()?;
    Some(u32::from_le_bytes(head))
}

impl Control {
    /// Parses a control datagram (its `conv` must be 0; trailing padding is ignored).
    pub fn parse(d: &[u8]) -> Result<Self, DatagramError> {
        if d.len() < 6 || conv_of(d) != Some(0) {
            return Err(DatagramError::TooShort(d.len()));
        }
        let (kind, version) = (d[4], d[5]);
        if version != VERSION {
            return Err(DatagramError::UnknownControl { kind, version });
        }
        let need = match kind {
            KIND_HELLO | KIND_CONNECT => REQUEST_LEN,
            KIND_COOKIE => COOKIE_LEN,
            KIND_ACCEPT => ACCEPT_LEN,
            KIND_REFUSED => REFUSED_LEN,
            _ => return Err(DatagramError::UnknownControl { kind, version }),
        };
        if d.len() < need {
            return Err(DatagramError::TooShort(d.len()));
        }
        let nonce = array(&d[6..14]);
        let cookie = || Cookie { slot: u32::from_be_bytes(array(&d[14..18])), mac: array(&d[18..34]) };
        Ok(match kind {
            KIND_HELLO => Self::Hello { nonce },
            KIND_COOKIE => Self::Cookie { nonce, cookie: cookie() },
            KIND_CONNECT => Self::Connect { nonce, cookie: cookie() },
            KIND_ACCEPT => Self::Accept { nonce, conv: u32::from_be_bytes(array(&d[14..18])) },
            _ => {
                let code = match d[14] {
                    1 => RefuseCode::Busy,
                    2 => RefuseCode::BadCookie,
                    _ => return Err(DatagramError::UnknownControl { kind, version }),
                };
                Self::Refused { nonce, code }
            }
        })
    }

    /// The datagram's bytes (requests padded to [`REQUEST_LEN`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut d = vec![0, 0, 0, 0];
        let (kind, nonce) = match self {
            Self::Hello { nonce } => (KIND_HELLO, nonce),
            Self::Cookie { nonce, .. } => (KIND_COOKIE, nonce),
            Self::Connect { nonce, .. } => (KIND_CONNECT, nonce),
            Self::Accept { nonce, .. } => (KIND_ACCEPT, nonce),
            Self::Refused { nonce, .. } => (KIND_REFUSED, nonce),
        };
        d.extend_from_slice(&[kind, VERSION]);
        d.extend_from_slice(nonce);
        match self {
            Self::Hello { .. } => {}
            Self::Cookie { cookie, .. } | Self::Connect { cookie, .. } => {
                d.extend_from_slice(&cookie.slot.to_be_bytes());
                d.extend_from_slice(&cookie.mac);
            }
            Self::Accept { conv, .. } => d.extend_from_slice(&conv.to_be_bytes()),
            Self::Refused { code, .. } => d.push(*code as u8),
        }
        if matches!(self, Self::Hello { .. } | Self::Connect { .. }) {
            d.resize(REQUEST_LEN, 0);
        }
        d
    }
}

fn array<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0; N];
    a.copy_from_slice(s);
    a
}

/// Checks a KCP datagram before it reaches the KCP state machine and returns its `conv`: whole segments only,
/// known commands, one `conv`, and counters (`sn`, `una`, and the timestamp an `ack` echoes) below 2^31.
///
/// The last rule keeps the state machine's wrapping arithmetic on values a conforming peer sends: sequence numbers
/// start at 0 and an `ack` echoes the receiver's own clock, which starts at 0 with the session, so none reaches
/// 2^31 within a session's life (2^31 segments, or 24 days).
pub fn check_kcp_datagram(d: &[u8]) -> Result<u32, DatagramError> {
    let conv = conv_of(d).ok_or(DatagramError::TooShort(d.len()))?;
    if d.len() < KCP_HEADER {
        return Err(DatagramError::TooShort(d.len()));
    }
    let mut rest = d;
    while rest.len() >= KCP_HEADER {
        let word = |at: usize| u32::from_le_bytes(array(&rest[at..at + 4]));
        if word(0) != conv {
            return Err(DatagramError::MixedConv);
        }
        let cmd = rest[4];
        if !(81..=84).contains(&cmd) {
            return Err(DatagramError::UnknownCmd(cmd));
        }
        let (ts, sn, una, len) = (word(8), word(12), word(16), word(20));
        let high = |v: u32| v >= 1 << 31;
        if high(sn) || high(una) || (cmd == 82 && high(ts)) {
            return Err(DatagramError::CounterOutOfRange);
        }
        let left = rest.len() - KCP_HEADER;
        if len as usize > left {
            return Err(DatagramError::BadLength { len, left });
        }
        rest = &rest[KCP_HEADER + len as usize..];
    }
    Ok(conv)
}

/// The KCP settings of a session, the same on both sides (`sync.udp_kcp_*` on the server; the client SDK uses the
/// defaults). The defaults are tuned for lockstep: small messages every tick, where latency matters and throughput
/// does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KcpTuning {
    /// Bytes per datagram, KCP header included (`ikcp_setmtu`).
    pub mtu: usize,
    /// Milliseconds between KCP updates: the longest a retransmission waits past its deadline (`ikcp_nodelay`'s
    /// `interval`).
    pub interval_ms: u32,
    /// KCP's nodelay mode: minimum RTO 30 ms instead of 100 ms, and a gentler RTO backoff (×1.5, not ×2).
    pub nodelay: bool,
    /// Resend a segment at once after this many later segments were acknowledged (0: off).
    pub fast_resend: u32,
    /// Turn KCP's congestion window off: only the send and receive windows bound what is in flight.
    pub no_congestion_window: bool,
    /// Lowest retransmission timeout, milliseconds.
    pub min_rto_ms: u32,
    /// Send window, segments.
    pub send_window: u16,
    /// Receive window, segments (at least 128, so that a message of [`KCP_MAX_FRAGMENTS`] fragments fits).
    pub recv_window: u16,
    /// Transmissions of one segment after which the peer counts as dead. With nodelay each retransmission waits
    /// 1.5 times longer than the one before: 12 transmissions from a 30 ms RTO span about 8 s.
    pub dead_link: u32,
}

impl Default for KcpTuning {
    fn default() -> Self {
        Self {
            mtu: 1400,
            interval_ms: 10,
            nodelay: true,
            fast_resend: 2,
            no_congestion_window: true,
            min_rto_ms: 30,
            send_window: 256,
            recv_window: 256,
            dead_link: 12,
        }
    }
}

impl KcpTuning {
    /// The longest Movan message one KCP message carries: [`KCP_MAX_FRAGMENTS`] segments of `mtu - 24` bytes.
    pub fn max_message(&self) -> usize {
        KCP_MAX_FRAGMENTS * (self.mtu - KCP_HEADER)
    }

    /// Applies the settings to a KCP state machine.
    pub fn apply<W: std::io::Write>(&self, kcp: &mut kcp::Kcp<W>) {
        // mtu is validated at config load; a bad one leaves KCP's default.
        let _ = kcp.set_mtu(self.mtu);
        kcp.set_nodelay(self.nodelay, self.interval_ms as i32, self.fast_resend as i32, self.no_congestion_window);
        kcp.set_rx_minrto(self.min_rto_ms);
        kcp.set_wndsize(self.send_window, self.recv_window);
        kcp.set_maximum_resend_times(self.dead_link);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn control_datagrams_match_the_documented_bytes() {
        let nonce = *b"\x01\x02\x03\x04\x05\x06\x07\x08";
        let cookie = Cookie { slot: 0x0000_0102, mac: [0xaa; 16] };
        let hello = Control::Hello { nonce }.encode();
        assert_eq!(hello.len(), REQUEST_LEN);
        assert_eq!(hex(&hello[..14]), "0000000001010102030405060708");
        assert!(hello[14..].iter().all(|&b| b == 0));
        let c = Control::Cookie { nonce, cookie }.encode();
        assert_eq!(hex(&c), format!("000000000201{}00000102{}", "0102030405060708", "aa".repeat(16)));
        let connect = Control::Connect { nonce, cookie }.encode();
        assert_eq!(connect.len(), REQUEST_LEN);
        assert_eq!(connect[4], 3);
        assert_eq!(connect[14..34], c[14..34]);
        let accept = Control::Accept { nonce, conv: 0x1234_5678 }.encode();
        assert_eq!(hex(&accept), "000000000401010203040506070812345678");
        let refused = Control::Refused { nonce, code: RefuseCode::Busy }.encode();
        assert_eq!(hex(&refused), "000000000501010203040506070801");
        for d in [hello, c, connect, accept, refused] {
            assert_eq!(Control::parse(&d).unwrap().encode(), d);
        }
    }

    #[test]
    fn bad_control_datagrams_are_errors_not_panics() {
        assert_eq!(Control::parse(&[0, 0, 0, 0, 1]), Err(DatagramError::TooShort(5)));
        assert!(matches!(Control::parse(&[0, 0, 0, 0, 9, 1]), Err(DatagramError::UnknownControl { kind: 9, .. })));
        assert!(matches!(Control::parse(&[0, 0, 0, 0, 1, 2]), Err(DatagramError::UnknownControl { version: 2, .. })));
        let short_hello = [0u8, 0, 0, 0, 1, 1, 0, 0];
        assert_eq!(Control::parse(&short_hello), Err(DatagramError::TooShort(8)));
        for n in 0..70 {
            let _ = Control::parse(&vec![0u8; n]);
        }
    }

    /// A KCP segment as the reference implementation encodes it.
    fn segment(conv: u32, cmd: u8, ts: u32, sn: u32, una: u32, data: &[u8]) -> Vec<u8> {
        let mut s = conv.to_le_bytes().to_vec();
        s.extend_from_slice(&[cmd, 0]);
        s.extend_from_slice(&256u16.to_le_bytes());
        for v in [ts, sn, una, data.len() as u32] {
            s.extend_from_slice(&v.to_le_bytes());
        }
        s.extend_from_slice(data);
        s
    }

    #[test]
    fn kcp_datagrams_are_checked_segment_by_segment() {
        let mut d = segment(7, 81, 5, 0, 0, b"hi");
        d.extend(segment(7, 82, 5, 3, 0, b""));
        assert_eq!(check_kcp_datagram(&d), Ok(7));
        let mut mixed = d.clone();
        mixed.extend(segment(8, 82, 0, 0, 0, b""));
        assert_eq!(check_kcp_datagram(&mixed), Err(DatagramError::MixedConv));
        assert_eq!(check_kcp_datagram(&segment(7, 80, 0, 0, 0, b"")), Err(DatagramError::UnknownCmd(80)));
        let mut long = segment(7, 81, 0, 0, 0, b"abc");
        long.truncate(long.len() - 1);
        assert!(matches!(check_kcp_datagram(&long), Err(DatagramError::BadLength { len: 3, left: 2 })));
        assert_eq!(check_kcp_datagram(&segment(7, 81, 0, 1 << 31, 0, b"")), Err(DatagramError::CounterOutOfRange));
        assert_eq!(check_kcp_datagram(&segment(7, 82, 1 << 31, 0, 0, b"")), Err(DatagramError::CounterOutOfRange));
        // A push carries the sender's own clock, which may be anything.
        assert_eq!(check_kcp_datagram(&segment(7, 81, u32::MAX, 0, 0, b"")), Ok(7));
        assert_eq!(check_kcp_datagram(&[1, 0, 0]), Err(DatagramError::TooShort(3)));
    }

    #[test]
    fn the_kcp_crate_speaks_the_reference_header() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Out(Arc<Mutex<Vec<Vec<u8>>>>);
        impl std::io::Write for Out {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().push(b.to_vec());
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let out = Out::default();
        let mut k = kcp::Kcp::new(0x0102_0304, out.clone());
        KcpTuning::default().apply(&mut k);
        k.update(0).unwrap();
        k.send(b"movan").unwrap();
        k.update(10).unwrap();
        let sent = out.0.lock().unwrap().clone();
        // cmd push, frg 0, wnd 256 (the receive window), ts 10, sn 0, una 0, len 5: the reference layout.
        assert_eq!(sent, vec![segment(0x0102_0304, 81, 10, 0, 0, b"movan")]);
        assert_eq!(hex(&sent[0][..KCP_HEADER]), "04030201510000010a000000000000000000000005000000");
        let mut r = kcp::Kcp::new(0x0102_0304, Out::default());
        r.update(0).unwrap();
        r.input(&sent[0]).unwrap();
        let mut buf = [0u8; 16];
        let n = r.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"movan");
    }
}
