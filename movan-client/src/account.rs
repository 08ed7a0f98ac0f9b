//! HTTP/JSON client of the account server: register, log in, refresh, log out, and look up the current player.

use std::time::Duration;

use movan_protocol::MatchRecord;
use movan_protocol::crypto::SessionKey;
use serde::{Deserialize, Serialize};

use crate::error::ClientError;

/// How long one account request may take before it fails with [`ClientError::Request`].
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest error body quoted in [`ClientError::Http`] when it is not the documented JSON.
const MAX_QUOTED_BODY: usize = 512;

/// A client of one account server. Cheap to clone: clones share the connection pool.
#[derive(Debug, Clone)]
pub struct AccountClient {
    base_url: String,
    pub(crate) http: reqwest::Client,
}

/// What a login or refresh returns: the tokens and where to play.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The player's uid (a decimal string).
    pub uid: String,
    /// The access token (a JWT) to present to the sync server and to `logout`/`me`.
    pub token: String,
    /// The refresh token, exchanged by [`AccountClient::refresh`] for a new session.
    pub refresh_token: String,
    /// Seconds until `token` expires.
    pub expires_in: u64,
    /// The sync server address, `host:port`.
    pub sync_addr: String,
    /// The sync server's WebSocket endpoint (`ws://host:port/ws`), for browser clients; `None` when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_ws_url: Option<String>,
    /// The sync server's UDP (KCP) endpoint, `host:port`; `None` when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_udp_addr: Option<String>,
    /// The secret that seals this session's sync connections: standard base64 of 32 bytes. `None` from an account
    /// server without encrypted sessions. Keep it as secret as `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_key: Option<String>,
}

impl Session {
    /// The decoded [`Session::session_key`]; one that is not standard base64 of 32 bytes fails with
    /// [`ClientError::Crypto`].
    pub fn decode_session_key(&self) -> Result<Option<SessionKey>, ClientError> {
        self.session_key
            .as_deref()
            .map(SessionKey::from_base64)
            .transpose()
            .map_err(|e| ClientError::Crypto(format!("the login's session_key: {e}")))
    }
}

/// What `GET /v1/me` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The player's uid.
    pub uid: String,
    /// The player's username.
    pub username: String,
    /// `player` or `admin`.
    #[serde(default)]
    pub role: String,
}

/// A page of finished games from `GET /v1/me/matches`, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchPage {
    /// The matches of this page.
    pub matches: Vec<MatchRecord>,
    /// Cursor for the next (older) page, or `None` at the end.
    pub next: Option<String>,
}

#[derive(Serialize)]
struct Credentials<'a> {
    username: &'a str,
    password: &'a str,
}

#[derive(Deserialize)]
struct Registered {
    uid: String,
}

#[derive(Deserialize)]
struct ErrorJson {
    code: String,
    message: String,
}

impl AccountClient {
    /// A client of the account server at `base_url`, such as `http://127.0.0.1:2026` (a trailing `/` is ignored).
    pub fn new(base_url: impl Into<String>) -> Self {
        let mut base_url = base_url.into();
        while base_url.ends_with('/') {
            base_url.pop();
        }
        // Building only fails when the TLS backend cannot initialise; this crate builds reqwest without TLS.
        let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().unwrap_or_default();
        Self { base_url, http }
    }

    /// The base URL requests go to, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `POST /v1/register`: creates the account and returns its uid.
    ///
    /// A taken username fails with [`ClientError::Http`] status 409 (code `username_taken`).
    pub async fn register(&self, username: &str, password: &str) -> Result<String, ClientError> {
        let req = self.http.post(self.url("/v1/register")).json(&Credentials { username, password });
        let reg: Registered = json_response(req.send().await?).await?;
        Ok(reg.uid)
    }

    /// `POST /v1/login`: checks the password and opens a session.
    pub async fn login(&self, username: &str, password: &str) -> Result<Session, ClientError> {
        let req = self.http.post(self.url("/v1/login")).json(&Credentials { username, password });
        json_response(req.send().await?).await
    }

    /// `POST /v1/refresh`: exchanges a refresh token for a new session (new access token).
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session, ClientError> {
        let req = self.http.post(self.url("/v1/refresh")).json(&serde_json::json!({ "refresh_token": refresh_token }));
        json_response(req.send().await?).await
    }

    /// `POST /v1/logout`: ends the session the access token belongs to.
    pub async fn logout(&self, token: &str) -> Result<(), ClientError> {
        let req = self.http.post(self.url("/v1/logout")).bearer_auth(token);
        check_status(req.send().await?).await?;
        Ok(())
    }

