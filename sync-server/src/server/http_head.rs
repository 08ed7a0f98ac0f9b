//! The WebSocket port's first look at a connection: the HTTP request head, read before tungstenite sees it, so that
//! what is not a WebSocket upgrade to [`WS_PATH`] gets an HTTP answer that says why (plain `curl`, a browser tab, a
//! TCP game client on the wrong port) instead of an empty reply. The head is then replayed to tungstenite
//! ([`Rewind`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::websocket::WS_PATH;

/// The longest request head read (tungstenite's own limit is larger, but an upgrade request is a few hundred bytes).
const MAX_HEAD: usize = 8 * 1024;
/// Headers read from the head.
const MAX_HEADERS: usize = 64;

/// What to do with a request head.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Head {
    /// Not complete yet: read more.
    Partial,
    /// A WebSocket upgrade to [`WS_PATH`]: hand it to tungstenite.
    Upgrade,
    /// Answer with this status and plain-text body, then close.
    Refuse(u16, &'static str, String),
}

/// Judges the bytes read so far.
pub(super) fn check(buf: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => Head::Partial,
        Ok(httparse::Status::Partial) => {
            Head::Refuse(431, "Request Header Fields Too Large", format!("request head over {MAX_HEAD} bytes"))
        }
        Err(httparse::Error::TooManyHeaders) => {
            Head::Refuse(431, "Request Header Fields Too Large", format!("more than {MAX_HEADERS} headers"))
        }
        Err(_) => Head::Refuse(
            400,
            "Bad Request",
            "not an HTTP request: this is Movan's WebSocket port; game clients that speak length-prefixed frames \
             connect to the TCP port (sync.tcp_addr, login's sync_addr)"
                .into(),
        ),
        Ok(httparse::Status::Complete(_)) => {
            let path = req.path.unwrap_or("").split('?').next().unwrap_or("");
            if path != WS_PATH {
                return Head::Refuse(
                    404,
                    "Not Found",
                    format!("Movan's WebSocket endpoint is {WS_PATH} (login returns it as sync_ws_url)"),
                );
            }
            let upgrade = req.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("upgrade")
                    && std::str::from_utf8(h.value).is_ok_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
            });
            if req.method != Some("GET") || !upgrade {
                return Head::Refuse(
                    400,
                    "Bad Request",
                    format!(
                        "{WS_PATH} is Movan's WebSocket endpoint: open it with a WebSocket client (GET with \
                         Upgrade: websocket), e.g. new WebSocket(\"ws://HOST:PORT{WS_PATH}\"); see docs/protocol.md"
                    ),
                );
            }
            Head::Upgrade
        }
    }
}

/// Reads the request head from `stream`. The stream with the head to replay when it is an upgrade; otherwise the
/// HTTP answer has been written and `None` comes back.
pub(super) async fn read(mut stream: TcpStream) -> Option<Rewind> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        match check(&buf) {
            Head::Partial => {}
            Head::Upgrade => return Some(Rewind { head: buf.freeze(), inner: stream }),
            Head::Refuse(status, reason, body) => {
                let body = format!("{body}\n");
                let answer = format!(
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
                return None;
            }
        }
    }
}

/// A TCP stream that first gives back the bytes already read from it.
#[derive(Debug)]
pub struct Rewind {
    head: Bytes,
    inner: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if !self.head.is_empty() {
            let n = self.head.len().min(buf.remaining());
            buf.put_slice(&self.head[..n]);
            self.head.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                           Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    fn status(head: &[u8]) -> Option<u16> {
        match check(head) {
            Head::Refuse(status, _, _) => Some(status),
            Head::Partial | Head::Upgrade => None,
        }
    }

    #[test]
    fn an_upgrade_to_the_endpoint_passes_in_any_number_of_pieces() {
        assert_eq!(check(UPGRADE.as_bytes()), Head::Upgrade);
        assert_eq!(check(UPGRADE.replace("/ws", "/ws?v=1").as_bytes()), Head::Upgrade);
        assert_eq!(check(UPGRADE.replace("Upgrade: websocket", "upgrade: WebSocket").as_bytes()), Head::Upgrade);
        for cut in 1..UPGRADE.len() {
            assert_eq!(check(&UPGRADE.as_bytes()[..cut]), Head::Partial, "{cut}");
        }
    }

    #[test]
    fn everything_else_gets_a_status_that_says_why() {
        // curl http://127.0.0.1:2028/ws
        assert_eq!(status(b"GET /ws HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n"), Some(400));
        assert_eq!(status(UPGRADE.replace("GET", "POST").as_bytes()), Some(400));
        assert_eq!(status(UPGRADE.replace("/ws", "/").as_bytes()), Some(404));
        assert_eq!(status(b"GET /wsx HTTP/1.1\r\n\r\n"), Some(404));
        // A TCP game client on the wrong port: a length prefix, then JSON.
        assert_eq!(status(b"\x00\x00\x00\x2c{\"uid\":\"1\"}"), Some(400));
        let long = format!("GET /ws HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(status(long.as_bytes()), Some(431));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X{i}: 1\r\n")).collect();
        assert_eq!(status(format!("GET /ws HTTP/1.1\r\n{many}\r\n").as_bytes()), Some(431));
    }
}
