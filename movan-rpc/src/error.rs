//! What a call can fail with, and what a handler returns when it fails.

use crate::wire::ErrorBody;

/// The error codes carried in `{"code": ..., "message": ...}` objects, one per failure a caller must tell apart.
pub mod codes {
    /// No handler is registered under the called method name.
    pub const UNKNOWN_METHOD: &str = "unknown_method";
    /// The params did not deserialize into the handler's request type.
    pub const BAD_PARAMS: &str = "bad_params";
    /// The handler ran and returned an error; its message is passed through.
    pub const HANDLER_ERROR: &str = "handler_error";
    /// No reply within the call's timeout. Produced locally, never sent.
    pub const TIMEOUT: &str = "timeout";
    /// Too many calls in flight on the connection (on the callee, or the caller's own limit).
    pub const OVERLOADED: &str = "overloaded";
    /// Not connected, or the connection was lost while waiting. Produced locally, never sent.
    pub const DISCONNECTED: &str = "disconnected";
    /// The peer failed the challenge-response handshake (or sent something before it).
    pub const UNAUTHENTICATED: &str = "unauthenticated";
    /// The message would exceed the connection's maximum frame size.
    pub const TOO_LARGE: &str = "too_large";
    /// The reply did not deserialize into the caller's response type. Produced locally, never sent.
    pub const BAD_RESPONSE: &str = "bad_response";

    /// Every code of the RPC layer; application codes of [`HandlerError`](crate::HandlerError) must differ.
    pub const ALL: [&str; 9] = [
        UNKNOWN_METHOD,
        BAD_PARAMS,
        HANDLER_ERROR,
        TIMEOUT,
        OVERLOADED,
        DISCONNECTED,
        UNAUTHENTICATED,
        TOO_LARGE,
        BAD_RESPONSE,
    ];
}

/// Why a [`call`](crate::Peer::call) or [`notify`](crate::Peer::notify) failed. Each variant has its own
/// [`code`](Self::code), so callers can tell "the peer never heard of it" from "the peer is slow".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The peer has no handler for the method. Code `unknown_method`.
    #[error("unknown method: {0}")]
    UnknownMethod(String),
    /// The params did not match the handler's request type (or could not be encoded). Code `bad_params`.
    #[error("bad params: {0}")]
    BadParams(String),
    /// The handler returned an error; the string is its message. Code `handler_error`.
    #[error("handler error: {0}")]
    Handler(String),
    /// No reply within the timeout. The connection stays up; a late reply is dropped. Code `timeout`.
    #[error("call timed out")]
    Timeout,
    /// Too many calls in flight, on the peer or locally (the string says which). Code `overloaded`.
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// Not connected, or the connection closed before the reply came. Never waits for a reconnect. Code
    /// `disconnected`.
    #[error("not connected")]
    Disconnected,
    /// The server refused our shared secret (the client's last attempt failed authentication). Code
    /// `unauthenticated`.
    #[error("unauthenticated: the peer refused our shared secret")]
    Unauthenticated,
    /// The request or reply exceeds the maximum frame size. Code `too_large`.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The reply did not deserialize into the expected response type. Code `bad_response`.
    #[error("bad response: {0}")]
    BadResponse(String),
    /// A code other than the RPC layer's, passed through from the peer: an application code of a
    /// [`HandlerError::with_code`], or a code this version does not know.
    #[error("{code}: {message}")]
    Remote {
        /// The code as received.
        code: String,
        /// The message as received.
        message: String,
    },
}

impl CallError {
    /// The machine-readable code (one of [`codes`], or the received code for [`CallError::Remote`]).
    pub fn code(&self) -> &str {
        match self {
            Self::UnknownMethod(_) => codes::UNKNOWN_METHOD,
            Self::BadParams(_) => codes::BAD_PARAMS,
            Self::Handler(_) => codes::HANDLER_ERROR,
            Self::Timeout => codes::TIMEOUT,
            Self::Overloaded(_) => codes::OVERLOADED,
            Self::Disconnected => codes::DISCONNECTED,
            Self::Unauthenticated => codes::UNAUTHENTICATED,
            Self::TooLarge(_) => codes::TOO_LARGE,
            Self::BadResponse(_) => codes::BAD_RESPONSE,
            Self::Remote { code, .. } => code,
        }
    }

