//! `/v1/me/matches`: the bearer's match history.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::Authenticated;
use crate::state::AppState;
use crate::store::{MatchCursor, MatchRecord};

/// Page size without `?limit`.
pub const DEFAULT_LIMIT: usize = 20;
/// Largest `?limit`.
pub const MAX_LIMIT: usize = 100;

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    limit: Option<usize>,
    before: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct MatchList {
    matches: Vec<MatchRecord>,
    /// Pass as `?before=` for the next page; `null` on the last page.
    next: Option<String>,
}

/// `GET /v1/me/matches[?limit=N][&before=CURSOR]`: newest first, `limit` (1 to 100, default 20) per page.
pub(super) async fn list(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<MatchList>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be 1 to {MAX_LIMIT}")));
    }
    let before = match query.before.as_deref() {
        Some(text) => Some(
            text.parse::<MatchCursor>()
                .map_err(|_| ApiError::BadRequest("before must be a `next` value from a previous page".into()))?,
        ),
        None => None,
    };
    let page = state.store.matches_of(&claims.sub, before.as_ref(), limit).await?;
    Ok(Json(MatchList { matches: page.matches, next: page.next.map(|c| c.to_string()) }))
}
