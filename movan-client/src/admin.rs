//! The admin endpoints of the account server (`/v1/admin/...`, an admin's token), for `movan-admin` and tools.

use movan_protocol::rpc::{RoomEnded, RoomList};
use serde::{Deserialize, Serialize};

use crate::account::json_response;
use crate::{AccountClient, ClientError};

/// A sync node as `GET /v1/admin/nodes` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminNode {
    /// Its id.
    pub node_id: String,
    /// Where game clients connect over TCP.
    pub public_addr: String,
    /// WebSocket URL, or empty.
    pub ws_url: String,
    /// UDP address, or empty.
    pub udp_addr: String,
    /// Players it takes at most.
    pub capacity: u64,
    /// Players in rooms, at its last heartbeat.
    pub players: u64,
    /// Rooms open, at its last heartbeat.
    pub rooms: u64,
    /// Drained: no new logins go to it.
    pub draining: bool,
}

#[derive(Debug, Deserialize)]
struct NodeList {
    nodes: Vec<AdminNode>,
}

/// What `POST /v1/admin/users/{uid}/kick` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KickSent {
    /// The player.
    pub uid: String,
    /// Sync nodes told.
    pub nodes: usize,
}

impl AccountClient {
    fn admin_url(&self, segments: &[&str]) -> Result<reqwest::Url, ClientError> {
        let mut url = reqwest::Url::parse(&self.url("/v1/admin"))
            .map_err(|e| ClientError::Protocol(format!("base URL {:?}: {e}", self.base_url())))?;
        url.path_segments_mut()
            .map_err(|()| ClientError::Protocol(format!("base URL {:?} cannot hold a path", self.base_url())))?
            .extend(segments);
        Ok(url)
    }

    /// `GET /v1/admin/nodes`: the live sync nodes and their load.
    pub async fn admin_nodes(&self, admin_token: &str) -> Result<Vec<AdminNode>, ClientError> {
        let req = self.http.get(self.admin_url(&["nodes"])?).bearer_auth(admin_token);
        Ok(json_response::<NodeList>(req.send().await?).await?.nodes)
    }

    /// `POST /v1/admin/nodes/{node_id}/drain` (`on`) or `.../undrain`.
    pub async fn admin_drain(&self, admin_token: &str, node_id: &str, on: bool) -> Result<AdminNode, ClientError> {
        let action = if on { "drain" } else { "undrain" };
        let req = self.http.post(self.admin_url(&["nodes", node_id, action])?).bearer_auth(admin_token);
        json_response(req.send().await?).await
    }

    /// `GET /v1/admin/nodes/{node_id}/rooms`: the node's rooms with their members and frame counts.
    pub async fn admin_rooms(&self, admin_token: &str, node_id: &str) -> Result<RoomList, ClientError> {
        let req = self.http.get(self.admin_url(&["nodes", node_id, "rooms"])?).bearer_auth(admin_token);
        json_response(req.send().await?).await
    }

    /// `POST /v1/admin/nodes/{node_id}/rooms/{room_id}/end?reason=...`.
    pub async fn admin_end_room(
        &self,
        admin_token: &str,
        node_id: &str,
        room_id: &str,
        reason: &str,
    ) -> Result<RoomEnded, ClientError> {
        let url = self.admin_url(&["nodes", node_id, "rooms", room_id, "end"])?;
        let req = self.http.post(url).query(&[("reason", reason)]).bearer_auth(admin_token);
        json_response(req.send().await?).await
    }

    /// `POST /v1/admin/users/{uid}/kick?reason=...`.
    pub async fn admin_kick(&self, admin_token: &str, uid: &str, reason: &str) -> Result<KickSent, ClientError> {
        let url = self.admin_url(&["users", uid, "kick"])?;
        let req = self.http.post(url).query(&[("reason", reason)]).bearer_auth(admin_token);
        json_response(req.send().await?).await
    }
}
