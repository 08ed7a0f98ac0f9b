//! Connections that have not authenticated yet, oldest first, bounded by `sync.max_unauthenticated`.
//!
//! A flood of connections that never authenticate must not keep real players out. So:
//! - at most `max` such connections are held: admitting one more sheds (closes) the oldest;
//! - from half of `max` on, new ones get the shorter `sync.pressure_first_frame_timeout_secs`;
//! - at `sync.max_connections`, a new connection sheds the oldest unauthenticated one rather than being refused,
//!   so only authenticated players can fill the server.
//!
//! Sans-IO apart from the [`CancellationToken`] each connection's reader watches to learn it was shed.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

use crate::limits::{ConnectionLimits, ConnectionPermit, Refusal};

/// The unauthenticated connections, by connection id (ids grow with time, so the smallest is the oldest). Cheap to
/// clone; clones share the set.
#[derive(Debug, Clone)]
pub struct Unauthenticated {
    inner: Arc<Mutex<BTreeMap<u64, CancellationToken>>>,
    max: usize,
}

/// A connection's place among the unauthenticated: it leaves the set when [`Self::authenticated`] is called or the
/// ticket is dropped.
#[derive(Debug)]
pub struct Pending {
    set: Unauthenticated,
    id: u64,
    /// Cancelled when the connection is shed.
    shed: CancellationToken,
    /// Whether it was admitted under pressure (half the set or more in use): it gets the shorter first-frame timeout.
    pub pressure: bool,
    done: bool,
}

impl Unauthenticated {
    /// Holds at most `max` (at least 1) unauthenticated connections.
    pub fn new(max: usize) -> Self {
        Self { inner: Arc::default(), max: max.max(1) }
    }

    /// The most it holds.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Registers new connection `id` (greater than every id before it), shedding the oldest when the set is full.
    pub fn admit(&self, id: u64) -> Pending {
        let shed = CancellationToken::new();
        let mut set = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let pressure = set.len() >= self.max.div_ceil(2);
        while set.len() >= self.max {
            if let Some((_, oldest)) = set.pop_first() {
                oldest.cancel();
            }
        }
        set.insert(id, shed.clone());
        Pending { set: self.clone(), id, shed, pressure, done: false }
    }

    /// Counts a connection from `ip` in `limits`. At `sync.max_connections` the oldest unauthenticated connection is
    /// shed to make room, so that only authenticated players can fill the server; the per-address and per-network
    /// limits hold as usual.
    pub fn admit_connection(&self, limits: &ConnectionLimits, ip: IpAddr) -> Result<ConnectionPermit, Refusal> {
        match limits.admit(ip) {
            Err(Refusal::Total(max)) => {
                if self.shed_oldest() {
                    limits.admit_in_place_of_shed(ip)
                } else {
                    Err(Refusal::Total(max))
                }
            }
            other => other,
        }
    }

    /// Sheds the oldest unauthenticated connection, if any: false when there is none.
    pub fn shed_oldest(&self) -> bool {
        let oldest = self.inner.lock().unwrap_or_else(PoisonError::into_inner).pop_first();
        oldest.map(|(_, token)| token.cancel()).is_some()
    }

    /// Unauthenticated connections held now.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn remove(&self, id: u64) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }
}

impl Pending {
    /// The connection authenticated: it no longer counts, and can no longer be shed.
    pub fn authenticated(&mut self) {
        if !self.done {
            self.done = true;
            self.set.remove(self.id);
        }
    }

    /// Whether it was shed (see [`Self::shed`]).
    pub fn is_shed(&self) -> bool {
        self.shed.is_cancelled()
    }

    /// Completes when the connection is shed; never once it authenticated.
    pub async fn shed(&self) {
        if self.done {
            std::future::pending::<()>().await;
        }
        self.shed.cancelled().await;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.authenticated();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_is_shed_when_full_and_pressure_starts_at_half() {
        let set = Unauthenticated::new(4);
        let mut held: Vec<Pending> = (1..=4).map(|id| set.admit(id)).collect();
        assert_eq!(held.iter().map(|p| p.pressure).collect::<Vec<_>>(), [false, false, true, true]);
        let fifth = set.admit(5);
        assert!(held[0].is_shed(), "the oldest goes first");
        assert!(held[1..].iter().all(|p| !p.is_shed()) && !fifth.is_shed());
        assert_eq!(set.len(), 4);
        held[1].authenticated();
        assert_eq!(set.len(), 3, "an authenticated connection leaves the set ...");
        let _sixth = set.admit(6);
        let _seventh = set.admit(7);
        assert!(!held[1].is_shed(), "... and is never shed");
        assert!(held[2].is_shed(), "the oldest still unauthenticated goes");
        drop(held);
        drop(fifth);
        assert_eq!(set.len(), 2, "dropped tickets leave no entry behind");
        assert!(set.shed_oldest() && set.shed_oldest() && !set.shed_oldest() && set.is_empty());
    }

    #[test]
    fn a_full_server_sheds_an_unauthenticated_connection_but_refuses_when_all_authenticated() {
        let limits = ConnectionLimits::new(2, 0);
        let set = Unauthenticated::new(10);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let (p1, a) = (set.admit_connection(&limits, ip).unwrap(), set.admit(1));
        let (p2, mut b) = (set.admit_connection(&limits, ip).unwrap(), set.admit(2));
        let p3 = set.admit_connection(&limits, ip).expect("in place of the oldest unauthenticated");
        assert!(a.is_shed() && !b.is_shed());
        drop((p1, a));
        let mut c = set.admit(3);
        b.authenticated();
        c.authenticated();
        let refused = set.admit_connection(&limits, ip).unwrap_err();
        assert_eq!(refused, Refusal::Total(2), "every connection is authenticated: refused");
        assert!(refused.message().contains("(sync.max_connections)"));
        drop((p2, p3));
        assert_eq!(limits.open(), 0);
    }

    #[tokio::test]
    async fn an_authenticated_ticket_never_reports_a_shed() {
        let set = Unauthenticated::new(1);
        let mut p = set.admit(1);
        p.authenticated();
        let _next = set.admit(2);
        let shed = tokio::time::timeout(std::time::Duration::from_millis(10), p.shed()).await;
        assert!(shed.is_err());
        let q = set.admit(3);
        assert!(q.pressure, "one of one held");
        drop(_next);
        let waited = tokio::time::timeout(std::time::Duration::from_millis(10), async {
            set.shed_oldest();
            q.shed().await;
        });
        assert!(waited.await.is_ok(), "a shed ticket completes shed()");
    }
}
