//! The calls one side has sent and awaits replies for, each with a deadline. No IO, no clock.
//!
//! Generic over what waits for the reply (`T`): the tokio shell stores a oneshot sender, tests store `()`.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// Pending calls of one connection, with their ids and deadlines.
#[derive(Debug)]
pub struct CallTable<T> {
    pending: HashMap<u64, (Instant, T)>,
    deadlines: BTreeSet<(Instant, u64)>,
    next_id: u64,
    max_pending: usize,
    closed: bool,
}

/// Why [`CallTable::start`] refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// `max_pending` calls already await replies.
    #[error("too many calls in flight")]
    Full,
    /// The connection closed; no reply can come.
    #[error("connection closed")]
    Closed,
}

impl<T> CallTable<T> {
    /// An empty table accepting up to `max_pending` calls at once.
    pub fn new(max_pending: usize) -> Self {
        Self { pending: HashMap::new(), deadlines: BTreeSet::new(), next_id: 1, max_pending, closed: false }
    }

    /// Registers a call that times out at `deadline`; returns its id (unique on this table, starting at 1).
    pub fn start(&mut self, deadline: Instant, waiter: T) -> Result<u64, StartError> {
        if self.closed {
            return Err(StartError::Closed);
        }
        if self.pending.len() >= self.max_pending {
            return Err(StartError::Full);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, (deadline, waiter));
        self.deadlines.insert((deadline, id));
        Ok(id)
    }

    /// Removes call `id` (its reply arrived, or its caller gave up) and returns its waiter; `None` if unknown,
    /// e.g. a late reply to a call that already timed out.
    pub fn finish(&mut self, id: u64) -> Option<T> {
        let (deadline, waiter) = self.pending.remove(&id)?;
        self.deadlines.remove(&(deadline, id));
        Some(waiter)
    }

    /// The earliest deadline, if any call is pending.
    #[must_use = "the earliest deadline is when to call `handle_timeout` next"]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// Removes and returns every call whose deadline is at or before `now`, earliest first.
    #[must_use = "the expired calls must be failed with a timeout"]
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<(u64, T)> {
        let mut expired = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some((_, waiter)) = self.pending.remove(&id) {
                expired.push((id, waiter));
            }
        }
        expired
    }

    /// The connection closed: removes and returns every pending call, and refuses new ones from now on.
    pub fn close(&mut self) -> Vec<(u64, T)> {
        self.closed = true;
        self.deadlines.clear();
        let mut drained: Vec<_> = self.pending.drain().map(|(id, (_, waiter))| (id, waiter)).collect();
        drained.sort_unstable_by_key(|&(id, _)| id);
        drained
    }

    /// Number of calls awaiting replies.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no call awaits a reply.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether [`Self::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::time::Duration;

    const MS: Duration = Duration::from_millis(1);

    fn ids(expired: Vec<(u64, ())>) -> Vec<u64> {
        expired.into_iter().map(|(id, ())| id).collect()
    }

    #[test]
    fn calls_time_out_at_their_own_deadlines() {
        let t0 = Instant::now();
        let mut table = CallTable::new(10);
        let a = table.start(t0 + 300 * MS, ()).unwrap();
        let b = table.start(t0 + 100 * MS, ()).unwrap();
        let c = table.start(t0 + 200 * MS, ()).unwrap();
        assert_eq!((a, b, c), (1, 2, 3));
        assert_eq!(table.poll_timeout(), Some(t0 + 100 * MS));
        assert!(table.handle_timeout(t0 + 99 * MS).is_empty());
        assert_eq!(ids(table.handle_timeout(t0 + 200 * MS)), vec![b, c]);
        assert_eq!(table.poll_timeout(), Some(t0 + 300 * MS));
        assert_eq!(ids(table.handle_timeout(t0 + 10_000 * MS)), vec![a]);
        assert_eq!(table.poll_timeout(), None);
        assert!(table.is_empty());
    }

    #[test]
    fn a_reply_removes_the_call_and_its_deadline() {
        let t0 = Instant::now();
        let mut table = CallTable::new(10);
        let a = table.start(t0 + 100 * MS, "a").unwrap();
        let b = table.start(t0 + 200 * MS, "b").unwrap();
        assert_eq!(table.finish(a), Some("a"));
        assert_eq!(table.finish(a), None, "a late or duplicate reply is ignored");
        assert_eq!(table.poll_timeout(), Some(t0 + 200 * MS));
        assert_eq!(table.handle_timeout(t0 + 200 * MS), vec![(b, "b")]);
        assert_eq!(table.finish(b), None, "a reply after the timeout is ignored");
    }

    #[test]
    fn same_deadline_calls_all_expire() {
        let t0 = Instant::now();
        let mut table = CallTable::new(10);
        for _ in 0..5 {
            table.start(t0, ()).unwrap();
        }
        assert_eq!(ids(table.handle_timeout(t0)), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn bounded_and_closable() {
        let t0 = Instant::now();
        let mut table = CallTable::new(2);
        table.start(t0, ()).unwrap();
        table.start(t0, ()).unwrap();
        assert_eq!(table.start(t0, ()), Err(StartError::Full));
        assert_eq!(table.len(), 2);
        assert_eq!(ids(table.close()), vec![1, 2]);
        assert!(table.is_closed());
        assert_eq!(table.start(t0, ()), Err(StartError::Closed));
        assert_eq!(table.poll_timeout(), None);
    }
}
