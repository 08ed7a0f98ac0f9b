//! HTTPS on the real listener: [`account_server::serve`] with a self-signed certificate, and a rustls client that
//! trusts only that certificate.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use account_server::secret::ensure_rpc_secret;
use account_server::{AppState, TlsConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

#[tokio::test]
async fn register_works_over_https_and_plain_http_gets_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(dir.path());
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let tls = TlsConfig::load(&cert_path, &key_path).unwrap();

    let (secret, _) = ensure_rpc_secret(&config.rpc.secret_path).unwrap();
    let state = AppState::open(&config).await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = http.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let rpc_config = account_server::rpc::server_config(&config.rpc, &secret);
    let server = tokio::spawn(account_server::serve(http, Some(tls), rpc, state.clone(), rpc_config, async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .https_only(true)
        .build()
        .unwrap();
    let response = client
        .post(format!("https://127.0.0.1:{}/v1/register", addr.port()))
        .json(&json!({"username": "alice", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let body: Value = response.json().await.unwrap();
    assert!(body["uid"].as_str().is_some_and(|uid| !uid.is_empty()), "{body}");
    assert!(state.store().user_by_name("alice").await.unwrap().is_some());

    // A client that does not trust the certificate refuses the connection.
    let untrusting = reqwest::Client::builder().tls_built_in_root_certs(false).build().unwrap();
    assert!(untrusting.get(format!("https://127.0.0.1:{}/v1/me", addr.port())).send().await.is_err());

    // Plain HTTP gets no HTTP answer from the TLS listener.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /v1/me HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut answer)).await;
    assert!(!answer.starts_with(b"HTTP/"), "{}", String::from_utf8_lossy(&answer));

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap().unwrap();
}
