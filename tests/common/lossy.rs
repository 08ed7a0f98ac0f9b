//! A seeded userspace UDP impairment proxy: it drops, delays (with jitter, so it reorders) and duplicates
//! datagrams, both ways, between clients and a UDP server. The kernel here has no netem, so tests bring their own.
//!
//! Each client address gets its own upstream socket (as a NAT would), so the server sees one address per client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;

/// What happens to each datagram, in each direction.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Probability that a datagram is lost.
    pub drop: f64,
    /// Probability that a datagram arrives twice.
    pub duplicate: f64,
    /// Delay of every datagram.
    pub delay: Duration,
    /// Extra random delay, up to this, per datagram: datagrams overtake each other.
    pub jitter: Duration,
    /// The random source's seed: the same seed, the same fate for the same sequence of datagrams.
    pub seed: u64,
}

/// Counts of what the proxy did.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Datagrams received from either side.
    pub seen: AtomicU64,
    /// Datagrams dropped.
    pub dropped: AtomicU64,
    /// Extra copies sent.
    pub duplicated: AtomicU64,
}

/// A running proxy; it stops when dropped.
#[derive(Debug)]
pub struct LossyProxy {
    /// Where clients send to.
    pub addr: SocketAddr,
    /// What it did so far.
    pub stats: Arc<ProxyStats>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
struct Shared {
    rng: Mutex<StdRng>,
    imp: Impairment,
    stats: Arc<ProxyStats>,
    /// Flip a bit in the next client → server KCP data segment (see [`LossyProxy::tamper_next_push`]).
    tamper: AtomicBool,
}

/// KCP's `cmd` of a data segment (`IKCP_CMD_PUSH`).
const KCP_PUSH: u8 = 81;

/// Flips the last payload byte (in a sealed message, a byte of its tag) of the first KCP data segment in `d`.
/// False when `d` holds none (a control datagram, or only acknowledgements).
fn tamper(d: &mut [u8]) -> bool {
    let mut at = 0;
    while d.len() >= at + 24 && d[..4] != [0; 4] {
        let len = u32::from_le_bytes([d[at + 20], d[at + 21], d[at + 22], d[at + 23]]) as usize;
        let end = at + 24 + len;
        if end > d.len() {
            return false;
        }
        if d[at + 4] == KCP_PUSH && len > 0 {
            d[end - 1] ^= 0x01;
            return true;
        }
        at = end;
    }
    false
}

impl Shared {
    /// The delays at which to deliver this datagram: none (dropped), one, or two (duplicated).
    fn fate(&self) -> Vec<Duration> {
        self.stats.seen.fetch_add(1, Ordering::Relaxed);
        let mut rng = self.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if rng.gen_bool(self.imp.drop) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return Vec::new();
        }
        let (base, jitter) = (self.imp.delay, self.imp.jitter);
        let mut out = vec![base + jitter.mul_f64(rng.r#gen::<f64>())];
        if rng.gen_bool(self.imp.duplicate) {
            self.stats.duplicated.fetch_add(1, Ordering::Relaxed);
            out.push(base + jitter.mul_f64(rng.r#gen::<f64>()));
        }
        out
    }
}

impl LossyProxy {
    /// Starts a proxy in front of the UDP server at `server`.
    pub async fn start(server: SocketAddr, imp: Impairment) -> std::io::Result<Self> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let addr = front.local_addr()?;
        let stats = Arc::new(ProxyStats::default());
        let shared = Arc::new(Shared {
            rng: Mutex::new(StdRng::seed_from_u64(imp.seed)),
            imp,
            stats: stats.clone(),
            tamper: AtomicBool::new(false),
        });
        let proxy_shared = shared.clone();
        let task = tokio::spawn(async move {
            let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 65_536];
            loop {
                let Ok((n, client)) = front.recv_from(&mut buf).await else { return };
                let up = match upstreams.get(&client) {
                    Some(up) => up.clone(),
                    None => {
                        let Ok(up) = UdpSocket::bind("127.0.0.1:0").await else { return };
                        if up.connect(server).await.is_err() {
                            return;
                        }
                        let up = Arc::new(up);
                        upstreams.insert(client, up.clone());
                        tokio::spawn(back(up.clone(), front.clone(), client, shared.clone()));
                        up
                    }
                };
                let mut datagram = buf[..n].to_vec();
                if shared.tamper.load(Ordering::Relaxed) && tamper(&mut datagram) {
                    shared.tamper.store(false, Ordering::Relaxed);
                }
                for delay in shared.fate() {
                    let (up, d) = (up.clone(), datagram.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = up.send(&d).await;
                    });
                }
            }
        });
        Ok(Self { addr, stats, shared: proxy_shared, task })
    }

    /// Flips one bit in the next KCP data segment a client sends (the tag of a sealed message): KCP, which has no
    /// checksum, delivers it, and the message does not open.
    pub fn tamper_next_push(&self) {
        self.shared.tamper.store(true, Ordering::Relaxed);
    }
}

/// Server → client for one client.
async fn back(up: Arc<UdpSocket>, front: Arc<UdpSocket>, client: SocketAddr, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok(n) = up.recv(&mut buf).await else { return };
        let datagram = buf[..n].to_vec();
        for delay in shared.fate() {
            let (front, d) = (front.clone(), datagram.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = front.send_to(&d, client).await;
            });
        }
    }
}
