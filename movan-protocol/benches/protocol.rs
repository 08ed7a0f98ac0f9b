//! Micro-benchmarks of the protocol hot paths: parsing a client message, encoding a frame, sealing and opening it.
//!
//! `cargo bench -p movan-protocol --bench protocol`

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use movan_protocol::crypto::{SALT_LEN, SessionKey, client_side, server_side};
use movan_protocol::parse_client_message;
use movan_protocol::server::{ActionRef, encode_frame};
use serde_json::value::RawValue;

const ACTION_BODY: &str = r#"{"uid":"1001","extra_data":{"proto":"sync_action","timestamp":1700000000.123,"action_data":{"move":[1,0],"seq":42}}}"#;
const ACTION_DATA: &str = r#"{"move":[1,0],"seq":42}"#;

/// A token shaped like the account server's (EdDSA JWT, about 300 bytes); the parser does not check it.
fn jwt_like_token() -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"EdDSA"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        br#"{"sub":"1001","sid":"5f0c2a9e7b1d4c3a8e6f","iss":"movan-account","aud":"movan-sync","iat":1700000000,"exp":1700003600,"name":"alice"}"#,
    );
    let signature = URL_SAFE_NO_PAD.encode([0x5au8; 64]);
    format!("{header}.{claims}.{signature}")
}

fn parse_client_action(c: &mut Criterion) {
    let first = format!(
        r#"{{"uid":"1001","token":"{}","extra_data":{{"proto":"room_enter","timestamp":1700000000.0,"data":{{"room_id":"lobby-7"}}}}}}"#,
        jwt_like_token()
    );
    let mut group = c.benchmark_group("parse_client_action");
    for (name, body) in [("sync_action", ACTION_BODY), ("first_with_token", first.as_str())] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), body.as_bytes(), |b, body| {
            b.iter(|| parse_client_message(black_box(body)).expect("valid message"));
        });
    }
    group.finish();
}

/// The uids (`1001..`) and timestamps of `n` actions, one per player.
fn players(n: usize) -> (Vec<String>, Vec<f64>) {
    ((0..n).map(|i| (1001 + i).to_string()).collect(), (0..n).map(|i| 1_700_000_000.0 + i as f64 / 1000.0).collect())
}

fn encode_frames(c: &mut Criterion) {
    let raw = RawValue::from_string(ACTION_DATA.to_owned()).expect("valid JSON");
    let mut group = c.benchmark_group("encode_frame");
    for n in [0usize, 4, 16] {
        let (uids, stamps) = players(n);
        let refs: Vec<ActionRef<'_>> =
            uids.iter().zip(&stamps).map(|(uid, ts)| ActionRef { uid, timestamp: *ts, action_data: &raw }).collect();
        group.bench_with_input(BenchmarkId::from_parameter(n), &refs, |b, refs| {
            b.iter(|| encode_frame(black_box(12_345), black_box(refs)));
        });
    }
    group.finish();
}

/// About 350 bytes: the body of a real 3-player `sync_frame` message.
fn frame_body() -> Vec<u8> {
    let raw = RawValue::from_string(ACTION_DATA.to_owned()).expect("valid JSON");
    let refs: Vec<ActionRef<'_>> = ["1001", "1002", "1003"]
        .iter()
        .map(|uid| ActionRef { uid, timestamp: 1_700_000_000.123, action_data: &raw })
        .collect();
    encode_frame(12_345, &refs).body.to_vec()
}

