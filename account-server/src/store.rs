//! Durable state: users, sessions, refresh tokens and match history, behind the [`Store`] trait, with a sled
//! implementation.
//!
//! [`SledStore`] keeps these trees of JSON records:
//! - `users`: uid → [`User`];
//! - `usernames`: lowercase username → uid, which makes usernames unique regardless of case;
//! - `sessions`: sid → [`Session`], with its session key (the sync servers need it, so it is stored as is);
//! - `user_sessions`: uid, 0xFF, sid → nothing: the sessions of a user, so a ban can revoke them all;
//! - `refresh_tokens`: SHA-256 of the refresh token → [`RefreshGrant`] (the token itself is never stored);
//! - `matches` and `user_matches`: finished games and a per-player index (see [`mod@matches`]);
//! - `meta`: `next_uid` → the next uid to hand out (8 bytes, big-endian), so uids stay small and contiguous.

pub mod matches;

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};

use movan_protocol::crypto::SessionKey;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

pub use matches::{MatchCursor, MatchPage, MatchRecord};

/// How long [`SledStore::open`] waits for the database lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// First uid handed out; smaller numbers stay free for special accounts.
const UID_OFFSET: u64 = 1000;

/// Key of the uid counter in the `meta` tree.
const NEXT_UID: &[u8] = b"next_uid";

/// Ends the uid part of index keys; never part of a UTF-8 string, so one uid's keys are never a prefix of another's.
const KEY_SEP: u8 = 0xFF;

/// A future returned by [`Store::flush`].
pub type FlushFuture<'a> = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;

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
pub trait Store: Send + Sync + 'static {
    /// Creates a user with a fresh uid, or fails with [`StoreError::UsernameTaken`] if another user has
    /// `username` ignoring ASCII case.
    fn create_user(&self, username: &str, password_hash: &str, role: Role, created_at: u64)
    -> Result<User, StoreError>;

    /// The user with `username`, ignoring ASCII case.
    fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError>;

    /// The user with `uid`.
    fn user(&self, uid: &str) -> Result<Option<User>, StoreError>;

    /// Gives the user with `username` (ignoring ASCII case) `role`; returns the updated user, or `None` if there is
    /// no such user.
    fn set_role_by_name(&self, username: &str, role: Role) -> Result<Option<User>, StoreError>;

    /// Sets (`Some(time)`) or lifts (`None`) the ban of user `uid`; returns the updated user, or `None` if there is
    /// no such user. Setting a ban also revokes every session of the user: once this returns, the user has no live
    /// session and [`Store::create_session`] refuses new ones.
    fn set_banned(&self, uid: &str, banned_at: Option<u64>) -> Result<Option<User>, StoreError>;

    /// Stores a new session `sid` together with its first refresh token, or fails with [`StoreError::Banned`] if
    /// the session's user is banned.
    fn create_session(
        &self,
        sid: &str,
        session: &Session,
        refresh_digest: &[u8; 32],
        grant: &RefreshGrant,
    ) -> Result<(), StoreError>;

    /// The session `sid`.
    fn session(&self, sid: &str) -> Result<Option<Session>, StoreError>;

    /// Marks session `sid` revoked; returns whether it existed.
    fn revoke_session(&self, sid: &str) -> Result<bool, StoreError>;

    /// Removes the refresh token with this digest and returns its grant: a token can be taken only once.
    fn take_refresh_token(&self, digest: &[u8; 32]) -> Result<Option<RefreshGrant>, StoreError>;

    /// Adds a refresh token to session `grant.sid` and extends the session to `grant.expires_at`, unless the
    /// session is missing or revoked; a session without a key gets `key_if_missing`. Returns the session's key, or
    /// `None` (adding nothing) if the session is missing or revoked.
    fn extend_session(
        &self,
        digest: &[u8; 32],
        grant: &RefreshGrant,
        key_if_missing: &SessionKey,
    ) -> Result<Option<SessionKey>, StoreError>;

    /// Stores a finished game and indexes it under each of its players; returns `false` (storing nothing) if a
    /// match with this `match_id` is already stored. Its times must be finite numbers.
    fn insert_match(&self, game: &MatchRecord) -> Result<bool, StoreError>;

    /// Up to `limit` matches of player `uid`, newest (by `ended_at`) first, strictly older than `before` if given.
    /// The page's `next` is the cursor for the following page, `None` on the last one.
    fn matches_of(&self, uid: &str, before: Option<&MatchCursor>, limit: usize) -> Result<MatchPage, StoreError>;

    /// Makes every completed write durable.
    fn flush(&self) -> FlushFuture<'_>;
}

