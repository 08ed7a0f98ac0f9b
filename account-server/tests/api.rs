//! The HTTP API through `app()`, without a socket: each test has its own temporary database and key pair, and fake
//! sync nodes registered straight into the state's registry.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use account_server::nodes::{NodeLoad, Notice};
use account_server::store::{
    MatchCursor, MatchPage, MatchRecord, RefreshGrant, RefreshUse, ReplayInsert, ReplayRetention, ReplayUsage, Role,
    Session, User,
};
use account_server::{AppState, Store, StoreError, app};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::*;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use movan_protocol::TokenClaims;
use movan_protocol::crypto::SessionKey;
use serde_json::{Value, json};
use tower::ServiceExt as _;

#[tokio::test]
async fn register_creates_accounts_with_unique_usernames_ignoring_case() {
    let (app, _dir) = fresh().await;
    let alice = register(&app, "Alice", "correct horse").await;
    assert_eq!(alice.status, StatusCode::CREATED, "{}", alice.body);
    let uid = text(&alice.body["uid"]);
    assert!(!uid.is_empty() && uid.chars().all(|c| c.is_ascii_digit()), "{uid}");

    assert_error(&register(&app, "Alice", "another pass").await, StatusCode::CONFLICT, "username_taken");
    assert_error(&register(&app, "aLICE", "another pass").await, StatusCode::CONFLICT, "username_taken");

    let bob = register(&app, "bob", "correct horse").await;
    assert_eq!(bob.status, StatusCode::CREATED);
    assert_ne!(bob.body["uid"], alice.body["uid"]);
}

#[tokio::test]
async fn invalid_usernames_and_passwords_are_rejected_naming_the_rule() {
    let (app, _dir) = fresh().await;
    for username in ["ab", "has space", "semi;colon", &"x".repeat(33), "ünïcode"] {
        let reply = register(&app, username, "correct horse").await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_username");
    }
    let reply = register(&app, "ab", "correct horse").await;
    assert_eq!(reply.body["message"], "username must be 3 to 32 characters long");
    for password in ["short", &"p".repeat(129)] {
        let reply = register(&app, "alice", password).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_password");
        assert_eq!(reply.body["message"], "password must be 8 to 128 characters long");
    }
}

