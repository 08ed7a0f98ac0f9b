//! Players for the end-to-end tests: logins, connections, a started game, forged tokens and raw message bodies.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use movan_client::{AccountClient, Encryption, Session, SyncClient};
use movan_protocol::TokenClaims;
use movan_protocol::server::ServerEvent;
use serde_json::{Value, json};

use crate::Cluster;

/// How long a test waits for one expected thing (a reply, a close) before failing.
pub const WAIT: Duration = Duration::from_secs(10);
/// Every test account's password.
pub const PASSWORD: &str = "movan-test-password";

/// Registers `name` (or logs it in when it exists), within [`WAIT`].
pub async fn login(account: &AccountClient, name: &str) -> Session {
    tokio::time::timeout(WAIT, account.register_or_login(name, PASSWORD)).await.expect("login timed out").unwrap()
}

/// Connects `session` to its sync server, within [`WAIT`]; the default server seals every frame.
pub async fn connect(session: &Session) -> SyncClient {
    let c = tokio::time::timeout(WAIT, SyncClient::connect_session(session)).await.expect("connect timed out").unwrap();
    assert_eq!(c.encryption(), Encryption::Sealed, "the server seals every frame");
    c
}

/// Logs in `names`, connects them, puts them in `room` and starts the game; checks that every player got the same
/// `game_start` from the cluster's sync server. Returns the sessions and clients (in the order of `names`), and the
/// `game_start` start time (Unix seconds) and frame interval (seconds).
pub async fn start_game(cluster: &Cluster, room: &str, names: &[&str]) -> (Vec<Session>, Vec<SyncClient>, f64, f64) {
    let account = AccountClient::new(&cluster.account_url);
    let mut sessions = Vec::new();
    let mut clients = Vec::new();
    for name in names {
        let s = login(&account, name).await;
        assert_eq!(s.sync_addr, cluster.sync_addr, "login hands out the running sync server");
        clients.push(connect(&s).await);
        sessions.push(s);
    }
    for c in &clients {
        c.enter_room(Some(room)).await.unwrap();
    }
    let n = names.len();
    for c in &mut clients {
        c.wait_for(|e| matches!(e, ServerEvent::RoomState(s) if s.members.len() == n), WAIT).await.unwrap();
    }
    for c in &clients {
        c.prepare().await.unwrap();
    }
    let mut start = None;
    for c in &mut clients {
        match c.wait_for(|e| matches!(e, ServerEvent::GameStart(_)), WAIT).await.unwrap() {
            ServerEvent::GameStart(g) => {
                assert_eq!(g.members.len(), n);
                let this = (g.start_time, g.frame_interval_ms as f64 / 1000.0, g.seed);
                assert!(start.is_none_or(|s| s == this), "every player gets the same game_start");
                start = Some(this);
            }
            _ => unreachable!(),
        }
    }
    let (t0, interval, _) = start.unwrap();
    (sessions, clients, t0, interval)
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A token signed with the cluster's real key, with claims of our choosing (`edit` changes any of them).
pub fn forge(cluster: &Cluster, uid: &str, sid: &str, exp: u64, edit: impl FnOnce(&mut TokenClaims)) -> String {
    let key = jsonwebtoken::EncodingKey::from_ed_pem(&cluster.private_key_pem().unwrap()).unwrap();
    let mut claims = TokenClaims {
        sub: uid.into(),
        sid: sid.into(),
        iss: "movan-account".into(),
        aud: "movan-sync".into(),
        iat: exp.saturating_sub(3600),
        exp,
        name: "forged".into(),
    };
    edit(&mut claims);
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA), &claims, &key).unwrap()
}

/// A client message body: `{"uid", "token"?, "extra_data"}`.
pub fn body(uid: &str, token: Option<&str>, extra: Value) -> Vec<u8> {
    let mut v = json!({ "uid": uid, "extra_data": extra });
    if let Some(t) = token {
        v["token"] = json!(t);
    }
    serde_json::to_vec(&v).unwrap()
}
