//! 1. Framing, first messages, stalling, sealed-frame attacks: all close the connection.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_and_first_message_attacks_close_the_connection() {
    let cluster = start_cluster(&[]).await;
    let by = Bystanders::start(&cluster, "calm-1").await;
    let account = AccountClient::new(&cluster.account_url);
    let me = login(&account, "mallory-1").await;
    let victim = login(&account, "victim-1").await;
    let uid = me.uid.as_str();
    let ping = json!({"proto": "ping", "timestamp": 1.0});
    let first = body(uid, Some(&me.token), ping.clone());

    // Raw framing before authentication, then EOF: (kind, bytes, expected errors before the close).
    let framing: Vec<(&str, Vec<u8>, Vec<ErrorCode>)> = vec![
        ("truncated length prefix (1 byte) then EOF", vec![0], vec![]),
        ("truncated length prefix (2 bytes) then EOF", vec![0, 0], vec![]),
        ("truncated length prefix (3 bytes) then EOF", vec![0, 0, 1], vec![]),
        ("length prefix promising more than is sent, then EOF", prefixed(first.len() as u32, &first[..20]), vec![]),
        ("length 0 (empty body)", prefixed(0, b""), vec![ErrorCode::BadJson]),
        ("length 0xFFFFFFFF (4 GiB - 1), no body", vec![0xff; 4], vec![ErrorCode::FrameTooLarge]),
        ("length max_frame_bytes + 1, no body", prefixed(MAX_FRAME as u32 + 1, b""), vec![ErrorCode::FrameTooLarge]),
        (
            "length max_frame_bytes + 1 with a valid body",
            prefixed(MAX_FRAME as u32 + 1, &[first.clone(), vec![b' '; MAX_FRAME + 1 - first.len()]].concat()),
            vec![ErrorCode::FrameTooLarge],
        ),
    ];
    for (kind, bytes, want) in &framing {
        let events = raw_exchange(&cluster, bytes, true).await;
        assert_eq!(&codes(&events), want, "{kind}: {events:?}");
        assert!(events.iter().all(|e| matches!(e, ServerEvent::Error(_))), "{kind}: only the error: {events:?}");
    }
    // frame_too_large is decided on the prefix alone: the connection is closed without waiting for a body or EOF.
    let events = raw_exchange(&cluster, &[0x00, 0x10, 0x00, 0x00], false).await;
    assert_eq!(codes(&events), vec![ErrorCode::FrameTooLarge], "1 MiB prefix, connection left open: {events:?}");

    // Malformed or lying first messages: (kind, body, code); each gets its error, then the close.
    let expired = forge(&cluster, uid, "forged", now_secs() - 600, |_| {});
    let unknown_session = forge(&cluster, uid, "no-such-session", now_secs() + 600, |_| {});
    let wrong_aud = forge(&cluster, uid, "forged", now_secs() + 600, |c| c.aud = "someone-else".into());
    let wrong_iss = forge(&cluster, uid, "forged", now_secs() + 600, |c| c.iss = "evil-issuer".into());
    let tok = me.token.as_str();
    let first_messages: Vec<(&str, Vec<u8>, ErrorCode)> = vec![
        ("non-UTF-8 body", vec![0xc3, 0x28, 0xff, 0xfe], ErrorCode::BadJson),
        ("body that is not JSON", raw("GET / HTTP/1.1\r\n\r\n"), ErrorCode::BadJson),
        ("JSON with trailing garbage", [first.clone(), raw("}garbage")].concat(), ErrorCode::BadJson),
        ("truncated JSON", first[..first.len() - 3].to_vec(), ErrorCode::BadJson),
        (
            "bare NaN timestamp",
            raw(&format!(r#"{{"uid":"{uid}","token":"{tok}","extra_data":{{"proto":"ping","timestamp":NaN}}}}"#)),
            ErrorCode::BadJson,
        ),
        (
            "bare Infinity timestamp",
            raw(&format!(r#"{{"uid":"{uid}","token":"{tok}","extra_data":{{"proto":"ping","timestamp":Infinity}}}}"#)),
            ErrorCode::BadJson,
        ),
        (
            "timestamp 1e400",
            raw(&format!(r#"{{"uid":"{uid}","token":"{tok}","extra_data":{{"proto":"ping","timestamp":1e400}}}}"#)),
            ErrorCode::BadJson,
        ),
        ("empty object", raw("{}"), ErrorCode::BadMessage),
        ("JSON array at top level", raw(&format!(r#"["{uid}","{tok}"]"#)), ErrorCode::BadMessage),
        (
            "JSON array at top level with a valid token (positional envelope)",
            raw(&format!(r#"["{uid}","{tok}",{{"proto":"ping"}}]"#)),
            ErrorCode::BadMessage,
        ),
        ("JSON null", raw("null"), ErrorCode::BadMessage),
        ("missing proto", body(uid, Some(tok), json!({"timestamp": 1.0})), ErrorCode::BadMessage),
        ("unknown proto", body(uid, Some(tok), json!({"proto": "format_c"})), ErrorCode::UnknownProto),
        (
            "uid as number",
            serde_json::to_vec(&json!({"uid": 1001, "token": tok, "extra_data": ping})).unwrap(),
            ErrorCode::BadMessage,
        ),
        (
            "token as number",
            serde_json::to_vec(&json!({"uid": uid, "token": 12345, "extra_data": ping})).unwrap(),
            ErrorCode::BadMessage,
        ),
        (
            "duplicate uid key",
            raw(&format!(r#"{{"uid":"{uid}","uid":"{uid}","token":"{tok}","extra_data":{{"proto":"ping"}}}}"#)),
            ErrorCode::BadMessage,
        ),
        (
            "action_data nested 33 deep",
            raw(&format!(
                r#"{{"uid":"{uid}","token":"{tok}","extra_data":{{"proto":"sync_action","timestamp":1.0,"action_data":{}}}}}"#,
                nested(33)
            )),
            ErrorCode::BadMessage,
        ),
        ("first message without token", body(uid, None, ping.clone()), ErrorCode::Unauthenticated),
        (
            "token null",
            serde_json::to_vec(&json!({"uid": uid, "token": null, "extra_data": ping})).unwrap(),
            ErrorCode::Unauthenticated,
        ),
        ("garbage token", body(uid, Some("not.a.jwt"), ping.clone()), ErrorCode::BadToken),
        (
            "forged token (claims of one login, signature of another)",
            body(uid, Some(&swap_signature(tok, &victim.token)), ping.clone()),
            ErrorCode::BadToken,
        ),
        ("token for another audience", body(uid, Some(&wrong_aud), ping.clone()), ErrorCode::BadToken),
        ("token from another issuer", body(uid, Some(&wrong_iss), ping.clone()), ErrorCode::BadToken),
        ("expired token", body(uid, Some(&expired), ping.clone()), ErrorCode::TokenExpired),
        ("token of another user (uid mismatch)", body(uid, Some(&victim.token), ping.clone()), ErrorCode::UidMismatch),
        (
            "validly signed token of an unknown session",
            body(uid, Some(&unknown_session), ping.clone()),
            ErrorCode::SessionRevoked,
        ),
    ];
    for (kind, bytes, code) in &first_messages {
        assert!(bytes.len() <= MAX_FRAME, "{kind}: test body too large");
        let events = raw_exchange(&cluster, &prefixed(bytes.len() as u32, bytes), false).await;
        assert_eq!(codes(&events), vec![*code], "{kind}: {} -> {events:?}", String::from_utf8_lossy(bytes));
    }

    // Exactly max_frame_bytes is accepted (a first message padded with spaces), and so is a sealed frame whose
    // ciphertext and tag are exactly max_frame_bytes; one byte more is frame_too_large and a close.
    let mut c = SyncClient::connect_unauthenticated(&cluster.sync_addr, uid, None, me.decode_session_key().unwrap())
        .await
        .unwrap();
    let padded = [first.clone(), vec![b' '; MAX_FRAME - first.len()]].concat();
    c.send_raw_body(&padded).await.unwrap();
    await_handshake(&c).await;
    c.ping().await.unwrap();
    expect_pong(&mut c, "first message of exactly max_frame_bytes").await;
    expect_pong(&mut c, "the sealed ping after it").await;
    let ping_body = body(uid, None, ping.clone());
    let sealed_max = [ping_body.clone(), vec![b' '; MAX_FRAME - TAG - ping_body.len()]].concat();
    c.send_raw_body(&sealed_max).await.unwrap();
    expect_pong(&mut c, "sealed frame of exactly max_frame_bytes").await;
    c.send_raw_body(&[sealed_max.clone(), vec![b' ']].concat()).await.unwrap();
    let events = c.wait_closed(WAIT).await.unwrap();
    assert_eq!(codes(&events), vec![ErrorCode::FrameTooLarge], "sealed frame one byte over: {events:?}");

    // After authentication, an over-size prefix still closes at once.
    let mut c = connect(&me).await;
    c.send_raw_bytes(&[0xff; 4]).await.unwrap();
    let events = c.wait_closed(WAIT).await.unwrap();
    assert_eq!(codes(&events), vec![ErrorCode::FrameTooLarge], "authenticated, 0xFFFFFFFF prefix: {events:?}");

    // Sealed-frame attacks close without a word: (kind, how to build the bytes from a connected client).
    for kind in [
        "replayed sealed frame",
        "tampered sealed frame",
        "unsealed (plaintext) frame after the handshake",
        "sealed frame shorter than its tag",
        "length 0 after the handshake",
    ] {
        let mut c = connect(&me).await;
        let b = body(uid, None, ping.clone());
        match kind {
            "replayed sealed frame" => {
                let captured = c.seal_raw_body(&b).await.unwrap();
                c.send_raw_bytes(&captured).await.unwrap();
                expect_pong(&mut c, "the first copy counts").await;
                c.send_raw_bytes(&captured).await.unwrap();
            }
            "tampered sealed frame" => {
                let mut sealed = c.seal_raw_body(&b).await.unwrap().to_vec();
                let at = sealed.len() / 2;
                sealed[at] ^= 0x20;
                c.send_raw_bytes(&sealed).await.unwrap();
            }
            "unsealed (plaintext) frame after the handshake" => {
                c.send_raw_bytes(&prefixed(b.len() as u32, &b)).await.unwrap();
            }
            "sealed frame shorter than its tag" => c.send_raw_bytes(&prefixed(5, b"{}{}{")).await.unwrap(),
            _ => c.send_raw_bytes(&prefixed(0, b"")).await.unwrap(),
        }
        let events = c.wait_closed(WAIT).await.unwrap_or_else(|e| panic!("{kind}: not closed: {e}"));
        assert!(codes(&events).is_empty(), "{kind}: closed without an error: {events:?}");
        assert!(!events.iter().any(|e| matches!(e, ServerEvent::Pong(_)) && kind != "replayed sealed frame"));
    }

    // Stalling before authentication: each gets `timeout` and a close (when: `connection::tests`, with made-up time).
    let silent = async {
        let mut c = bare(&cluster).await;
        c.wait_closed(WAIT).await.unwrap()
    };
    let slow_loris = async {
        // A valid first message, one byte every 300 ms: it would take minutes to complete.
        let mut c = bare(&cluster).await;
        let wire = prefixed(first.len() as u32, &first);
        let sender = c.sender().clone();
        let trickle = tokio::spawn(async move {
            for b in wire {
                if sender.send_raw_bytes(&[b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        let events = c.wait_closed(WAIT).await.unwrap();
        trickle.abort();
        events
    };
    let partial_frame = async {
        // Half a frame, then silence.
        let mut c = bare(&cluster).await;
        c.send_raw_bytes(&prefixed(first.len() as u32, &first[..10])).await.unwrap();
        c.wait_closed(WAIT).await.unwrap()
    };
    let no_sealed_frame = async {
        // A valid first message, but never the sealed frame that proves the session key.
        let mut c = SyncClient::connect_unauthenticated(
            &cluster.sync_addr,
            uid,
            Some(&me.token),
            me.decode_session_key().unwrap(),
        )
        .await
        .unwrap();
        c.ping().await.unwrap();
        c.wait_closed(WAIT).await.unwrap()
    };
    let (silent, slow_loris, partial_frame, no_sealed_frame) =
        tokio::join!(silent, slow_loris, partial_frame, no_sealed_frame);
    for (kind, events) in [
        ("silent connection", silent),
        ("slow-loris first frame (1 byte / 300 ms)", slow_loris),
        ("half a frame, then silence", partial_frame),
        ("first message but no sealed frame", no_sealed_frame),
    ] {
        assert_eq!(codes(&events), vec![ErrorCode::Timeout], "{kind}: {events:?}");
        assert!(events.len() == 1, "{kind}: nothing but the timeout: {events:?}");
    }

    by.finish().await;
}
