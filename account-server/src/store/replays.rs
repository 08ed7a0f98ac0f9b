//! Replays on sled: the files, and their order of arrival for the retention limits.
//!
//! Trees:
//! - `replays`: match id → the replay file, as the sync server sent it;
//! - `replay_order`: arrival number (8 bytes big-endian) → file size (8 bytes big-endian) and match id, oldest
//!   first, so the oldest replay is the first key;
//! - `meta`: `replay_count` and `replay_bytes` (8 bytes big-endian each), kept in the same transactions.
//!
//! [`insert`] stores a replay, then removes the oldest ones until both limits of [`ReplayRetention`] hold.
//!
//! On PostgreSQL, `replays` holds match id, arrival number, size and file, and the single row of `replay_usage` the
//! counters; [`insert_pg`] locks that row, then stores and evicts in one transaction.

use sled::Transactional as _;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::postgres::{db_int, from_db_int};
use super::{Abort, PgStore, SledStore, StoreError};

const REPLAY_COUNT: &[u8] = b"replay_count";
const REPLAY_BYTES: &[u8] = b"replay_bytes";

/// How many replays, and how many bytes of them, the store keeps; the oldest go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayRetention {
    /// Replays kept at most.
    pub max_count: u64,
    /// Bytes of replays kept at most.
    pub max_bytes: u64,
}

/// What [`super::Store::insert_replay`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayInsert {
    /// False when this match's replay was stored before (nothing changed then).
    pub stored: bool,
    /// Match ids whose replays were removed to stay within the retention limits, oldest first.
    pub evicted: Vec<String>,
}

/// Replays kept and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayUsage {
    /// Replays stored.
    pub count: u64,
    /// Their bytes.
    pub bytes: u64,
}

type TxResult<T> = Result<T, ConflictableTransactionError<Abort>>;

fn counter(meta: &TransactionalTree, key: &[u8]) -> TxResult<u64> {
    match meta.get(key)? {
        Some(bytes) => <[u8; 8]>::try_from(bytes.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| ConflictableTransactionError::Abort(Abort::BadCounter)),
        None => Ok(0),
    }
}

fn add(meta: &TransactionalTree, key: &[u8], delta: i128) -> TxResult<()> {
    let value = (i128::from(counter(meta, key)?) + delta).clamp(0, i128::from(u64::MAX)) as u64;
    meta.insert(key, &value.to_be_bytes()[..])?;
    Ok(())
}

/// [`super::Store::insert_replay`] on sled.
pub(super) fn insert(
    store: &SledStore,
    match_id: &str,
    file: &[u8],
    retention: &ReplayRetention,
) -> Result<ReplayInsert, StoreError> {
    let seq = store.db.generate_id()?.to_be_bytes();
    let mut order_value = (file.len() as u64).to_be_bytes().to_vec();
    order_value.extend_from_slice(match_id.as_bytes());
    let stored = (&store.replays, &store.replay_order, &store.meta).transaction(|(replays, order, meta)| {
        if replays.get(match_id.as_bytes())?.is_some() {
            return Ok(false);
        }
        replays.insert(match_id.as_bytes(), file)?;
        order.insert(&seq[..], order_value.as_slice())?;
        add(meta, REPLAY_COUNT, 1)?;
        add(meta, REPLAY_BYTES, file.len() as i128)?;
        Ok(true)
    })?;
    let evicted = if stored { evict_while_over(store, retention, &seq)? } else { Vec::new() };
    Ok(ReplayInsert { stored, evicted })
}

/// Removes the oldest replays while the store is over a limit, never the one just stored (`keep`); returns their
/// match ids.
fn evict_while_over(store: &SledStore, retention: &ReplayRetention, keep: &[u8; 8]) -> Result<Vec<String>, StoreError> {
    let mut evicted = Vec::new();
    loop {
        let usage = usage(store)?;
        if usage.count <= retention.max_count && usage.bytes <= retention.max_bytes {
            return Ok(evicted);
        }
        let Some((key, value)) = store.replay_order.first()? else { return Ok(evicted) };
        if key.as_ref() == keep || value.len() < 8 {
            return Ok(evicted);
        }
        let size = u64::from_be_bytes(value[..8].try_into().unwrap_or_default());
        let id = String::from_utf8_lossy(&value[8..]).into_owned();
        let removed = (&store.replays, &store.replay_order, &store.meta).transaction(|(replays, order, meta)| {
            // Another request may have removed it meanwhile: then look again.
            if order.remove(key.as_ref())?.is_none() {
                return Ok(false);
            }
            replays.remove(id.as_bytes())?;
            add(meta, REPLAY_COUNT, -1)?;
            add(meta, REPLAY_BYTES, -i128::from(size))?;
            Ok(true)
        })?;
        if removed {
            evicted.push(id);
        }
    }
}

