//! The async driver of a client [`UdpSession`]: one UDP socket, one task moving datagrams, messages and time.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use movan_protocol::codec::FrameError;
use movan_protocol::udp::KcpTuning;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant as TokioInstant;

use super::session::UdpSession;
use crate::error::ClientError;

/// Messages buffered between the driver and the connection's reader.
const INCOMING: usize = 1024;
/// Messages buffered from the senders to the driver.
const OUTGOING: usize = 1024;
/// Longest wait for the session set-up (the cookie exchange).
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The sending side of a UDP session. Cheap to clone.
#[derive(Debug, Clone)]
pub struct UdpSender {
    commands: mpsc::Sender<Command>,
}

#[derive(Debug)]
enum Command {
    Send(Bytes),
    Rebind(oneshot::Sender<std::io::Result<SocketAddr>>),
    Close,
}

/// The message bodies a UDP session receives, as a TCP connection's frame stream gives them.
pub type UdpMessages = BoxStream<'static, Result<Bytes, FrameError>>;

impl UdpSender {
    /// Queues one message body (already sealed when the connection is).
    pub async fn send(&self, body: Bytes) -> Result<(), ClientError> {
        self.commands.send(Command::Send(body)).await.map_err(|_| ClientError::Closed)
    }

    /// Moves the session to a new local socket (a new port), as a phone changing networks does; the server follows
    /// once a sealed message from the new address opens, so send one (a `ping`) next. Returns the new address.
    pub async fn rebind(&self) -> Result<SocketAddr, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Rebind(tx)).await.map_err(|_| ClientError::Closed)?;
        Ok(rx.await.map_err(|_| ClientError::Closed)??)
    }

    /// Ends the session: the driver stops (the server notices by its idle timeout, or the connection's close).
    pub async fn close(&self) {
        let _ = self.commands.send(Command::Close).await;
    }
}

/// Opens a UDP session with the server at `addr` (`host:port`): the cookie exchange, then KCP with `tuning`.
pub async fn connect(addr: &str, tuning: KcpTuning) -> Result<(UdpSender, UdpMessages), ClientError> {
    let server = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| ClientError::Protocol(format!("{addr} resolves to no address")))?;
    let socket = bind_to(server).await?;
    let mut session = UdpSession::new(tuning, rand::random(), now());
    let deadline = TokioInstant::now() + SETUP_TIMEOUT;
    let mut buf = vec![0u8; tuning.mtu + 1];
    while session.conv().is_none() {
        flush(&socket, &mut session).await;
        if let Some(e) = session.error() {
            return Err(ClientError::Protocol(e.to_string()));
        }
        let wake = session.poll_timeout().map_or(deadline, |t| TokioInstant::from_std(t).min(deadline));
        tokio::select! {
            r = socket.recv(&mut buf) => {
                if let Ok(n) = r {
                    session.handle_datagram(&buf[..n], now());
                }
            }
            () = tokio::time::sleep_until(wake) => {
                if TokioInstant::now() >= deadline {
                    return Err(ClientError::Timeout);
                }
                session.handle_timeout(now());
            }
        }
    }
    let (commands, commands_rx) = mpsc::channel(OUTGOING);
    let (incoming, incoming_rx) = mpsc::channel(INCOMING);
    tokio::spawn(drive(socket, server, session, commands_rx, incoming));
    let messages = futures::stream::unfold(incoming_rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    Ok((UdpSender { commands }, messages.boxed()))
}

async fn bind_to(server: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: SocketAddr = if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    Ok(socket)
}

fn now() -> std::time::Instant {
    TokioInstant::now().into_std()
}

async fn flush(socket: &UdpSocket, session: &mut UdpSession) {
    while let Some(d) = session.poll_transmit() {
        // A lost datagram is KCP's business; an unreachable server shows as a dead link.
        let _ = socket.send(&d).await;
    }
}

/// Runs the session until it fails, the senders close it, or the reader is gone.
async fn drive(
    mut socket: UdpSocket,
    server: SocketAddr,
    mut session: UdpSession,
    mut commands: mpsc::Receiver<Command>,
    incoming: mpsc::Sender<Result<Bytes, FrameError>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let wake = session.poll_timeout().map(TokioInstant::from_std);
        tokio::select! {
            r = socket.recv(&mut buf) => {
                if let Ok(n) = r {
                    session.handle_datagram(&buf[..n], now());
                }
            }
            command = commands.recv() => match command {
                Some(Command::Send(body)) => {
                    if let Err(e) = session.send(&body, now()) {
                        let _ = incoming.send(Err(FrameError::Io(std::io::Error::other(e)))).await;
                        return;
                    }
                }
                Some(Command::Rebind(reply)) => match bind_to(server).await {
                    Ok(fresh) => {
                        socket = fresh;
                        let _ = reply.send(socket.local_addr());
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                },
                Some(Command::Close) | None => return,
            },
            () = sleep_until(wake) => session.handle_timeout(now()),
        }
        flush(&socket, &mut session).await;
        while let Some(message) = session.poll_message() {
            if incoming.send(Ok(message)).await.is_err() {
                return;
            }
        }
        if let Some(e) = session.error() {
            let e = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, e.to_string());
            let _ = incoming.send(Err(FrameError::Io(e))).await;
            return;
        }
    }
}

async fn sleep_until(at: Option<TokioInstant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
