//! The account server as the sync servers see it: [`account_server::serve`] on two ephemeral ports, fake sync
//! nodes connecting with a real `movan_rpc::RpcClient`, and players using the HTTP API.
#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use account_server::secret::{RpcSecret, ensure_rpc_secret};
use account_server::{AppState, Config};
use movan_rpc::{Handlers, Peer, RpcClient};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// Short heartbeats, so a silent node is declared dead within a fraction of a second (10 misses: a busy CI machine
/// must not make a live node look dead).
const HEARTBEAT: Duration = Duration::from_millis(50);
const MISSES: u32 = 10;
/// Upper bound for anything the tests wait for.
const PATIENCE: Duration = Duration::from_secs(10);

/// A running account server.
struct Cluster {
    http: String,
    rpc: SocketAddr,
    secret: RpcSecret,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<Result<(), account_server::RunError>>,
    web: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config: Config = common::config(dir.path());
        config.account.admins = vec!["root".into()];
        config.rpc.heartbeat_interval_ms = HEARTBEAT.as_millis() as u64;
        config.rpc.heartbeat_misses = MISSES;
        let (secret, _) = ensure_rpc_secret(&config.rpc.secret_path).unwrap();
        let state = AppState::open(&config).await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (http_addr, rpc_addr) = (http.local_addr().unwrap(), rpc.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let rpc_config = account_server::rpc::server_config(&config.rpc, &secret);
        let server = tokio::spawn(account_server::serve(http, None, rpc, state.clone(), rpc_config, async {
            let _ = stopped.await;
        }));
        Self {
            http: format!("http://{http_addr}"),
            rpc: rpc_addr,
            secret,
            state,
            stop: Some(stop),
            server,
            web: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn post(&self, path: &str, body: Value, bearer: Option<&str>) -> (u16, Value) {
        let mut request = self.web.post(format!("{}{path}", self.http)).json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }

    async fn get(&self, path: &str, bearer: &str) -> (u16, Value) {
        let response = self.web.get(format!("{}{path}", self.http)).bearer_auth(bearer).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn register(&self, name: &str) -> String {
        let (status, body) =
            self.post("/v1/register", json!({"username": name, "password": "correct horse"}), None).await;
        assert_eq!(status, 201, "{body}");
        body["uid"].as_str().unwrap().to_owned()
    }

    async fn login(&self, name: &str) -> (u16, Value) {
        self.post("/v1/login", json!({"username": name, "password": "correct horse"}), None).await
    }

    /// Logs `name` in and returns the `sync_addr` handed out.
    async fn sync_addr(&self, name: &str) -> String {
        let (status, body) = self.login(name).await;
        assert_eq!(status, 200, "{body}");
        body["sync_addr"].as_str().unwrap().to_owned()
    }

    /// Waits until the registry satisfies `ready`.
    async fn until(&self, what: &str, ready: impl Fn(&[account_server::nodes::NodeStatus]) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !ready(&self.state.nodes().nodes()) {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}: {:?}", self.state.nodes());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(PATIENCE, self.server).await.unwrap().unwrap().unwrap();
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A fake sync node: registers after every connection, reports `load` with its heartbeats and records the
/// notifications it receives.
struct FakeSync {
    client: RpcClient,
    load: Arc<Mutex<Value>>,
    notices: mpsc::Receiver<(&'static str, Value)>,
}

impl FakeSync {
    async fn connect(cluster: &Cluster, node_id: &str, public_addr: &str, capacity: u64) -> Self {
        let config = movan_rpc::RpcConfig {
            heartbeat_interval: HEARTBEAT,
            heartbeat_misses: MISSES,
            ..movan_rpc::RpcConfig::new(cluster.secret.as_str(), node_id)
        };
        let (tx, notices) = mpsc::channel(64);
        let (revoked, banned) = (tx.clone(), tx);
        let handlers = Handlers::new()
            .notification("session_revoked", move |_, params: Value| {
                let tx = revoked.clone();
                async move {
                    let _ = tx.send(("session_revoked", params)).await;
                }
            })
            .notification("user_banned", move |_, params: Value| {
                let tx = banned.clone();
                async move {
                    let _ = tx.send(("user_banned", params)).await;
                }
            });
        let load = Arc::new(Mutex::new(json!({"players": 0, "rooms": 0})));
        let payload = Arc::clone(&load);
        let registration = json!({"node_id": node_id, "public_addr": public_addr, "capacity": capacity});
        let client = RpcClient::connect(
            cluster.rpc.to_string(),
            config,
            handlers,
            move || Some(payload.lock().unwrap().clone()),
            move |peer: Peer| -> BoxFuture {
                let registration = registration.clone();
                Box::pin(async move {
                    let answer: Value = peer.call("register_node", &registration).await.unwrap();
                    assert_eq!(answer, json!({"accepted": true}));
                })
            },
        )
        .unwrap();
        assert!(client.wait_connected(PATIENCE).await);
        Self { client, load, notices }
    }

    fn report_load(&self, players: u64, rooms: u64) {
        *self.load.lock().unwrap() = json!({"players": players, "rooms": rooms});
    }

    async fn next_notice(&mut self) -> (&'static str, Value) {
        tokio::time::timeout(PATIENCE, self.notices.recv()).await.expect("no notice in time").unwrap()
    }
}

#[tokio::test]
async fn login_sends_players_to_the_least_loaded_registered_node() {
    let cluster = Cluster::start().await;
    cluster.register("alice").await;
    let (status, body) = cluster.login("alice").await;
    assert_eq!((status, &body["code"]), (503, &json!("no_sync_server")), "{body}");

    let a = FakeSync::connect(&cluster, "sync-a", "10.0.0.1:2025", 100).await;
    cluster.until("sync-a", |nodes| nodes.len() == 1).await;
    assert_eq!(cluster.sync_addr("alice").await, "10.0.0.1:2025");

    let b = FakeSync::connect(&cluster, "sync-b", "10.0.0.2:2025", 100).await;
    a.report_load(50, 5);
    b.report_load(10, 1);
    cluster.until("loads 50 and 10", |n| n.len() == 2 && n[0].load.players == 50 && n[1].load.players == 10).await;
    assert_eq!(cluster.sync_addr("alice").await, "10.0.0.2:2025");

    a.report_load(20, 2);
    b.report_load(90, 9);
    cluster.until("loads 20 and 90", |n| n[0].load.players == 20 && n[1].load.players == 90).await;
    assert_eq!(cluster.sync_addr("alice").await, "10.0.0.1:2025");

    // A node that closes its connection is gone at once.
    a.client.shutdown();
    cluster.until("sync-a gone", |nodes| nodes.len() == 1).await;
    assert_eq!(cluster.sync_addr("alice").await, "10.0.0.2:2025");
    b.client.shutdown();
    cluster.until("no node", <[_]>::is_empty).await;
    let (status, body) = cluster.login("alice").await;
    assert_eq!((status, &body["code"]), (503, &json!("no_sync_server")), "{body}");
    cluster.stop().await;
}

#[tokio::test]
async fn reported_matches_show_up_in_the_players_history() {
    let cluster = Cluster::start().await;
    let node = FakeSync::connect(&cluster, "sync-a", "10.0.0.1:2025", 100).await;
    cluster.until("sync-a", |nodes| nodes.len() == 1).await;
    let (alice, bob) = (cluster.register("alice").await, cluster.register("bob").await);
    let report = json!({
        "match_id": "room-1-00ff", "room_id": "room-1", "players": [alice, bob], "frame_count": 123,
        "duration_secs": 6.15, "end_reason": "all_left", "results": {alice.clone(): {"rank": 1}},
        "started_at": 1_700_000_000.0, "ended_at": 1_700_000_006.15,
    });
    let stored: Value = node.client.call("report_match", &report).await.unwrap();
    assert_eq!(stored, json!({"stored": true}));
    let again: Value = node.client.call("report_match", &report).await.unwrap();
    assert_eq!(again, json!({"stored": true}));
    let refused = node.client.call::<_, Value>("report_match", &json!({"match_id": "x"})).await.unwrap_err();
    assert_eq!(refused.code(), "bad_params");

    let (_, tokens) = cluster.login("alice").await;
    let (status, history) = cluster.get("/v1/me/matches", tokens["token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{history}");
    let mut expected = report.clone();
    expected["node_id"] = json!("sync-a");
    // A report without first_desync_frame (from a node before desync detection) is stored with null.
    expected["first_desync_frame"] = Value::Null;
    assert_eq!(history, json!({"matches": [expected], "next": null}));
    cluster.stop().await;
}

#[tokio::test]
async fn logout_and_bans_reach_every_node() {
    let cluster = Cluster::start().await;
    let mut a = FakeSync::connect(&cluster, "sync-a", "10.0.0.1:2025", 100).await;
    let mut b = FakeSync::connect(&cluster, "sync-b", "10.0.0.2:2025", 100).await;
    cluster.until("two nodes", |nodes| nodes.len() == 2).await;
    cluster.register("root").await;
    let alice = cluster.register("alice").await;
    let (_, root) = cluster.login("root").await;
    let (_, tokens) = cluster.login("alice").await;
    let token = tokens["token"].as_str().unwrap();

    let (status, _) = cluster.post("/v1/logout", Value::Null, Some(token)).await;
    assert_eq!(status, 204);
    let sid = common::claims(token).sid;
    for node in [&mut a, &mut b] {
        assert_eq!(node.next_notice().await, ("session_revoked", json!({"uid": alice, "sid": sid})));
    }

    let path = format!("/v1/admin/users/{alice}/ban");
    let (status, body) = cluster.post(&path, Value::Null, root["token"].as_str()).await;
    assert_eq!(status, 200, "{body}");
    for node in [&mut a, &mut b] {
        assert_eq!(node.next_notice().await, ("user_banned", json!({"uid": alice})));
    }
    cluster.stop().await;
}

#[tokio::test]
async fn nodes_get_the_session_key_of_live_sessions_only() {
    let cluster = Cluster::start().await;
    let node = FakeSync::connect(&cluster, "sync-a", "10.0.0.1:2025", 100).await;
    cluster.until("sync-a", |nodes| nodes.len() == 1).await;
    let alice = cluster.register("alice").await;
    let bob = cluster.register("bob").await;
    let (_, tokens) = cluster.login("alice").await;
    let token = tokens["token"].as_str().unwrap();
    let sid = common::claims(token).sid;

    let grant: Value = node.client.call("session_key", &json!({"sid": sid, "uid": alice})).await.unwrap();
    assert_eq!(grant["session_key"], tokens["session_key"], "{grant}");
    let session = cluster.state.store().session(&sid).await.unwrap().unwrap();
    assert_eq!(grant, json!({"session_key": tokens["session_key"], "expires_at": session.expires_at}));

    // By code: the sync server never reads the message, so rewording it must not change what it does.
    let unknown = |result: Result<Value, movan_rpc::CallError>| {
        let e = result.unwrap_err();
        assert_eq!(e.code(), "unknown_session", "{e:?}");
    };
    unknown(node.client.call("session_key", &json!({"sid": sid, "uid": bob})).await);
    unknown(node.client.call("session_key", &json!({"sid": "nope", "uid": alice})).await);
    let refused = node.client.call::<_, Value>("session_key", &json!({"sid": sid})).await.unwrap_err();
    assert_eq!(refused.code(), "bad_params");

    let (status, _) = cluster.post("/v1/logout", Value::Null, Some(token)).await;
    assert_eq!(status, 204);
    unknown(node.client.call("session_key", &json!({"sid": sid, "uid": alice})).await);
    cluster.stop().await;
}

#[tokio::test]
async fn a_node_that_falls_silent_is_dropped_after_the_heartbeat_timeout() {
    let cluster = Cluster::start().await;
    cluster.register("alice").await;
    // It keeps the connection open but answers no heartbeat from its registration on, so the drop comes at least
    // one heartbeat interval after this instant (measuring from later, after a login, raced with the timeout).
    let started = tokio::time::Instant::now();
    let mut silent = SilentNode::register(&cluster, "sync-silent", "10.0.0.9:2025").await;
    // (No login here to check the node is handed out: with heartbeats of 50 ms an argon2 login under load can
    // outlast the timeout. Other tests cover the hand-out.)
    cluster.until("sync-silent", |nodes| nodes.len() == 1).await;
    cluster.until("sync-silent dropped", <[_]>::is_empty).await;
    assert!(started.elapsed() >= HEARTBEAT, "dropped before a heartbeat could be missed");
    let (status, body) = cluster.login("alice").await;
    assert_eq!((status, &body["code"]), (503, &json!("no_sync_server")), "{body}");
    assert!(silent.is_closed_by_server().await);
    cluster.stop().await;
}

#[tokio::test]
async fn a_node_with_the_wrong_secret_cannot_register() {
    let cluster = Cluster::start().await;
    let config = movan_rpc::RpcConfig::new("not the secret", "sync-intruder");
    let noop = |_: Peer| -> BoxFuture { Box::pin(async {}) };
    let client = RpcClient::connect(cluster.rpc.to_string(), config, Handlers::new(), || None, noop).unwrap();
    assert!(!client.wait_connected(Duration::from_millis(500)).await);
    assert!(cluster.state.nodes().nodes().is_empty());
    client.shutdown();
    cluster.stop().await;
}

/// A node speaking the wire protocol by hand: authenticates, registers, then never reads or writes again.
struct SilentNode {
    stream: TcpStream,
}

impl SilentNode {
    async fn register(cluster: &Cluster, node_id: &str, public_addr: &str) -> Self {
        use movan_rpc::handshake::ClientHandshake;
        use movan_rpc::wire::{Message, decode, encode};

        let mut stream = TcpStream::connect(cluster.rpc).await.unwrap();
        let mut handshake = ClientHandshake::new(cluster.secret.as_str().as_bytes(), node_id, [7; 32]);
        let challenge = decode(&read_frame(&mut stream).await).unwrap();
        write_frame(&mut stream, &encode(&handshake.on_challenge(challenge).unwrap())).await;
        let welcome = decode(&read_frame(&mut stream).await).unwrap();
        assert_eq!(handshake.on_welcome(welcome).unwrap(), "account");
        let params = json!({"node_id": node_id, "public_addr": public_addr, "capacity": 10});
        write_frame(&mut stream, &encode(&Message::Call { id: 1, method: "register_node".into(), params })).await;
        loop {
            match decode(&read_frame(&mut stream).await).unwrap() {
                Message::Reply { id: 1, result } => {
                    assert_eq!(result.unwrap(), json!({"accepted": true}));
                    break;
                }
                _ => continue, // pings
            }
        }
        Self { stream }
    }

    /// Reads what the server sent meanwhile; whether the server then closed the connection.
    async fn is_closed_by_server(&mut self) -> bool {
        let mut sink = Vec::new();
        tokio::time::timeout(PATIENCE, self.stream.read_to_end(&mut sink)).await.is_ok()
    }
}

async fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let len = stream.read_u32().await.unwrap();
    let mut body = vec![0; len as usize];
    stream.read_exact(&mut body).await.unwrap();
    body
}

async fn write_frame(stream: &mut TcpStream, body: &[u8]) {
    stream.write_u32(body.len() as u32).await.unwrap();
    stream.write_all(body).await.unwrap();
}