/// [`SledStore::open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process holds the database's lock (sled lets one process at a time open a database).
    #[error(
        "{}: the database is in use by another process: another account server is probably running with the same \
         account.db_path (stop it, or give this one another account.db_path)",
        path.display()
    )]
    Locked {
        /// The database directory.
        path: PathBuf,
    },
    /// sled cannot open or read the database.
    #[error("{}: cannot open the database: {error}", path.display())]
    Db {
        /// The database directory.
        path: PathBuf,
        /// sled's failure (in the message, so not repeated as a source).
        error: sled::Error,
    },
}

/// [`Store`] on a sled database.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    meta: sled::Tree,
    users: sled::Tree,
    usernames: sled::Tree,
    sessions: sled::Tree,
    user_sessions: sled::Tree,
    refresh_tokens: sled::Tree,
    matches: sled::Tree,
    user_matches: sled::Tree,
}

impl SledStore {
    /// Opens (creating if missing, with parent directories) the database at `path`.
    ///
    /// sled releases its lock file a moment after the last handle is dropped (spacejam/sled#1234), so a database
    /// just closed by this or an exiting process may look busy: the lock is retried for up to [`LOCK_WAIT`].
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Self::open_waiting(path, LOCK_WAIT)
    }

    fn open_waiting(path: &Path, wait: Duration) -> Result<Self, OpenError> {
        let deadline = Instant::now() + wait;
        let db = loop {
            match sled::open(path) {
                Ok(db) => break db,
                Err(e) if is_lock_contention(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) if is_lock_contention(&e) => return Err(OpenError::Locked { path: path.to_owned() }),
                Err(error) => return Err(OpenError::Db { path: path.to_owned(), error }),
            }
        };
        Self::from_db(db).map_err(|error| OpenError::Db { path: path.to_owned(), error })
    }

    /// Uses an already opened database, e.g. a temporary one. A database written before the uid counter gets one
    /// that continues after its largest uid.
    pub fn from_db(db: sled::Db) -> Result<Self, sled::Error> {
        let store = Self {
            meta: db.open_tree("meta")?,
            users: db.open_tree("users")?,
            usernames: db.open_tree("usernames")?,
            sessions: db.open_tree("sessions")?,
            user_sessions: db.open_tree("user_sessions")?,
            refresh_tokens: db.open_tree("refresh_tokens")?,
            matches: db.open_tree("matches")?,
            user_matches: db.open_tree("user_matches")?,
            db,
        };
        if store.meta.get(NEXT_UID)?.is_none() {
            let mut next = UID_OFFSET;
            for entry in store.users.iter() {
                let (uid, _) = entry?;
                if let Some(uid) = std::str::from_utf8(&uid).ok().and_then(|uid| uid.parse::<u64>().ok()) {
                    next = next.max(uid.saturating_add(1));
                }
            }
            // Only if still missing: another handle of the same database may have started the counter meanwhile.
            let _ = store.meta.compare_and_swap(NEXT_UID, None::<&[u8]>, Some(&next.to_be_bytes()[..]))?;
        }
        Ok(store)
    }
}

