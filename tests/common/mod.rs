//! End-to-end harness: starts the real `account-server` and `sync-server` binaries on free ports with a
//! throw-away config, data directory and key pair, and stops them when dropped.

pub mod lossy;
mod second_account;
mod tcp_cutter;

pub use second_account::{ExtraSync, SecondAccount};
pub use tcp_cutter::TcpCutter;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, bail};
use movan_client::{AccountClient, Session};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

mod players;

pub use players::{PASSWORD, WAIT, body, connect, forge, login, now_secs, start_game};

/// How long a service may take to print its "listening" line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Extra config lines for a cluster.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Lines appended to the `[sync]` section, e.g. `"max_players = 2"`.
    pub sync: Vec<String>,
    /// Lines appended to the `[account]` section.
    pub account: Vec<String>,
    /// Lines appended to the `[token]` section.
    pub token: Vec<String>,
    /// Lines appended to the `[rpc]` section.
    pub rpc: Vec<String>,
    /// Run this example of the sync-server crate (e.g. `drop_in`) in place of the stock sync server.
    pub sync_example: Option<&'static str>,
}

/// Both services, running and linked: the sync server has registered with the account server.
#[derive(Debug)]
pub struct Cluster {
    /// Temporary directory with config, keys, secret and database; removed on drop.
    pub dir: tempfile::TempDir,
    /// The config file both services use.
    pub config: PathBuf,
    /// e.g. `http://127.0.0.1:40123`.
    pub account_url: String,
    /// The account server's RPC address, e.g. `127.0.0.1:40125`.
    pub account_rpc: String,
    /// e.g. `127.0.0.1:40124`.
    pub sync_addr: String,
    /// The sync server's WebSocket endpoint, e.g. `ws://127.0.0.1:40126/ws`.
    pub sync_ws_url: String,
    /// The sync server's UDP (KCP) address, e.g. `127.0.0.1:40127`.
    pub sync_udp_addr: String,
    /// The sync server's health endpoint, e.g. `http://127.0.0.1:40128` (`/healthz`, `/readyz`).
    pub sync_health_url: String,
    options: Options,
    account: Option<Child>,
    sync: Option<Child>,
    /// When set, the sync server links to all these account servers (`sync.account_rpc_addrs`).
    linked: Vec<String>,
}

/// Heartbeats in tests: fast, so that dead peers are noticed within about a second.
const HEARTBEAT_MS: u64 = 200;

