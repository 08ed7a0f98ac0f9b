use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_file(&ConfigFile::parse(Path::new("movan.toml"), text)?)
}

#[test]
fn shipped_config_is_valid_and_matches_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/config.toml");
    let c = Config::load(&path).expect("config/config.toml is valid");
    let d = SyncConfig::default();
    assert_eq!(c.sync.listen_addr, d.listen_addr);
    assert_eq!(c.sync.metrics_addr, d.metrics_addr);
    assert_eq!(c.sync.tick_interval_ms, d.tick_interval_ms);
    assert_eq!(c.sync.history_secs, d.history_secs);
    assert_eq!(c.engine().history_frames, 24_000);
    let (e, de) = (c.engine(), EngineConfig::default());
    assert_eq!(
        (e.quick_match_reserved_percent, e.max_rooms_per_account, e.waiting_room_timeout, e.quick_match_stale),
        (de.quick_match_reserved_percent, de.max_rooms_per_account, de.waiting_room_timeout, de.quick_match_stale)
    );
}

#[test]
fn room_lifetime_keys_are_checked_and_zero_turns_them_off() {
    let e = parse("[sync]\nquick_match_reserved_percent = 95\n").unwrap_err().to_string();
    assert!(e.starts_with("movan.toml: sync.quick_match_reserved_percent:"), "{e}");
    let c = parse("[sync]\nwaiting_room_timeout_secs = 0\nquick_match_stale_secs = 0\n").unwrap();
    assert_eq!((c.engine().waiting_room_timeout, c.engine().quick_match_stale), (None, None));
}

#[test]
fn bad_values_name_the_key() {
    let e = parse("[sync]\ntick_interval_ms = 0\n").unwrap_err().to_string();
    assert_eq!(e, "movan.toml: sync.tick_interval_ms: must be 1 to 10000");
    let e = parse("[sync]\nmin_players = 5\n").unwrap_err().to_string();
    assert!(e.starts_with("movan.toml: sync.min_players:"), "{e}");
    let e = parse("[sync]\nlisten_addr = \"nowhere\"\n").unwrap_err().to_string();
    assert!(e.starts_with("movan.toml: sync.listen_addr:"), "{e}");
    let e = parse("[sync]\nudp_addr = \"nowhere\"\n").unwrap_err().to_string();
    assert!(e.starts_with("movan.toml: sync.udp_addr:"), "{e}");
    let e = parse("[sync]\nudp_kcp_recv_window = 64\n").unwrap_err().to_string();
    assert!(e.starts_with("movan.toml: sync.udp_kcp_recv_window:"), "{e}");
    assert!(parse("[sync]\nudp_addr = \"\"\n").is_ok(), "empty turns UDP off");
    let e = parse("[sync]\nmetrics_addr = \"2030\"\n").unwrap_err().to_string();
    assert_eq!(e, "movan.toml: sync.metrics_addr: must be an address like \"127.0.0.1:2030\", or empty");
    assert!(parse("[sync]\nmetrics_addr = \"\"\n").is_ok(), "empty turns the health endpoint off");
    let e = parse("[sync]\nmax_romms = 3\n").unwrap_err().to_string();
    assert!(e.contains("max_romms"), "{e}");
}

#[test]
fn several_account_servers_replace_the_one() {
    let both = "[sync]\naccount_rpc_addrs = [\"a:1\", \"b:2\"]\n";
    let e = parse(both).unwrap_err().to_string();
    assert!(e.starts_with("movan.toml: sync.account_rpc_addrs: set either"), "{e}");
    let list = parse("[sync]\naccount_rpc_addr = \"\"\naccount_rpc_addrs = [\"a:1\", \"b:2\"]\n").unwrap();
    assert_eq!(list.sync.account_servers(), ["a:1", "b:2"]);
    assert_eq!(parse("").unwrap().sync.account_servers(), ["127.0.0.1:2027"]);
    assert!(parse("[sync]\naccount_rpc_addr = \"\"\n").unwrap().sync.account_servers().is_empty());
    let e = parse("[sync]\naccount_rpc_addr = \"\"\naccount_rpc_addrs = [\"a:1\", \"a:1\"]\n").unwrap_err();
    assert!(e.to_string().contains("listed twice"), "{e}");
    let e = parse("[sync]\naccount_rpc_addr = \"\"\naccount_rpc_addrs = [\"nowhere\"]\n").unwrap_err();
    assert!(e.to_string().contains("not host:port"), "{e}");
}

#[test]
fn shared_sections_are_checked_as_the_account_server_checks_them() {
    let e = parse("[rpc]\ncall_timeout_ms = 5\n").unwrap_err().to_string();
    assert_eq!(e, "movan.toml: rpc.call_timeout_ms: must be 10 to 600000");
    let e = parse("[token]\naudience = \"\"\n").unwrap_err().to_string();
    assert_eq!(e, "movan.toml: token.audience: must not be empty");
    let e = parse("[token]\npublic_key_pth = \"k.pem\"\n").unwrap_err().to_string();
    assert!(e.contains("public_key_pth"), "a typo in [token] is refused: {e}");
}

#[test]
fn unknown_sections_stop_the_sync_server_the_account_servers_do_not() {
    let e = parse("[synk]\nmax_rooms = 3\n").unwrap_err().to_string();
    assert!(e.starts_with("movan.toml: synk: unknown section; did you mean [sync]?"), "{e}");
    let e = parse("[token]\n[tokens]\n").unwrap_err().to_string();
    assert!(e.starts_with("movan.toml: tokens: unknown section; did you mean [token]?"), "{e}");
    parse("[account]\nhttp_addr = \"127.0.0.1:1\"\n[token]\nprivate_key_path = \"k\"\nrefresh_ttl_secs = 5\n")
        .expect("the account server's section and [token] keys are fine");
    let e = parse("[token]\nissuar = \"x\"\n").unwrap_err().to_string();
    assert!(e.starts_with("movan.toml: token") && e.contains("issuar"), "{e}");
}
