//! Shared helpers: servers on port 0, fast configs, waiting for conditions without fixed sleeps.
#![allow(clippy::unwrap_used, dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use movan_rpc::{Handlers, Peer, PeerSet, RpcClient, RpcConfig, RpcServer};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SECRET: &str = "test secret, shared by every node";
/// Upper bound for anything that should happen "soon"; tests never wait this long when they pass.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// Fast heartbeats and reconnects so failures show within a second.
pub fn config(node: &str) -> RpcConfig {
    RpcConfig {
        heartbeat_interval: Duration::from_millis(100),
        heartbeat_misses: 3,
        handshake_timeout: Duration::from_secs(1),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..RpcConfig::new(SECRET, node)
    }
}

/// A running server and the means to stop it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub peers: PeerSet,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    /// Stops the server and waits until it has closed every connection and released the port.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(PATIENCE, &mut self.task).await.expect("server stops").unwrap().unwrap();
    }
}

/// Binds `addr` with SO_REUSEADDR so that a restarted server can take the same port back at once.
pub fn bind(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    socket.listen(128).unwrap()
}

pub async fn start_server(config: RpcConfig, handlers: Handlers) -> TestServer {
    start_server_on(bind("127.0.0.1:0".parse().unwrap()), RpcServer::new(config, handlers).unwrap())
}

pub fn start_server_on(listener: TcpListener, server: RpcServer) -> TestServer {
    let addr = listener.local_addr().unwrap();
    let peers = server.peers();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(listener, stopped.map(|_| ())));
    TestServer { addr, peers, stop: Some(stop), task }
}

/// A client with no handlers, no heartbeat payload and no hook.
pub fn plain_client(addr: SocketAddr, config: RpcConfig) -> RpcClient {
    client_with(addr, config, Handlers::new(), |_| async {}.boxed())
}

pub fn client_with(
    addr: SocketAddr,
    config: RpcConfig,
    handlers: Handlers,
    on_connect: impl Fn(Peer) -> BoxFuture<'static, ()> + Send + Sync + 'static,
) -> RpcClient {
    RpcClient::connect(addr.to_string(), config, handlers, || None, on_connect).unwrap()
}

/// Polls `condition` every 10 ms until it holds; panics after [`PATIENCE`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Awaits `future`, panicking after [`PATIENCE`].
pub async fn soon<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future).await.unwrap_or_else(|_| panic!("timed out waiting for: {what}"))
}
