//! A sync connection that survives network drops: [`GameClient`] reconnects on its own, reloads the frames it
//! missed, and hands out every frame of a game exactly once, in order.
//!
//! The sync server keeps a dropped player's seat for `sync.reconnect_grace_secs` (30 s by default) while the game
//! goes on. Within that time [`GameClient`] connects again with the same [`Session`], the server rebinds the player
//! and sends `room_state` and `game_start` again, and the client asks for `sync_request_reload_frames` from the
//! first frame it has not delivered yet. Reloaded frames and the live frames that follow are merged: frames already
//! delivered are dropped, and a gap (which TCP never causes, but a server restart could) is filled by another
//! reload. The application sees [`GameEvent::Reconnecting`] and [`GameEvent::Reconnected`] to show an indicator,
//! and otherwise just frames.
//!
//! What ends a [`GameClient`] instead of a reconnect: an `error` the server sends before closing that means
//! "don't come back" (`replaced`, `session_revoked`, `banned`, `shutting_down`, token and uid errors), a crypto
//! failure, or no successful reconnect within [`ReconnectPolicy::give_up_after`]. Then
//! [`GameClient::next_event`] returns `None` and [`GameClient::close_reason`] says why.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use movan_protocol::ErrorCode;
use movan_protocol::server::{Frame, GameStart, ServerEvent};
use serde_json::Value;
use tokio::time::{Instant, MissedTickBehavior};

use crate::account::{AccountClient, Session};
use crate::error::ClientError;
use crate::sync::{SyncClient, SyncSender, Transport};

/// How a [`GameClient`] reconnects.
#[derive(Debug, Clone)]
pub struct ReconnectPolicy {
    /// Reconnect at all. With `false`, a drop ends the client like a close.
    pub enabled: bool,
    /// Stop trying after this long without a connection. Match it to the server's `sync.reconnect_grace_secs`:
    /// later, the seat is gone anyway.
    pub give_up_after: Duration,
    /// Wait before the first attempt; doubled after each failure up to [`ReconnectPolicy::max_delay`].
    pub initial_delay: Duration,
    /// Longest wait between attempts.
    pub max_delay: Duration,
    /// Time allowed for the reload of missed frames after a reconnect.
    pub reload_timeout: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            give_up_after: Duration::from_secs(30),
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            reload_timeout: Duration::from_secs(30),
        }
    }
}

impl ReconnectPolicy {
    /// No reconnects: the first drop ends the client.
    pub fn disabled() -> Self {
        Self { enabled: false, ..Self::default() }
    }
}

/// What [`GameClient::next_event`] yields.
#[derive(Debug, Clone)]
pub enum GameEvent {
    /// The next frame of the current game. Across drops and reconnects, frame numbers go 0, 1, 2, ... with none
    /// missing and none twice; each is byte-for-byte the frame the other players got.
    Frame(Frame),
    /// Any other server message: `room_state`, `game_start` (of a new game; the repeat after a reconnect is not
    /// shown again), `game_over`, `pong`, `error`, reload chunks of reloads requested by the application.
    Server(ServerEvent),
    /// The connection dropped and the client is reconnecting: `attempt` 1 right after the drop, then one event per
    /// failed attempt.
    Reconnecting {
        /// The attempt about to be made.
        attempt: u32,
        /// Why the previous connection or attempt ended.
        error: String,
    },
    /// Connected and bound again; the `reloaded` frames missed meanwhile follow as [`GameEvent::Frame`]s.
    Reconnected {
        /// Frames fetched by the reload.
        reloaded: usize,
    },
}

/// A sending handle of a [`GameClient`] that follows it across reconnects. Cheap to clone.
///
/// A send while the client is disconnected fails (with [`ClientError::Closed`] or an I/O error) and is not retried:
/// an action sent then is lost, as it would be on any dropped connection.
#[derive(Debug, Clone)]
pub struct GameSender {
    current: Arc<Mutex<SyncSender>>,
    /// The room this client watches (`spectate`), to watch again after a reconnect; cleared by `leave_room`,
    /// `game_over`, `room_left` for it, and an `error` answering `room_spectate` (such as `room_not_found`).
    watching: Arc<Mutex<Option<String>>>,
}

