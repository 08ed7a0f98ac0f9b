//! [`PgStore`]: the [`Store`] on PostgreSQL (`account.store = "postgres"`), through a small `deadpool-postgres`
//! pool of `tokio-postgres` connections.
//!
//! The tables are in `account-server/migrations/` (applied at start by [`schema::migrate`]). Each method is one
//! statement or one transaction at PostgreSQL's default isolation (read committed); where two requests could race,
//! a row lock orders them as sled's transactions do:
//! - `create_user` moves the uid counter row first, so registrations queue on it; a taken name rolls back and uses
//!   no uid;
//! - `create_session` reads the user's ban `FOR SHARE` and `set_banned` updates that row before revoking the user's
//!   sessions, so a session is either refused or revoked by a concurrent ban;
//! - `spend_refresh_token` locks the token row and returns the `spent` flag it had: one of two concurrent spends sees
//!   it unset;
//! - `insert_replay` locks the usage counters row, then stores and evicts in the same transaction.

mod schema;

use std::fmt;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use movan_protocol::crypto::SessionKey;
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;
use tokio_postgres::types::ToSql;

use super::*;
pub use schema::{MIGRATIONS, MigrateError};

/// How long opening a connection may take, and how long a request waits for a free pooled connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The columns of `users`, in the order [`user_from`] reads them.
const USER_COLUMNS: &str = "uid, username, password_hash, created_at, role, banned_at";

