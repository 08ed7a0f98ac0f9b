//! The WebSocket transport of the client ([`crate::Transport::Ws`]): the login's `sync_ws_url`, then one binary
//! message per message body both ways (the message boundary is the framing, as over UDP). The same messages,
//! handshake and sealing as TCP; it is what a browser speaks.

use bytes::Bytes;
use futures::stream::{BoxStream, SplitSink};
use futures::{SinkExt, StreamExt};
use movan_protocol::FrameError;
use movan_protocol::codec::DEFAULT_MAX_SERVER_FRAME;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, error::CapacityError};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::ClientError;

/// The sending half of a WebSocket connection.
pub type WsSink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;

/// The message bodies the server sends, until it closes.
pub type WsMessages = BoxStream<'static, Result<Bytes, FrameError>>;

/// Opens `url` (`ws://host:port/ws`) with Nagle off and the server-frame limit as the message limit.
pub async fn connect(url: &str) -> Result<(WsSink, WsMessages), ClientError> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(DEFAULT_MAX_SERVER_FRAME))
        .max_frame_size(Some(DEFAULT_MAX_SERVER_FRAME));
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .map_err(|e| ClientError::Io(std::io::Error::other(format!("websocket connect to {url}: {e}"))))?;
    let (sink, stream) = ws.split();
    let max = DEFAULT_MAX_SERVER_FRAME;
    let messages = stream
        .filter_map(move |msg| async move {
            match msg {
                Ok(Message::Binary(body)) => Some(Ok(body)),
                Ok(Message::Text(text)) => Some(Ok(Bytes::from(text))),
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => None,
                Ok(Message::Close(_)) => Some(Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()))),
                Err(WsError::Capacity(CapacityError::MessageTooLong { size, .. })) => {
                    Some(Err(FrameError::TooLarge { len: size as u64, max }))
                }
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
                    Some(Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into())))
                }
                Err(e) => Some(Err(FrameError::Io(std::io::Error::other(e)))),
            }
        })
        // A close ends the stream, like end-of-file on TCP.
        .take_while(|item| {
            let eof = matches!(item, Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof);
            std::future::ready(!eof)
        })
        .boxed();
    Ok((sink, messages))
}

/// Sends one message body as one binary message.
pub async fn send(sink: &mut WsSink, wire: &[u8]) -> Result<(), ClientError> {
    sink.send(Message::Binary(Bytes::copy_from_slice(wire)))
        .await
        .map_err(|e| ClientError::Io(std::io::Error::other(e)))
}

/// Sends the close frame; the server then sees the connection end.
pub async fn close(sink: &mut WsSink) -> Result<(), ClientError> {
    sink.close().await.map_err(|e| ClientError::Io(std::io::Error::other(e)))
}