/// A reconnecting sync connection; see the module docs.
#[derive(Debug)]
pub struct GameClient {
    session: Session,
    transport: Transport,
    account: Option<AccountClient>,
    policy: ReconnectPolicy,
    conn: Option<SyncClient>,
    sender: GameSender,
    /// The running game, as announced by its `game_start`.
    game: Option<GameStart>,
    /// The next frame of the running game to deliver.
    next_frame: u64,
    out: VecDeque<GameEvent>,
    /// The error code of the last `error` the server sent, to tell "don't come back" from a plain drop.
    last_error: Option<ErrorCode>,
    reconnect: Option<Reconnect>,
    keepalive: tokio::time::Interval,
    close_reason: Option<ClientError>,
    done: bool,
}

#[derive(Debug)]
struct Reconnect {
    attempt: u32,
    delay: Duration,
    give_up_at: Instant,
}

/// How often an idle [`GameClient`] pings, well within the server's default `sync.idle_timeout_secs` of 60.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

impl GameClient {
    /// Connects with `session` ([`SyncClient::connect_session`]) and reconnects with [`ReconnectPolicy::default`].
    pub async fn connect(session: Session) -> Result<Self, ClientError> {
        Self::connect_with(session, ReconnectPolicy::default()).await
    }

    /// Connects with `session` and reconnects as `policy` says.
    pub async fn connect_with(session: Session, policy: ReconnectPolicy) -> Result<Self, ClientError> {
        Self::connect_via(session, policy, Transport::Tcp).await
    }

    /// [`GameClient::connect_with`] over `transport`; every reconnect uses it too.
    pub async fn connect_via(
        session: Session,
        policy: ReconnectPolicy,
        transport: Transport,
    ) -> Result<Self, ClientError> {
        let conn = SyncClient::connect_session_via(&session, transport).await?;
        let sender =
            GameSender { current: Arc::new(Mutex::new(conn.sender().clone())), watching: Arc::new(Mutex::new(None)) };
        let mut keepalive = tokio::time::interval_at(Instant::now() + KEEPALIVE, KEEPALIVE);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ok(Self {
            session,
            transport,
            account: None,
            policy,
            conn: Some(conn),
            sender,
            game: None,
            next_frame: 0,
            out: VecDeque::new(),
            last_error: None,
            reconnect: None,
            keepalive,
            close_reason: None,
            done: false,
        })
    }

    /// Refreshes the session at `account` when a reconnect finds the access token expired.
    pub fn with_refresh(mut self, account: AccountClient) -> Self {
        self.account = Some(account);
        self
    }

    /// A sending handle for another task; it follows reconnects.
    pub fn sender(&self) -> GameSender {
        self.sender.clone()
    }

    /// The session in use (a refreshed one after a token refresh).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The running game's `game_start`, if a game runs.
    pub fn game(&self) -> Option<&GameStart> {
        self.game.as_ref()
    }

    /// The next frame number [`GameClient::next_event`] will deliver.
    pub fn next_frame(&self) -> u64 {
        self.next_frame
    }

    /// True while the connection is down and the client is trying to get it back.
    pub fn is_reconnecting(&self) -> bool {
        self.reconnect.is_some()
    }

    /// Why the client ended, once [`GameClient::next_event`] returned `None`: a server error that forbids
    /// reconnecting, a crypto failure, or the last reconnect failure. `None` after a clean close with reconnects
    /// disabled.
    pub fn close_reason(&self) -> Option<&ClientError> {
        self.close_reason.as_ref()
    }

    /// `room_enter`: joins `room_id` (created when missing), or quick-matches when `None`.
    pub async fn enter_room(&self, room_id: Option<&str>) -> Result<(), ClientError> {
        self.sender.enter_room(room_id).await
    }

    /// `room_leave`.
    pub async fn leave_room(&self) -> Result<(), ClientError> {
        self.sender.leave_room().await
    }

