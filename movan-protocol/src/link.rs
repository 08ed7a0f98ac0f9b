//! Messages of the link between the account server and the sync servers (carried by `movan-rpc`), shared by both
//! sides so they cannot drift. `docs/rpc.md` describes them.

use serde::{Deserialize, Serialize};

/// Call, sync → account: a sync node registers (again after every reconnection). Params [`RegisterNode`].
pub const REGISTER_NODE: &str = "register_node";
/// Call, sync → account: a finished game. Params [`MatchReport`].
pub const REPORT_MATCH: &str = "report_match";
/// Call, sync → account: the key of a connecting player's session. Params [`SessionKeyRequest`], result
/// [`SessionKeyGrant`].
pub const SESSION_KEY: &str = "session_key";
/// Notification, account → sync: a session was logged out. Params [`SessionRevoked`].
pub const SESSION_REVOKED: &str = "session_revoked";
/// Notification, account → sync: a player was banned. Params [`UserBanned`].
pub const USER_BANNED: &str = "user_banned";

/// What a sync node tells about itself when it registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterNode {
    /// The node's id, e.g. `sync-1`; also its RPC identity.
    pub node_id: String,
    /// Where game clients connect (`host:port`), handed out at login.
    pub public_addr: String,
    /// Players the node takes at most; 0 takes none (draining).
    pub capacity: u64,
    /// Where browser clients connect over WebSocket (`ws://host:port/ws`), handed out at login; empty when the node
    /// has no WebSocket listener.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ws_url: String,
}

/// A finished game.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchReport {
    /// Unique id of the game; a second report with the same id is ignored.
    pub match_id: String,
    /// The room it was played in.
    pub room_id: String,
    /// Uids of everyone who started the game, in join order.
    pub players: Vec<String>,
    /// Frames broadcast.
    pub frame_count: u64,
    /// Wall-clock length, seconds.
    pub duration_secs: f64,
    /// Why it ended: `all_left`, `max_duration`, `ended_by_room` or `shutdown`.
    pub end_reason: String,
    /// Per-player results set by the room, if any.
    #[serde(default)]
    pub results: Option<serde_json::Value>,
    /// Unix time of the start, seconds.
    pub started_at: f64,
    /// Unix time of the end, seconds.
    pub ended_at: f64,
}

/// Which session key a sync node asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionKeyRequest {
    /// The session, from the `sid` claim of the player's access token.
    pub sid: String,
    /// The player, from the `sub` claim; must be the session's user.
    pub uid: String,
}

/// The answer to [`SESSION_KEY`]. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionKeyGrant {
    /// The session key, standard base64 with padding (32 bytes).
    pub session_key: String,
    /// When the session ends unless refreshed, seconds since the Unix epoch.
    pub expires_at: u64,
}

impl std::fmt::Debug for SessionKeyGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeyGrant")
            .field("session_key", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A logged-out session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRevoked {
    /// The player.
    pub uid: String,
    /// The session.
    pub sid: String,
}

/// A banned player.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserBanned {
    /// The player.
    pub uid: String,
}
