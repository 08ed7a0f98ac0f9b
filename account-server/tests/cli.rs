//! The `account-server` binary: `--help`, `keygen`, `promote-admin`, config errors, the startup lines and shutdown on
//! SIGTERM.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_account-server");

/// A config in `dir` listening on ephemeral ports, with `extra` appended to `[account]`.
fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("config.toml");
    let data = dir.join("data");
    let text = format!(
        "[token]\nprivate_key_path = {:?}\npublic_key_path = {:?}\n\n[rpc]\nsecret_path = {:?}\n\n\
         [account]\nhttp_addr = \"127.0.0.1:0\"\nrpc_addr = \"127.0.0.1:0\"\ndb_path = {:?}\n{extra}\n\n\
         [sync]\nwhatever = 1\n",
        data.join("jwt.pem"),
        data.join("jwt.pub.pem"),
        data.join("rpc_secret"),
        data.join("accounts.sled"),
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn account_server(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env("RUST_LOG", "warn").output().unwrap()
}

#[test]
fn help_describes_the_options() {
    let out = account_server(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("--config") && help.contains("keygen") && help.contains("promote-admin"), "{help}");
}

#[test]
fn keygen_creates_the_key_pair_and_the_rpc_secret_once_and_prints_the_paths() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let config = config.to_str().unwrap();
    let out = account_server(&["keygen", "--config", config]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let private = dir.path().join("data/jwt.pem");
    let public = dir.path().join("data/jwt.pub.pem");
    let secret = dir.path().join("data/rpc_secret");
    let expected = format!("{}\n{}\n{}\n", private.display(), public.display(), secret.display());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    let first = std::fs::read(&public).unwrap();
    let first_secret = std::fs::read(&secret).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
    }

    let out = account_server(&["--config", config, "keygen"]);
    assert!(out.status.success());
    assert_eq!(std::fs::read(&public).unwrap(), first);
    assert_eq!(std::fs::read(&secret).unwrap(), first_secret);
    assert!(!dir.path().join("data/accounts.sled").exists(), "keygen does not open the database");
}

#[test]
fn a_bad_config_value_is_named_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "argon2_iterations = 1");
    let out = account_server(&["--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("config.toml: account.argon2_iterations: must be 2"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn promote_admin_gives_an_existing_user_the_role() {
    use account_server::{Role, SledStore, Store as _};

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let config = config.to_str().unwrap();
    let db = dir.path().join("data/accounts.sled");
    let uid = {
        let store = SledStore::open(&db).unwrap();
        let uid = store.create_user("Alice", "hash", Role::Player, 1).await.unwrap().uid;
        store.create_user("bob", "hash", Role::Player, 1).await.unwrap();
        uid
    };

    let out = account_server(&["promote-admin", "alice", "--config", config]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("Alice (uid {uid}) is now an admin\n"));

    let out = account_server(&["promote-admin", "carol", "--config", config]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("no user named \"carol\""), "{stderr}");

    let store = SledStore::open(&db).unwrap();
    assert_eq!(store.user_by_name("alice").await.unwrap().unwrap().role, Role::Admin);
    assert_eq!(store.user_by_name("bob").await.unwrap().unwrap().role, Role::Player);
    // While something holds the database (a running server, here this test), it says so.
    let out = account_server(&["promote-admin", "bob", "--config", config]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("another account server is probably running with the same account.db_path"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn serves_after_printing_its_address_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let mut child = Command::new(BIN)
        .env("MOVAN_CONFIG", &config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let (mut line, mut rpc_line) = (String::new(), String::new());
        let _ = stdout.read_line(&mut line);
        let _ = stdout.read_line(&mut rpc_line);
        let _ = tx.send((line, rpc_line));
    });
    let (line, rpc_line) = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(lines) => lines,
        Err(_) => {
            let _ = child.kill();
            panic!("no startup lines within 60 s");
        }
    };
    let rpc_addr = rpc_line.strip_prefix("account-server rpc listening on ").map(str::trim_end);
    assert!(rpc_addr.is_some_and(|a| !a.ends_with(":0")), "unexpected rpc line {rpc_line:?}");
    assert!(dir.path().join("data/rpc_secret").exists());
    let addr = line
        .strip_prefix("account-server listening on http://")
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("unexpected startup line {line:?}"));
    assert!(!addr.ends_with(":0"), "{addr}");

    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(b"GET /v1/me HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(dir.path().join("data/jwt.pub.pem").exists());

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running 30 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

/// Starts the server on `config` with stderr in `stderr`, reads its two startup lines, stops it with SIGTERM and
/// returns the lines. Panics if it does not start or stop in time.
#[cfg(unix)]
fn start_and_stop(config: &Path, stderr: &Path) -> (String, String) {
    let mut child = Command::new(BIN)
        .env("MOVAN_CONFIG", config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let (mut line, mut rpc_line) = (String::new(), String::new());
        let _ = stdout.read_line(&mut line);
        let _ = stdout.read_line(&mut rpc_line);
        let _ = tx.send((line, rpc_line));
    });
    let Ok(lines) = rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = child.kill();
        panic!("no startup lines within 60 s: {}", std::fs::read_to_string(stderr).unwrap_or_default());
    };
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running 30 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    lines
}

#[cfg(unix)]
#[test]
fn tls_settings_make_it_https_and_plain_http_on_a_network_address_warns() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let stderr = dir.path().join("stderr.log");

    let tls = format!("tls_cert_path = {cert_path:?}\ntls_key_path = {key_path:?}");
    let (line, _) = start_and_stop(&write_config(dir.path(), &tls), &stderr);
    assert!(line.starts_with("account-server listening on https://127.0.0.1:"), "{line:?}");
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert!(!log.contains("PLAIN HTTP"), "{log}");

    // Every interface, without TLS (TOML forbids a second `http_addr`, so the generated one is edited).
    let config = write_config(dir.path(), "");
    let text = std::fs::read_to_string(&config).unwrap().replace("127.0.0.1:0\"\nrpc", "0.0.0.0:0\"\nrpc");
    std::fs::write(&config, text).unwrap();
    let (line, _) = start_and_stop(&config, &stderr);
    assert!(line.starts_with("account-server listening on http://0.0.0.0:"), "{line:?}");
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert!(log.contains("PLAIN HTTP ON A NETWORK ADDRESS"), "{log}");

    let config = write_config(dir.path(), &format!("tls_cert_path = {cert_path:?}"));
    let out = account_server(&["--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("account.tls_key_path: must be set"), "{stderr}");
}
