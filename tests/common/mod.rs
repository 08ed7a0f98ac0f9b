//! End-to-end harness: starts the real `account-server` and `sync-server` binaries on free ports with a
//! throw-away config, data directory and key pair, and stops them when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

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
}

/// Both services, running.
#[derive(Debug)]
pub struct Cluster {
    /// Temporary directory with config, keys and database; removed on drop.
    pub dir: tempfile::TempDir,
    /// The config file both services use.
    pub config: PathBuf,
    /// e.g. `http://127.0.0.1:40123`.
    pub account_url: String,
    /// e.g. `127.0.0.1:40124`.
    pub sync_addr: String,
    account: Option<Child>,
    sync: Option<Child>,
}

impl Cluster {
    /// Starts both services with the default test configuration.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(Options::default()).await
    }

    /// Starts both services with extra config lines.
    pub async fn start_with(options: Options) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("movan.toml");
        // The sync address is only known once the sync server runs, so the account server starts last.
        write_config(&config, dir.path(), &options, "127.0.0.1:1")?;
        let keygen = Command::new(binary("account-server"))
            .env("RUST_LOG", "warn")
            .args(["keygen", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .status()
            .await
            .context("running account-server keygen")?;
        if !keygen.success() {
            bail!("account-server keygen failed: {keygen}");
        }
        let (sync, sync_addr) = spawn_service("sync-server", &config, &[]).await?;
        write_config(&config, dir.path(), &options, &sync_addr)?;
        let (account, account_url) = spawn_service("account-server", &config, &[]).await?;
        Ok(Self { dir, config, account_url, sync_addr, account: Some(account), sync: Some(sync) })
    }

    /// Sends SIGTERM to the sync server and waits for it to exit; returns its exit status.
    pub async fn terminate_sync(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let child = self.sync.as_mut().context("sync server already stopped")?;
        terminate(child).await
    }

    /// Sends SIGTERM to the account server and waits for it to exit; returns its exit status.
    pub async fn terminate_account(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let child = self.account.as_mut().context("account server already stopped")?;
        terminate(child).await
    }

    /// The Ed25519 private key (PEM) the account server signs tokens with, for tests that forge tokens.
    pub fn private_key_pem(&self) -> anyhow::Result<Vec<u8>> {
        Ok(std::fs::read(self.dir.path().join("jwt.pem"))?)
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

fn write_config(path: &Path, dir: &Path, options: &Options, sync_addr: &str) -> anyhow::Result<()> {
    let d = dir.display();
    let mut text = format!(
        "[token]\nprivate_key_path = \"{d}/jwt.pem\"\npublic_key_path = \"{d}/jwt.pub.pem\"\n{}\n\n\
         [account]\nhttp_addr = \"127.0.0.1:0\"\ndb_path = \"{d}/accounts.sled\"\nsync_addr = \"{sync_addr}\"\n{}\n\n\
         [sync]\nlisten_addr = \"127.0.0.1:0\"\n{}\n",
        options.token.join("\n"),
        options.account.join("\n"),
        options.sync.join("\n"),
    );
    text.push('\n');
    std::fs::write(path, text)?;
    Ok(())
}

/// Starts `name` and waits for its `<name> listening on <addr>` line; returns the child and the address.
async fn spawn_service(name: &str, config: &Path, extra: &[&str]) -> anyhow::Result<(Child, String)> {
    let mut child = Command::new(binary(name))
        .arg("--config")
        .arg(config)
        .args(extra)
        .env("RUST_LOG", std::env::var("MOVAN_TEST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let prefix = format!("{name} listening on ");
    let addr = tokio::time::timeout(START_TIMEOUT, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(addr) = line.strip_prefix(&prefix) {
                return Ok(addr.to_owned());
            }
        }
        bail!("{name} exited before it was listening")
    })
    .await
    .with_context(|| format!("{name} did not start within {START_TIMEOUT:?}"))??;
    // Keep draining stdout so the service never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, addr))
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
