//! The UDP transport: KCP sessions behind a stateless cookie exchange ([`movan_protocol::udp`] has the wire
//! format). [`endpoint`] is the sans-IO core of one listener; the tokio shell around it only moves datagrams and
//! time, and hands every session's messages to the same [`Connection`](crate::connection) rules as TCP and
//! WebSocket.

pub mod batch;
pub mod cookie;
pub mod endpoint;

pub use endpoint::{Endpoint, SendError, SessionEnd, Transmit, UdpConfig, UdpEvent, UdpStats};
