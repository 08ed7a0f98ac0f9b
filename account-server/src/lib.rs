//! The Movan account server: registration, login and access-token issuing over HTTP/JSON, and the RPC service the
//! sync servers register with.
//!
//! - [`config`]: the `[account]`, `[token]` and `[rpc]` sections of `config/config.toml`.
//! - [`store`]: users, sessions, refresh tokens and match history ([`Store`], async, implemented on sled by
//!   [`SledStore`]).
//! - [`password`]: argon2id hashing on the blocking pool, bounded in concurrency.
//! - [`tokens`]: the Ed25519 key pair and the EdDSA JWTs ([`movan_protocol::TokenClaims`]) the sync server checks.
//! - [`secret`]: the secret shared with the sync servers.
//! - [`nodes`]: the live sync servers, where login sends players, and the notices pushed to them.
//! - [`rpc`]: what the sync servers call over RPC.
//! - [`limits`]: login and registration attempt limits, per client address and per username.
//! - [`tls`]: HTTPS for the HTTP listener.
//! - [`error`]: the JSON error body `{"code", "message"}`.
//!
//! [`app`] builds the router (tests call it without a socket); [`run`] serves it on a bound listener until a
//! shutdown signal, then flushes the database; [`serve`] does the same, over HTTPS if given a [`TlsConfig`], with
//! the RPC service for the sync servers on a second listener.

mod body;
pub mod config;
pub mod credentials;
pub mod error;
mod extract;
mod health;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod nodes;
pub mod password;
pub mod replays;
mod routes;
pub mod rpc;
pub mod secret;
pub mod state;
pub mod store;
pub mod tls;
pub mod tokens;
pub mod web;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

pub use config::{AccountConfig, Config, RpcSection, StoreKind, TokenSection};
pub use error::ApiError;
pub use state::{AppState, Clock, StartError};
pub use store::{OpenError, PgStore, RefreshUse, Role, SledStore, Store, StoreError};
pub use tls::{TlsConfig, TlsError};

/// How long [`run`] waits for open requests after the shutdown signal before closing anyway: short enough that the
/// drain and the final flush fit in the 10 s a container runtime gives between SIGTERM and SIGKILL.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP API: the `/v1` routes, JSON 404/405 fallbacks and the `account.max_body_bytes` body limit.
pub fn app(state: AppState) -> Router {
    let limit = state.max_body_bytes;
    let web = Arc::clone(&state.web);
    let api = routes::router()
        .merge(health::router(web.demo_dir.is_some()))
        .route("/metrics", axum::routing::get(metrics::serve))
        .route_layer(middleware::from_fn(metrics::remember_route))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state((state.body_timeout, limit), body::read_within));
    web::with_static_files(api, &web).layer(web.cors()).layer(middleware::from_fn(log_request)).with_state(state)
}

/// Serving failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Accepting or serving connections failed.
    #[error("serving HTTP: {0}")]
    Serve(#[source] std::io::Error),
    /// The final database flush failed.
    #[error("flushing the database: {0}")]
    Flush(#[source] StoreError),
    /// The RPC settings are unusable (config validation normally catches this first).
    #[error("rpc: {0}")]
    RpcConfig(#[source] movan_rpc::ConfigError),
    /// The RPC server failed.
    #[error("serving RPC: {0}")]
    Rpc(#[source] std::io::Error),
}

/// Serves [`app`] on `listener` until `shutdown` completes, lets open requests finish (at most
/// [`DRAIN_TIMEOUT`]), then flushes the store.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let store = Arc::clone(state.store());
    serve_http(listener, None, state, shutdown).await?;
    store.flush().await.map_err(RunError::Flush)
}

/// Serves [`app`] on `http` (HTTPS with `tls`, plain HTTP without) and the RPC service ([`rpc::handlers`], with
/// `rpc_config`) on `rpc` until `shutdown` completes or either fails, stops both (open HTTP requests get at most
/// [`DRAIN_TIMEOUT`]; RPC connections are closed, so their nodes stop taking players), then flushes the store.
pub async fn serve(
    http: TcpListener,
    tls: Option<TlsConfig>,
    rpc: TcpListener,
    state: AppState,
    rpc_config: movan_rpc::RpcConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let server = movan_rpc::RpcServer::new(rpc_config, rpc::handlers(state.clone())).map_err(RunError::RpcConfig)?;
    let store = Arc::clone(state.store());
    let stop = CancellationToken::new();
    let http_done = {
        let stop = stop.clone();
        async move {
            let served = serve_http(http, tls, state, stop.clone().cancelled_owned()).await;
            stop.cancel();
            served
        }
    };
    let rpc_done = async {
        let served = server.run(rpc, stop.clone().cancelled_owned()).await.map_err(RunError::Rpc);
        stop.cancel();
        served
    };
    let signal = async {
        tokio::select! {
            () = shutdown => stop.cancel(),
            () = stop.cancelled() => {}
        }
    };
    let (http_result, rpc_result, ()) = tokio::join!(http_done, rpc_done, signal);
    http_result?;
    rpc_result?;
    store.flush().await.map_err(RunError::Flush)
}

/// Serves [`app`] on `listener`, over HTTPS with `tls`, until `shutdown` completes and open requests finish (at most
/// [`DRAIN_TIMEOUT`]).
async fn serve_http(
    listener: TcpListener,
    tls: Option<TlsConfig>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let passwords = state.passwords().clone();
    tokio::spawn(async move {
        if let Err(e) = passwords.warm_up().await {
            warn!(error = %e, "cannot precompute the dummy password hash");
        }
    });
    let pruner = tokio::spawn(prune_refresh_tokens(state.clone()));
    let limits = state.connection_limits;
    let acceptor = tls.map(|tls| tls.acceptor);
    listener::serve(listener, acceptor, app(state), limits, DRAIN_TIMEOUT, shutdown).await;
    pruner.abort();
    Ok(())
}

/// How often expired refresh tokens are removed from the store.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Removes expired refresh tokens (spent ones are kept until then, to detect their reuse) now and every
/// [`PRUNE_INTERVAL`].
async fn prune_refresh_tokens(state: AppState) {
    let mut every = tokio::time::interval(PRUNE_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match state.store().prune_refresh_tokens(state.now()).await {
            Ok(0) => {}
            Ok(removed) => debug!(removed, "removed expired refresh tokens"),
            Err(e) => warn!(error = %e, "cannot remove expired refresh tokens"),
        }
    }
}

/// Logs each request's method, path, status and duration at debug level (bodies and headers are never logged).
async fn log_request(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let started = Instant::now();
    let response = next.run(req).await;
    metrics::record(&response, started.elapsed());
    let status = response.status().as_u16();
    debug!(%method, %path, status, elapsed_ms = started.elapsed().as_millis() as u64, "request");
    response
}