impl Cluster {
    /// Starts both services with the default test configuration.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(Options::default()).await
    }

    /// Starts both services with extra config lines, and waits until logins are answered with the sync server.
    pub async fn start_with(options: Options) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("movan.toml");
        let mut cluster = Self {
            config,
            account_url: String::new(),
            account_rpc: String::new(),
            sync_addr: String::new(),
            sync_ws_url: String::new(),
            sync_udp_addr: String::new(),
            sync_health_url: String::new(),
            options,
            account: None,
            sync: None,
            linked: Vec::new(),
            dir,
        };
        cluster.write_config("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:1")?;
        let keygen = Command::new(binary("account-server"))
            .env("RUST_LOG", "warn")
            .args(["keygen", "--config"])
            .arg(&cluster.config)
            .stdout(Stdio::null())
            .status()
            .await
            .context("running account-server keygen")?;
        if !keygen.success() {
            bail!("account-server keygen failed: {keygen}");
        }
        cluster.start_account().await?;
        cluster.write_config(cluster.http_addr(), &cluster.account_rpc.clone(), &cluster.account_rpc.clone())?;
        cluster.start_sync().await?;
        Ok(cluster)
    }

    /// Registers `name` at this cluster's account server (or logs it in when it exists).
    pub async fn login(&self, name: &str) -> Session {
        login(&AccountClient::new(&self.account_url), name).await
    }

    /// Starts the account server (again), on the addresses of the current config.
    pub async fn start_account(&mut self) -> anyhow::Result<()> {
        let (child, addrs) = spawn_service(
            &binary("account-server"),
            &self.config,
            &["account-server listening on ", "account-server rpc listening on "],
        )
        .await?;
        self.account_url = addrs[0].clone();
        self.account_rpc = addrs[1].clone();
        self.account = Some(child);
        Ok(())
    }

    /// Starts the sync server (again) and waits until it has registered with the account server.
    pub async fn start_sync(&mut self) -> anyhow::Result<()> {
        let prefixes = [
            "sync-server websocket listening on ",
            "sync-server udp listening on ",
            "sync-server health listening on ",
            "sync-server listening on ",
        ];
        let program = match self.options.sync_example {
            Some(name) => example(name),
            None => binary("sync-server"),
        };
        let (child, addrs) = spawn_service(&program, &self.config, &prefixes).await?;
        self.sync_ws_url = addrs[0].clone();
        self.sync_udp_addr = addrs[1].clone();
        self.sync_health_url = addrs[2].clone();
        self.sync_addr = addrs[3].clone();
        self.sync = Some(child);
        self.wait_for_node(true).await
    }

    /// Waits until logins answer with this cluster's sync server (`live`), or with 503 (`!live`).
    pub async fn wait_for_node(&self, live: bool) -> anyhow::Result<()> {
        let client = movan_client::AccountClient::new(&self.account_url);
        let _ = client.register("node-probe", "node-probe-password").await;
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            let answer = client.login("node-probe", "node-probe-password").await;
            let done = match &answer {
                Ok(s) => live && s.sync_addr == self.sync_addr,
                Err(e) => !live && e.http_status() == Some(503),
            };
            if done {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("login never answered as expected (live = {live}): last answer {answer:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM to the sync server and waits for it to exit; returns its exit status.
    pub async fn terminate_sync(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self.sync.take().context("sync server already stopped")?;
        terminate(&mut child).await
    }

    /// Sends SIGTERM to the account server and waits for it to exit; returns its exit status.
    pub async fn terminate_account(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self.account.take().context("account server already stopped")?;
        terminate(&mut child).await
    }

    /// Restarts the account server on the same addresses (the sync server must reconnect by itself).
    pub async fn restart_account(&mut self) -> anyhow::Result<()> {
        self.terminate_account().await?;
        self.write_config(self.http_addr(), &self.account_rpc.clone(), &self.account_rpc.clone())?;
        self.start_account().await
    }

    /// The Ed25519 private key (PEM) the account server signs tokens with, for tests that forge tokens.
    pub fn private_key_pem(&self) -> anyhow::Result<Vec<u8>> {
        Ok(std::fs::read(self.dir.path().join("jwt.pem"))?)
    }

    fn http_addr(&self) -> &str {
        self.account_url.strip_prefix("http://").unwrap_or("127.0.0.1:0")
    }

    fn write_config(&self, http: &str, rpc: &str, account_rpc: &str) -> anyhow::Result<()> {
        std::fs::write(&self.config, self.config_text(http, rpc, account_rpc, "accounts.sled"))?;
        Ok(())
    }

    /// The config: the account server on `http` and `rpc` with database `db` in the temp dir, the sync server linked
    /// to `account_rpc` (or to every address in `self.linked`).
    fn config_text(&self, http: &str, rpc: &str, account_rpc: &str, db: &str) -> String {
        let d = self.dir.path().display();
        let o = &self.options;
        let link = if self.linked.is_empty() {
            format!("account_rpc_addr = \"{account_rpc}\"")
        } else {
            let list: Vec<String> = self.linked.iter().map(|a| format!("\"{a}\"")).collect();
            format!("account_rpc_addr = \"\"\naccount_rpc_addrs = [{}]", list.join(", "))
        };
        format!(
            "[token]\nprivate_key_path = \"{d}/jwt.pem\"\npublic_key_path = \"{d}/jwt.pub.pem\"\n{}\n\n\
             [account]\nhttp_addr = \"{http}\"\nrpc_addr = \"{rpc}\"\ndb_path = \"{d}/{db}\"\ndemo_dir = \"\"\njs_dir = \"\"\n{}\n\n\
             [rpc]\nsecret_path = \"{d}/rpc_secret\"\nheartbeat_interval_ms = {HEARTBEAT_MS}\n{}\n\n\
             [sync]\nlisten_addr = \"127.0.0.1:0\"\nws_addr = \"127.0.0.1:0\"\nudp_addr = \"127.0.0.1:0\"\nmetrics_addr = \"127.0.0.1:0\"\nnode_id = \"sync-test\"\n{link}\n{}\n",
            o.token.join("\n"),
            o.account.join("\n"),
            o.rpc.join("\n"),
            o.sync.join("\n"),
        )
    }
}

async fn terminate(child: &mut Child) -> anyhow::Result<std::process::ExitStatus> {
    let pid = child.id().context("process already reaped")?;
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await?;
    if !status.success() {
        bail!("kill -TERM {pid} failed");
    }
    Ok(tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .context("service did not exit within 10 s of SIGTERM")??)
}

/// Starts `name` and waits for one stdout line per prefix, in order; returns the child and what follows each.
async fn spawn_service(program: &Path, config: &Path, prefixes: &[&str]) -> anyhow::Result<(Child, Vec<String>)> {
    let name = program.file_name().map_or_else(|| program.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut child = Command::new(program)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", std::env::var("MOVAN_TEST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addrs = tokio::time::timeout(START_TIMEOUT, async {
        let mut found = Vec::new();
        while found.len() < prefixes.len() {
            let Some(line) = lines.next_line().await? else { bail!("{name} exited before it was listening") };
            if let Some(addr) = line.strip_prefix(prefixes[found.len()]) {
                found.push(addr.to_owned());
            }
        }
        Ok(found)
    })
    .await
    .with_context(|| format!("{name} did not start within {START_TIMEOUT:?}"))??;
    // Keep draining stdout so the service never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, addrs))
}

/// Path of a workspace binary, building the binaries once if they are missing.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        if let Some(dir) = std::env::var_os("MOVAN_BIN_DIR") {
            return PathBuf::from(dir);
        }
        // target/<profile>/deps/e2e-<hash> → target/<profile>
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe.parent().and_then(Path::parent).expect("target dir").to_path_buf();
        let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--quiet", "-p", "account-server", "-p", "sync-server", "-p", "movan-client", "--bins"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo build for the service binaries");
        assert!(status.success(), "cargo build of the service binaries failed");
        dir
    });
    dir.join(name)
}

