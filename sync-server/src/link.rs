//! The sync server's links to the account servers (`sync.account_rpc_addrs`, or the one `sync.account_rpc_addr`),
//! over movan-rpc. With several account servers (sharing one database), each gets all of this:
//!
//! - On every (re)connection it registers this node (`register_node`: node id, public address, capacity), and
//!   applies the recent logouts and bans the reply carries (this node may have restarted or missed them).
//! - Its heartbeats carry the load ([`NodeLoad`]), which the account server uses to pick a node at login.
//! - It obeys `session_revoked` (logout) and `user_banned` notifications by closing the player's connection, and
//!   an admin's `kick_player`; it answers an admin's `list_rooms` and `end_room` calls.
//! - It reports every finished game and uploads its replay ([`crate::reports`]), keeping a bounded backlog while the
//!   account server is away.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use futures::future::BoxFuture;
use movan_protocol::crypto::SessionKey;
use movan_protocol::rpc::{
    END_ROOM, EndRoom, KICK_PLAYER, KickPlayer, LIST_ROOMS, ListRooms, NodeLoad, REGISTER_NODE, Registered, RoomEnded,
    RoomList, SESSION_KEY, SESSION_REVOKED, SessionKeyGrant, SessionKeyRequest, SessionRevoked, USER_BANNED,
    UserBanned, codes,
};
use movan_rpc::{HandlerError, Handlers, RpcClient, RpcConfig};

pub use movan_protocol::rpc::RegisterNode;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::engine::FinishedGame;
use crate::keys::{KeyError, KeySource};
use crate::reports::{ReportSettings, report_loop};
use crate::server::Control;

/// Rooms a `list_rooms` answer holds at most, whatever it asks (the answer must fit one RPC frame).
pub const MAX_LISTED_ROOMS: usize = 1000;

/// The running links, one per account server; dropping it stops reconnecting.
#[derive(Debug)]
pub struct Link {
    links: Vec<AccountLink>,
    reporter: tokio::task::JoinHandle<()>,
}

/// The link to one account server.
#[derive(Debug, Clone)]
struct AccountLink {
    addr: String,
    client: RpcClient,
    registered: Arc<AtomicBool>,
}

/// Whether the links are up and this node registered, for `/readyz`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LinkStatus {
    links: Vec<AccountLink>,
}

impl LinkStatus {
    /// True while at least one account server is connected and accepted this node's `register_node`.
    pub fn is_registered(&self) -> bool {
        self.links.iter().any(AccountLink::is_registered)
    }

    /// Each account server's address and whether this node is registered there.
    pub fn each(&self) -> Vec<(String, bool)> {
        self.links.iter().map(|l| (l.addr.clone(), l.is_registered())).collect()
    }
}

impl AccountLink {
    fn is_registered(&self) -> bool {
        self.client.is_connected() && self.registered.load(Ordering::Relaxed)
    }
}

impl Link {
    /// Connects (and keeps reconnecting) to every account server in `addrs`: this node registers with each, reports
    /// its load to each and obeys the logouts, bans and admin requests of each. Session keys are asked of each in
    /// turn; finished games go to the first one connected.
    pub fn start(
        addrs: &[String],
        config: RpcConfig,
        node: RegisterNode,
        control: Control,
        reports: mpsc::Receiver<FinishedGame>,
        report_settings: ReportSettings,
    ) -> Result<Self, movan_rpc::ConfigError> {
        let handlers = handlers(&control);
        let mut links = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let load = control.clone();
            let heartbeat = move || {
                let (players, rooms, _) = load.load();
                serde_json::to_value(NodeLoad { players: players as u64, rooms: rooms as u64 }).ok()
            };
            let registered = Arc::new(AtomicBool::new(false));
            let on_connect = registration(node.clone(), addr.clone(), registered.clone(), control.clone());
            let client = RpcClient::connect(addr, config.clone(), handlers.clone(), heartbeat, on_connect)?;
            links.push(AccountLink { addr: addr.clone(), client, registered });
        }
        let clients = links.iter().map(|l| l.client.clone()).collect();
        let reporter = tokio::spawn(report_loop(clients, reports, report_settings));
        Ok(Self { links, reporter })
    }

    /// The links' state for the health endpoint.
    pub fn status(&self) -> LinkStatus {
        LinkStatus { links: self.links.clone() }
    }

    /// Whether at least one account server is connected.
    pub fn is_connected(&self) -> bool {
        self.links.iter().any(|l| l.client.is_connected())
    }

    /// Session keys, asked from the account servers (`session_key` call).
    pub fn key_source(&self) -> RpcKeySource {
        RpcKeySource { clients: self.links.iter().map(|l| l.client.clone()).collect() }
    }
}

