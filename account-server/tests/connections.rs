//! The HTTP listener against slow, idle and too many connections (issue 14 point 3), on a real socket. Every wait
//! is bounded by `PATIENCE`, far above the 1 s timeouts configured here: a connection the server fails to close makes
//! the test fail instead of hanging.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use account_server::AppState;
use common::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const PATIENCE: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start(max_connections: usize) -> Server {
    start_with(max_connections, 1).await
}

async fn start_with(max_connections: usize, body_timeout_secs: u64) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.account.header_timeout_secs = 1;
    config.account.body_timeout_secs = body_timeout_secs;
    config.account.max_connections = max_connections;
    let state = AppState::open(&config).await.unwrap();
    add_node(&state, "sync-1", 1, "127.0.0.1:2025");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(account_server::run(listener, state, stop.clone().cancelled_owned()));
    Server { addr, stop, _dir: dir }
}

/// Everything the server sends until it closes the connection; panics if it is still open after `PATIENCE`.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    match tokio::time::timeout(PATIENCE, stream.read_to_end(&mut got)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(Err(e)) => panic!("read failed: {e}"),
        Err(_) => panic!("the server kept the connection open; got so far: {:?}", String::from_utf8_lossy(&got)),
    }
    String::from_utf8_lossy(&got).into_owned()
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";

#[tokio::test]
async fn an_idle_connection_is_closed_before_and_after_a_request() {
    let server = start(100).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(read_to_close(&mut silent).await, "", "a connection that never sends a request is closed");

    let mut kept_alive = TcpStream::connect(server.addr).await.unwrap();
    kept_alive.write_all(HEALTH).await.unwrap();
    let answer = read_to_close(&mut kept_alive).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_slowloris_head_is_cut_off() {
    let server = start(100).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = slow.split();
    let trickle = async {
        for byte in HEALTH.iter().take(HEALTH.len() - 2) {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let mut got = Vec::new();
    tokio::select! {
        () = trickle => panic!("the server read a head sent at 5 bytes/s for {} s", HEALTH.len() / 5),
        read = tokio::time::timeout(PATIENCE, reader.read_to_end(&mut got)) => {
            read.expect("still open").ok();
        }
    }
    let answer = String::from_utf8_lossy(&got);
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[tokio::test]
async fn a_declared_body_that_never_comes_gets_408_and_a_huge_one_413_at_once() {
    let server = start(100).await;
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    let head = "POST /v1/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{";
    stalled.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut stalled).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");

    // With a body timeout longer than PATIENCE, only an answer that does not wait for the body passes.
    let patient = start_with(100, 3600).await;
    let mut huge = TcpStream::connect(patient.addr).await.unwrap();
    let head =
        "POST /v1/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000000000\r\n\r\n";
    huge.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut huge).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_gets_413() {
    let server = start(100).await;
    let mut chunked = TcpStream::connect(server.addr).await.unwrap();
    let head =
        "POST /v1/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    chunked.write_all(head.as_bytes()).await.unwrap();
    let chunk = "a".repeat(8192);
    for _ in 0..3 {
        // 24 KiB in all, over the default 16 KiB; the server may close before the last chunk is written.
        let _ = chunked.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes()).await;
    }
    let answer = read_to_close(&mut chunked).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
}

#[tokio::test]
async fn connections_over_the_cap_get_503_and_a_freed_slot_serves_again() {
    let server = start(3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // The three are accepted (and counted) before the fourth arrives: each answers a request first.
    for stream in &mut held {
        stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 12];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
    }
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    let answer = read_to_close(&mut extra).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains(r#""code":"too_many_connections""#), "{answer}");

    drop(held.pop());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut again = TcpStream::connect(server.addr).await.unwrap();
        again.write_all(HEALTH).await.unwrap();
        let answer = read_to_close(&mut again).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the freed slot never served: {answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
