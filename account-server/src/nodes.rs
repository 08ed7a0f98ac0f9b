//! The sync servers connected to the account server: where to send players, and how to reach the servers.
//!
//! [`NodeRegistry`] is the state without IO: sync nodes register over their RPC connection, report their load with
//! each heartbeat and are removed when that connection closes. [`Nodes`] is the shared handle the HTTP handlers and
//! the RPC handlers use; it also pushes [`Notice`]s to every registered node, and hands recent revocations and bans
//! to nodes that register later (a node that restarted, or was reconnecting during a logout or a ban, must still
//! refuse those tokens).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use movan_protocol::rpc::{Registered, SessionRevoked, UserBanned};
use tracing::{debug, warn};

/// Bans kept for nodes that register later, at most.
pub const MAX_REPLAYED_BANS: usize = 256;
/// Session revocations (logouts) kept for nodes that register later, at most. The replay goes in the registration
/// reply, so it is also cut to fit the RPC frame limit.
pub const MAX_REPLAYED_REVOCATIONS: usize = 8192;

/// What a sync node tells about itself when it registers (`register_node`).
pub use movan_protocol::rpc::RegisterNode as NodeInfo;

/// A node's load, as reported with its heartbeats.
pub use movan_protocol::rpc::NodeLoad;

/// One registered node, as listed by [`NodeRegistry::nodes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// What it registered with.
    pub info: NodeInfo,
    /// Its last reported load.
    pub load: NodeLoad,
    /// Players sent to it since that report.
    pub assigned: u64,
    /// An admin drained it: logins go elsewhere, its running games finish.
    pub draining: bool,
}

/// Identifies one RPC peer (a sync node's connection), e.g. a counter incremented per accepted RPC connection; not a
/// player connection.
pub type PeerId = u64;

/// The registered sync nodes, keyed by node id. Each entry remembers the connection it was registered on, so that
/// a connection closing late cannot remove the entry of the node's newer connection. `L` is how a node is reached.
#[derive(Debug)]
pub struct NodeRegistry<L> {
    nodes: BTreeMap<String, Entry<L>>,
    /// Node ids an admin drained; kept across a node's re-registration (and while it is away).
    draining: BTreeSet<String>,
}

#[derive(Debug)]
struct Entry<L> {
    status: NodeStatus,
    peer_id: PeerId,
    notifier: L,
}

/// Where a login sends its player: the least loaded node's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    /// TCP `host:port`.
    pub sync_addr: String,
    /// WebSocket URL; empty when the node has no WebSocket listener.
    pub sync_ws_url: String,
    /// UDP `host:port`; empty when the node has no UDP listener.
    pub sync_udp_addr: String,
}

impl<L> Default for NodeRegistry<L> {
    fn default() -> Self {
        Self { nodes: BTreeMap::new(), draining: BTreeSet::new() }
    }
}

impl<L: Clone> NodeRegistry<L> {
    /// Adds a node registered on connection `peer_id`, or replaces its entry (a node registering again after a
    /// reconnect); returns whether it replaced one. The load starts at zero until the next heartbeat.
    pub fn register(&mut self, info: NodeInfo, peer_id: PeerId, notifier: L) -> bool {
        let draining = self.draining.contains(&info.node_id);
        let status = NodeStatus { info, load: NodeLoad::default(), assigned: 0, draining };
        self.nodes.insert(status.info.node_id.clone(), Entry { status, peer_id, notifier }).is_some()
    }

    /// Records the load of `node_id` if it is registered on `peer_id`; returns whether it did.
    pub fn update_load(&mut self, node_id: &str, peer_id: PeerId, load: NodeLoad) -> bool {
        match self.nodes.get_mut(node_id) {
            Some(entry) if entry.peer_id == peer_id => {
                entry.status.load = load;
                entry.status.assigned = 0;
                true
            }
            _ => false,
        }
    }

    /// Removes `node_id` if it is registered on `peer_id`; returns whether it did.
    pub fn remove(&mut self, node_id: &str, peer_id: PeerId) -> bool {
        if self.nodes.get(node_id).is_some_and(|entry| entry.peer_id == peer_id) {
            self.nodes.remove(node_id);
            return true;
        }
        false
    }

