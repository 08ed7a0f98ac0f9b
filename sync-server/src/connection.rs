//! The sans-IO connection protocol: everything the server decides about one client connection before and around
//! the engine, for any transport.
//!
//! A [`Connection`] takes one Movan message body at a time ([`Connection::handle_frame`]) and the passing of time
//! ([`Connection::handle_timeout`]), and says what to do next: [`Connection::poll_transmit`] yields the messages it
//! sends itself (the handshake), [`Connection::poll_event`] what the engine and the shell must do, and
//! [`Connection::poll_timeout`] when it next needs the time. It reads no clock, touches no socket and knows no
//! framing: the transport cuts its byte stream (or datagrams) into message bodies and frames what goes out.
//!
//! It owns the rules of a connection:
//! - the first message must carry a valid token of its `uid`, of a session not logged out and a player not banned;
//!   then comes the handshake;
//! - with encryption on, the session key is fetched ([`Event::FetchSessionKey`]), the handshake announces a salt, and
//!   the player is bound (which may replace its other connection) only once a sealed frame opened: a stolen token
//!   without the session key does nothing at all;
//! - every later frame is opened; one that does not open closes the connection without a word;
//! - a later message with another token is verified again; one for another `uid` is refused;
//! - the message rate limit (a token bucket), and the first-frame and idle timeouts;
//! - why it closes ([`CloseReason`]), and the `error` the client gets first, where the protocol sends one.
//!
//! Ordering contract for the shell: write every transmit before any message the engine produces for the events
//! polled after it, and deliver `Error` and `Close` events through the engine so that they follow its answers to the
//! connection's earlier requests.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use movan_protocol::crypto::{self, CryptoError, Opener, SALT_LEN, Sealer, SessionKey};
use movan_protocol::{ErrorCode, ProtocolError, Request, TokenClaims, parse_client_message};

use crate::auth::TokenVerifier;
use crate::engine::Identity;
use crate::limits::TokenBucket;
use crate::revocation::SharedRevocations;

/// Messages held while the session key is fetched (a client should wait for the handshake; this bounds one that
/// does not). One more closes the connection with `limit_exceeded`.
pub const MAX_HELD_MESSAGES: usize = 16;

/// The connection rules, from the `[sync]` config section.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// `sync.encryption = "required"`: fetch the session key, announce a salt, seal and open every later message.
    pub encryption: bool,
    /// `sync.first_frame_timeout_secs`: from the connect until the player is bound.
    pub first_frame_timeout: Duration,
    /// `sync.idle_timeout_secs`, if set: from the last message, once bound.
    pub idle_timeout: Option<Duration>,
    /// `sync.max_messages_per_sec` (0: unlimited).
    pub max_messages_per_sec: u32,
    /// `sync.message_burst`.
    pub message_burst: u32,
    /// `sync.max_frame_bytes`: the longest message body.
    pub max_frame_bytes: usize,
}

/// What the engine or the shell must do for a connection.
#[derive(Debug)]
pub enum Event {
    /// Fetch the key of this login session and hand it to [`Connection::handle_session_key`] (encryption on).
    FetchSessionKey {
        /// The token's subject.
        uid: String,
        /// The token's session.
        sid: String,
    },
    /// Bind the connection to this player (`Engine::connect`).
    Authenticated(Identity),
    /// A request for the engine.
    Request {
        /// What the client asks for.
        request: Request,
        /// The message's `timestamp`.
        timestamp: Option<f64>,
    },
    /// Send the client this `error`, after the engine's answers to the earlier requests; the connection stays open.
    Error(ProtocolError),
    /// Close the connection, after the engine's answers to the earlier requests and [`CloseReason::error`] if any.
    /// The connection takes no more input.
    Close(CloseReason),
}

