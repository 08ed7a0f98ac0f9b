//! The RPC contract between the account server and the sync servers (carried by `movan-rpc`): method names, params,
//! replies, the heartbeat load and error codes, shared by both sides so they cannot drift. `docs/rpc.md` describes
//! them.

use serde::{Deserialize, Serialize};

use crate::matches::EndReason;

/// Call, sync → account: a sync node registers (again after every reconnection). Params [`RegisterNode`], result
/// [`Registered`].
pub const REGISTER_NODE: &str = "register_node";
/// Call, sync → account: a finished game. Params [`MatchReport`], result [`Stored`].
pub const REPORT_MATCH: &str = "report_match";
/// Call, sync → account: a piece of a finished game's replay, after its match was reported. Params
/// [`ReplayChunk`], result [`ChunkStored`].
pub const REPLAY_CHUNK: &str = "replay_chunk";
/// Bytes of replay a [`ReplayChunk`] carries at most (before base64).
pub const REPLAY_CHUNK_BYTES: usize = 256 * 1024;
/// Call, sync → account: the key of a connecting player's session. Params [`SessionKeyRequest`], result
/// [`SessionKeyGrant`].
pub const SESSION_KEY: &str = "session_key";
/// Call, account → sync: the node's rooms, for an admin. Params [`ListRooms`], result [`RoomList`].
pub const LIST_ROOMS: &str = "list_rooms";
/// Call, account → sync: end a room's game (or close a waiting room), for an admin. Params [`EndRoom`], result
/// [`RoomEnded`]; code [`codes::ROOM_NOT_FOUND`] when the node has no such room.
pub const END_ROOM: &str = "end_room";
/// Notification, account → sync: an admin kicked a player: close its connection with `kicked` and take it out of
/// its room. Params [`KickPlayer`].
pub const KICK_PLAYER: &str = "kick_player";
/// Notification, account → sync: a session was logged out. Params [`SessionRevoked`].
pub const SESSION_REVOKED: &str = "session_revoked";
/// Notification, account → sync: a player was banned. Params [`UserBanned`].
pub const USER_BANNED: &str = "user_banned";

/// The error codes of the account server's handlers (the `code` of an error reply). The sync server decides by code,
/// never by message text.
pub mod codes {
    /// `session_key`: no live session of this user with a key (missing, revoked, ended, another user's, from
    /// before encrypted sessions, or the user is banned). The player is told `session_revoked`.
    pub const UNKNOWN_SESSION: &str = "unknown_session";
    /// The account server's store failed; asking again later may succeed.
    pub const STORE_FAILED: &str = "store_failed";
    /// `register_node`: the params name another node than the one that authenticated.
    pub const WRONG_NODE_ID: &str = "wrong_node_id";
    /// `register_node`: `public_addr` is not `host:port`.
    pub const BAD_ADDRESS: &str = "bad_address";
    /// `report_match`: a field is out of range (the message names it); reporting it again fails the same way.
    pub const INVALID_REPORT: &str = "invalid_report";
    /// `replay_chunk`: no match with this id was reported by this node (report it first).
    pub const UNKNOWN_MATCH: &str = "unknown_match";
    /// `replay_chunk`: the replay is larger than the account server keeps (`account.replay_max_bytes`), or the chunk
    /// larger than a chunk may be; sending it again fails the same way.
    pub const REPLAY_TOO_LARGE: &str = "replay_too_large";
    /// `replay_chunk`: the offset is not where the upload stands (a chunk was lost, or the account server restarted
    /// or dropped the upload); start again at offset 0.
    pub const REPLAY_OUT_OF_ORDER: &str = "replay_out_of_order";
    /// `end_room`: the node has no room with this id.
    pub const ROOM_NOT_FOUND: &str = "room_not_found";
    /// `replay_chunk`: the account server holds as many unfinished uploads as it may
    /// (`account.replay_upload_max_bytes`); try again later.
    pub const UPLOADS_FULL: &str = "uploads_full";
}

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
    /// Where game clients connect over UDP (KCP, `host:port`), handed out at login; empty when the node has no UDP
    /// listener.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub udp_addr: String,
}

/// The answer to [`REGISTER_NODE`]: with the revocations and bans a node that just (re)started or reconnected may
/// have missed, so that tokens logged out or banned before it registered are refused there too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// Always `true`; a refused registration is an error reply.
    pub accepted: bool,
    /// Sessions logged out within the lifetime of an access token, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<SessionRevoked>,
    /// Players banned within the lifetime of an access token, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub banned: Vec<UserBanned>,
}

