//! The HTTP endpoints under `/v1`: accounts and sessions here, [`admin`], [`matches`] and [`replays`] in their
//! modules.

mod admin;
mod admin_nodes;
mod matches;
mod replays;

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use movan_protocol::crypto::SessionKey;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::error::ApiError;
use crate::extract::{Authenticated, ClientIp, JsonBody};
use crate::nodes::Notice;
use crate::state::AppState;
use crate::store::{RefreshGrant, RefreshUse, Role, Session, StoreError, User};
use crate::tokens::{new_refresh_token, new_session_id, refresh_token_digest};

/// The `/v1` routes, without fallbacks or layers.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/register", post(register))
        .route("/v1/login", post(login))
        .route("/v1/refresh", post(refresh))
        .route("/v1/logout", post(logout))
        .route("/v1/me", get(me))
        .route("/v1/me/matches", get(matches::list))
        .route("/v1/matches/{match_id}/replay", get(replays::download))
        .route("/v1/admin/users/{uid}/ban", post(admin::ban))
        .route("/v1/admin/users/{uid}/unban", post(admin::unban))
        .route("/v1/admin/users/{uid}/kick", post(admin_nodes::kick))
        .route("/v1/admin/nodes", get(admin_nodes::nodes))
        .route("/v1/admin/nodes/{node_id}/drain", post(admin_nodes::drain))
        .route("/v1/admin/nodes/{node_id}/undrain", post(admin_nodes::undrain))
        .route("/v1/admin/nodes/{node_id}/rooms", get(admin_nodes::rooms))
        .route("/v1/admin/nodes/{node_id}/rooms/{room_id}/end", post(admin_nodes::end_room))
}

/// Body of `register` and `login`.
#[derive(Debug, Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Debug, Deserialize)]
struct RefreshRequest {
    refresh_token: String,
}

#[derive(Debug, Serialize)]
struct Registered {
    uid: String,
}

/// Body of a successful `login` or `refresh`.
#[derive(Debug, Serialize)]
struct Tokens {
    uid: String,
    token: String,
    refresh_token: String,
    expires_in: u64,
    sync_addr: String,
    /// The node's WebSocket endpoint (`ws://host:port/ws`), for browsers; absent when it has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    sync_ws_url: Option<String>,
    /// The node's UDP (KCP) endpoint (`host:port`); absent when it has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    sync_udp_addr: Option<String>,
    /// The session's encryption key, standard base64 (see `docs/encryption.md`); the same for the whole session.
    session_key: String,
}

#[derive(Debug, Serialize)]
struct Me {
    uid: String,
    username: String,
    role: Role,
}

/// `POST /v1/register`: 201 `{"uid"}` once the account is durable. Every attempt counts against
/// `account.register_per_ip`, checked first.
async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(req): JsonBody<Credentials>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    state
        .limits
        .begin_register(ip, Instant::now())
        .inspect_err(|r| debug!(?ip, limit = ?r.kind, "register refused"))?;
    state.rules.check_username(&req.username)?;
    state.rules.check_password(&req.password)?;
    // Not needed for correctness (`create_user` is atomic), but spares a hash for a name already taken.
    if state.store.user_by_name(&req.username).await?.is_some() {
        return Err(ApiError::UsernameTaken);
    }
    let hash = state.passwords.hash(req.password).await?;
    let role = state.role_for_new(&req.username);
    let user = match state.store.create_user(&req.username, &hash, role, state.now()).await {
        Ok(user) => user,
        Err(StoreError::UsernameTaken) => return Err(ApiError::UsernameTaken),
        Err(e) => return Err(e.into()),
    };
    state.store.flush().await?;
    info!(uid = %user.uid, username = %user.username, role = role.as_str(), "registered");
    Ok((StatusCode::CREATED, Json(Registered { uid: user.uid })))
}

/// `POST /v1/login`: a new session, and the sync server to play on. Unknown users and wrong passwords get the same
/// answer in about the same time; only the right password learns that an account is banned. The attempt limits
/// are checked before the password is hashed; a right password does not count as a failure for the username.
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(req): JsonBody<Credentials>,
) -> Result<Response, ApiError> {
    let attempt = state
        .limits
        .begin_login(ip, &req.username, Instant::now())
        .inspect_err(|r| debug!(?ip, limit = ?r.kind, "login refused"))?;
    let user = state.store.user_by_name(&req.username).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let user = match (state.passwords.verify(req.password, stored).await?, user) {
        (true, Some(user)) => user,
        _ => return Err(ApiError::InvalidCredentials),
    };
    state.limits.password_verified(attempt, Instant::now());
    if user.is_banned() {
        return Err(ApiError::Banned);
    }
    // Before the session exists, so a refused login leaves nothing behind.
    let node = state.nodes.assign().ok_or(ApiError::NoSyncServer)?;
    let now = state.now();
    let sid = new_session_id();
    let expires_at = now + state.refresh_ttl_secs;
    let key = SessionKey::generate(&mut OsRng);
    let session =
        Session { uid: user.uid.clone(), created_at: now, expires_at, revoked: false, key: Some(key.clone()) };
    let refresh_token = new_refresh_token();
    let grant = RefreshGrant { sid: sid.clone(), uid: user.uid.clone(), expires_at };
    state.store.create_session(&sid, &session, &refresh_token_digest(&refresh_token), &grant).await?;
    info!(uid = %user.uid, sid = %sid, sync_addr = %node.sync_addr, "logged in");
    issue(&state, &user, &sid, refresh_token, node, &key, now)
}