    /// The public address of the least loaded node with room for one more player — fewest players relative to
    /// capacity, then fewest rooms, then the smallest node id — or `None` if every node is full or none is
    /// registered. The player counts towards that node's load until its next heartbeat, so a burst of logins
    /// spreads out.
    pub fn assign(&mut self) -> Option<Assigned> {
        let entry = self.nodes.values_mut().filter(|e| takes_players(&e.status)).min_by(|a, b| {
            // players_a / capacity_a against players_b / capacity_b without division; capacities are not 0 here.
            let (a, b) = (&a.status, &b.status);
            let left = u128::from(players(a)) * u128::from(b.info.capacity);
            let right = u128::from(players(b)) * u128::from(a.info.capacity);
            left.cmp(&right).then(a.load.rooms.cmp(&b.load.rooms))
        })?;
        entry.status.assigned += 1;
        let info = &entry.status.info;
        Some(Assigned {
            sync_addr: info.public_addr.clone(),
            sync_ws_url: info.ws_url.clone(),
            sync_udp_addr: info.udp_addr.clone(),
        })
    }

    /// Whether [`NodeRegistry::assign`] would find a node.
    pub fn has_room(&self) -> bool {
        self.nodes.values().any(|e| takes_players(&e.status))
    }

    /// Drains (`on`) or undrains registered node `node_id`; returns its status, or `None` if it is not registered.
    /// A drained node gets no logins, even after it registers again, until undrained.
    pub fn set_draining(&mut self, node_id: &str, on: bool) -> Option<NodeStatus> {
        let entry = self.nodes.get_mut(node_id)?;
        entry.status.draining = on;
        if on {
            self.draining.insert(node_id.to_owned());
        } else {
            self.draining.remove(node_id);
        }
        Some(entry.status.clone())
    }

    /// The notifier of registered node `node_id`.
    pub fn notifier_of(&self, node_id: &str) -> Option<L> {
        self.nodes.get(node_id).map(|e| e.notifier.clone())
    }

    /// The registered nodes, by node id.
    pub fn nodes(&self) -> Vec<NodeStatus> {
        self.nodes.values().map(|e| e.status.clone()).collect()
    }

    /// The connection and notifier of every registered node.
    pub fn notifiers(&self) -> Vec<(PeerId, L)> {
        self.nodes.values().map(|e| (e.peer_id, e.notifier.clone())).collect()
    }

    /// Whether no node is registered.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// Whether a login may go to the node: not drained, and below its capacity.
fn takes_players(status: &NodeStatus) -> bool {
    !status.draining && players(status) < status.info.capacity
}

/// Players on a node, counting those sent to it since its last report.
fn players(status: &NodeStatus) -> u64 {
    status.load.players.saturating_add(status.assigned)
}

/// A message the account server pushes to every sync node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `session_revoked` `{"uid", "sid"}`: the session was logged out; drop its connections.
    SessionRevoked {
        /// The session's user.
        uid: String,
        /// The session.
        sid: String,
    },
    /// `user_banned` `{"uid"}`: drop every connection of the user.
    UserBanned {
        /// The banned user.
        uid: String,
    },
}

impl Notice {
    /// The RPC notification name.
    pub fn method(&self) -> &'static str {
        match self {
            Self::SessionRevoked { .. } => movan_protocol::rpc::SESSION_REVOKED,
            Self::UserBanned { .. } => movan_protocol::rpc::USER_BANNED,
        }
    }

    /// The notification's params: a [`SessionRevoked`] or a [`UserBanned`].
    pub fn params(&self) -> serde_json::Value {
        let params = match self {
            Self::SessionRevoked { uid, sid } => {
                serde_json::to_value(SessionRevoked { uid: uid.clone(), sid: sid.clone() })
            }
            Self::UserBanned { uid } => serde_json::to_value(UserBanned { uid: uid.clone() }),
        };
        params.expect("structs of strings always serialize")
    }

    fn uid(&self) -> &str {
        match self {
            Self::SessionRevoked { uid, .. } | Self::UserBanned { uid } => uid,
        }
    }
}

