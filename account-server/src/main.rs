//! `account-server [--config PATH]` serves the account API over HTTP and the sync-server registry over RPC;
//! `account-server keygen` only creates the token key pair and the RPC secret; `account-server promote-admin NAME`
//! makes a user an admin; `account-server migrate-from-sled --from PATH` copies a sled database into PostgreSQL.

use std::future::Future;
use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use account_server::secret::ensure_rpc_secret;
use account_server::state::{open_store, store_description};
use account_server::store::migrate::copy_sled_to_postgres;
use account_server::tls::is_loopback;
use account_server::tokens::ensure_key_pair;
use account_server::{AppState, Config, PgStore, Role, SledStore, StoreKind, TlsConfig};
use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

/// Movan account server: registration, login and JWT issuing over HTTP/JSON; the sync servers register over RPC.
#[derive(Debug, Parser)]
#[command(name = "account-server", version)]
struct Cli {
    /// Configuration file (sections [account], [token] and [rpc]).
    #[arg(long, global = true, env = "MOVAN_CONFIG", default_value = "config/config.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the token key pair and the RPC secret if missing, print the private key, public key and secret paths
    /// (one per line) and exit.
    Keygen,
    /// Give an existing user the admin role, then exit. Opens the configured store directly: with sled, stop the
    /// server first (sled lets one process at a time open it); PostgreSQL may be in use.
    PromoteAdmin {
        /// The user's name (case does not matter).
        username: String,
    },
    /// Copy users, sessions, refresh tokens, matches and replays from a sled database into the configured
    /// PostgreSQL store (account.store = "postgres"), in one transaction, then exit. Records PostgreSQL has already
    /// are left as they are, so running it again copies only what is new. Stop the server using the sled database
    /// first (sled lets one process at a time open it).
    MigrateFromSled {
        /// The sled database directory (account.db_path of the server that used it).
        #[arg(long)]
        from: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Some(Command::Keygen) => keygen(&cli.config),
        Some(Command::PromoteAdmin { username }) => promote_admin(&cli.config, &username),
        Some(Command::MigrateFromSled { from }) => migrate_from_sled(&cli.config, &from),
        None => serve(&cli.config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("account-server: {}", movan_protocol::config::error_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn keygen(config: &Path) -> anyhow::Result<()> {
    let Config { token, rpc, .. } = Config::load(config)?;
    let status = ensure_key_pair(&token.private_key_path, &token.public_key_path)?;
    info!(?status, "token key pair ready");
    let (_, status) = ensure_rpc_secret(&rpc.secret_path)?;
    info!(?status, "rpc secret ready");
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", token.private_key_path.display())?;
    writeln!(out, "{}", token.public_key_path.display())?;
    writeln!(out, "{}", rpc.secret_path.display())?;
    out.flush()?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn promote_admin(config: &Path, username: &str) -> anyhow::Result<()> {
    let config = Config::load(config)?;
    let store = open_store(&config).await?;
    let user = store
        .set_role_by_name(username, Role::Admin)
        .await?
        .with_context(|| format!("no user named {username:?} in {}", store_description(&config)))?;
    store.flush().await?;
    info!(uid = %user.uid, username = %user.username, "promoted to admin");
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} (uid {}) is now an admin", user.username, user.uid)?;
    out.flush()?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn migrate_from_sled(config: &Path, from: &Path) -> anyhow::Result<()> {
    let config = Config::load(config)?;
    let account = &config.account;
    if account.store != StoreKind::Postgres {
        anyhow::bail!("account.store: must be \"postgres\" to migrate into it (with account.database_url)");
    }
    if !from.exists() {
        anyhow::bail!("{}: no sled database there", from.display());
    }
    let sled = SledStore::open(from)?;
    let postgres = PgStore::connect(&account.database_url, 2).await?;
    let copied = copy_sled_to_postgres(&sled, &postgres).await.context("copying into PostgreSQL")?;
    info!(from = %from.display(), to = postgres.target(), ?copied, "migrated from sled");
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "copied {} users, {} sessions, {} refresh tokens, {} matches and {} replays from {} to {} (records it had \
         already were left as they are)",
        copied.users,
        copied.sessions,
        copied.refresh_tokens,
        copied.matches,
        copied.replays,
        from.display(),
        postgres.target()
    )?;
    out.flush()?;
    Ok(())
}

/// Raises the soft open-file limit to the hard one and logs it; warns when `account.max_connections` does not fit.
fn raise_open_files(max_connections: usize) {
    match movan_protocol::process::raise_open_file_limit() {
        Ok((soft, hard)) => {
            info!(soft, hard, "open-file limit");
            // The store, the RPC connections and the log need some files besides the HTTP connections.
            if max_connections as u64 + 256 > soft {
                warn!(
                    max_connections,
                    open_file_limit = soft,
                    "account.max_connections does not fit the open-file limit: raise the hard limit (ulimit -Hn) or \
                     lower account.max_connections"
                );
            }
        }
        Err(e) => warn!(error = %e, "cannot raise the open-file limit"),
    }
}

#[tokio::main]
async fn serve(config: &Path) -> anyhow::Result<()> {
    let config = Config::load(config)?;
    let tls = config
        .account
        .tls_paths()
        .map(|(cert, key)| TlsConfig::load(cert, key))
        .transpose()
        .context("account.tls_cert_path, account.tls_key_path")?;
    let (secret, status) = ensure_rpc_secret(&config.rpc.secret_path)?;
    info!(?status, path = %config.rpc.secret_path.display(), "rpc secret ready");
    let state = AppState::open(&config).await?.with_metrics(account_server::metrics::install());
    raise_open_files(config.account.max_connections);
    let addr = config.account.http_addr;
    let http = movan_protocol::process::tcp_listener(addr, config.account.listen_backlog)
        .and_then(TcpListener::from_std)
        .with_context(|| format!("account.http_addr: cannot bind {addr}"))?;
    let addr = config.account.rpc_addr;
    let rpc = TcpListener::bind(addr).await.with_context(|| format!("account.rpc_addr: cannot bind {addr}"))?;
    let (http_bound, rpc_bound) = (http.local_addr()?, rpc.local_addr()?);
    warn_if_exposed(http_bound, tls.is_some(), rpc_bound);
    let shutdown = shutdown_signal();
    let scheme = if tls.is_some() { "https" } else { "http" };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "account-server listening on {scheme}://{http_bound}")?;
        writeln!(out, "account-server rpc listening on {rpc_bound}")?;
        out.flush()?;
    }
    info!(http = %http_bound, tls = tls.is_some(), rpc = %rpc_bound, store = %store_description(&config), "serving");
    let rpc_config = account_server::rpc::server_config(&config.rpc, &secret);
    account_server::serve(http, tls, rpc, state, rpc_config, shutdown).await?;
    info!("stopped");
    Ok(())
}

/// Warns about secrets crossing the network in clear: passwords and session keys over plain HTTP on an address
/// other machines can reach, and session keys over the RPC link (authenticated, not encrypted).
fn warn_if_exposed(http: SocketAddr, tls: bool, rpc: SocketAddr) {
    if !tls && !is_loopback(http) {
        warn!(
            addr = %http,
            "PLAIN HTTP ON A NETWORK ADDRESS: passwords, tokens and session keys cross the network unencrypted; \
             set account.tls_cert_path and account.tls_key_path, or put a TLS proxy in front and bind 127.0.0.1"
        );
    }
    if !is_loopback(rpc) {
        warn!(
            addr = %rpc,
            "the RPC link is authenticated but not encrypted, and carries session keys: keep account.rpc_addr on a \
             private network"
        );
    }
}

/// Listens for SIGINT (Ctrl-C) and, on Unix, SIGTERM from now on (so a signal sent as soon as the startup lines
/// are out is not lost); the future completes on the first one.
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, name: &'static str| {
            let stream = signal(kind).inspect_err(|e| error!(error = %e, "cannot listen for {name}")).ok();
            async move {
                match stream {
                    Some(mut stream) => {
                        stream.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
        };
        (listen(SignalKind::interrupt(), "SIGINT"), listen(SignalKind::terminate(), "SIGTERM"))
    };
    #[cfg(not(unix))]
    let (interrupt, terminate) = (
        async {
            if let Err(e) = tokio::signal::ctrl_c().await {
                error!(error = %e, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        },
        std::future::pending::<()>(),
    );
    async move {
        tokio::select! {
            () = interrupt => info!("SIGINT received, shutting down"),
            () = terminate => info!("SIGTERM received, shutting down"),
        }
    }
}
