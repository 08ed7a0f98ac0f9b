//! The sync server's link to the account server, over movan-rpc.
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

/// The running link; dropping it stops reconnecting.
#[derive(Debug)]
pub struct Link {
    client: RpcClient,
    reporter: tokio::task::JoinHandle<()>,
    registered: Arc<AtomicBool>,
}

/// Whether the link is up and this node registered, for `/readyz`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LinkStatus {
    client: RpcClient,
    registered: Arc<AtomicBool>,
}

impl LinkStatus {
    /// True while the account server is connected and accepted this node's `register_node`.
    pub fn is_registered(&self) -> bool {
        self.client.is_connected() && self.registered.load(Ordering::Relaxed)
    }
}

impl Link {
    /// Connects (and keeps reconnecting) to the account server at `addr`.
    pub fn start(
        addr: &str,
        config: RpcConfig,
        node: RegisterNode,
        control: Control,
        reports: mpsc::Receiver<FinishedGame>,
        report_settings: ReportSettings,
    ) -> Result<Self, movan_rpc::ConfigError> {
        let revoke = control.clone();
        let ban = control.clone();
        let (lister, ender, kicker) = (control.clone(), control.clone(), control.clone());
        let handlers = Handlers::new()
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
            });
        let load = control.clone();
        let heartbeat = move || {
            let (players, rooms, _) = load.load();
            serde_json::to_value(NodeLoad { players: players as u64, rooms: rooms as u64 }).ok()
        };
        let registered = Arc::new(AtomicBool::new(false));
        let flag = registered.clone();
        let replay = control.clone();
        let on_connect = move |peer: movan_rpc::Peer| {
            let node = node.clone();
            let flag = flag.clone();
            let control = replay.clone();
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
                            addr = %node.public_addr,
                            revocations = reply.revoked.len(),
                            bans = reply.banned.len(),
                            "registered with the account server"
                        )
                    }
                    Err(e) => warn!(error = %e, "register_node failed; the account server will not send players here"),
                }
            }
            .boxed()
        };
        let client = RpcClient::connect(addr, config, handlers, heartbeat, on_connect)?;
        let reporter = tokio::spawn(report_loop(client.clone(), reports, report_settings));
        Ok(Self { client, reporter, registered })
    }

    /// The link's state for the health endpoint.
    pub fn status(&self) -> LinkStatus {
        LinkStatus { client: self.client.clone(), registered: self.registered.clone() }
    }

    /// Whether the account server is connected and this node registered.
    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// Session keys, asked from the account server (`session_key` call).
    pub fn key_source(&self) -> RpcKeySource {
        RpcKeySource { client: self.client.clone() }
    }
}

/// Fetches session keys from the account server over the link.
#[derive(Debug, Clone)]
pub struct RpcKeySource {
    client: RpcClient,
}

impl KeySource for RpcKeySource {
    fn fetch<'a>(&'a self, uid: &'a str, sid: &'a str) -> BoxFuture<'a, Result<(SessionKey, u64), KeyError>> {
        async move {
            let request = SessionKeyRequest { uid: uid.to_owned(), sid: sid.to_owned() };
            let reply: SessionKeyGrant = self.client.call(SESSION_KEY, &request).await.map_err(|e| {
                if e.code() == codes::UNKNOWN_SESSION {
                    KeyError::Unknown
                } else {
                    KeyError::Unavailable(e.to_string())
                }
            })?;
            let key = SessionKey::from_base64(&reply.session_key)
                .map_err(|e| KeyError::Unavailable(format!("bad key from the account server: {e}")))?;
            Ok((key, reply.expires_at))
        }
        .boxed()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.client.shutdown();
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
        (RpcKeySource { client }, server)
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
