//! Durable state: users, sessions, refresh tokens, match history and replays, behind the [`Store`] trait, with two
//! implementations: [`SledStore`], embedded (the default), and [`PgStore`] on PostgreSQL (`store/postgres.rs`
//! describes its tables and locking).
//!
//! [`SledStore`] keeps these trees of JSON records:
//! - `users`: uid → [`User`];
//! - `usernames`: lowercase username → uid, which makes usernames unique regardless of case;
//! - `sessions`: sid → [`Session`], with its session key (the sync servers need it, so it is stored as is);
//! - `user_sessions`: uid, 0xFF, sid → nothing: the sessions of a user, so a ban can revoke them all;
//! - `refresh_tokens`: SHA-256 of the refresh token → [`RefreshGrant`] and whether it was spent (the token itself is
//!   never stored). A spent token is kept until it expires, so that its reuse is detected;
//! - `matches` and `user_matches`: finished games and a per-player index (see [`mod@matches`]);
//! - `replays` and `replay_order`: replay files and their arrival order (see [`mod@replays`]);
//! - `meta`: `next_uid` → the next uid to hand out (8 bytes, big-endian), so uids stay small and contiguous; and the
//!   replay counters.

pub mod matches;
pub mod migrate;
mod postgres;
pub mod replays;
mod sled_store;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

use std::time::Duration;

use movan_protocol::crypto::SessionKey;
use serde::{Deserialize, Serialize};

pub use matches::{MatchCursor, MatchPage, MatchRecord};
pub use postgres::{MIGRATIONS, MigrateError, PgOpenError, PgStore, describe_pg};
pub use replays::{ReplayInsert, ReplayRetention, ReplayUsage};
use sled_store::{Abort, decode, encode, index_prefix};
pub use sled_store::{OpenError, SledStore};

/// How long [`SledStore::open`] waits for the database lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// First uid handed out; smaller numbers stay free for special accounts.
const UID_OFFSET: u64 = 1000;

/// Key of the uid counter in the `meta` tree.
const NEXT_UID: &[u8] = b"next_uid";

/// Ends the uid part of index keys; never part of a UTF-8 string, so one uid's keys are never a prefix of another's.
const KEY_SEP: u8 = 0xFF;

/// What a user may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Plays; the role of every new account not listed in `account.admins`.
    #[default]
    Player,
    /// Plays and may ban and unban users.
    Admin,
}

impl Role {
    /// The name used in JSON: `player` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Player => "player",
            Self::Admin => "admin",
        }
    }
}

/// A registered player.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Decimal uid, unique and never reused.
    pub uid: String,
    /// The username as registered (display form; uniqueness ignores case).
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    /// What the user may do.
    pub role: Role,
    /// When an admin banned the user (seconds since the Unix epoch); `None` when not banned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banned_at: Option<u64>,
}

impl User {
    /// Whether the user is banned: no login, no refresh, no session.
    pub fn is_banned(&self) -> bool {
        self.banned_at.is_some()
    }
}

/// One login: the access and refresh tokens it issues carry its id (`sid`).
///
/// `Debug` never shows the key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The user logged in.
    pub uid: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    /// Expiry of its newest refresh token, seconds since the Unix epoch.
    pub expires_at: u64,
    /// Set by logout or a ban; a revoked session accepts no token.
    pub revoked: bool,
    /// The secret the client and the sync servers encrypt the session's game connections with. `None` only for a
    /// session created before encrypted sessions, until its next refresh gives it one.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "stored_key")]
    pub key: Option<SessionKey>,
}

/// What a refresh token grants: new tokens for session `sid` until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshGrant {
    /// The session the token belongs to.
    pub sid: String,
    /// The session's user.
    pub uid: String,
    /// Seconds since the Unix epoch.
    pub expires_at: u64,
}

/// What [`Store::spend_refresh_token`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// The token had not been used: it is spent now.
    Fresh(RefreshGrant),
    /// The token was spent before: a replay (RFC 9700 §4.14: the session must be revoked).
    Reused(RefreshGrant),
}

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// [`Store::create_user`]: another user has this username, ignoring case.
    #[error("username is already taken")]
    UsernameTaken,
    /// [`Store::create_session`]: the user is banned.
    #[error("user is banned")]
    Banned,
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sled::Error),
    /// The uid counter in the `meta` tree is not 8 bytes.
    #[error("corrupt uid counter in tree `meta`")]
    BadCounter,
    /// PostgreSQL failed (the message stays in the logs: clients get `internal`).
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No pooled PostgreSQL connection became free or could be opened in time.
    #[error("postgres connection pool: {0}")]
    PostgresPool(#[from] deadpool_postgres::PoolError),
    /// A PostgreSQL column holds a value no record can have.
    #[error("corrupt value in column `{table}.{column}`")]
    BadColumn {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
    },
    /// A blocking store task panicked or was cancelled.
    #[error("a store task failed")]
    TaskFailed,
    /// A stored record could not be decoded.
    #[error("corrupt record in tree `{tree}`: {source}")]
    Corrupt {
        /// The tree holding the record.
        tree: &'static str,
        /// The decoding failure.
        source: serde_json::Error,
    },
}

