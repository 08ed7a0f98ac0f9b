//! `/v1/admin`: what admins may do to other users.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use tracing::info;

use crate::error::ApiError;
use crate::extract::Admin;
use crate::nodes::Notice;
use crate::state::AppState;
use crate::store::{Role, User};

/// Body of a successful ban or unban: the user as it now is.
#[derive(Debug, Serialize)]
pub(super) struct UserStatus {
    uid: String,
    username: String,
    role: Role,
    banned: bool,
    /// Unix seconds; `null` when not banned.
    banned_at: Option<u64>,
}

impl From<User> for UserStatus {
    fn from(user: User) -> Self {
        Self {
            banned: user.is_banned(),
            uid: user.uid,
            username: user.username,
            role: user.role,
            banned_at: user.banned_at,
        }
    }
}

/// `POST /v1/admin/users/{uid}/ban`: the user can no longer log in or refresh, every session of theirs ends, and the
/// sync servers drop their connections. Banning a banned user keeps the first ban time (and repeats the rest).
pub(super) async fn ban(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(uid): Path<String>,
) -> Result<Json<UserStatus>, ApiError> {
    if uid == admin.uid {
        return Err(ApiError::BadRequest("an admin cannot ban themselves".into()));
    }
    let target = state.store.user(&uid).await?.ok_or(ApiError::UserNotFound)?;
    let at = target.banned_at.unwrap_or_else(|| state.now());
    let user = state.store.set_banned(&uid, Some(at)).await?.ok_or(ApiError::UserNotFound)?;
    state.store.flush().await?;
    info!(uid = %user.uid, username = %user.username, by = %admin.uid, "banned");
    state.nodes.broadcast(&Notice::UserBanned { uid: user.uid.clone() }, state.now());
    Ok(Json(user.into()))
}

/// `POST /v1/admin/users/{uid}/unban`: the user may log in again (sessions ended by the ban stay ended).
pub(super) async fn unban(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(uid): Path<String>,
) -> Result<Json<UserStatus>, ApiError> {
    let user = state.store.set_banned(&uid, None).await?.ok_or(ApiError::UserNotFound)?;
    state.store.flush().await?;
    state.nodes.forget_ban(&user.uid);
    info!(uid = %user.uid, username = %user.username, by = %admin.uid, "unbanned");
    Ok(Json(user.into()))
}