/// Why a connection closes: logged by the shell, and told to the client (as an `error` before the close) where the
/// protocol says so.
#[derive(Debug, Clone, PartialEq)]
pub enum CloseReason {
    /// The first message was not a valid, authenticated request, or the handshake failed (no session key): the
    /// client gets this error.
    Refused(ProtocolError),
    /// Not bound within `sync.first_frame_timeout_secs`.
    FirstFrameTimeout {
        /// The timeout.
        secs: u64,
    },
    /// Not bound within `sync.pressure_first_frame_timeout_secs`: it connected while many connections were waiting
    /// to authenticate.
    PressureTimeout {
        /// The shorter timeout.
        secs: u64,
    },
    /// Shed, not yet authenticated, to make room: the oldest of `sync.max_unauthenticated` (UDP:
    /// `sync.udp_max_pending`) such connections, or the server was at `sync.max_connections`.
    Shed {
        /// The limit.
        max: usize,
        /// Its config key.
        key: &'static str,
    },
    /// No message for `sync.idle_timeout_secs`.
    IdleTimeout {
        /// The timeout.
        secs: u64,
    },
    /// Over `sync.max_messages_per_sec` after a burst of `sync.message_burst`.
    RateLimited {
        /// The sustained rate.
        per_sec: u32,
        /// The burst.
        burst: u32,
    },
    /// A message over `sync.max_frame_bytes`.
    FrameTooLarge {
        /// Its length.
        len: u64,
        /// The maximum.
        max: usize,
    },
    /// A sealed frame did not open (tampered, replayed, reordered or forged): closed without a word.
    SealRejected,
    /// The same player connected again; the new connection replaced this one.
    Replaced,
    /// The session was logged out or the player banned: carries the `session_revoked` or `banned` error.
    Revoked(ProtocolError),
    /// The server is shutting down.
    Shutdown,
    /// The client closed the connection, or reading from it failed.
    PeerClosed,
    /// The connection's send queue was full: the client does not read fast enough.
    SlowReader,
}

impl CloseReason {
    /// The `error` the client gets before the close, if any.
    pub fn error(&self) -> Option<ProtocolError> {
        let timeout = |m: String| Some(ProtocolError::new(ErrorCode::Timeout, m));
        match self {
            Self::Refused(e) | Self::Revoked(e) => Some(e.clone()),
            Self::FirstFrameTimeout { secs } => {
                timeout(format!("the connection was not authenticated within {secs} s (sync.first_frame_timeout_secs)"))
            }
            Self::PressureTimeout { secs } => timeout(format!(
                "the connection was not authenticated within {secs} s: the server is busy with connections that do \
                 not authenticate (sync.pressure_first_frame_timeout_secs)"
            )),
            Self::Shed { max, key } => Some(ProtocolError::new(
                ErrorCode::TooManyConnections,
                format!(
                    "closed before it authenticated to make room: the server holds at most {max} connections waiting \
                     to authenticate ({key}), or is full (sync.max_connections), and closes the oldest first; \
                     authenticate at once after connecting"
                ),
            )),
            Self::IdleTimeout { secs } => timeout(format!(
                "no message for {secs} s (sync.idle_timeout_secs); send a ping to keep an idle connection"
            )),
            Self::RateLimited { per_sec, burst } => Some(ProtocolError::new(
                ErrorCode::RateLimited,
                format!(
                    "more than {per_sec} messages per second after a burst of {burst} (sync.max_messages_per_sec, \
                     sync.message_burst)"
                ),
            )),
            Self::FrameTooLarge { len, max } => Some(ProtocolError::new(
                ErrorCode::FrameTooLarge,
                format!(
                    "frame of {len} bytes exceeds the maximum of {max} bytes (sync.max_frame_bytes){}",
                    text_prefix_hint(*len)
                ),
            )),
            Self::Replaced => Some(ProtocolError::new(
                ErrorCode::Replaced,
                "this player connected again; this connection is replaced",
            )),
            Self::Shutdown => Some(ProtocolError::new(ErrorCode::ShuttingDown, "the server is shutting down")),
            Self::SealRejected | Self::PeerClosed | Self::SlowReader => None,
        }
    }

    /// A short name for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Refused(_) => "refused",
            Self::FirstFrameTimeout { .. } => "first_frame_timeout",
            Self::PressureTimeout { .. } => "pressure_timeout",
            Self::Shed { .. } => "shed",
            Self::IdleTimeout { .. } => "idle_timeout",
            Self::RateLimited { .. } => "rate_limited",
            Self::FrameTooLarge { .. } => "frame_too_large",
            Self::SealRejected => "seal_rejected",
            Self::Replaced => "replaced",
            Self::Revoked(_) => "revoked",
            Self::Shutdown => "shutdown",
            Self::PeerClosed => "peer_closed",
            Self::SlowReader => "slow_reader",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.error() {
            Some(e) => write!(f, "{}: {e}", self.as_str()),
            None => f.write_str(self.as_str()),
        }
    }
}

