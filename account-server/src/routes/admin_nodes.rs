//! `/v1/admin` for the sync nodes: list them, drain them, list a node's rooms, end a room, kick a player.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use movan_protocol::rpc::{
    END_ROOM, EndRoom, KICK_PLAYER, KickPlayer, LIST_ROOMS, ListRooms, RoomEnded, RoomList, codes,
};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::error::ApiError;
use crate::extract::Admin;
use crate::nodes::NodeStatus;
use crate::state::AppState;

/// Rooms a node is asked to list at most.
const LISTED_ROOMS: u32 = 1000;
/// The longest `reason` accepted, in bytes.
const MAX_REASON_LEN: usize = 200;

/// A sync node, as the admin API shows it.
#[derive(Debug, Serialize)]
pub(super) struct NodeView {
    node_id: String,
    public_addr: String,
    ws_url: String,
    udp_addr: String,
    capacity: u64,
    players: u64,
    rooms: u64,
    draining: bool,
}

impl From<NodeStatus> for NodeView {
    fn from(s: NodeStatus) -> Self {
        Self {
            node_id: s.info.node_id,
            public_addr: s.info.public_addr,
            ws_url: s.info.ws_url,
            udp_addr: s.info.udp_addr,
            capacity: s.info.capacity,
            players: s.load.players,
            rooms: s.load.rooms,
            draining: s.draining,
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct NodeList {
    nodes: Vec<NodeView>,
}

/// `?reason=` of a kick or an end.
#[derive(Debug, Deserialize)]
pub(super) struct Reason {
    reason: Option<String>,
}

fn reason(query: Result<Query<Reason>, QueryRejection>, default: &str) -> Result<String, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let reason = q.reason.unwrap_or_else(|| default.to_owned());
    if reason.len() > MAX_REASON_LEN {
        return Err(ApiError::BadRequest(format!("reason must be at most {MAX_REASON_LEN} bytes")));
    }
    Ok(reason)
}

/// `GET /v1/admin/nodes`: the live sync nodes with their load.
pub(super) async fn nodes(State(state): State<AppState>, _: Admin) -> Json<NodeList> {
    Json(NodeList { nodes: state.nodes.nodes().into_iter().map(NodeView::from).collect() })
}

/// `POST /v1/admin/nodes/{node_id}/drain` and `.../undrain`: no new logins go to a drained node (even after it
/// registers again); its running games finish.
pub(super) async fn drain(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(node_id): Path<String>,
) -> Result<Json<NodeView>, ApiError> {
    set_draining(&state, &admin.uid, &node_id, true)
}

pub(super) async fn undrain(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(node_id): Path<String>,
) -> Result<Json<NodeView>, ApiError> {
    set_draining(&state, &admin.uid, &node_id, false)
}

fn set_draining(state: &AppState, by: &str, node_id: &str, on: bool) -> Result<Json<NodeView>, ApiError> {
    let status = state.nodes.set_draining(node_id, on).ok_or(ApiError::NodeNotFound)?;
    info!(node = %node_id, draining = on, by = %by, "node drain changed");
    Ok(Json(status.into()))
}

/// `GET /v1/admin/nodes/{node_id}/rooms`: the node's rooms with their members and frame counts (at most 1000, by
/// id; `truncated` when there are more).
pub(super) async fn rooms(
    State(state): State<AppState>,
    _: Admin,
    Path(node_id): Path<String>,
) -> Result<Json<RoomList>, ApiError> {
    let params = serde_json::to_value(ListRooms { limit: LISTED_ROOMS }).map_err(|e| ApiError::Internal(e.into()))?;
    let reply = call(&state, &node_id, LIST_ROOMS, params).await?;
    serde_json::from_value(reply)
        .map(Json)
        .map_err(|e| ApiError::NodeUnavailable(format!("bad list_rooms answer: {e}")))
}

/// `POST /v1/admin/nodes/{node_id}/rooms/{room_id}/end[?reason=...]`: a running game ends (`game_over` reason
/// `ended_by_admin`, results `{"reason": ...}`); a waiting room closes (`room_left` reason `room_closed`).
pub(super) async fn end_room(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path((node_id, room_id)): Path<(String, String)>,
    query: Result<Query<Reason>, QueryRejection>,
) -> Result<Json<RoomEnded>, ApiError> {
    let reason = reason(query, "ended by an admin")?;
    let params = serde_json::to_value(EndRoom { room_id: room_id.clone(), reason: reason.clone() })
        .map_err(|e| ApiError::Internal(e.into()))?;
    let reply = call(&state, &node_id, END_ROOM, params).await?;
    info!(node = %node_id, room = %room_id, reason = %reason, by = %admin.uid, "room ended");
    serde_json::from_value(reply).map(Json).map_err(|e| ApiError::NodeUnavailable(format!("bad end_room answer: {e}")))
}

#[derive(Debug, Serialize)]
pub(super) struct Kicked {
    uid: String,
    /// Sync nodes told.
    nodes: usize,
}

/// `POST /v1/admin/users/{uid}/kick[?reason=...]`: every node closes the player's connection with `kicked` and
/// takes it out of its room. Not a ban: the player may log in and play again.
pub(super) async fn kick(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(uid): Path<String>,
    query: Result<Query<Reason>, QueryRejection>,
) -> Result<Json<Kicked>, ApiError> {
    let reason = reason(query, "kicked by an admin")?;
    let user = state.store.user(&uid).await?.ok_or(ApiError::UserNotFound)?;
    let params = serde_json::to_value(KickPlayer { uid: user.uid.clone(), reason: reason.clone() })
        .map_err(|e| ApiError::Internal(e.into()))?;
    let nodes = state.nodes.notify_all(KICK_PLAYER, &params);
    info!(uid = %user.uid, username = %user.username, reason = %reason, by = %admin.uid, nodes, "kicked");
    Ok(Json(Kicked { uid: user.uid, nodes }))
}

/// Calls `method` on `node_id`, mapping its failures to API errors.
async fn call(
    state: &AppState,
    node_id: &str,
    method: &'static str,
    params: serde_json::Value,
) -> Result<serde_json::Value, ApiError> {
    match state.nodes.call(node_id, method, params).await {
        None => Err(ApiError::NodeNotFound),
        Some(Ok(reply)) => Ok(reply),
        Some(Err(e)) if e.code == codes::ROOM_NOT_FOUND => Err(ApiError::RoomNotFound),
        Some(Err(e)) => Err(ApiError::NodeUnavailable(e.to_string())),
    }
}
