//! The RPC service the sync servers connect to: what they call, what they report with their heartbeats, and what
//! happens when they go.
//!
//! Methods (sync → account):
//! - `register_node` `{"node_id", "public_addr", "capacity"}` → `{"accepted": true}`: the node takes players from
//!   now on. Registering again (after a reconnect) replaces the entry.
//! - `report_match` `{"match_id", "room_id", "players", "frame_count", "duration_secs", "end_reason", "results",
//!   "started_at", "ended_at"}` → `{"stored": true}` once the match is durable; reporting a match again stores
//!   nothing and answers the same.
//! - `replay_chunk` `{"match_id", "offset", "total_len", "data"}` → `{"received", "stored"}`: a piece of a reported
//!   match's replay (see [`crate::replays`]).
//! - `session_key` `{"sid", "uid"}` → `{"session_key": "<standard base64 of 32 bytes>", "expires_at": <Unix seconds>}`:
//!   the key the player's game connections of that session are encrypted with, and when the session ends (the sync
//!   server may cache the key until then, or until `session_revoked`). A session that is missing, revoked (logout,
//!   ban), ended, another user's, or from before encrypted sessions is an error with code `unknown_session`.
//!
//! Refusals carry a code of [`codes`] (`unknown_session`, `store_failed`, `wrong_node_id`, `bad_address`,
//! `invalid_report`); the message is for people.
//!
//! Heartbeat payload (sync → account): `{"players": n, "rooms": n}`, the node's load.
//!
//! Notifications (account → every registered sync node): `session_revoked` `{"uid", "sid"}` on logout and
//! `user_banned` `{"uid"}` on a ban (see [`Notice`]).
//!
//! A node is live while its connection is up; the RPC layer closes a connection whose heartbeats stop.
//!
//! The functions here take the connection's id and node id rather than a connection, so they are tested without
//! sockets; [`handlers`] wires them to `movan-rpc`, and [`server_config`] turns the `[rpc]` section into its
//! settings.

use std::sync::Arc;

use movan_rpc::{HandlerError, Handlers, Peer};
use tracing::{debug, info, warn};

use crate::config::{RpcSection, is_host_port};
use crate::nodes::{NodeInfo, Notice, Notifier, PeerId};
use crate::secret::RpcSecret;
use crate::state::AppState;
use crate::store::{MatchRecord, StoreError};

/// The account server's node id in the RPC handshake.
pub const NODE_ID: &str = "account";
pub use movan_protocol::rpc::{
    ChunkStored, MatchReport, NodeLoad, REGISTER_NODE, REPLAY_CHUNK, REPORT_MATCH, Registered, ReplayChunk,
    SESSION_KEY, SessionKeyGrant, SessionKeyRequest, Stored, codes,
};

/// Longest `match_id`, `room_id` or player uid accepted in a report, in bytes.
pub const MAX_ID_LEN: usize = 128;
/// Most players accepted in one report.
pub const MAX_MATCH_PLAYERS: usize = 1024;

/// A refused `session_key`.
#[derive(Debug, thiserror::Error)]
pub enum SessionKeyError {
    // The message is for logs and people only: the sync server reads the code (`codes::UNKNOWN_SESSION`).
    /// No live session of this user with a key; the sync server tells the player `session_revoked`.
    #[error("unknown session: missing, revoked, ended, another user's, or without a key (log in again)")]
    Unknown,
    /// The store failed; the sync server may ask again.
    #[error("reading the session: {0}")]
    Store(#[from] StoreError),
}

impl SessionKeyError {
    /// The code of the error reply.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unknown => codes::UNKNOWN_SESSION,
            Self::Store(_) => codes::STORE_FAILED,
        }
    }
}

/// A refused `register_node`.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The params name another node than the one that authenticated.
    #[error("node_id {claimed:?} differs from the connection's node id {authenticated:?}")]
    WrongNodeId {
        /// `node_id` of the params.
        claimed: String,
        /// The node id of the RPC handshake.
        authenticated: String,
    },
    /// `public_addr` is not `host:port`.
    #[error("public_addr {0:?} must be host:port, e.g. \"127.0.0.1:2025\"")]
    BadAddress(String),
}

