//! A connection's reader: moves the message bodies its transport reads, and the time, into its [`Connection`], and
//! carries out what the connection asks (fetch a session key, queue the handshake, hand requests to the engine).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use movan_protocol::crypto::{self, SessionKey};
use movan_protocol::{ErrorCode, FrameError, ProtocolError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::engine_task::Input;
use super::writer::Outgoing;
use super::{ConnShared, SharedConnection, lock, now, sleep_until};
use crate::connection::{CloseReason, Event};
use crate::engine::ConnId;
use crate::limits::ConnectionPermit;
use crate::unauthenticated::Pending;

/// Reads message bodies until the connection closes or the peer goes away. The permit holds the connection's place
/// in the connection limits until the reader ends; `pending` its place among the unauthenticated until it is bound.
pub(super) async fn run(
    id: ConnId,
    mut bodies: BoxStream<'static, Result<Bytes, FrameError>>,
    conn: SharedConnection,
    queue: mpsc::Sender<Outgoing>,
    cancel: CancellationToken,
    shared: Arc<ConnShared>,
    (_permit, mut pending): (ConnectionPermit, Pending),
) {
    loop {
        let deadline = lock(&conn).poll_timeout();
        tokio::select! {
            () = cancel.cancelled() => break,
            () = pending.shed() => {
                let reason = CloseReason::Shed { max: shared.unauthenticated.max(), key: "sync.max_unauthenticated" };
                debug!(conn = id.0, reason = %reason, "shed before authenticating");
                let _ = shared.inputs.send(Input::Close { conn: id, reason }).await;
                break;
            }
            () = sleep_until(deadline) => lock(&conn).handle_timeout(now()),
            item = bodies.next() => match item {
                Some(Ok(body)) => lock(&conn).handle_frame(&body, now()),
                Some(Err(FrameError::TooLarge { len, .. })) => lock(&conn).handle_too_large(len, now()),
                Some(Err(FrameError::Io(e))) => {
                    debug!(conn = id.0, error = %e, reason = %CloseReason::PeerClosed, "read failed");
                    break;
                }
                None => {
                    debug!(conn = id.0, reason = %CloseReason::PeerClosed, "peer closed");
                    break;
                }
            },
        }
        if !carry_out(id, &conn, &queue, &shared).await {
            break;
        }
        if lock(&conn).is_bound() {
            pending.authenticated();
        }
    }
    let _ = shared.inputs.send(Input::Closed { conn: id }).await;
}

/// Carries out everything the connection has to say, transmits before events. False when the reader must stop:
/// the connection closed, or the engine is gone.
pub(super) async fn carry_out(
    id: ConnId,
    conn: &SharedConnection,
    queue: &mpsc::Sender<Outgoing>,
    shared: &ConnShared,
) -> bool {
    loop {
        let (transmit, event) = {
            let mut c = lock(conn);
            match c.poll_transmit() {
                Some(t) => (Some(t), None),
                None => (None, c.poll_event()),
            }
        };
        if let Some(body) = transmit {
            if queue.try_send(Outgoing::Plain(body)).is_err() {
                let e = ProtocolError::new(ErrorCode::LimitExceeded, "send queue full during the handshake");
                let _ = shared.inputs.send(Input::Close { conn: id, reason: CloseReason::Refused(e) }).await;
                return false;
            }
            continue;
        }
        let input = match event {
            None => return true,
            Some(Event::FetchSessionKey { uid, sid }) => {
                let key = session_key(shared, &uid, &sid).await;
                let salt = crypto::generate_salt(&mut rand::rngs::OsRng);
                lock(conn).handle_session_key(key, salt, now());
                continue;
            }
            Some(Event::Authenticated(identity)) => Input::Authenticated { conn: id, identity },
            Some(Event::Request { request, timestamp }) => Input::Request { conn: id, request, timestamp },
            Some(Event::Error(error)) => Input::Error { conn: id, error },
            Some(Event::Close(reason)) => {
                debug!(conn = id.0, reason = %reason, "connection closes");
                let _ = shared.inputs.send(Input::Close { conn: id, reason }).await;
                return false;
            }
        };
        if shared.inputs.send(input).await.is_err() {
            return false;
        }
    }
}

/// The session key of `sid`, from the account server (cached), or the error that refuses the connection.
async fn session_key(shared: &ConnShared, uid: &str, sid: &str) -> Result<SessionKey, ProtocolError> {
    let keys = shared.keys.get().ok_or_else(|| {
        ProtocolError::new(ErrorCode::Unavailable, "this server has no source of session keys (no account server link)")
    })?;
    let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    keys.get(uid, sid, unix).await
}