/// Path of a built example of the sync-server crate (`cargo build -p sync-server --example NAME`, run once per
/// name here unless `MOVAN_BIN_DIR` is set, whose `examples/` it then uses).
pub fn example(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("MOVAN_BIN_DIR") {
        return PathBuf::from(dir).join("examples").join(name);
    }
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet", "-p", "sync-server", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("running cargo build for an example");
    assert!(status.success(), "cargo build of example {name} failed");
    binary("account-server").with_file_name("examples").join(name)
}

impl Cluster {
    /// The account server's process id, while it runs.
    pub fn account_pid(&self) -> Option<u32> {
        self.account.as_ref().and_then(Child::id)
    }

    /// Kills the account server with SIGKILL (`Child::start_kill`), a crash with no shutdown and no final flush, and
    /// waits for it to exit; returns its exit status. [`Cluster::start_account`] starts it again on the same
    /// addresses.
    pub async fn kill_account(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self.account.take().context("account server already stopped")?;
        child.start_kill().context("sending SIGKILL to the account server")?;
        Ok(tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .context("account server did not exit within 10 s of SIGKILL")??)
    }

    /// Waits at most `timeout` for the account server to exit by itself, e.g. after the test signalled
    /// [`Cluster::account_pid`]; returns its exit status.
    pub async fn wait_account_exit(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let child = self.account.as_mut().context("account server already stopped")?;
        let status = tokio::time::timeout(timeout, child.wait())
            .await
            .with_context(|| format!("account server still running after {timeout:?}"))??;
        self.account = None;
        Ok(status)
    }
}
