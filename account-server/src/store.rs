//! Durable state: users, sessions and refresh tokens, behind the [`Store`] trait, with a sled implementation.
//!
//! [`SledStore`] keeps four trees of JSON records:
//! - `users`: uid → [`User`];
//! - `usernames`: lowercase username → uid, which makes usernames unique regardless of case;
//! - `sessions`: sid → [`Session`];
//! - `refresh_tokens`: SHA-256 of the refresh token → [`RefreshGrant`] (the token itself is never stored).

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

/// How long [`SledStore::open`] waits for the database lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// First uid handed out; smaller numbers stay free for special accounts.
const UID_OFFSET: u64 = 1000;

/// A future returned by [`Store::flush`].
pub type FlushFuture<'a> = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;

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
    /// Always `player` for now.
    pub role: String,
}

/// One login: the access and refresh tokens it issues carry its id (`sid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The user logged in.
    pub uid: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    /// Expiry of its newest refresh token, seconds since the Unix epoch.
    pub expires_at: u64,
    /// Set by logout; a revoked session accepts no token.
    pub revoked: bool,
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
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sled::Error),
    /// A stored record could not be decoded.
    #[error("corrupt record in tree `{tree}`: {source}")]
    Corrupt {
        /// The tree holding the record.
        tree: &'static str,
        /// The decoding failure.
        source: serde_json::Error,
    },
}

/// Users, sessions and refresh tokens. Implementations must make each method atomic.
pub trait Store: Send + Sync + 'static {
    /// Creates a user with a fresh uid, or fails with [`StoreError::UsernameTaken`] if another user has
    /// `username` ignoring ASCII case.
    fn create_user(&self, username: &str, password_hash: &str, created_at: u64) -> Result<User, StoreError>;

    /// The user with `username`, ignoring ASCII case.
    fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError>;

    /// The user with `uid`.
    fn user(&self, uid: &str) -> Result<Option<User>, StoreError>;

    /// Stores a new session `sid` together with its first refresh token.
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
    /// session is missing or revoked; returns whether the token was added.
    fn extend_session(&self, digest: &[u8; 32], grant: &RefreshGrant) -> Result<bool, StoreError>;

    /// Makes every completed write durable.
    fn flush(&self) -> FlushFuture<'_>;
}

/// [`Store`] on a sled database.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    users: sled::Tree,
    usernames: sled::Tree,
    sessions: sled::Tree,
    refresh_tokens: sled::Tree,
}

impl SledStore {
    /// Opens (creating if missing, with parent directories) the database at `path`.
    ///
    /// sled releases its lock file a moment after the last handle is dropped (spacejam/sled#1234), so a database
    /// just closed by this or an exiting process may look busy: the lock is retried for up to [`LOCK_WAIT`].
    pub fn open(path: &Path) -> Result<Self, sled::Error> {
        Self::open_waiting(path, LOCK_WAIT)
    }

