//! The Movan wire protocol, shared by the sync server and its clients so the two cannot drift.
//!
//! - [`codec`]: framing — a 4-byte big-endian body length, then the body.
//! - [`client`]: messages a game client sends, parsed once at the edge into a typed [`client::Request`].
//! - [`server`]: messages the server sends (`room_state`, `sync_frame`, ...), and the shared frame encoder.
//! - [`error`]: the error codes carried by `error` messages.
//! - [`claims`]: the JWT claims the account server signs and the sync server verifies.
//! - [`crypto`]: encrypted sessions — per-connection keys, the handshake, and sealing/opening frames (no IO).
//! - [`matches`]: why a game ended ([`EndReason`]) and the stored match record.
//! - [`replay`]: the replay file format (version 1): writing a game's frames in zstd blocks, reading and verifying.
//! - [`rpc`]: the contract between the account server and the sync servers (methods, params, replies, heartbeat
//!   load, error codes), carried by `movan-rpc`.
//! - [`sections`]: the `[token]` and `[rpc]` config sections both services read; [`config`] (feature `config`)
//!   loads sections from the file.
//! - [`udp`]: the UDP transport's cookie exchange, KCP datagram checks and KCP tuning.
//!
//! `docs/protocol.md` is the human-readable contract; tests in this crate check its examples.

pub mod checksum;
pub mod claims;
pub mod client;
pub mod codec;
#[cfg(feature = "config")]
pub mod config;
pub mod crypto;
pub mod error;
pub mod matches;
#[cfg(feature = "config")]
pub mod process;
pub mod replay;
pub mod rpc;
pub mod sections;
pub mod server;
pub mod udp;

pub use claims::TokenClaims;
pub use client::{ClientMessage, OutgoingMessage, Request, parse_client_message};
pub use codec::{FrameCodec, FrameError};
pub use error::{ErrorCode, ProtocolError};
pub use matches::{EndReason, MatchRecord};

/// Seconds since the Unix epoch, as carried in `timestamp` fields.
pub type UnixSeconds = f64;
