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
    assert_eq!(r.nodes()[0], NodeStatus { info: info("a", 10), load: load(2, 1), assigned: 0, draining: false });
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

fn revoked(uid: &str, sid: &str) -> Notice {
    Notice::SessionRevoked { uid: uid.into(), sid: sid.into() }
}

fn replay(reply: &Registered) -> (Vec<&str>, Vec<&str>) {
    (reply.banned.iter().map(|b| b.uid.as_str()).collect(), reply.revoked.iter().map(|r| r.sid.as_str()).collect())
}

#[test]
fn notices_reach_every_node_and_later_nodes_get_recent_revocations_and_bans() {
    let nodes = Nodes::new(3600);
    let (a, b, c) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    let first = nodes.register(info("a", 10), 1, a.clone(), 1000, 1 << 20);
    assert_eq!(first, Registered { accepted: true, ..Registered::default() });
    nodes.register(info("b", 10), 2, b.clone(), 1000, 1 << 20);
    b.closed.store(true, Ordering::SeqCst);
    nodes.broadcast(&banned("1001"), 999);
    nodes.broadcast(&revoked("1001", "s1"), 1000);
    nodes.broadcast(&banned("1002"), 1001);
    nodes.broadcast(&revoked("1005", "s5"), 1001);
    nodes.broadcast(&banned("1003"), 1002);
    let all = [banned("1001"), revoked("1001", "s1"), banned("1002"), revoked("1005", "s5"), banned("1003")];
    assert_eq!(a.seen(), all);
    assert!(b.seen().is_empty(), "a failing node does not stop the others");

    // A restarted node registers again: it gets what it would otherwise have lost, in the reply.
    let again = nodes.register(info("a", 10), 4, a.clone(), 1002, 1 << 20);
    assert_eq!(replay(&again), (vec!["1001", "1002", "1003"], vec!["s1", "s5"]));
    assert_eq!(a.seen().len(), all.len(), "the replay is not sent as notices");

    nodes.forget_ban("1003");
    let late = nodes.register(info("c", 10), 3, c.clone(), 999 + 3600, 1 << 20);
    assert_eq!(replay(&late), (vec!["1002"], vec!["s1", "s5"]), "expired and lifted bans are not replayed");
    let later = nodes.register(info("c", 10), 5, c, 1001 + 3600, 1 << 20);
    assert_eq!(replay(&later), (vec![], vec![]), "nor are revocations older than an access token");
}

#[test]
fn replayed_revocations_and_bans_are_bounded_in_count_and_bytes() {
    let nodes = Nodes::new(3600);
    for i in 0..MAX_REPLAYED_BANS + 10 {
        nodes.broadcast(&banned(&i.to_string()), 1000);
    }
    for i in 0..MAX_REPLAYED_REVOCATIONS + 10 {
        nodes.broadcast(&revoked("7", &format!("s{i}")), 1000);
    }
    let late = nodes.register(info("late", 10), 1, Arc::new(Recorder::default()), 1000, 1 << 20);
    assert_eq!((late.banned.len(), late.revoked.len()), (MAX_REPLAYED_BANS, MAX_REPLAYED_REVOCATIONS));
    assert_eq!((late.banned[0].uid.as_str(), late.revoked[0].sid.as_str()), ("10", "s10"));
    assert!(serde_json::to_vec(&late).unwrap().len() < 1 << 20);

    // A small frame limit keeps every ban and the newest revocations that fit.
    let small = nodes.register(info("small", 10), 2, Arc::new(Recorder::default()), 1000, 16 * 1024);
    assert_eq!(small.banned.len(), MAX_REPLAYED_BANS);
    assert!(!small.revoked.is_empty() && small.revoked.len() < 500, "{}", small.revoked.len());
    assert_eq!(small.revoked.last().unwrap().sid, format!("s{}", MAX_REPLAYED_REVOCATIONS + 9));
    assert!(serde_json::to_vec(&small).unwrap().len() <= 16 * 1024);
}

#[test]
fn notices_have_the_documented_json() {
    let revoked = Notice::SessionRevoked { uid: "1001".into(), sid: "abc".into() };
    assert_eq!(revoked.method(), "session_revoked");
    assert_eq!(revoked.params(), serde_json::json!({"uid": "1001", "sid": "abc"}));
    assert_eq!((banned("7").method(), banned("7").params()), ("user_banned", serde_json::json!({"uid": "7"})));
}

#[test]
fn a_drained_node_gets_no_logins_even_after_it_registers_again() {
    let mut r = registry(&[("a", 100, load(90, 5)), ("b", 100, load(10, 1))]);
    let drained = r.set_draining("b", true).unwrap();
    assert!(drained.draining);
    assert_eq!(r.assign().map(|a| a.sync_addr).as_deref(), Some("a.example:2025"), "b is emptier but drained");
    // b reconnects and registers again: still drained.
    r.register(info("b", 100), 7, ());
    assert!(r.nodes().iter().find(|n| n.info.node_id == "b").unwrap().draining);
    assert!(r.set_draining("a", true).is_some());
    assert!(!r.has_room(), "every node drained");
    assert_eq!(r.assign(), None);
    assert!(r.set_draining("nope", true).is_none(), "only registered nodes");
    r.set_draining("b", false);
    assert_eq!(r.assign().map(|a| a.sync_addr).as_deref(), Some("b.example:2025"));
}
