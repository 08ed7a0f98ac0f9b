//! Movan sync server: rooms that tick lockstep frames to their players.
//!
//! - [`engine`]: the sans-IO core (rooms, ordering, frames, history, reload), driven by `now`.
//! - [`room`]: the [`Room`] trait, the extension point for game rules.
//! - [`connection`]: the sans-IO rules of one client connection (authentication, handshake, sealing, rate limit,
//!   timeouts, close reasons), for any transport.
//! - [`server`]: the tokio shell (TCP, WebSocket and UDP) that moves message bodies and time for both cores.
//! - [`udp`]: the UDP transport's sans-IO endpoint (KCP sessions behind a stateless cookie).
//! - [`health`]: the HTTP probes (`/healthz`, `/readyz`) on `sync.metrics_addr`.
//! - [`auth`]: access-token verification.
//! - [`config`]: the `[sync]` and `[token]` config sections.
//! - [`limits`] and [`unauthenticated`]: connection limits, rate limits, and the cap on connections that have not
//!   authenticated yet.

pub mod auth;
pub mod cli;
pub mod config;
pub mod connection;
pub mod engine;
pub mod health;
pub mod history;
pub mod keys;
pub mod limits;
pub mod link;
pub mod metrics;
pub mod reports;
pub mod revocation;
pub mod room;
pub mod server;
pub mod udp;
pub mod unauthenticated;

pub use engine::{ConnId, Engine, EngineConfig, Output};
pub use room::{
    ActionVerdict, DefaultRoom, Desync, DesyncVerdict, FrameOutcome, HashGroup, MemberInfo, OrderedAction, Room,
    RoomFactory, RoomInfo, RoomsOf, rooms_of,
};
pub use server::Server;
