//! Stateless cookies: an HMAC over the client's address, a time slot and the client's nonce, so that the server
//! can check a `connect` without having kept anything from the `hello` (as DTLS's HelloVerifyRequest and QUIC's
//! Retry do).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use movan_protocol::udp::{Cookie, MAC_LEN};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Domain separation for the cookie MAC.
const LABEL: &[u8] = b"movan-udp-cookie-v1";

/// Mints and checks cookies with a secret drawn when the server starts.
pub struct CookieJar {
    secret: [u8; 32],
    epoch: Instant,
    slot: Duration,
}

impl std::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieJar").field("slot", &self.slot).finish_non_exhaustive()
    }
}

impl CookieJar {
    /// A jar whose slots of `slot` length count from `epoch`. A cookie is good in its slot and the next one, so it
    /// lives between one and two slots.
    pub fn new(secret: [u8; 32], epoch: Instant, slot: Duration) -> Self {
        Self { secret, epoch, slot: slot.max(Duration::from_secs(1)) }
    }

    /// The cookie for `peer` and `nonce` at `now`.
    pub fn mint(&self, peer: SocketAddr, nonce: &[u8; 8], now: Instant) -> Cookie {
        let slot = self.slot_at(now);
        Cookie { slot, mac: self.mac(peer, slot, nonce) }
    }

    /// Whether `cookie` was minted for `peer` and `nonce` in the current or the previous slot.
    pub fn check(&self, peer: SocketAddr, nonce: &[u8; 8], cookie: &Cookie, now: Instant) -> bool {
        let current = self.slot_at(now);
        let fresh = cookie.slot == current || cookie.slot.wrapping_add(1) == current;
        fresh && bool::from(self.mac(peer, cookie.slot, nonce).ct_eq(&cookie.mac))
    }

    fn slot_at(&self, now: Instant) -> u32 {
        let secs = now.saturating_duration_since(self.epoch).as_secs();
        (secs / self.slot.as_secs()) as u32
    }

    fn mac(&self, peer: SocketAddr, slot: u32, nonce: &[u8; 8]) -> [u8; MAC_LEN] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        m.update(LABEL);
        m.update(&address_bytes(peer));
        m.update(&slot.to_be_bytes());
        m.update(nonce);
        let full = m.finalize().into_bytes();
        let mut mac = [0; MAC_LEN];
        mac.copy_from_slice(&full[..MAC_LEN]);
        mac
    }
}

/// The address as 18 bytes: the IPv6 (or IPv4-mapped) address, then the port, big-endian.
pub fn address_bytes(peer: SocketAddr) -> [u8; 18] {
    let ip = match peer.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    let mut b = [0; 18];
    b[..16].copy_from_slice(&ip.octets());
    b[16..].copy_from_slice(&peer.port().to_be_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jar(epoch: Instant) -> CookieJar {
        CookieJar::new([7; 32], epoch, Duration::from_secs(10))
    }

    #[test]
    fn a_cookie_is_good_for_its_address_nonce_and_two_slots() {
        let t0 = Instant::now();
        let jar = jar(t0);
        let peer: SocketAddr = "10.0.0.1:5000".parse().expect("address");
        let nonce = [1; 8];
        let c = jar.mint(peer, &nonce, t0 + Duration::from_secs(5));
        assert_eq!(c.slot, 0);
        assert!(jar.check(peer, &nonce, &c, t0 + Duration::from_secs(9)));
        assert!(jar.check(peer, &nonce, &c, t0 + Duration::from_secs(19)));
        assert!(!jar.check(peer, &nonce, &c, t0 + Duration::from_secs(20)), "stale after the next slot");
        let other_port: SocketAddr = "10.0.0.1:5001".parse().expect("address");
        assert!(!jar.check(other_port, &nonce, &c, t0 + Duration::from_secs(5)));
        assert!(!jar.check(peer, &[2; 8], &c, t0 + Duration::from_secs(5)));
        let mut forged = c;
        forged.mac[0] ^= 1;
        assert!(!jar.check(peer, &nonce, &forged, t0 + Duration::from_secs(5)));
        let future = Cookie { slot: 1, ..c };
        assert!(!jar.check(peer, &nonce, &future, t0 + Duration::from_secs(5)), "a slot from the future");
        let other_secret = CookieJar::new([8; 32], t0, Duration::from_secs(10));
        assert!(!other_secret.check(peer, &nonce, &c, t0 + Duration::from_secs(5)));
    }

    #[test]
    fn the_documented_cookie_vector() {
        // docs/protocol.md §2.2, worked example: secret 07 x 32, 10.0.0.1:5000, nonce 01 x 8, slot 0.
        let t0 = Instant::now();
        let peer: SocketAddr = "10.0.0.1:5000".parse().expect("address");
        let c = jar(t0).mint(peer, &[1; 8], t0);
        let hex: String = c.mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!((c.slot, hex.as_str()), (0, "f3a97e79faa977a904173a268e9d51a1"));
    }

    #[test]
    fn addresses_are_mapped_to_ipv6() {
        let v4: SocketAddr = "1.2.3.4:258".parse().expect("address");
        let b = address_bytes(v4);
        assert_eq!(&b[10..18], &[0xff, 0xff, 1, 2, 3, 4, 1, 2]);
    }
}
