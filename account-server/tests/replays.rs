//! Replays: uploads from sync nodes (through the `replay_chunk` handler), retention, and
//! `GET /v1/matches/{match_id}/replay` for players and admins.
#![allow(clippy::unwrap_used)]

mod common;

use account_server::AppState;
use account_server::replays::replay_chunk;
use account_server::rpc::{self, MatchReport};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use movan_protocol::replay::{GameSummary, Replay, ReplayLimits, ReplayWriter};
use movan_protocol::rpc::{ChunkStored, ReplayChunk, codes};
use movan_protocol::server::{ActionRef, encode_frame};
use serde_json::Value;
use tower::ServiceExt as _;

fn report(match_id: &str, players: &[String]) -> MatchReport {
    MatchReport {
        match_id: match_id.into(),
        room_id: "room-1".into(),
        players: players.to_vec(),
        frame_count: 600,
        duration_secs: 30.0,
        end_reason: movan_protocol::EndReason::AllLeft,
        results: None,
        started_at: 1_700_000_000.0,
        ended_at: 1_700_000_030.0,
        first_desync_frame: None,
    }
}

/// A 600-frame replay of `match_id` whose frames each carry an action of the first player.
fn replay_file(match_id: &str, players: &[String]) -> Vec<u8> {
    let mut writer = ReplayWriter::new(ReplayLimits { max_bytes: 16 << 20 });
    for n in 0..600u64 {
        let data = serde_json::value::RawValue::from_string(format!("{{\"x\":{}}}", n * 7919 % 1000)).unwrap();
        let action = ActionRef { uid: &players[0], timestamp: 1_700_000_000.0 + n as f64 / 20.0, action_data: &data };
        writer.push_frame(&encode_frame(n, &[action]).body);
    }
    writer.finish(GameSummary {
        match_id: match_id.into(),
        room_id: "room-1".into(),
        players: players.to_vec(),
        seed: 7,
        frame_interval_ms: 50,
        checksum_interval: 60,
        started_at: 1_700_000_000.0,
        ended_at: 1_700_000_030.0,
        end_reason: movan_protocol::EndReason::AllLeft,
        results: None,
        first_desync_frame: None,
        game_frame_count: 600,
    })
}

/// Uploads `file` in chunks of `size` bytes from `node`; the last answer.
async fn upload(state: &AppState, node: &str, match_id: &str, file: &[u8], size: usize) -> ChunkStored {
    let mut last = None;
    for (i, piece) in file.chunks(size).enumerate() {
        let chunk = ReplayChunk {
            match_id: match_id.into(),
            offset: (i * size) as u64,
            total_len: file.len() as u64,
            data: STANDARD.encode(piece),
        };
        let reply = replay_chunk(state, node, chunk).await.unwrap();
        assert_eq!(reply.stored, (i + 1) * size >= file.len(), "chunk {i}");
        last = Some(reply);
    }
    last.unwrap()
}

/// GET with a bearer token: status, content type, body bytes.
async fn get_raw(app: &Router, path: &str, token: &str) -> (StatusCode, String, Vec<u8>) {
    let request = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).unwrap().to_str().unwrap().to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 20).await.unwrap();
    (status, content_type, bytes.to_vec())
}

