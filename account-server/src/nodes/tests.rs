#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

fn info(node_id: &str, capacity: u64) -> NodeInfo {
    NodeInfo {
        node_id: node_id.into(),
        public_addr: format!("{node_id}.example:2025"),
        capacity,
        ws_url: String::new(),
        udp_addr: String::new(),
    }
}

fn load(players: u64, rooms: u64) -> NodeLoad {
    NodeLoad { players, rooms }
}

fn registry(nodes: &[(&str, u64, NodeLoad)]) -> NodeRegistry<()> {
    let mut r = NodeRegistry::default();
    for (peer_id, (id, capacity, l)) in nodes.iter().enumerate() {
        r.register(info(id, *capacity), peer_id as PeerId, ());
        assert!(r.update_load(id, peer_id as PeerId, *l));
    }
    r
}

#[test]
fn no_node_means_no_address() {
    assert!(!NodeRegistry::<()>::default().has_room());
    assert_eq!(NodeRegistry::<()>::default().assign(), None);
}

#[test]
fn the_least_loaded_relative_to_capacity_is_chosen() {
    // a: 50 %, b: 25 %, c: 30 %.
    let mut r = registry(&[("a", 100, load(50, 5)), ("b", 400, load(100, 9)), ("c", 10, load(3, 1))]);
    assert_eq!(r.assign().map(|a| a.sync_addr).as_deref(), Some("b.example:2025"));
    // Equal ratios: fewer rooms, then the smaller id.
    let mut r = registry(&[("a", 10, load(5, 3)), ("b", 20, load(10, 2)), ("c", 20, load(10, 2))]);
    assert_eq!(r.assign().map(|a| a.sync_addr).as_deref(), Some("b.example:2025"));
}

#[test]
fn full_nodes_are_skipped_and_all_full_means_none() {
    let mut r = registry(&[("a", 10, load(10, 1)), ("b", 100, load(99, 9)), ("z", 0, load(0, 0))]);
    assert_eq!(r.assign().map(|a| a.sync_addr).as_deref(), Some("b.example:2025"));
    // b counted that player until its next heartbeat: now it is full too.
    assert!(!r.has_room());
    assert_eq!(r.assign(), None);
    assert!(r.update_load("b", 1, load(98, 9)));
    assert_eq!(r.assign().map(|a| a.sync_addr).as_deref(), Some("b.example:2025"));
}

#[test]
fn assigned_players_spread_a_burst_until_the_next_heartbeat() {
    let mut r = registry(&[("a", 10, load(0, 0)), ("b", 10, load(0, 0))]);
    let picks: Vec<String> = (0..4).map(|_| r.assign().unwrap().sync_addr).collect();
    assert_eq!(picks, ["a.example:2025", "b.example:2025", "a.example:2025", "b.example:2025"]);
    assert_eq!(r.nodes()[0].assigned, 2);
    assert!(r.update_load("a", 0, load(2, 1)));
    assert_eq!(r.nodes()[0], NodeStatus { info: info("a", 10), load: load(2, 1), assigned: 0 });
}

#[test]
fn removal_and_load_updates_only_apply_to_the_registered_connection() {
    let mut r = NodeRegistry::default();
    assert!(!r.register(info("a", 10), 1, ()));
    // The node reconnected and registered again before its old connection was seen closing.
    assert!(r.register(info("a", 20), 2, ()));
    assert!(!r.update_load("a", 1, load(5, 1)), "a heartbeat from the old connection is ignored");
    assert!(!r.remove("a", 1), "the old connection closing keeps the new entry");
    assert_eq!(r.nodes()[0].info.capacity, 20);
    assert!(r.remove("a", 2));
    assert!(r.is_empty());
    assert_eq!(r.assign(), None);
    assert!(!r.remove("a", 2));
    assert!(!r.update_load("nobody", 2, load(1, 1)));
}

/// Records the notices it is sent; fails once `closed` is set.
#[derive(Debug, Default)]
struct Recorder {
    seen: Mutex<Vec<Notice>>,
    closed: AtomicBool,
}

impl Notifier for Recorder {
    fn notify(&self, notice: &Notice) -> Result<(), String> {
        if self.closed.load(Ordering::SeqCst) {
            return Err("disconnected".to_owned());
        }
        self.seen.lock().unwrap().push(notice.clone());
        Ok(())
    }
}

impl Recorder {
    fn seen(&self) -> Vec<Notice> {
        self.seen.lock().unwrap().clone()
    }
}

fn banned(uid: &str) -> Notice {
    Notice::UserBanned { uid: uid.into() }
}

#[test]
fn notices_reach_every_node_and_later_nodes_get_recent_bans() {
    let nodes = Nodes::new(3600);
    let (a, b, c) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    nodes.register(info("a", 10), 1, a.clone(), 1000);
    nodes.register(info("b", 10), 2, b.clone(), 1000);
    b.closed.store(true, Ordering::SeqCst);
    let revoked = Notice::SessionRevoked { uid: "1001".into(), sid: "s1".into() };
    nodes.broadcast(&banned("1001"), 999);
    nodes.broadcast(&revoked, 1000);
    nodes.broadcast(&banned("1002"), 1001);
    nodes.broadcast(&banned("1003"), 1002);
    assert_eq!(a.seen(), [banned("1001"), revoked, banned("1002"), banned("1003")]);
    assert!(b.seen().is_empty(), "a failing node does not stop the others");

    nodes.forget_ban("1003");
    nodes.register(info("c", 10), 3, c.clone(), 999 + 3600);
    assert_eq!(c.seen(), [banned("1002")], "expired and lifted bans and session revocations are not replayed");
}

#[test]
fn replayed_bans_are_bounded() {
    let nodes = Nodes::new(3600);
    for i in 0..MAX_REPLAYED_BANS + 10 {
        nodes.broadcast(&banned(&i.to_string()), 1000);
    }
    let late = Arc::new(Recorder::default());
    nodes.register(info("late", 10), 1, late.clone(), 1000);
    let seen = late.seen();
    assert_eq!(seen.len(), MAX_REPLAYED_BANS);
    assert_eq!(seen[0], banned("10"));
}

#[test]
fn notices_have_the_documented_json() {
    let revoked = Notice::SessionRevoked { uid: "1001".into(), sid: "abc".into() };
    assert_eq!(revoked.method(), "session_revoked");
    assert_eq!(revoked.params(), serde_json::json!({"uid": "1001", "sid": "abc"}));
    assert_eq!((banned("7").method(), banned("7").params()), ("user_banned", serde_json::json!({"uid": "7"})));
}
