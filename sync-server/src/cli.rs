//! The `sync-server` command line, reusable by game binaries that bring their own [`RoomFactory`]:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     sync_server::cli::main_with_rooms(sync_server::room::default_rooms())
//! }
//! ```

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::Server;
use crate::auth::TokenVerifier;
use crate::config::{Config, Encryption};
use crate::health::Health;
use crate::keys::SessionKeys;
use crate::link::{Link, RegisterNode};
use crate::room::RoomFactory;

/// Movan sync server: lockstep rooms over TCP.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// Configuration file (the `[sync]` and `[token]` sections are read).
    #[arg(long, env = "MOVAN_CONFIG", default_value = "config/config.toml")]
    pub config: PathBuf,
    /// Listen address, overriding `sync.listen_addr` (port 0 picks a free port).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// WebSocket listen address, overriding `sync.ws_addr` (port 0 picks a free port).
    #[arg(long)]
    pub ws_listen: Option<SocketAddr>,
    /// UDP listen address, overriding `sync.udp_addr` (port 0 picks a free port).
    #[arg(long)]
    pub udp_listen: Option<SocketAddr>,
    /// Health endpoint address (`/healthz`, `/readyz`), overriding `sync.metrics_addr` (port 0 picks a free port).
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
}

/// Parses the command line, sets up logging, and runs a sync server with `factory`'s rooms until SIGINT/SIGTERM.
///
/// Prints `sync-server listening on <addr>` on stdout once it accepts connections (after
/// `sync-server websocket listening on ws://<addr>/ws` when `sync.ws_addr` is set, and
/// `sync-server udp listening on <addr>` when `sync.udp_addr` is set, and `sync-server health listening on
/// http://<addr>` when `sync.metrics_addr` is set). A failure to start (a bad config file, a busy
/// port) is one line on stderr, `sync-server: <file>: <section.key>: <reason>` for the config, and exit status 1.
pub fn main_with_rooms(factory: impl RoomFactory) -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = tokio::runtime::Runtime::new()
        .context("cannot start the tokio runtime")
        .and_then(|runtime| runtime.block_on(serve(args, factory)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sync-server: {}", movan_protocol::config::error_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args, factory: impl RoomFactory) -> anyhow::Result<()> {
    let mut config = Config::load(&args.config)?;
    let rooms = factory.name();
    if let Some(addr) = args.listen {
        config.sync.listen_addr = addr;
    }
    if let Some(addr) = args.ws_listen {
        config.sync.ws_addr = addr.to_string();
    }
    if let Some(addr) = args.udp_listen {
        config.sync.udp_addr = addr.to_string();
    }
    if let Some(addr) = args.metrics_listen {
        config.sync.metrics_addr = addr.to_string();
    }
    let token = &config.token;
    let verifier = TokenVerifier::from_pem_file(&token.public_key_path, &token.issuer, &token.audience)?;
    match movan_protocol::process::raise_open_file_limit() {
        Ok((soft, hard)) => {
            tracing::info!(soft, hard, "open-file limit");
            if config.sync.max_connections as u64 + 256 > soft {
                tracing::warn!(
                    max_connections = config.sync.max_connections,
                    open_file_limit = soft,
                    "sync.max_connections does not fit the open-file limit: raise the hard limit (ulimit -Hn) or \
                     lower sync.max_connections"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let backlog = config.sync.listen_backlog;
    let listener = movan_protocol::process::tcp_listener(config.sync.listen_addr, backlog)
        .and_then(tokio::net::TcpListener::from_std)
        .with_context(|| format!("cannot listen on {} (sync.listen_addr)", config.sync.listen_addr))?;
    let addr = listener.local_addr()?;
    let ws_listener = listen_opt(&config.sync.ws_addr, "sync.ws_addr", backlog)?;
    let ws_url = match &ws_listener {
        Some(l) if config.sync.public_ws_url.is_empty() => {
            let port = l.local_addr()?.port();
            let host = match config.sync.public_addr.rsplit_once(':') {
                Some((host, _)) if !config.sync.public_addr.is_empty() => host.to_owned(),
                _ => l.local_addr()?.ip().to_string(),
            };
            format!("ws://{host}:{port}{}", crate::server::WS_PATH)
        }
        Some(_) => config.sync.public_ws_url.clone(),
        None => String::new(),
    };
    let udp_socket = match config.sync.udp_addr.parse::<SocketAddr>() {
        Ok(udp_addr) => Some(
            tokio::net::UdpSocket::bind(udp_addr)
                .await
                .with_context(|| format!("cannot listen on {udp_addr} (sync.udp_addr)"))?,
        ),
        Err(_) => None,
    };
    let health_listener = listen_opt(&config.sync.metrics_addr, "sync.metrics_addr", 128)?;
    // Before anything makes its metric handles (crate::metrics::get), so they record.
    let prometheus = health_listener.as_ref().and_then(|_| crate::metrics::install());
    let udp_public = match &udp_socket {
        Some(s) if config.sync.public_udp_addr.is_empty() => {
            let port = s.local_addr()?.port();
            match config.sync.public_addr.rsplit_once(':') {
                Some((host, _)) if !config.sync.public_addr.is_empty() => format!("{host}:{port}"),
                _ => s.local_addr()?.to_string(),
            }
        }
        Some(_) => config.sync.public_udp_addr.clone(),
        None => String::new(),
    };
    tracing::info!(
        %addr,
        config = %args.config.display(),
        tick_ms = config.sync.tick_interval_ms,
        %rooms,
        "sync server started"
    );
    let (reports, reports_rx) = tokio::sync::mpsc::channel(1024);
    let server = Server::new(config.clone(), verifier).with_rooms(factory).with_match_reports(reports);
    let link = start_link(&config, addr, (&ws_url, &udp_public), server.control(), reports_rx)?;
    let server = match (config.sync.encryption, &link) {
        (Encryption::Required, Some(link)) => server.with_session_keys(SessionKeys::new(link.key_source(), 100_000)),
        (Encryption::Required, None) => anyhow::bail!(
            "{}: sync.encryption = \"required\" needs the account server link for session keys (sync.account_rpc_addr)",
            args.config.display()
        ),
        (Encryption::Off, _) => {
            tracing::warn!(
                "sync.encryption = \"off\": game traffic is PLAINTEXT and forgeable; use this for local debugging only"
            );
            server
        }
    };
    if !ws_url.is_empty() {
        println!("sync-server websocket listening on {ws_url}");
    }
    if let Some(s) = &udp_socket {
        println!("sync-server udp listening on {}", s.local_addr()?);
    }
    let health_task = match health_listener {
        Some(l) => {
            println!("sync-server health listening on http://{}", l.local_addr()?);
            let health = Health::new(
                server.control(),
                link.as_ref().map(Link::status),
                config.sync.account_servers().join(", "),
            )
            .with_metrics(prometheus);
            Some(tokio::spawn(async move {
                if let Err(e) = axum::serve(l, health.router()).await {
                    tracing::warn!(error = %e, "the health endpoint stopped");
                }
            }))
        }
        None => None,
    };
    println!("sync-server listening on {addr}");
    std::io::stdout().flush()?;
    server.run_with_transports(listener, ws_listener, udp_socket, shutdown_signal()).await?;
    if let Some(task) = health_task {
        task.abort();
    }
    tracing::info!("sync server stopped");
    Ok(())
}

/// A TCP listener on `addr`, the value of config key `key` (validated at load), with `backlog`; none when it is
/// empty.
fn listen_opt(addr: &str, key: &str, backlog: u32) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let Ok(addr) = addr.parse::<SocketAddr>() else { return Ok(None) };
    let listener = movan_protocol::process::tcp_listener(addr, backlog)
        .and_then(tokio::net::TcpListener::from_std)
        .with_context(|| format!("cannot listen on {addr} ({key})"))?;
    Ok(Some(listener))
}

/// Connects to the account server (`sync.account_rpc_addr`), unless that is empty.
fn start_link(
    config: &Config,
    bound: std::net::SocketAddr,
    (ws_url, udp_addr): (&str, &str),
    control: crate::server::Control,
    reports: tokio::sync::mpsc::Receiver<crate::engine::FinishedGame>,
) -> anyhow::Result<Option<Link>> {
    let s = &config.sync;
    let servers = s.account_servers();
    if servers.is_empty() {
        tracing::warn!("sync.account_rpc_addr is empty: running without an account server (no logins point here)");
        return Ok(None);
    }
    let rpc =
        crate::config::rpc_config(&config.rpc, &s.node_id).map_err(anyhow::Error::msg).context("[rpc] secret_path")?;
    let public_addr = if s.public_addr.is_empty() { bound.to_string() } else { s.public_addr.clone() };
    let node = RegisterNode {
        node_id: s.node_id.clone(),
        public_addr,
        capacity: s.capacity as u64,
        ws_url: ws_url.to_owned(),
        udp_addr: udp_addr.to_owned(),
    };
    let settings = crate::reports::ReportSettings::new(s.replay_backlog_bytes, rpc.max_frame_bytes);
    let link = Link::start(&servers, rpc, node, control, reports, settings).context("sync.account_rpc_addr")?;
    tracing::info!(accounts = ?servers, node = %s.node_id, "linking to the account servers");
    Ok(Some(link))
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
