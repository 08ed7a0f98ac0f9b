//! Session keys through `app()` and the `session_key` RPC function, without sockets: what login and refresh hand
//! the client is what the sync servers get, for exactly as long as the session lives.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use account_server::rpc::{SessionKeyError, SessionKeyRequest, session_key};
use account_server::store::{RefreshGrant, Session};
use account_server::tokens::refresh_token_digest;
use account_server::{AppState, app};
use axum::http::{Method, StatusCode};
use common::*;
use movan_protocol::crypto::SessionKey;
use serde_json::json;

async fn ask(state: &AppState, uid: &str, sid: &str) -> Result<(String, u64), SessionKeyError> {
    let grant = session_key(state, &SessionKeyRequest { sid: sid.into(), uid: uid.into() }).await?;
    Ok((grant.session_key, grant.expires_at))
}

fn assert_unknown(result: Result<(String, u64), SessionKeyError>) {
    let e = result.unwrap_err();
    assert!(matches!(e, SessionKeyError::Unknown), "{e}");
    assert_eq!(e.code(), "unknown_session", "{e}");
}

#[tokio::test]
async fn the_sync_server_gets_the_key_the_client_got_until_logout() {
    // A frozen clock: the expiry below is exact, however long the argon2 logins take.
    let frozen = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(&config(dir.path())).await.unwrap().with_clock(move || frozen);
    add_node(&state, "sync-1", 1, "127.0.0.1:2025");
    let app = app(state.clone());
    register(&app, "alice", "correct horse").await;
    register(&app, "bob", "correct horse").await;
    let tokens = login(&app, "alice", "correct horse").await.body;
    let (uid, sid) = (text(&tokens["uid"]), claims(text(&tokens["token"])).sid);

    let (key, expires_at) = ask(&state, uid, &sid).await.unwrap();
    assert_eq!(key, text(&tokens["session_key"]));
    assert_eq!(expires_at, state.now() + 30 * 24 * 3600, "the session lives as long as its refresh token");
    SessionKey::from_base64(&key).unwrap();

    let bob = login(&app, "bob", "correct horse").await.body;
    assert_unknown(ask(&state, text(&bob["uid"]), &sid).await);
    assert_unknown(ask(&state, uid, &claims(text(&bob["token"])).sid).await);
    assert_unknown(ask(&state, uid, "no-such-session").await);

    let refreshed = post(&app, "/v1/refresh", json!({"refresh_token": tokens["refresh_token"]})).await.body;
    assert_eq!(ask(&state, uid, &sid).await.unwrap().0, text(&refreshed["session_key"]));

    let out = with_bearer(&app, Method::POST, "/v1/logout", text(&tokens["token"])).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_unknown(ask(&state, uid, &sid).await);
    assert_eq!(
        ask(&state, text(&bob["uid"]), &claims(text(&bob["token"])).sid).await.unwrap().0,
        text(&bob["session_key"])
    );
}

#[tokio::test]
async fn ended_and_banned_sessions_have_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000_000));
    let clock = Arc::clone(&now);
    let mut config = config(dir.path());
    config.account.admins = vec!["root".into()];
    let state = AppState::open(&config).await.unwrap().with_clock(move || clock.load(Ordering::SeqCst));
    add_node(&state, "sync-1", 1, "127.0.0.1:2025");
    let app = app(state.clone());
    register(&app, "root", "correct horse").await;
    let alice = text(&register(&app, "alice", "correct horse").await.body["uid"]).to_owned();

    let tokens = login(&app, "alice", "correct horse").await.body;
    let sid = claims(text(&tokens["token"])).sid;
    let (_, expires_at) = ask(&state, &alice, &sid).await.unwrap();
    now.store(expires_at - 1, Ordering::SeqCst);
    ask(&state, &alice, &sid).await.unwrap();
    now.store(expires_at, Ordering::SeqCst);
    assert_unknown(ask(&state, &alice, &sid).await);

    now.store(1_000_000, Ordering::SeqCst);
    let root = login(&app, "root", "correct horse").await.body;
    let ban = with_bearer(&app, Method::POST, &format!("/v1/admin/users/{alice}/ban"), text(&root["token"])).await;
    assert_eq!(ban.status, StatusCode::OK, "{}", ban.body);
    assert_unknown(ask(&state, &alice, &sid).await);
}

#[tokio::test]
async fn a_session_from_before_encrypted_sessions_gets_a_key_at_its_next_refresh() {
    let (app, state, _, _dir) = fresh_with(|_| {}).await;
    let uid = text(&register(&app, "alice", "correct horse").await.body["uid"]).to_owned();
    let now = state.now();
    let old = Session { uid: uid.clone(), created_at: now, expires_at: now + 100, revoked: false, key: None };
    let grant = RefreshGrant { sid: "old-session".into(), uid: uid.clone(), expires_at: now + 100 };
    state.store().create_session("old-session", &old, &refresh_token_digest("old-refresh"), &grant).await.unwrap();
    assert_unknown(ask(&state, &uid, "old-session").await);

    let refreshed = post(&app, "/v1/refresh", json!({"refresh_token": "old-refresh"})).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let key = text(&refreshed.body["session_key"]);
    SessionKey::from_base64(key).unwrap();
    assert_eq!(ask(&state, &uid, "old-session").await.unwrap().0, key);
    let again = post(&app, "/v1/refresh", json!({"refresh_token": refreshed.body["refresh_token"]})).await;
    assert_eq!(text(&again.body["session_key"]), key, "the key given at the first refresh stays");
}
