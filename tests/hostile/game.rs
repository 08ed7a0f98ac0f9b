//! 3. A running game: wrong-state requests, lying timestamps, action floods, reload ranges.

use super::*;

/// A player of the attackers' game: its connection, the frames it got (checked gap-free), nothing else kept.
struct Player {
    c: SyncClient,
    log: FrameLog,
    markers: usize,
}

impl Player {
    fn new(c: SyncClient) -> Self {
        Self { c, log: FrameLog::new(), markers: 0 }
    }

    fn uid(&self) -> String {
        self.c.uid().to_owned()
    }

    /// Handles one event: frames go to the log; errors are returned; the connection must stay open.
    fn take(&mut self, event: Option<ServerEvent>, what: &str) -> Option<ServerEvent> {
        match event {
            Some(ServerEvent::Frame(f)) => {
                self.log.push(f).unwrap_or_else(|e| panic!("{what}: {e}"));
                None
            }
            Some(other) => Some(other),
            None => panic!("{what}: connection closed ({:?})", self.c.events().close_reason()),
        }
    }

    /// Seals every body in `bodies` and a marker ping into ONE write (so they reach the server together), and returns
    /// the errors that answered them: everything before the marker's pong.
    async fn burst(&mut self, bodies: &[Vec<u8>]) -> Vec<ErrorBody> {
        self.markers += 1;
        let stamp = 5_000_000.0 + self.markers as f64;
        let mut wire = Vec::new();
        for b in bodies {
            wire.extend_from_slice(&self.c.seal_raw_body(b).await.unwrap());
        }
        let marker = body(self.c.uid(), None, json!({"proto": "ping", "timestamp": stamp}));
        wire.extend_from_slice(&self.c.seal_raw_body(&marker).await.unwrap());
        self.c.send_raw_bytes(&wire).await.unwrap();
        let mut errors = Vec::new();
        let deadline = Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.c.next_event()).await.expect("no pong for the marker");
            match self.take(event, "burst") {
                Some(ServerEvent::Pong(p)) if p.timestamp == Some(stamp) => return errors,
                Some(ServerEvent::Error(e)) => errors.push(e),
                _ => {}
            }
        }
    }

    /// Reads until the log holds frames `0..n`; any error is a failure.
    async fn frames_until(&mut self, n: u64) {
        let deadline = Instant::now() + WAIT;
        while self.log.next_frame() < n {
            let event = tokio::time::timeout_at(deadline, self.c.next_event()).await.expect("frames stopped");
            if let Some(ServerEvent::Error(e)) = self.take(event, "frames") {
                panic!("unexpected error {e:?}");
            }
        }
    }

    /// How many actions of this game have exactly `action_data`, byte for byte.
    fn count_raw(&self, action_data: &str) -> usize {
        self.log.frames().iter().flat_map(|f| &f.actions).filter(|a| a.action_data.get() == action_data).count()
    }

    /// (frame, action) for every action of this game whose `action_data` has `key` equal to `value`.
    fn find(&self, key: &str, value: &Value) -> Vec<(u64, movan_client::FrameAction)> {
        let mut out = Vec::new();
        for f in self.log.frames() {
            for a in &f.actions {
                let v: Result<Value, _> = serde_json::from_str(a.action_data.get());
                if v.is_ok_and(|v| v.get(key) == Some(value)) {
                    out.push((f.frame_count, a.clone()));
                }
            }
        }
        out
    }
}

fn action_body(uid: &str, ts: Value, action_data: &str) -> Vec<u8> {
    raw(&format!(
        r#"{{"uid":"{uid}","extra_data":{{"proto":"sync_action","timestamp":{ts},"action_data":{action_data}}}}}"#
    ))
}