/// How notices reach one connected node: its RPC connection in the server, a recorder in tests.
pub trait Notifier: Send + Sync + fmt::Debug + 'static {
    /// Queues `notice` for the node without waiting; fails if the node is gone.
    fn notify(&self, notice: &Notice) -> Result<(), String>;

    /// Sends notification `method` with `params` to the node without waiting (an admin's request, not kept for
    /// nodes that register later); fails if the node is gone.
    fn notify_raw(&self, method: &'static str, params: serde_json::Value) -> Result<(), String> {
        let _ = (method, params);
        Err("this node cannot be notified".into())
    }

    /// Calls `method` on the node and waits for its answer (an admin's request).
    fn call(
        &self,
        method: &'static str,
        params: serde_json::Value,
    ) -> BoxFuture<'static, Result<serde_json::Value, NodeCallError>> {
        let _ = (method, params);
        Box::pin(async {
            Err(NodeCallError { code: "unknown_method".into(), message: "this node takes no calls".into() })
        })
    }
}

/// A failed [`Notifier::call`]: the node's error code (or the RPC layer's, such as `timeout` or `disconnected`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct NodeCallError {
    /// Machine-readable.
    pub code: String,
    /// For people.
    pub message: String,
}

/// A boxed future, as [`Notifier::call`] returns.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The shared handle on the registry and the recent bans. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Nodes {
    inner: Arc<Mutex<Shared>>,
    /// How long a ban is replayed: the lifetime of an access token, which is what it stops.
    ban_ttl_secs: u64,
}

#[derive(Debug, Default)]
struct Shared {
    registry: NodeRegistry<Arc<dyn Notifier>>,
    /// Bans, oldest first, with the Unix time they were sent.
    bans: VecDeque<(u64, Notice)>,
    /// Session revocations, oldest first, with the Unix time they were sent.
    revocations: VecDeque<(u64, Notice)>,
}

impl Nodes {
    /// No nodes yet; bans are replayed to newly registered nodes for `ban_ttl_secs`.
    pub fn new(ban_ttl_secs: u64) -> Self {
        Self { inner: Arc::default(), ban_ttl_secs }
    }

    /// See [`NodeRegistry::register`]. Returns the registration reply: the revocations and bans of the last
    /// `ban_ttl_secs` (as of `now`), oldest first, in case the node missed them while it was away, cut (dropping the
    /// oldest) to fit a reply of `max_reply_bytes`. Notices broadcast after this call reach the node as usual.
    pub fn register(
        &self,
        info: NodeInfo,
        peer_id: PeerId,
        notifier: Arc<dyn Notifier>,
        now: u64,
        max_reply_bytes: usize,
    ) -> Registered {
        let node_id = info.node_id.clone();
        let mut reply = Registered { accepted: true, ..Registered::default() };
        {
            let mut shared = self.lock();
            shared.prune(now, self.ban_ttl_secs);
            shared.registry.register(info, peer_id, notifier);
            // Bans first: fewer and worth more. Each entry's JSON is its strings plus at most 24 bytes.
            let mut budget = max_reply_bytes.saturating_sub(64);
            let fits = |budget: &mut usize, notice: &Notice| {
                let cost = match notice {
                    Notice::SessionRevoked { uid, sid } => uid.len() + sid.len() + 24,
                    Notice::UserBanned { uid } => uid.len() + 12,
                };
                let fits = cost <= *budget;
                *budget = budget.saturating_sub(cost);
                fits
            };
            let bans: Vec<&Notice> =
                shared.bans.iter().rev().map(|(_, n)| n).take_while(|n| fits(&mut budget, n)).collect();
            let revocations: Vec<&Notice> =
                shared.revocations.iter().rev().map(|(_, n)| n).take_while(|n| fits(&mut budget, n)).collect();
            for notice in bans.into_iter().rev() {
                reply.banned.push(UserBanned { uid: notice.uid().to_owned() });
            }
            for notice in revocations.into_iter().rev() {
                if let Notice::SessionRevoked { uid, sid } = notice {
                    reply.revoked.push(SessionRevoked { uid: uid.clone(), sid: sid.clone() });
                }
            }
        }
        if !reply.banned.is_empty() || !reply.revoked.is_empty() {
            debug!(node = %node_id, bans = reply.banned.len(), revocations = reply.revoked.len(), "replaying recent revocations");
        }
        reply
    }