#[tokio::test]
async fn login_returns_a_jwt_that_verifies_with_the_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let state = AppState::open(&config).await.unwrap();
    add_node(&state, "sync-1", 1, "127.0.0.1:2025");
    let app = app(state);
    let uid = register(&app, "Alice", "correct horse").await.body["uid"].clone();

    let reply = login(&app, "alice", "correct horse").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.cache_control.as_deref(), Some("no-store"));
    assert_eq!(reply.body["uid"], uid);
    assert_eq!(reply.body["expires_in"], 3600);
    assert_eq!(reply.body["sync_addr"], "127.0.0.1:2025");
    assert_eq!(text(&reply.body["refresh_token"]).len(), 43);
    let key = text(&reply.body["session_key"]);
    assert_eq!(key.len(), 44, "{key}");
    SessionKey::from_base64(key).unwrap();
    let mut fields: Vec<&String> = reply.body.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["expires_in", "refresh_token", "session_key", "sync_addr", "token", "uid"]);

    let token = text(&reply.body["token"]);
    assert_eq!(jsonwebtoken::decode_header(token).unwrap().alg, Algorithm::EdDSA);
    let public = std::fs::read(&config.token.public_key_path).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&["movan-account"]);
    validation.set_audience(&["movan-sync"]);
    let claims = jsonwebtoken::decode::<TokenClaims>(token, &DecodingKey::from_ed_pem(&public).unwrap(), &validation)
        .unwrap()
        .claims;
    assert_eq!(claims.sub, text(&uid));
    assert_eq!(claims.name, "Alice");
    assert_eq!(claims.exp, claims.iat + 3600);
    assert!(!claims.sid.is_empty());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(claims.iat.abs_diff(now) < 60, "iat {} vs now {now}", claims.iat);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_identical_answers() {
    let (app, _dir) = fresh().await;
    register(&app, "alice", "correct horse").await;
    let wrong = login(&app, "alice", "wrong horse").await;
    let unknown = login(&app, "nobody", "correct horse").await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!((wrong.status, &wrong.body), (unknown.status, &unknown.body));
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token() {
    let (app, _dir) = fresh().await;
    register(&app, "alice", "correct horse").await;
    let first = login(&app, "alice", "correct horse").await.body;

    let second = post(&app, "/v1/refresh", json!({"refresh_token": first["refresh_token"]})).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.cache_control.as_deref(), Some("no-store"));
    assert_eq!(second.body["uid"], first["uid"]);
    assert_eq!(second.body["expires_in"], 3600);
    assert_eq!(second.body["sync_addr"], "127.0.0.1:2025");
    assert_ne!(second.body["refresh_token"], first["refresh_token"]);
    assert_eq!(second.body["session_key"], first["session_key"], "the session keeps its key");

    let third = post(&app, "/v1/refresh", json!({"refresh_token": second.body["refresh_token"]})).await;
    assert_eq!(third.status, StatusCode::OK);
    assert_eq!(third.body["session_key"], first["session_key"]);
    let other = login(&app, "alice", "correct horse").await.body;
    assert_ne!(other["session_key"], first["session_key"], "each login is a new session with a new key");

    let me = with_bearer(&app, Method::GET, "/v1/me", text(&third.body["token"])).await;
    assert_eq!(me.status, StatusCode::OK);
    let bogus = post(&app, "/v1/refresh", json!({"refresh_token": "bogus"})).await;
    assert_error(&bogus, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_the_whole_session() {
    let (app, _, node, _dir) = fresh_with(|_| {}).await;
    register(&app, "alice", "correct horse").await;
    let stolen = login(&app, "alice", "correct horse").await.body;
    let laptop = login(&app, "alice", "correct horse").await.body;
    // The thief refreshes first and keeps using the session; then the owner's client presents the spent token.
    let thief = post(&app, "/v1/refresh", json!({"refresh_token": stolen["refresh_token"]})).await;
    assert_eq!(thief.status, StatusCode::OK, "{}", thief.body);
    assert!(node.notices().is_empty());

    let replay = post(&app, "/v1/refresh", json!({"refresh_token": stolen["refresh_token"]})).await;
    assert_error(&replay, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    let sid = claims(text(&stolen["token"])).sid;
    assert_eq!(node.notices(), [Notice::SessionRevoked { uid: text(&stolen["uid"]).to_owned(), sid }]);
    // Both holders are out: the thief's new refresh token and access token are dead too.
    let next = post(&app, "/v1/refresh", json!({"refresh_token": thief.body["refresh_token"]})).await;
    assert_error(&next, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    let me = with_bearer(&app, Method::GET, "/v1/me", text(&thief.body["token"])).await;
    assert_error(&me, StatusCode::UNAUTHORIZED, "unauthorized");
    // Another session of the same user is untouched.
    let other = post(&app, "/v1/refresh", json!({"refresh_token": laptop["refresh_token"]})).await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.body);
    assert_eq!(node.notices().len(), 1);
}

#[tokio::test]
async fn me_names_the_token_owner() {
    let (app, _dir) = fresh().await;
    let uid = register(&app, "Alice", "correct horse").await.body["uid"].clone();
    let token = login(&app, "alice", "correct horse").await.body["token"].clone();
    let me = with_bearer(&app, Method::GET, "/v1/me", text(&token)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body, json!({"uid": uid, "username": "Alice", "role": "player"}));

    let anonymous = send(&app, Request::get("/v1/me").body(Body::empty()).unwrap()).await;
    assert_error(&anonymous, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_error(
        &with_bearer(&app, Method::GET, "/v1/me", "not.a.jwt").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let basic = Request::get("/v1/me").header(header::AUTHORIZATION, "Basic YWxpY2U6eA==").body(Body::empty()).unwrap();
    assert_error(&send(&app, basic).await, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn logout_ends_the_session_and_only_that_one() {
    let (app, state, node, _dir) = fresh_with(|_| {}).await;
    register(&app, "alice", "correct horse").await;
    let phone = login(&app, "alice", "correct horse").await.body;
    let laptop = login(&app, "alice", "correct horse").await.body;

    let out = with_bearer(&app, Method::POST, "/v1/logout", text(&phone["token"])).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(out.body, Value::Null);
    let sid = claims(text(&phone["token"])).sid;
    let notice = Notice::SessionRevoked { uid: text(&phone["uid"]).to_owned(), sid };
    assert_eq!(node.notices(), std::slice::from_ref(&notice));
    let restarted = add_node(&state, "sync-1", 9, "127.0.0.1:2025");
    assert_eq!(restarted.replayed(), [notice], "a node registering again learns of the logout");

    let me = with_bearer(&app, Method::GET, "/v1/me", text(&phone["token"])).await;
    assert_error(&me, StatusCode::UNAUTHORIZED, "unauthorized");
    let refresh = post(&app, "/v1/refresh", json!({"refresh_token": phone["refresh_token"]})).await;
    assert_error(&refresh, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    let again = with_bearer(&app, Method::POST, "/v1/logout", text(&phone["token"])).await;
    assert_error(&again, StatusCode::UNAUTHORIZED, "unauthorized");

    assert_eq!(with_bearer(&app, Method::GET, "/v1/me", text(&laptop["token"])).await.status, StatusCode::OK);
    let refresh = post(&app, "/v1/refresh", json!({"refresh_token": laptop["refresh_token"]})).await;
    assert_eq!(refresh.status, StatusCode::OK);
}

#[tokio::test]
async fn tokens_expire_by_the_state_clock() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(1_000_000));
    let clock = Arc::clone(&now);
    let state = AppState::open(&config(dir.path())).await.unwrap().with_clock(move || clock.load(Ordering::SeqCst));
    add_node(&state, "sync-1", 1, "127.0.0.1:2025");
    let app = app(state);
    register(&app, "alice", "correct horse").await;
    let tokens = login(&app, "alice", "correct horse").await.body;

    now.fetch_add(3600, Ordering::SeqCst);
    let me = with_bearer(&app, Method::GET, "/v1/me", text(&tokens["token"])).await;
    assert_error(&me, StatusCode::UNAUTHORIZED, "unauthorized");
    let refreshed = post(&app, "/v1/refresh", json!({"refresh_token": tokens["refresh_token"]})).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);

    now.fetch_add(30 * 24 * 3600, Ordering::SeqCst);
    let expired = post(&app, "/v1/refresh", json!({"refresh_token": refreshed.body["refresh_token"]})).await;
    assert_error(&expired, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let (app, _dir) = fresh().await;
    let raw = |content_type: &str, body: &'static str| {
        Request::post("/v1/register").header(header::CONTENT_TYPE, content_type).body(Body::from(body)).unwrap()
    };
    for request in [
        raw("application/json", "{\"username\": \"alice\","),
        raw("application/json", "{\"username\": \"alice\"}"),
        raw("application/json", "{\"username\": 5, \"password\": \"correct horse\"}"),
        raw("text/plain", "{\"username\": \"alice\", \"password\": \"correct horse\"}"),
        Request::post("/v1/login").body(Body::empty()).unwrap(),
    ] {
        assert_error(&send(&app, request).await, StatusCode::BAD_REQUEST, "bad_request");
    }
    let unknown = send(&app, Request::get("/v2/nothing").body(Body::empty()).unwrap()).await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "not_found");
    let wrong_method = send(&app, Request::get("/v1/login").body(Body::empty()).unwrap()).await;
    assert_error(&wrong_method, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn oversize_bodies_are_rejected() {
    let (app, _dir) = fresh().await;
    let password = "p".repeat(20_000);
    let reply = register(&app, "alice", &password).await;
    assert_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(reply.body["message"], "request body is larger than 16384 bytes");
}

#[tokio::test]
async fn accounts_survive_a_restart_and_the_key_pair_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let state = AppState::open(&config).await.unwrap();
    add_node(&state, "sync-1", 1, "127.0.0.1:2025");
    let first = app(state);
    let uid = register(&first, "alice", "correct horse").await.body["uid"].clone();
    let old_token = login(&first, "alice", "correct horse").await.body["token"].clone();
    let public = std::fs::read_to_string(&config.token.public_key_path).unwrap();
    drop(first);

    let state = AppState::open(&config).await.unwrap();
    add_node(&state, "sync-1", 1, "127.0.0.1:2025");
    let second = app(state);
    assert_eq!(std::fs::read_to_string(&config.token.public_key_path).unwrap(), public);
    let reply = login(&second, "alice", "correct horse").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["uid"], uid);
    let me = with_bearer(&second, Method::GET, "/v1/me", text(&old_token)).await;
    assert_eq!(me.status, StatusCode::OK, "a token from before the restart still verifies");
    assert_ne!(register(&second, "bob", "correct horse").await.body["uid"], uid);
}

/// A store whose every operation fails, to check that failures become opaque 500s.
struct BrokenStore;

fn broken() -> StoreError {
    StoreError::Db(sled::Error::Unsupported("disk on fire".into()))
}

#[async_trait::async_trait]
impl Store for BrokenStore {
    async fn create_user(&self, _: &str, _: &str, _: Role, _: u64) -> Result<User, StoreError> {
        Err(broken())
    }
    async fn set_role_by_name(&self, _: &str, _: Role) -> Result<Option<User>, StoreError> {
        Err(broken())
    }
    async fn set_banned(&self, _: &str, _: Option<u64>) -> Result<Option<User>, StoreError> {
        Err(broken())
    }
    async fn insert_match(&self, _: &MatchRecord) -> Result<bool, StoreError> {
        Err(broken())
    }
    async fn matches_of(&self, _: &str, _: Option<&MatchCursor>, _: usize) -> Result<MatchPage, StoreError> {
        Err(broken())
    }
    async fn user_by_name(&self, _: &str) -> Result<Option<User>, StoreError> {
        Err(broken())
    }
    async fn user(&self, _: &str) -> Result<Option<User>, StoreError> {
        Err(broken())
    }
    async fn create_session(&self, _: &str, _: &Session, _: &[u8; 32], _: &RefreshGrant) -> Result<(), StoreError> {
        Err(broken())
    }
    async fn session(&self, _: &str) -> Result<Option<Session>, StoreError> {
        Err(broken())
    }
    async fn revoke_session(&self, _: &str) -> Result<bool, StoreError> {
        Err(broken())
    }
    async fn spend_refresh_token(&self, _: &[u8; 32]) -> Result<Option<RefreshUse>, StoreError> {
        Err(broken())
    }
    async fn prune_refresh_tokens(&self, _: u64) -> Result<usize, StoreError> {
        Err(broken())
    }
    async fn extend_session(
        &self,
        _: &[u8; 32],
        _: &RefreshGrant,
        _: &SessionKey,
    ) -> Result<Option<SessionKey>, StoreError> {
        Err(broken())
    }
    async fn match_record(&self, _: &str) -> Result<Option<MatchRecord>, StoreError> {
        Err(broken())
    }
    async fn insert_replay(&self, _: &str, _: &[u8], _: &ReplayRetention) -> Result<ReplayInsert, StoreError> {
        Err(broken())
    }
    async fn replay(&self, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Err(broken())
    }
    async fn replay_usage(&self) -> Result<ReplayUsage, StoreError> {
        Err(broken())
    }
    async fn flush(&self) -> Result<(), StoreError> {
        Err(broken())
    }
}

#[tokio::test]
async fn store_failures_are_opaque_internal_errors() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(AppState::new(&config(dir.path()), Arc::new(BrokenStore)).await.unwrap());
    let reply = register(&app, "alice", "correct horse").await;
    assert_error(&reply, StatusCode::INTERNAL_SERVER_ERROR, "internal");
    assert_eq!(reply.body["message"], "internal server error");
    assert!(!reply.body.to_string().contains("fire"));
    assert_error(&login(&app, "alice", "correct horse").await, StatusCode::INTERNAL_SERVER_ERROR, "internal");
}

#[tokio::test]
async fn broken_store_at_start_names_account_admins() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.account.admins = vec!["root".into()];
    let e = AppState::new(&config, Arc::new(BrokenStore)).await.unwrap_err().to_string();
    assert!(e.starts_with("account.admins: "), "{e}");
}

#[tokio::test]
async fn run_serves_until_shutdown_then_returns() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(&config(dir.path())).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(account_server::run(listener, state, async {
        let _ = stopped.await;
    }));

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /v1/me HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(response.contains("\"code\":\"unauthorized\""), "{response}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn login_and_refresh_answer_503_while_no_sync_server_is_live() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(&config(dir.path())).await.unwrap();
    let app = app(state.clone());
    register(&app, "alice", "correct horse").await;
    let refused = login(&app, "alice", "correct horse").await;
    assert_error(&refused, StatusCode::SERVICE_UNAVAILABLE, "no_sync_server");

    add_node(&state, "sync-1", 7, "10.0.0.1:2025");
    let tokens = login(&app, "alice", "correct horse").await.body;
    assert_eq!(tokens["sync_addr"], "10.0.0.1:2025");

    account_server::rpc::disconnected(&state, "sync-1", 7);
    assert!(state.nodes().nodes().is_empty());
    let request = Request::post("/v1/refresh")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"refresh_token": tokens["refresh_token"]}).to_string()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "5");
    assert_error(&login(&app, "alice", "correct horse").await, StatusCode::SERVICE_UNAVAILABLE, "no_sync_server");

    add_node(&state, "sync-2", 8, "10.0.0.2:2025");
    let refreshed = post(&app, "/v1/refresh", json!({"refresh_token": tokens["refresh_token"]})).await;
    assert_eq!(refreshed.status, StatusCode::OK, "a refused refresh leaves the token usable: {}", refreshed.body);
    assert_eq!(refreshed.body["sync_addr"], "10.0.0.2:2025");
}

#[tokio::test]
async fn login_hands_out_the_least_loaded_node() {
    let (app, state, _, _dir) = fresh_with(|_| {}).await;
    add_node(&state, "sync-2", 2, "10.0.0.2:2025");
    assert!(state.nodes().update_load("sync-1", 1, NodeLoad { players: 50, rooms: 10 }));
    assert!(state.nodes().update_load("sync-2", 2, NodeLoad { players: 10, rooms: 2 }));
    register(&app, "alice", "correct horse").await;
    assert_eq!(login(&app, "alice", "correct horse").await.body["sync_addr"], "10.0.0.2:2025");
    assert!(state.nodes().update_load("sync-2", 2, NodeLoad { players: 100, rooms: 20 }));
    assert_eq!(login(&app, "alice", "correct horse").await.body["sync_addr"], "127.0.0.1:2025");
    assert!(state.nodes().update_load("sync-1", 1, NodeLoad { players: 100, rooms: 20 }));
    assert_error(&login(&app, "alice", "correct horse").await, StatusCode::SERVICE_UNAVAILABLE, "no_sync_server");
}
