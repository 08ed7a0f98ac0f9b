//! What both binaries print when they cannot start: one line on stderr, `<binary>: <file>: <what>: <why>`, the same
//! form for both, with no backtrace and no repeated cause, and exit status 1.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use movan_tests::{Cluster, binary};

/// Runs `name --config config` with a backtrace requested (it must not appear).
fn run(name: &str, config: &Path) -> Output {
    std::process::Command::new(binary(name))
        .arg("--config")
        .arg(config)
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// The one stderr line of a failed start.
fn error_line(name: &str, out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{name}: {out:?}");
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{name} printed more than one line:\n{stderr}");
    lines[0].to_owned()
}

#[test]
fn a_missing_config_file_is_one_line_from_both_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    for name in ["account-server", "sync-server"] {
        let line = error_line(name, &run(name, &missing));
        let want = format!(
            "{name}: {}: cannot read: No such file or directory (os error 2) (pass another file with --config PATH or \
             MOVAN_CONFIG)",
            missing.display()
        );
        assert_eq!(line, want);
    }
}

#[test]
fn a_mistyped_section_stops_both_binaries_naming_file_and_section() {
    let dir = tempfile::tempdir().unwrap();
    for (text, section, near) in
        [("[synk]\nmax_rooms = 3\n", "synk", "sync"), ("[token]\n[tokens]\n", "tokens", "token")]
    {
        let config = dir.path().join("movan.toml");
        std::fs::write(&config, text).unwrap();
        for name in ["account-server", "sync-server"] {
            let line = error_line(name, &run(name, &config));
            let want = format!(
                "{name}: {}: {section}: unknown section; did you mean [{near}]? (the sections are [token], [account], \
                 [rpc], [sync])",
                config.display()
            );
            assert_eq!(line, want);
        }
    }
}

#[tokio::test]
async fn a_second_account_server_on_the_same_database_says_what_is_wrong() {
    let cluster = Cluster::start().await.unwrap();
    let out = tokio::task::spawn_blocking({
        let config = cluster.config.clone();
        move || run("account-server", &config)
    })
    .await
    .unwrap();
    let line = error_line("account-server", &out);
    let db = cluster.dir.path().join("accounts.sled");
    let want = format!(
        "account-server: {}: the database is in use by another process: another account server is probably running \
         with the same account.db_path (stop it, or give this one another account.db_path)",
        db.display()
    );
    assert_eq!(line, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_servers_health_endpoint_follows_its_account_link() {
    let mut cluster = Cluster::start().await.unwrap();
    let http = reqwest::Client::new();
    let base = cluster.sync_health_url.clone();
    let get = |path: &str| {
        let url = format!("{base}{path}");
        let http = http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, body) = get("/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")), "{body}");
    assert!(body["players"].is_u64() && body["rooms"].is_u64() && body["connections"].is_u64(), "{body}");
    // Cluster::start waited until logins name this node, so it is registered.
    let (status, body) = get("/readyz").await;
    assert_eq!((status, body["account_link"].as_str()), (200, Some("registered")), "{body}");
    let (status, body) = get("/metrics-soon").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["message"].as_str().unwrap().contains("/healthz"), "{body}");

    // Without the account server no login can point here: not ready, and the reason says why. Still alive.
    cluster.terminate_account().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let body = loop {
        let (status, body) = get("/readyz").await;
        if status == 503 {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "still ready after the account server stopped: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(body["status"], "not_ready");
    assert!(body["reason"].as_str().unwrap().contains("sync.account_rpc_addr"), "{body}");
    assert_eq!(get("/healthz").await.0, 200);

    // Back again once the account server is: the link reconnects and registers by itself.
    cluster.start_account().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while get("/readyz").await.0 != 200 {
        assert!(std::time::Instant::now() < deadline, "not ready again after the account server came back");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
