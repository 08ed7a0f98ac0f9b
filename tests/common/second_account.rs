//! A second account server beside a [`Cluster`]'s, with its own database, the same token keys and RPC secret, and
//! the sync server linked to both (`sync.account_rpc_addrs`).

use anyhow::Context as _;
use tokio::process::Child;

use super::{Cluster, binary, spawn_service};

/// The second account server.
#[derive(Debug)]
pub struct SecondAccount {
    /// e.g. `http://127.0.0.1:40130`.
    pub url: String,
    /// Its RPC address.
    pub rpc: String,
    child: Option<Child>,
}

impl SecondAccount {
    /// Kills it (SIGKILL), as a crash would.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        let mut child = self.child.take().context("already stopped")?;
        child.start_kill()?;
        child.wait().await?;
        Ok(())
    }
}

/// One more sync node beside a [`Cluster`]'s, linked to the same account servers.
#[derive(Debug)]
pub struct ExtraSync {
    /// Its TCP address for game clients.
    pub addr: String,
    child: Option<Child>,
}

impl ExtraSync {
    /// Kills it (SIGKILL), as a crash would.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        let mut child = self.child.take().context("already stopped")?;
        child.start_kill()?;
        child.wait().await?;
        Ok(())
    }
}

impl Cluster {
    /// Starts another sync node `node_id` with the cluster's sync settings, linked to the same account servers.
    pub async fn start_extra_sync(&self, node_id: &str) -> anyhow::Result<ExtraSync> {
        let config = self.dir.path().join(format!("movan-{node_id}.toml"));
        let (http, rpc) = (self.http_addr().to_owned(), self.account_rpc.clone());
        let text = self.config_text(&http, &rpc, &rpc, "accounts.sled");
        std::fs::write(&config, text.replace("node_id = \"sync-test\"", &format!("node_id = \"{node_id}\"")))?;
        let prefixes = ["sync-server listening on "];
        let (child, addrs) = spawn_service(&binary("sync-server"), &config, &prefixes).await?;
        Ok(ExtraSync { addr: addrs[0].clone(), child: Some(child) })
    }

    /// Starts a second account server (database `accounts-b.sled`), then restarts the sync server linked to both.
    pub async fn link_second_account(&mut self) -> anyhow::Result<SecondAccount> {
        let config = self.dir.path().join("movan-b.toml");
        std::fs::write(&config, self.config_text("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:1", "accounts-b.sled"))?;
        let prefixes = ["account-server listening on ", "account-server rpc listening on "];
        let (child, addrs) = spawn_service(&binary("account-server"), &config, &prefixes).await?;
        let second = SecondAccount { url: addrs[0].clone(), rpc: addrs[1].clone(), child: Some(child) };
        self.terminate_sync().await?;
        self.linked = vec![self.account_rpc.clone(), second.rpc.clone()];
        let (http, rpc) = (self.http_addr().to_owned(), self.account_rpc.clone());
        self.write_config(&http, &rpc, &rpc)?;
        self.start_sync().await?;
        Ok(second)
    }
}
