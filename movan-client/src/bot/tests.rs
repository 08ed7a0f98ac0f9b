#![allow(clippy::unwrap_used)]

use super::*;
use movan_protocol::server::{ActionRef, encode_frame, parse_server_message};
use serde_json::value::RawValue;

fn raw(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_owned()).unwrap()
}

fn frame(n: u64, actions: &[(&str, &str)]) -> Frame {
    let data: Vec<Box<RawValue>> = actions.iter().map(|(_, a)| raw(a)).collect();
    let refs: Vec<ActionRef<'_>> =
        actions.iter().zip(&data).map(|((uid, _), d)| ActionRef { uid, timestamp: 1.0, action_data: d }).collect();
    match parse_server_message(&encode_frame(n, &refs).body).unwrap() {
        ServerEvent::Frame(f) => f,
        other => panic!("{other:?}"),
    }
}

#[test]
fn own_actions_count_once_per_frame_even_when_the_frame_repeats() {
    let mut run = BotRun::default();
    run.tally.sent = 2;
    let f0 = frame(0, &[("me", r#"{"seq":0,"bot":0}"#), ("other", r#"{"seq":0,"bot":1}"#)]);
    let f1 = frame(1, &[("me", r#"{"seq":1,"bot":0}"#)]);
    for f in [f0.clone(), f1, f0] {
        let pushed = run.log.push(f.clone()).unwrap();
        run.count_own(&f, pushed, "me", &ActionTemplate::default());
    }
    let report = summarize(1, vec![run]);
    assert_eq!((report.actions_seen_own, report.missing, report.duplicated), (2, 0, 0));
    assert!(!report.encrypted, "no bot connected");
    // No room id: the bot never started a game, which alone is not counted as an error here.
    assert_eq!(report.rooms, 0);
    assert!(report.passed());
}

#[test]
fn members_of_a_room_must_hold_the_same_bytes() {
    let mut a = BotRun { room_id: Some("r".into()), ..BotRun::default() };
    let mut b = BotRun { room_id: Some("r".into()), ..BotRun::default() };
    a.log.push(frame(0, &[])).unwrap();
    a.log.push(frame(1, &[("x", "{}")])).unwrap();
    b.log.push(frame(0, &[])).unwrap();
    b.log.push(frame(1, &[("y", "{}")])).unwrap();
    let report = summarize(2, vec![a, b]);
    assert_eq!(report.rooms, 1);
    assert!(!report.encrypted);
    assert_eq!(report.desyncs, 1);
    assert!(!report.passed());
}

#[tokio::test]
async fn a_gap_is_counted_and_filled_by_a_reload() {
    use crate::sync::test_server::{T, pair};
    use movan_protocol::server::encode_reload_chunk;

    let (client, mut server) = pair().await;
    let (sender, mut events) = client.split();
    let mut run = BotRun::default();
    run.tally.sent = 2;
    let frames =
        [frame(0, &[]), frame(1, &[("1001", r#"{"seq":0,"bot":0}"#)]), frame(2, &[("1001", r#"{"seq":1,"bot":0}"#)])];
    let config = BotConfig::new("http://unused");
    accept_frame(&config, frames[0].clone(), &sender, &mut events, &mut run).await.unwrap();
    let serve = async {
        let req = server.recv_json().await;
        assert_eq!(req["extra_data"]["data"]["start_frame"], 1);
        let raw: Vec<bytes::Bytes> = frames[1..].iter().map(|f| f.raw.get().to_owned().into()).collect();
        server.send(&movan_protocol::codec::frame_bytes(&encode_reload_chunk(1, 3, true, &raw))).await;
    };
    let (filled, ()) = tokio::join!(
        tokio::time::timeout(T, accept_frame(&config, frames[2].clone(), &sender, &mut events, &mut run)),
        serve
    );
    filled.unwrap().unwrap();
    assert_eq!(run.log.next_frame(), 3);
    let report = summarize(1, vec![run]);
    assert_eq!((report.gaps, report.missing, report.duplicated), (1, 0, 0));
    assert_eq!(report.actions_seen_own, 2, "the live copy of frame 2 is not counted again");
    assert!(!report.passed(), "a gap fails the run even when filled");
}

#[test]
fn a_game_the_room_ended_reports_its_reason_and_results_and_forgives_the_tail() {
    let over = |room: &str| GameOver {
        room_id: room.into(),
        reason: EndReason::EndedByRoom,
        frame_count: 2,
        results: Some(serde_json::json!({"winner": "me"})),
    };
    let mut run = BotRun { room_id: Some("r".into()), game_over: Some(over("r")), ..BotRun::default() };
    run.tally.sent = 3;
    run.tally.ended_early = true;
    let f0 = frame(0, &[("me", r#"{"seq":0,"bot":0}"#)]);
    let pushed = run.log.push(f0.clone()).unwrap();
    run.count_own(&f0, pushed, "me", &ActionTemplate::default());
    let report = summarize(1, vec![run]);
    assert_eq!((report.missing, report.unconfirmed), (0, 2));
    assert_eq!(report.game_overs, BTreeMap::from([("ended_by_room".to_owned(), 1)]));
    assert_eq!(report.results["r"], serde_json::json!({"winner": "me"}));
    assert!(report.passed());
}

#[test]
fn encrypted_only_when_every_connected_bot_was_sealed() {
    let bot = |encrypted| BotRun { encrypted, ..BotRun::default() };
    assert!(summarize(2, vec![bot(Some(true)), bot(None)]).encrypted, "a bot that never connected");
    assert!(!summarize(2, vec![bot(Some(true)), bot(Some(false))]).encrypted);
    assert!(!summarize(1, vec![bot(None)]).encrypted);
}

#[test]
fn config_validation() {
    let mut c = BotConfig::new("http://127.0.0.1:2026");
    assert!(c.validate().is_ok());
    assert_eq!(c.room_id(5), "bot-room-1");
    c.prefix = "has space".into();
    assert!(c.validate().is_err());
    c.prefix = "bot".into();
    c.actions_per_sec = f64::NAN;
    assert!(c.validate().is_err());
}