/// When the length prefix of a too-large frame reads as ASCII text (someone typed `hello` at the TCP port, or sent
/// HTTP to it), says so: the client skipped the 4-byte length prefix.
fn text_prefix_hint(len: u64) -> String {
    let Ok(prefix) = u32::try_from(len) else { return String::new() };
    let bytes = prefix.to_be_bytes();
    if !bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return String::new();
    }
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    format!(
        "; its length prefix {text:?} looks like text, not a 4-byte big-endian length: each frame is the JSON body's \
         length in 4 bytes, then the body (docs/protocol.md §2)"
    )
}

/// One client connection's protocol state. See the module docs.
pub struct Connection {
    config: ConnectionConfig,
    verifier: Arc<TokenVerifier>,
    state: State,
    opened_at: Instant,
    /// When the last message arrived (the idle timeout runs from it).
    last_message: Instant,
    bucket: TokenBucket,
    opener: Option<Opener>,
    sealer: Option<Sealer>,
    events: VecDeque<Event>,
    transmits: VecDeque<Bytes>,
    /// Logouts and bans: a first message with such a token is refused before the handshake.
    revocations: Option<SharedRevocations>,
    /// A first-frame timeout shorter than the configured one, for a connection opened under pressure.
    pressure_timeout: Option<Duration>,
}

/// Where a connection is in its life.
enum State {
    /// Waiting for the first message.
    New,
    /// The first message authenticated; its session key is being fetched. Messages are held until it arrives.
    AwaitingKey { first: Authenticated, held: VecDeque<Bytes> },
    /// The handshake announced a salt; the bind and the first request wait for a sealed frame that opens.
    AwaitingSealed { first: Authenticated },
    /// Bound to its player: requests flow to the engine.
    Bound(Owner),
    /// Closed; no more input is taken.
    Closed,
}

/// The first message, verified: who it speaks for, and its request.
struct Authenticated {
    owner: Owner,
    identity: Identity,
    request: Request,
    timestamp: Option<f64>,
    proto: &'static str,
}

