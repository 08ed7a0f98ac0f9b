//! Match history: finished games as reported by the sync servers, listed per player, newest first.
//!
//! On sled, two trees:
//! - `matches`: match id → [`MatchRecord`];
//! - `user_matches`: uid, 0xFF, end time in milliseconds (8 bytes big-endian), a sequence number (8 bytes
//!   big-endian) → match id. Keys sort by player then end time, so a page is one reverse range scan of `limit`
//!   entries plus a lookup per entry, whatever the length of the history. The last 16 bytes of a key are the
//!   [`MatchCursor`] of its entry.
//!
//! On PostgreSQL the same in two tables: `matches` (match id → record as JSON) and `user_matches` (uid, the 16-byte
//! cursor as `bytea`, match id), whose primary key sorts like sled's index, so cursors mean the same on both.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sled::Transactional as _;
use sled::transaction::ConflictableTransactionError;

use super::{Abort, PgStore, SledStore, StoreError, decode, encode, index_prefix};

/// A finished game: the sync server's report and the node that sent it (the shape `GET /v1/me/matches` lists).
pub use movan_protocol::MatchRecord;

/// Where a page of matches ends: the next page holds the matches listed after it. Written as 22 characters of
/// base64url, opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MatchCursor([u8; 16]);

impl fmt::Display for MatchCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

/// A string that is not a [`MatchCursor`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a match cursor")]
pub struct BadCursor;

impl FromStr for MatchCursor {
    type Err = BadCursor;

    fn from_str(s: &str) -> Result<Self, BadCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| BadCursor)?;
        bytes.try_into().map(Self).map_err(|_| BadCursor)
    }
}

/// One page of a player's matches.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchPage {
    /// Newest first.
    pub matches: Vec<MatchRecord>,
    /// The cursor for the following page; `None` when there are no older matches.
    pub next: Option<MatchCursor>,
}

/// The cursor of a game ending at `ended_at` (seconds) with sequence number `seq`.
fn cursor_of(ended_at: f64, seq: u64) -> [u8; 16] {
    // A float cast saturates: times before 1970 sort first, NaN as 0.
    let ended_ms = (ended_at * 1000.0) as u64;
    let mut cursor = [0u8; 16];
    cursor[..8].copy_from_slice(&ended_ms.to_be_bytes());
    cursor[8..].copy_from_slice(&seq.to_be_bytes());
    cursor
}

/// The players of `game`, each once.
fn players_of(game: &MatchRecord) -> Vec<&str> {
    let mut players: Vec<&str> = game.report.players.iter().map(String::as_str).collect();
    players.sort_unstable();
    players.dedup();
    players
}

/// [`super::Store::insert_match`] on sled.
pub(super) fn insert(store: &SledStore, game: &MatchRecord) -> Result<bool, StoreError> {
    let report = &game.report;
    let record = encode(game);
    let cursor = cursor_of(report.ended_at, store.db.generate_id()?);
    let keys: Vec<Vec<u8>> = players_of(game)
        .into_iter()
        .map(|uid| {
            let mut key = index_prefix(uid);
            key.extend_from_slice(&cursor);
            key
        })
        .collect();
    let id = report.match_id.as_bytes();
    let stored = (&store.matches, &store.user_matches).transaction(|(matches, user_matches)| {
        if matches.get(id)?.is_some() {
            return Ok(false);
        }
        matches.insert(id, record.as_slice())?;
        for key in &keys {
            user_matches.insert(key.as_slice(), id)?;
        }
        Ok::<_, ConflictableTransactionError<Abort>>(true)
    })?;
    Ok(stored)
}

