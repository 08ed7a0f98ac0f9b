//! Roles and bans through `app()`: `account.admins`, `/v1/me`'s role, and `/v1/admin/users/{uid}/ban|unban`.
#![allow(clippy::unwrap_used)]

mod common;

use account_server::nodes::Notice;
use account_server::{AppState, app};
use axum::http::{Method, StatusCode};
use common::*;
use serde_json::{Value, json};

async fn ban(app: &axum::Router, token: &Value, uid: &Value, action: &str) -> Reply {
    with_bearer(app, Method::POST, &format!("/v1/admin/users/{}/{action}", text(uid)), text(token)).await
}

#[tokio::test]
async fn configured_admins_get_the_role_at_registration_and_others_are_players() {
    let (app, _, _, _dir) = fresh_with(|c| c.account.admins = vec!["Root".into()]).await;
    for (name, role) in [("root", "admin"), ("alice", "player")] {
        register(&app, name, "correct horse").await;
        let token = login(&app, name, "correct horse").await.body["token"].clone();
        let me = with_bearer(&app, Method::GET, "/v1/me", text(&token)).await;
        assert_eq!(me.body["role"], role, "{name}");
    }
}

#[tokio::test]
async fn configured_admins_get_the_role_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    let state = AppState::open(&config).await.unwrap();
    add_node(&state, "sync-1", 1, "127.0.0.1:2025");
    let first = app(state);
    register(&first, "carol", "correct horse").await;
    drop(first);

    config.account.admins = vec!["CAROL".into(), "nobody-yet".into()];
    let state = AppState::open(&config).await.unwrap();
    add_node(&state, "sync-1", 1, "127.0.0.1:2025");
    let second = app(state);
    let token = login(&second, "carol", "correct horse").await.body["token"].clone();
    let me = with_bearer(&second, Method::GET, "/v1/me", text(&token)).await;
    assert_eq!(me.body["role"], "admin");
}

#[tokio::test]
async fn an_admin_bans_and_unbans_a_user() {
    let (app, _, node, _dir) = fresh_with(|c| c.account.admins = vec!["root".into()]).await;
    register(&app, "root", "correct horse").await;
    let root = login(&app, "root", "correct horse").await.body;
    let uid = register(&app, "alice", "correct horse").await.body["uid"].clone();
    let phone = login(&app, "alice", "correct horse").await.body;
    let laptop = login(&app, "alice", "correct horse").await.body;
    let bob = register(&app, "bob", "correct horse").await.body["uid"].clone();

    // Players may not ban, not even themselves or someone else.
    assert_error(&ban(&app, &phone["token"], &bob, "ban").await, StatusCode::FORBIDDEN, "forbidden");
    assert_error(&ban(&app, &phone["token"], &uid, "unban").await, StatusCode::FORBIDDEN, "forbidden");
    let anonymous = post(&app, &format!("/v1/admin/users/{}/ban", text(&bob)), json!({})).await;
    assert_error(&anonymous, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_error(&ban(&app, &root["token"], &json!("999999"), "ban").await, StatusCode::NOT_FOUND, "user_not_found");
    assert_error(&ban(&app, &root["token"], &json!("999999"), "unban").await, StatusCode::NOT_FOUND, "user_not_found");
    assert_error(&ban(&app, &root["token"], &root["uid"], "ban").await, StatusCode::BAD_REQUEST, "bad_request");

    let banned = ban(&app, &root["token"], &uid, "ban").await;
    assert_eq!(banned.status, StatusCode::OK, "{}", banned.body);
    assert_eq!(banned.body["uid"], uid);
    assert_eq!(banned.body["username"], "alice");
    assert_eq!(banned.body["role"], "player");
    assert_eq!(banned.body["banned"], true);
    assert!(banned.body["banned_at"].as_u64().is_some());
    assert!(node.notices().contains(&Notice::UserBanned { uid: text(&uid).to_owned() }));

    // Every session ended; no new one, not even with the refresh tokens issued before.
    for tokens in [&phone, &laptop] {
        let me = with_bearer(&app, Method::GET, "/v1/me", text(&tokens["token"])).await;
        assert_error(&me, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    assert_error(&login(&app, "alice", "correct horse").await, StatusCode::FORBIDDEN, "banned");
    let refresh = post(&app, "/v1/refresh", json!({"refresh_token": laptop["refresh_token"]})).await;
    assert_error(&refresh, StatusCode::FORBIDDEN, "banned");
    // The wrong password still says only that.
    assert_error(&login(&app, "alice", "wrong horse").await, StatusCode::UNAUTHORIZED, "invalid_credentials");
    // Banning again keeps the first ban time.
    assert_eq!(ban(&app, &root["token"], &uid, "ban").await.body["banned_at"], banned.body["banned_at"]);

    let unbanned = ban(&app, &root["token"], &uid, "unban").await;
    assert_eq!(unbanned.status, StatusCode::OK, "{}", unbanned.body);
    assert_eq!((&unbanned.body["banned"], &unbanned.body["banned_at"]), (&json!(false), &Value::Null));
    let again = login(&app, "alice", "correct horse").await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let me = with_bearer(&app, Method::GET, "/v1/me", text(&again.body["token"])).await;
    assert_eq!(me.status, StatusCode::OK);
    // The sessions the ban ended stay ended.
    let refresh = post(&app, "/v1/refresh", json!({"refresh_token": phone["refresh_token"]})).await;
    assert_error(&refresh, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
}

#[tokio::test]
async fn sync_nodes_registering_after_a_ban_hear_of_it_but_not_of_a_lifted_one() {
    let (app, state, _, _dir) = fresh_with(|c| c.account.admins = vec!["root".into()]).await;
    register(&app, "root", "correct horse").await;
    let root = login(&app, "root", "correct horse").await.body;
    let alice = register(&app, "alice", "correct horse").await.body["uid"].clone();
    let bob = register(&app, "bob", "correct horse").await.body["uid"].clone();
    for uid in [&alice, &bob] {
        assert_eq!(ban(&app, &root["token"], uid, "ban").await.status, StatusCode::OK);
    }
    assert_eq!(ban(&app, &root["token"], &bob, "unban").await.status, StatusCode::OK);
    let late = add_node(&state, "sync-2", 2, "127.0.0.1:3025");
    assert_eq!(late.replayed(), [Notice::UserBanned { uid: text(&alice).to_owned() }]);
    assert!(late.notices().is_empty(), "the replay comes in the registration reply");
}