/// The `uid` and token a connection was authenticated with.
struct Owner {
    uid: String,
    token: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::New => "new",
            State::AwaitingKey { .. } => "awaiting_key",
            State::AwaitingSealed { .. } => "awaiting_sealed",
            State::Bound(_) => "bound",
            State::Closed => "closed",
        };
        f.debug_struct("Connection").field("state", &state).finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection opened at `now`; its first-frame timeout runs from here.
    pub fn new(config: ConnectionConfig, verifier: Arc<TokenVerifier>, now: Instant) -> Self {
        let bucket = TokenBucket::new(config.max_messages_per_sec, config.message_burst, now);
        Self {
            config,
            verifier,
            state: State::New,
            opened_at: now,
            last_message: now,
            bucket,
            opener: None,
            sealer: None,
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            revocations: None,
            pressure_timeout: None,
        }
    }

    /// Gives the connection `timeout` to authenticate instead of `sync.first_frame_timeout_secs` when that is
    /// shorter: it was opened while many connections were waiting to authenticate. It closes with
    /// [`CloseReason::PressureTimeout`].
    pub fn set_pressure_timeout(&mut self, timeout: Duration) {
        if timeout < self.config.first_frame_timeout && !self.is_bound() {
            self.pressure_timeout = Some(timeout);
        }
    }

    /// Refuses a first message whose token `revocations` names (a logged-out session, a banned player) with
    /// `session_revoked` or `banned` in place of the handshake, encrypted or not. The engine checks again at the
    /// bind, for a revocation that arrives in between.
    pub fn with_revocations(mut self, revocations: SharedRevocations) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// Whether the connection is bound to its player (authenticated, and with encryption its first sealed frame
    /// opened).
    pub fn is_bound(&self) -> bool {
        matches!(self.state, State::Bound(_))
    }

    /// Whether the connection closed; it takes no more input.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Takes one message body that arrived at `now` (sealed once the handshake announced a salt).
    pub fn handle_frame(&mut self, body: &[u8], now: Instant) {
        if self.is_closed() {
            return;
        }
        if body.len() > self.config.max_frame_bytes {
            self.handle_too_large(body.len() as u64, now);
            return;
        }
        if !self.bucket.try_take(now) {
            let (per_sec, burst) = (self.config.max_messages_per_sec, self.config.message_burst);
            self.close(CloseReason::RateLimited { per_sec, burst });
            return;
        }
        self.last_message = now;
        if let State::AwaitingKey { held, .. } = &mut self.state {
            if held.len() >= MAX_HELD_MESSAGES {
                let e = ProtocolError::new(
                    ErrorCode::LimitExceeded,
                    format!("more than {MAX_HELD_MESSAGES} messages before the handshake; wait for it"),
                );
                self.close(CloseReason::Refused(e));
                return;
            }
            held.push_back(Bytes::copy_from_slice(body));
            return;
        }
        self.handle_body(body);
    }

    /// The transport read a message of `len` bytes, over `sync.max_frame_bytes`: `frame_too_large`, then the close.
    pub fn handle_too_large(&mut self, len: u64, _now: Instant) {
        if !self.is_closed() {
            self.close(CloseReason::FrameTooLarge { len, max: self.config.max_frame_bytes });
        }
    }

    /// Closes the connection with the first-frame or idle timeout if its deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.poll_timeout() else { return };
        if now < deadline {
            return;
        }
        let reason = if self.is_bound() {
            CloseReason::IdleTimeout { secs: self.config.idle_timeout.unwrap_or_default().as_secs() }
        } else if let Some(t) = self.pressure_timeout {
            CloseReason::PressureTimeout { secs: t.as_secs() }
        } else {
            CloseReason::FirstFrameTimeout { secs: self.config.first_frame_timeout.as_secs() }
        };
        self.close(reason);
    }

    /// The answer to [`Event::FetchSessionKey`]: the key (or why there is none) and a fresh random salt for the
    /// handshake. Then the handshake goes out, and the messages held meanwhile are taken in order.
    pub fn handle_session_key(&mut self, key: Result<SessionKey, ProtocolError>, salt: [u8; SALT_LEN], _now: Instant) {
        let State::AwaitingKey { .. } = self.state else { return };
        let State::AwaitingKey { first, held } = std::mem::replace(&mut self.state, State::Closed) else {
            return;
        };
        let key = match key {
            Ok(key) => key,
            Err(e) => {
                self.close(CloseReason::Refused(e.with_proto(first.proto)));
                return;
            }
        };
        let (sealer, opener) = crypto::server_side(&key, &salt);
        self.transmits.push_back(crypto::handshake_body(&salt));
        self.sealer = Some(sealer);
        self.opener = Some(opener);
        self.state = State::AwaitingSealed { first };
        for body in held {
            if self.is_closed() {
                break;
            }
            self.handle_body(&body);
        }
    }

    /// When [`Self::handle_timeout`] must next be called: the first-frame deadline until the player is bound, then
    /// the idle deadline (if any); none once closed.
    #[must_use = "the connection's timeouts only fire if the shell calls handle_timeout at this deadline"]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Closed => None,
            State::Bound(_) => self.config.idle_timeout.map(|idle| self.last_message + idle),
            _ => Some(self.opened_at + self.pressure_timeout.unwrap_or(self.config.first_frame_timeout)),
        }
    }

    /// The next thing for the engine or the shell to do, if any.
    #[must_use = "events carry the connection's requests and closes"]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next message body the connection sends itself (the handshake), to write as it is, never sealed.
    #[must_use = "transmits must be written before the engine's messages for later events"]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmits.pop_front()
    }

    /// Seals an outgoing message body (from the engine) into `dst` and returns true; or returns false, leaving `dst`
    /// alone, when the connection sends plaintext (encryption off, or before the handshake).
    pub fn seal(&mut self, body: &[u8], dst: &mut BytesMut) -> Result<bool, CryptoError> {
        match self.sealer.as_mut() {
            Some(sealer) => sealer.seal_body_into(body, dst).map(|()| true),
            None => Ok(false),
        }
    }

    /// Opens, parses and checks one message body (the rate limit already passed).
    fn handle_body(&mut self, body: &[u8]) {
        let plain;
        let body = match self.opener.as_mut() {
            None => body,
            Some(opener) => match opener.open(body) {
                Ok(p) => {
                    plain = p;
                    if let State::AwaitingSealed { .. } = self.state
                        && let State::AwaitingSealed { first } = std::mem::replace(&mut self.state, State::Closed)
                    {
                        self.bind(first);
                    }
                    &plain[..]
                }
                Err(_) => {
                    self.close(CloseReason::SealRejected);
                    return;
                }
            },
        };
        let message = match parse_client_message(body) {
            Ok(message) => message,
            // The first message must authenticate; anything else unparseable is answered and skipped.
            Err(e) if matches!(self.state, State::New) => {
                self.close(CloseReason::Refused(e));
                return;
            }
            Err(e) => {
                self.events.push_back(Event::Error(e));
                return;
            }
        };
        let proto = message.request.proto();
        let owner = match &self.state {
            State::New => {
                self.authenticate_first(message.uid, message.token, message.request, message.timestamp, proto);
                return;
            }
            State::Bound(owner) | State::AwaitingSealed { first: Authenticated { owner, .. } } => owner,
            State::AwaitingKey { .. } | State::Closed => return,
        };
        let token_ok = match message.token.as_deref() {
            None => Ok(()),
            Some(t) if t == owner.token => Ok(()),
            Some(t) => authenticate(&self.verifier, &owner.uid, Some(t)).map(drop),
        };
        if let Err(e) = token_ok {
            self.events.push_back(Event::Error(e.with_proto(proto)));
            return;
        }
        if message.uid != owner.uid {
            let e = ProtocolError::new(
                ErrorCode::UidMismatch,
                format!("this connection belongs to uid {:?}, not {:?}", owner.uid, message.uid),
            );
            self.events.push_back(Event::Error(e.with_proto(proto)));
            return;
        }
        self.events.push_back(Event::Request { request: message.request, timestamp: message.timestamp });
    }

    /// The first message: verifies its token, then starts the handshake.
    fn authenticate_first(
        &mut self,
        uid: String,
        token: Option<String>,
        request: Request,
        timestamp: Option<f64>,
        proto: &'static str,
    ) {
        let claims = match authenticate(&self.verifier, &uid, token.as_deref()) {
            Ok(claims) => claims,
            Err(e) => {
                self.close(CloseReason::Refused(e.with_proto(proto)));
                return;
            }
        };
        if let Some(Err(e)) = self.revocations.as_ref().map(|r| r.check(&claims.sub, &claims.sid, claims.iat)) {
            self.close(CloseReason::Refused(e.with_proto(proto)));
            return;
        }
        let identity = Identity { uid: claims.sub, sid: claims.sid, iat: claims.iat };
        let owner = Owner { uid, token: token.unwrap_or_default() };
        let first = Authenticated { owner, identity, request, timestamp, proto };
        if self.config.encryption {
            let (uid, sid) = (first.identity.uid.clone(), first.identity.sid.clone());
            self.events.push_back(Event::FetchSessionKey { uid, sid });
            self.state = State::AwaitingKey { first, held: VecDeque::new() };
        } else {
            self.transmits.push_back(crypto::plaintext_handshake_body());
            self.bind(first);
        }
    }

    /// Binds the player and hands the engine its first request.
    fn bind(&mut self, first: Authenticated) {
        self.events.push_back(Event::Authenticated(first.identity));
        self.events.push_back(Event::Request { request: first.request, timestamp: first.timestamp });
        self.state = State::Bound(first.owner);
    }

    fn close(&mut self, reason: CloseReason) {
        self.state = State::Closed;
        self.events.push_back(Event::Close(reason));
    }
}

/// Checks that `token` is valid and belongs to `uid`.
fn authenticate(verifier: &TokenVerifier, uid: &str, token: Option<&str>) -> Result<TokenClaims, ProtocolError> {
    let token = token.ok_or_else(|| {
        ProtocolError::new(
            ErrorCode::Unauthenticated,
            "the first message of a connection must carry a token from the account server's login",
        )
    })?;
    let claims = verifier.verify(token)?;
    if claims.sub != uid {
        return Err(ProtocolError::new(
            ErrorCode::UidMismatch,
            format!("the token belongs to uid {:?}, not {uid:?}", claims.sub),
        ));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests;