/// [`PgStore::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum PgOpenError {
    /// `account.database_url` is not a PostgreSQL URL (config validation normally catches this first).
    #[error("account.database_url: {0}")]
    Url(#[source] tokio_postgres::Error),
    /// The pool cannot be built.
    #[error("account.database_url: cannot build the connection pool: {0}")]
    Pool(#[source] deadpool_postgres::BuildError),
    /// The database cannot be reached or refuses the login.
    #[error("cannot connect to PostgreSQL at {target}: {error}")]
    Connect {
        /// Where, without the password.
        target: String,
        /// Why (in the message, so not repeated as a source).
        error: deadpool_postgres::PoolError,
    },
    /// The schema cannot be brought up to date.
    #[error("PostgreSQL at {target}: {error}")]
    Migrate {
        /// Where, without the password.
        target: String,
        /// Why.
        error: MigrateError,
    },
}

/// [`Store`] on PostgreSQL. Cheap to clone: the clones share the pool.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    target: String,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore").field("target", &self.target).finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`, or key=value pairs) with up to
    /// `max_connections` pooled connections, and applies the migrations the database lacks ([`MIGRATIONS`]).
    pub async fn connect(url: &str, max_connections: usize) -> Result<Self, PgOpenError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(PgOpenError::Url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let target = describe_pg(&config);
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(PgOpenError::Pool)?;
        let mut client = pool.get().await.map_err(|error| PgOpenError::Connect { target: target.clone(), error })?;
        schema::migrate(&mut client).await.map_err(|error| PgOpenError::Migrate { target: target.clone(), error })?;
        drop(client);
        Ok(Self { pool, target })
    }

    /// Where the store is, without the password: `user@host:port/database`.
    pub fn target(&self) -> &str {
        &self.target
    }

    pub(super) async fn client(&self) -> Result<Object, StoreError> {
        Ok(self.pool.get().await?)
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        created_at: u64,
    ) -> Result<User, StoreError> {
        let key = username.to_ascii_lowercase();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The counter row is locked until commit: registrations queue here, and a rollback returns the uid.
        let next: i64 =
            tx.query_one("UPDATE uid_counter SET next_uid = next_uid + 1 RETURNING next_uid - 1", &[]).await?.get(0);
        let user = User {
            uid: next.to_string(),
            username: username.to_owned(),
            password_hash: password_hash.to_owned(),
            created_at,
            role,
            banned_at: None,
        };
        let inserted = tx
            .execute(
                "INSERT INTO users (uid, username, username_key, password_hash, created_at, role) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (username_key) DO NOTHING",
                &[&user.uid, &user.username, &key, &user.password_hash, &db_int(created_at), &role.as_str()],
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::UsernameTaken);
        }
        tx.commit().await?;
        Ok(user)
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username_key = $1");
        self.query_user(&sql, &[&username.to_ascii_lowercase()]).await
    }

    async fn user(&self, uid: &str) -> Result<Option<User>, StoreError> {
        self.query_user(&format!("SELECT {USER_COLUMNS} FROM users WHERE uid = $1"), &[&uid]).await
    }

    async fn set_role_by_name(&self, username: &str, role: Role) -> Result<Option<User>, StoreError> {
        let sql = format!("UPDATE users SET role = $2 WHERE username_key = $1 RETURNING {USER_COLUMNS}");
        self.query_user(&sql, &[&username.to_ascii_lowercase(), &role.as_str()]).await
    }

    async fn set_banned(&self, uid: &str, banned_at: Option<u64>) -> Result<Option<User>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let sql = format!("UPDATE users SET banned_at = $2 WHERE uid = $1 RETURNING {USER_COLUMNS}");
        let Some(row) = tx.query_opt(&sql, &[&uid, &banned_at.map(db_int)]).await? else {
            return Ok(None);
        };
        let user = user_from(&row)?;
        if banned_at.is_some() {
            // The user row stays locked until commit, so a `create_session` either ran before (its session is
            // revoked here) or waits and sees the ban.
            tx.execute("UPDATE sessions SET revoked = TRUE WHERE uid = $1 AND NOT revoked", &[&uid]).await?;
        }
        tx.commit().await?;
        Ok(Some(user))
    }

    async fn create_session(
        &self,
        sid: &str,
        session: &Session,
        refresh_digest: &[u8; 32],
        grant: &RefreshGrant,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let ban = tx.prepare_cached("SELECT banned_at FROM users WHERE uid = $1 FOR SHARE").await?;
        let banned_at = match tx.query_opt(&ban, &[&session.uid]).await? {
            Some(row) => row.try_get::<_, Option<i64>>(0)?,
            None => None,
        };
        if banned_at.is_some() {
            return Err(StoreError::Banned);
        }
        let insert = tx
            .prepare_cached(
                "INSERT INTO sessions (sid, uid, created_at, expires_at, revoked, session_key) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sid) DO UPDATE SET uid = EXCLUDED.uid, \
                 created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, revoked = EXCLUDED.revoked, \
                 session_key = EXCLUDED.session_key",
            )
            .await?;
        let key = session.key.as_ref().map(|k| k.as_bytes().as_slice());
        let (created, expires) = (db_int(session.created_at), db_int(session.expires_at));
        tx.execute(&insert, &[&sid, &session.uid, &created, &expires, &session.revoked, &key]).await?;
        put_refresh_token(&tx, refresh_digest, grant).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session(&self, sid: &str) -> Result<Option<Session>, StoreError> {
        let client = self.client().await?;
        let sql = client
            .prepare_cached("SELECT uid, created_at, expires_at, revoked, session_key FROM sessions WHERE sid = $1")
            .await?;
        let Some(row) = client.query_opt(&sql, &[&sid]).await? else { return Ok(None) };
        let key: Option<Vec<u8>> = row.try_get(4)?;
        Ok(Some(Session {
            uid: row.try_get(0)?,
            created_at: from_db_int(row.try_get(1)?),
            expires_at: from_db_int(row.try_get(2)?),
            revoked: row.try_get(3)?,
            key: key.map(|k| session_key(&k)).transpose()?,
        }))
    }

    async fn revoke_session(&self, sid: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client.execute("UPDATE sessions SET revoked = TRUE WHERE sid = $1", &[&sid]).await? > 0)
    }

    async fn spend_refresh_token(&self, digest: &[u8; 32]) -> Result<Option<RefreshUse>, StoreError> {
        let client = self.client().await?;
        // The sub-select locks the row and, after waiting for a concurrent spend, reads its committed `spent`.
        let sql = client
            .prepare_cached(
                "UPDATE refresh_tokens AS t SET spent = TRUE \
                 FROM (SELECT digest, spent FROM refresh_tokens WHERE digest = $1 FOR UPDATE) AS before \
                 WHERE t.digest = before.digest RETURNING before.spent, t.sid, t.uid, t.expires_at",
            )
            .await?;
        let Some(row) = client.query_opt(&sql, &[&digest.as_slice()]).await? else { return Ok(None) };
        let grant =
            RefreshGrant { sid: row.try_get(1)?, uid: row.try_get(2)?, expires_at: from_db_int(row.try_get(3)?) };
        Ok(Some(if row.try_get(0)? { RefreshUse::Reused(grant) } else { RefreshUse::Fresh(grant) }))
    }

    async fn prune_refresh_tokens(&self, now: u64) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let removed = client.execute("DELETE FROM refresh_tokens WHERE expires_at <= $1", &[&db_int(now)]).await?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    async fn extend_session(
        &self,
        digest: &[u8; 32],
        grant: &RefreshGrant,
        key_if_missing: &SessionKey,
    ) -> Result<Option<SessionKey>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let lock = tx.prepare_cached("SELECT revoked FROM sessions WHERE sid = $1 FOR UPDATE").await?;
        let Some(row) = tx.query_opt(&lock, &[&grant.sid]).await? else { return Ok(None) };
        if row.try_get::<_, bool>(0)? {
            return Ok(None);
        }
        let extend = tx
            .prepare_cached(
                "UPDATE sessions SET expires_at = GREATEST(expires_at, $2), \
                 session_key = COALESCE(session_key, $3) WHERE sid = $1 RETURNING session_key",
            )
            .await?;
        let fallback = key_if_missing.as_bytes().as_slice();
        let row = tx.query_one(&extend, &[&grant.sid, &db_int(grant.expires_at), &fallback]).await?;
        let key = session_key(&row.try_get::<_, Vec<u8>>(0)?)?;
        put_refresh_token(&tx, digest, grant).await?;
        tx.commit().await?;
        Ok(Some(key))
    }

    async fn insert_match(&self, game: &MatchRecord) -> Result<bool, StoreError> {
        matches::insert_pg(self, game).await
    }

    async fn matches_of(&self, uid: &str, before: Option<&MatchCursor>, limit: usize) -> Result<MatchPage, StoreError> {
        matches::page_pg(self, uid, before, limit).await
    }

    async fn match_record(&self, match_id: &str) -> Result<Option<MatchRecord>, StoreError> {
        let client = self.client().await?;
        let row = client.query_opt("SELECT record FROM matches WHERE match_id = $1", &[&match_id]).await?;
        row.map(|row| decode("matches", row.try_get::<_, &str>(0)?.as_bytes())).transpose()
    }

    async fn insert_replay(
        &self,
        match_id: &str,
        file: &[u8],
        retention: &ReplayRetention,
    ) -> Result<ReplayInsert, StoreError> {
        replays::insert_pg(self, match_id, file, retention).await
    }

    async fn replay(&self, match_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let row = client.query_opt("SELECT file FROM replays WHERE match_id = $1", &[&match_id]).await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    async fn replay_usage(&self) -> Result<ReplayUsage, StoreError> {
        let client = self.client().await?;
        let row = client.query_one("SELECT count, bytes FROM replay_usage", &[]).await?;
        Ok(ReplayUsage { count: from_db_int(row.try_get(0)?), bytes: from_db_int(row.try_get(1)?) })
    }

    /// Nothing to do: a write is durable when its statement or transaction has committed.
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

impl PgStore {
    async fn query_user(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<User>, StoreError> {
        let client = self.client().await?;
        let sql = client.prepare_cached(sql).await?;
        client.query_opt(&sql, params).await?.map(|row| user_from(&row)).transpose()
    }
}

/// Adds (or replaces, unspent) the refresh token `digest` of `grant`, in `tx`.
async fn put_refresh_token(
    tx: &deadpool_postgres::Transaction<'_>,
    digest: &[u8; 32],
    grant: &RefreshGrant,
) -> Result<(), StoreError> {
    let sql = tx
        .prepare_cached(
            "INSERT INTO refresh_tokens (digest, sid, uid, expires_at, spent) VALUES ($1, $2, $3, $4, FALSE) \
             ON CONFLICT (digest) DO UPDATE SET sid = EXCLUDED.sid, uid = EXCLUDED.uid, \
             expires_at = EXCLUDED.expires_at, spent = FALSE",
        )
        .await?;
    tx.execute(&sql, &[&digest.as_slice(), &grant.sid, &grant.uid, &db_int(grant.expires_at)]).await?;
    Ok(())
}

/// A row of [`USER_COLUMNS`].
fn user_from(row: &tokio_postgres::Row) -> Result<User, StoreError> {
    let role: String = row.try_get(4)?;
    let role = serde_json::from_value(serde_json::Value::String(role))
        .map_err(|_| StoreError::BadColumn { table: "users", column: "role" })?;
    Ok(User {
        uid: row.try_get(0)?,
        username: row.try_get(1)?,
        password_hash: row.try_get(2)?,
        created_at: from_db_int(row.try_get(3)?),
        role,
        banned_at: row.try_get::<_, Option<i64>>(5)?.map(from_db_int),
    })
}

fn session_key(bytes: &[u8]) -> Result<SessionKey, StoreError> {
    let bytes = <[u8; 32]>::try_from(bytes).map_err(|_| StoreError::BadColumn { table: "sessions", column: "key" })?;
    Ok(SessionKey::from_bytes(bytes))
}

/// A time or count as a `BIGINT` (saturating: no value the server writes comes near 2^63).
pub(super) fn db_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A `BIGINT` time or count (saturating at 0).
pub(super) fn from_db_int(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// `user@host:port/database`, for messages: never the password.
pub fn describe_pg(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("(default user)");
    format!("{user}@{host}:{port}/{}", config.get_dbname().unwrap_or("(default database)"))
}
