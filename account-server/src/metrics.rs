//! Prometheus metrics of the account server, served at `GET /metrics` on its HTTP port (README: "Metrics").
//!
//! | name | type | labels |
//! |---|---|---|
//! | `movan_account_http_requests_total` | counter | `route` (the matched path, e.g. `/v1/login`, or `other`), `status` |
//! | `movan_account_login_duration_seconds` | histogram | time to answer `POST /v1/login`, whatever the answer |
//! | `movan_account_argon2_queue_depth` | gauge | password hashes waiting for a free hasher |
//! | `movan_account_rate_limited_total` | counter | `limit`: the config key of the limit that answered 429 |
//! | `movan_account_sync_nodes` | gauge | live sync nodes |
//! | `movan_account_sync_node_players` / `movan_account_sync_node_rooms` / `movan_account_sync_node_capacity` | gauge | `node`: each live node's last reported load and its capacity |
//! | `movan_account_replays` / `movan_account_replay_bytes` | gauge | replays kept and their bytes |
//! | `movan_account_replay_upload_bytes` | gauge | bytes of unfinished replay uploads |
//!
//! Without [`install`] (tests, embedders) the handles go nowhere and `/metrics` answers 404.

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

use crate::error::ApiError;
use crate::state::AppState;

/// Bucket bounds of `movan_account_login_duration_seconds`: argon2id at the default cost takes tens of
/// milliseconds; a queue behind a burst of logins, seconds.
const LOGIN_BUCKETS: [f64; 12] = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0];

/// Makes the Prometheus recorder the process's recorder; `None` when another is installed already.
pub fn install() -> Option<PrometheusHandle> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full("movan_account_login_duration_seconds".into()), &LOGIN_BUCKETS)
        .ok()?
        // Per-node gauges are set at every scrape for the live nodes; a node gone a minute disappears.
        .idle_timeout(MetricKindMask::GAUGE, Some(Duration::from_secs(60)));
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).ok()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Some(handle)
}

/// The route a request matched, kept for [`record`] (route-level layer: routing has happened).
#[derive(Debug, Clone)]
pub(crate) struct Route(String);

/// Remembers the matched route in the response, for [`record`].
pub(crate) async fn remember_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(Route(route));
    }
    response
}

/// Counts a finished request by route and status, and times logins.
pub(crate) fn record(response: &Response, elapsed: Duration) {
    let route = response.extensions().get::<Route>().map_or("other", |r| r.0.as_str()).to_owned();
    let status = response.status().as_u16().to_string();
    if route == "/v1/login" {
        metrics::histogram!("movan_account_login_duration_seconds").record(elapsed.as_secs_f64());
    }
    metrics::counter!("movan_account_http_requests_total", "route" => route, "status" => status).increment(1);
}

/// A 429 by the limit with config key `key`.
pub(crate) fn rate_limited(key: &'static str) {
    metrics::counter!("movan_account_rate_limited_total", "limit" => key).increment(1);
}

/// `GET /metrics`.
pub(crate) async fn serve(State(state): State<AppState>) -> Result<Response, ApiError> {
    let Some(handle) = state.prometheus.as_ref() else { return Err(ApiError::NotFound) };
    metrics::gauge!("movan_account_argon2_queue_depth").set(state.passwords.queued() as f64);
    let nodes = state.nodes.nodes();
    metrics::gauge!("movan_account_sync_nodes").set(nodes.len() as f64);
    for node in nodes {
        let id = node.info.node_id.clone();
        metrics::gauge!("movan_account_sync_node_players", "node" => id.clone()).set(node.load.players as f64);
        metrics::gauge!("movan_account_sync_node_rooms", "node" => id.clone()).set(node.load.rooms as f64);
        metrics::gauge!("movan_account_sync_node_capacity", "node" => id).set(node.info.capacity as f64);
    }
    if let Ok(usage) = state.store.replay_usage().await {
        metrics::gauge!("movan_account_replays").set(usage.count as f64);
        metrics::gauge!("movan_account_replay_bytes").set(usage.bytes as f64);
    }
    metrics::gauge!("movan_account_replay_upload_bytes").set(state.uploads.held() as f64);
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response())
}
