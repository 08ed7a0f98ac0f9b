//! The sync server's HTTP endpoint for probes, on `sync.metrics_addr` (default `127.0.0.1:2030`; empty = off):
//!
//! - `GET /healthz`: 200 `{"status":"ok","players":..,"rooms":..,"connections":..}` while the process serves
//!   (liveness);
//! - `GET /readyz`: 200 `{"status":"ready","account_link":"registered","account_links":[{"addr","registered"}]}`
//!   once an account server accepted this node (logins can point here), `"account_link":"off"` when `sync.account_rpc_addr` is empty; otherwise 503
//!   `{"status":"not_ready","account_link":"down","reason":..}`;
//! - `GET /metrics`: the Prometheus text format ([`crate::metrics`] lists the names);
//! - anything else: 404 with the list of endpoints.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use crate::link::LinkStatus;
use crate::server::Control;

/// What the endpoints read.
#[derive(Debug, Clone)]
pub struct Health {
    control: Control,
    /// `None` without an account server (`sync.account_rpc_addr` empty).
    link: Option<LinkStatus>,
    /// `sync.account_rpc_addr`, for the reason in a 503.
    account_rpc_addr: String,
    /// Renders `/metrics`; `None` when this process has another recorder.
    prometheus: Option<PrometheusHandle>,
}

impl Health {
    /// Probes for the server behind `control`, ready when `link` is registered (or always, without a link).
    pub fn new(control: Control, link: Option<LinkStatus>, account_rpc_addr: impl Into<String>) -> Self {
        Self { control, link, account_rpc_addr: account_rpc_addr.into(), prometheus: None }
    }

    /// Serves `/metrics` from `prometheus` (see [`crate::metrics::install`]), and keeps its histograms trimmed.
    pub fn with_metrics(mut self, prometheus: Option<PrometheusHandle>) -> Self {
        if let Some(handle) = &prometheus {
            let handle = handle.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    handle.run_upkeep();
                }
            });
        }
        self.prometheus = prometheus;
        self
    }

    /// The router: `/healthz`, `/readyz`, `/metrics`, and a 404 that names them.
    pub fn router(self) -> Router {
        Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .fallback(not_found)
            .with_state(self)
    }
}

async fn metrics(State(health): State<Health>) -> Response {
    let Some(handle) = &health.prometheus else {
        let body = json!({"error": "not_found", "message": "metrics are not recorded in this process"});
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    };
    let up = health.link.as_ref().is_some_and(LinkStatus::is_registered);
    crate::metrics::get().account_link_up.set(if up { 1.0 } else { 0.0 });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
}

async fn healthz(State(health): State<Health>) -> Json<serde_json::Value> {
    let (players, rooms, connections) = health.control.load();
    Json(json!({"status": "ok", "players": players, "rooms": rooms, "connections": connections}))
}

async fn readyz(State(health): State<Health>) -> Response {
    match &health.link {
        None => Json(json!({"status": "ready", "account_link": "off"})).into_response(),
        Some(link) if link.is_registered() => {
            Json(json!({"status": "ready", "account_link": "registered", "account_links": links(link)})).into_response()
        }
        Some(link) => {
            let reason = format!(
                "not registered with the account server at {} (sync.account_rpc_addr): no login is sent here yet",
                health.account_rpc_addr
            );
            let body =
                json!({"status": "not_ready", "account_link": "down", "account_links": links(link), "reason": reason});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// Each account server and whether this node is registered there.
fn links(link: &LinkStatus) -> serde_json::Value {
    link.each().into_iter().map(|(addr, registered)| json!({"addr": addr, "registered": registered})).collect()
}

async fn not_found() -> Response {
    let body = json!({
        "error": "not_found",
        "message": "the sync server's HTTP endpoint serves GET /healthz, GET /readyz and GET /metrics; game clients connect to the \
                    TCP, WebSocket or UDP address that login returns",
    });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}
