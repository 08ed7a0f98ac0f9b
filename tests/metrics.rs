//! End-to-end metrics: after a short encrypted game over TCP, the sync server's
//! `GET /metrics` (on `sync.metrics_addr`) and the account server's (on its HTTP port) show what happened, under
//! `movan_` names.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use movan_protocol::server::ServerEvent;
use movan_tests::{Cluster, WAIT, start_game};
use serde_json::json;

/// The value of the sample `line_start` (a name with its labels), if present.
fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(line_start).and_then(|rest| rest.trim().parse().ok()))
}

async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_services_export_what_a_game_did() {
    let cluster = Cluster::start().await.unwrap();
    let (_, clients, _, _) = start_game(&cluster, "metered", &["me1", "me2"]).await;
    let mut games = Vec::new();
    for mut c in clients {
        games.push(tokio::spawn(async move {
            let mut frames = 0;
            while frames < 20 {
                if let Some(ServerEvent::Frame(_)) = c.next_event_timeout(WAIT).await.unwrap() {
                    frames += 1;
                    c.send_action(&json!({"n": frames})).await.unwrap();
                }
            }
            c.send_proto("no_such_proto", None).await.unwrap();
            c.wait_for(|e| matches!(e, ServerEvent::Error(_)), WAIT).await.unwrap();
            c
        }));
    }
    let mut clients = Vec::new();
    for g in games {
        clients.push(g.await.unwrap());
    }
    let sync = scrape(&format!("{}/metrics", cluster.sync_health_url)).await;
    assert!(sample(&sync, "movan_sync_frames_total").unwrap() >= 20.0, "{sync}");
    assert!(sample(&sync, "movan_sync_actions_total").unwrap() >= 30.0, "{sync}");
    assert_eq!(sample(&sync, "movan_sync_connections{transport=\"tcp\"}"), Some(2.0), "{sync}");
    assert_eq!(sample(&sync, "movan_sync_players"), Some(2.0), "{sync}");
    assert_eq!(sample(&sync, "movan_sync_rooms{state=\"playing\"}"), Some(1.0), "{sync}");
    assert_eq!(sample(&sync, "movan_sync_refusals_total{code=\"unknown_proto\"}"), Some(2.0), "{sync}");
    assert!(sample(&sync, "movan_sync_received_bytes_total{transport=\"tcp\"}").unwrap() > 0.0, "{sync}");
    assert!(sample(&sync, "movan_sync_sent_bytes_total{transport=\"tcp\"}").unwrap() > 0.0, "{sync}");
    assert!(sample(&sync, "movan_sync_tick_lateness_seconds_count").unwrap() >= 20.0, "{sync}");
    assert_eq!(sample(&sync, "movan_sync_account_link_up"), Some(1.0), "{sync}");
    for mut c in clients {
        c.leave(WAIT).await.unwrap();
    }
    // The game ended: counted by reason; the room is gone.
    let mut ended = None;
    for _ in 0..50 {
        let sync = scrape(&format!("{}/metrics", cluster.sync_health_url)).await;
        ended = sample(&sync, "movan_sync_games_total{reason=\"all_left\"}");
        if ended.is_some() && sample(&sync, "movan_sync_rooms{state=\"playing\"}") == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ended, Some(1.0));

    let account = scrape(&format!("{}/metrics", cluster.account_url)).await;
    // Both players logged in (and the harness did, waiting for the node).
    let logins = sample(&account, "movan_account_http_requests_total{route=\"/v1/login\",status=\"200\"}");
    assert!(logins.unwrap() >= 2.0, "{account}");
    assert_eq!(sample(&account, "movan_account_sync_nodes"), Some(1.0), "{account}");
    assert!(sample(&account, "movan_account_login_duration_seconds_count").unwrap() >= 2.0, "{account}");
    assert!(account.contains("movan_account_sync_node_players{node=\"sync-test\"}"), "{account}");
    names_are_documented(&[&sync, &account]);
}

/// Every `movan_` name the services export is in the README's metrics table, and every name the Grafana dashboard
/// queries is one of those.
fn names_are_documented(scrapes: &[&str]) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let table = readme.split("## Metrics").nth(1).unwrap().split("\n## ").next().unwrap();
    let names = |text: &str| -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        for (i, _) in text.match_indices("movan_") {
            let name: String = text[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .fold(name.clone(), |n, s| n.strip_suffix(s).map_or(n.clone(), str::to_owned));
            out.insert(base);
        }
        out
    };
    let documented = names(table);
    for scrape in scrapes {
        for name in names(scrape) {
            assert!(documented.contains(&name), "{name} is exported but not in the README's metrics table");
        }
    }
    let dashboard = std::fs::read_to_string(root.join("docs/grafana-dashboard.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&dashboard).unwrap();
    for name in names(&dashboard) {
        assert!(documented.contains(&name), "the dashboard queries {name}, which is not in the README's metrics table");
    }
}