    /// `room_prepare`.
    pub async fn prepare(&self) -> Result<(), ClientError> {
        self.sender.prepare().await
    }

    /// `sync_action` stamped with the current time.
    pub async fn send_action(&self, action_data: &Value) -> Result<(), ClientError> {
        self.sender.send_action(action_data).await
    }

    /// `sync_checksum` of `frame` (see [`SyncSender::send_checksum`]).
    pub async fn send_checksum(&self, frame: u64, hash: &str) -> Result<(), ClientError> {
        self.sender.send_checksum(frame, hash).await
    }

    /// `room_spectate` (see [`SyncSender::spectate`]): the frames come as [`GameEvent::Frame`], each once and in
    /// order. A spectator has no seat; after a reconnect the client watches again by itself (the history comes
    /// again and the frames already delivered are skipped), until `leave_room`, `game_over`, `room_left` or an
    /// `error` answering the `room_spectate` (such as `room_not_found`).
    pub async fn spectate(&self, room_id: &str) -> Result<(), ClientError> {
        self.sender.spectate(room_id).await
    }

    /// The room this client watches and would watch again after a reconnect, if any.
    pub fn watching(&self) -> Option<String> {
        self.sender.watching.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// `ping`.
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.sender.ping().await
    }

    /// The next event, reconnecting as needed; `None` once the client has ended (see [`GameClient::close_reason`]).
    ///
    /// Pings the server every [`KEEPALIVE`] while waiting, so an idle player is not dropped. Cancel-safe between
    /// events: dropping the future loses no server event (at worst a reconnect attempt starts over).
    pub async fn next_event(&mut self) -> Option<GameEvent> {
        loop {
            if let Some(ev) = self.out.pop_front() {
                return Some(ev);
            }
            if self.done {
                return None;
            }
            if self.reconnect.is_some() {
                self.attempt_reconnect().await;
                continue;
            }
            let Some(conn) = self.conn.as_mut() else {
                self.done = true;
                continue;
            };
            let ev = tokio::select! {
                ev = conn.next_event() => ev,
                _ = self.keepalive.tick() => {
                    // A failed ping shows up as the connection's end on the next read.
                    let _ = conn.ping().await;
                    continue;
                }
            };
            match ev {
                Some(ev) => self.on_event(ev).await,
                None => {
                    let reason = conn.events().close_reason().map(ToString::to_string);
                    let crypto = matches!(conn.events().close_reason(), Some(ClientError::Crypto(_)));
                    self.conn = None;
                    self.on_drop(reason, crypto);
                }
            }
        }
    }

    async fn on_event(&mut self, ev: ServerEvent) {
        match ev {
            ServerEvent::Frame(frame) => self.on_frame(frame).await,
            // Not asked for by this client: the history a spectator gets after `room_spectate`.
            ServerEvent::Reload(chunk) => {
                for frame in chunk.frames {
                    self.on_frame(frame).await;
                }
            }
            ServerEvent::GameStart(start) => {
                let repeat =
                    self.game.as_ref().is_some_and(|g| g.room_id == start.room_id && g.start_time == start.start_time);
                if !repeat {
                    self.game = Some(start.clone());
                    self.next_frame = 0;
                    self.out.push_back(GameEvent::Server(ServerEvent::GameStart(start)));
                }
            }
            ServerEvent::GameOver(over) => {
                self.game = None;
                *self.sender.watching.lock().unwrap_or_else(PoisonError::into_inner) = None;
                self.out.push_back(GameEvent::Server(ServerEvent::GameOver(over)));
            }
            ServerEvent::Error(body) => {
                self.last_error = Some(body.code);
                if body.proto.as_deref() == Some("room_spectate") {
                    // The room is gone (`room_not_found`) or cannot be watched: nothing to watch again.
                    self.stop_watching(None);
                }
                self.out.push_back(GameEvent::Server(ServerEvent::Error(body)));
            }
            ServerEvent::RoomLeft(left) => {
                self.stop_watching(Some(&left.room_id));
                self.out.push_back(GameEvent::Server(ServerEvent::RoomLeft(left)));
            }
            other => self.out.push_back(GameEvent::Server(other)),
        }
    }

