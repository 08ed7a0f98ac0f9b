//! End-to-end: the account server binary on its own terms. Accounts survive a crash (SIGKILL right after the 201),
//! SIGTERM drains and exits cleanly, and login/registration attempt limits answer 429 with `Retry-After`.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::os::unix::process::ExitStatusExt as _;
use std::time::{Duration, Instant};

use movan_client::AccountClient;
use movan_tests::{Cluster, Options};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn accounts_registered_just_before_a_crash_can_log_in_after_restart() {
    let mut cluster = Cluster::start().await.unwrap();
    let account = AccountClient::new(&cluster.account_url);
    let first = account.register("crash-first", PASSWORD).await.unwrap();
    let second = account.register("crash-second", PASSWORD).await.unwrap();

    // Right after the 201: no graceful shutdown, no final flush.
    let status = cluster.kill_account().await.unwrap();
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");

    cluster.start_account().await.unwrap();
    cluster.wait_for_node(true).await.unwrap();
    let account = AccountClient::new(&cluster.account_url);
    assert_eq!(account.login("crash-second", PASSWORD).await.unwrap().uid, second);
    assert_eq!(account.login("CRASH-FIRST", PASSWORD).await.unwrap().uid, first);
    let taken = account.register("crash-second", PASSWORD).await.unwrap_err();
    assert_eq!(taken.http_status(), Some(409), "{taken}");
}

#[tokio::test]
async fn sigterm_finishes_the_open_request_flushes_and_exits_0() {
    let mut cluster = Cluster::start().await.unwrap();
    let account = AccountClient::new(&cluster.account_url);
    let uid = account.register("before-term", PASSWORD).await.unwrap();
    account.login("before-term", PASSWORD).await.unwrap();

    // A registration whose body is still arriving when SIGTERM does.
    let addr = cluster.account_url.strip_prefix("http://").unwrap().to_owned();
    let body = json!({"username": "during-term", "password": PASSWORD}).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST /v1/register HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{head}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let pid = cluster.account_pid().unwrap();
    let signalled = Instant::now();
    let kill = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await.unwrap();
    assert!(kill.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.write_all(tail.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut response)).await.unwrap().unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "the open request was finished: {response}");

    let status = cluster.wait_account_exit(Duration::from_secs(5)).await.unwrap();
    assert!(status.success(), "{status:?}");
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(5), "exited {took:?} after SIGTERM");
    // Both listeners are closed.
    assert!(TcpStream::connect(&addr).await.is_err());
    assert!(TcpStream::connect(&cluster.account_rpc).await.is_err());

    cluster.start_account().await.unwrap();
    cluster.wait_for_node(true).await.unwrap();
    let account = AccountClient::new(&cluster.account_url);
    assert_eq!(account.login("before-term", PASSWORD).await.unwrap().uid, uid);
    account.login("during-term", PASSWORD).await.unwrap();
}

/// A client whose requests come from 127.0.0.2 (Linux routes all of 127.0.0.0/8 to the loopback interface), so the
/// per-address limits count it while the harness, on the exempt 127.0.0.1, is not limited.
fn client_from_127_0_0_2() -> reqwest::Client {
    if std::net::TcpListener::bind("127.0.0.2:0").is_err() {
        panic!("this test needs 127.0.0.2 to be a local address (the default on Linux)");
    }
    reqwest::Client::builder().local_address(IpAddr::from([127, 0, 0, 2])).build().unwrap()
}

/// Status, `Retry-After` and JSON body of a `POST` to `path`.
async fn post(client: &reqwest::Client, url: &str, path: &str, username: &str, password: &str) -> Answer {
    let response = client
        .post(format!("{url}{path}"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    let body: Value = response.json().await.unwrap();
    Answer { status, retry_after, body }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

impl Answer {
    fn assert_limited(&self, config_key: &str, retry_after: std::ops::RangeInclusive<u64>) {
        assert_eq!(self.status, 429, "{self:?}");
        assert_eq!(self.body["code"], "too_many_attempts", "{self:?}");
        let message = self.body["message"].as_str().unwrap();
        assert!(message.contains(config_key), "the message names {config_key}: {message}");
        let after = self.retry_after.unwrap_or_else(|| panic!("no Retry-After: {self:?}"));
        assert!(retry_after.contains(&after), "Retry-After {after} not in {retry_after:?}");
    }
}

#[tokio::test]
async fn wrong_passwords_get_401_then_429_per_username_then_per_address() {
    let options = Options {
        account: vec![
            "limit_exempt_ips = [\"127.0.0.1\"]".into(),
            "login_failures_per_username = 3".into(),
            "login_username_window_secs = 300".into(),
            "login_attempts_per_ip = 6".into(),
            "login_ip_window_secs = 60".into(),
            "register_per_ip = 2".into(),
        ],
        ..Options::default()
    };
    let cluster = Cluster::start_with(options).await.unwrap();
    let url = &cluster.account_url;
    let local = AccountClient::new(url);
    local.register("victim", PASSWORD).await.unwrap();
    local.register("bystander", PASSWORD).await.unwrap();
    let attacker = client_from_127_0_0_2();

    // Failed logins for one username: 401 up to the limit, then 429 (attempts 1-4 from this address).
    for _ in 0..3 {
        let answer = post(&attacker, url, "/v1/login", "victim", "guess-guess").await;
        assert_eq!((answer.status, &answer.body["code"]), (401, &json!("invalid_credentials")), "{answer:?}");
    }
    let refused = post(&attacker, url, "/v1/login", "Victim", "guess-guess").await;
    refused.assert_limited("account.login_failures_per_username", 90..=100);
    assert!(refused.body["message"].as_str().unwrap().contains("at most 3 per 300 s"), "{refused:?}");

    // The limit is the username's, whatever the address; the SDK sees the 429 and its code.
    let locked = local.login("victim", PASSWORD).await.unwrap_err();
    assert_eq!(locked.http_status(), Some(429), "{locked}");
    assert!(locked.to_string().contains("too_many_attempts"), "{locked}");
    // Successful logins are not failures: another player logs in as often as they like.
    for _ in 0..5 {
        local.login("bystander", PASSWORD).await.unwrap();
    }

    // Other usernames from the same address: attempts 5 and 6 pass, the 7th is over the address limit.
    for name in ["other-1", "other-2"] {
        assert_eq!(post(&attacker, url, "/v1/login", name, "guess-guess").await.status, 401);
    }
    let refused = post(&attacker, url, "/v1/login", "other-3", "guess-guess").await;
    refused.assert_limited("account.login_attempts_per_ip", 1..=10);
    assert!(refused.body["message"].as_str().unwrap().contains("at most 6 per 60 s"), "{refused:?}");
    // Even the right password is refused from that address now, before it is checked.
    let refused = post(&attacker, url, "/v1/login", "bystander", PASSWORD).await;
    refused.assert_limited("account.login_attempts_per_ip", 1..=10);

    // Registration from the address has its own budget.
    assert_eq!(post(&attacker, url, "/v1/register", "bot-1", PASSWORD).await.status, 201);
    assert_eq!(post(&attacker, url, "/v1/register", "bot-2", PASSWORD).await.status, 201);
    let refused = post(&attacker, url, "/v1/register", "bot-3", PASSWORD).await;
    refused.assert_limited("account.register_per_ip", 1700..=1800);
    local.login("bot-2", PASSWORD).await.unwrap();
    let missing = local.login("bot-3", PASSWORD).await.unwrap_err();
    assert_eq!(missing.http_status(), Some(401), "the refused registration created nothing: {missing}");
}
