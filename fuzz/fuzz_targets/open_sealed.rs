//! Sealed frames (movan-protocol `crypto`): opening arbitrary bytes, and seal/open round trips with tampering.
//!
//! Keys come from the fixed session key 0x00..=0x1f and salt 0x20..=0x3f of docs/encryption.md's test vectors, so
//! the vector frames are valid seeds.
//!
//! Properties:
//! - opening the raw input as a frame body, in either direction, never panics and fails (`TooShort` exactly when the
//!   body is shorter than a tag, otherwise `Authentication`, the counter not moving) unless the body is a genuine
//!   sealed frame: whatever opens must be exactly what the peer's sealer produces for that plaintext;
//! - the same for the raw input as a stream of frames through `FrameCodec`: each frame that opens is the genuine
//!   frame for its position, and the first failure ends the stream as it ends a connection;
//! - for a sequence of plaintexts built by `arbitrary`: the wire frame is `[u32 BE len + 16][ciphertext][tag]`,
//!   `seal_into` batches are the concatenation of `seal` outputs, every frame opens back to its plaintext in both
//!   directions, a frame reflected to its sender's opener fails, and flipping any bits of one byte of one sealed frame
//!   (prefix included, read through the codec as a receiver would) makes it fail to open without moving the
//!   counter, after which the genuine frame still opens;
//! - every sealed body is byte-identical to the RustCrypto `chacha20poly1305` crate's sealing of the same plaintext
//!   (the independent oracle for the `ring` cipher the crate seals with).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use movan_protocol::FrameCodec;
use movan_protocol::codec::{DEFAULT_MAX_FRAME, LENGTH_PREFIX};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use movan_protocol::crypto::{
    CryptoError, Direction, Opener, SALT_LEN, Sealer, SessionKey, TAG_LEN, client_side, derive_direction_key,
    nonce_bytes, server_side,
};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    open_raw_body(data);
    open_raw_stream(data);
    if let Ok(session) = Session::arbitrary_take_rest(Unstructured::new(data)) {
        round_trip(&session);
    }
});

/// Plaintexts sealed in order, and one byte of one frame to tamper with.
#[derive(Debug, Arbitrary)]
struct Session {
    tamper_frame: u8,
    tamper_at: u16,
    tamper_mask: u8,
    plaintexts: Vec<Vec<u8>>,
}

fn key() -> SessionKey {
    SessionKey::from_bytes(std::array::from_fn(|i| i as u8))
}

fn salt() -> [u8; SALT_LEN] {
    std::array::from_fn(|i| 0x20 + i as u8)
}

/// Both directions of one connection: (client→server sealer and opener, server→client sealer and opener).
fn connection() -> ((Sealer, Opener), (Sealer, Opener)) {
    let (cs, co) = client_side(&key(), &salt());
    let (ss, so) = server_side(&key(), &salt());
    ((cs, so), (ss, co))
}

fn open_raw_body(body: &[u8]) {
    let ((c2s_sealer, c2s_opener), (s2c_sealer, s2c_opener)) = connection();
    check_open_one(body, c2s_sealer, c2s_opener);
    check_open_one(body, s2c_sealer, s2c_opener);
}

/// Opens `body` with a fresh opener; success is allowed only for the frame `sealer` (the peer) would send.
fn check_open_one(body: &[u8], mut sealer: Sealer, mut opener: Opener) {
    match opener.open(body) {
        Ok(plaintext) => {
            assert_eq!(opener.counter(), 1);
            let genuine = sealer.seal(&plaintext).expect("seal");
            assert_eq!(&genuine[LENGTH_PREFIX..], body, "a forged body opened");
        }
        Err(CryptoError::TooShort { len }) => {
            assert_eq!(len, body.len());
            assert!(len < TAG_LEN, "TooShort for a {len}-byte body");
        }
        Err(CryptoError::Authentication) => {
            assert!(body.len() >= TAG_LEN);
            assert_eq!(opener.counter(), 0, "a failed open moved the counter");
        }
        Err(e) => panic!("unexpected error opening {} bytes: {e:?}", body.len()),
    }
}

