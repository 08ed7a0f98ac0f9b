//! Login and registration attempt limits through `app()` with a mock client address, and on the real listeners
//! (plain and HTTPS), which must hand the handlers the client's address.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use account_server::secret::ensure_rpc_secret;
use account_server::{AppState, TlsConfig, app};
use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use common::*;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower::ServiceExt as _;

/// `state`'s router as seen from `ip`.
fn from(state: &AppState, ip: [u8; 4]) -> Router {
    app(state.clone()).layer(MockConnectInfo(SocketAddr::from((ip, 40_000))))
}

/// Like [`login`], also returning the `Retry-After` header.
async fn login_with_retry_after(app: &Router, username: &str, password: &str) -> (Reply, Option<u64>) {
    let request = Request::post("/v1/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"username": username, "password": password}).to_string()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let retry_after = response.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().parse().unwrap());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    (Reply { status, cache_control: None, body }, retry_after)
}

#[tokio::test]
async fn failed_logins_per_username_get_429_and_right_passwords_do_not_count() {
    let (_, state, _, _dir) = fresh_with(|c| {
        c.account.login_failures_per_username = 2;
        c.account.login_failures_per_username_global = 3;
        c.account.login_username_window_secs = 600;
    })
    .await;
    let app = from(&state, [192, 0, 2, 1]);
    assert_eq!(register(&app, "alice", "correct horse").await.status, StatusCode::CREATED);
    for _ in 0..4 {
        assert_eq!(login(&app, "alice", "correct horse").await.status, StatusCode::OK, "successes are not counted");
    }
    for _ in 0..2 {
        assert_error(&login(&app, "alice", "wrong horse").await, StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let (refused, retry_after) = login_with_retry_after(&app, "ALICE", "wrong horse").await;
    assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    // The bucket refills on the wall clock while the argon2 logins above run (seconds on a loaded machine); the
    // exact refill arithmetic is unit-tested with a fake clock in src/limits.rs.
    assert!(matches!(retry_after, Some(290..=300)), "one failure is forgiven per 600 s / 2: {retry_after:?}");
    let message = refused.body["message"].as_str().unwrap();
    assert!(message.contains("failed logins for this username from your network"), "{message}");
    assert!(message.contains("at most 2 per 600 s (account.login_failures_per_username,"), "{message}");
    // The same /24 is refused even with the right password; the owner on another network is not (issue 14 point 7).
    let neighbour = from(&state, [192, 0, 2, 200]);
    assert_error(
        &login(&neighbour, "alice", "correct horse").await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    );
    let elsewhere = from(&state, [198, 51, 100, 7]);
    assert_eq!(login(&elsewhere, "Alice", "correct horse").await.status, StatusCode::OK);
    // Until the failures from all networks together reach the global limit: then every network is refused.
    assert_error(&login(&elsewhere, "alice", "wrong horse").await, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let third = from(&state, [203, 0, 113, 9]);
    let refused = login(&third, "alice", "correct horse").await;
    assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    let message = refused.body["message"].as_str().unwrap();
    assert!(message.contains("account.login_failures_per_username_global"), "{message}");
    // Unknown usernames are limited just the same (per network first), so the 429 tells nothing about which exist.
    for _ in 0..2 {
        assert_error(&login(&app, "nobody", "wrong horse").await, StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    assert_error(&login(&app, "nobody", "wrong horse").await, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
}

#[tokio::test]
async fn registrations_per_address_get_429_and_other_addresses_are_not_affected() {
    let (_, state, _, _dir) = fresh_with(|c| {
        c.account.register_per_ip = 2;
        c.account.register_ip_window_secs = 3600;
    })
    .await;
    let bot = from(&state, [192, 0, 2, 66]);
    assert_eq!(register(&bot, "bot1", "bot password").await.status, StatusCode::CREATED);
    // Refused attempts count too: otherwise a 409 would be a free test of whether a name exists.
    assert_error(&register(&bot, "bot1", "bot password").await, StatusCode::CONFLICT, "username_taken");
    let refused = register(&bot, "bot2", "bot password").await;
    assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    assert!(refused.body["message"].as_str().unwrap().contains("account.register_per_ip"), "{}", refused.body);
    assert!(state.store().user_by_name("bot2").await.unwrap().is_none());
    // Logins from the same address are counted separately.
    assert_eq!(login(&bot, "bot1", "bot password").await.status, StatusCode::OK);
    let player = from(&state, [203, 0, 113, 5]);
    assert_eq!(register(&player, "player", "player password").await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn every_login_counts_for_the_address_and_loopback_is_exempt_by_default() {
    let (_, state, _, _dir) = fresh_with(|c| c.account.login_attempts_per_ip = 3).await;
    let app = from(&state, [192, 0, 2, 1]);
    assert_eq!(register(&app, "alice", "correct horse").await.status, StatusCode::CREATED);
    for name in ["alice", "bob", "carol"] {
        let reply = login(&app, name, "correct horse").await;
        assert!(matches!(reply.status, StatusCode::OK | StatusCode::UNAUTHORIZED), "{}", reply.body);
    }
    let (refused, retry_after) = login_with_retry_after(&app, "alice", "correct horse").await;
    assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    assert!(refused.body["message"].as_str().unwrap().contains("account.login_attempts_per_ip"), "{}", refused.body);
    // As above: the wall clock runs during the logins; src/limits.rs tests the exact figure with a fake clock.
    assert!(matches!(retry_after, Some(10..=20)), "one attempt back per 60 s / 3: {retry_after:?}");
    let local = from(&state, [127, 0, 0, 1]);
    for _ in 0..5 {
        assert_eq!(login(&local, "alice", "correct horse").await.status, StatusCode::OK);
    }
}

/// `run` (plain HTTP) and `serve` (HTTPS) both pass the client's address to the handlers.
#[tokio::test]
async fn the_real_listeners_limit_by_client_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.account.register_per_ip = 1;
    config.account.limit_exempt_ips = Vec::new();

    let state = AppState::open(&config).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(account_server::run(listener, state, async {
        let _ = stopped.await;
    }));
    let statuses = register_twice(&reqwest::Client::new(), &url).await;
    assert_eq!(statuses, [201, 429]);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap().unwrap();
    drop(dir);

    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.account.register_per_ip = 1;
    config.account.limit_exempt_ips = Vec::new();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let tls = TlsConfig::load(&cert_path, &key_path).unwrap();
    let (secret, _) = ensure_rpc_secret(&config.rpc.secret_path).unwrap();
    let state = AppState::open(&config).await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", http.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let rpc_config = account_server::rpc::server_config(&config.rpc, &secret);
    let server = tokio::spawn(account_server::serve(http, Some(tls), rpc, state, rpc_config, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    assert_eq!(register_twice(&client, &url).await, [201, 429]);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap().unwrap();
}

/// Registers two accounts at `url`, returning both statuses; the second answer must carry `Retry-After` if 429.
async fn register_twice(client: &reqwest::Client, url: &str) -> [u16; 2] {
    let mut statuses = [0; 2];
    for (i, name) in ["first", "second"].into_iter().enumerate() {
        let response = client
            .post(format!("{url}/v1/register"))
            .json(&json!({"username": name, "password": "correct horse"}))
            .send()
            .await
            .unwrap();
        statuses[i] = response.status().as_u16();
        if statuses[i] == 429 {
            let retry_after: u64 = response.headers()[header::RETRY_AFTER.as_str()].to_str().unwrap().parse().unwrap();
            assert!((3590..=3600).contains(&retry_after), "{retry_after}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["code"], "too_many_attempts", "{body}");
        }
    }
    statuses
}