/// Users, sessions, refresh tokens and matches. Implementations must make each method atomic (see
/// [`Store::set_banned`] for what that means there).
///
/// Async, so that a networked database waits without holding a runtime thread; boxed by `async_trait`, so that
/// `Arc<dyn Store>` works.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a user with a fresh uid, or fails with [`StoreError::UsernameTaken`] if another user has
    /// `username` ignoring ASCII case.
    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        created_at: u64,
    ) -> Result<User, StoreError>;

    /// The user with `username`, ignoring ASCII case.
    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError>;

    /// The user with `uid`.
    async fn user(&self, uid: &str) -> Result<Option<User>, StoreError>;

    /// Gives the user with `username` (ignoring ASCII case) `role`; returns the updated user, or `None` if there is
    /// no such user.
    async fn set_role_by_name(&self, username: &str, role: Role) -> Result<Option<User>, StoreError>;

    /// Sets (`Some(time)`) or lifts (`None`) the ban of user `uid`; returns the updated user, or `None` if there is
    /// no such user. Setting a ban also revokes every session of the user: once this returns, the user has no live
    /// session and [`Store::create_session`] refuses new ones.
    async fn set_banned(&self, uid: &str, banned_at: Option<u64>) -> Result<Option<User>, StoreError>;

    /// Stores a new session `sid` together with its first refresh token, or fails with [`StoreError::Banned`] if
    /// the session's user is banned.
    async fn create_session(
        &self,
        sid: &str,
        session: &Session,
        refresh_digest: &[u8; 32],
        grant: &RefreshGrant,
    ) -> Result<(), StoreError>;

    /// The session `sid`.
    async fn session(&self, sid: &str) -> Result<Option<Session>, StoreError>;

    /// Marks session `sid` revoked; returns whether it existed.
    async fn revoke_session(&self, sid: &str) -> Result<bool, StoreError>;

    /// Marks the refresh token with this digest spent and returns its grant, telling whether it was spent already
    /// (atomically: of two concurrent calls, one gets [`RefreshUse::Fresh`]). `None` if there is no such token.
    async fn spend_refresh_token(&self, digest: &[u8; 32]) -> Result<Option<RefreshUse>, StoreError>;

    /// Removes the refresh tokens, spent or not, that expired at or before `now`; returns how many.
    async fn prune_refresh_tokens(&self, now: u64) -> Result<usize, StoreError>;

    /// Adds a refresh token to session `grant.sid` and extends the session to `grant.expires_at`, unless the
    /// session is missing or revoked; a session without a key gets `key_if_missing`. Returns the session's key, or
    /// `None` (adding nothing) if the session is missing or revoked.
    async fn extend_session(
        &self,
        digest: &[u8; 32],
        grant: &RefreshGrant,
        key_if_missing: &SessionKey,
    ) -> Result<Option<SessionKey>, StoreError>;

    /// Stores a finished game and indexes it under each of its players; returns `false` (storing nothing) if a
    /// match with this `match_id` is already stored. Its times must be finite numbers.
    async fn insert_match(&self, game: &MatchRecord) -> Result<bool, StoreError>;

    /// Up to `limit` matches of player `uid`, newest (by `ended_at`) first, strictly older than `before` if given.
    /// The page's `next` is the cursor for the following page, `None` on the last one.
    async fn matches_of(&self, uid: &str, before: Option<&MatchCursor>, limit: usize) -> Result<MatchPage, StoreError>;

    /// The match `match_id`.
    async fn match_record(&self, match_id: &str) -> Result<Option<MatchRecord>, StoreError>;

    /// Stores the replay file of match `match_id`, unless one is stored already (then `stored` is false and nothing
    /// changes); then removes the oldest replays (never this one) until `retention` holds.
    async fn insert_replay(
        &self,
        match_id: &str,
        file: &[u8],
        retention: &ReplayRetention,
    ) -> Result<ReplayInsert, StoreError>;

    /// The replay file of match `match_id`.
    async fn replay(&self, match_id: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// How many replays are kept and their bytes.
    async fn replay_usage(&self) -> Result<ReplayUsage, StoreError>;

    /// Makes every completed write durable.
    async fn flush(&self) -> Result<(), StoreError>;
}

/// [`Session::key`] in a record: standard base64, as the clients and the sync servers receive it.
mod stored_key {
    use movan_protocol::crypto::SessionKey;
    use serde::de::Error as _;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(key: &Option<SessionKey>, serializer: S) -> Result<S::Ok, S::Error> {
        match key {
            Some(key) => serializer.serialize_some(&key.to_base64()),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<SessionKey>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| SessionKey::from_base64(&text).map_err(D::Error::custom))
            .transpose()
    }
}
