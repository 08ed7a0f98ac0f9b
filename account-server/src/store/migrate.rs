//! `account-server migrate-from-sled`: copies a sled database into a [`PgStore`], in one transaction, leaving every
//! record PostgreSQL already has as it is, so a rerun copies only what is new.
//!
//! What keeps its meaning across the move:
//! - uids, and the uid counter, which ends up past both sled's counter and every copied uid;
//! - sessions with their keys, and refresh tokens with their spent flag (logged-in players stay logged in);
//! - match history with sled's index keys as they are, so a page cursor handed out by sled pages the same on
//!   PostgreSQL; the match sequence moves past every copied one;
//! - replays in sled's order, all older than any replay PostgreSQL stored itself (their arrival numbers are moved
//!   below zero), and the usage counters recounted. Retention applies at the next stored replay.

use super::postgres::db_int;
use super::sled_store::StoredGrant;
use super::{KEY_SEP, NEXT_UID, PgStore, Session, SledStore, StoreError, User, decode};

/// Records copied by [`copy_sled_to_postgres`]; those PostgreSQL had already are not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Users copied.
    pub users: u64,
    /// Sessions copied.
    pub sessions: u64,
    /// Refresh tokens copied.
    pub refresh_tokens: u64,
    /// Matches copied (with their per-player index entries).
    pub matches: u64,
    /// Replays copied.
    pub replays: u64,
}

/// Copies users, sessions, refresh tokens, matches and replays from `from` into `to`, in one transaction: all or
/// nothing. Records PostgreSQL has already (same uid or username, sid, digest, match id) are left as they are.
pub async fn copy_sled_to_postgres(from: &SledStore, to: &PgStore) -> Result<CopyReport, StoreError> {
    let mut report = CopyReport::default();
    let mut client = to.client().await?;
    let tx = client.transaction().await?;
    // Taken in the order the server's own transactions take them, so a running server just waits.
    tx.execute("SELECT 1 FROM uid_counter FOR UPDATE", &[]).await?;

    let insert = tx
        .prepare(
            "INSERT INTO users (uid, username, username_key, password_hash, created_at, role, banned_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .await?;
    let mut next_uid = match from.meta.get(NEXT_UID)? {
        Some(bytes) => {
            <[u8; 8]>::try_from(bytes.as_ref()).map(u64::from_be_bytes).map_err(|_| StoreError::BadCounter)?
        }
        None => 0,
    };
    for entry in from.users.iter() {
        let (_, bytes) = entry?;
        let user: User = decode("users", &bytes)?;
        if let Ok(uid) = user.uid.parse::<u64>() {
            next_uid = next_uid.max(uid.saturating_add(1));
        }
        let (key, role) = (user.username.to_ascii_lowercase(), user.role.as_str());
        let (created, banned) = (db_int(user.created_at), user.banned_at.map(db_int));
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] =
            [&user.uid, &user.username, &key, &user.password_hash, &created, &role, &banned];
        report.users += tx.execute(&insert, &params).await?;
    }
    tx.execute("UPDATE uid_counter SET next_uid = GREATEST(next_uid, $1)", &[&db_int(next_uid)]).await?;

    let insert = tx
        .prepare(
            "INSERT INTO sessions (sid, uid, created_at, expires_at, revoked, session_key) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .await?;
    for entry in from.sessions.iter() {
        let (sid, bytes) = entry?;
        let sid = String::from_utf8_lossy(&sid).into_owned();
        let session: Session = decode("sessions", &bytes)?;
        let key = session.key.as_ref().map(|k| k.as_bytes().as_slice());
        let (created, expires) = (db_int(session.created_at), db_int(session.expires_at));
        report.sessions +=
            tx.execute(&insert, &[&sid, &session.uid, &created, &expires, &session.revoked, &key]).await?;
    }

    let insert = tx
        .prepare(
            "INSERT INTO refresh_tokens (digest, sid, uid, expires_at, spent) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT DO NOTHING",
        )
        .await?;
    for entry in from.refresh_tokens.iter() {
        let (digest, bytes) = entry?;
        let StoredGrant { grant, spent } = decode("refresh_tokens", &bytes)?;
        let expires = db_int(grant.expires_at);
        report.refresh_tokens +=
            tx.execute(&insert, &[&digest.as_ref(), &grant.sid, &grant.uid, &expires, &spent]).await?;
    }

    let insert = tx.prepare("INSERT INTO matches (match_id, record) VALUES ($1, $2) ON CONFLICT DO NOTHING").await?;
    for entry in from.matches.iter() {
        let (id, bytes) = entry?;
        decode::<super::MatchRecord>("matches", &bytes)?;
        let record = String::from_utf8_lossy(&bytes).into_owned();
        report.matches += tx.execute(&insert, &[&String::from_utf8_lossy(&id).as_ref(), &record]).await?;
    }
    let insert = tx
        .prepare("INSERT INTO user_matches (uid, cursor, match_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .await?;
    let mut last_seq = 0u64;
    for entry in from.user_matches.iter() {
        let (key, id) = entry?;
        let Some(sep) = key.len().checked_sub(17).filter(|&at| key[at] == KEY_SEP) else { continue };
        let (uid, cursor) = (String::from_utf8_lossy(&key[..sep]), &key[sep + 1..]);
        last_seq = last_seq.max(u64::from_be_bytes(cursor[8..].try_into().unwrap_or_default()));
        tx.execute(&insert, &[&uid.as_ref(), &cursor, &String::from_utf8_lossy(&id).as_ref()]).await?;
    }
    tx.execute("SELECT setval('match_seq', GREATEST((SELECT last_value FROM match_seq), $1))", &[&db_int(last_seq)])
        .await?;

    let insert = tx
        .prepare("INSERT INTO replays (match_id, seq, size, file) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
        .await?;
    for entry in from.replay_order.iter() {
        let (seq, value) = entry?;
        let (Ok(seq), Some(id)) = (<[u8; 8]>::try_from(seq.as_ref()), value.get(8..)) else { continue };
        let id = String::from_utf8_lossy(id).into_owned();
        let Some(file) = from.replays.get(id.as_bytes())? else { continue };
        // Below zero: older than every replay PostgreSQL numbered itself, in sled's order.
        let seq = i64::MIN.saturating_add(db_int(u64::from_be_bytes(seq)));
        report.replays += tx.execute(&insert, &[&id, &seq, &(file.len() as i64), &file.as_ref()]).await?;
    }
    tx.execute(
        "UPDATE replay_usage SET count = (SELECT COUNT(*) FROM replays), \
         bytes = (SELECT COALESCE(SUM(size), 0)::BIGINT FROM replays)",
        &[],
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}