fn open_raw_stream(stream: &[u8]) {
    let ((mut sealer, mut opener), _) = connection();
    let mut codec = FrameCodec::new(DEFAULT_MAX_FRAME);
    let mut buf = BytesMut::from(stream);
    while let Ok(Some(body)) = codec.decode(&mut buf) {
        let Ok(plaintext) = opener.open(&body) else { break };
        let genuine = sealer.seal(&plaintext).expect("seal");
        assert_eq!(&genuine[LENGTH_PREFIX..], &body[..], "forged frame {} opened", opener.counter() - 1);
    }
}

/// The oracle's sealed body for frame `counter` of `plaintext` client→server: ciphertext then tag.
fn oracle_seal(counter: u64, plaintext: &[u8]) -> Vec<u8> {
    let key = derive_direction_key(&key(), &salt(), Direction::ClientToServer);
    let cipher = ChaCha20Poly1305::new_from_slice(key.as_slice()).expect("a 32-byte key");
    let ad = ((plaintext.len() + TAG_LEN) as u32).to_be_bytes();
    let mut buf = plaintext.to_vec();
    let tag = cipher.encrypt_in_place_detached(&nonce_bytes(counter).into(), &ad, &mut buf).expect("seal");
    buf.extend_from_slice(&tag);
    buf
}

fn round_trip(session: &Session) {
    let plaintexts = &session.plaintexts;
    let ((mut cs, mut so), (mut ss, mut co)) = connection();
    let mut batch_sealer = client_side(&key(), &salt()).0;
    let mut batch = BytesMut::new();
    let c2s: Vec<_> = plaintexts.iter().map(|p| cs.seal(p).expect("seal")).collect();
    for (plaintext, wire) in plaintexts.iter().zip(&c2s) {
        let body_len = plaintext.len() + TAG_LEN;
        assert_eq!(wire.len(), LENGTH_PREFIX + body_len);
        assert_eq!(wire[..LENGTH_PREFIX], (body_len as u32).to_be_bytes());
        batch_sealer.seal_into(plaintext, &mut batch).expect("seal_into");
    }
    for (i, (plaintext, wire)) in plaintexts.iter().zip(&c2s).enumerate() {
        assert_eq!(wire[LENGTH_PREFIX..], oracle_seal(i as u64, plaintext)[..], "ring and the oracle differ");
    }
    assert_eq!(batch, c2s.concat(), "seal_into batch differs from seal");

    let tampered = (!c2s.is_empty()).then(|| usize::from(session.tamper_frame) % c2s.len());
    for (i, (plaintext, wire)) in plaintexts.iter().zip(&c2s).enumerate() {
        if tampered == Some(i) {
            let next = c2s.get(i + 1).map(|w| &w[..]).unwrap_or_default();
            check_tampered(wire, next, usize::from(session.tamper_at), session.tamper_mask, &mut so);
        }
        let body = &wire[LENGTH_PREFIX..];
        assert_eq!(co.open(body), Err(CryptoError::Authentication), "a reflected frame opened");
        assert_eq!(so.open(body).expect("genuine frame opens"), *plaintext);
        let down = ss.seal(plaintext).expect("seal");
        assert_eq!(co.open(&down[LENGTH_PREFIX..]).expect("genuine frame opens"), *plaintext);
    }
    let n = plaintexts.len() as u64;
    assert_eq!((cs.counter(), so.counter(), ss.counter(), co.counter()), (n, n, n, n));
}

/// Flips bits of byte `at` of `wire`, then reads it, followed by the genuine `next` frame, through the codec as a
/// receiver would: whatever body the (possibly altered) length prefix cuts out must not open.
fn check_tampered(wire: &[u8], next: &[u8], at: usize, mask: u8, opener: &mut Opener) {
    let at = at % wire.len();
    let mut stream = BytesMut::from(wire);
    stream[at] ^= if mask == 0 { 0x80 } else { mask };
    stream.extend_from_slice(next);
    let before = opener.counter();
    match FrameCodec::new(DEFAULT_MAX_FRAME).decode(&mut stream) {
        Ok(Some(body)) => {
            assert!(opener.open(&body).is_err(), "byte {at} of a sealed frame altered and it still opened");
            assert_eq!(opener.counter(), before, "a failed open moved the counter");
        }
        Ok(None) | Err(_) => assert!(at < LENGTH_PREFIX, "only an altered length prefix can stall the codec"),
    }
}