/// What every account server may call or notify: logouts, bans, and an admin's requests.
fn handlers(control: &Control) -> Handlers {
    let (revoke, ban) = (control.clone(), control.clone());
    let (lister, ender, kicker) = (control.clone(), control.clone(), control.clone());
    Handlers::new()
        .method(LIST_ROOMS, move |_peer, request: ListRooms| {
            let control = lister.clone();
            async move {
                let limit = (request.limit as usize).min(MAX_LISTED_ROOMS);
                let (rooms, truncated) = control
                    .list_rooms(limit)
                    .await
                    .ok_or_else(|| HandlerError::with_code(codes::STORE_FAILED, "the node is shutting down"))?;
                Ok::<_, HandlerError>(RoomList { rooms, truncated })
            }
        })
        .method(END_ROOM, move |_peer, request: EndRoom| {
            let control = ender.clone();
            async move {
                match control.end_room(&request.room_id, &request.reason).await {
                    Some(Ok(game_ended)) => Ok(RoomEnded { game_ended }),
                    Some(Err(e)) => Err(HandlerError::with_code(codes::ROOM_NOT_FOUND, e)),
                    None => Err(HandlerError::with_code(codes::STORE_FAILED, "the node is shutting down")),
                }
            }
        })
        .notification(KICK_PLAYER, move |_peer, n: KickPlayer| {
            let control = kicker.clone();
            async move { control.kick(&n.uid, &n.reason).await }
        })
        .notification(SESSION_REVOKED, move |_peer, n: SessionRevoked| {
            let control = revoke.clone();
            async move { control.revoke_session(&n.uid, &n.sid).await }
        })
        .notification(USER_BANNED, move |_peer, n: UserBanned| {
            let control = ban.clone();
            async move { control.ban(&n.uid, unix_now()).await }
        })
}

/// Registers this node on every (re)connection to the account server at `addr`, applying the revocations and bans
/// the reply carries.
fn registration(
    node: RegisterNode,
    addr: String,
    flag: Arc<AtomicBool>,
    control: Control,
) -> impl Fn(movan_rpc::Peer) -> BoxFuture<'static, ()> + Send + Sync + 'static {
    move |peer: movan_rpc::Peer| {
        let (node, addr, flag, control) = (node.clone(), addr.clone(), flag.clone(), control.clone());
        async move {
            flag.store(false, Ordering::Relaxed);
            match peer.call::<_, Registered>(REGISTER_NODE, &node).await {
                Ok(reply) => {
                    // A token logged out or banned while this node was away (or before it restarted) stays refused.
                    let at_unix = unix_now();
                    for ban in &reply.banned {
                        control.ban(&ban.uid, at_unix).await;
                    }
                    for revoked in &reply.revoked {
                        control.revoke_session(&revoked.uid, &revoked.sid).await;
                    }
                    flag.store(true, Ordering::Relaxed);
                    info!(
                        node = %node.node_id,
                        account = %addr,
                        public_addr = %node.public_addr,
                        revocations = reply.revoked.len(),
                        bans = reply.banned.len(),
                        "registered with an account server"
                    )
                }
                Err(e) => warn!(account = %addr, error = %e, "register_node failed; that account server will not send players here"),
            }
        }
        .boxed()
    }
}

/// Fetches session keys from the account servers over the links: each connected one in turn, until one knows the
/// session.
#[derive(Debug, Clone)]
pub struct RpcKeySource {
    clients: Vec<RpcClient>,
}

impl KeySource for RpcKeySource {
    fn fetch<'a>(&'a self, uid: &'a str, sid: &'a str) -> BoxFuture<'a, Result<(SessionKey, u64), KeyError>> {
        async move {
            let request = SessionKeyRequest { uid: uid.to_owned(), sid: sid.to_owned() };
            // Unknown only when every account server that answered says so: one that failed might know it.
            let (mut unknown, mut failure) = (false, None);
            for client in &self.clients {
                match client.call::<_, SessionKeyGrant>(SESSION_KEY, &request).await {
                    Ok(reply) => {
                        let key = SessionKey::from_base64(&reply.session_key)
                            .map_err(|e| KeyError::Unavailable(format!("bad key from the account server: {e}")))?;
                        return Ok((key, reply.expires_at));
                    }
                    Err(e) if e.code() == codes::UNKNOWN_SESSION => unknown = true,
                    Err(movan_rpc::CallError::Disconnected) => {}
                    Err(e) => failure = Some(e.to_string()),
                }
            }
            match (failure, unknown) {
                (Some(why), _) => Err(KeyError::Unavailable(why)),
                (None, true) => Err(KeyError::Unknown),
                (None, false) => Err(KeyError::Unavailable("no account server is connected".into())),
            }
        }
        .boxed()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for link in &self.links {
            link.client.shutdown();
        }
        self.reporter.abort();
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use movan_rpc::{HandlerError, RpcServer};

    use super::*;

    /// An account server whose `session_key` refuses with `code` and a message that says nothing the sync server
    /// could recognise, and a key source connected to it.
    async fn refusing_with(code: &'static str) -> (RpcKeySource, tokio::task::JoinHandle<std::io::Result<()>>) {
        let handlers = Handlers::new().method(SESSION_KEY, move |_peer, _: SessionKeyRequest| async move {
            Err::<SessionKeyGrant, _>(HandlerError::with_code(code, "reworded: no such login here"))
        });
        let server = RpcServer::new(RpcConfig::new("secret", "account"), handlers).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(server.run(listener, std::future::pending()));
        let client = RpcClient::connect(
            &addr,
            RpcConfig::new("secret", "sync-1"),
            Handlers::new(),
            || None,
            |_peer| async {}.boxed(),
        )
        .unwrap();
        assert!(client.wait_connected(Duration::from_secs(10)).await);
        (RpcKeySource { clients: vec![client] }, server)
    }

    #[tokio::test]
    async fn an_unknown_session_is_told_by_its_code_not_its_message() {
        let (keys, server) = refusing_with(codes::UNKNOWN_SESSION).await;
        assert!(matches!(keys.fetch("1001", "s1").await, Err(KeyError::Unknown)));
        server.abort();
        let (keys, server) = refusing_with(codes::STORE_FAILED).await;
        assert!(matches!(keys.fetch("1001", "s1").await, Err(KeyError::Unavailable(_))));
        server.abort();
    }
}