/// [`super::Store::replay_usage`] on sled.
pub(super) fn usage(store: &SledStore) -> Result<ReplayUsage, StoreError> {
    let read = |key: &[u8]| -> Result<u64, StoreError> {
        match store.meta.get(key)? {
            Some(bytes) => {
                <[u8; 8]>::try_from(bytes.as_ref()).map(u64::from_be_bytes).map_err(|_| StoreError::BadCounter)
            }
            None => Ok(0),
        }
    };
    Ok(ReplayUsage { count: read(REPLAY_COUNT)?, bytes: read(REPLAY_BYTES)? })
}

/// [`super::Store::insert_replay`] on PostgreSQL.
pub(super) async fn insert_pg(
    store: &PgStore,
    match_id: &str,
    file: &[u8],
    retention: &ReplayRetention,
) -> Result<ReplayInsert, StoreError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await?;
    // Locked until commit: inserts queue here, so arrival numbers follow commit order.
    let row = tx.query_one("SELECT count, bytes FROM replay_usage FOR UPDATE", &[]).await?;
    let (mut count, mut bytes) = (from_db_int(row.try_get(0)?), from_db_int(row.try_get(1)?));
    let size = file.len() as u64;
    let sql = "INSERT INTO replays (match_id, seq, size, file) VALUES ($1, nextval('replay_seq'), $2, $3) \
               ON CONFLICT (match_id) DO NOTHING RETURNING seq";
    let Some(row) = tx.query_opt(sql, &[&match_id, &db_int(size), &file]).await? else {
        return Ok(ReplayInsert { stored: false, evicted: Vec::new() });
    };
    let seq: i64 = row.try_get(0)?;
    (count, bytes) = (count + 1, bytes.saturating_add(size));
    let mut evicted = Vec::new();
    while count > retention.max_count || bytes > retention.max_bytes {
        let oldest = "DELETE FROM replays WHERE seq = (SELECT MIN(seq) FROM replays) AND seq <> $1 \
                      RETURNING match_id, size";
        let Some(row) = tx.query_opt(oldest, &[&seq]).await? else { break };
        evicted.push(row.try_get::<_, String>(0)?);
        (count, bytes) = (count.saturating_sub(1), bytes.saturating_sub(from_db_int(row.try_get(1)?)));
    }
    tx.execute("UPDATE replay_usage SET count = $1, bytes = $2", &[&db_int(count), &db_int(bytes)]).await?;
    tx.commit().await?;
    Ok(ReplayInsert { stored: true, evicted })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::Store;
    use crate::store::testing::on_every_store;

    on_every_store!(
        a_replay_is_stored_once_and_read_back,
        the_oldest_replays_go_when_over_a_limit,
        the_newest_replay_stays_even_alone_over_the_limit
    );

    fn keep(count: u64, bytes: u64) -> ReplayRetention {
        ReplayRetention { max_count: count, max_bytes: bytes }
    }

    async fn a_replay_is_stored_once_and_read_back(store: &dyn Store) {
        let first = store.insert_replay("m1", b"file one", &keep(10, 1000)).await.unwrap();
        assert_eq!(first, ReplayInsert { stored: true, evicted: vec![] });
        let again = store.insert_replay("m1", b"other bytes", &keep(10, 1000)).await.unwrap();
        assert!(!again.stored);
        assert_eq!(store.replay("m1").await.unwrap().unwrap(), b"file one");
        assert_eq!(store.replay("m2").await.unwrap(), None);
        assert_eq!(store.replay_usage().await.unwrap(), ReplayUsage { count: 1, bytes: 8 });
    }

    async fn the_oldest_replays_go_when_over_a_limit(store: &dyn Store) {
        for i in 0..5 {
            store.insert_replay(&format!("m{i}"), &[i as u8; 100], &keep(3, 10_000)).await.unwrap();
        }
        assert_eq!(store.replay_usage().await.unwrap(), ReplayUsage { count: 3, bytes: 300 });
        assert!(store.replay("m1").await.unwrap().is_none());
        assert!(store.replay("m2").await.unwrap().is_some());
        // By bytes: a 250-byte replay pushes every 100-byte one out (550, 450, 350, then 250 bytes).
        let big = store.insert_replay("big", &[9; 250], &keep(10, 300)).await.unwrap();
        assert_eq!(big.evicted, ["m2", "m3", "m4"]);
        assert_eq!(store.replay_usage().await.unwrap(), ReplayUsage { count: 1, bytes: 250 });
        assert!(store.replay("big").await.unwrap().is_some());
        // Within both limits nothing goes.
        assert!(store.insert_replay("small", &[1; 50], &keep(10, 300)).await.unwrap().evicted.is_empty());
    }

    async fn the_newest_replay_stays_even_alone_over_the_limit(store: &dyn Store) {
        store.insert_replay("old", &[1; 10], &keep(10, 100)).await.unwrap();
        let r = store.insert_replay("huge", &[2; 500], &keep(10, 100)).await.unwrap();
        assert_eq!(r.evicted, ["old"]);
        assert_eq!(store.replay_usage().await.unwrap(), ReplayUsage { count: 1, bytes: 500 });
    }
}