    /// `GET /v1/me`: who the access token belongs to.
    pub async fn me(&self, token: &str) -> Result<Me, ClientError> {
        let req = self.http.get(self.url("/v1/me")).bearer_auth(token);
        json_response(req.send().await?).await
    }

    /// `GET /v1/me/matches`: the player's finished games, newest first; `before` is a page's `next` cursor.
    pub async fn matches(&self, token: &str, limit: u32, before: Option<&str>) -> Result<MatchPage, ClientError> {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(cursor) = before {
            query.push(("before", cursor.to_owned()));
        }
        let req = self.http.get(self.url("/v1/me/matches")).query(&query).bearer_auth(token);
        json_response(req.send().await?).await
    }

    /// `GET /v1/matches/{match_id}/replay`: the replay file of one of the player's matches (any match with an
    /// admin's token), byte for byte as stored. A match without a replay (or not the player's) fails with
    /// [`ClientError::Http`] status 404, code `replay_not_found`.
    pub async fn replay_file(&self, token: &str, match_id: &str) -> Result<Vec<u8>, ClientError> {
        let mut url = reqwest::Url::parse(&self.url("/v1/matches"))
            .map_err(|e| ClientError::Protocol(format!("base URL {:?}: {e}", self.base_url)))?;
        url.path_segments_mut()
            .map_err(|()| ClientError::Protocol(format!("base URL {:?} cannot hold a path", self.base_url)))?
            .push(match_id)
            .push("replay");
        let resp = check_status(self.http.get(url).bearer_auth(token).send().await?).await?;
        Ok(resp.bytes().await?.to_vec())
    }

    /// [`AccountClient::replay_file`], parsed: the header, and the frames through [`Replay::frames`]. Check it with
    /// [`Replay::verify`].
    ///
    /// [`Replay::frames`]: movan_protocol::replay::Replay::frames
    /// [`Replay::verify`]: movan_protocol::replay::Replay::verify
    pub async fn replay(&self, token: &str, match_id: &str) -> Result<movan_protocol::replay::Replay, ClientError> {
        let file = self.replay_file(token, match_id).await?;
        Ok(movan_protocol::replay::Replay::parse(file)?)
    }

    /// `POST /v1/admin/users/{uid}/ban` with an admin's token.
    pub async fn ban(&self, admin_token: &str, uid: &str) -> Result<(), ClientError> {
        let req = self.http.post(self.url(&format!("/v1/admin/users/{uid}/ban"))).bearer_auth(admin_token);
        check_status(req.send().await?).await?;
        Ok(())
    }

    /// `POST /v1/admin/users/{uid}/unban` with an admin's token.
    pub async fn unban(&self, admin_token: &str, uid: &str) -> Result<(), ClientError> {
        let req = self.http.post(self.url(&format!("/v1/admin/users/{uid}/unban"))).bearer_auth(admin_token);
        check_status(req.send().await?).await?;
        Ok(())
    }

