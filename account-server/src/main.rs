//! `account-server [--config PATH]` serves the account API; `account-server keygen` only creates the token key pair.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use account_server::tokens::ensure_key_pair;
use account_server::{AppState, Config};
use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

/// Movan account server: registration, login and JWT issuing over HTTP/JSON.
#[derive(Debug, Parser)]
#[command(name = "account-server", version)]
struct Cli {
    /// Configuration file (sections [account] and [token]).
    #[arg(long, global = true, env = "MOVAN_CONFIG", default_value = "config/config.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the token key pair if missing, print the private and public key paths (one per line) and exit.
    Keygen,
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
        None => serve(&cli.config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("account-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn keygen(config: &std::path::Path) -> anyhow::Result<()> {
    let token = Config::load(config)?.token;
    let status = ensure_key_pair(&token.private_key_path, &token.public_key_path)?;
    info!(?status, "token key pair ready");
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", token.private_key_path.display())?;
    writeln!(out, "{}", token.public_key_path.display())?;
    out.flush()?;
    Ok(())
}

#[tokio::main]
async fn serve(config: &std::path::Path) -> anyhow::Result<()> {
    let config = Config::load(config)?;
    let state = AppState::open(&config)?;
    let addr = config.account.http_addr;
    let listener = TcpListener::bind(addr).await.with_context(|| format!("account.http_addr: cannot bind {addr}"))?;
    let bound = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "account-server listening on http://{bound}")?;
        out.flush()?;
    }
    info!(addr = %bound, db = %config.account.db_path.display(), "serving");
    account_server::run(listener, state, shutdown_signal()).await?;
    info!("stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => info!("SIGINT received, shutting down"),
        () = terminate => info!("SIGTERM received, shutting down"),
    }
}
