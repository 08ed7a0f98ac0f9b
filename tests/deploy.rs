//! The container set-up (Dockerfile, deploy/): its config files load as the binaries load them, and the compose file
//! wires what they name.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn deploy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(name)
}

#[test]
fn the_deploy_configs_are_valid() {
    let account = account_server::config::Config::load(&deploy("account.toml")).unwrap();
    assert_eq!(account.account.store, account_server::config::StoreKind::Postgres);
    for n in [1, 2] {
        let sync = sync_server::config::Config::load(&deploy(&format!("sync-{n}.toml"))).unwrap();
        assert_eq!(sync.sync.node_id, format!("sync-{n}"));
        assert_eq!(sync.sync.account_servers(), ["account-1:2027", "account-2:2027"]);
    }
}

#[test]
fn the_compose_file_starts_what_the_configs_name() {
    let compose = std::fs::read_to_string(deploy("docker-compose.yml")).unwrap();
    for service in ["postgres:", "keygen:", "account-1:", "account-2:", "sync-1:", "sync-2:"] {
        assert!(compose.contains(&format!("\n  {service}")), "{service} missing");
    }
    for file in ["account.toml", "sync-1.toml", "sync-2.toml"] {
        assert!(compose.contains(&format!("./{file}:/etc/movan/")), "{file} not mounted");
    }
    let dockerfile = std::fs::read_to_string(deploy("../Dockerfile")).unwrap();
    assert!(dockerfile.contains("USER movan"), "the image runs as a non-root user");
}
