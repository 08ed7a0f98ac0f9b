//! A first message with a revoked token (logged-out session, banned player): refused in plaintext, in place of the
//! handshake, whether encryption is on or off.

use super::*;
use crate::revocation::Revocations;

fn revoked(encryption: bool, revoke: impl Fn(&SharedRevocations)) -> CloseReason {
    let revocations = SharedRevocations::new(Revocations::new(Duration::from_secs(3600), 100));
    revoke(&revocations);
    let mut h = Harness::new(config(encryption));
    h.conn = Connection::new(config(encryption), h.conn.verifier.clone(), h.t0).with_revocations(revocations);
    h.hello(0);
    assert!(h.transmits().is_empty(), "no handshake for a revoked token (encryption {encryption})");
    let reason = h.closed();
    assert!(h.conn.is_closed());
    let mut dst = BytesMut::new();
    assert!(!h.conn.seal(b"{}", &mut dst).unwrap(), "the refusal goes out in plaintext");
    reason
}

#[test]
fn a_revoked_token_is_refused_before_the_handshake_encrypted_or_not() {
    for encryption in [false, true] {
        let reason = revoked(encryption, |r| r.revoke_session("s1", Instant::now()));
        assert_eq!(refused_code(&reason), ErrorCode::SessionRevoked);
        let CloseReason::Refused(e) = &reason else { unreachable!() };
        assert_eq!(e.proto.as_deref(), Some("ping"));
        let reason = revoked(encryption, |r| r.ban("1001", unix_now() + 1, Instant::now()));
        assert_eq!(refused_code(&reason), ErrorCode::Banned);
    }
}

#[test]
fn other_sessions_and_tokens_issued_after_a_ban_pass() {
    for encryption in [false, true] {
        let revocations = SharedRevocations::new(Revocations::new(Duration::from_secs(3600), 100));
        revocations.revoke_session("another-session", Instant::now());
        revocations.ban("1001", unix_now().saturating_sub(5), Instant::now());
        let mut h = Harness::new(config(encryption));
        h.conn = Connection::new(config(encryption), h.conn.verifier.clone(), h.t0).with_revocations(revocations);
        h.hello(0);
        let events = h.events();
        let ok = if encryption {
            matches!(&events[..], [Event::FetchSessionKey { .. }])
        } else {
            h.transmits().len() == 1 && matches!(&events[..], [Event::Authenticated(_), _])
        };
        assert!(ok, "encryption {encryption}: {events:?}");
    }
}
