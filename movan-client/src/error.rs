//! The one error type of the client SDK, shared by the account and sync clients.

use movan_protocol::ErrorCode;
use movan_protocol::codec::FrameError;
use movan_protocol::server::ServerParseError;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A socket operation failed (connect, write, ...).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The server's byte stream broke the framing (for example a frame above the client's maximum).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The HTTP request could not be made or its response body could not be read or decoded.
    #[error(transparent)]
    Request(#[from] reqwest::Error),
    /// The account server answered with an error status and a `{"code","message"}` body.
    #[error("http {status} {code}: {message}")]
    Http {
        /// HTTP status code.
        status: u16,
        /// Machine-readable code from the body (empty when the body was not the documented JSON).
        code: String,
        /// Human-readable reason from the body (or the raw body).
        message: String,
    },
    /// A message could not be serialized.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A downloaded replay is not a readable replay file.
    #[error("replay: {0}")]
    Replay(#[from] movan_protocol::replay::ReplayError),
    /// The sync server sent a message this client cannot parse.
    #[error(transparent)]
    Parse(#[from] ServerParseError),
    /// The server broke the protocol in a way that parsing alone does not catch (for example reload chunks out of
    /// order).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The sync server answered the request with an `error` message.
    #[error("server error {code}: {message}")]
    Server {
        /// Machine-readable code.
        code: ErrorCode,
        /// Human-readable reason.
        message: String,
        /// The proto of the failing request, when the server named it.
        proto: Option<String>,
    },
    /// The encrypted session failed, which is fatal: a server frame did not open (tampered, replayed, reordered or
    /// sealed under another key), the handshake was malformed or named an unknown cipher, the server requires
    /// encryption but no session key was given, or the session key is not valid base64 of 32 bytes. When it happens
    /// on a live connection, the client closes it.
    #[error("encrypted session failed: {0}")]
    Crypto(String),
    /// The connection closed before the expected message arrived.
    #[error("connection closed")]
    Closed,
    /// The expected message did not arrive in time.
    #[error("timed out")]
    Timeout,
}

impl ClientError {
    /// The HTTP status of an [`ClientError::Http`] error.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The code of a [`ClientError::Server`] error.
    pub fn server_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<tokio::time::error::Elapsed> for ClientError {
    fn from(_: tokio::time::error::Elapsed) -> Self {
        Self::Timeout
    }
}

impl From<movan_protocol::server::ErrorBody> for ClientError {
    fn from(e: movan_protocol::server::ErrorBody) -> Self {
        Self::Server { code: e.code, message: e.message, proto: e.proto }
    }
}
