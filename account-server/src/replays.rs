//! Replays from the sync servers: uploads in chunks (`replay_chunk`), held in memory until complete, then stored
//! through the [`Store`](crate::store::Store) within the retention limits.
//!
//! [`Uploads`] is the staging area, without IO: bounded in bytes (each upload counts at its full size from its first
//! chunk), one upload per match, and an upload that goes `account.replay_upload_timeout_secs` without a chunk is
//! dropped when the next upload starts.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use movan_protocol::rpc::{ChunkStored, REPLAY_CHUNK_BYTES, ReplayChunk, codes};
use tracing::{info, warn};

use crate::config::AccountConfig;
use crate::state::AppState;
use crate::store::{ReplayRetention, StoreError};

/// The replay limits of `[account]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplaySettings {
    /// Largest replay accepted.
    pub max_bytes: u64,
    /// What the store keeps.
    pub retention: ReplayRetention,
    /// Bytes of unfinished uploads at once.
    pub upload_max_bytes: u64,
    /// Seconds an unfinished upload may wait for its next chunk.
    pub upload_timeout_secs: u64,
}

impl ReplaySettings {
    /// From `[account]`.
    pub fn from_config(a: &AccountConfig) -> Self {
        Self {
            max_bytes: a.replay_max_bytes,
            retention: ReplayRetention { max_count: a.replay_keep_count, max_bytes: a.replay_keep_bytes },
            upload_max_bytes: a.replay_upload_max_bytes,
            upload_timeout_secs: a.replay_upload_timeout_secs,
        }
    }
}

/// A refused `replay_chunk`.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// No such match, or another node's.
    #[error("no match {0:?} reported by this node: report the match before its replay")]
    UnknownMatch(String),
    /// Over `account.replay_max_bytes`, or a chunk over the chunk limit.
    #[error("{0}")]
    TooLarge(String),
    /// The chunk is not where the upload stands.
    #[error("{0}; start again at offset 0")]
    OutOfOrder(String),
    /// `account.replay_upload_max_bytes` is taken by unfinished uploads.
    #[error(
        "the account server holds {held} bytes of unfinished uploads (account.replay_upload_max_bytes = {max}); try again later"
    )]
    Full {
        /// Bytes held.
        held: u64,
        /// The limit.
        max: u64,
    },
    /// `data` is not base64.
    #[error("data is not standard base64")]
    BadData,
    /// The store failed.
    #[error("storing the replay: {0}")]
    Store(#[from] StoreError),
}

impl ChunkError {
    /// The code of the error reply.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownMatch(_) => codes::UNKNOWN_MATCH,
            Self::TooLarge(_) => codes::REPLAY_TOO_LARGE,
            Self::OutOfOrder(_) | Self::BadData => codes::REPLAY_OUT_OF_ORDER,
            Self::Full { .. } => codes::UPLOADS_FULL,
            Self::Store(_) => codes::STORE_FAILED,
        }
    }
}

#[derive(Debug)]
struct Upload {
    node_id: String,
    total_len: u64,
    data: Vec<u8>,
    touched: u64,
}

/// What a chunk did to its upload.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// Bytes held so far; more to come.
    Partial(u64),
    /// The whole file.
    Complete(Vec<u8>),
}

/// Unfinished uploads, bounded.
#[derive(Debug, Default)]
pub struct Uploads {
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    uploads: HashMap<String, Upload>,
    /// Sum of the uploads' `total_len`.
    held: u64,
}

impl Table {
    fn remove(&mut self, match_id: &str) {
        if let Some(old) = self.uploads.remove(match_id) {
            self.held -= old.total_len;
        }
    }
}

