//! The `[account]` section of `config/config.toml` and the shared `[token]` and `[rpc]` sections (defined in
//! `movan_protocol::sections`, which the sync server reads too), validated at start.
//!
//! Every key is optional and defaults to the value documented in `config/config.toml`; an unknown key or a value
//! out of range is an error naming the file and the key.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use movan_protocol::config::{ConfigError, ConfigFile};
use serde::Deserialize;

/// OWASP's minimum argon2id memory cost, KiB (19 MiB).
pub const MIN_ARGON2_MEMORY_KIB: u32 = 19_456;
/// OWASP's minimum argon2id iterations with [`MIN_ARGON2_MEMORY_KIB`].
pub const MIN_ARGON2_ITERATIONS: u32 = 2;

pub use movan_protocol::sections::{RpcSection, TokenSection};

/// The `[account]` section: the HTTP and RPC services, the database, admins, password hashing, credential rules and
/// attempt limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountConfig {
    /// HTTP/JSON listen address.
    pub http_addr: SocketAddr,
    /// PEM certificate chain (leaf first) for HTTPS on `http_addr`; empty, with `tls_key_path`, for plain HTTP.
    pub tls_cert_path: PathBuf,
    /// PEM private key of `tls_cert_path`; empty, with `tls_cert_path`, for plain HTTP.
    pub tls_key_path: PathBuf,
    /// RPC listen address for sync servers.
    pub rpc_addr: SocketAddr,
    /// Where users, sessions, matches and replays are kept: the embedded sled database at `db_path` (the default),
    /// or PostgreSQL at `database_url`.
    pub store: StoreKind,
    /// sled database directory (`store = "sled"`).
    pub db_path: PathBuf,
    /// PostgreSQL to use with `store = "postgres"`: `postgres://user[:password]@host[:port]/database` (or
    /// `host=... dbname=...` pairs). The connection is not encrypted: keep it on this machine or a private network.
    pub database_url: String,
    /// PostgreSQL connections kept open at most (`store = "postgres"`).
    pub database_max_connections: usize,
    /// Usernames given the `admin` role at start-up and at registration (compared ignoring ASCII case). Removing a
    /// name does not demote the user.
    pub admins: Vec<String>,
    /// Password hashes computed at once; 0 = number of CPU cores.
    pub max_concurrent_hashes: usize,
    /// argon2id memory cost, KiB.
    pub argon2_memory_kib: u32,
    /// argon2id iterations.
    pub argon2_iterations: u32,
    /// argon2id lanes.
    pub argon2_parallelism: u32,
    /// Shortest username, characters.
    pub username_min_len: usize,
    /// Longest username, characters.
    pub username_max_len: usize,
    /// Shortest password, characters.
    pub password_min_len: usize,
    /// Longest password, characters.
    pub password_max_len: usize,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// Seconds a connection has to send a complete request head, counted from when it connects or from the end of
    /// the previous response: so also how long a keep-alive connection may sit idle. The connection is then closed.
    pub header_timeout_secs: u64,
    /// Seconds a request has to deliver its whole body; then `408 request_timeout` and the connection is closed.
    pub body_timeout_secs: u64,
    /// HTTP connections open at once, at most; more are answered `503 too_many_connections` and closed (over HTTPS
    /// just closed).
    pub max_connections: usize,
    /// Listen backlog of `http_addr`: connections the kernel queues before they are accepted (capped by
    /// `net.core.somaxconn`).
    pub listen_backlog: u32,
    /// Login attempts per client address per `login_ip_window_secs`, whatever their outcome; 0 = unlimited.
    pub login_attempts_per_ip: u32,
    /// Window of `login_attempts_per_ip`, seconds.
    pub login_ip_window_secs: u64,
    /// Failed logins per username (any case) and client network (IPv4 /24, IPv6 /64) per `login_username_window_secs`;
    /// 0 = unlimited.
    pub login_failures_per_username: u32,
    /// Failed logins per username (any case) from all client networks together per `login_username_window_secs`;
    /// 0 = unlimited. Should be well above `login_failures_per_username`, which counts per network.
    pub login_failures_per_username_global: u32,
    /// Window of `login_failures_per_username`, seconds.
    pub login_username_window_secs: u64,
    /// Registration attempts per client address per `register_ip_window_secs`; 0 = unlimited.
    pub register_per_ip: u32,
    /// Window of `register_per_ip`, seconds.
    pub register_ip_window_secs: u64,
    /// Client addresses the per-address limits skip (a TLS proxy on this machine, local load tests).
    pub limit_exempt_ips: Vec<IpAddr>,
    /// Addresses or usernames each attempt limit tracks at most; beyond it the least restricted are forgotten.
    pub limit_max_keys: usize,
    /// Directory served at `/demo/` (the browser demo); empty = not served.
    pub demo_dir: PathBuf,
    /// Directory served at `/js/` (the JavaScript client); empty = not served.
    pub js_dir: PathBuf,
    /// Origins (`scheme://host[:port]`) whose pages may call the HTTP API from a browser (CORS); `"*"` = any.
    pub cors_origins: Vec<String>,
    /// Largest replay accepted from a sync server, bytes.
    pub replay_max_bytes: u64,
    /// Replays kept at most; the oldest go first.
    pub replay_keep_count: u64,
    /// Bytes of replays kept at most; the oldest go first.
    pub replay_keep_bytes: u64,
    /// Bytes of unfinished replay uploads held at once (each counts at its full size from its first chunk).
    pub replay_upload_max_bytes: u64,
    /// Seconds an unfinished upload may go without a chunk before it is dropped.
    pub replay_upload_timeout_secs: u64,
}

