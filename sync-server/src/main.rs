//! `sync-server`: runs Movan rooms for game clients. See the README for the protocol and configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use sync_server::Server;
use sync_server::auth::TokenVerifier;
use sync_server::config::Config;

/// Movan sync server: lockstep rooms over TCP.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Configuration file (the `[sync]` and `[token]` sections are read).
    #[arg(long, env = "MOVAN_CONFIG", default_value = "config/config.toml")]
    config: PathBuf,
    /// Listen address, overriding `sync.listen_addr` (port 0 picks a free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut config = Config::load(&args.config)?;
    if let Some(addr) = args.listen {
        config.sync.listen_addr = addr;
    }
    let verifier = TokenVerifier::from_pem_file(
        &config.token.public_key_path,
        &config.token.issuer,
        &config.token.audience,
    )?;
    let listener = tokio::net::TcpListener::bind(config.sync.listen_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (sync.listen_addr)",
                config.sync.listen_addr
            )
        })?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, config = %args.config.display(), tick_ms = config.sync.tick_interval_ms, "sync server started");
    println!("sync-server listening on {addr}");
    use std::io::Write;
    std::io::stdout().flush()?;
    Server::new(config, verifier)
        .run(listener, shutdown_signal())
        .await?;
    tracing::info!("sync server stopped");
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
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
