//! Helpers shared by the API tests: a config in a temporary directory, fake sync nodes registered straight into the
//! state's registry, and requests sent to `app()` without a socket.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use account_server::nodes::{NodeInfo, Notice, Notifier, PeerId};
use account_server::rpc;
use account_server::{AccountConfig, AppState, Config, RpcSection, TokenSection, app};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use movan_protocol::TokenClaims;
use movan_protocol::rpc::Registered;
use serde_json::{Value, json};
use tower::ServiceExt as _;

pub fn config(dir: &Path) -> Config {
    Config {
        account: AccountConfig {
            db_path: dir.join("data/accounts.sled"),
            max_concurrent_hashes: 2,
            ..AccountConfig::default()
        },
        token: TokenSection {
            private_key_path: dir.join("data/jwt.pem"),
            public_key_path: dir.join("data/jwt.pub.pem"),
            ..TokenSection::default()
        },
        rpc: RpcSection { secret_path: dir.join("data/rpc_secret"), ..RpcSection::default() },
    }
}

/// A fake sync node: records the notices it is sent, and its registration reply.
#[derive(Debug, Default)]
pub struct FakeNode {
    notices: Mutex<Vec<Notice>>,
    registered: Mutex<Option<Registered>>,
}

impl Notifier for FakeNode {
    fn notify(&self, notice: &Notice) -> Result<(), String> {
        self.notices.lock().unwrap().push(notice.clone());
        Ok(())
    }
}

impl FakeNode {
    pub fn notices(&self) -> Vec<Notice> {
        self.notices.lock().unwrap().clone()
    }

    /// The notices the registration reply replayed: bans, then revocations.
    pub fn replayed(&self) -> Vec<Notice> {
        let reply = self.registered.lock().unwrap().clone().unwrap_or_default();
        let bans = reply.banned.into_iter().map(|b| Notice::UserBanned { uid: b.uid });
        bans.chain(reply.revoked.into_iter().map(|r| Notice::SessionRevoked { uid: r.uid, sid: r.sid })).collect()
    }
}

/// Registers a fake node `node_id` (connection `peer_id`) with room for 100 players at `addr`.
pub fn add_node(state: &AppState, node_id: &str, peer_id: PeerId, addr: &str) -> Arc<FakeNode> {
    let node = Arc::new(FakeNode::default());
    let info = NodeInfo {
        node_id: node_id.into(),
        public_addr: addr.into(),
        capacity: 100,
        ws_url: String::new(),
        udp_addr: String::new(),
    };
    let reply = rpc::register_node(state, peer_id, node_id, node.clone(), info).unwrap();
    *node.registered.lock().unwrap() = Some(reply);
    node
}

/// An app on a fresh temporary directory (kept alive by the returned guard), with one sync node at
/// `127.0.0.1:2025`.
pub async fn fresh() -> (Router, tempfile::TempDir) {
    let (app, _, _, dir) = fresh_with(|_| {}).await;
    (app, dir)
}

/// Like [`fresh`], with the config changed by `edit`; also returns the state and the fake node.
pub async fn fresh_with(edit: impl FnOnce(&mut Config)) -> (Router, AppState, Arc<FakeNode>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    edit(&mut config);
    let state = AppState::open(&config).await.unwrap();
    let node = add_node(&state, "sync-1", 1, "127.0.0.1:2025");
    (app(state.clone()), state, node, dir)
}

/// A response: status, `Cache-Control` if any, and the body as JSON (`Null` when empty).
pub struct Reply {
    pub status: StatusCode,
    pub cache_control: Option<String>,
    pub body: Value,
}

pub async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let cache_control = response.headers().get(header::CACHE_CONTROL).map(|v| v.to_str().unwrap().to_owned());
    if status != StatusCode::NO_CONTENT {
        let content_type = response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(content_type.as_deref(), Some("application/json"), "{status}");
    }
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    Reply { status, cache_control, body }
}

pub async fn post(app: &Router, path: &str, body: Value) -> Reply {
    let request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(app, request).await
}

pub async fn with_bearer(app: &Router, method: Method, path: &str, token: &str) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    send(app, request).await
}

pub async fn register(app: &Router, username: &str, password: &str) -> Reply {
    post(app, "/v1/register", json!({"username": username, "password": password})).await
}

pub async fn login(app: &Router, username: &str, password: &str) -> Reply {
    post(app, "/v1/login", json!({"username": username, "password": password})).await
}

pub fn assert_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["code"], code, "{}", reply.body);
    assert!(reply.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", reply.body);
}

pub fn text(v: &Value) -> &str {
    v.as_str().unwrap()
}

/// The claims of an access token, unverified.
pub fn claims(token: &str) -> TokenClaims {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
