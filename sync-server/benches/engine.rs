//! Micro-benchmarks of the sync server's hot paths: ticking frames, serving reloads, verifying tokens, comparing
//! checksums, feeding spectators.
//!
//! The engine is sans-IO, so it is driven here exactly as `engine/tests.rs` does: made-up `Instant`s, no sockets.
//!
//! `cargo bench -p sync-server --bench engine`

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use movan_protocol::{Request, TokenClaims};
use serde_json::value::RawValue;
use sync_server::auth::TokenVerifier;
use sync_server::engine::Identity;
use sync_server::room::default_rooms;
use sync_server::{ConnId, Engine, EngineConfig, Output};

const UNIX0: f64 = 1_700_000_000.0;
const PLAYERS: u64 = 4;
const ACTION_DATA: &str = r#"{"move":[1,0],"seq":42}"#;

/// An engine with `rooms` running games of [`PLAYERS`] players each, all started at `t0`. Player `n` (uid `u{n}`)
/// is on connection `n`; room `r` holds players `r * PLAYERS + 1 ..= r * PLAYERS + PLAYERS`.
struct Game {
    engine: Engine,
    conns: Vec<ConnId>,
}

impl Game {
    fn new(rooms: u64, config: EngineConfig) -> Self {
        let t0 = Instant::now();
        let mut engine = Engine::new(config, Box::new(default_rooms()), t0, UNIX0, 7);
        let conns: Vec<ConnId> = (1..=rooms * PLAYERS).map(ConnId).collect();
        for conn in &conns {
            let identity = Identity { uid: format!("u{}", conn.0), sid: "s1".into(), iat: 100 };
            engine.connect(*conn, &identity, t0);
            let room_id = format!("r{}", (conn.0 - 1) / PLAYERS);
            engine.handle(*conn, Request::RoomEnter { room_id: Some(room_id) }, None, t0);
        }
        for conn in &conns {
            engine.handle(*conn, Request::RoomPrepare, None, t0);
        }
        assert_eq!(engine.stats().games as u64, rooms, "every room started its game");
        let mut game = Self { engine, conns };
        game.drain();
        game
    }