/// `account.store`: which [`crate::Store`] the account server uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// sled, embedded, at `account.db_path`: nothing to install, one account server per database.
    #[default]
    Sled,
    /// PostgreSQL at `account.database_url`: several account servers may share it.
    Postgres,
}

impl Default for AccountConfig {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 2026)),
            tls_cert_path: PathBuf::new(),
            tls_key_path: PathBuf::new(),
            rpc_addr: SocketAddr::from(([127, 0, 0, 1], 2027)),
            store: StoreKind::Sled,
            db_path: PathBuf::from("data/accounts.sled"),
            database_url: String::new(),
            database_max_connections: 16,
            admins: Vec::new(),
            max_concurrent_hashes: 0,
            argon2_memory_kib: MIN_ARGON2_MEMORY_KIB,
            argon2_iterations: MIN_ARGON2_ITERATIONS,
            argon2_parallelism: 1,
            username_min_len: 3,
            username_max_len: 32,
            password_min_len: 8,
            password_max_len: 128,
            max_body_bytes: 16_384,
            header_timeout_secs: 10,
            body_timeout_secs: 10,
            max_connections: 4096,
            listen_backlog: 1024,
            login_attempts_per_ip: 60,
            login_ip_window_secs: 60,
            login_failures_per_username: 10,
            login_failures_per_username_global: 100,
            login_username_window_secs: 900,
            register_per_ip: 20,
            register_ip_window_secs: 3600,
            limit_exempt_ips: vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from(std::net::Ipv6Addr::LOCALHOST)],
            limit_max_keys: 100_000,
            demo_dir: PathBuf::from("web/demo"),
            js_dir: PathBuf::from("clients/js"),
            cors_origins: Vec::new(),
            replay_max_bytes: 32 * 1024 * 1024,
            replay_keep_count: 10_000,
            replay_keep_bytes: 4 * 1024 * 1024 * 1024,
            replay_upload_max_bytes: 128 * 1024 * 1024,
            replay_upload_timeout_secs: 60,
        }
    }
}

impl AccountConfig {
    /// The argon2id cost parameters. Cannot fail for a configuration that passed [`Config::from_file`].
    pub fn argon2_params(&self) -> Result<argon2::Params, argon2::Error> {
        argon2::Params::new(self.argon2_memory_kib, self.argon2_iterations, self.argon2_parallelism, None)
    }

    /// The certificate and key paths if HTTPS is configured. Both or neither are set in a configuration that passed
    /// [`Config::from_file`].
    pub fn tls_paths(&self) -> Option<(&Path, &Path)> {
        let (cert, key) = (self.tls_cert_path.as_path(), self.tls_key_path.as_path());
        (!cert.as_os_str().is_empty() && !key.as_os_str().is_empty()).then_some((cert, key))
    }

