//! Error codes carried by the server's `error` message: `{"code": "...", "message": "...", "proto": "..."}`.

use serde::{Deserialize, Serialize};

/// Machine-readable error code. Every code is listed, with when it is sent, in `docs/protocol.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A frame body longer than the maximum frame size; the connection is then closed.
    FrameTooLarge,
    /// The body is not valid UTF-8 JSON.
    BadJson,
    /// Valid JSON, but a field is missing, has the wrong type or an invalid value.
    BadMessage,
    /// `extra_data.proto` names no known message.
    UnknownProto,
    /// The first message of a connection carried no token.
    Unauthenticated,
    /// The token is malformed, badly signed, or has the wrong issuer or audience. On the first message the
    /// connection is then closed; on a later message only that message is dropped.
    BadToken,
    /// The token has expired (closes the connection on the first message). Refresh it at the account server.
    TokenExpired,
    /// `uid` (or a later `token`) does not match the identity the connection is bound to.
    UidMismatch,
    /// The request needs room membership and the player is in no room.
    NotInRoom,
    /// `room_enter` while already in a room.
    AlreadyInRoom,
    /// The room has no free seat (or its rules refused the player).
    RoomFull,
    /// The room's game has already started (`room_enter` into it, or `room_prepare` during it).
    RoomInGame,
    /// The server already runs `max_rooms` rooms.
    TooManyRooms,
    /// `sync_action` or `sync_request_reload_frames` while the room is not playing.
    GameNotRunning,
    /// The room's rules rejected the action.
    ActionRejected,
    /// `start_frame` is past the newest frame.
    BadFrameRange,
    /// `start_frame` is older than the oldest frame still in history.
    HistoryExpired,
    /// The player logged in elsewhere and this connection was replaced.
    Replaced,
    /// The token's session was logged out; the connection is then closed. Log in again.
    SessionRevoked,
    /// The player is banned; the connection is then closed.
    Banned,
    /// A configured limit was exceeded.
    LimitExceeded,
    /// The connection sent more messages than `sync.max_messages_per_sec` allows (after a burst of
    /// `sync.message_burst`); the connection is then closed.
    RateLimited,
    /// The server already holds `sync.max_connections` connections, or `sync.max_connections_per_ip` from this
    /// address; the connection is then closed.
    TooManyConnections,
    /// No first message within `sync.first_frame_timeout_secs` of connecting, or nothing at all for
    /// `sync.idle_timeout_secs`; the connection is then closed.
    Timeout,
    /// The server is shutting down; the connection is then closed.
    ShuttingDown,
    /// A service the server depends on (the account server) cannot be reached; the connection is then closed. Try
    /// again shortly.
    Unavailable,
    /// An unexpected server-side failure.
    Internal,
    /// `room_spectate` names a room that does not exist.
    RoomNotFound,
    /// An admin took the player out (`POST /v1/admin/users/{uid}/kick`); the connection is then closed. Logging in
    /// again is allowed: a kick is not a ban.
    Kicked,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FrameTooLarge => "frame_too_large",
            Self::BadJson => "bad_json",
            Self::BadMessage => "bad_message",
            Self::UnknownProto => "unknown_proto",
            Self::Unauthenticated => "unauthenticated",
            Self::BadToken => "bad_token",
            Self::TokenExpired => "token_expired",
            Self::UidMismatch => "uid_mismatch",
            Self::NotInRoom => "not_in_room",
            Self::AlreadyInRoom => "already_in_room",
            Self::RoomFull => "room_full",
            Self::RoomInGame => "room_in_game",
            Self::TooManyRooms => "too_many_rooms",
            Self::GameNotRunning => "game_not_running",
            Self::ActionRejected => "action_rejected",
            Self::BadFrameRange => "bad_frame_range",
            Self::HistoryExpired => "history_expired",
            Self::Replaced => "replaced",
            Self::SessionRevoked => "session_revoked",
            Self::Banned => "banned",
            Self::LimitExceeded => "limit_exceeded",
            Self::RateLimited => "rate_limited",
            Self::TooManyConnections => "too_many_connections",
            Self::Timeout => "timeout",
            Self::ShuttingDown => "shutting_down",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::RoomNotFound => "room_not_found",
            Self::Kicked => "kicked",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error to report to a client: becomes one `error` message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProtocolError {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable reason.
    pub message: String,
    /// The proto of the request that failed, when known.
    pub proto: Option<String>,
}

impl ProtocolError {
    /// An error not tied to a request proto.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), proto: None }
    }

    /// Attaches the proto of the failing request.
    pub fn with_proto(mut self, proto: impl Into<String>) -> Self {
        self.proto = Some(proto.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_matches_serde() {
        for code in [
            ErrorCode::FrameTooLarge,
            ErrorCode::BadJson,
            ErrorCode::UnknownProto,
            ErrorCode::HistoryExpired,
            ErrorCode::LimitExceeded,
            ErrorCode::RateLimited,
            ErrorCode::TooManyConnections,
            ErrorCode::Timeout,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