    /// Every player sends its action just before the next deadline, then the frame ticks: returns the number of
    /// `Output::Send`s (one frame per player).
    fn frame(&mut self, actions: Vec<Request>) -> usize {
        self.act_and_tick(actions);
        let mut sends = 0;
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Send { bytes, .. } => {
                    black_box(bytes);
                    sends += 1;
                }
                other => panic!("unexpected output {other:?}"),
            }
        }
        sends
    }

    /// [`Self::frame`] once, outside the measurement, checking that it does what the benchmark claims: every player
    /// gets its room's `sync_frame` holding one action per player, the players of a room sharing one `Bytes`.
    fn check_frame(&mut self) {
        self.act_and_tick(actions(self.conns.len()));
        let mut wires = Vec::new();
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Send { bytes, .. } => wires.push(bytes),
                other => panic!("unexpected output {other:?}"),
            }
        }
        assert_eq!(wires.len(), self.conns.len(), "one frame per player");
        for room in wires.chunks(PLAYERS as usize) {
            let body = std::str::from_utf8(&room[0]).expect("UTF-8");
            assert!(body.starts_with(r#"{"proto":"sync_frame""#), "{body}");
            assert_eq!(body.matches(r#""uid""#).count(), PLAYERS as usize, "{body}");
            assert!(room.iter().all(|w| w.as_ptr() == room[0].as_ptr()), "one shared buffer per room");
        }
    }

    fn act_and_tick(&mut self, actions: Vec<Request>) {
        let deadline = self.engine.poll_timeout().expect("a game is running");
        let sent_at = deadline - Duration::from_millis(1);
        let ts = self.engine.unix_time(sent_at);
        for (conn, action) in self.conns.iter().zip(actions) {
            self.engine.handle(*conn, action, Some(ts), sent_at);
        }
        self.engine.handle_timeout(deadline);
    }

    fn drain(&mut self) {
        while self.engine.poll_output().is_some() {}
    }
}

/// `n` `sync_action`s, one per player, ready to hand to the engine.
fn actions(n: usize) -> Vec<Request> {
    let raw = RawValue::from_string(ACTION_DATA.to_owned()).expect("valid JSON");
    (0..n).map(|_| Request::SyncAction { action_data: raw.clone() }).collect()
}

fn tick_4p_frame(c: &mut Criterion) {
    // Replays on, as by default, with room for every frame the benchmark makes (the default 16 MiB would fill and
    // stop recording part way through).
    let recording = EngineConfig { replay_max_bytes: 1 << 30, replay_memory_bytes: 1 << 30, ..EngineConfig::default() };
    for (name, config) in [
        ("tick_4p_frame", recording),
        ("tick_4p_frame_no_replay", EngineConfig { replay_max_bytes: 0, ..EngineConfig::default() }),
    ] {
        let mut game = Game::new(1, config);
        game.check_frame();
        let players = game.conns.len();
        c.bench_function(name, |b| {
            b.iter_batched(|| actions(players), |actions| game.frame(actions), BatchSize::SmallInput);
        });
    }
}

fn tick_1000_rooms(c: &mut Criterion) {
    // A short history: 1000 rooms at the default 24,000 frames would hold gigabytes once the benchmark ran long
    // enough; pushing into a full history costs the same whatever its length.
    let config = EngineConfig {
        max_rooms: 1000,
        quick_match_reserved_percent: 0,
        history_frames: 256,
        ..EngineConfig::default()
    };
    let mut game = Game::new(1000, config);
    game.check_frame();
    let players = game.conns.len();
    let mut group = c.benchmark_group("tick_1000_rooms");
    group.sample_size(20);
    group.bench_function("4p_each", |b| {
        b.iter_batched(|| actions(players), |actions| game.frame(actions), BatchSize::PerIteration);
    });
    group.finish();
}

fn reload_1000_frames(c: &mut Criterion) {
    let mut game = Game::new(1, EngineConfig::default());
    for _ in 0..1000 {
        game.frame(actions(PLAYERS as usize));
    }
    let conn = game.conns[0];
    let now = game.engine.poll_timeout().expect("a game is running");
    let reload = |game: &mut Game| {
        game.engine.handle(conn, Request::ReloadFrames { start_frame: 0 }, None, now);
        let Some(Output::Reload { reload, .. }) = game.engine.poll_output() else {
            panic!("expected a reload");
        };
        reload.map(|chunk| chunk.len()).sum::<usize>()
    };
    let bytes = reload(&mut game);
    assert!(bytes > 1000 * 300, "1000 frames of 4 actions: {bytes} bytes");
    let mut group = c.benchmark_group("reload_1000_frames");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("4p", |b| {
        b.iter(|| reload(&mut game));
    });
    group.finish();
}

/// The 4 players' `sync_checksum`s for one frame (agreeing), the last of which completes the comparison.
fn checksum_round_4p(c: &mut Criterion) {
    let config = EngineConfig { checksum_interval: 1, ..EngineConfig::default() };
    let mut game = Game::new(1, config);
    let conns = game.conns.clone();
    let round = |game: &mut Game, frame: u64| {
        let now = game.engine.poll_timeout().expect("a game is running") - Duration::from_millis(1);
        for conn in &conns {
            let hash = "9f2c4e01a7b3d855".to_owned();
            game.engine.handle(*conn, Request::Checksum { frame, hash }, None, now);
        }
        let mut sent = 0;
        while let Some(out) = game.engine.poll_output() {
            black_box(out);
            sent += 1;
        }
        sent
    };
    game.frame(actions(PLAYERS as usize));
    assert_eq!(round(&mut game, 0), 0, "agreeing checksums get no answer");
    let mut frame = 0;
    c.bench_function("checksum_round_4p", |b| {
        // Only the 4 reports are timed; the frame they are about ticks between rounds.
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                game.frame(actions(PLAYERS as usize));
                frame += 1;
                let start = Instant::now();
                black_box(round(&mut game, frame));
                total += start.elapsed();
            }
            total
        });
    });
}