    /// How many password hashes may run at once: `max_concurrent_hashes`, or the number of CPU cores for 0.
    pub fn hash_concurrency(&self) -> usize {
        if self.max_concurrent_hashes > 0 {
            return self.max_concurrent_hashes;
        }
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Everything the account server reads from the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// `[account]`.
    pub account: AccountConfig,
    /// `[token]`.
    pub token: TokenSection,
    /// `[rpc]`.
    pub rpc: RpcSection,
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::from_file(&ConfigFile::read(path)?)
    }

    /// Takes and validates the `[account]`, `[token]` and `[rpc]` sections of an already parsed file.
    pub fn from_file(file: &ConfigFile) -> Result<Self, ConfigError> {
        file.check_sections(movan_protocol::config::SECTIONS)?;
        let account: AccountConfig = file.section("account")?;
        let token: TokenSection = file.section("token")?;
        let rpc: RpcSection = file.section("rpc")?;
        for shared in [token.validate(), rpc.validate()] {
            shared.map_err(|e| file.invalid(e.key, e.reason))?;
        }
        if let Some((key, why)) = first_violation(&account) {
            return Err(file.invalid(key, why));
        }
        Ok(Self { account, token, rpc })
    }
}

/// The first key whose value is out of range, and why.
fn first_violation(a: &AccountConfig) -> Option<(&'static str, String)> {
    let (has_cert, has_key) = (!a.tls_cert_path.as_os_str().is_empty(), !a.tls_key_path.as_os_str().is_empty());
    const WEEK: u64 = 7 * 24 * 3600;
    let checks: [(&str, bool, &str); 31] = [
        ("account.db_path", !a.db_path.as_os_str().is_empty(), "must not be empty"),
        (
            "account.database_url",
            a.store != StoreKind::Postgres || !a.database_url.is_empty(),
            "must be set when account.store = \"postgres\" (postgres://user@host:port/database)",
        ),
        ("account.database_max_connections", (1..=1024).contains(&a.database_max_connections), "must be 1 to 1024"),
        (
            "account.tls_key_path",
            has_key || !has_cert,
            "must be set when account.tls_cert_path is (both empty for plain HTTP)",
        ),
        (
            "account.tls_cert_path",
            has_cert || !has_key,
            "must be set when account.tls_key_path is (both empty for plain HTTP)",
        ),
        ("account.admins", a.admins.iter().all(|name| !name.trim().is_empty()), "names must not be empty"),
        ("account.max_concurrent_hashes", a.max_concurrent_hashes <= 1024, "must be 0 (CPU cores) to 1024"),
        (
            "account.argon2_memory_kib",
            (MIN_ARGON2_MEMORY_KIB..=4 * 1024 * 1024).contains(&a.argon2_memory_kib),
            "must be 19456 (OWASP minimum) to 4194304 (4 GiB)",
        ),
        (
            "account.argon2_iterations",
            (MIN_ARGON2_ITERATIONS..=1000).contains(&a.argon2_iterations),
            "must be 2 (OWASP minimum) to 1000",
        ),
        ("account.argon2_parallelism", (1..=64).contains(&a.argon2_parallelism), "must be 1 to 64"),
        ("account.username_min_len", (1..=256).contains(&a.username_min_len), "must be 1 to 256"),
        (
            "account.username_max_len",
            (a.username_min_len..=256).contains(&a.username_max_len),
            "must be account.username_min_len to 256",
        ),
        ("account.password_min_len", (1..=1024).contains(&a.password_min_len), "must be 1 to 1024"),
        (
            "account.password_max_len",
            (a.password_min_len..=1024).contains(&a.password_max_len),
            "must be account.password_min_len to 1024",
        ),
        ("account.login_attempts_per_ip", a.login_attempts_per_ip <= 1_000_000, "must be 0 (unlimited) to 1000000"),
        ("account.login_ip_window_secs", (1..=WEEK).contains(&a.login_ip_window_secs), "must be 1 to 604800 (a week)"),
        (
            "account.login_failures_per_username",
            a.login_failures_per_username <= 1_000_000,
            "must be 0 (unlimited) to 1000000",
        ),
        (
            "account.login_failures_per_username_global",
            a.login_failures_per_username_global <= 1_000_000,
            "must be 0 (unlimited) to 1000000",
        ),
        (
            "account.login_username_window_secs",
            (1..=WEEK).contains(&a.login_username_window_secs),
            "must be 1 to 604800 (a week)",
        ),
        ("account.register_per_ip", a.register_per_ip <= 1_000_000, "must be 0 (unlimited) to 1000000"),
        (
            "account.register_ip_window_secs",
            (1..=WEEK).contains(&a.register_ip_window_secs),
            "must be 1 to 604800 (a week)",
        ),
        ("account.limit_max_keys", (1..=10_000_000).contains(&a.limit_max_keys), "must be 1 to 10000000"),
        ("account.header_timeout_secs", (1..=3600).contains(&a.header_timeout_secs), "must be 1 to 3600"),
        ("account.body_timeout_secs", (1..=3600).contains(&a.body_timeout_secs), "must be 1 to 3600"),
        ("account.max_connections", (1..=1_000_000).contains(&a.max_connections), "must be 1 to 1000000"),
        ("account.listen_backlog", (1..=65_535).contains(&a.listen_backlog), "must be 1 to 65535"),
        (
            "account.replay_max_bytes",
            (4096..=1 << 30).contains(&a.replay_max_bytes),
            "must be 4096 to 1073741824 (1 GiB)",
        ),
        ("account.replay_keep_count", a.replay_keep_count >= 1, "must be at least 1"),
        (
            "account.replay_keep_bytes",
            a.replay_keep_bytes >= a.replay_max_bytes,
            "must be at least account.replay_max_bytes",
        ),
        (
            "account.replay_upload_max_bytes",
            a.replay_upload_max_bytes >= a.replay_max_bytes,
            "must be at least account.replay_max_bytes",
        ),
        ("account.replay_upload_timeout_secs", (1..=3600).contains(&a.replay_upload_timeout_secs), "must be 1 to 3600"),
    ];
    if let Some((key, _, why)) = checks.into_iter().find(|(_, ok, _)| !ok) {
        return Some((key, why.to_owned()));
    }
    // tokio-postgres's message names the problem, never the URL, so no password ends up in a log.
    if let Some(Err(e)) = (!a.database_url.is_empty()).then(|| a.database_url.parse::<tokio_postgres::Config>()) {
        let why = format!("is not a PostgreSQL URL like postgres://user@host:port/database ({e})");
        return Some(("account.database_url", why));
    }
    if let Some(bad) = a.cors_origins.iter().find(|o| !valid_origin(o)) {
        return Some((
            "account.cors_origins",
            format!("{bad:?} is not \"*\" or an origin like \"https://game.example\""),
        ));
    }
    // A body must fit the longest password (4 bytes per character in UTF-8) plus the username and the JSON around them.
    let needed = 4 * (a.password_max_len + a.username_max_len) + 64;
    if !(needed..=16 * 1024 * 1024).contains(&a.max_body_bytes) {
        let why = format!("must be {needed} (room for the longest username and password) to 16777216");
        return Some(("account.max_body_bytes", why));
    }
    None
}