    /// Registers `username` unless a 409 says it exists, then logs in. Handy for bots and tests that rerun.
    pub async fn register_or_login(&self, username: &str, password: &str) -> Result<Session, ClientError> {
        match self.register(username, password).await {
            Ok(_) => {}
            Err(e) if e.http_status() == Some(409) => {}
            Err(e) => return Err(e),
        }
        self.login(username, password).await
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

/// Decodes a success body as `T`, or turns an error status into [`ClientError::Http`].
pub(crate) async fn json_response<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, ClientError> {
    Ok(check_status(resp).await?.json().await?)
}

async fn check_status(resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.bytes().await.unwrap_or_default();
    let (code, message) = match serde_json::from_slice::<ErrorJson>(&body) {
        Ok(e) => (e.code, e.message),
        Err(_) => {
            let text = String::from_utf8_lossy(&body);
            (String::new(), text.chars().take(MAX_QUOTED_BODY).collect())
        }
    };
    Err(ClientError::Http { status: status.as_u16(), code, message })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// One request as the fake server saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        authorization: Option<String>,
        body: String,
    }

    /// A one-request-per-connection HTTP/1.1 server on port 0 that answers with `respond(request)`.
    async fn fake_account_server(
        respond: impl Fn(&Seen) -> (u16, String) + Send + 'static,
    ) -> (String, tokio::sync::mpsc::UnboundedReceiver<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                let seen = read_request(&mut sock).await;
                let (status, body) = respond(&seen);
                tx.send(seen).unwrap();
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                sock.write_all(resp.as_bytes()).await.unwrap();
                sock.shutdown().await.unwrap();
            }
        });
        (base, rx)
    }

    async fn read_request(sock: &mut tokio::net::TcpStream) -> Seen {
        let mut buf = Vec::new();
        let head_end = loop {
            let mut chunk = [0u8; 1024];
            let n = sock.read(&mut chunk).await.unwrap();
            assert!(n > 0, "client closed mid-request");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
        let mut lines = head.lines();
        let mut first = lines.next().unwrap().split(' ');
        let (method, path) = (first.next().unwrap().to_owned(), first.next().unwrap().to_owned());
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let len: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 1024];
            let n = sock.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
        }
        Seen {
            method,
            path,
            authorization: header("authorization"),
            body: String::from_utf8(buf[head_end..head_end + len].to_vec()).unwrap(),
        }
    }

    const SESSION: &str =
        r#"{"uid":"1001","token":"tok","refresh_token":"ref","expires_in":3600,"sync_addr":"127.0.0.1:2025"}"#;

    #[tokio::test]
    async fn register_or_login_ignores_a_taken_username() {
        let (base, mut seen) = fake_account_server(|req| match req.path.as_str() {
            "/v1/register" => (409, r#"{"code":"username_taken","message":"taken"}"#.into()),
            "/v1/login" => (200, SESSION.into()),
            other => panic!("unexpected {other}"),
        })
        .await;
        let client = AccountClient::new(format!("{base}/"));
        let session = client.register_or_login("alice", "password1").await.unwrap();
        assert_eq!(session.uid, "1001");
        assert_eq!(session.sync_addr, "127.0.0.1:2025");
        let reg = seen.recv().await.unwrap();
        assert_eq!((reg.method.as_str(), reg.path.as_str()), ("POST", "/v1/register"));
        let body: serde_json::Value = serde_json::from_str(&reg.body).unwrap();
        assert_eq!(body, serde_json::json!({"username": "alice", "password": "password1"}));
        assert_eq!(seen.recv().await.unwrap().path, "/v1/login");
    }

    #[test]
    fn the_session_key_is_optional_and_decoded() {
        let old: Session = serde_json::from_str(SESSION).unwrap();
        assert_eq!(old.session_key, None);
        assert!(old.decode_session_key().unwrap().is_none());
        assert!(!serde_json::to_string(&old).unwrap().contains("session_key"));
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let new: Session =
            serde_json::from_str(&SESSION.replace('}', &format!(r#","session_key":"{key}"}}"#))).unwrap();
        assert_eq!(new.session_key.as_deref(), Some(key));
        assert_eq!(new.decode_session_key().unwrap().unwrap().as_bytes()[31], 31);
        let bad = Session { session_key: Some("AAAA".into()), ..new };
        assert!(matches!(bad.decode_session_key(), Err(ClientError::Crypto(_))));
    }

    #[tokio::test]
    async fn errors_carry_status_code_and_message() {
        let (base, _seen) = fake_account_server(|req| match req.path.as_str() {
            "/v1/login" => (401, r#"{"code":"bad_credentials","message":"wrong password"}"#.into()),
            _ => (500, "not json".into()),
        })
        .await;
        let client = AccountClient::new(base);
        match client.login("alice", "nope-nope").await {
            Err(ClientError::Http { status, code, message }) => {
                assert_eq!((status, code.as_str(), message.as_str()), (401, "bad_credentials", "wrong password"));
            }
            other => panic!("{other:?}"),
        }
        match client.register("alice", "password1").await {
            Err(ClientError::Http { status, code, message }) => {
                assert_eq!((status, code.as_str(), message.as_str()), (500, "", "not json"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn bearer_endpoints() {
        let (base, mut seen) = fake_account_server(|req| match req.path.as_str() {
            "/v1/me" => (200, r#"{"uid":"1001","username":"alice","role":"player"}"#.into()),
            "/v1/logout" => (204, String::new()),
            "/v1/refresh" => (200, SESSION.into()),
            other => panic!("unexpected {other}"),
        })
        .await;
        let client = AccountClient::new(base);
        let me = client.me("tok").await.unwrap();
        assert_eq!(me, Me { uid: "1001".into(), username: "alice".into(), role: "player".into() });
        let req = seen.recv().await.unwrap();
        assert_eq!((req.method.as_str(), req.authorization.as_deref()), ("GET", Some("Bearer tok")));
        client.logout("tok").await.unwrap();
        let req = seen.recv().await.unwrap();
        assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/v1/logout"));
        assert_eq!(req.authorization.as_deref(), Some("Bearer tok"));
        assert_eq!(client.refresh("ref").await.unwrap().token, "tok");
        let req = seen.recv().await.unwrap();
        assert_eq!(req.body, r#"{"refresh_token":"ref"}"#);
    }
}