    /// Maps an `error` object from a reply to the matching variant.
    pub fn from_remote(body: ErrorBody) -> Self {
        let ErrorBody { code, message } = body;
        match code.as_str() {
            codes::UNKNOWN_METHOD => Self::UnknownMethod(message),
            codes::BAD_PARAMS => Self::BadParams(message),
            codes::HANDLER_ERROR => Self::Handler(message),
            codes::OVERLOADED => Self::Overloaded(message),
            codes::UNAUTHENTICATED => Self::Unauthenticated,
            codes::TOO_LARGE => Self::TooLarge(message),
            _ => Self::Remote { code, message },
        }
    }
}

/// The error a method handler returns.
///
/// Without a code it reaches the caller as [`CallError::Handler`] with this message. With an application code
/// ([`HandlerError::with_code`]) the reply carries that code instead of `handler_error`, and the caller gets
/// [`CallError::Remote`] with it: callers decide by [`CallError::code`], never by reading the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    /// Machine-readable reason sent as the reply's `code`; `None` sends `handler_error`. Must not be one of
    /// [`codes`] (the caller would read it as that failure of the RPC layer).
    pub code: Option<String>,
    /// Human-readable reason, passed through to the caller verbatim.
    pub message: String,
}

impl HandlerError {
    /// A handler error with `message` (anything displayable, such as another error), sent as `handler_error`.
    pub fn new(message: impl std::fmt::Display) -> Self {
        Self { code: None, message: message.to_string() }
    }

    /// A handler error the caller tells apart by `code`, with `message` for people.
    pub fn with_code(code: impl Into<String>, message: impl std::fmt::Display) -> Self {
        let code = code.into();
        debug_assert!(!codes::ALL.contains(&code.as_str()), "application code {code:?} shadows an RPC-layer code");
        Self { code: Some(code), message: message.to_string() }
    }

    /// The `code` of the error reply: the application code, or `handler_error`.
    pub fn wire_code(&self) -> &str {
        self.code.as_deref().unwrap_or(codes::HANDLER_ERROR)
    }

    /// The `error` object of the reply.
    pub(crate) fn into_body(self) -> ErrorBody {
        let code = self.code.unwrap_or_else(|| codes::HANDLER_ERROR.to_owned());
        ErrorBody { code, message: self.message }
    }
}

impl From<String> for HandlerError {
    fn from(message: String) -> Self {
        Self { code: None, message }
    }
}

impl From<&str> for HandlerError {
    fn from(message: &str) -> Self {
        Self { code: None, message: message.to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_codes_map_to_distinct_variants() {
        let cases = [
            codes::UNKNOWN_METHOD,
            codes::BAD_PARAMS,
            codes::HANDLER_ERROR,
            codes::OVERLOADED,
            codes::UNAUTHENTICATED,
            codes::TOO_LARGE,
            "something_new",
        ];
        for code in cases {
            let err = CallError::from_remote(ErrorBody { code: code.to_owned(), message: "m".to_owned() });
            assert_eq!(err.code(), code);
        }
        assert_eq!(CallError::Timeout.code(), codes::TIMEOUT);
        assert_eq!(CallError::Disconnected.code(), codes::DISCONNECTED);
        assert_eq!(CallError::BadResponse(String::new()).code(), codes::BAD_RESPONSE);
    }

    #[test]
    fn handler_message_passes_through() {
        let err = CallError::from_remote(ErrorBody { code: codes::HANDLER_ERROR.into(), message: "no room".into() });
        assert_eq!(err, CallError::Handler("no room".into()));
        assert_eq!(HandlerError::from("x").message, "x");
        assert_eq!(HandlerError::new(42).message, "42");
        assert_eq!(HandlerError::new(42).wire_code(), codes::HANDLER_ERROR);
    }

    #[test]
    fn application_codes_reach_the_caller_whatever_the_message() {
        let error = HandlerError::with_code("no_such_room", "lobby is gone");
        let received = CallError::from_remote(ErrorBody::new(error.wire_code(), error.message.clone()));
        assert_eq!(received.code(), "no_such_room");
        assert_eq!(received, CallError::Remote { code: "no_such_room".into(), message: "lobby is gone".into() });
    }
}