/// [`super::Store::matches_of`] on sled.
pub(super) fn page(
    store: &SledStore,
    uid: &str,
    before: Option<&MatchCursor>,
    limit: usize,
) -> Result<MatchPage, StoreError> {
    let prefix = index_prefix(uid);
    let entries = match before {
        Some(cursor) => {
            // Every key from the prefix up to prefix + cursor starts with the prefix.
            let mut end = prefix.clone();
            end.extend_from_slice(&cursor.0);
            store.user_matches.range(prefix..end)
        }
        None => store.user_matches.scan_prefix(prefix),
    };
    let mut matches = Vec::with_capacity(limit.min(128));
    let (mut last, mut more) = (None, false);
    for entry in entries.rev() {
        let (key, id) = entry?;
        if matches.len() == limit {
            more = true;
            break;
        }
        let Some(record) = store.matches.get(&id)? else {
            // Written in the same transaction as its index entries, so this cannot happen; skip rather than fail.
            continue;
        };
        matches.push(decode::<MatchRecord>("matches", &record)?);
        let tail: [u8; 16] = key[key.len() - 16..].try_into().expect("index keys end with a 16-byte cursor");
        last = Some(MatchCursor(tail));
    }
    Ok(MatchPage { matches, next: if more { last } else { None } })
}

