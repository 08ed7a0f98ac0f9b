//! What operators and newcomers probe: `GET /healthz` (the process serves HTTP), `GET /readyz` (the store answers
//! and at least one sync server is registered, so a login can succeed) and `GET /` (the demo, or a hint).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::json;

use crate::state::AppState;

/// Where `GET /` points a browser when it gets no demo.
const ROOT_HINT: &str = "this is the Movan account server's HTTP API (docs/protocol.md §3): POST /v1/register, \
                         POST /v1/login, GET /v1/me; health: GET /healthz, GET /readyz; the browser demo is at /demo/ \
                         when account.demo_dir is set";

/// `/healthz`, `/readyz` and `/`; `/` redirects to `/demo/` when `demo_served`.
pub(crate) fn router(demo_served: bool) -> Router<AppState> {
    let root = if demo_served {
        get(|| async { Redirect::temporary("/demo/") })
    } else {
        get(|| async { (StatusCode::NOT_FOUND, Json(json!({ "code": "not_found", "message": ROOT_HINT }))) })
    };
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/", root)
}

/// `GET /healthz`: 200 `{"status": "ok"}` whenever the server answers HTTP at all (liveness).
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 `{"status": "ready", "store": "ok", "sync_nodes": n}` when a read from the store succeeds and
/// `n >= 1` sync servers are registered; otherwise 503 with `"status": "not_ready"` and a `reason`.
async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.store.user("0").await;
    let nodes = state.nodes.nodes().len();
    let reason = match (&store, nodes) {
        (Err(e), _) => Some(format!("the store cannot be read: {e}")),
        (Ok(_), 0) => Some(
            "no sync server is registered (start sync-server with sync.account_rpc_addr pointing at \
                            account.rpc_addr)"
                .to_owned(),
        ),
        (Ok(_), _) => None,
    };
    let store = if store.is_ok() { "ok" } else { "error" };
    match reason {
        None => {
            (StatusCode::OK, Json(json!({ "status": "ready", "store": store, "sync_nodes": nodes }))).into_response()
        }
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "store": store, "sync_nodes": nodes, "reason": reason })),
        )
            .into_response(),
    }
}