/// One frame of a 4-player room watched by 100 spectators: the frame goes to 104 connections.
fn tick_4p_100_spectators(c: &mut Criterion) {
    let mut game = Game::new(1, EngineConfig { max_spectators: 100, ..EngineConfig::default() });
    let t0 = game.engine.poll_timeout().expect("a game is running") - Duration::from_millis(1);
    for n in 0..100 {
        let conn = ConnId(10_000 + n);
        let identity = Identity { uid: format!("s{n}"), sid: "s1".into(), iat: 100 };
        game.engine.connect(conn, &identity, t0);
        game.engine.handle(conn, Request::RoomSpectate { room_id: "r0".into() }, None, t0);
    }
    while let Some(out) = game.engine.poll_output() {
        if let Output::Reload { reload, .. } = out {
            black_box(reload.count());
        }
    }
    assert_eq!(game.frame(actions(PLAYERS as usize)), 104, "4 players and 100 spectators get the frame");
    c.bench_function("tick_4p_100_spectators", |b| {
        b.iter_batched(|| actions(PLAYERS as usize), |actions| game.frame(actions), BatchSize::SmallInput);
    });
}

/// A full frame: 64 players in one room, 16 actions each (`sync.max_actions_per_player`), 1024 in all
/// (`sync.max_pending_actions`): the per-action limit checks, then the tick that orders and broadcasts them.
fn tick_1024_actions(c: &mut Criterion) {
    let players = 64u64;
    let config = EngineConfig { max_players: 64, history_frames: 256, ..EngineConfig::default() };
    let t0 = Instant::now();
    let mut engine = Engine::new(config, Box::new(default_rooms()), t0, UNIX0, 7);
    for n in 1..=players {
        let identity = Identity { uid: format!("u{n}"), sid: "s1".into(), iat: 100 };
        engine.connect(ConnId(n), &identity, t0);
        engine.handle(ConnId(n), Request::RoomEnter { room_id: Some("big".into()) }, None, t0);
    }
    for n in 1..=players {
        engine.handle(ConnId(n), Request::RoomPrepare, None, t0);
    }
    while engine.poll_output().is_some() {}
    let raw = RawValue::from_string(ACTION_DATA.to_owned()).expect("valid JSON");
    let frame = |engine: &mut Engine| {
        let deadline = engine.poll_timeout().expect("a game is running");
        let sent_at = deadline - Duration::from_millis(1);
        let ts = engine.unix_time(sent_at);
        for _ in 0..16 {
            for n in 1..=players {
                engine.handle(ConnId(n), Request::SyncAction { action_data: raw.clone() }, Some(ts), sent_at);
            }
        }
        engine.handle_timeout(deadline);
        let mut sends = 0;
        while let Some(out) = engine.poll_output() {
            if let Output::Send { bytes, .. } = out {
                assert!(bytes.starts_with(br#"{"proto":"sync_frame""#), "no action was refused");
                sends += 1;
            }
        }
        sends
    };
    assert_eq!(frame(&mut engine), players as usize);
    c.bench_function("tick_1024_actions", |b| b.iter(|| frame(&mut engine)));
}

fn verify_token(c: &mut Criterion) {
    let sk = SigningKey::from_bytes(&[42; 32]);
    let private = sk.to_pkcs8_pem(LineEnding::LF).expect("PKCS#8 PEM");
    let public = sk.verifying_key().to_public_key_pem(LineEnding::LF).expect("SPKI PEM");
    let signer = EncodingKey::from_ed_pem(private.as_bytes()).expect("Ed25519 private key");
    let verifier = TokenVerifier::from_pem(public.as_bytes(), "movan-account", "movan-sync").expect("public key");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    let claims = TokenClaims {
        sub: "1001".into(),
        sid: "5f0c2a9e7b1d4c3a8e6f".into(),
        iss: "movan-account".into(),
        aud: "movan-sync".into(),
        iat: now,
        exp: now + 24 * 3600,
        name: "alice".into(),
    };
    let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &signer).expect("signs");
    c.bench_function("verify_token", |b| {
        b.iter(|| verifier.verify(black_box(&token)).expect("valid token"));
    });
}

criterion_group!(
    benches,
    tick_4p_frame,
    tick_1000_rooms,
    reload_1000_frames,
    verify_token,
    checksum_round_4p,
    tick_4p_100_spectators,
    tick_1024_actions
);
criterion_main!(benches);
