//! The HTTP API on the PostgreSQL store (`account.store = "postgres"`), through `AppState::open`: the flows of
//! `api.rs` and `admin.rs` that touch every kind of record. Skipped loudly without PostgreSQL (see
//! `common/postgres.rs`).
#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/postgres.rs"]
mod postgres;

use account_server::StoreKind;
use axum::http::{Method, StatusCode};
use common::*;
use serde_json::json;

#[tokio::test]
async fn accounts_sessions_refresh_and_bans_work_on_postgres() {
    let Some(url) = postgres::fresh_database().await else { return };
    let (app, state, node, _dir) = fresh_with(|c| {
        c.account.store = StoreKind::Postgres;
        c.account.database_url = url;
        c.account.admins = vec!["root".into()];
    })
    .await;
    assert_eq!(register(&app, "root", "correct horse").await.body["uid"], "1000");
    let uid = register(&app, "Alice", "correct horse").await.body["uid"].clone();
    assert_eq!(uid, "1001");
    assert_error(&register(&app, "ALICE", "correct horse").await, StatusCode::CONFLICT, "username_taken");
    assert_eq!(register(&app, "bob", "correct horse").await.body["uid"], "1002", "a refused name used no uid");

    let root = login(&app, "root", "correct horse").await.body;
    let first = login(&app, "alice", "correct horse").await.body;
    let me = with_bearer(&app, Method::GET, "/v1/me", text(&first["token"])).await;
    assert_eq!(
        (me.status, &me.body["username"], &me.body["role"]),
        (StatusCode::OK, &json!("Alice"), &json!("player"))
    );

    let second = post(&app, "/v1/refresh", json!({"refresh_token": first["refresh_token"]})).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body["session_key"], first["session_key"], "the session keeps its key");
    let replay = post(&app, "/v1/refresh", json!({"refresh_token": first["refresh_token"]})).await;
    assert_error(&replay, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    let after = with_bearer(&app, Method::GET, "/v1/me", text(&second.body["token"])).await;
    assert_error(&after, StatusCode::UNAUTHORIZED, "unauthorized");

    let laptop = login(&app, "alice", "correct horse").await.body;
    let path = format!("/v1/admin/users/{}/ban", text(&uid));
    assert_eq!(with_bearer(&app, Method::POST, &path, text(&root["token"])).await.status, StatusCode::OK);
    let me = with_bearer(&app, Method::GET, "/v1/me", text(&laptop["token"])).await;
    assert_error(&me, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_error(&login(&app, "alice", "correct horse").await, StatusCode::FORBIDDEN, "banned");
    let path = format!("/v1/admin/users/{}/unban", text(&uid));
    assert_eq!(with_bearer(&app, Method::POST, &path, text(&root["token"])).await.status, StatusCode::OK);
    let again = login(&app, "alice", "correct horse").await.body;
    let out = with_bearer(&app, Method::POST, "/v1/logout", text(&again["token"])).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    assert!(!node.notices().is_empty());
    assert!(state.store().session(&claims(text(&again["token"])).sid).await.unwrap().unwrap().revoked);
    let health = send(&app, axum::http::Request::get("/readyz").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!((health.status, &health.body["store"]), (StatusCode::OK, &json!("ok")));
}
