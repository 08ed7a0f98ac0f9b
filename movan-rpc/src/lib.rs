#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - Sans-IO cores, driven with an explicit `now` and tested with fake time: [`heartbeat`], [`backoff`],
//!   [`call_table`], [`handshake`]; and the typed messages in [`wire`].
//! - The tokio shell that drives them: [`RpcServer`] (accept loop, one task per connection) and [`RpcClient`]
//!   (reconnect loop), both serving [`Handlers`] and handing out [`Peer`] handles to call the other side.

pub mod backoff;
pub mod call_table;
mod client;
mod config;
mod connection;
mod error;
mod handlers;
pub mod handshake;
pub mod heartbeat;
mod peer;
mod server;
pub mod wire;

pub use client::{ConnectionState, RpcClient};
pub use config::{ConfigError, RpcConfig};
pub use error::{CallError, HandlerError, codes};
pub use handlers::Handlers;
pub use peer::{DisconnectReason, Peer, PeerSet};
pub use server::RpcServer;

/// The current time for the sans-IO cores, from tokio's clock (so `tokio::time::pause` applies).
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
