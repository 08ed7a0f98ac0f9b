//! Connection tests: every rule with made-up `Instant`s, no sockets, no sleeps.
#![allow(clippy::unwrap_used)]

use super::*;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use movan_protocol::crypto::{Handshake, parse_handshake};
use serde_json::json;

const ISS: &str = "movan-account";
const AUD: &str = "movan-sync";
const SALT: [u8; SALT_LEN] = [9; SALT_LEN];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn session_key() -> SessionKey {
    SessionKey::from_bytes([7; 32])
}

/// A connection under test and the signing key its tokens are checked against.
struct Harness {
    conn: Connection,
    signer: EncodingKey,
    t0: Instant,
}

fn config(encryption: bool) -> ConnectionConfig {
    ConnectionConfig {
        encryption,
        first_frame_timeout: Duration::from_secs(10),
        idle_timeout: Some(Duration::from_secs(60)),
        max_messages_per_sec: 10,
        message_burst: 5,
        max_frame_bytes: 1024,
    }
}

impl Harness {
    fn new(config: ConnectionConfig) -> Self {
        let sk = SigningKey::from_bytes(&[1; 32]);
        let private = sk.to_pkcs8_pem(LineEnding::LF).unwrap();
        let public = sk.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        let verifier = TokenVerifier::from_pem(public.as_bytes(), ISS, AUD).unwrap();
        let t0 = Instant::now();
        let conn = Connection::new(config, Arc::new(verifier), t0);
        Self { conn, signer: EncodingKey::from_ed_pem(private.as_bytes()).unwrap(), t0 }
    }

    fn plain() -> Self {
        Self::new(config(false))
    }

    fn sealed() -> Self {
        Self::new(config(true))
    }

    fn at(&self, offset_ms: u64) -> Instant {
        self.t0 + ms(offset_ms)
    }