/// The answer to [`REPORT_MATCH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// Always `true`: the match is durable (now or from an earlier report).
    pub stored: bool,
}

/// A sync node's load, the payload of its heartbeat pings; the account server sends a login to the least loaded
/// node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLoad {
    /// Players in rooms.
    pub players: u64,
    /// Rooms open.
    pub rooms: u64,
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
    /// Why it ended.
    pub end_reason: EndReason,
    /// Per-player results set by the room, if any.
    #[serde(default)]
    pub results: Option<serde_json::Value>,
    /// Unix time of the start, seconds.
    pub started_at: f64,
    /// Unix time of the end, seconds.
    pub ended_at: f64,
    /// The first frame whose checksums disagreed (`desync`), if any. Absent in reports from older nodes.
    #[serde(default)]
    pub first_desync_frame: Option<u64>,
}

/// A piece of a replay file: bytes `offset..offset + len(data)` of `total_len`. Chunks go in order from offset 0;
/// a chunk at offset 0 starts the upload over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayChunk {
    /// The match the replay is of (already reported by the same node).
    pub match_id: String,
    /// Where `data` starts in the file.
    pub offset: u64,
    /// The whole file's length.
    pub total_len: u64,
    /// The bytes, standard base64 with padding; at most [`REPLAY_CHUNK_BYTES`] before encoding.
    pub data: String,
}

/// The answer to [`REPLAY_CHUNK`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkStored {
    /// Bytes of the file the account server holds now.
    pub received: u64,
    /// True once the whole file is durable (after the last chunk, or when it was stored before).
    pub stored: bool,
}

/// What [`LIST_ROOMS`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRooms {
    /// Rooms listed at most (the reply must fit one RPC frame); `truncated` says when there were more.
    pub limit: u32,
}

/// One member of a room, as [`LIST_ROOMS`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomMemberSummary {
    /// The player.
    pub uid: String,
    /// Ready (`room_prepare`).
    pub ready: bool,
    /// Connected (false during its reconnect grace).
    pub connected: bool,
}

/// One room of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomSummary {
    /// The room.
    pub room_id: String,
    /// `waiting` or `playing`.
    pub state: String,
    /// The members, in join order.
    pub members: Vec<RoomMemberSummary>,
    /// Spectators watching.
    pub spectators: u64,
    /// Frames broadcast so far (0 while waiting).
    pub frame_count: u64,
    /// When the game started, Unix seconds; `None` while waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<f64>,
}

/// The answer to [`LIST_ROOMS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomList {
    /// Rooms, by id.
    pub rooms: Vec<RoomSummary>,
    /// The node has more rooms than listed.
    pub truncated: bool,
}

/// What [`END_ROOM`] ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndRoom {
    /// The room.
    pub room_id: String,
    /// Why, for the players (`game_over.results.reason`, or the `room_left` message of a waiting room).
    pub reason: String,
}

/// The answer to [`END_ROOM`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomEnded {
    /// True when a running game ended (`game_over` reason `ended_by_admin`); false when a waiting room was closed
    /// (`room_left` reason `room_closed`).
    pub game_ended: bool,
}

/// Whom [`KICK_PLAYER`] kicks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KickPlayer {
    /// The player.
    pub uid: String,
    /// Why, for the player (the `kicked` error's message).
    pub reason: String,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn json(value: &impl Serialize) -> String {
        serde_json::to_string(value).unwrap()
    }

    #[test]
    fn replies_and_load_keep_their_wire_shape() {
        assert_eq!(json(&Registered { accepted: true, ..Registered::default() }), r#"{"accepted":true}"#);
        let replay = Registered {
            accepted: true,
            revoked: vec![SessionRevoked { uid: "1001".into(), sid: "s1".into() }],
            banned: vec![UserBanned { uid: "1002".into() }],
        };
        let text = r#"{"accepted":true,"revoked":[{"uid":"1001","sid":"s1"}],"banned":[{"uid":"1002"}]}"#;
        assert_eq!(json(&replay), text);
        assert_eq!(serde_json::from_str::<Registered>(text).unwrap(), replay);
        assert_eq!(json(&Stored { stored: true }), r#"{"stored":true}"#);
        assert_eq!(json(&NodeLoad { players: 12, rooms: 3 }), r#"{"players":12,"rooms":3}"#);
        let load: NodeLoad = serde_json::from_str(r#"{"players":1,"rooms":2}"#).unwrap();
        assert_eq!(load, NodeLoad { players: 1, rooms: 2 });
    }
}
