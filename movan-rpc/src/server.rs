//! The accepting end: authenticates every connection, then serves it until it closes or the server stops.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::config::{ConfigError, RpcConfig};
use crate::connection::{self, Endpoint};
use crate::handlers::Handlers;
use crate::peer::{DisconnectReason, Link, LinkParams, PeerSet};

/// An RPC server, ready to [`run`](Self::run) on a listener. Its connected peers are reachable through
/// [`peers`](Self::peers), also while it runs.
pub struct RpcServer {
    endpoint: Endpoint,
    peers: PeerSet,
}

impl std::fmt::Debug for RpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcServer")
            .field("config", &self.endpoint.config)
            .field("handlers", &self.endpoint.handlers)
            .field("peers", &self.peers.len())
            .finish()
    }
}

impl RpcServer {
    /// A server answering with `handlers`. Fails when `config` is invalid (e.g. an empty secret).
    pub fn new(config: RpcConfig, handlers: Handlers) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self { endpoint: Endpoint { config, handlers, heartbeat_payload: None }, peers: PeerSet::default() })
    }

    /// Attaches `payload()` to every heartbeat ping the server sends (the client can hand it to its
    /// `on_heartbeat`).
    pub fn with_heartbeat_payload(mut self, payload: impl Fn() -> Option<Value> + Send + Sync + 'static) -> Self {
        self.endpoint.heartbeat_payload = Some(Arc::new(payload));
        self
    }

    /// The connected, authenticated peers: list them, find one by node id, call or notify them.
    pub fn peers(&self) -> PeerSet {
        self.peers.clone()
    }

    /// Serves connections from `listener` until `shutdown` completes, then closes every connection (pending calls
    /// fail with `disconnected`, running handlers are cancelled) and returns.
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let endpoint = Arc::new(self.endpoint);
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, node = endpoint.config.node_id, "rpc server listening");
        }
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, remote)) => {
                        debug!(%remote, "rpc connection accepted");
                        tracker.spawn(serve(stream, remote, endpoint.clone(), self.peers.clone(), stop.clone()));
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        warn!(error = %e, "rpc accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        info!("rpc server shutting down");
        drop(listener);
        stop.cancel();
        tracker.close();
        tracker.wait().await;
        Ok(())
    }
}

/// Authenticates one connection and serves it.
async fn serve(
    stream: TcpStream,
    remote: SocketAddr,
    endpoint: Arc<Endpoint>,
    peers: PeerSet,
    stop: CancellationToken,
) {
    let config = &endpoint.config;
    let (mut reader, mut writer) = connection::framed(stream, config.max_frame_bytes);
    let handshake = connection::server_handshake(&mut reader, &mut writer, config);
    let node_id = tokio::select! {
        () = stop.cancelled() => return,
        outcome = tokio::time::timeout(config.handshake_timeout, handshake) => match outcome {
            Ok(Ok(node_id)) => node_id,
            Ok(Err(e)) if e.is_auth_failure() => {
                warn!(%remote, error = %e, "rpc peer failed authentication (wrong shared secret?); closed");
                return;
            }
            Ok(Err(e)) => {
                warn!(%remote, error = %e, "rpc handshake failed; closed");
                return;
            }
            Err(_) => {
                warn!(%remote, timeout = ?config.handshake_timeout, "rpc peer did not authenticate in time; closed");
                return;
            }
        },
    };
    let (peer, out_rx) = Link::open(LinkParams {
        node_id,
        remote,
        max_frame: config.max_frame_bytes,
        call_timeout: config.call_timeout,
        max_in_flight: config.max_in_flight,
        send_queue: config.send_queue,
        parent: stop,
    });
    for old in peers.insert(peer.clone()) {
        warn!(
            node = old.node_id(),
            old = old.id(),
            new = peer.id(),
            "rpc node reconnected; closing its older connection"
        );
        old.link().close(DisconnectReason::Replaced);
    }
    info!(peer = peer.id(), node = peer.node_id(), %remote, "rpc peer connected");
    let reason = connection::run(peer.clone(), reader, writer, out_rx, endpoint.clone(), None).await;
    peers.remove(peer.id());
    info!(peer = peer.id(), node = peer.node_id(), %remote, %reason, "rpc peer disconnected");
    endpoint.handlers.disconnected(&peer);
}