/// Sends bursts built by `make(attempt)` until one is answered by exactly `want` `limit_exceeded` errors naming `key`
/// (a burst can straddle a tick, and then fewer are refused); returns the attempt that did.
async fn flood_until_refused(
    players: &mut [&mut Player],
    make: impl Fn(usize, usize) -> Vec<Vec<u8>>,
    want: usize,
    key: &str,
) -> usize {
    for attempt in 0..5 {
        let mut errors = Vec::new();
        if let [a, b] = players {
            let (ma, mb) = (make(attempt, 0), make(attempt, 1));
            let (x, y) = tokio::join!(a.burst(&ma), b.burst(&mb));
            errors.extend(x);
            errors.extend(y);
        } else {
            errors.extend(players[0].burst(&make(attempt, 0)).await);
        }
        for e in &errors {
            assert_eq!(e.code, ErrorCode::LimitExceeded, "{key}: {}", e.message);
            assert!(e.message.contains(key), "the refusal names {key}: {}", e.message);
        }
        assert!(errors.len() <= want, "{key}: {} refusals, at most {want} expected", errors.len());
        if errors.len() == want {
            return attempt;
        }
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    panic!("{key}: every burst straddled a tick");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_game_refuses_what_breaks_its_limits_and_clamps_timestamps() {
    let cluster = start_cluster(&[
        ("history_secs", "1"),
        ("max_actions_per_player", "4"),
        ("max_pending_actions", "6"),
        ("max_pending_bytes", "1024"),
        ("max_rooms", "2"),
        ("idle_timeout_secs", "30"),
        ("max_messages_per_sec", "0"),
    ])
    .await;
    let by = Bystanders::start(&cluster, "calm-3").await;
    let (_, clients, t0, interval) = start_game(&cluster, "arena", &["mal-3a", "mal-3b"]).await;
    let mut clients = clients.into_iter();
    let mut a = Player::new(clients.next().unwrap());
    let mut b = Player::new(clients.next().unwrap());
    let (ua, ub) = (a.uid(), b.uid());
    let env = |uid: &str, extra: &str| raw(&format!(r#"{{"uid":"{uid}","extra_data":{extra}}}"#));

    // Requests in the wrong state, by a player in a running game and by one in no room (rooms: 2 of max 2).
    let account = AccountClient::new(&cluster.account_url);
    let loner = login(&account, "mal-3c").await;
    let mut c = Player::new(connect(&loner).await);
    let uc = c.uid();
    for (kind, who, bytes, code) in [
        ("room_prepare during the game", 0, env(&ua, r#"{"proto":"room_prepare"}"#), ErrorCode::RoomInGame),
        (
            "room_enter of its own room during the game",
            0,
            env(&ua, r#"{"proto":"room_enter","data":{"room_id":"arena"}}"#),
            ErrorCode::AlreadyInRoom,
        ),
        ("quick match while in a game", 1, env(&ub, r#"{"proto":"room_enter"}"#), ErrorCode::AlreadyInRoom),
        (
            "room_enter into a running game",
            2,
            env(&uc, r#"{"proto":"room_enter","data":{"room_id":"arena"}}"#),
            ErrorCode::RoomInGame,
        ),
        (
            "room_enter creating a room over max_rooms",
            2,
            env(&uc, r#"{"proto":"room_enter","data":{"room_id":"one-too-many"}}"#),
            ErrorCode::TooManyRooms,
        ),
        ("quick match over max_rooms", 2, env(&uc, r#"{"proto":"room_enter","data":{}}"#), ErrorCode::TooManyRooms),
        ("room_leave after refused room_enters", 2, env(&uc, r#"{"proto":"room_leave"}"#), ErrorCode::NotInRoom),
    ] {
        let p = match who {
            0 => &mut a,
            1 => &mut b,
            _ => &mut c,
        };
        let got = codes_of(&p.burst(&[bytes]).await);
        assert_eq!(got, [code], "{kind}");
    }

    // Lying clocks: every action lands, its timestamp clamped into its frame's window [S + n·I, receive time].
    let now = unix_now();
    let stamps: Vec<(&str, Value, bool)> = vec![
        // (kind, timestamp, clamped up to the window start)
        ("timestamp zero", json!(0.0), true),
        ("timestamp as integer zero", json!(0), true),
        ("timestamp 1e-300", json!(1e-300), true),
        ("timestamp an hour in the past", json!(now - 3600.0), true),
        ("timestamp a day in the future", json!(now + 86400.0), false),
        ("timestamp 1e308", json!(1e308), false),
        ("timestamp 2^64", json!(18446744073709551616.0), false),
        ("honest timestamp", json!(now), false),
    ];
    for (k, (kind, ts, _)) in stamps.iter().enumerate() {
        let errors = a.burst(&[action_body(&ua, ts.clone(), &format!(r#"{{"ts_case":{k}}}"#))]).await;
        assert!(errors.is_empty(), "{kind}: {errors:?}");
        // One action per frame or so, far from max_actions_per_player.
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    // action_data is relayed byte for byte: nested exactly MAX_ACTION_DEPTH (32) deep, odd whitespace, duplicate
    // keys, a number at the edge of f64 (docs/protocol.md §4.5).
    let opaque = [
        ("action_data nested exactly 32 deep", format!(r#"{{"opaque":0,"a":{}1{}}}"#, "[".repeat(31), "]".repeat(31))),
        ("action_data with 1e300 and duplicate keys", r#"{"opaque":1, "big": 1e300 ,"dup":1,"dup":2}"#.to_owned()),
    ];
    // ...but what a client could not parse is refused: a number no f64 holds, a lone surrogate.
    for (kind, data) in [("action_data with 1e400 inside", r#"{"big":1e400}"#), ("lone surrogate", r#"{"s":"\ud800"}"#)]
    {
        let errors = a.burst(&[action_body(&ua, json!(unix_now()), data)]).await;
        assert!(
            matches!(&errors[..], [e] if e.code == ErrorCode::BadMessage && e.message.contains("plain JSON")),
            "{kind}: {errors:?}"
        );
    }
    for (kind, data) in &opaque {
        let errors = a.burst(&[action_body(&ua, json!(unix_now()), data)]).await;
        assert!(errors.is_empty(), "{kind}: {errors:?}");
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let deadline = Instant::now() + WAIT;
    while (0..stamps.len()).any(|k| a.find("ts_case", &json!(k)).is_empty())
        || opaque.iter().any(|(_, data)| a.count_raw(data) == 0)
    {
        assert!(Instant::now() < deadline, "not every action landed");
        let n = a.log.next_frame() + 1;
        a.frames_until(n).await;
    }
    for (k, (kind, ts, clamped_up)) in stamps.iter().enumerate() {
        let found = a.find("ts_case", &json!(k));
        assert_eq!(found.len(), 1, "{kind}: lands in exactly one frame");
        let (n, action) = &found[0];
        let (lo, hi) = (t0 + *n as f64 * interval, t0 + (*n + 1) as f64 * interval);
        let got = action.timestamp;
        assert!(got >= lo - 1e-3 && got <= hi + 1e-3, "{kind} ({ts}): {got} outside frame {n}'s window [{lo}, {hi}]");
        if *clamped_up {
            assert!((got - lo).abs() < 1e-3, "{kind} ({ts}): clamped up to the window start {lo}, got {got}");
        }
    }
    for (kind, data) in &opaque {
        // Found by its exact bytes: relayed byte for byte, exactly once.
        assert_eq!(a.count_raw(data), 1, "{kind}: relayed byte for byte, exactly once");
    }
    for f in a.log.frames() {
        let ts: Vec<f64> = f.actions.iter().map(|x| x.timestamp).collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "frame {}: timestamps never decrease: {ts:?}", f.frame_count);
    }

    // Action floods: refused with limit_exceeded naming the limit, the connection stays open, and exactly the
    // accepted actions land.
    let uid_a = ua.clone();
    let attempt = flood_until_refused(
        &mut [&mut a],
        |attempt, _| {
            (0..6)
                .map(|k| action_body(&uid_a, json!(unix_now()), &format!(r#"{{"flood":{attempt},"k":{k}}}"#)))
                .collect()
        },
        2,
        "sync.max_actions_per_player",
    )
    .await;
    let n = a.log.next_frame() + 3;
    a.frames_until(n).await;
    assert_eq!(a.find("flood", &json!(attempt)).len(), 4, "6 sent, 2 refused: 4 landed");

    let uids = [ua.clone(), ub.clone()];
    let attempt = flood_until_refused(
        &mut [&mut a, &mut b],
        |attempt, who| {
            (0..4)
                .map(|k| action_body(&uids[who], json!(unix_now()), &format!(r#"{{"room":{attempt},"k":{k}}}"#)))
                .collect()
        },
        2,
        "sync.max_pending_actions",
    )
    .await;
    let n = a.log.next_frame() + 3;
    a.frames_until(n).await;
    assert_eq!(a.find("room", &json!(attempt)).len(), 6, "8 sent by two players, 2 refused: 6 landed");

    let pad = "x".repeat(600);
    let attempt = flood_until_refused(
        &mut [&mut a],
        |attempt, _| {
            (0..2)
                .map(|_| action_body(&uid_a, json!(unix_now()), &format!(r#"{{"big":{attempt},"pad":"{pad}"}}"#)))
                .collect()
        },
        1,
        "sync.max_pending_bytes",
    )
    .await;
    let n = a.log.next_frame() + 3;
    a.frames_until(n).await;
    assert_eq!(a.find("big", &json!(attempt)).len(), 1, "2 sent, 1 refused: 1 landed");
    for f in a.log.frames() {
        assert!(
            f.actions.len() <= 6,
            "frame {} holds {} actions (max_pending_actions 6)",
            f.frame_count,
            f.actions.len()
        );
        let mine = f.actions.iter().filter(|x| x.uid == ua).count();
        assert!(mine <= 4, "frame {} holds {mine} actions of one player (max_actions_per_player 4)", f.frame_count);
        let bytes: usize = f.actions.iter().map(|x| x.action_data.get().len()).sum();
        assert!(bytes <= 1024, "frame {} holds {bytes} bytes of actions (max_pending_bytes 1024)", f.frame_count);
    }

    // Reloads out of range: history_secs = 1 keeps the newest 20 frames.
    a.frames_until(30).await;
    for (kind, start, code) in [
        ("reload from frame 0, before the oldest kept", 0, ErrorCode::HistoryExpired),
        ("reload from u64::MAX", u64::MAX, ErrorCode::BadFrameRange),
        ("reload from far past the newest", a.log.next_frame() + 1000, ErrorCode::BadFrameRange),
    ] {
        let err = a.c.reload(start, WAIT).await.expect_err(kind);
        assert_eq!(err.server_code(), Some(code), "{kind}: {err}");
    }
    let from = a.log.next_frame() - 5;
    let reloaded = a.c.reload(from, WAIT).await.unwrap();
    assert!(reloaded.len() >= 5, "a reload within the history works");
    for f in reloaded {
        a.log.push(f).expect("reloaded frames are byte-identical to the live ones");
    }

    // The attackers' own game ticked on as well, identically for both.
    let n = a.log.next_frame();
    b.frames_until(n).await;
    for k in 0..n as usize {
        assert_eq!(a.log.frames()[k].raw.get(), b.log.frames()[k].raw.get(), "frame {k} differs between players");
    }
    by.finish().await;
}
