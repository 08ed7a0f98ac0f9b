//! `GET /metrics`: the Prometheus text of the account server after some traffic. One test in this binary: the
//! recorder is process-wide.
#![allow(clippy::unwrap_used)]

mod common;

use account_server::{AppState, app};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use tower::ServiceExt as _;

/// The value of the sample `line_start` (a metric name with its labels), if the text has it.
fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(line_start).and_then(|rest| rest.trim().parse().ok()))
}

#[tokio::test]
async fn metrics_count_requests_time_logins_and_show_the_nodes() {
    let handle = account_server::metrics::install().expect("the only recorder of this test binary");
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.account.login_failures_per_username = 1;
    config.account.limit_exempt_ips = vec![];
    let state = AppState::open(&config).await.unwrap().with_metrics(Some(handle));
    add_node(&state, "sync-1", 1, "127.0.0.1:2025");
    let app = app(state.clone());
    assert_eq!(register(&app, "alice", "correct horse").await.status, StatusCode::CREATED);
    assert_eq!(login(&app, "alice", "correct horse").await.status, StatusCode::OK);
    assert_eq!(login(&app, "alice", "wrong horse!").await.status, StatusCode::UNAUTHORIZED);

    let request = Request::get("/metrics").body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers().get(header::CONTENT_TYPE).unwrap().to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = String::from_utf8(axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    let requests = |route: &str, status: u16| {
        sample(&text, &format!("movan_account_http_requests_total{{route=\"{route}\",status=\"{status}\"}}"))
    };
    assert_eq!(requests("/v1/register", 201), Some(1.0), "{text}");
    assert_eq!(requests("/v1/login", 200), Some(1.0), "{text}");
    assert_eq!(requests("/v1/login", 401), Some(1.0), "{text}");
    assert_eq!(sample(&text, "movan_account_login_duration_seconds_count"), Some(2.0), "{text}");
    assert_eq!(sample(&text, "movan_account_sync_nodes"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "movan_account_sync_node_capacity{node=\"sync-1\"}"), Some(100.0), "{text}");
    assert_eq!(sample(&text, "movan_account_argon2_queue_depth"), Some(0.0), "{text}");
    assert!(
        text.lines().all(|l| l.starts_with('#') || l.is_empty() || l.starts_with("movan_")),
        "every name starts with movan_"
    );
}