    /// See [`NodeRegistry::update_load`].
    pub fn update_load(&self, node_id: &str, peer_id: PeerId, load: NodeLoad) -> bool {
        self.lock().registry.update_load(node_id, peer_id, load)
    }

    /// See [`NodeRegistry::remove`].
    pub fn remove(&self, node_id: &str, peer_id: PeerId) -> bool {
        self.lock().registry.remove(node_id, peer_id)
    }

    /// See [`NodeRegistry::assign`].
    pub fn assign(&self) -> Option<Assigned> {
        self.lock().registry.assign()
    }

    /// See [`NodeRegistry::has_room`].
    pub fn has_room(&self) -> bool {
        self.lock().registry.has_room()
    }

    /// See [`NodeRegistry::nodes`].
    pub fn nodes(&self) -> Vec<NodeStatus> {
        self.lock().registry.nodes()
    }

    /// See [`NodeRegistry::set_draining`].
    pub fn set_draining(&self, node_id: &str, on: bool) -> Option<NodeStatus> {
        self.lock().registry.set_draining(node_id, on)
    }

    /// Calls `method` on node `node_id`; `None` if it is not registered.
    pub async fn call(
        &self,
        node_id: &str,
        method: &'static str,
        params: serde_json::Value,
    ) -> Option<Result<serde_json::Value, NodeCallError>> {
        let notifier = self.lock().registry.notifier_of(node_id)?;
        Some(notifier.call(method, params).await)
    }

    /// Sends notification `method` to every registered node (not kept for nodes that register later); returns how
    /// many it reached.
    pub fn notify_all(&self, method: &'static str, params: &serde_json::Value) -> usize {
        let notifiers = self.lock().registry.notifiers();
        let mut reached = 0;
        for (peer_id, notifier) in notifiers {
            match notifier.notify_raw(method, params.clone()) {
                Ok(()) => reached += 1,
                Err(e) => warn!(peer_id, method, error = %e, "cannot notify a node"),
            }
        }
        reached
    }

    /// Queues `notice` for every registered node. It is also kept (as sent at `now`) for nodes that register later. A node that cannot be reached is logged and skipped: its connection is closing.
    pub fn broadcast(&self, notice: &Notice, now: u64) {
        let notifiers = {
            let mut shared = self.lock();
            shared.prune(now, self.ban_ttl_secs);
            let (kept, max) = match notice {
                Notice::UserBanned { .. } => (&mut shared.bans, MAX_REPLAYED_BANS),
                Notice::SessionRevoked { .. } => (&mut shared.revocations, MAX_REPLAYED_REVOCATIONS),
            };
            if kept.len() == max {
                kept.pop_front();
            }
            kept.push_back((now, notice.clone()));
            shared.registry.notifiers()
        };
        for (peer_id, notifier) in notifiers {
            if let Err(e) = notifier.notify(notice) {
                warn!(peer_id, method = notice.method(), error = %e, "cannot notify a node");
            }
        }
    }

    /// Forgets the kept ban of `uid`, so a node that registers later is not told of a ban since lifted.
    pub fn forget_ban(&self, uid: &str) {
        self.lock().bans.retain(|(_, notice)| notice.uid() != uid);
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Every change is a single map or queue operation, so the state is consistent even after a panic.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Shared {
    /// Drops bans and revocations older than `ttl_secs`.
    fn prune(&mut self, now: u64, ttl_secs: u64) {
        for kept in [&mut self.bans, &mut self.revocations] {
            while kept.front().is_some_and(|(at, _)| at.saturating_add(ttl_secs) <= now) {
                kept.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests;
