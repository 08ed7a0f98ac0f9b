//! [`AppState`]: what every request handler shares.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{info, warn};

use crate::config::Config;
use crate::config::StoreKind;
use crate::credentials::CredentialRules;
use crate::limits::Limits;
use crate::nodes::Nodes;
use crate::password::PasswordHasher;
use crate::store::{OpenError, PgOpenError, PgStore, Role, SledStore, Store, StoreError};
use crate::tokens::{KeyError, TokenIssuer};

/// The current time in seconds since the Unix epoch; replaceable so tests can move time.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The account server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The token key pair cannot be created or loaded.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The database cannot be opened (a missing one is created), e.g. another process holds its lock.
    #[error(transparent)]
    Database(#[from] OpenError),
    /// PostgreSQL cannot be reached or its schema cannot be brought up to date.
    #[error(transparent)]
    Postgres(#[from] PgOpenError),
    /// The argon2 parameters are rejected (config validation normally catches this first).
    #[error("account.argon2_*: {0}")]
    Argon2(argon2::Error),
    /// The users of `account.admins` cannot be made admins.
    #[error("account.admins: {0}")]
    Admins(#[source] StoreError),
}

/// Shared state of the HTTP handlers. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) passwords: PasswordHasher,
    pub(crate) tokens: Arc<TokenIssuer>,
    pub(crate) rules: Arc<CredentialRules>,
    pub(crate) nodes: Nodes,
    pub(crate) limits: Arc<Limits>,
    /// `account.admins`: usernames that get the admin role.
    pub(crate) admins: Arc<[String]>,
    pub(crate) refresh_ttl_secs: u64,
    pub(crate) max_body_bytes: usize,
    /// `account.max_connections` and `account.header_timeout_secs`.
    pub(crate) connection_limits: crate::listener::ConnectionLimits,
    /// `account.body_timeout_secs`.
    pub(crate) body_timeout: std::time::Duration,
    /// `rpc.max_frame_bytes`: the registration reply, with its replayed revocations, must fit one frame.
    pub(crate) rpc_max_frame_bytes: usize,
    /// Static files and CORS (`account.demo_dir`, `js_dir`, `cors_origins`).
    pub(crate) web: Arc<crate::web::WebConfig>,
    /// The `account.replay_*` limits.
    pub(crate) replay_settings: crate::replays::ReplaySettings,
    /// Replay uploads under way.
    pub(crate) uploads: Arc<crate::replays::Uploads>,
    /// Renders `/metrics` ([`crate::metrics::install`]); `None`: `/metrics` answers 404.
    pub(crate) prometheus: Option<metrics_exporter_prometheus::PrometheusHandle>,
    clock: Clock,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("passwords", &self.passwords)
            .field("tokens", &self.tokens)
            .field("rules", &self.rules)
            .field("nodes", &self.nodes)
            .field("limits", &self.limits)
            .field("admins", &self.admins)
            .field("refresh_ttl_secs", &self.refresh_ttl_secs)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("rpc_max_frame_bytes", &self.rpc_max_frame_bytes)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Opens the configured store ([`open_store`]) and loads the token key pair, creating it if missing.
    pub async fn open(config: &Config) -> Result<Self, StartError> {
        Self::new(config, open_store(config).await?).await
    }

    /// Uses `store` (a fake one in tests, say), loads the token key pair (creating it if missing) and gives the
    /// existing users of `account.admins` the admin role. No sync node is registered yet.
    pub async fn new(config: &Config, store: Arc<dyn Store>) -> Result<Self, StartError> {
        let params = config.account.argon2_params().map_err(StartError::Argon2)?;
        for name in &config.account.admins {
            match store.set_role_by_name(name, Role::Admin).await.map_err(StartError::Admins)? {
                Some(user) => info!(uid = %user.uid, username = %user.username, "admin (account.admins)"),
                None => warn!(username = %name, "account.admins: no such user yet; admin once registered"),
            }
        }
        Ok(Self {
            store,
            passwords: PasswordHasher::new(params, config.account.hash_concurrency()),
            tokens: Arc::new(TokenIssuer::load(&config.token)?),
            rules: Arc::new(CredentialRules::new(&config.account)),
            nodes: Nodes::new(config.token.access_ttl_secs),
            limits: Arc::new(Limits::new(&config.account)),
            admins: config.account.admins.clone().into(),
            refresh_ttl_secs: config.token.refresh_ttl_secs,
            max_body_bytes: config.account.max_body_bytes,
            rpc_max_frame_bytes: config.rpc.max_frame_bytes,
            connection_limits: crate::listener::ConnectionLimits {
                max_connections: config.account.max_connections,
                header_timeout: std::time::Duration::from_secs(config.account.header_timeout_secs),
            },
            body_timeout: std::time::Duration::from_secs(config.account.body_timeout_secs),
            web: Arc::new(crate::web::WebConfig::from_config(&config.account)),
            replay_settings: crate::replays::ReplaySettings::from_config(&config.account),
            uploads: Arc::default(),
            prometheus: None,
            clock: Arc::new(unix_now),
        })
    }

    /// Replaces the system clock (seconds since the Unix epoch), e.g. to test expiry without waiting.
    pub fn with_clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Serves `GET /metrics` from `prometheus` (see [`crate::metrics::install`]).
    pub fn with_metrics(mut self, prometheus: Option<metrics_exporter_prometheus::PrometheusHandle>) -> Self {
        self.prometheus = prometheus;
        self
    }

    /// The store, e.g. to flush it at shutdown.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The registered sync nodes.
    pub fn nodes(&self) -> &Nodes {
        &self.nodes
    }

    /// The role a new account named `username` gets: admin if listed in `account.admins`.
    pub(crate) fn role_for_new(&self, username: &str) -> Role {
        if self.admins.iter().any(|a| a.eq_ignore_ascii_case(username)) { Role::Admin } else { Role::Player }
    }

    /// The password hasher.
    pub fn passwords(&self) -> &PasswordHasher {
        &self.passwords
    }

    /// Seconds since the Unix epoch, by this state's clock.
    pub fn now(&self) -> u64 {
        (self.clock)()
    }
}

/// Opens the store `account.store` names: the sled database at `account.db_path` (created if missing), or
/// PostgreSQL at `account.database_url` (its schema migrated).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    let account = &config.account;
    Ok(match account.store {
        StoreKind::Sled => Arc::new(SledStore::open(&account.db_path)?),
        StoreKind::Postgres => {
            let store = PgStore::connect(&account.database_url, account.database_max_connections).await?;
            info!(target = store.target(), max_connections = account.database_max_connections, "PostgreSQL store");
            Arc::new(store)
        }
    })
}

/// The store as a log field: `sled:PATH` or `postgres:user@host:port/database` (never a password).
pub fn store_description(config: &Config) -> String {
    match config.account.store {
        StoreKind::Sled => format!("sled:{}", config.account.db_path.display()),
        StoreKind::Postgres => config
            .account
            .database_url
            .parse::<tokio_postgres::Config>()
            .map_or_else(|_| "postgres".to_owned(), |c| format!("postgres:{}", crate::store::describe_pg(&c))),
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