impl Uploads {
    /// Adds chunk `data` (decoded) at `offset` of `match_id`'s upload from `node_id`, at Unix time `now`.
    pub fn add(
        &self,
        settings: &ReplaySettings,
        node_id: &str,
        chunk: &ReplayChunk,
        data: &[u8],
        now: u64,
    ) -> Result<Progress, ChunkError> {
        if chunk.total_len > settings.max_bytes {
            return Err(ChunkError::TooLarge(format!(
                "the replay is {} bytes; this server keeps replays up to {} (account.replay_max_bytes)",
                chunk.total_len, settings.max_bytes
            )));
        }
        if data.len() > REPLAY_CHUNK_BYTES {
            return Err(ChunkError::TooLarge(format!("a chunk carries at most {REPLAY_CHUNK_BYTES} bytes")));
        }
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let id = chunk.match_id.as_str();
        if chunk.offset == 0 {
            table.remove(id);
            let timeout = settings.upload_timeout_secs;
            let stale: Vec<String> =
                table.uploads.iter().filter(|(_, u)| u.touched + timeout < now).map(|(id, _)| id.clone()).collect();
            for old in stale {
                warn!(match_id = %old, "replay upload dropped: no chunk for account.replay_upload_timeout_secs");
                table.remove(&old);
            }
            if table.held + chunk.total_len > settings.upload_max_bytes {
                return Err(ChunkError::Full { held: table.held, max: settings.upload_max_bytes });
            }
            table.held += chunk.total_len;
            let upload =
                Upload { node_id: node_id.to_owned(), total_len: chunk.total_len, data: Vec::new(), touched: now };
            table.uploads.insert(id.to_owned(), upload);
        }
        let Some(upload) = table.uploads.get_mut(id) else {
            return Err(ChunkError::OutOfOrder(format!("no upload of {id:?} is under way")));
        };
        let end = chunk.offset + data.len() as u64;
        if upload.node_id != node_id
            || upload.total_len != chunk.total_len
            || upload.data.len() as u64 != chunk.offset
            || end > chunk.total_len
        {
            let why = format!("the upload of {id:?} stands at byte {} of {}", upload.data.len(), upload.total_len);
            table.remove(id);
            return Err(ChunkError::OutOfOrder(why));
        }
        upload.data.extend_from_slice(data);
        upload.touched = now;
        if end < chunk.total_len {
            return Ok(Progress::Partial(end));
        }
        let data = std::mem::take(&mut upload.data);
        table.remove(id);
        Ok(Progress::Complete(data))
    }

    /// Bytes held by unfinished uploads.
    pub fn held(&self) -> u64 {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).held
    }
}

/// `replay_chunk` from `node_id`.
pub async fn replay_chunk(state: &AppState, node_id: &str, chunk: ReplayChunk) -> Result<ChunkStored, ChunkError> {
    let settings = &state.replay_settings;
    if chunk.offset == 0 {
        let record = state.store.match_record(&chunk.match_id).await?;
        if record.as_ref().is_none_or(|r| r.node_id != node_id) {
            return Err(ChunkError::UnknownMatch(chunk.match_id));
        }
        if state.store.replay(&chunk.match_id).await?.is_some() {
            return Ok(ChunkStored { received: chunk.total_len, stored: true });
        }
    }
    let data = STANDARD.decode(&chunk.data).map_err(|_| ChunkError::BadData)?;
    match state.uploads.add(settings, node_id, &chunk, &data, state.now())? {
        Progress::Partial(received) => Ok(ChunkStored { received, stored: false }),
        Progress::Complete(file) => {
            let done = state.store.insert_replay(&chunk.match_id, &file, &settings.retention).await?;
            state.store.flush().await?;
            if !done.evicted.is_empty() {
                info!(count = done.evicted.len(), oldest = %done.evicted[0], "replays deleted for account.replay_keep_count / replay_keep_bytes");
            }
            info!(match_id = %chunk.match_id, node = %node_id, bytes = file.len(), "replay stored");
            Ok(ChunkStored { received: chunk.total_len, stored: true })
        }
    }
}

#[cfg(test)]
mod tests;