/// [`super::Store::insert_match`] on PostgreSQL.
pub(super) async fn insert_pg(store: &PgStore, game: &MatchRecord) -> Result<bool, StoreError> {
    let record = String::from_utf8(encode(game)).expect("serde_json writes UTF-8");
    let mut client = store.client().await?;
    let tx = client.transaction().await?;
    let id = &game.report.match_id;
    let sql = "INSERT INTO matches (match_id, record) VALUES ($1, $2) ON CONFLICT (match_id) DO NOTHING";
    if tx.execute(sql, &[id, &record]).await? == 0 {
        return Ok(false);
    }
    let seq: i64 = tx.query_one("SELECT nextval('match_seq')", &[]).await?.get(0);
    let cursor = cursor_of(game.report.ended_at, u64::try_from(seq).unwrap_or(0));
    for uid in players_of(game) {
        let sql = "INSERT INTO user_matches (uid, cursor, match_id) VALUES ($1, $2, $3)";
        tx.execute(sql, &[&uid, &cursor.as_slice(), id]).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// [`super::Store::matches_of`] on PostgreSQL: one index range, newest first, one row more than the page to know
/// whether another follows.
pub(super) async fn page_pg(
    store: &PgStore,
    uid: &str,
    before: Option<&MatchCursor>,
    limit: usize,
) -> Result<MatchPage, StoreError> {
    let client = store.client().await?;
    let sql = client
        .prepare_cached(
            "SELECT m.record, u.cursor FROM user_matches u JOIN matches m ON m.match_id = u.match_id \
             WHERE u.uid = $1 AND ($2::bytea IS NULL OR u.cursor < $2) ORDER BY u.cursor DESC LIMIT $3",
        )
        .await?;
    let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
    let rows = client.query(&sql, &[&uid, &before.map(|c| c.0.as_slice()), &fetch]).await?;
    let more = rows.len() > limit;
    let mut matches = Vec::with_capacity(rows.len().min(limit));
    let mut last = None;
    for row in rows.iter().take(limit) {
        matches.push(decode::<MatchRecord>("matches", row.try_get::<_, &str>(0)?.as_bytes())?);
        let cursor: &[u8] = row.try_get(1)?;
        last = Some(MatchCursor(
            cursor.try_into().map_err(|_| StoreError::BadColumn { table: "user_matches", column: "cursor" })?,
        ));
    }
    Ok(MatchPage { matches, next: if more { last } else { None } })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use movan_protocol::EndReason;
    use movan_protocol::rpc::MatchReport;

    use super::*;
    use crate::store::Store;
    use crate::store::testing::on_every_store;

    on_every_store!(
        pages_run_newest_first_and_end_with_no_cursor,
        inserting_twice_stores_once,
        results_round_trip_and_cursors_parse
    );

    fn game(id: &str, players: &[&str], ended_at: f64) -> MatchRecord {
        let report = MatchReport {
            match_id: id.into(),
            room_id: "room".into(),
            players: players.iter().map(|p| (*p).to_owned()).collect(),
            frame_count: 120,
            duration_secs: 6.0,
            end_reason: EndReason::AllLeft,
            results: None,
            started_at: ended_at - 6.0,
            ended_at,
            first_desync_frame: None,
        };
        MatchRecord { report, node_id: "sync-1".into() }
    }

    fn ids(page: &MatchPage) -> Vec<&str> {
        page.matches.iter().map(|m| m.report.match_id.as_str()).collect()
    }

    async fn pages_run_newest_first_and_end_with_no_cursor(store: &dyn Store) {
        // Reported out of order; two end in the same millisecond.
        for (id, ended) in [("m2", 2.0), ("m1", 1.0), ("m4", 4.0), ("m3", 3.0), ("m3b", 3.0)] {
            assert!(store.insert_match(&game(id, &["1001", "1002"], 1_700_000_000.0 + ended)).await.unwrap());
        }
        store.insert_match(&game("other", &["1003"], 1_800_000_000.0)).await.unwrap();

        let first = store.matches_of("1001", None, 2).await.unwrap();
        assert_eq!(ids(&first), ["m4", "m3b"]);
        let second = store.matches_of("1001", first.next.as_ref(), 2).await.unwrap();
        assert_eq!(ids(&second), ["m3", "m2"]);
        let third = store.matches_of("1001", second.next.as_ref(), 2).await.unwrap();
        assert_eq!(ids(&third), ["m1"]);
        assert_eq!(third.next, None);

        let exact = store.matches_of("1002", None, 5).await.unwrap();
        assert_eq!(exact.matches.len(), 5);
        assert_eq!(exact.next, None, "no cursor when the page happens to end the history");
        let all = store.matches_of("1001", None, 100).await.unwrap();
        assert_eq!(ids(&all), ["m4", "m3b", "m3", "m2", "m1"]);
        assert_eq!(all.next, None);
        assert!(store.matches_of("100", None, 10).await.unwrap().matches.is_empty(), "uid 100 is not a prefix of 1001");
        assert_eq!(ids(&store.matches_of("1003", None, 10).await.unwrap()), ["other"]);
    }

    async fn inserting_twice_stores_once(store: &dyn Store) {
        assert!(store.insert_match(&game("m1", &["1001", "1001"], 10.0)).await.unwrap());
        let mut again = game("m1", &["1001", "1002"], 10.0);
        again.report.ended_at = 99.0;
        assert!(!store.insert_match(&again).await.unwrap());
        let page = store.matches_of("1001", None, 10).await.unwrap();
        assert_eq!(page.matches, [game("m1", &["1001", "1001"], 10.0)]);
        assert!(store.matches_of("1002", None, 10).await.unwrap().matches.is_empty());
    }

    async fn results_round_trip_and_cursors_parse(store: &dyn Store) {
        let results = serde_json::json!({"1001": {"rank": 1}, "1002": {"rank": 2}});
        let mut scored = game("m1", &["1001"], 5.0);
        scored.report.results = Some(results.clone());
        store.insert_match(&scored).await.unwrap();
        store.insert_match(&game("m0", &["1001"], 4.0)).await.unwrap();
        let page = store.matches_of("1001", None, 1).await.unwrap();
        assert_eq!(page.matches[0].report.results, Some(results));
        let cursor = page.next.unwrap();
        let text = cursor.to_string();
        assert_eq!(text.len(), 22);
        assert_eq!(text.parse::<MatchCursor>().unwrap(), cursor);
        assert_eq!("nope".parse::<MatchCursor>(), Err(BadCursor));
        assert_eq!("".parse::<MatchCursor>(), Err(BadCursor));
        assert_eq!(store.matches_of("1001", None, 0).await.unwrap(), MatchPage { matches: vec![], next: None });
    }
}
