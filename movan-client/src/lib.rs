//! Rust client SDK for Movan, the lockstep frame-sync game server.
//!
//! - [`AccountClient`]: register, log in and refresh at the account server (HTTP/JSON); a login returns a
//!   [`Session`] with the access token, the session key and the sync server's address.
//! - [`SyncClient`]: one TCP connection to the sync server, encrypted when the server asks for it
//!   (`docs/encryption.md`): [`SyncClient::connect_session`] authenticates and completes the handshake, then enter a
//!   room, get ready, send actions, receive [`ServerEvent`]s, and [`SyncClient::reload`] missed frames.
//!   [`SyncClient::split`] gives a [`SyncSender`] and a [`SyncEvents`] for separate tasks.
//! - [`GameClient`]: a sync connection that reconnects on its own after a drop, reloads what it missed and yields
//!   every frame exactly once, in order ([`GameEvent`]); pings while idle. Opt out with [`ReconnectPolicy::disabled`].
//! - [`FrameLog`]: the frames of one game, checked to be consecutive from 0 and identical when seen twice.
//! - [`bot`]: the load generator behind the `movan-bot` binary, callable from tests.
//!
//! ```no_run
//! # async fn demo() -> Result<(), movan_client::ClientError> {
//! use std::time::Duration;
//! use movan_client::{AccountClient, ServerEvent, SyncClient};
//!
//! let session = AccountClient::new("http://127.0.0.1:2026").register_or_login("alice", "secret-pass").await?;
//! let mut sync = SyncClient::connect_session(&session).await?;
//! sync.enter_room(Some("lobby-1")).await?;
//! sync.prepare().await?;
//! sync.wait_for(|e| matches!(e, ServerEvent::GameStart(_)), Duration::from_secs(60)).await?;
//! sync.send_action(&serde_json::json!({"move": [1, 0]})).await?;
//! while let Some(event) = sync.next_event().await {
//!     if let ServerEvent::Frame(frame) = event {
//!         println!("frame {} with {} actions", frame.frame_count, frame.actions.len());
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod account;
pub mod admin;
pub mod bot;
pub mod error;
pub mod game;
pub mod game_client;
pub mod sync;
pub mod udp;
pub mod ws;

pub use account::{AccountClient, MatchPage, Me, Session};
pub use admin::{AdminNode, KickSent};
pub use error::ClientError;
pub use game::{FrameLog, FrameLogError, Pushed};
pub use game_client::{GameClient, GameEvent, GameSender, ReconnectPolicy};
pub use movan_protocol::{EndReason, MatchRecord};
pub use sync::{Encryption, HANDSHAKE_TIMEOUT, SyncClient, SyncEvents, SyncSender, Transport, unix_now};

/// The wire protocol crate, for anything not re-exported here.
pub use movan_protocol as protocol;
pub use movan_protocol::ErrorCode;
pub use movan_protocol::crypto::SessionKey;
pub use movan_protocol::server::{
    ErrorBody, Frame, FrameAction, GameOver, GameStart, MemberState, Pong, ReloadChunk, RoomState, RoomStatus,
    ServerEvent,
};