/// `POST /v1/refresh`: new tokens for the session, its session key (unchanged; a session from before encrypted
/// sessions gets one now), and the sync server to play on; the presented refresh token is used up. With no sync
/// server available the token is left untouched.
async fn refresh(State(state): State<AppState>, JsonBody(req): JsonBody<RefreshRequest>) -> Result<Response, ApiError> {
    if !state.nodes.has_room() {
        return Err(ApiError::NoSyncServer);
    }
    let now = state.now();
    let grant = match state.store.spend_refresh_token(&refresh_token_digest(&req.refresh_token)).await? {
        Some(RefreshUse::Fresh(grant)) if grant.expires_at > now => grant,
        Some(RefreshUse::Reused(grant)) if grant.expires_at > now => {
            // Two parties hold the session's refresh tokens: whoever refreshed first may be the thief. End the
            // session for both (RFC 9700 §4.14.2), on the sync servers too.
            warn!(uid = %grant.uid, sid = %grant.sid, "a spent refresh token was used again; revoking the session");
            state.store.revoke_session(&grant.sid).await?;
            state.store.flush().await?;
            state.nodes.broadcast(&Notice::SessionRevoked { uid: grant.uid, sid: grant.sid }, now);
            return Err(ApiError::InvalidRefreshToken);
        }
        _ => return Err(ApiError::InvalidRefreshToken),
    };
    let user = state.store.user(&grant.uid).await?.ok_or(ApiError::InvalidRefreshToken)?;
    if user.is_banned() {
        return Err(ApiError::Banned);
    }
    let refresh_token = new_refresh_token();
    let next = RefreshGrant { expires_at: now + state.refresh_ttl_secs, ..grant };
    let key_if_missing = SessionKey::generate(&mut OsRng);
    let key = state
        .store
        .extend_session(&refresh_token_digest(&refresh_token), &next, &key_if_missing)
        .await?
        .ok_or(ApiError::InvalidRefreshToken)?;
    // The last node may have gone since the check above; the session lives on, the client retries.
    let node = state.nodes.assign().ok_or(ApiError::NoSyncServer)?;
    info!(uid = %user.uid, sid = %next.sid, sync_addr = %node.sync_addr, "refreshed");
    issue(&state, &user, &next.sid, refresh_token, node, &key, now)
}

/// `POST /v1/logout`: revokes the session of the bearer token, with all its tokens, and tells the sync servers to
/// drop the session's connections.
async fn logout(State(state): State<AppState>, Authenticated(claims): Authenticated) -> Result<StatusCode, ApiError> {
    state.store.revoke_session(&claims.sid).await?;
    state.store.flush().await?;
    info!(uid = %claims.sub, sid = %claims.sid, "logged out");
    state.nodes.broadcast(&Notice::SessionRevoked { uid: claims.sub, sid: claims.sid }, state.now());
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/me`: who the bearer token belongs to, and their role.
async fn me(State(state): State<AppState>, Authenticated(claims): Authenticated) -> Result<Json<Me>, ApiError> {
    let user = state.store.user(&claims.sub).await?.ok_or(ApiError::Unauthorized("session has ended"))?;
    Ok(Json(Me { uid: user.uid, username: user.username, role: user.role }))
}

/// Fallback for unknown paths.
pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// Fallback for known paths with another method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The login/refresh answer: a new access token plus `refresh_token`, never cached (RFC 6749 §5.1).
fn issue(
    state: &AppState,
    user: &User,
    sid: &str,
    refresh_token: String,
    node: crate::nodes::Assigned,
    key: &SessionKey,
    now: u64,
) -> Result<Response, ApiError> {
    let body = Tokens {
        uid: user.uid.clone(),
        token: state.tokens.issue(&user.uid, sid, &user.username, now)?,
        refresh_token,
        expires_in: state.tokens.access_ttl_secs(),
        sync_addr: node.sync_addr,
        sync_ws_url: (!node.sync_ws_url.is_empty()).then_some(node.sync_ws_url),
        sync_udp_addr: (!node.sync_udp_addr.is_empty()).then_some(node.sync_udp_addr),
        session_key: key.to_base64(),
    };
    let mut response = Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
