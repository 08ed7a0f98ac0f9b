//! The WebSocket transport: the HTTP upgrade at [`WS_PATH`], then one binary message per Movan message body, both
//! ways (the message boundary is the framing). Same messages, encryption and limits as TCP.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use movan_protocol::server::{ErrorBody, ServerMessage};
use movan_protocol::{ErrorCode, FrameError, ProtocolError};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request as WsRequest, Response as WsResponse};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, error::CapacityError};
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::http_head::{self, Rewind};
use super::writer::Transport;
use super::{ConnShared, WRITE_BUFFER, start};
use crate::engine::ConnId;

/// The WebSocket path; other paths get 404.
pub const WS_PATH: &str = "/ws";

/// The WebSocket limits, set explicitly: a message and a frame are at most `max_frame_bytes` (like a TCP frame
/// body), and at most 1 MiB waits in the socket's write buffer (the per-connection send queue bounds the rest). The
/// read buffer starts at 4 KiB and grows for larger frames: tungstenite's default of 128 KiB is zero-filled on the
/// first read, 128 KiB of memory for every connection, even one that never authenticates.
pub(super) fn config(max_frame_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .max_message_size(Some(max_frame_bytes))
        .max_frame_size(Some(max_frame_bytes))
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(1024 * 1024)
        .accept_unmasked_frames(false)
}

/// Accepts on `listener`, or waits forever without one.
pub(super) async fn accept_opt(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// The HTTP upgrade to WebSocket, within `timeout`; only [`WS_PATH`] is served, and other requests get an HTTP
/// answer that says why ([`http_head`]).
async fn upgrade(stream: TcpStream, config: WebSocketConfig, timeout: Duration) -> Option<WebSocketStream<Rewind>> {
    let _ = stream.set_nodelay(true);
    #[allow(clippy::result_large_err)] // The callback's signature is tungstenite's.
    let check_path = |req: &WsRequest, resp: WsResponse| -> Result<WsResponse, ErrorResponse> {
        if req.uri().path() == WS_PATH {
            Ok(resp)
        } else {
            let mut not_found = ErrorResponse::new(Some(format!("Movan's WebSocket endpoint is {WS_PATH}")));
            *not_found.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::NOT_FOUND;
            Err(not_found)
        }
    };
    let handshake = async {
        // What is not an upgrade to WS_PATH gets its HTTP answer here; tungstenite would close without one.
        let stream = http_head::read(stream).await.ok_or(WsError::ConnectionClosed)?;
        tokio_tungstenite::accept_hdr_async_with_config(stream, check_path, Some(config)).await
    };
    match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(ws)) => Some(ws),
        Ok(Err(e)) => {
            debug!(error = %e, "websocket handshake failed");
            None
        }
        Err(_) => {
            debug!("websocket handshake timed out");
            None
        }
    }
}

/// Upgrades an accepted WebSocket connection (within the first-frame timeout) and runs its tasks.
pub(super) async fn open(
    conn: ConnId,
    stream: TcpStream,
    admission: super::Admission,
    shared: Arc<ConnShared>,
    config: WebSocketConfig,
) {
    // The upgrade counts as unauthenticated time: it is shed like any connection that has not authenticated.
    let first = shared.rules.first_frame_timeout;
    let within = if admission.1.pressure { shared.pressure_timeout.min(first) } else { first };
    let upgraded = tokio::select! {
        ws = upgrade(stream, config, within) => ws,
        () = admission.1.shed() => None,
    };
    let Some(ws) = upgraded else {
        return;
    };
    let (sink, stream) = ws.split();
    let max = shared.rules.max_frame_bytes;
    let bodies = stream
        .filter_map(move |msg| async move {
            if let Ok(msg) = &msg {
                crate::metrics::get().received(crate::metrics::Transport::Ws, msg.len());
            }
            match msg {
                Ok(Message::Binary(body)) => Some(Ok(body)),
                // JSON is text: accept it too (it can only be plaintext, so it fails to open when sealed).
                Ok(Message::Text(text)) => Some(Ok(Bytes::from(text))),
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => None,
                Ok(Message::Close(_)) => Some(Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()))),
                Err(WsError::Capacity(CapacityError::MessageTooLong { size, .. })) => {
                    Some(Err(FrameError::TooLarge { len: size as u64, max }))
                }
                Err(e) => Some(Err(FrameError::Io(std::io::Error::other(e)))),
            }
        })
        .take_while(|item| {
            let eof = matches!(item, Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof);
            std::future::ready(!eof)
        })
        .boxed();
    let tracker = TaskTracker::new();
    if start(conn, bodies, Transport::Ws(Box::new(sink)), admission, &shared, &tracker).await {
        tracker.close();
        tracker.wait().await;
    }
}

/// Answers a WebSocket connection over a connection limit with one `error` message, then closes it.
pub(super) async fn refuse(stream: TcpStream, message: String, config: WebSocketConfig) {
    let Some(mut ws) = upgrade(stream, config, Duration::from_secs(2)).await else {
        return;
    };
    let e = ProtocolError::new(ErrorCode::TooManyConnections, message);
    let body = ServerMessage::Error(ErrorBody::from(&e)).to_body();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = ws.send(Message::Binary(body)).await;
        let _ = ws.close(None).await;
    })
    .await;
}