fn seal_and_open(c: &mut Criterion) {
    let key = SessionKey::from_bytes([7; 32]);
    let salt = [9u8; SALT_LEN];
    let body = frame_body();

    let mut group = c.benchmark_group("seal_frame");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function(BenchmarkId::from_parameter(body.len()), |b| {
        let (mut sealer, _) = server_side(&key, &salt);
        b.iter(|| sealer.seal(black_box(&body)).expect("seals"));
    });
    group.finish();

    let mut group = c.benchmark_group("open_frame");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function(BenchmarkId::from_parameter(body.len()), |b| {
        // The opener expects consecutive counters: the setup seals the frames of a batch in order and the routine
        // opens them in that same order, so every open is the next frame of one long session.
        let (mut sealer, _) = server_side(&key, &salt);
        let (_, mut opener) = client_side(&key, &salt);
        b.iter_batched(
            || sealer.seal(&body).expect("seals"),
            |sealed| opener.open(&sealed[4..]).expect("opens the next frame"),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

/// The AEAD alone, ring (what the crate seals with) against the RustCrypto crate (the tests' oracle), at the sizes
/// of a ping, an action and a 3-player frame.
fn aead_ring_vs_rustcrypto(c: &mut Criterion) {
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    let key = SessionKey::from_bytes([7; 32]);
    let salt = [9u8; SALT_LEN];
    let okm =
        movan_protocol::crypto::derive_direction_key(&key, &salt, movan_protocol::crypto::Direction::ServerToClient);
    let rustcrypto = chacha20poly1305::ChaCha20Poly1305::new_from_slice(okm.as_slice()).expect("32 bytes");
    let mut group = c.benchmark_group("aead_seal");
    for len in [64usize, 128, 348] {
        let plain = vec![b'x'; len];
        group.bench_with_input(BenchmarkId::new("ring", len), &plain, |b, plain| {
            let (mut sealer, _) = server_side(&key, &salt);
            let mut out = bytes::BytesMut::with_capacity(len + 64);
            b.iter(|| {
                out.clear();
                sealer.seal_body_into(black_box(plain), &mut out).expect("seals");
            });
        });
        group.bench_with_input(BenchmarkId::new("rustcrypto", len), &plain, |b, plain| {
            let mut counter = 0u64;
            let mut buf = Vec::with_capacity(len + 16);
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(black_box(plain));
                let nonce = movan_protocol::crypto::nonce_bytes(counter).into();
                counter += 1;
                rustcrypto.encrypt_in_place_detached(&nonce, &[0, 0, 1, 0], &mut buf).expect("seals")
            });
        });
    }
    group.finish();
}

/// Recording one 4-player frame in a replay (docs/replay.md): the copy into the block, and its share of the block's
/// zstd compression. Each frame differs (frame number, timestamps, a counter in the input), as in a game.
fn replay_record(c: &mut Criterion) {
    use movan_protocol::replay::{ReplayLimits, ReplayWriter};
    let uids = ["1001", "1002", "1003", "1004"];
    let bodies: Vec<Vec<u8>> = (0..4096u64)
        .map(|n| {
            let data: Vec<Box<RawValue>> = (0..4)
                .map(|p| {
                    let text =
                        format!(r#"{{"seq":{},"move":[0.7071,-0.7071],"aim":[0.25,0.75],"buttons":{p}}}"#, n * 4 + p);
                    RawValue::from_string(text).expect("valid JSON")
                })
                .collect();
            let actions: Vec<ActionRef<'_>> = (0..4)
                .map(|p| ActionRef {
                    uid: uids[p],
                    timestamp: 1_700_000_000.0 + n as f64 * 0.05 + p as f64 * 0.001,
                    action_data: &data[p],
                })
                .collect();
            encode_frame(n, &actions).body.to_vec()
        })
        .collect();
    let mut writer = ReplayWriter::new(ReplayLimits { max_bytes: usize::MAX });
    let mut n = 0usize;
    let mut group = c.benchmark_group("replay_record");
    group.throughput(Throughput::Bytes(bodies[0].len() as u64));
    group.bench_function("4p_frame", |b| {
        b.iter(|| {
            writer.push_frame(black_box(&bodies[n % bodies.len()]));
            n += 1;
            if n.is_multiple_of(100_000) {
                // A long game's worth; start another so the benchmark's memory stays bounded.
                writer = ReplayWriter::new(ReplayLimits { max_bytes: usize::MAX });
            }
        });
    });
    group.finish();
    black_box(writer.bytes());
}

criterion_group!(benches, parse_client_action, encode_frames, seal_and_open, aead_ring_vs_rustcrypto, replay_record);
criterion_main!(benches);