impl RegisterError {
    /// The code of the error reply.
    pub fn code(&self) -> &'static str {
        match self {
            Self::WrongNodeId { .. } => codes::WRONG_NODE_ID,
            Self::BadAddress(_) => codes::BAD_ADDRESS,
        }
    }
}

/// A refused `report_match`.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A field is out of range; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// The store failed; the match is not stored and may be reported again.
    #[error("storing the match: {0}")]
    Store(#[from] StoreError),
}

impl ReportError {
    /// The code of the error reply.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => codes::INVALID_REPORT,
            Self::Store(_) => codes::STORE_FAILED,
        }
    }
}

/// `register_node` from connection `peer_id` of node `authenticated` (its handshake node id), told notices through
/// `notifier`.
pub fn register_node(
    state: &AppState,
    peer_id: PeerId,
    authenticated: &str,
    notifier: Arc<dyn Notifier>,
    info: NodeInfo,
) -> Result<Registered, RegisterError> {
    if info.node_id != authenticated {
        return Err(RegisterError::WrongNodeId { claimed: info.node_id, authenticated: authenticated.to_owned() });
    }
    if !is_host_port(&info.public_addr) {
        return Err(RegisterError::BadAddress(info.public_addr));
    }
    info!(node = %info.node_id, peer_id, public_addr = %info.public_addr, capacity = info.capacity, "sync node registered");
    Ok(state.nodes.register(info, peer_id, notifier, state.now(), state.rpc_max_frame_bytes))
}

/// A heartbeat from connection `peer_id` of `node_id`; a [`NodeLoad`] payload updates the node's load.
pub fn heartbeat(state: &AppState, node_id: &str, peer_id: PeerId, payload: Option<serde_json::Value>) {
    let Some(payload) = payload else { return };
    match serde_json::from_value::<NodeLoad>(payload) {
        Ok(load) => {
            state.nodes.update_load(node_id, peer_id, load);
        }
        Err(e) => warn!(node = %node_id, error = %e, "heartbeat payload is not {{\"players\", \"rooms\"}}"),
    }
}

/// Connection `peer_id` of `node_id` closed: the node takes no more players, unless it registered again meanwhile.
pub fn disconnected(state: &AppState, node_id: &str, peer_id: PeerId) {
    if state.nodes.remove(node_id, peer_id) {
        info!(node = %node_id, peer_id, "sync node gone");
    }
}

/// `report_match` from `node_id`: stores the match and makes it durable before answering.
pub async fn report_match(state: &AppState, node_id: &str, report: MatchReport) -> Result<Stored, ReportError> {
    check(&report).map_err(ReportError::Invalid)?;
    let game = MatchRecord { report, node_id: node_id.to_owned() };
    let new = state.store.insert_match(&game).await?;
    state.store.flush().await?;
    if new {
        let report = &game.report;
        info!(match_id = %report.match_id, node = %node_id, players = report.players.len(), "match stored");
    }
    Ok(Stored { stored: true })
}

/// `session_key`: the key of session `sid` if it is live at the state's clock and belongs to `uid`, who is not
/// banned.
pub async fn session_key(state: &AppState, request: &SessionKeyRequest) -> Result<SessionKeyGrant, SessionKeyError> {
    let now = state.now();
    let session = state
        .store
        .session(&request.sid)
        .await?
        .filter(|s| !s.revoked && s.expires_at > now && s.uid == request.uid)
        .ok_or(SessionKeyError::Unknown)?;
    // A ban revokes the user's sessions one by one after setting the ban; this closes the gap in between.
    if state.store.user(&session.uid).await?.is_none_or(|u| u.is_banned()) {
        return Err(SessionKeyError::Unknown);
    }
    let key = session.key.ok_or(SessionKeyError::Unknown)?;
    Ok(SessionKeyGrant { session_key: key.to_base64(), expires_at: session.expires_at })
}