    fn open_waiting(path: &Path, wait: Duration) -> Result<Self, sled::Error> {
        let deadline = Instant::now() + wait;
        loop {
            match sled::open(path) {
                Ok(db) => return Self::from_db(db),
                Err(e) if is_lock_contention(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Uses an already opened database, e.g. a temporary one.
    pub fn from_db(db: sled::Db) -> Result<Self, sled::Error> {
        Ok(Self {
            users: db.open_tree("users")?,
            usernames: db.open_tree("usernames")?,
            sessions: db.open_tree("sessions")?,
            refresh_tokens: db.open_tree("refresh_tokens")?,
            db,
        })
    }
}

/// Why a transaction stopped without committing.
enum Abort {
    Taken,
    Corrupt(&'static str, serde_json::Error),
}

impl From<TransactionError<Abort>> for StoreError {
    fn from(e: TransactionError<Abort>) -> Self {
        match e {
            TransactionError::Abort(Abort::Taken) => Self::UsernameTaken,
            TransactionError::Abort(Abort::Corrupt(tree, source)) => Self::Corrupt { tree, source },
            TransactionError::Storage(e) => Self::Db(e),
        }
    }
}

impl Store for SledStore {
    fn create_user(&self, username: &str, password_hash: &str, created_at: u64) -> Result<User, StoreError> {
        // An id lost to a taken username is simply skipped: uids are never reused.
        let user = User {
            uid: (self.db.generate_id()? + UID_OFFSET).to_string(),
            username: username.to_owned(),
            password_hash: password_hash.to_owned(),
            created_at,
            role: "player".into(),
        };
        let key = username.to_ascii_lowercase();
        let record = encode(&user);
        (&self.users, &self.usernames).transaction(|(users, usernames)| {
            if usernames.get(key.as_bytes())?.is_some() {
                return Err(ConflictableTransactionError::Abort(Abort::Taken));
            }
            usernames.insert(key.as_bytes(), user.uid.as_bytes())?;
            users.insert(user.uid.as_bytes(), record.as_slice())?;
            Ok(())
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

    fn create_session(
        &self,
        sid: &str,
        session: &Session,
        refresh_digest: &[u8; 32],
        grant: &RefreshGrant,
    ) -> Result<(), StoreError> {
        let (session, grant) = (encode(session), encode(grant));
        (&self.sessions, &self.refresh_tokens).transaction(|(sessions, refresh_tokens)| {
            sessions.insert(sid.as_bytes(), session.as_slice())?;
            refresh_tokens.insert(refresh_digest.as_slice(), grant.as_slice())?;
            Ok::<_, ConflictableTransactionError<Abort>>(())
        })?;
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

    fn extend_session(&self, digest: &[u8; 32], grant: &RefreshGrant) -> Result<bool, StoreError> {
        let record = encode(grant);
        let added = (&self.sessions, &self.refresh_tokens).transaction(|(sessions, refresh_tokens)| {
            let sid = grant.sid.as_bytes();
            let Some(mut session) = get_in::<Session>(sessions, "sessions", sid)? else {
                return Ok(false);
            };
            if session.revoked {
                return Ok(false);
            }
            session.expires_at = session.expires_at.max(grant.expires_at);
            sessions.insert(sid, encode(&session))?;
            refresh_tokens.insert(digest.as_slice(), record.as_slice())?;
            Ok(true)
        })?;
        Ok(added)
    }

    fn flush(&self) -> FlushFuture<'_> {
        Box::pin(async move {
            self.db.flush_async().await?;
            Ok(())
        })
    }
}

/// Whether sled failed to open because another handle holds the database lock. sled 0.34 reports it as an
/// `ErrorKind::Other` I/O error whose message starts with "could not acquire lock".
fn is_lock_contention(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.kind() == io::ErrorKind::Other
        && io.to_string().starts_with("could not acquire lock"))
}

fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    serde_json::to_vec(record).expect("records are structs of strings and integers, which always serialize")
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
        let a = store.create_user("Alice", "hash", 1).unwrap();
        assert!(matches!(store.create_user("aLiCe", "hash", 2), Err(StoreError::UsernameTaken)));
        let b = store.create_user("bob", "hash", 3).unwrap();
        assert_ne!(a.uid, b.uid);
        assert!(a.uid.parse::<u64>().unwrap() >= UID_OFFSET);
        assert_eq!(store.user_by_name("ALICE").unwrap().unwrap(), a);
        assert_eq!(store.user(&a.uid).unwrap().unwrap().username, "Alice");
        assert_eq!(a.role, "player");
        assert!(store.user_by_name("carol").unwrap().is_none());
    }

    #[test]
    fn refresh_tokens_are_taken_once_and_not_added_to_revoked_sessions() {
        let store = temp_store();
        let session = Session { uid: "1000".into(), created_at: 10, expires_at: 100, revoked: false };
        store.create_session("s1", &session, &[1; 32], &grant("s1", 100)).unwrap();
        assert_eq!(store.take_refresh_token(&[1; 32]).unwrap(), Some(grant("s1", 100)));
        assert_eq!(store.take_refresh_token(&[1; 32]).unwrap(), None);

        assert!(store.extend_session(&[2; 32], &grant("s1", 200)).unwrap());
        assert_eq!(store.session("s1").unwrap().unwrap().expires_at, 200);
        assert!(store.revoke_session("s1").unwrap());
        assert!(store.session("s1").unwrap().unwrap().revoked);
        assert!(!store.extend_session(&[3; 32], &grant("s1", 300)).unwrap());
        assert_eq!(store.take_refresh_token(&[3; 32]).unwrap(), None);
        assert!(!store.extend_session(&[4; 32], &grant("nope", 300)).unwrap());
        assert!(!store.revoke_session("nope").unwrap());
    }

    #[test]
    fn open_waits_for_a_lock_released_soon_but_not_forever() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let held = SledStore::open(&path).unwrap();
        let e = SledStore::open_waiting(&path, Duration::from_millis(50)).unwrap_err();
        assert!(is_lock_contention(&e), "{e}");
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
