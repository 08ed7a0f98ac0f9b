//! A connection's writer: drains its send queue into the socket, sealing each message body through the connection
//! and framing it for the transport, batching what is ready into one flush.

use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::SinkExt;
use futures::stream::SplitSink;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::http_head::Rewind;
use super::udp::UdpOut;
use super::{SharedConnection, lock};
use crate::history::Reload;
use crate::limits::{ByteBudget, QueuedBytes};
use crate::metrics;

/// A write that makes no progress for this long means the peer stopped reading: the connection is dropped.
const WRITE_STALL: Duration = Duration::from_secs(10);

/// One entry of a connection's send queue.
pub(super) enum Outgoing {
    /// A message body from the connection itself (the handshake): written as it is, never sealed.
    Plain(Bytes),
    /// A message body from the engine, shared with other recipients: sealed when encryption is on.
    Message(Bytes),
    /// The messages of a reload, encoded as the writer gets to them.
    Reload(Reload),
    /// Flush and close.
    Close,
}

/// Drains `queue` into `out` until it closes, an `Outgoing::Close`, a failed write or `cancel`.
pub(super) async fn run(
    mut queue: tokio::sync::mpsc::Receiver<Outgoing>,
    out: Transport,
    conn: SharedConnection,
    cancel: CancellationToken,
    (queued, reload_bytes_per_sec): (QueuedBytes, u64),
) {
    let reload_budget = ByteBudget::new(reload_bytes_per_sec, super::now());
    let _open = OpenConnection::count(out.kind());
    let mut out = Writer { out, conn, scratch: BytesMut::new(), reload_budget, queued };
    let work = async {
        while let Some(first) = queue.recv().await {
            let mut item = Some(first);
            while let Some(next) = item.take() {
                if !out.write_item(next).await? {
                    stall_guard(out.out.flush()).await?;
                    return Ok::<(), std::io::Error>(());
                }
                item = queue.try_recv().ok();
            }
            stall_guard(out.out.flush()).await?;
        }
        Ok(())
    };
    tokio::select! {
        () = cancel.cancelled() => {}
        result = work => {
            if let Err(e) = result {
                debug!(error = %e, "write failed");
            }
        }
    }
    let _ = out.out.shutdown().await;
    cancel.cancel();
}

/// Where a connection's message bodies go: a buffered TCP stream (each after its 4-byte length prefix), or
/// WebSocket binary messages (the message boundary is the framing).
pub(super) enum Transport {
    Tcp(TcpOut),
    Ws(Box<SplitSink<WebSocketStream<Rewind>, Message>>),
    /// One KCP message per body, through the UDP endpoint.
    Udp(UdpOut),
}

impl Transport {
    /// The `transport` label of the metrics.
    fn kind(&self) -> metrics::Transport {
        match self {
            Self::Tcp(_) => metrics::Transport::Tcp,
            Self::Ws(_) => metrics::Transport::Ws,
            Self::Udp(_) => metrics::Transport::Udp,
        }
    }

    /// Queues one message body that the caller may share.
    async fn send_shared(&mut self, body: &Bytes) -> std::io::Result<()> {
        count_sent(self.kind(), body.len());
        match self {
            Self::Tcp(w) => w.write_prefixed(body).await,
            Self::Ws(sink) => sink.feed(Message::Binary(body.clone())).await.map_err(std::io::Error::other),
            Self::Udp(out) => out.send(body.clone()).await,
        }
    }

    /// Queues one message body borrowed from a scratch buffer.
    async fn send_slice(&mut self, body: &[u8]) -> std::io::Result<()> {
        count_sent(self.kind(), body.len());
        match self {
            Self::Tcp(w) => w.write_prefixed(body).await,
            Self::Ws(sink) => {
                sink.feed(Message::Binary(Bytes::copy_from_slice(body))).await.map_err(std::io::Error::other)
            }
            Self::Udp(out) => out.send(Bytes::copy_from_slice(body)).await,
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Tcp(w) => w.flush().await,
            Self::Ws(sink) => sink.flush().await.map_err(std::io::Error::other),
            // The endpoint sends each turn of its loop.
            Self::Udp(_) => Ok(()),
        }
    }

    async fn shutdown(&mut self) -> std::io::Result<()> {
        match self {
            Self::Tcp(w) => w.shutdown().await,
            Self::Ws(sink) => sink.close().await.map_err(std::io::Error::other),
            Self::Udp(out) => {
                out.close().await;
                Ok(())
            }
        }
    }
}

