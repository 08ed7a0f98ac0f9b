//! The UDP transport of the client: the cookie exchange and KCP ([`session`], sans-IO) and the task that drives
//! them over a socket ([`link`]). [`crate::SyncClient`] uses it for [`crate::Transport::Udp`].

pub mod link;
pub mod session;

pub use link::{UdpMessages, UdpSender, connect};
pub use session::{KEEPALIVE, UdpSession, UdpSessionError};
