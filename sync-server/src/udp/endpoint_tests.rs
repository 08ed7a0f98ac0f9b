#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use movan_protocol::udp::{Cookie, REQUEST_LEN};
use rand::Rng;

use super::*;

/// A client in the test: the control exchange by hand, then a KCP of its own with the same tuning.
struct Client {
    addr: SocketAddr,
    kcp: Option<Kcp<Sink>>,
    sink: Sink,
    received: Vec<Vec<u8>>,
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<Vec<u8>>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().push(b.to_vec());
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct World {
    t0: Instant,
    now: Instant,
    ep: Endpoint,
    events: Vec<UdpEvent>,
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

fn world(config: UdpConfig) -> World {
    let t0 = Instant::now();
    let limits = ConnectionLimits::new(100, 50);
    World { t0, now: t0, ep: Endpoint::new(config, limits, [9; 32], 1, t0), events: Vec::new() }
}

impl World {
    /// Server transmits, each with its destination.
    fn drain(&mut self) -> Vec<Transmit> {
        let mut out = Vec::new();
        while let Some(t) = self.ep.poll_transmit(self.now) {
            out.push(t);
        }
        while let Some(e) = self.ep.poll_event() {
            self.events.push(e);
        }
        out
    }

    fn control(&mut self, from: SocketAddr, c: Control) -> Vec<Transmit> {
        self.ep.handle_datagram(from, &c.encode(), self.now);
        self.drain()
    }

    /// The whole exchange: returns the client with its KCP running.
    fn connect(&mut self, port: u16) -> Client {
        let a = addr(port);
        let nonce = [port as u8; 8];
        let reply = self.control(a, Control::Hello { nonce });
        let Control::Cookie { cookie, .. } = Control::parse(&reply[0].bytes).unwrap() else { panic!("no cookie") };
        let reply = self.control(a, Control::Connect { nonce, cookie });
        let Control::Accept { conv, .. } = Control::parse(&reply[0].bytes).unwrap() else { panic!("not accepted") };
        let sink = Sink::default();
        let mut kcp = Kcp::new(conv, sink.clone());
        KcpTuning::default().apply(&mut kcp);
        kcp.update(self.client_ms()).unwrap();
        Client { addr: a, kcp: Some(kcp), sink, received: Vec::new() }
    }

    fn client_ms(&self) -> u32 {
        (self.now - self.t0).as_millis() as u32 + 5_000
    }

    /// Moves time forward by `ms` in 5 ms steps, carrying datagrams both ways; `drop` decides which datagrams are
    /// lost (true = lost).
    fn run(&mut self, clients: &mut [&mut Client], ms: u64, drop: &mut dyn FnMut() -> bool) {
        for _ in 0..ms / 5 {
            self.now += Duration::from_millis(5);
            self.ep.handle_timeout(self.now);
            let cms = self.client_ms();
            for c in clients.iter_mut() {
                c.kcp.as_mut().unwrap().update(cms).unwrap();
                let sent: Vec<_> = std::mem::take(&mut *c.sink.0.lock().unwrap());
                for d in sent {
                    if !drop() {
                        self.ep.handle_datagram(c.addr, &d, self.now);
                    }
                }
            }
            for t in self.drain() {
                if drop() {
                    continue;
                }
                if let Some(c) = clients.iter_mut().find(|c| c.addr == t.to) {
                    let k = c.kcp.as_mut().unwrap();
                    k.input(&t.bytes).unwrap();
                    let mut buf = vec![0; 200_000];
                    while let Ok(n) = k.recv(&mut buf) {
                        c.received.push(buf[..n].to_vec());
                    }
                }
            }
        }
    }

    fn messages(&mut self) -> Vec<(u32, Vec<u8>, Option<SocketAddr>)> {
        let mut out = Vec::new();
        self.events.retain(|e| match e {
            UdpEvent::Message { conv, body, candidate } => {
                out.push((*conv, body.to_vec(), *candidate));
                false
            }
            _ => true,
        });
        out
    }
}

fn never() -> impl FnMut() -> bool {
    || false
}

#[test]
fn hello_gets_a_cookie_and_leaves_no_state() {
    let mut w = world(UdpConfig::default());
    let hello = Control::Hello { nonce: [1; 8] }.encode();
    w.ep.handle_datagram(addr(1), &hello, w.now);
    let out = w.drain();
    assert_eq!(out.len(), 1);
    assert!(out[0].bytes.len() <= hello.len());
    assert!(matches!(Control::parse(&out[0].bytes), Ok(Control::Cookie { nonce, .. }) if nonce == [1; 8]));
    assert_eq!((w.ep.sessions(), w.ep.pending()), (0, 0));
    // A hello cut short (an amplification attempt with a small request) gets nothing.
    w.ep.handle_datagram(addr(1), &hello[..20], w.now);
    assert!(w.drain().is_empty());
}

#[test]
fn a_forged_or_stale_cookie_allocates_nothing() {
    let mut w = world(UdpConfig::default());
    let nonce = [3; 8];
    let out = w.control(addr(1), Control::Hello { nonce });
    let Ok(Control::Cookie { cookie, .. }) = Control::parse(&out[0].bytes) else { panic!() };
    // The cookie replayed from another address (a spoofer never sees the cookie for its forged address).
    let out = w.control(addr(2), Control::Connect { nonce, cookie });
    assert!(matches!(Control::parse(&out[0].bytes), Ok(Control::Refused { code: RefuseCode::BadCookie, .. })));
    let guessed = Cookie { slot: 0, mac: [0; 16] };
    let out = w.control(addr(1), Control::Connect { nonce, cookie: guessed });
    assert!(out.iter().all(|t| t.bytes.len() <= REQUEST_LEN));
    w.now += Duration::from_secs(25);
    let out = w.control(addr(1), Control::Connect { nonce, cookie });
    assert!(matches!(Control::parse(&out[0].bytes), Ok(Control::Refused { code: RefuseCode::BadCookie, .. })));
    assert_eq!(w.ep.sessions(), 0);
    assert!(w.events.is_empty());
    assert_eq!(w.ep.stats().refused, 3);
}

#[test]
fn connect_opens_one_session_even_when_repeated() {
    let mut w = world(UdpConfig::default());
    let nonce = [4; 8];
    let out = w.control(addr(1), Control::Hello { nonce });
    let Ok(Control::Cookie { cookie, .. }) = Control::parse(&out[0].bytes) else { panic!() };
    let a = w.control(addr(1), Control::Connect { nonce, cookie });
    let b = w.control(addr(1), Control::Connect { nonce, cookie });
    assert_eq!(a, b, "a lost accept is answered again with the same conv");
    let Ok(Control::Accept { conv, .. }) = Control::parse(&a[0].bytes) else { panic!() };
    assert!(conv != 0 && conv < 1 << 31, "a conv any binding takes: {conv}");
    assert_eq!((w.ep.sessions(), w.ep.pending()), (1, 1));
    assert!(matches!(w.events.as_slice(), [UdpEvent::Opened { conv: c, .. }] if *c == conv));
}

#[test]
fn one_message_is_one_kcp_message_both_ways() {
    let mut w = world(UdpConfig::default());
    let mut c = w.connect(1);
    let conv = c.kcp.as_ref().unwrap().conv();
    let big = vec![7u8; 20_000];
    c.kcp.as_mut().unwrap().send(b"first").unwrap();
    c.kcp.as_mut().unwrap().send(&big).unwrap();
    w.ep.send(conv, b"handshake", w.now).unwrap();
    w.run(&mut [&mut c], 100, &mut never());
    let got = w.messages();
    assert_eq!(got, vec![(conv, b"first".to_vec(), None), (conv, big, None)]);
    assert_eq!(c.received, vec![b"handshake".to_vec()]);
    let max = KcpTuning::default().max_message();
    assert_eq!(w.ep.send(conv, &vec![0; max + 1], w.now), Err(SendError::TooLarge { len: max + 1, max }));
    assert_eq!(w.ep.send(99, b"x", w.now), Err(SendError::UnknownSession(99)));
}

#[test]
fn a_lossy_link_delivers_every_message_once_in_order() {
    let mut w = world(UdpConfig::default());
    let mut c = w.connect(1);
    let conv = c.kcp.as_ref().unwrap().conv();
    let mut rng = StdRng::seed_from_u64(7);
    let mut lose = move || rng.gen_ratio(1, 10);
    for i in 0..200u32 {
        w.ep.send(conv, format!("frame {i}").as_bytes(), w.now).unwrap();
        c.kcp.as_mut().unwrap().send(format!("action {i}").as_bytes()).unwrap();
        w.run(&mut [&mut c], 50, &mut lose);
    }
    w.run(&mut [&mut c], 3000, &mut never());
    let frames: Vec<_> = (0..200).map(|i| format!("frame {i}").into_bytes()).collect();
    assert_eq!(c.received, frames);
    let actions: Vec<_> = w.messages().into_iter().map(|(_, b, _)| b).collect();
    assert_eq!(actions, (0..200).map(|i| format!("action {i}").into_bytes()).collect::<Vec<_>>());
}

#[test]
fn pending_sessions_shed_the_oldest_and_total_sessions_are_bounded() {
    let config = UdpConfig { max_pending: 2, max_sessions: 3, ..UdpConfig::default() };
    let mut w = world(config);
    let a = w.connect(1);
    w.now += Duration::from_millis(1);
    let b = w.connect(2);
    w.now += Duration::from_millis(1);
    let conv = |c: &Client| c.kcp.as_ref().unwrap().conv();
    let pressure: Vec<bool> = w
        .events
        .iter()
        .filter_map(|e| match e {
            UdpEvent::Opened { pressure, .. } => Some(*pressure),
            _ => None,
        })
        .collect();
    assert_eq!(pressure, [false, true], "from half of udp_max_pending on, new sessions are under pressure");
    w.events.clear();
    let _c = w.connect(3);
    assert!(
        matches!(w.events.as_slice(), [UdpEvent::Shed { conv: s }, UdpEvent::Opened { .. }] if *s == conv(&a)),
        "a third pending session sheds the oldest: {:?}",
        w.events
    );
    assert_eq!((w.ep.pending(), w.ep.sessions()), (2, 3), "the shed one no longer counts; the shell closes it");
    w.ep.set_authenticated(conv(&b));
    assert_eq!(w.ep.pending(), 1);
    let nonce = [4; 8];
    let out = w.control(addr(4), Control::Hello { nonce });
    let Ok(Control::Cookie { cookie, .. }) = Control::parse(&out[0].bytes) else { panic!() };
    let out = w.control(addr(4), Control::Connect { nonce, cookie });
    assert!(matches!(Control::parse(&out[0].bytes), Ok(Control::Refused { code: RefuseCode::Busy, .. })));
    assert_eq!(w.ep.sessions(), 3, "max_sessions holds");
    w.ep.close(conv(&a), w.now);
    assert_eq!(w.ep.pending(), 1, "closing a shed session counts nothing twice");
}

#[test]
fn a_silent_peer_times_out_and_an_unacknowledging_one_is_dead() {
    let mut w = world(UdpConfig::default());
    let mut idle = w.connect(1);
    let conv_idle = idle.kcp.as_ref().unwrap().conv();
    let mut deaf = w.connect(2);
    let conv_deaf = deaf.kcp.as_ref().unwrap().conv();
    // Both talk for a while (so KCP measured the round trip), then go silent.
    for c in [&mut idle, &mut deaf] {
        c.kcp.as_mut().unwrap().send(b"hello").unwrap();
    }
    w.ep.send(conv_deaf, b"welcome", w.now).unwrap();
    w.run(&mut [&mut idle, &mut deaf], 100, &mut never());
    assert_eq!(deaf.received.len(), 1);
    let silent_from = w.now - w.t0;
    w.ep.send(conv_deaf, b"anyone?", w.now).unwrap();
    let _ = w.drain();
    let mut closed = Vec::new();
    for _ in 0..(16_000 / 5) {
        w.now += Duration::from_millis(5);
        w.ep.handle_timeout(w.now);
        let _ = w.drain();
        for e in w.events.drain(..) {
            if let UdpEvent::Closed { conv, reason } = e {
                closed.push((conv, reason, w.now - w.t0 - silent_from));
            }
        }
    }
    assert_eq!(closed.len(), 2, "{closed:?}");
    assert_eq!((closed[0].0, closed[0].1), (conv_deaf, SessionEnd::DeadLink));
    assert!(closed[0].2 < Duration::from_secs(12), "{closed:?}");
    assert_eq!((closed[1].0, closed[1].1), (conv_idle, SessionEnd::Idle));
    assert!(closed[1].2 <= Duration::from_secs(15) && closed[1].2 > Duration::from_secs(14), "{closed:?}");
    assert_eq!(w.ep.sessions(), 0);
}

#[test]
fn keepalives_keep_a_session_open() {
    let mut w = world(UdpConfig::default());
    let mut c = w.connect(1);
    for _ in 0..10 {
        c.kcp.as_mut().unwrap().send(b"ping").unwrap();
        w.run(&mut [&mut c], 5_000, &mut never());
    }
    assert_eq!(w.ep.sessions(), 1);
    assert!(!w.events.iter().any(|e| matches!(e, UdpEvent::Closed { .. })));
}

#[test]
fn a_session_moves_only_when_the_shell_says_its_message_opened() {
    let mut w = world(UdpConfig::default());
    let mut c = w.connect(1);
    let conv = c.kcp.as_ref().unwrap().conv();
    c.kcp.as_mut().unwrap().send(b"from the old address").unwrap();
    w.run(&mut [&mut c], 50, &mut never());
    assert_eq!(w.messages()[0].2, None);
    c.addr = addr(7);
    c.kcp.as_mut().unwrap().send(b"from the new address").unwrap();
    w.now += Duration::from_millis(5);
    let cms = w.client_ms();
    c.kcp.as_mut().unwrap().update(cms).unwrap();
    c.kcp.as_mut().unwrap().flush().unwrap();
    for d in std::mem::take(&mut *c.sink.0.lock().unwrap()) {
        w.ep.handle_datagram(c.addr, &d, w.now);
    }
    let out = w.drain();
    assert!(out.iter().all(|t| t.to == addr(1)), "acks still go to the old address");
    assert_eq!(w.messages(), vec![(conv, b"from the new address".to_vec(), Some(addr(7)))]);
    w.ep.migrate(conv, addr(7));
    w.ep.send(conv, b"to the new address", w.now).unwrap();
    w.run(&mut [&mut c], 50, &mut never());
    assert_eq!(w.ep.peer(conv), Some(addr(7)));
    assert_eq!(c.received.last().unwrap(), b"to the new address");
}

#[test]
fn a_closed_session_delivers_its_last_message_then_goes() {
    let mut w = world(UdpConfig::default());
    let mut c = w.connect(1);
    let conv = c.kcp.as_ref().unwrap().conv();
    w.ep.send(conv, b"error: bye", w.now).unwrap();
    w.ep.close(conv, w.now);
    assert_eq!(w.ep.pending(), 0);
    let mut rng = StdRng::seed_from_u64(3);
    let mut lose = move || rng.gen_ratio(1, 3);
    w.run(&mut [&mut c], 1000, &mut lose);
    assert_eq!(c.received, vec![b"error: bye".to_vec()]);
    assert_eq!(w.ep.sessions(), 0);
    assert!(!w.events.iter().any(|e| matches!(e, UdpEvent::Closed { .. })), "the shell closed it itself");
}

#[test]
fn garbage_never_panics_and_allocates_nothing() {
    let mut w = world(UdpConfig::default());
    let c = w.connect(1);
    let conv = c.kcp.as_ref().unwrap().conv();
    let mut rng = StdRng::seed_from_u64(11);
    for i in 0..20_000 {
        let len = rng.gen_range(0..1500);
        let mut d: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
        if i % 3 == 0 && d.len() >= 4 {
            d[..4].copy_from_slice(&conv.to_le_bytes());
        }
        if i % 5 == 0 && d.len() >= 6 {
            d[..4].copy_from_slice(&[0; 4]);
            d[5] = 1;
        }
        w.ep.handle_datagram(addr(2), &d, w.now);
        for t in w.drain() {
            assert!(t.to == addr(1) || t.bytes.len() <= d.len(), "a reply longer than its request");
        }
    }
    assert_eq!(w.ep.sessions(), 1);
}
