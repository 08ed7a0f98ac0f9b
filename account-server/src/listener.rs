//! The HTTP listener: accepts connections up to `account.max_connections`, runs the TLS handshake within
//! [`TLS_HANDSHAKE_TIMEOUT`], and serves HTTP/1.1 with hyper, whose header timer (`account.header_timeout_secs`)
//! bounds both a slow request head and a keep-alive connection idle between requests. The body timeout is a layer of
//! [`crate::app`]. Shutdown stops accepting, lets open requests finish within [`crate::DRAIN_TIMEOUT`], then closes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;
use tracing::{debug, warn};

/// Time a client has to finish the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The answer to a connection over `account.max_connections` (plain HTTP only: a TLS client could not read it).
fn too_many_connections() -> Vec<u8> {
    let body = r#"{"code":"too_many_connections","message":"the server holds its maximum of open connections (account.max_connections); try again shortly"}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// How the listener treats connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections open at once, at most; more are answered 503 `too_many_connections` (HTTPS: closed).
    pub max_connections: usize,
    /// Time for a complete request head, counted from the connection or from the end of the previous response.
    pub header_timeout: Duration,
}

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown` completes, then waits for open requests for at
/// most `drain`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: ConnectionLimits,
    drain: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let refusal = too_many_connections();
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!(error = %e, "cannot accept an HTTP connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            debug!(%peer, max = limits.max_connections, "refused a connection over account.max_connections");
            if tls.is_none() {
                // Best effort and never waiting: the reply fits any socket buffer.
                let _ = stream.try_write(&refusal);
            }
            continue;
        };
        let connection = Connection { stream, peer, tls: tls.clone(), app: app.clone(), http: http.clone(), permit };
        tokio::spawn(connection.run(graceful.watcher()));
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(drain) => {
            warn!(timeout_secs = drain.as_secs(), "requests still open at shutdown; closing");
        }
    }
}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: Router,
    http: http1::Builder,
    permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn run(self, watcher: hyper_util::server::graceful::Watcher) {
        let Self { stream, peer, tls, app, http, permit } = self;
        let _ = stream.set_nodelay(true);
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let served = match tls {
            None => watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await,
            Some(acceptor) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await,
                Ok(Err(e)) => {
                    debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    debug!(%peer, "TLS handshake timed out");
                    return;
                }
            },
        };
        if let Err(e) = served {
            debug!(%peer, error = %e, "HTTP connection ended");
        }
        drop(permit);
    }
}
