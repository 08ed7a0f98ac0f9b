//! `GET /v1/matches/{match_id}/replay`: a finished match's replay, for its players and for admins.

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use movan_protocol::replay::{Replay, one_line};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::extract::Authenticated;
use crate::state::AppState;
use crate::store::Role;

/// The one answer for a match the caller may not see and for one that does not exist, so ids cannot be probed.
const NOT_YOURS: &str = "no match with this id has you as a player";

#[derive(Debug, Deserialize)]
pub(super) struct ReplayQuery {
    format: Option<String>,
}

/// `GET /v1/matches/{match_id}/replay[?format=jsonl]`: the replay file (docs/replay.md) as stored, or with
/// `format=jsonl` its JSON lines (the header, then every `sync_frame` message), for clients without zstd.
pub(super) async fn download(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(match_id): Path<String>,
    query: Result<Query<ReplayQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let jsonl = match query.format.as_deref() {
        None | Some("movan") => false,
        Some("jsonl") => true,
        Some(_) => return Err(ApiError::BadRequest("format must be `movan` (the file) or `jsonl`".into())),
    };
    let record = state.store.match_record(&match_id).await?.ok_or(ApiError::ReplayNotFound(NOT_YOURS))?;
    if !record.report.players.contains(&claims.sub) {
        let admin = state.store.user(&claims.sub).await?.is_some_and(|u| u.role == Role::Admin && !u.is_banned());
        if !admin {
            return Err(ApiError::ReplayNotFound(NOT_YOURS));
        }
    }
    let file = state.store.replay(&match_id).await?.ok_or(ApiError::ReplayNotFound(
        "this match has no replay: it was deleted to keep within the server's retention limits, or never arrived",
    ))?;
    if !jsonl {
        let disposition = format!("attachment; filename=\"{}.movanreplay\"", sanitize(&match_id));
        let mut response =
            ([(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.movan.replay"))], Bytes::from(file))
                .into_response();
        if let Ok(value) = HeaderValue::from_str(&disposition) {
            response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
        }
        return Ok(response);
    }
    let replay =
        Replay::parse(file).map_err(|e| ApiError::Internal(anyhow::anyhow!("stored replay {match_id}: {e}")))?;
    let header = serde_json::to_vec(&replay.header).map_err(|e| ApiError::Internal(e.into()))?;
    // Decompressed a block at a time on a blocking thread, so a long replay never sits whole in memory.
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut line = header;
        line.push(b'\n');
        let mut out = line;
        for frame in replay.frames() {
            match frame {
                Ok((_, body)) => {
                    out.extend_from_slice(&one_line(&body));
                    out.push(b'\n');
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                    return;
                }
            }
            if out.len() >= 64 * 1024 && tx.blocking_send(Ok(Bytes::from(std::mem::take(&mut out)))).is_err() {
                return;
            }
        }
        let _ = tx.blocking_send(Ok(Bytes::from(out)));
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"))], Body::from_stream(stream))
        .into_response())
}

/// `match_id` with only the characters safe in a quoted file name.
fn sanitize(match_id: &str) -> String {
    match_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}