    /// A token for `uid` in session `sid`, expiring `ttl` seconds from now (negative: already expired).
    fn token(&self, uid: &str, sid: &str, ttl: i64) -> String {
        let now = unix_now();
        let claims = TokenClaims {
            sub: uid.into(),
            sid: sid.into(),
            iss: ISS.into(),
            aud: AUD.into(),
            iat: now,
            exp: now.saturating_add_signed(ttl),
            name: String::new(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.signer).unwrap()
    }

    fn frame(&mut self, body: &[u8], at_ms: u64) {
        let now = self.at(at_ms);
        self.conn.handle_frame(body, now);
    }

    /// Sends a valid first `ping` of uid 1001 at `at_ms`.
    fn hello(&mut self, at_ms: u64) {
        let token = self.token("1001", "s1", 3600);
        self.frame(&message("1001", Some(&token), json!({"proto": "ping"})), at_ms);
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    fn transmits(&mut self) -> Vec<Bytes> {
        std::iter::from_fn(|| self.conn.poll_transmit()).collect()
    }

    /// The single event, which must be a close: its reason.
    fn closed(&mut self) -> CloseReason {
        let events = self.events();
        match &events[..] {
            [Event::Close(reason)] => reason.clone(),
            other => panic!("expected one close, got {other:?}"),
        }
    }

    /// Runs the encrypted handshake: the first message, the key, and a sealed ping proving the key. Returns the
    /// client's sealer and opener.
    fn sealed_hello(&mut self) -> (Sealer, Opener) {
        self.hello(0);
        let _ = self.events();
        self.conn.handle_session_key(Ok(session_key()), SALT, self.at(1));
        let _ = self.transmits();
        let (mut sealer, opener) = crypto::client_side(&session_key(), &SALT);
        let body = seal(&mut sealer, &message("1001", None, json!({"proto": "ping"})));
        self.frame(&body, 2);
        assert!(self.conn.is_bound());
        let _ = self.events();
        (sealer, opener)
    }
}

fn message(uid: &str, token: Option<&str>, extra: serde_json::Value) -> Vec<u8> {
    let mut v = json!({ "uid": uid, "extra_data": extra });
    if let Some(t) = token {
        v["token"] = json!(t);
    }
    serde_json::to_vec(&v).unwrap()
}

fn ping(uid: &str) -> Vec<u8> {
    message(uid, None, json!({"proto": "ping"}))
}

fn seal(sealer: &mut Sealer, plain: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    sealer.seal_body_into(plain, &mut out).unwrap();
    out.to_vec()
}

fn refused_code(reason: &CloseReason) -> ErrorCode {
    match reason {
        CloseReason::Refused(e) => e.code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn is_ping(event: &Event) -> bool {
    matches!(event, Event::Request { request: Request::Ping, .. })
}

// -------------------------------------------------------------------------------------------------------------
// The first message
// -------------------------------------------------------------------------------------------------------------

#[test]
fn a_valid_first_message_gets_the_plaintext_handshake_then_binds() {
    let mut h = Harness::plain();
    h.hello(0);
    let transmits = h.transmits();
    assert_eq!(transmits.len(), 1);
    assert_eq!(parse_handshake(&transmits[0]).unwrap(), Handshake::Plaintext);
    let events = h.events();
    assert!(
        matches!(&events[..], [Event::Authenticated(who), ping] if who.uid == "1001" && who.sid == "s1" && is_ping(ping)),
        "{events:?}"
    );
    assert!(h.conn.is_bound());
    let mut dst = BytesMut::new();
    assert!(!h.conn.seal(b"{}", &mut dst).unwrap(), "encryption off: bodies go out as they are");
    assert!(dst.is_empty());
}

#[test]
fn a_first_message_without_a_valid_token_is_refused_and_closes() {
    type Case = (&'static str, fn(&Harness) -> Vec<u8>, ErrorCode, Option<&'static str>);
    let cases: [Case; 6] = [
        ("no token", |_| ping("1001"), ErrorCode::Unauthenticated, Some("ping")),
        (
            "expired",
            |h| message("1001", Some(&h.token("1001", "s1", -60)), json!({"proto": "ping"})),
            ErrorCode::TokenExpired,
            Some("ping"),
        ),
        (
            "forged",
            |_| message("1001", Some("a.b.c"), json!({"proto": "room_leave"})),
            ErrorCode::BadToken,
            Some("room_leave"),
        ),
        (
            "another uid's",
            |h| message("1002", Some(&h.token("1001", "s1", 60)), json!({"proto": "ping"})),
            ErrorCode::UidMismatch,
            Some("ping"),
        ),
        ("not JSON", |_| b"{nope".to_vec(), ErrorCode::BadJson, None),
        (
            "unknown proto",
            |h| message("1001", Some(&h.token("1001", "s1", 60)), json!({"proto": "fly"})),
            ErrorCode::UnknownProto,
            Some("fly"),
        ),
    ];
    for (what, body, code, proto) in cases {
        let mut h = Harness::plain();
        let body = body(&h);
        h.frame(&body, 0);
        let reason = h.closed();
        assert_eq!(refused_code(&reason), code, "{what}");
        let e = reason.error().unwrap();
        assert_eq!((e.code, e.proto.as_deref()), (code, proto), "{what}: the client gets the error");
        assert!(h.transmits().is_empty(), "{what}: no handshake");
        assert!(h.conn.is_closed() && h.conn.poll_timeout().is_none(), "{what}");
        h.hello(1);
        assert!(h.events().is_empty(), "{what}: a closed connection takes no more input");
    }
}

// -------------------------------------------------------------------------------------------------------------
// Later messages
// -------------------------------------------------------------------------------------------------------------

#[test]
fn a_bad_later_message_is_answered_and_the_connection_stays() {
    let mut h = Harness::plain();
    h.hello(0);
    let _ = h.events();
    h.frame(b"[1,2]", 10);
    h.frame(&message("1001", None, json!({"proto": "fly"})), 20);
    h.frame(&ping("1001"), 30);
    let events = h.events();
    assert!(
        matches!(&events[..], [Event::Error(a), Event::Error(b), ping]
            if a.code == ErrorCode::BadMessage && b.code == ErrorCode::UnknownProto && is_ping(ping)),
        "{events:?}"
    );
    assert!(h.conn.is_bound());
}

#[test]
fn a_changed_token_is_verified_again_and_another_uid_is_refused() {
    let mut h = Harness::plain();
    h.hello(0);
    let _ = h.events();
    // A refreshed token of the same player is fine; a bad one or another player's is refused, without a close.
    let refreshed = h.token("1001", "s1", 7200);
    h.frame(&message("1001", Some(&refreshed), json!({"proto": "ping"})), 100);
    h.frame(&message("1001", Some("x.y.z"), json!({"proto": "room_prepare"})), 200);
    let other = h.token("1002", "s2", 60);
    h.frame(&message("1001", Some(&other), json!({"proto": "ping"})), 300);
    h.frame(&ping("1002"), 400);
    h.frame(&ping("1001"), 500);
    let events = h.events();
    let summary: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::Error(e) => format!("{}:{}", e.code, e.proto.as_deref().unwrap_or("")),
            Event::Request { request, .. } => request.proto().to_owned(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(summary, ["ping", "bad_token:room_prepare", "uid_mismatch:ping", "uid_mismatch:ping", "ping"]);
    assert!(h.conn.is_bound());
}

#[test]
fn the_timestamp_of_a_request_reaches_the_engine() {
    let mut h = Harness::plain();
    let token = h.token("1001", "s1", 60);
    h.frame(&message("1001", Some(&token), json!({"proto": "room_enter", "timestamp": 12.5})), 0);
    h.frame(&message("1001", None, json!({"proto": "sync_action", "timestamp": 13.25, "action_data": {"k": 1}})), 10);
    let stamps: Vec<Option<f64>> = h
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Request { timestamp, .. } => Some(*timestamp),
            _ => None,
        })
        .collect();
    assert_eq!(stamps, [Some(12.5), Some(13.25)]);
}

// -------------------------------------------------------------------------------------------------------------
// Timers and limits
// -------------------------------------------------------------------------------------------------------------

#[test]
fn the_first_frame_timeout_runs_from_the_connect_until_bound() {
    let mut h = Harness::plain();
    assert_eq!(h.conn.poll_timeout(), Some(h.at(10_000)));
    h.conn.handle_timeout(h.at(9_999));
    assert!(h.events().is_empty(), "not yet");
    // An unparseable message does not bind, so the deadline stays.
    h.conn.handle_timeout(h.at(10_000));
    let reason = h.closed();
    assert_eq!(reason, CloseReason::FirstFrameTimeout { secs: 10 });
    let e = reason.error().unwrap();
    assert_eq!(e.code, ErrorCode::Timeout);
    assert!(e.message.contains("sync.first_frame_timeout_secs"), "{}", e.message);
    assert_eq!(h.conn.poll_timeout(), None);
}

#[test]
fn under_pressure_the_first_frame_timeout_is_shorter_and_says_so() {
    let mut h = Harness::plain();
    h.conn.set_pressure_timeout(Duration::from_secs(20));
    assert_eq!(h.conn.poll_timeout(), Some(h.at(10_000)), "never longer than sync.first_frame_timeout_secs");
    h.conn.set_pressure_timeout(Duration::from_secs(2));
    assert_eq!(h.conn.poll_timeout(), Some(h.at(2_000)));
    h.conn.handle_timeout(h.at(2_000));
    let reason = h.closed();
    assert_eq!(reason, CloseReason::PressureTimeout { secs: 2 });
    let e = reason.error().unwrap();
    assert_eq!(e.code, ErrorCode::Timeout);
    assert!(e.message.contains("sync.pressure_first_frame_timeout_secs"), "{}", e.message);
    let mut bound = Harness::plain();
    bound.conn.set_pressure_timeout(Duration::from_secs(2));
    bound.hello(1_000);
    assert_eq!(bound.conn.poll_timeout(), Some(bound.at(61_000)), "once bound, the idle timeout as usual");
    let shed = CloseReason::Shed { max: 7, key: "sync.max_unauthenticated" }.error().unwrap();
    assert_eq!(shed.code, ErrorCode::TooManyConnections);
    assert!(shed.message.contains("sync.max_unauthenticated"), "{}", shed.message);
}

#[test]
fn the_idle_timeout_runs_from_the_last_message_once_bound() {
    let mut h = Harness::plain();
    h.hello(3_000);
    assert_eq!(h.conn.poll_timeout(), Some(h.at(63_000)), "bound: idle deadline from the last message");
    h.frame(&ping("1001"), 50_000);
    h.frame(b"not json", 55_000);
    assert_eq!(h.conn.poll_timeout(), Some(h.at(115_000)), "any message, even a bad one, counts");
    let _ = h.events();
    h.conn.handle_timeout(h.at(114_999));
    assert!(h.events().is_empty());
    h.conn.handle_timeout(h.at(200_000));
    let reason = h.closed();
    assert_eq!(reason, CloseReason::IdleTimeout { secs: 60 });
    assert!(reason.error().unwrap().message.contains("send a ping"));
}

#[test]
fn without_an_idle_timeout_a_bound_connection_has_no_deadline() {
    let mut h = Harness::new(ConnectionConfig { idle_timeout: None, ..config(false) });
    assert!(h.conn.poll_timeout().is_some(), "the first-frame timeout still applies");
    h.hello(0);
    assert_eq!(h.conn.poll_timeout(), None);
    h.conn.handle_timeout(h.at(1_000_000_000));
    assert!(!h.events().iter().any(|e| matches!(e, Event::Close(_))));
}

#[test]
fn the_rate_limit_allows_a_burst_then_closes() {
    let mut h = Harness::plain();
    h.hello(0);
    // Burst 5, 10 per second: the hello and four pings at t=0 pass, the sixth message closes.
    for _ in 0..4 {
        h.frame(&ping("1001"), 0);
    }
    assert!(!h.events().iter().any(|e| matches!(e, Event::Close(_))));
    h.frame(&ping("1001"), 99);
    let reason = h.closed();
    assert_eq!(reason, CloseReason::RateLimited { per_sec: 10, burst: 5 });
    let e = reason.error().unwrap();
    assert_eq!(e.code, ErrorCode::RateLimited);
    assert!(e.message.contains("sync.max_messages_per_sec") && e.message.contains("sync.message_burst"));
}

#[test]
fn the_rate_limit_refills_at_its_rate() {
    let mut h = Harness::plain();
    h.hello(0);
    for _ in 0..4 {
        h.frame(&ping("1001"), 0);
    }
    // One message per 100 ms is sustainable forever.
    for i in 1..=50 {
        h.frame(&ping("1001"), i * 100);
    }
    let events = h.events();
    assert!(!events.iter().any(|e| matches!(e, Event::Close(_))), "{events:?}");
    assert_eq!(events.iter().filter(|e| is_ping(e)).count(), 1 + 4 + 50);
}

#[test]
fn the_rate_limit_counts_messages_before_authentication_too() {
    let mut h = Harness::new(ConnectionConfig { message_burst: 1, ..config(false) });
    h.frame(b"junk", 0);
    assert!(matches!(refused_code(&h.closed()), ErrorCode::BadJson));
    let mut h = Harness::new(ConnectionConfig { message_burst: 1, ..config(true) });
    h.hello(0);
    let _ = h.events();
    h.frame(b"second", 0);
    assert_eq!(h.closed(), CloseReason::RateLimited { per_sec: 10, burst: 1 }, "held messages count as they arrive");
}

#[test]
fn a_frame_over_the_maximum_closes_with_frame_too_large() {
    let mut h = Harness::plain();
    h.conn.handle_too_large(1 << 30, h.at(0));
    let reason = h.closed();
    assert_eq!(reason, CloseReason::FrameTooLarge { len: 1 << 30, max: 1024 });
    assert_eq!(reason.error().unwrap().code, ErrorCode::FrameTooLarge);
    assert!(!reason.error().unwrap().message.contains("looks like text"), "0x40000000 is not text");
    // `hello` typed at the port: the prefix is "hell".
    let mut h = Harness::plain();
    h.conn.handle_too_large(u64::from(u32::from_be_bytes(*b"hell")), h.at(0));
    let message = h.closed().error().unwrap().message;
    assert!(message.starts_with("frame of 1751477356 bytes exceeds the maximum of 1024 bytes"), "{message}");
    assert!(
        message.contains("its length prefix \"hell\" looks like text, not a 4-byte big-endian length"),
        "{message}"
    );
    // A transport that does not bound its messages is checked too; exactly the maximum passes.
    let mut h = Harness::plain();
    h.hello(0);
    let mut padded = ping("1001");
    padded.resize(1024, b' ');
    h.frame(&padded, 1);
    assert!(h.events().iter().filter(|e| is_ping(e)).count() == 2);
    padded.push(b' ');
    h.frame(&padded, 2);
    assert_eq!(h.closed(), CloseReason::FrameTooLarge { len: 1025, max: 1024 });
}

// -------------------------------------------------------------------------------------------------------------
// Encryption
// -------------------------------------------------------------------------------------------------------------

#[test]
fn encrypted_the_bind_waits_for_a_sealed_frame_that_opens() {
    let mut h = Harness::sealed();
    h.hello(0);
    let events = h.events();
    assert!(matches!(&events[..], [Event::FetchSessionKey { uid, sid }] if uid == "1001" && sid == "s1"), "{events:?}");
    assert!(h.transmits().is_empty(), "no handshake before the key");
    h.conn.handle_session_key(Ok(session_key()), SALT, h.at(5));
    let transmits = h.transmits();
    assert_eq!(transmits.len(), 1);
    assert_eq!(parse_handshake(&transmits[0]).unwrap(), Handshake::Sealed(SALT));
    assert!(h.events().is_empty(), "nothing reaches the engine before a sealed frame opened");
    assert!(!h.conn.is_bound());
    assert_eq!(h.conn.poll_timeout(), Some(h.at(10_000)), "the first-frame timeout still runs");

    let (mut sealer, mut opener) = crypto::client_side(&session_key(), &SALT);
    let room_enter = message("1001", None, json!({"proto": "room_enter"}));
    h.frame(&seal(&mut sealer, &room_enter), 20);
    let events = h.events();
    assert!(
        matches!(&events[..], [Event::Authenticated(_), first, Event::Request { request: Request::RoomEnter { .. }, .. }]
            if is_ping(first)),
        "the bind, the first request, then the sealed one: {events:?}"
    );
    assert!(h.conn.is_bound());
    assert_eq!(h.conn.poll_timeout(), Some(h.at(60_020)), "now the idle timeout");

    // Outgoing bodies are sealed for the client's opener, in order.
    for body in [&b"{\"a\":1}"[..], b"{\"b\":2}"] {
        let mut dst = BytesMut::new();
        assert!(h.conn.seal(body, &mut dst).unwrap());
        assert_eq!(opener.open(&dst).unwrap(), body);
    }
}

#[test]
fn encrypted_a_stolen_token_without_the_key_does_nothing() {
    for (what, body) in [
        ("plaintext", ping("1001")),
        ("sealed with another key", {
            let (mut s, _) = crypto::client_side(&SessionKey::from_bytes([8; 32]), &SALT);
            seal(&mut s, &ping("1001"))
        }),
        ("too short", vec![0; 3]),
    ] {
        let mut h = Harness::sealed();
        h.hello(0);
        let _ = h.events();
        h.conn.handle_session_key(Ok(session_key()), SALT, h.at(1));
        let _ = h.transmits();
        h.frame(&body, 2);
        let reason = h.closed();
        assert_eq!(reason, CloseReason::SealRejected, "{what}");
        assert_eq!(reason.error(), None, "{what}: closed without a word");
        assert!(!h.conn.is_bound(), "{what}");
    }
}

#[test]
fn encrypted_a_replayed_or_tampered_frame_closes_silently() {
    let mut h = Harness::sealed();
    let (mut sealer, _) = h.sealed_hello();
    let good = seal(&mut sealer, &ping("1001"));
    h.frame(&good, 10);
    assert!(h.events().iter().any(is_ping));
    h.frame(&good, 20);
    assert_eq!(h.closed(), CloseReason::SealRejected, "a replay");

    let mut h = Harness::sealed();
    let (mut sealer, _) = h.sealed_hello();
    let mut tampered = seal(&mut sealer, &ping("1001"));
    tampered[3] ^= 1;
    h.frame(&tampered, 10);
    assert_eq!(h.closed(), CloseReason::SealRejected, "a flipped bit");
}

#[test]
fn encrypted_a_sealed_message_that_does_not_parse_is_answered_after_the_bind() {
    let mut h = Harness::sealed();
    h.hello(0);
    let _ = h.events();
    h.conn.handle_session_key(Ok(session_key()), SALT, h.at(1));
    let (mut sealer, _) = crypto::client_side(&session_key(), &SALT);
    h.frame(&seal(&mut sealer, b"garbage"), 2);
    let events = h.events();
    assert!(
        matches!(&events[..], [Event::Authenticated(_), ping, Event::Error(e)] if is_ping(ping) && e.code == ErrorCode::BadJson),
        "the key is proven by the seal, so the player is bound and the bad body answered: {events:?}"
    );
}

#[test]
fn encrypted_no_session_key_refuses_the_connection() {
    for code in [ErrorCode::SessionRevoked, ErrorCode::Unavailable] {
        let mut h = Harness::sealed();
        h.hello(0);
        let _ = h.events();
        h.conn.handle_session_key(Err(ProtocolError::new(code, "no key")), SALT, h.at(1));
        let reason = h.closed();
        let e = reason.error().unwrap();
        assert_eq!((e.code, e.proto.as_deref()), (code, Some("ping")));
        assert!(h.transmits().is_empty(), "no handshake");
    }
}

#[test]
fn encrypted_messages_during_the_key_fetch_are_held_in_order_and_bounded() {
    let mut h = Harness::new(ConnectionConfig { message_burst: 100, ..config(true) });
    h.hello(0);
    let _ = h.events();
    let (mut sealer, _) = crypto::client_side(&session_key(), &SALT);
    let first = seal(&mut sealer, &message("1001", None, json!({"proto": "room_enter"})));
    let second = seal(&mut sealer, &message("1001", None, json!({"proto": "room_prepare"})));
    h.frame(&first, 1);
    h.frame(&second, 2);
    assert!(h.events().is_empty(), "held");
    h.conn.handle_session_key(Ok(session_key()), SALT, h.at(3));
    assert_eq!(h.transmits().len(), 1);
    let protos: Vec<&str> = h
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Request { request, .. } => Some(request.proto()),
            _ => None,
        })
        .collect();
    assert_eq!(protos, ["ping", "room_enter", "room_prepare"]);

    let mut h = Harness::new(ConnectionConfig { message_burst: 100, ..config(true) });
    h.hello(0);
    let _ = h.events();
    for i in 0..MAX_HELD_MESSAGES as u64 {
        h.frame(b"x", i);
    }
    assert!(h.events().is_empty());
    h.frame(b"x", 100);
    assert_eq!(refused_code(&h.closed()), ErrorCode::LimitExceeded);
}

#[test]
fn encrypted_the_first_frame_timeout_covers_the_handshake() {
    let mut h = Harness::sealed();
    h.hello(0);
    let _ = h.events();
    h.conn.handle_session_key(Ok(session_key()), SALT, h.at(1));
    let _ = h.transmits();
    h.conn.handle_timeout(h.at(10_000));
    assert_eq!(h.closed(), CloseReason::FirstFrameTimeout { secs: 10 });
}

// -------------------------------------------------------------------------------------------------------------
// Close reasons
// -------------------------------------------------------------------------------------------------------------

#[test]
fn close_reasons_name_themselves_and_say_what_the_client_gets() {
    let e = ProtocolError::new(ErrorCode::Banned, "this player is banned");
    let cases = [
        (CloseReason::Replaced, Some(ErrorCode::Replaced), "replaced"),
        (CloseReason::Revoked(e), Some(ErrorCode::Banned), "revoked"),
        (CloseReason::Shutdown, Some(ErrorCode::ShuttingDown), "shutdown"),
        (CloseReason::SealRejected, None, "seal_rejected"),
        (CloseReason::PeerClosed, None, "peer_closed"),
        (CloseReason::SlowReader, None, "slow_reader"),
    ];
    for (reason, code, name) in cases {
        assert_eq!(reason.error().map(|e| e.code), code, "{name}");
        assert_eq!(reason.as_str(), name);
        assert!(reason.to_string().starts_with(name), "{reason}");
    }
}

mod revoked;
