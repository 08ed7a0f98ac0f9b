//! 2. Bad requests on an authenticated connection: an error each, and the connection stays usable.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_after_authentication_get_errors_and_keep_the_connection() {
    // Unlimited message rate: this test is about the answers (the rate limit has its own test).
    let cluster = start_cluster(&[("max_messages_per_sec", "0")]).await;
    let by = Bystanders::start(&cluster, "calm-2").await;
    let account = AccountClient::new(&cluster.account_url);
    let me = login(&account, "mallory-2").await;
    let victim = login(&account, "victim-2").await;
    let uid = me.uid.as_str();
    let tok = me.token.as_str();
    let ping = json!({"proto": "ping", "timestamp": 1.0});
    let ping_body = body(uid, None, ping.clone());
    let env = |extra: &str| raw(&format!(r#"{{"uid":"{uid}","extra_data":{extra}}}"#));
    let action =
        |ts: &str, data: &str| env(&format!(r#"{{"proto":"sync_action","timestamp":{ts},"action_data":{data}}}"#));
    let reload = |data: &str| env(&format!(r#"{{"proto":"sync_request_reload_frames","data":{data}}}"#));
    let enter = |data: &str| env(&format!(r#"{{"proto":"room_enter","data":{data}}}"#));
    let expired = forge(&cluster, uid, "forged", now_secs() - 600, |_| {});
    let (sa, rl, re) = (Some("sync_action"), Some("sync_request_reload_frames"), Some("room_enter"));
    let ping_proto = Some("ping");

    // (kind, sealed body, code, the error's `proto`): null unless the body is JSON with a string at extra_data.proto.
    let cases: Vec<(&str, Vec<u8>, ErrorCode, Option<&str>)> = vec![
        ("empty body", vec![], ErrorCode::BadJson, None),
        ("non-UTF-8 body", vec![0xff, 0xfe, 0x00], ErrorCode::BadJson, None),
        ("body that is not JSON", raw("hello"), ErrorCode::BadJson, None),
        ("truncated JSON", ping_body[..ping_body.len() - 2].to_vec(), ErrorCode::BadJson, None),
        ("JSON with trailing garbage", [ping_body.clone(), raw("xyz")].concat(), ErrorCode::BadJson, None),
        ("two JSON objects in one frame", [ping_body.clone(), ping_body.clone()].concat(), ErrorCode::BadJson, None),
        ("bare NaN timestamp", env(r#"{"proto":"ping","timestamp":NaN}"#), ErrorCode::BadJson, None),
        ("bare Infinity timestamp", env(r#"{"proto":"ping","timestamp":Infinity}"#), ErrorCode::BadJson, None),
        ("bare -Infinity timestamp", env(r#"{"proto":"ping","timestamp":-Infinity}"#), ErrorCode::BadJson, None),
        ("timestamp 1e400", env(r#"{"proto":"ping","timestamp":1e400}"#), ErrorCode::BadJson, ping_proto),
        ("negative timestamp", action("-1", "{}"), ErrorCode::BadMessage, sa),
        // extra_data as a whole cannot be read here; a second, lenient reading still finds its proto.
        ("string timestamp", action(r#""soon""#, "{}"), ErrorCode::BadMessage, sa),
        (
            "sync_action without timestamp",
            env(r#"{"proto":"sync_action","action_data":{}}"#),
            ErrorCode::BadMessage,
            sa,
        ),
        ("sync_action without action_data", env(r#"{"proto":"sync_action","timestamp":1}"#), ErrorCode::BadMessage, sa),
        ("action_data an array", action("1", "[1,2]"), ErrorCode::BadMessage, sa),
        ("action_data a string", action("1", r#""x""#), ErrorCode::BadMessage, sa),
        ("action_data nested 33 deep", action("1", &nested(33)), ErrorCode::BadMessage, sa),
        ("action_data nested 400 deep", action("1", &nested(400)), ErrorCode::BadMessage, sa),
        ("start_frame 2^64", reload(r#"{"start_frame":18446744073709551616}"#), ErrorCode::BadMessage, rl),
        ("start_frame 1e400", reload(r#"{"start_frame":1e400}"#), ErrorCode::BadJson, rl),
        ("negative start_frame", reload(r#"{"start_frame":-1}"#), ErrorCode::BadMessage, rl),
        ("start_frame as string", reload(r#"{"start_frame":"0"}"#), ErrorCode::BadMessage, rl),
        ("start_frame as float", reload(r#"{"start_frame":3.0}"#), ErrorCode::BadMessage, rl),
        ("start_frame nested", reload(&format!(r#"{{"start_frame":{}}}"#, nested(300))), ErrorCode::BadMessage, rl),
        ("reload without data", env(r#"{"proto":"sync_request_reload_frames"}"#), ErrorCode::BadMessage, rl),
        ("reload data as string", reload(r#""0""#), ErrorCode::BadMessage, rl),
        ("reload data as array (positional fields)", reload("[0]"), ErrorCode::BadMessage, rl),
        ("uid as number", raw(r#"{"uid":1001,"extra_data":{"proto":"ping"}}"#), ErrorCode::BadMessage, ping_proto),
        ("uid as array", raw(r#"{"uid":["1001"],"extra_data":{"proto":"ping"}}"#), ErrorCode::BadMessage, ping_proto),
        ("uid null", raw(r#"{"uid":null,"extra_data":{"proto":"ping"}}"#), ErrorCode::BadMessage, ping_proto),
        ("uid empty", raw(r#"{"uid":"","extra_data":{"proto":"ping"}}"#), ErrorCode::BadMessage, ping_proto),
        ("uid of 65 bytes", body(&"9".repeat(65), None, ping.clone()), ErrorCode::BadMessage, ping_proto),
        ("missing uid", raw(r#"{"extra_data":{"proto":"ping"}}"#), ErrorCode::BadMessage, ping_proto),
        (
            "token as number",
            raw(&format!(r#"{{"uid":"{uid}","token":7,"extra_data":{{"proto":"ping"}}}}"#)),
            ErrorCode::BadMessage,
            ping_proto,
        ),
        ("extra_data as string", env(r#""ping""#), ErrorCode::BadMessage, None),
        ("extra_data as array (positional fields)", env(r#"["ping"]"#), ErrorCode::BadMessage, None),
        (
            "envelope as array (positional fields)",
            raw(&format!(r#"["{uid}",null,{{"proto":"ping"}}]"#)),
            ErrorCode::BadMessage,
            None,
        ),
        ("missing extra_data", raw(&format!(r#"{{"uid":"{uid}"}}"#)), ErrorCode::BadMessage, None),
        ("proto as number", env(r#"{"proto":7}"#), ErrorCode::BadMessage, None),
        ("missing proto", env(r#"{"timestamp":1}"#), ErrorCode::BadMessage, None),
        ("unknown proto", env(r#"{"proto":"dance"}"#), ErrorCode::UnknownProto, Some("dance")),
        ("empty proto", env(r#"{"proto":""}"#), ErrorCode::UnknownProto, Some("")),
        ("room_enter data as string", enter(r#""lobby""#), ErrorCode::BadMessage, re),
        ("room_enter data as array (positional fields)", enter(r#"["lobby"]"#), ErrorCode::BadMessage, re),
        ("room_id as number", enter(r#"{"room_id":7}"#), ErrorCode::BadMessage, re),
        (
            "room_id of 65 characters",
            enter(&format!(r#"{{"room_id":"{}"}}"#, "r".repeat(65))),
            ErrorCode::BadMessage,
            re,
        ),
        ("room_id with a space", enter(r#"{"room_id":"no spaces"}"#), ErrorCode::BadMessage, re),
        ("room_id with a slash", enter(r#"{"room_id":"../etc"}"#), ErrorCode::BadMessage, re),
        ("room_id non-ASCII", enter(r#"{"room_id":"salle-é"}"#), ErrorCode::BadMessage, re),
        ("room_id empty", enter(r#"{"room_id":""}"#), ErrorCode::BadMessage, re),
        ("empty object", raw("{}"), ErrorCode::BadMessage, None),
        ("JSON array at top level", raw("[1,2,3]"), ErrorCode::BadMessage, None),
        ("JSON string at top level", raw(r#""ping""#), ErrorCode::BadMessage, None),
        (
            "duplicate key in the envelope",
            raw(&format!(r#"{{"uid":"{uid}","uid":"{uid}","extra_data":{{"proto":"ping"}}}}"#)),
            ErrorCode::BadMessage,
            ping_proto,
        ),
        ("duplicate key in extra_data", env(r#"{"proto":"ping","proto":"ping"}"#), ErrorCode::BadMessage, None),
        ("uid of another user", body(&victim.uid, None, ping.clone()), ErrorCode::UidMismatch, Some("ping")),
        ("token of another user", body(uid, Some(&victim.token), ping.clone()), ErrorCode::UidMismatch, Some("ping")),
        (
            "expired token on a later message",
            body(uid, Some(&expired), ping.clone()),
            ErrorCode::TokenExpired,
            Some("ping"),
        ),
        ("garbage token on a later message", body(uid, Some("x.y.z"), ping.clone()), ErrorCode::BadToken, Some("ping")),
        (
            "forged token on a later message",
            body(uid, Some(&swap_signature(tok, &victim.token)), ping.clone()),
            ErrorCode::BadToken,
            Some("ping"),
        ),
    ];
    let mut c = connect(&me).await;
    let mut wrong = Vec::new();
    for (n, (kind, bytes, code, proto)) in cases.iter().enumerate() {
        assert!(bytes.len() + TAG <= MAX_FRAME, "{kind}: test body too large");
        let errors = answer(&mut c, bytes, n).await;
        let got: Vec<(ErrorCode, Option<&str>)> = errors.iter().map(|e| (e.code, e.proto.as_deref())).collect();
        if got != [(*code, *proto)] {
            wrong.push(format!(
                "{kind}: want {code:?} (proto {proto:?}), got {got:?} {:?} <- {}",
                errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
                String::from_utf8_lossy(bytes)
            ));
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases got another answer:\n{}", wrong.len(), cases.len(), wrong.join("\n"));

    // Odd but valid: answered normally.
    let deep_unknown = format!(r#"{{"uid":"{uid}","junk":{},"extra_data":{{"proto":"ping"}}}}"#, nested(400));
    let accepted: Vec<(&str, Vec<u8>)> = vec![
        ("unknown fields at every level", env(r#"{"proto":"ping","x":{"y":[1,2]},"data":{"z":null}}"#)),
        ("nesting 400 deep in an unknown field", raw(&deep_unknown)),
        ("1e400 in an unknown field", env(r#"{"proto":"ping","junk":1e400}"#)),
        ("the connection's own token again", body(uid, Some(tok), ping.clone())),
        (
            "whitespace around everything",
            raw(&format!(" \n\t{{ \"uid\" : \"{uid}\" , \"extra_data\" : {{ \"proto\" : \"ping\" }} }} \n")),
        ),
    ];
    for (kind, bytes) in &accepted {
        c.send_raw_body(bytes).await.unwrap();
        expect_pong(&mut c, kind).await;
    }

    // Requests in the wrong state.
    let in_no_room: Vec<(&str, Vec<u8>)> = vec![
        ("room_leave in no room", env(r#"{"proto":"room_leave"}"#)),
        ("room_prepare in no room", env(r#"{"proto":"room_prepare"}"#)),
        ("sync_action in no room", action("1", "{}")),
        ("reload in no room", reload(r#"{"start_frame":0}"#)),
    ];
    for (kind, bytes) in &in_no_room {
        assert_eq!(codes_of(&answer(&mut c, bytes, 1000).await), [ErrorCode::NotInRoom], "{kind}");
    }
    let got = codes_of(&answer(&mut c, &enter(r#"{"room_id":"calm-2"}"#), 1001).await);
    assert_eq!(got, [ErrorCode::RoomInGame], "room_enter into a running game");
    c.enter_room(Some("lonely")).await.unwrap();
    c.wait_for(|e| matches!(e, ServerEvent::RoomState(s) if s.room_id == "lonely"), WAIT).await.unwrap();
    for (kind, bytes, code) in [
        ("room_enter while in that room", enter(r#"{"room_id":"lonely"}"#), ErrorCode::AlreadyInRoom),
        ("room_enter of another room while in a room", enter(r#"{"room_id":"other"}"#), ErrorCode::AlreadyInRoom),
        ("quick match while in a room", enter("null"), ErrorCode::AlreadyInRoom),
        ("sync_action in a waiting room", action("1", "{}"), ErrorCode::GameNotRunning),
        ("reload in a waiting room", reload(r#"{"start_frame":0}"#), ErrorCode::GameNotRunning),
    ] {
        assert_eq!(codes_of(&answer(&mut c, &bytes, 1002).await), [code], "{kind}");
    }
    c.leave_room().await.unwrap();
    let got = codes_of(&answer(&mut c, &env(r#"{"proto":"room_leave"}"#), 1003).await);
    assert_eq!(got, [ErrorCode::NotInRoom], "room_leave twice");

    // After all of it, the connection still works.
    c.ping().await.unwrap();
    expect_pong(&mut c, "after every bad request").await;
    by.finish().await;
}