/// The first field of `report` out of range, described.
fn check(report: &MatchReport) -> Result<(), String> {
    let id_ok = |s: &str| !s.is_empty() && s.len() <= MAX_ID_LEN;
    for (name, value) in [("match_id", &report.match_id), ("room_id", &report.room_id)] {
        if !id_ok(value) {
            return Err(format!("{name} must be 1 to {MAX_ID_LEN} bytes"));
        }
    }
    if report.players.is_empty() || report.players.len() > MAX_MATCH_PLAYERS {
        return Err(format!("players must list 1 to {MAX_MATCH_PLAYERS} uids"));
    }
    if !report.players.iter().all(|p| id_ok(p)) {
        return Err(format!("every player uid must be 1 to {MAX_ID_LEN} bytes"));
    }
    let times =
        [("duration_secs", report.duration_secs), ("started_at", report.started_at), ("ended_at", report.ended_at)];
    for (name, value) in times {
        if !value.is_finite() || value < 0.0 {
            return Err(format!("{name} must be a finite number of seconds, not negative"));
        }
    }
    if report.first_desync_frame.is_some_and(|f| f >= report.frame_count) {
        return Err("first_desync_frame must be a frame of the game (below frame_count)".into());
    }
    Ok(())
}

/// The `movan-rpc` settings of the account server: `[rpc]`, the shared secret and [`NODE_ID`].
pub fn server_config(rpc: &RpcSection, secret: &RpcSecret) -> movan_rpc::RpcConfig {
    movan_rpc::RpcConfig::from_section(rpc, secret.as_str(), NODE_ID)
}

/// The RPC handlers of the account server, on `state`.
pub fn handlers(state: AppState) -> Handlers {
    let (on_register, on_report, on_key, on_chunk) = (state.clone(), state.clone(), state.clone(), state.clone());
    let (on_heartbeat, on_disconnect) = (state.clone(), state);
    Handlers::new()
        .method(REGISTER_NODE, move |peer: Peer, info: NodeInfo| {
            let state = on_register.clone();
            async move {
                let (peer_id, node_id) = (peer.id(), peer.node_id().to_owned());
                register_node(&state, peer_id, &node_id, Arc::new(PeerNotifier(peer)), info)
                    .map_err(|e| HandlerError::with_code(e.code(), e))
            }
        })
        .method(REPORT_MATCH, move |peer: Peer, report: MatchReport| {
            let state = on_report.clone();
            async move {
                report_match(&state, peer.node_id(), report).await.map_err(|e| {
                    warn!(node = peer.node_id(), error = %e, "match report refused");
                    HandlerError::with_code(e.code(), e)
                })
            }
        })
        .method(REPLAY_CHUNK, move |peer: Peer, chunk: ReplayChunk| {
            let state = on_chunk.clone();
            async move {
                let match_id = chunk.match_id.clone();
                crate::replays::replay_chunk(&state, peer.node_id(), chunk).await.map_err(|e| {
                    warn!(node = peer.node_id(), %match_id, error = %e, "replay chunk refused");
                    HandlerError::with_code(e.code(), e)
                })
            }
        })
        .method(SESSION_KEY, move |peer: Peer, request: SessionKeyRequest| {
            let state = on_key.clone();
            async move {
                session_key(&state, &request).await.map_err(|e| {
                    match &e {
                        SessionKeyError::Unknown => {
                            debug!(node = peer.node_id(), uid = %request.uid, sid = %request.sid, "session key refused");
                        }
                        SessionKeyError::Store(_) => warn!(node = peer.node_id(), error = %e, "session key lookup failed"),
                    }
                    HandlerError::with_code(e.code(), e)
                })
            }
        })
        .on_heartbeat(move |peer, payload| heartbeat(&on_heartbeat, peer.node_id(), peer.id(), payload))
        .on_disconnect(move |peer| disconnected(&on_disconnect, peer.node_id(), peer.id()))
}

/// A registered node's RPC connection.
#[derive(Debug)]
struct PeerNotifier(Peer);

impl Notifier for PeerNotifier {
    fn notify(&self, notice: &Notice) -> Result<(), String> {
        self.0.notify(notice.method(), &notice.params()).map_err(|e| e.to_string())
    }

    fn notify_raw(&self, method: &'static str, params: serde_json::Value) -> Result<(), String> {
        self.0.notify(method, &params).map_err(|e| e.to_string())
    }

    fn call(
        &self,
        method: &'static str,
        params: serde_json::Value,
    ) -> crate::nodes::BoxFuture<'static, Result<serde_json::Value, crate::nodes::NodeCallError>> {
        let peer = self.0.clone();
        Box::pin(async move {
            peer.call::<_, serde_json::Value>(method, &params)
                .await
                .map_err(|e| crate::nodes::NodeCallError { code: e.code().to_owned(), message: e.to_string() })
        })
    }
}