    /// Forgets the watched room (only if it is `room`, when given).
    fn stop_watching(&mut self, room: Option<&str>) {
        let mut watching = self.sender.watching.lock().unwrap_or_else(PoisonError::into_inner);
        if room.is_none_or(|r| watching.as_deref() == Some(r)) {
            *watching = None;
        }
    }

    async fn on_frame(&mut self, frame: Frame) {
        if frame.frame_count < self.next_frame {
            return; // Already delivered (a reload overlapping the live stream).
        }
        if frame.frame_count > self.next_frame {
            let from = self.next_frame;
            if let Err(e) = self.reload(from).await {
                tracing::warn!(from, got = frame.frame_count, error = %e, "cannot fill a frame gap");
                self.out.push_back(GameEvent::Server(ServerEvent::Error(movan_protocol::server::ErrorBody {
                    code: e.server_code().unwrap_or(ErrorCode::Internal),
                    message: format!("frames {from}..{} are missing and the reload failed: {e}", frame.frame_count),
                    proto: None,
                })));
                // Deliver what we have rather than stall the game forever; the gap is reported above.
                self.next_frame = frame.frame_count;
            }
            if frame.frame_count < self.next_frame {
                return;
            }
        }
        self.next_frame = frame.frame_count + 1;
        self.out.push_back(GameEvent::Frame(frame));
    }

    /// Reloads from `from` on the current connection and queues the frames not delivered yet; returns how many.
    async fn reload(&mut self, from: u64) -> Result<usize, ClientError> {
        let conn = self.conn.as_mut().ok_or(ClientError::Closed)?;
        let frames = conn.reload(from, self.policy.reload_timeout).await?;
        let mut n = 0;
        for frame in frames {
            if frame.frame_count == self.next_frame {
                self.next_frame += 1;
                self.out.push_back(GameEvent::Frame(frame));
                n += 1;
            }
        }
        Ok(n)
    }

    fn on_drop(&mut self, reason: Option<String>, crypto: bool) {
        let fatal = self.last_error.take().filter(|code| is_final(*code));
        if let Some(code) = fatal {
            self.close_reason = Some(ClientError::Server {
                code,
                message: "the server closed the connection and asked not to reconnect".into(),
                proto: None,
            });
            self.done = true;
            return;
        }
        if crypto || !self.policy.enabled {
            self.close_reason = reason.map(ClientError::Protocol);
            self.done = true;
            return;
        }
        let error = reason.unwrap_or_else(|| "connection closed".into());
        tracing::info!(uid = %self.session.uid, %error, "sync connection lost: reconnecting");
        self.reconnect = Some(Reconnect {
            attempt: 1,
            delay: self.policy.initial_delay,
            give_up_at: Instant::now() + self.policy.give_up_after,
        });
        self.out.push_back(GameEvent::Reconnecting { attempt: 1, error });
    }