/// One connection in `movan_sync_connections` while it lives.
struct OpenConnection(metrics::Transport);

impl OpenConnection {
    fn count(kind: metrics::Transport) -> Self {
        metrics::get().connection(kind, 1.0);
        Self(kind)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::get().connection(self.0, -1.0);
    }
}

/// Counts a body of `len` bytes (and TCP's 4-byte length prefix) in `movan_sync_sent_bytes_total`.
fn count_sent(kind: metrics::Transport, len: usize) {
    let prefix = if kind == metrics::Transport::Tcp { 4 } else { 0 };
    metrics::get().sent(kind, len + prefix);
}

/// A TCP connection's write side with its batching buffer. The buffer is allocated on the first write, not when the
/// connection opens: a connection that never authenticates costs no write buffer, and after a flush it keeps at most
/// `max` bytes of capacity.
pub(super) struct TcpOut {
    half: OwnedWriteHalf,
    buf: Vec<u8>,
    max: usize,
}

impl TcpOut {
    /// Batches up to `max` bytes per write.
    pub(super) fn new(half: OwnedWriteHalf, max: usize) -> Self {
        Self { half, buf: Vec::new(), max }
    }

    /// TCP framing: the body's length as 4 big-endian bytes, then the body; written out once `max` bytes wait.
    async fn write_prefixed(&mut self, body: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(body.len()).map_err(|_| std::io::Error::other("message over 4 GiB"))?;
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(body);
        if self.buf.len() >= self.max {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.half.write_all(&self.buf).await?;
            self.buf.clear();
            self.buf.shrink_to(self.max);
        }
        Ok(())
    }

    async fn shutdown(&mut self) -> std::io::Result<()> {
        self.flush().await?;
        self.half.shutdown().await
    }
}

/// A connection's write side.
struct Writer {
    out: Transport,
    conn: SharedConnection,
    scratch: BytesMut,
    /// `sync.reload_bytes_per_sec`: reloads are bulk, paced so that sealing them never crowds out live frames.
    reload_budget: ByteBudget,
    /// The bytes of queued messages, counted by the engine task: each written message is taken off.
    queued: QueuedBytes,
}

impl Writer {
    /// Writes one queue entry, each write bounded by [`WRITE_STALL`]; false means "close now".
    async fn write_item(&mut self, item: Outgoing) -> std::io::Result<bool> {
        match item {
            Outgoing::Plain(body) => stall_guard(self.out.send_shared(&body)).await?,
            Outgoing::Message(body) => {
                self.queued.remove(body.len());
                self.write_message(&body).await?;
            }
            Outgoing::Reload(mut reload) => {
                if let Transport::Udp(out) = &self.out {
                    reload.cap_chunk_bytes(out.reload_chunk_bytes());
                }
                for chunk in reload {
                    let wait = self.reload_budget.spend(chunk.len(), super::now());
                    if !wait.is_zero() {
                        // What is written so far goes out while the reload waits for its budget.
                        stall_guard(self.out.flush()).await?;
                        tokio::time::sleep(wait).await;
                    }
                    metrics::get().reload_bytes.increment(chunk.len() as u64);
                    self.write_message(&chunk).await?;
                    // Each chunk is up to a MiB to encode and seal: let the engine and other connections run between.
                    tokio::task::yield_now().await;
                }
            }
            Outgoing::Close => return Ok(false),
        }
        Ok(true)
    }

    /// Writes an engine message, sealed by the connection when encryption is on.
    async fn write_message(&mut self, body: &Bytes) -> std::io::Result<()> {
        self.scratch.clear();
        let sealed = lock(&self.conn)
            .seal(body, &mut self.scratch)
            .map_err(|e| std::io::Error::other(format!("cannot seal: {e}")))?;
        if sealed {
            stall_guard(self.out.send_slice(&self.scratch)).await
        } else {
            stall_guard(self.out.send_shared(body)).await
        }
    }
}

/// Fails a write that stalls longer than [`WRITE_STALL`].
async fn stall_guard<T>(write: impl Future<Output = std::io::Result<T>>) -> std::io::Result<T> {
    tokio::time::timeout(WRITE_STALL, write)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "peer stopped reading"))?
}
