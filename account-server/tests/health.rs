//! `/healthz`, `/readyz` and `GET /`.
#![allow(clippy::unwrap_used)]

mod common;

use account_server::{AppState, app};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use tower::ServiceExt as _;

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn healthz_is_live_and_readyz_waits_for_a_sync_server() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(&config(dir.path())).await.unwrap();
    let app = app(state.clone());
    let live = send(&app, get("/healthz")).await;
    assert_eq!((live.status, live.body["status"].as_str()), (StatusCode::OK, Some("ok")));

    let waiting = send(&app, get("/readyz")).await;
    assert_eq!(waiting.status, StatusCode::SERVICE_UNAVAILABLE, "{}", waiting.body);
    assert_eq!(waiting.body["status"], "not_ready");
    assert_eq!(waiting.body["store"], "ok");
    assert_eq!(waiting.body["sync_nodes"], 0);
    assert!(waiting.body["reason"].as_str().unwrap().contains("no sync server is registered"), "{}", waiting.body);

    add_node(&state, "sync-1", 7, "127.0.0.1:2025");
    let ready = send(&app, get("/readyz")).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body, serde_json::json!({"status": "ready", "store": "ok", "sync_nodes": 1}));

    assert!(state.nodes().remove("sync-1", 7));
    assert_eq!(send(&app, get("/readyz")).await.status, StatusCode::SERVICE_UNAVAILABLE, "the node left");
}

#[tokio::test]
async fn root_is_a_hint_without_the_demo() {
    let (app, _dir) = fresh().await;
    let root = send(&app, get("/")).await;
    assert_error(&root, StatusCode::NOT_FOUND, "not_found");
    let hint = root.body["message"].as_str().unwrap();
    assert!(hint.contains("/v1/login") && hint.contains("/healthz") && hint.contains("/demo/"), "{hint}");
}

#[tokio::test]
async fn root_redirects_to_the_demo_when_it_is_served() {
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), "<!doctype html>").unwrap();
    let (app, _, _, _dir) = fresh_with(|c| c.account.demo_dir = site.path().to_owned()).await;
    let r = app.oneshot(get("/")).await.unwrap();
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(r.headers()[header::LOCATION], "/demo/");
}