    /// One reconnect attempt after its backoff delay; queues the events it leads to.
    async fn attempt_reconnect(&mut self) {
        let Some(state) = self.reconnect.as_mut() else {
            return;
        };
        tokio::time::sleep(state.delay).await;
        let result = match SyncClient::connect_session_via(&self.session, self.transport).await {
            Err(e) if e.server_code() == Some(ErrorCode::TokenExpired) && self.account.is_some() => {
                self.refresh_and_connect().await
            }
            other => other,
        };
        let Some(state) = self.reconnect.as_mut() else {
            return;
        };
        match result {
            Ok(conn) => {
                *self.sender.current.lock().unwrap_or_else(PoisonError::into_inner) = conn.sender().clone();
                self.conn = Some(conn);
                self.reconnect = None;
                self.last_error = None;
                let watching = self.sender.watching.lock().unwrap_or_else(PoisonError::into_inner).clone();
                let reloaded = if let Some(room) = watching {
                    // A spectator has no seat to rebind: watch again; what was already delivered is skipped.
                    if let Some(conn) = self.conn.as_ref()
                        && let Err(e) = conn.spectate(&room).await
                    {
                        tracing::debug!(error = %e, "spectating again failed; the connection's end will show");
                    }
                    0
                } else if self.game.is_some() {
                    match self.reload(self.next_frame).await {
                        Ok(n) => n,
                        Err(e) => {
                            // `not_in_room`: the grace period ran out and the game went on without us.
                            if e.server_code() == Some(ErrorCode::NotInRoom) {
                                self.game = None;
                            }
                            self.out.push_front(GameEvent::Server(ServerEvent::Error(error_body(&e))));
                            0
                        }
                    }
                } else {
                    0
                };
                tracing::info!(uid = %self.session.uid, reloaded, "sync connection restored");
                self.out.push_front(GameEvent::Reconnected { reloaded });
            }
            Err(e) if is_refusal(&e) || Instant::now() + state.delay >= state.give_up_at => {
                tracing::warn!(uid = %self.session.uid, error = %e, "giving up reconnecting");
                self.reconnect = None;
                self.close_reason = Some(e);
                self.done = true;
            }
            Err(e) => {
                state.attempt += 1;
                state.delay = (state.delay * 2).min(self.policy.max_delay);
                self.out.push_back(GameEvent::Reconnecting { attempt: state.attempt, error: e.to_string() });
            }
        }
    }

    async fn refresh_and_connect(&mut self) -> Result<SyncClient, ClientError> {
        let account = self.account.as_ref().ok_or(ClientError::Closed)?;
        self.session = account.refresh(&self.session.refresh_token).await?;
        SyncClient::connect_session_via(&self.session, self.transport).await
    }
}

impl GameSender {
    fn current(&self) -> SyncSender {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// `room_enter`.
    pub async fn enter_room(&self, room_id: Option<&str>) -> Result<(), ClientError> {
        self.current().enter_room(room_id).await
    }

    /// `room_leave`.
    pub async fn leave_room(&self) -> Result<(), ClientError> {
        *self.watching.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.current().leave_room().await
    }

    /// `room_prepare`.
    pub async fn prepare(&self) -> Result<(), ClientError> {
        self.current().prepare().await
    }

    /// `sync_action` stamped with the current time.
    pub async fn send_action(&self, action_data: &Value) -> Result<(), ClientError> {
        self.current().send_action(action_data).await
    }

    /// `sync_checksum` of `frame` (see [`SyncSender::send_checksum`]).
    pub async fn send_checksum(&self, frame: u64, hash: &str) -> Result<(), ClientError> {
        self.current().send_checksum(frame, hash).await
    }

    /// `room_spectate` (see [`SyncSender::spectate`]); remembered, to watch again after a reconnect.
    pub async fn spectate(&self, room_id: &str) -> Result<(), ClientError> {
        *self.watching.lock().unwrap_or_else(PoisonError::into_inner) = Some(room_id.to_owned());
        self.current().spectate(room_id).await
    }

    /// `ping`.
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.current().ping().await
    }

    /// The current connection's sender, for anything else (it stops working at the next drop).
    pub fn connection(&self) -> SyncSender {
        self.current()
    }
}

/// Error codes after which the server closes and a reconnect would be refused or would undo the user's intent.
fn is_final(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Replaced
            | ErrorCode::Kicked
            | ErrorCode::SessionRevoked
            | ErrorCode::Banned
            | ErrorCode::ShuttingDown
            | ErrorCode::Unauthenticated
            | ErrorCode::BadToken
            | ErrorCode::TokenExpired
            | ErrorCode::UidMismatch
    )
}

/// A failed reconnect that retrying cannot fix.
fn is_refusal(e: &ClientError) -> bool {
    matches!(e, ClientError::Crypto(_)) || e.server_code().is_some_and(is_final)
}

fn error_body(e: &ClientError) -> movan_protocol::server::ErrorBody {
    match e {
        ClientError::Server { code, message, proto } => {
            movan_protocol::server::ErrorBody { code: *code, message: message.clone(), proto: proto.clone() }
        }
        other => {
            movan_protocol::server::ErrorBody { code: ErrorCode::Internal, message: other.to_string(), proto: None }
        }
    }
}
