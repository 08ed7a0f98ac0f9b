//! A throwaway PostgreSQL for the tests that run against `PgStore`: one server per test process, a fresh database
//! per test.
//!
//! The first call to [`fresh_database`] runs `initdb` in a new temporary directory and starts `postgres` on a free
//! loopback port, with its unix socket in the same directory, `fsync` off (the data is thrown away) and trust
//! authentication for user `postgres`. initdb refuses to run as root, so as root both run as the unprivileged user
//! `nobody` (through `runuser`), in a directory handed to that user. A supervising shell holds the server: it stops it
//! (fast shutdown) and removes the directory as soon as its standard input closes, which happens when the test
//! process exits, however it exits.
//!
//! The binaries are looked up in `MOVAN_PG_BINDIR`, then in Debian's `/usr/lib/postgresql/<version>/bin` (newest
//! first), then on `PATH`. Without them the tests say so loudly on stderr and skip, unless `MOVAN_REQUIRE_POSTGRES=1`
//! is set: then they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A running server; its supervisor's stdin stays open for as long as the process lives.
#[derive(Debug)]
struct Server {
    port: u16,
    _supervisor: Child,
}

static SERVER: OnceLock<Option<Server>> = OnceLock::new();

/// The URL of a new, empty database on the test server, or `None` (after a loud message) when PostgreSQL is not
/// installed and `MOVAN_REQUIRE_POSTGRES` is not `1`.
pub async fn fresh_database() -> Option<String> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let port = SERVER.get_or_init(start).as_ref()?.port;
    let name = format!("movan_test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let admin = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.expect("connect");
    let connection = tokio::spawn(connection);
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
    drop(client);
    let _ = connection.await;
    Some(format!("postgres://postgres@127.0.0.1:{port}/{name}"))
}

fn start() -> Option<Server> {
    let required = std::env::var("MOVAN_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let Some(bin) = bin_dir() else {
        let message = "PostgreSQL is not installed (no initdb in MOVAN_PG_BINDIR, /usr/lib/postgresql/*/bin or PATH)";
        assert!(!required, "{message}, and MOVAN_REQUIRE_POSTGRES=1 requires it");
        let loud = format!("\n!!!!! SKIPPING the PostgreSQL tests: {message}. Install Debian's `postgresql`. !!!!!\n");
        // Past the test harness's output capture, so that a passing run shows it too.
        match std::fs::OpenOptions::new().append(true).open("/dev/stderr") {
            Ok(mut stderr) => drop(stderr.write_all(loud.as_bytes())),
            Err(_) => eprintln!("{loud}"),
        }
        return None;
    };
    let mut last_error = String::new();
    for _ in 0..3 {
        match try_start(&bin) {
            Ok(server) => return Some(server),
            Err(e) => last_error = e,
        }
    }
    panic!("cannot start a test PostgreSQL from {}: {last_error}", bin.display());
}

fn bin_dir() -> Option<PathBuf> {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("MOVAN_PG_BINDIR").map(PathBuf::from) {
        return has_initdb(&dir).then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| Some((entry.file_name().to_str()?.parse().ok()?, entry.path().join("bin"))))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.into_iter().rev().find(|(_, dir)| has_initdb(dir)) {
        return Some(dir);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).find(|dir| has_initdb(dir))
}

/// The script the supervisor runs, as the user that owns `$DIR`.
const SUPERVISOR: &str = r#"
"$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >"$DIR/initdb.log" 2>&1 \
  || { cat "$DIR/initdb.log" >&2; rm -rf "$DIR"; exit 1; }
exec 3<&0
"$BIN/postgres" -D "$DIR/data" -p "$PORT" -k "$DIR" -c listen_addresses=127.0.0.1 -c fsync=off \
  -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 >"$DIR/postgres.log" 2>&1 3<&- </dev/null &
pg=$!
# The test process's end closes fd 3: then a fast shutdown. A server that fails to start ends the wait too.
{ read -r _ignored <&3; kill -INT "$pg" 2>/dev/null; } &
wait "$pg" || cat "$DIR/postgres.log" >&2
rm -rf "$DIR"
"#;

fn try_start(bin: &Path) -> Result<Server, String> {
    let dir = tempfile::Builder::new().prefix("movan-pg-").tempdir().map_err(|e| e.to_string())?.keep();
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?;
    let port = port.port();
    let mut command = if is_root() {
        // initdb and postgres refuse root: hand the directory to `nobody` and run as that user.
        let status = Command::new("chown").args(["-R", "nobody:"]).arg(&dir).status().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("chown nobody {}: {status}", dir.display()));
        }
        let mut command = Command::new("runuser");
        command.args(["-u", "nobody", "--", "sh", "-c", SUPERVISOR]);
        command
    } else {
        let mut command = Command::new("sh");
        command.args(["-c", SUPERVISOR]);
        command
    };
    command.env("BIN", bin).env("DIR", &dir).env("PORT", port.to_string());
    let mut supervisor = command
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("runuser/sh: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = supervisor.try_wait().map_err(|e| e.to_string())? {
            let mut stderr = String::new();
            supervisor.stderr.take().map(|mut s| s.read_to_string(&mut stderr));
            return Err(format!("the supervisor exited ({status}): {stderr}"));
        }
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            eprintln!("test PostgreSQL ({}) on 127.0.0.1:{port}, data in {}", bin.display(), dir.display());
            return Ok(Server { port, _supervisor: supervisor });
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
            let _ = supervisor.kill();
            return Err(format!("not ready after 90 s: {log}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}