/// Why a transaction stopped without committing.
enum Abort {
    Taken,
    Banned,
    Corrupt(&'static str, serde_json::Error),
    BadCounter,
}

impl From<TransactionError<Abort>> for StoreError {
    fn from(e: TransactionError<Abort>) -> Self {
        match e {
            TransactionError::Abort(Abort::Taken) => Self::UsernameTaken,
            TransactionError::Abort(Abort::Banned) => Self::Banned,
            TransactionError::Abort(Abort::Corrupt(tree, source)) => Self::Corrupt { tree, source },
            TransactionError::Abort(Abort::BadCounter) => Self::BadCounter,
            TransactionError::Storage(e) => Self::Db(e),
        }
    }
}

impl Store for SledStore {
    fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        created_at: u64,
    ) -> Result<User, StoreError> {
        // The counter moves in the same transaction as the user is written: a taken username uses no uid, so uids
        // stay contiguous, and none is ever reused.
        let key = username.to_ascii_lowercase();
        let user = (&self.meta, &self.users, &self.usernames).transaction(|(meta, users, usernames)| {
            if usernames.get(key.as_bytes())?.is_some() {
                return Err(ConflictableTransactionError::Abort(Abort::Taken));
            }
            let next = match meta.get(NEXT_UID)? {
                Some(bytes) => <[u8; 8]>::try_from(bytes.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| ConflictableTransactionError::Abort(Abort::BadCounter))?,
                None => UID_OFFSET,
            };
            meta.insert(NEXT_UID, &(next + 1).to_be_bytes()[..])?;
            let user = User {
                uid: next.to_string(),
                username: username.to_owned(),
                password_hash: password_hash.to_owned(),
                created_at,
                role,
                banned_at: None,
            };
            usernames.insert(key.as_bytes(), user.uid.as_bytes())?;
            users.insert(user.uid.as_bytes(), encode(&user))?;
            Ok(user)
        })?;
        Ok(user)
    }

    fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        match self.usernames.get(username.to_ascii_lowercase())? {
            Some(uid) => get(&self.users, "users", &uid),
            None => Ok(None),
        }
    }

    fn user(&self, uid: &str) -> Result<Option<User>, StoreError> {
        get(&self.users, "users", uid.as_bytes())
    }

    fn set_role_by_name(&self, username: &str, role: Role) -> Result<Option<User>, StoreError> {
        let Some(uid) = self.usernames.get(username.to_ascii_lowercase())? else {
            return Ok(None);
        };
        self.update_user(&uid, |user| user.role = role)
    }

    fn set_banned(&self, uid: &str, banned_at: Option<u64>) -> Result<Option<User>, StoreError> {
        let Some(user) = self.update_user(uid.as_bytes(), |user| user.banned_at = banned_at)? else {
            return Ok(None);
        };
        if banned_at.is_some() {
            // `create_session` checks the ban in the transaction that indexes the session, so every session
            // created before the ban is in the index by now, and none can be created after it.
            for key in self.user_sessions.scan_prefix(index_prefix(uid)).keys() {
                let key = key?;
                let sid = String::from_utf8_lossy(&key[uid.len() + 1..]).into_owned();
                self.revoke_session(&sid)?;
            }
        }
        Ok(Some(user))
    }

    fn create_session(
        &self,
        sid: &str,
        session: &Session,
        refresh_digest: &[u8; 32],
        grant: &RefreshGrant,
    ) -> Result<(), StoreError> {
        let (record, grant) = (encode(session), encode(grant));
        let mut index = index_prefix(&session.uid);
        index.extend_from_slice(sid.as_bytes());
        (&self.users, &self.sessions, &self.user_sessions, &self.refresh_tokens).transaction(
            |(users, sessions, user_sessions, refresh_tokens)| {
                let user = get_in::<User>(users, "users", session.uid.as_bytes())?;
                if user.is_some_and(|u| u.is_banned()) {
                    return Err(ConflictableTransactionError::Abort(Abort::Banned));
                }
                sessions.insert(sid.as_bytes(), record.as_slice())?;
                user_sessions.insert(index.as_slice(), &[])?;
                refresh_tokens.insert(refresh_digest.as_slice(), grant.as_slice())?;
                Ok(())
            },
        )?;
        Ok(())
    }

    fn session(&self, sid: &str) -> Result<Option<Session>, StoreError> {
        get(&self.sessions, "sessions", sid.as_bytes())
    }

    fn revoke_session(&self, sid: &str) -> Result<bool, StoreError> {
        let found = self.sessions.transaction(|sessions| {
            let Some(mut session) = get_in::<Session>(sessions, "sessions", sid.as_bytes())? else {
                return Ok(false);
            };
            session.revoked = true;
            sessions.insert(sid.as_bytes(), encode(&session))?;
            Ok(true)
        })?;
        Ok(found)
    }

    fn take_refresh_token(&self, digest: &[u8; 32]) -> Result<Option<RefreshGrant>, StoreError> {
        match self.refresh_tokens.remove(digest)? {
            Some(bytes) => decode("refresh_tokens", &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn extend_session(
        &self,
        digest: &[u8; 32],
        grant: &RefreshGrant,
        key_if_missing: &SessionKey,
    ) -> Result<Option<SessionKey>, StoreError> {
        let record = encode(grant);
        let extended = (&self.sessions, &self.refresh_tokens).transaction(|(sessions, refresh_tokens)| {
            let sid = grant.sid.as_bytes();
            let Some(mut session) = get_in::<Session>(sessions, "sessions", sid)? else {
                return Ok(None);
            };
            if session.revoked {
                return Ok(None);
            }
            session.expires_at = session.expires_at.max(grant.expires_at);
            let key = session.key.get_or_insert_with(|| key_if_missing.clone()).clone();
            sessions.insert(sid, encode(&session))?;
            refresh_tokens.insert(digest.as_slice(), record.as_slice())?;
            Ok(Some(key))
        })?;
        Ok(extended)
    }

    fn insert_match(&self, game: &MatchRecord) -> Result<bool, StoreError> {
        matches::insert(self, game)
    }

    fn matches_of(&self, uid: &str, before: Option<&MatchCursor>, limit: usize) -> Result<MatchPage, StoreError> {
        matches::page(self, uid, before, limit)
    }

    fn flush(&self) -> FlushFuture<'_> {
        Box::pin(async move {
            self.db.flush_async().await?;
            Ok(())
        })
    }
}

impl SledStore {
    /// Applies `change` to the user `uid` atomically; returns the updated user, or `None` if there is none.
    fn update_user(&self, uid: &[u8], change: impl Fn(&mut User)) -> Result<Option<User>, StoreError> {
        let user = self.users.transaction(|users| {
            let Some(mut user) = get_in::<User>(users, "users", uid)? else {
                return Ok(None);
            };
            change(&mut user);
            users.insert(uid, encode(&user))?;
            Ok(Some(user))
        })?;
        Ok(user)
    }
}

/// The start of the index keys of user `uid`: the uid, then [`KEY_SEP`].
fn index_prefix(uid: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(uid.len() + 25);
    key.extend_from_slice(uid.as_bytes());
    key.push(KEY_SEP);
    key
}

/// Whether sled failed to open because another handle holds the database lock. sled 0.34 reports it as an
/// `ErrorKind::Other` I/O error whose message starts with "could not acquire lock".
fn is_lock_contention(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.kind() == io::ErrorKind::Other
        && io.to_string().starts_with("could not acquire lock"))
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

fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    // serde_json writes a non-finite float as `null` rather than failing, and map keys are always strings.
    serde_json::to_vec(record).expect("records are structs of strings, numbers and JSON values, which always serialize")
}

fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt { tree, source })
}

fn get<T: DeserializeOwned>(tree: &sled::Tree, name: &'static str, key: &[u8]) -> Result<Option<T>, StoreError> {
    tree.get(key)?.map(|bytes| decode(name, &bytes)).transpose()
}

/// Reads a record inside a transaction.
fn get_in<T: DeserializeOwned>(
    tree: &TransactionalTree,
    name: &'static str,
    key: &[u8],
) -> Result<Option<T>, ConflictableTransactionError<Abort>> {
    let Some(bytes) = tree.get(key)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| ConflictableTransactionError::Abort(Abort::Corrupt(name, e)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn temp_store() -> SledStore {
        SledStore::from_db(sled::Config::new().temporary(true).open().unwrap()).unwrap()
    }

    fn grant(sid: &str, expires_at: u64) -> RefreshGrant {
        RefreshGrant { sid: sid.into(), uid: "1000".into(), expires_at }
    }

    #[test]
    fn usernames_are_unique_ignoring_case_and_uids_differ() {
        let store = temp_store();
        let a = store.create_user("Alice", "hash", Role::Player, 1).unwrap();
        assert!(matches!(store.create_user("aLiCe", "hash", Role::Admin, 2), Err(StoreError::UsernameTaken)));
        let b = store.create_user("bob", "hash", Role::Admin, 3).unwrap();
        assert_ne!(a.uid, b.uid);
        assert!(a.uid.parse::<u64>().unwrap() >= UID_OFFSET);
        assert_eq!(store.user_by_name("ALICE").unwrap().unwrap(), a);
        assert_eq!(store.user(&a.uid).unwrap().unwrap().username, "Alice");
        assert_eq!((a.role, b.role), (Role::Player, Role::Admin));
        assert!(store.user_by_name("carol").unwrap().is_none());
    }

    #[test]
    fn uids_count_up_from_1000_skip_nothing_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = SledStore::open(&path).unwrap();
        let uid = |store: &SledStore, name: &str| store.create_user(name, "h", Role::Player, 1).unwrap().uid;
        assert_eq!(uid(&store, "a"), "1000");
        assert!(matches!(store.create_user("A", "h", Role::Player, 1), Err(StoreError::UsernameTaken)));
        assert_eq!(uid(&store, "b"), "1001", "a taken username uses no uid");
        drop(store);
        let store = SledStore::open(&path).unwrap();
        assert_eq!(uid(&store, "c"), "1002", "a restart continues the count");
    }

    #[test]
    fn a_database_without_the_counter_continues_after_its_largest_uid() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let users = db.open_tree("users").unwrap();
        let old = |uid: &str| {
            format!(r#"{{"uid":"{uid}","username":"u{uid}","password_hash":"h","created_at":1,"role":"player"}}"#)
        };
        for uid in ["1014", "2001003", "999"] {
            users.insert(uid, old(uid).as_bytes()).unwrap();
        }
        let store = SledStore::from_db(db).unwrap();
        assert_eq!(store.create_user("new", "h", Role::Player, 1).unwrap().uid, "2001004");
    }

    #[test]
    fn roles_are_set_by_username_ignoring_case() {
        let store = temp_store();
        let a = store.create_user("Alice", "hash", Role::Player, 1).unwrap();
        let promoted = store.set_role_by_name("ALICE", Role::Admin).unwrap().unwrap();
        assert_eq!(promoted, User { role: Role::Admin, ..a.clone() });
        assert_eq!(store.user(&a.uid).unwrap().unwrap().role, Role::Admin);
        assert_eq!(store.set_role_by_name("nobody", Role::Admin).unwrap(), None);
        assert_eq!(serde_json::to_value(Role::Admin).unwrap(), "admin");
    }

    #[test]
    fn records_without_a_ban_field_still_decode() {
        let old = r#"{"uid":"1000","username":"a","password_hash":"h","created_at":1,"role":"player"}"#;
        let user: User = serde_json::from_str(old).unwrap();
        assert!(!user.is_banned());
        assert!(!String::from_utf8(encode(&user)).unwrap().contains("banned_at"));
    }

    #[test]
    fn a_ban_revokes_every_session_of_the_user_and_refuses_new_ones() {
        let store = temp_store();
        let alice = store.create_user("alice", "hash", Role::Player, 1).unwrap();
        let bob = store.create_user("bob", "hash", Role::Player, 1).unwrap();
        let session =
            |uid: &str| Session { uid: uid.into(), created_at: 1, expires_at: 100, revoked: false, key: None };
        let grant = |sid: &str, uid: &str| RefreshGrant { sid: sid.into(), uid: uid.into(), expires_at: 100 };
        for (i, sid) in ["a1", "a2"].into_iter().enumerate() {
            store.create_session(sid, &session(&alice.uid), &[i as u8; 32], &grant(sid, &alice.uid)).unwrap();
        }
        store.create_session("b1", &session(&bob.uid), &[9; 32], &grant("b1", &bob.uid)).unwrap();

        let banned = store.set_banned(&alice.uid, Some(50)).unwrap().unwrap();
        assert_eq!(banned.banned_at, Some(50));
        assert!(store.session("a1").unwrap().unwrap().revoked && store.session("a2").unwrap().unwrap().revoked);
        assert!(!store.session("b1").unwrap().unwrap().revoked);
        let refused = store.create_session("a3", &session(&alice.uid), &[3; 32], &grant("a3", &alice.uid));
        assert!(matches!(refused, Err(StoreError::Banned)));
        assert!(store.session("a3").unwrap().is_none());
        assert_eq!(store.take_refresh_token(&[3; 32]).unwrap(), None);

        assert!(!store.set_banned(&alice.uid, None).unwrap().unwrap().is_banned());
        store.create_session("a4", &session(&alice.uid), &[4; 32], &grant("a4", &alice.uid)).unwrap();
        assert_eq!(store.set_banned("999999", Some(1)).unwrap(), None);
    }

    #[test]
    fn refresh_tokens_are_taken_once_and_not_added_to_revoked_sessions() {
        let store = temp_store();
        let key = SessionKey::from_bytes([5; 32]);
        let session = Session { uid: "1000".into(), created_at: 10, expires_at: 100, revoked: false, key: Some(key) };
        store.create_session("s1", &session, &[1; 32], &grant("s1", 100)).unwrap();
        assert_eq!(store.take_refresh_token(&[1; 32]).unwrap(), Some(grant("s1", 100)));
        assert_eq!(store.take_refresh_token(&[1; 32]).unwrap(), None);

        let other = SessionKey::from_bytes([6; 32]);
        let kept = store.extend_session(&[2; 32], &grant("s1", 200), &other).unwrap().unwrap();
        assert_eq!(kept.as_bytes(), &[5; 32], "a session keeps its key");
        assert_eq!(store.session("s1").unwrap().unwrap().expires_at, 200);
        assert!(store.revoke_session("s1").unwrap());
        assert!(store.session("s1").unwrap().unwrap().revoked);
        assert!(store.extend_session(&[3; 32], &grant("s1", 300), &other).unwrap().is_none());
        assert_eq!(store.take_refresh_token(&[3; 32]).unwrap(), None);
        assert!(store.extend_session(&[4; 32], &grant("nope", 300), &other).unwrap().is_none());
        assert!(!store.revoke_session("nope").unwrap());
    }

    #[test]
    fn session_keys_are_stored_and_old_sessions_get_one_at_refresh() {
        let store = temp_store();
        let key = SessionKey::from_bytes([7; 32]);
        let session = Session { uid: "1000".into(), created_at: 10, expires_at: 100, revoked: false, key: Some(key) };
        store.create_session("s1", &session, &[1; 32], &grant("s1", 100)).unwrap();
        assert_eq!(store.session("s1").unwrap().unwrap().key.unwrap().as_bytes(), &[7; 32]);
        let record = String::from_utf8(store.sessions.get("s1").unwrap().unwrap().to_vec()).unwrap();
        assert!(record.contains(&format!("\"key\":\"{}\"", SessionKey::from_bytes([7; 32]).to_base64())), "{record}");
        assert!(!format!("{:?}", store.session("s1").unwrap().unwrap()).contains("Bwc"), "Debug shows no key");

        // A record written before encrypted sessions.
        store.sessions.insert("old", r#"{"uid":"1000","created_at":1,"expires_at":100,"revoked":false}"#).unwrap();
        assert!(store.session("old").unwrap().unwrap().key.is_none());
        let fresh = SessionKey::from_bytes([8; 32]);
        let given = store.extend_session(&[2; 32], &grant("old", 200), &fresh).unwrap().unwrap();
        assert_eq!(given.as_bytes(), &[8; 32]);
        assert_eq!(store.session("old").unwrap().unwrap().key.unwrap().as_bytes(), &[8; 32]);

        store
            .sessions
            .insert("bad", r#"{"uid":"1","created_at":1,"expires_at":1,"revoked":false,"key":"AAAA"}"#)
            .unwrap();
        assert!(matches!(store.session("bad"), Err(StoreError::Corrupt { tree: "sessions", .. })));
    }

    #[test]
    fn open_waits_for_a_lock_released_soon_but_not_forever() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let held = SledStore::open(&path).unwrap();
        let e = SledStore::open_waiting(&path, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(e, OpenError::Locked { .. }), "{e}");
        assert!(e.to_string().contains("another account server is probably running with the same account.db_path"));
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(held);
        });
        SledStore::open_waiting(&path, Duration::from_secs(30)).unwrap();
        releaser.join().unwrap();
    }

    #[test]
    fn corrupt_records_are_errors() {
        let store = temp_store();
        store.sessions.insert("s1", "not json").unwrap();
        assert!(matches!(store.session("s1"), Err(StoreError::Corrupt { tree: "sessions", .. })));
        assert!(matches!(store.revoke_session("s1"), Err(StoreError::Corrupt { tree: "sessions", .. })));
    }
}
