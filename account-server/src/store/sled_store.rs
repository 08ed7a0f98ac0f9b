//! [`SledStore`]: the [`Store`] on an embedded sled database (the trees are listed in [`super`]).

use movan_protocol::crypto::SessionKey;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;

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
    pub(super) db: sled::Db,
    pub(super) meta: sled::Tree,
    pub(super) users: sled::Tree,
    pub(super) usernames: sled::Tree,
    pub(super) sessions: sled::Tree,
    pub(super) user_sessions: sled::Tree,
    pub(super) refresh_tokens: sled::Tree,
    pub(super) matches: sled::Tree,
    pub(super) user_matches: sled::Tree,
    pub(super) replays: sled::Tree,
    pub(super) replay_order: sled::Tree,
}

impl SledStore {
    /// Opens (creating if missing, with parent directories) the database at `path`.
    ///
    /// sled releases its lock file a moment after the last handle is dropped (spacejam/sled#1234), so a database
    /// just closed by this or an exiting process may look busy: the lock is retried for up to [`LOCK_WAIT`].
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Self::open_waiting(path, LOCK_WAIT)
    }

    pub(super) fn open_waiting(path: &Path, wait: Duration) -> Result<Self, OpenError> {
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
            replays: db.open_tree("replays")?,
            replay_order: db.open_tree("replay_order")?,
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
pub(super) enum Abort {
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

#[async_trait::async_trait]
impl Store for SledStore {
    async fn create_user(
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

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        match self.usernames.get(username.to_ascii_lowercase())? {
            Some(uid) => get(&self.users, "users", &uid),
            None => Ok(None),
        }
    }

    async fn user(&self, uid: &str) -> Result<Option<User>, StoreError> {
        get(&self.users, "users", uid.as_bytes())
    }

    async fn set_role_by_name(&self, username: &str, role: Role) -> Result<Option<User>, StoreError> {
        let Some(uid) = self.usernames.get(username.to_ascii_lowercase())? else {
            return Ok(None);
        };
        self.update_user(&uid, |user| user.role = role)
    }

    async fn set_banned(&self, uid: &str, banned_at: Option<u64>) -> Result<Option<User>, StoreError> {
        let Some(user) = self.update_user(uid.as_bytes(), |user| user.banned_at = banned_at)? else {
            return Ok(None);
        };
        if banned_at.is_some() {
            // `create_session` checks the ban in the transaction that indexes the session, so every session
            // created before the ban is in the index by now, and none can be created after it.
            for key in self.user_sessions.scan_prefix(index_prefix(uid)).keys() {
                let key = key?;
                let sid = String::from_utf8_lossy(&key[uid.len() + 1..]).into_owned();
                self.revoke_session(&sid).await?;
            }
        }
        Ok(Some(user))
    }

    async fn create_session(
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

    async fn session(&self, sid: &str) -> Result<Option<Session>, StoreError> {
        get(&self.sessions, "sessions", sid.as_bytes())
    }

    async fn revoke_session(&self, sid: &str) -> Result<bool, StoreError> {
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

    async fn spend_refresh_token(&self, digest: &[u8; 32]) -> Result<Option<RefreshUse>, StoreError> {
        let before = self.refresh_tokens.fetch_and_update(digest, |old| {
            let mut record: StoredGrant = serde_json::from_slice(old?).ok()?;
            record.spent = true;
            Some(encode(&record))
        })?;
        let Some(bytes) = before else { return Ok(None) };
        let record: StoredGrant = decode("refresh_tokens", &bytes)?;
        Ok(Some(if record.spent { RefreshUse::Reused(record.grant) } else { RefreshUse::Fresh(record.grant) }))
    }

    async fn prune_refresh_tokens(&self, now: u64) -> Result<usize, StoreError> {
        // A scan of every token: on the blocking pool, as before the trait went async.
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.prune_expired(now)).await.map_err(|_| StoreError::TaskFailed)?
    }

    async fn extend_session(
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

    async fn insert_match(&self, game: &MatchRecord) -> Result<bool, StoreError> {
        matches::insert(self, game)
    }

    async fn matches_of(&self, uid: &str, before: Option<&MatchCursor>, limit: usize) -> Result<MatchPage, StoreError> {
        matches::page(self, uid, before, limit)
    }

    async fn match_record(&self, match_id: &str) -> Result<Option<MatchRecord>, StoreError> {
        get(&self.matches, "matches", match_id.as_bytes())
    }

    async fn insert_replay(
        &self,
        match_id: &str,
        file: &[u8],
        retention: &ReplayRetention,
    ) -> Result<ReplayInsert, StoreError> {
        replays::insert(self, match_id, file, retention)
    }

    async fn replay(&self, match_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.replays.get(match_id.as_bytes())?.map(|file| file.to_vec()))
    }

    async fn replay_usage(&self) -> Result<ReplayUsage, StoreError> {
        replays::usage(self)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }
}

/// A `refresh_tokens` record: the grant, and whether the token was used (records from before reuse detection have
/// no `spent` and were never used, since using a token removed it then).
#[derive(Debug, Serialize, serde::Deserialize)]
pub(super) struct StoredGrant {
    #[serde(flatten)]
    pub(super) grant: RefreshGrant,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) spent: bool,
}

impl SledStore {
    /// [`Store::prune_refresh_tokens`], blocking.
    fn prune_expired(&self, now: u64) -> Result<usize, StoreError> {
        let mut removed = 0;
        for entry in self.refresh_tokens.iter() {
            let (key, bytes) = entry?;
            // An undecodable record is left for `spend_refresh_token` to report.
            let expired = serde_json::from_slice::<StoredGrant>(&bytes).is_ok_and(|r| r.grant.expires_at <= now);
            if expired && self.refresh_tokens.compare_and_swap(&key, Some(&bytes), None::<&[u8]>)?.is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

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
pub(super) fn index_prefix(uid: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(uid.len() + 25);
    key.extend_from_slice(uid.as_bytes());
    key.push(KEY_SEP);
    key
}

/// Whether sled failed to open because another handle holds the database lock. sled 0.34 reports it as an
/// `ErrorKind::Other` I/O error whose message starts with "could not acquire lock".
pub(super) fn is_lock_contention(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.kind() == io::ErrorKind::Other
        && io.to_string().starts_with("could not acquire lock"))
}

pub(super) fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    // serde_json writes a non-finite float as `null` rather than failing, and map keys are always strings.
    serde_json::to_vec(record).expect("records are structs of strings, numbers and JSON values, which always serialize")
}

pub(super) fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt { tree, source })
}

pub(super) fn get<T: DeserializeOwned>(
    tree: &sled::Tree,
    name: &'static str,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    tree.get(key)?.map(|bytes| decode(name, &bytes)).transpose()
}

/// Reads a record inside a transaction.
pub(super) fn get_in<T: DeserializeOwned>(
    tree: &TransactionalTree,
    name: &'static str,
    key: &[u8],
) -> Result<Option<T>, ConflictableTransactionError<Abort>> {
    let Some(bytes) = tree.get(key)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| ConflictableTransactionError::Abort(Abort::Corrupt(name, e)))
}