async fn player(app: &Router, name: &str) -> (String, String) {
    let uid = text(&register(app, name, "correct horse").await.body["uid"]).to_owned();
    let token = login(app, name, "correct horse").await.body["token"].as_str().unwrap().to_owned();
    (uid, token)
}

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn players_and_admins_download_the_replay_byte_for_byte_and_as_json_lines() {
    let (app, state, _, _dir) = fresh_with(|c| c.account.admins = vec!["root".into()]).await;
    let (alice, alice_token) = player(&app, "alice").await;
    let (bob, _) = player(&app, "bob").await;
    let (_, eve_token) = player(&app, "eve").await;
    let (_, root_token) = player(&app, "root").await;
    let players = vec![alice.clone(), bob.clone()];
    rpc::report_match(&state, "sync-1", report("m1", &players)).await.unwrap();
    let file = replay_file("m1", &players);
    assert!(file.len() > 3000, "{} bytes", file.len());
    let last = upload(&state, "sync-1", "m1", &file, 1000).await;
    assert_eq!(last, ChunkStored { received: file.len() as u64, stored: true });
    // Sending it again stores nothing new and says it is stored.
    let again = ReplayChunk {
        match_id: "m1".into(),
        offset: 0,
        total_len: file.len() as u64,
        data: STANDARD.encode(&file[..10]),
    };
    assert!(replay_chunk(&state, "sync-1", again).await.unwrap().stored);

    let (status, content_type, body) = get_raw(&app, "/v1/matches/m1/replay", &alice_token).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "application/vnd.movan.replay"));
    assert_eq!(body, file, "the file exactly as the sync server sent it");
    let (status, _, body) = get_raw(&app, "/v1/matches/m1/replay", &root_token).await;
    assert_eq!((status, body.len()), (StatusCode::OK, file.len()), "admins may download any replay");

    let (status, content_type, body) = get_raw(&app, "/v1/matches/m1/replay?format=jsonl", &alice_token).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "application/x-ndjson"));
    let text = String::from_utf8(body).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 601, "the header, then 600 frames");
    let header: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!((header["match_id"].as_str(), header["frame_count"].as_u64()), (Some("m1"), Some(600)));
    let replay = Replay::parse(file.clone()).unwrap();
    for (line, frame) in lines[1..].iter().zip(replay.frames()) {
        assert_eq!(line.as_bytes(), frame.unwrap().1.as_slice());
    }

    let (status, _, body) = get_raw(&app, "/v1/matches/m1/replay", &eve_token).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::NOT_FOUND, "replay_not_found"));
    let (status, _, body) = get_raw(&app, "/v1/matches/nope/replay", &alice_token).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::NOT_FOUND, "replay_not_found"));
    let (status, _, body) = get_raw(&app, "/v1/matches/m1/replay?format=xml", &alice_token).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
    let (status, _, _) = get_raw(&app, "/v1/matches/m1/replay", "not-a-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn only_the_reporting_node_may_upload_and_limits_hold() {
    let (app, state, _, _dir) = fresh_with(|c| {
        c.account.replay_max_bytes = 8192;
        c.account.replay_keep_count = 1;
    })
    .await;
    let (alice, alice_token) = player(&app, "alice").await;
    let players = vec![alice.clone()];
    let file = replay_file("m1", &players);
    let chunk = |id: &str, file: &[u8]| ReplayChunk {
        match_id: id.into(),
        offset: 0,
        total_len: file.len() as u64,
        data: STANDARD.encode(&file[..100]),
    };
    let unreported = replay_chunk(&state, "sync-1", chunk("m1", &file)).await.unwrap_err();
    assert_eq!(unreported.code(), codes::UNKNOWN_MATCH);
    rpc::report_match(&state, "sync-1", report("m1", &players)).await.unwrap();
    let other_node = replay_chunk(&state, "sync-2", chunk("m1", &file)).await.unwrap_err();
    assert_eq!(other_node.code(), codes::UNKNOWN_MATCH);
    let mut big = file.clone();
    big.resize(8193, 0);
    assert_eq!(replay_chunk(&state, "sync-1", chunk("m1", &big)).await.unwrap_err().code(), codes::REPLAY_TOO_LARGE);
    let bad = ReplayChunk { data: "***".into(), ..chunk("m1", &file) };
    assert_eq!(replay_chunk(&state, "sync-1", bad).await.unwrap_err().code(), codes::REPLAY_OUT_OF_ORDER);

    upload(&state, "sync-1", "m1", &file, 4096).await;
    // account.replay_keep_count = 1: the next replay pushes this one out.
    rpc::report_match(&state, "sync-1", report("m2", &players)).await.unwrap();
    upload(&state, "sync-1", "m2", &replay_file("m2", &players), 4096).await;
    let (status, _, body) = get_raw(&app, "/v1/matches/m1/replay", &alice_token).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::NOT_FOUND, "replay_not_found"));
    assert!(String::from_utf8_lossy(&body).contains("retention"), "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = get_raw(&app, "/v1/matches/m2/replay", &alice_token).await;
    assert_eq!(status, StatusCode::OK);
}