/// Whether `s` looks like `host:port` with a non-empty host and a valid port.
pub(crate) fn is_host_port(s: &str) -> bool {
    s.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.contains(char::is_whitespace) && port.parse::<u16>().is_ok()
    })
}

/// Checks one `account.cors_origins` entry: `*`, or `http(s)://host[:port]` with nothing after.
pub fn valid_origin(origin: &str) -> bool {
    if origin == "*" {
        return true;
    }
    let Some(rest) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) else {
        return false;
    };
    !rest.is_empty() && !rest.contains('/') && axum::http::HeaderValue::from_str(origin).is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_file(&ConfigFile::parse(Path::new("movan.toml"), text)?)
    }

    #[test]
    fn origins_are_checked() {
        for ok in ["*", "http://localhost:8080", "https://game.example"] {
            assert!(valid_origin(ok), "{ok}");
        }
        for bad in ["", "localhost", "http://", "https://a.example/", "ftp://x", "http://a\nb"] {
            assert!(!valid_origin(bad), "{bad:?}");
        }
    }

    #[test]
    fn shipped_config_file_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/config.toml");
        assert_eq!(Config::load(&path).unwrap(), Config::default());
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn values_are_read() {
        let c = parse(
            "[account]\nhttp_addr = \"0.0.0.0:9000\"\nrpc_addr = \"0.0.0.0:9001\"\nusername_max_len = 20\n\
             admins = [\"Root\"]\n[token]\naccess_ttl_secs = 60\n[rpc]\nsecret_path = \"s\"\nheartbeat_interval_ms = 50\n",
        )
        .unwrap();
        assert_eq!(c.account.http_addr, SocketAddr::from(([0, 0, 0, 0], 9000)));
        assert_eq!(c.account.rpc_addr, SocketAddr::from(([0, 0, 0, 0], 9001)));
        assert_eq!(c.account.admins, ["Root"]);
        assert_eq!(c.rpc.secret_path, PathBuf::from("s"));
        assert_eq!(c.rpc.heartbeat_interval_ms, 50);
        assert_eq!(c.rpc.heartbeat_misses, 3);
        assert_eq!(c.account.username_max_len, 20);
        assert_eq!(c.token.access_ttl_secs, 60);
    }

    #[test]
    fn unknown_and_mistyped_keys_are_named() {
        let e = parse("[account]\nargon2_memory = 1\n").unwrap_err().to_string();
        assert!(e.contains("account") && e.contains("argon2_memory"), "{e}");
        let e = parse("[token]\naccess_ttl_secs = \"long\"\n").unwrap_err().to_string();
        assert!(e.starts_with("movan.toml: token.access_ttl_secs: "), "{e}");
        let e = parse("[account]\nsync_addr = \"127.0.0.1:2025\"\n").unwrap_err().to_string();
        assert!(e.contains("account") && e.contains("sync_addr"), "the static sync address is gone: {e}");
        let e = parse("[rpc]\nsecret = \"x\"\n").unwrap_err().to_string();
        assert!(e.contains("rpc") && e.contains("secret"), "{e}");
    }

    #[test]
    fn unknown_sections_stop_the_account_server_the_sync_servers_do_not() {
        let e = parse("[synk]\nlisten_addr = \"127.0.0.1:1\"\n").unwrap_err().to_string();
        assert!(e.starts_with("movan.toml: synk: unknown section; did you mean [sync]?"), "{e}");
        let e = parse("[accounts]\n").unwrap_err().to_string();
        assert!(e.starts_with("movan.toml: accounts: unknown section; did you mean [account]?"), "{e}");
        let e = parse("http_addr = \"127.0.0.1:1\"\n").unwrap_err().to_string();
        assert!(e.starts_with("movan.toml: http_addr: a key outside any section"), "{e}");
        assert_eq!(parse("[sync]\nlisten_addr = \"127.0.0.1:1\"\nanything = 1\n").unwrap(), Config::default());
    }

    #[test]
    fn out_of_range_values_are_named() {
        let cases = [
            ("[account]\nargon2_memory_kib = 4096\n", "account.argon2_memory_kib"),
            ("[account]\nargon2_iterations = 1\n", "account.argon2_iterations"),
            ("[account]\nargon2_parallelism = 0\n", "account.argon2_parallelism"),
            ("[account]\nusername_min_len = 10\nusername_max_len = 5\n", "account.username_max_len"),
            ("[account]\npassword_min_len = 0\n", "account.password_min_len"),
            ("[account]\nmax_body_bytes = 100\n", "account.max_body_bytes"),
            ("[account]\nheader_timeout_secs = 0\n", "account.header_timeout_secs"),
            ("[account]\nbody_timeout_secs = 0\n", "account.body_timeout_secs"),
            ("[account]\nmax_connections = 0\n", "account.max_connections"),
            ("[account]\nlisten_backlog = 0\n", "account.listen_backlog"),
            ("[account]\nadmins = [\"\"]\n", "account.admins"),
            ("[account]\nlogin_attempts_per_ip = 2000000\n", "account.login_attempts_per_ip"),
            ("[account]\nlogin_ip_window_secs = 0\n", "account.login_ip_window_secs"),
            ("[account]\nlogin_username_window_secs = 604801\n", "account.login_username_window_secs"),
            ("[account]\nregister_ip_window_secs = 0\n", "account.register_ip_window_secs"),
            ("[account]\nlimit_max_keys = 0\n", "account.limit_max_keys"),
            ("[account]\ntls_cert_path = \"cert.pem\"\n", "account.tls_key_path"),
            ("[account]\ntls_key_path = \"key.pem\"\n", "account.tls_cert_path"),
            ("[account]\ntls_cert_path = \"cert.pem\"\ntls_key_path = \"\"\n", "account.tls_key_path"),
            ("[rpc]\nheartbeat_interval_ms = 0\n", "rpc.heartbeat_interval_ms"),
            ("[rpc]\nmax_in_flight = 0\n", "rpc.max_in_flight"),
            ("[rpc]\nsecret_path = \"\"\n", "rpc.secret_path"),
            ("[token]\nissuer = \"\"\n", "token.issuer"),
            ("[token]\naccess_ttl_secs = 0\n", "token.access_ttl_secs"),
            ("[token]\npublic_key_path = \"data/jwt_ed25519.pem\"\n", "token.public_key_path"),
        ];
        for (text, key) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with(&format!("movan.toml: {key}: ")), "{text:?} gave {e}");
        }
    }

    #[test]
    fn attempt_limits_are_read_and_zero_means_unlimited() {
        let c = parse(
            "[account]\nlogin_attempts_per_ip = 0\nlogin_failures_per_username = 3\nlogin_username_window_secs = 60\n\
             register_per_ip = 1\nlimit_exempt_ips = [\"10.0.0.1\", \"::1\"]\nlimit_max_keys = 50\n",
        )
        .unwrap();
        assert_eq!(c.account.login_attempts_per_ip, 0);
        assert_eq!((c.account.login_failures_per_username, c.account.login_username_window_secs), (3, 60));
        assert_eq!(c.account.register_per_ip, 1);
        let exempt: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        assert_eq!(c.account.limit_exempt_ips, exempt);
        assert_eq!(c.account.limit_max_keys, 50);
        let e = parse("[account]\nlimit_exempt_ips = [\"localhost\"]\n").unwrap_err().to_string();
        assert!(e.contains("account.limit_exempt_ips"), "{e}");
    }

    #[test]
    fn tls_is_off_by_default_and_on_with_both_paths() {
        assert_eq!(Config::default().account.tls_paths(), None);
        let c = parse("[account]\ntls_cert_path = \"c.pem\"\ntls_key_path = \"k.pem\"\n").unwrap();
        assert_eq!(c.account.tls_paths(), Some((Path::new("c.pem"), Path::new("k.pem"))));
        let c = parse("[account]\ntls_cert_path = \"\"\ntls_key_path = \"\"\n").unwrap();
        assert_eq!(c.account.tls_paths(), None);
    }

    #[test]
    fn the_store_is_sled_unless_postgres_is_chosen_with_a_url() {
        assert_eq!(Config::default().account.store, StoreKind::Sled);
        let c = parse("[account]\nstore = \"postgres\"\ndatabase_url = \"postgres://movan@127.0.0.1:5432/movan\"\n");
        let c = c.unwrap();
        assert_eq!(
            (c.account.store, c.account.database_url.as_str()),
            (StoreKind::Postgres, "postgres://movan@127.0.0.1:5432/movan")
        );
        let cases = [
            ("store = \"postgres\"\n", "account.database_url: must be set when account.store = \"postgres\""),
            ("store = \"postgres\"\ndatabase_url = \"mysql://x\"\n", "account.database_url: is not a PostgreSQL URL"),
            ("store = \"mongo\"\n", "account.store: "),
            ("database_max_connections = 0\n", "account.database_max_connections: must be 1 to 1024"),
        ];
        for (text, start) in cases {
            let e = parse(&format!("[account]\n{text}")).unwrap_err().to_string();
            assert!(e.starts_with(&format!("movan.toml: {start}")), "{text:?} gave {e}");
        }
    }

    #[test]
    fn default_argon2_params_are_valid() {
        let p = AccountConfig::default().argon2_params().unwrap();
        assert_eq!((p.m_cost(), p.t_cost(), p.p_cost()), (19_456, 2, 1));
        assert!(AccountConfig::default().hash_concurrency() >= 1);
    }
}
