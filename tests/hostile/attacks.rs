//! Helpers for attacks: forged tokens, raw frames, reading the answers.

use super::*;

/// `a`'s header and claims with `b`'s signature: a well-formed token whose signature does not match.
pub(crate) fn swap_signature(a: &str, b: &str) -> String {
    let (head, _) = a.rsplit_once('.').unwrap();
    let (_, sig) = b.rsplit_once('.').unwrap();
    format!("{head}.{sig}")
}

pub(crate) fn raw(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

pub(crate) fn prefixed(len: u32, tail: &[u8]) -> Vec<u8> {
    [&len.to_be_bytes()[..], tail].concat()
}

/// `{"a":[[...]]}` nested `depth` levels deep in total (objects and arrays both count).
pub(crate) fn nested(depth: usize) -> String {
    format!("{{\"a\":{}1{}}}", "[".repeat(depth - 1), "]".repeat(depth - 1))
}

/// The error codes among `events`.
pub(crate) fn codes(events: &[ServerEvent]) -> Vec<ErrorCode> {
    events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Error(b) => Some(b.code),
            _ => None,
        })
        .collect()
}

pub(crate) fn errors(events: &[ServerEvent]) -> Vec<&ErrorBody> {
    events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Error(b) => Some(b),
            _ => None,
        })
        .collect()
}

/// A fresh connection that has sent nothing and holds no key (so it would fail on a sealed handshake).
pub(crate) async fn bare(cluster: &Cluster) -> SyncClient {
    SyncClient::connect_unauthenticated(&cluster.sync_addr, "-", None, None).await.unwrap()
}

/// Writes `bytes` on a fresh connection, optionally half-closes, and returns what arrived before the close.
pub(crate) async fn raw_exchange(cluster: &Cluster, bytes: &[u8], eof: bool) -> Vec<ServerEvent> {
    let mut c = bare(cluster).await;
    c.send_raw_bytes(bytes).await.unwrap();
    if eof {
        c.shutdown().await.unwrap();
    }
    let events = c.wait_closed(WAIT).await.expect("the server must close the connection");
    assert!(c.events().close_reason().is_none_or(|e| !matches!(e, movan_client::ClientError::Crypto(_))));
    events
}

/// Waits until `c`'s handshake arrived (its sends are sealed from then on).
pub(crate) async fn await_handshake(c: &SyncClient) {
    let deadline = Instant::now() + WAIT;
    while c.encryption() == Encryption::Pending {
        assert!(Instant::now() < deadline, "no handshake");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends `bytes` sealed, then a ping stamped `marker`, and returns the errors that arrived before that ping's pong:
/// requests on a connection are handled in order, so these are exactly the answers to `bytes`.
pub(crate) async fn answer(c: &mut SyncClient, bytes: &[u8], marker: usize) -> Vec<ErrorBody> {
    let stamp = 4_000_000.0 + marker as f64;
    c.send_raw_body(bytes).await.unwrap();
    c.send_raw_body(&body(c.uid(), None, json!({"proto": "ping", "timestamp": stamp}))).await.unwrap();
    let mut errors = Vec::new();
    loop {
        match c.next_event_timeout(WAIT).await {
            Ok(Some(ServerEvent::Pong(p))) if p.timestamp == Some(stamp) => return errors,
            Ok(Some(ServerEvent::Error(e))) => errors.push(e),
            Ok(Some(_)) => {}
            Ok(None) => panic!("closed while waiting for the answer to {}: {errors:?}", String::from_utf8_lossy(bytes)),
            Err(_) => panic!("no answer to {}", String::from_utf8_lossy(bytes)),
        }
    }
}

pub(crate) fn codes_of(errors: &[ErrorBody]) -> Vec<ErrorCode> {
    errors.iter().map(|e| e.code).collect()
}

pub(crate) async fn expect_pong(c: &mut SyncClient, what: &str) {
    match c.wait_for(|e| matches!(e, ServerEvent::Pong(_) | ServerEvent::Error(_)), WAIT).await {
        Ok(ServerEvent::Pong(_)) => {}
        other => panic!("{what}: expected a pong, got {other:?}"),
    }
}
