//! Match history: reports from sync nodes (through the `report_match` handler) and `GET /v1/me/matches`.
#![allow(clippy::unwrap_used)]

mod common;

use account_server::AppState;
use account_server::rpc::{self, MatchReport, ReportError, Stored};
use axum::Router;
use axum::http::{Method, StatusCode};
use common::*;
use serde_json::{Value, json};

fn report(match_id: &str, players: &[&Value], ended_at: f64) -> MatchReport {
    MatchReport {
        match_id: match_id.into(),
        room_id: "room-1".into(),
        players: players.iter().map(|uid| text(uid).to_owned()).collect(),
        frame_count: 123,
        duration_secs: 6.15,
        end_reason: movan_protocol::EndReason::AllLeft,
        results: None,
        started_at: ended_at - 6.15,
        ended_at,
        first_desync_frame: None,
    }
}

/// Registers and logs in `name`; returns the uid and the access token.
async fn player(app: &Router, name: &str) -> (Value, String) {
    let uid = register(app, name, "correct horse").await.body["uid"].clone();
    let token = login(app, name, "correct horse").await.body["token"].as_str().unwrap().to_owned();
    (uid, token)
}

async fn page(app: &Router, token: &str, query: &str) -> Reply {
    with_bearer(app, Method::GET, &format!("/v1/me/matches{query}"), token).await
}

fn ids(reply: &Reply) -> Vec<&str> {
    reply.body["matches"].as_array().unwrap().iter().map(|m| m["match_id"].as_str().unwrap()).collect()
}

async fn store(state: &AppState, report: MatchReport) {
    assert_eq!(rpc::report_match(state, "sync-1", report).await.unwrap(), Stored { stored: true });
}

#[tokio::test]
async fn matches_are_listed_newest_first_a_page_at_a_time() {
    let (app, state, _, _dir) = fresh_with(|_| {}).await;
    let (alice, alice_token) = player(&app, "alice").await;
    let (bob, bob_token) = player(&app, "bob").await;
    let base = 1_700_000_000.0;
    for i in 0..5 {
        store(&state, report(&format!("m{i}"), &[&alice, &bob], base + f64::from(i) * 10.0)).await;
    }
    store(&state, report("solo", &[&bob], base + 100.0)).await;

    let all = page(&app, &alice_token, "").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(ids(&all), ["m4", "m3", "m2", "m1", "m0"]);
    assert_eq!(all.body["next"], Value::Null);
    assert_eq!(
        all.body["matches"][0],
        json!({
            "match_id": "m4", "room_id": "room-1", "players": [alice, bob], "frame_count": 123,
            "duration_secs": 6.15, "end_reason": "all_left", "results": null,
            "started_at": base + 40.0 - 6.15, "ended_at": base + 40.0, "first_desync_frame": null,
            "node_id": "sync-1",
        })
    );

    let first = page(&app, &alice_token, "?limit=2").await;
    assert_eq!(ids(&first), ["m4", "m3"]);
    let next = first.body["next"].as_str().unwrap();
    let second = page(&app, &alice_token, &format!("?limit=2&before={next}")).await;
    assert_eq!(ids(&second), ["m2", "m1"]);
    let next = second.body["next"].as_str().unwrap();
    let third = page(&app, &alice_token, &format!("?before={next}&limit=2")).await;
    assert_eq!(ids(&third), ["m0"]);
    assert_eq!(third.body["next"], Value::Null);

    assert_eq!(ids(&page(&app, &bob_token, "?limit=1").await), ["solo"]);
}

#[tokio::test]
async fn pages_hold_20_by_default_and_100_at_most() {
    let (app, state, _, _dir) = fresh_with(|_| {}).await;
    let (alice, token) = player(&app, "alice").await;
    for i in 0..101 {
        store(&state, report(&format!("m{i:03}"), &[&alice], 1_700_000_000.0 + f64::from(i))).await;
    }
    let default = page(&app, &token, "").await;
    assert_eq!(ids(&default).len(), 20);
    assert_eq!(ids(&default)[0], "m100");
    let most = page(&app, &token, "?limit=100").await;
    assert_eq!(ids(&most).len(), 100);
    let rest = page(&app, &token, &format!("?limit=100&before={}", most.body["next"].as_str().unwrap())).await;
    assert_eq!((ids(&rest), &rest.body["next"]), (vec!["m000"], &Value::Null));

    for query in ["?limit=0", "?limit=101", "?limit=-1", "?limit=ten", "?before=not-a-cursor", "?before="] {
        assert_error(&page(&app, &token, query).await, StatusCode::BAD_REQUEST, "bad_request");
    }
    let anonymous = post(&app, "/v1/me/matches", json!({})).await;
    assert_error(&anonymous, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_error(&page(&app, "not.a.jwt", "").await, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn a_match_reported_twice_is_stored_once_and_bad_reports_are_refused() {
    let (app, state, _, _dir) = fresh_with(|_| {}).await;
    let (alice, token) = player(&app, "alice").await;
    let results = json!({"1001": {"rank": 1}});
    let first = MatchReport {
        results: Some(results.clone()),
        first_desync_frame: Some(60),
        ..report("m1", &[&alice], 1_700_000_010.0)
    };
    store(&state, first.clone()).await;
    store(&state, MatchReport { room_id: "elsewhere".into(), ..first.clone() }).await;
    let listed = page(&app, &token, "").await;
    assert_eq!(ids(&listed), ["m1"]);
    assert_eq!(listed.body["matches"][0]["room_id"], "room-1");
    assert_eq!(listed.body["matches"][0]["results"], results);
    assert_eq!(listed.body["matches"][0]["first_desync_frame"], 60);

    let bad = [
        MatchReport { match_id: String::new(), ..first.clone() },
        MatchReport { players: vec![], ..first.clone() },
        MatchReport { players: vec![String::new()], ..first.clone() },
        MatchReport { ended_at: f64::NAN, ..first.clone() },
        MatchReport { duration_secs: -1.0, ..first.clone() },
        MatchReport { first_desync_frame: Some(123), ..first.clone() },
        MatchReport { room_id: "x".repeat(129), ..first.clone() },
    ];
    for report in bad {
        let e = rpc::report_match(&state, "sync-1", report.clone()).await.unwrap_err();
        assert!(matches!(e, ReportError::Invalid(_)), "{report:?} gave {e}");
    }
}
