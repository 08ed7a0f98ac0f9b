//! `account-server migrate-from-sled --from PATH`: a sled database copied into PostgreSQL, then copied again with
//! nothing to add. Skipped loudly without PostgreSQL (see `common/postgres.rs`).
#![allow(clippy::unwrap_used)]

#[path = "common/postgres.rs"]
mod postgres;

use std::path::Path;
use std::process::{Command, Output};

use account_server::store::{MatchRecord, RefreshGrant, RefreshUse, ReplayRetention, ReplayUsage, Role, Session};
use account_server::{PgStore, SledStore, Store, StoreError};
use movan_protocol::crypto::SessionKey;
use movan_protocol::rpc::MatchReport;

fn game(id: &str, players: &[&str], ended_at: f64) -> MatchRecord {
    let report = MatchReport {
        match_id: id.into(),
        room_id: "room".into(),
        players: players.iter().map(|p| (*p).to_owned()).collect(),
        frame_count: 120,
        duration_secs: 6.0,
        end_reason: movan_protocol::EndReason::AllLeft,
        results: Some(serde_json::json!({"winner": players[0]})),
        started_at: ended_at - 6.0,
        ended_at,
        first_desync_frame: None,
    };
    MatchRecord { report, node_id: "sync-1".into() }
}

fn migrate(dir: &Path, url: &str, from: &Path) -> Output {
    let config = dir.join("config.toml");
    let text = format!("[account]\nstore = \"postgres\"\ndatabase_url = {url:?}\n");
    std::fs::write(&config, text).unwrap();
    Command::new(env!("CARGO_BIN_EXE_account-server"))
        .args(["migrate-from-sled", "--config", config.to_str().unwrap(), "--from", from.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Fills a sled database: three users (one banned), two sessions (one with a key), a spent and an unused refresh
/// token, five matches and two replays.
async fn fill(sled: &SledStore) -> (String, String) {
    let alice = sled.create_user("Alice", "hash-a", Role::Admin, 10).await.unwrap().uid;
    let bob = sled.create_user("bob", "hash-b", Role::Player, 11).await.unwrap().uid;
    sled.create_user("carol", "hash-c", Role::Player, 12).await.unwrap();
    let key = SessionKey::from_bytes([7; 32]);
    let session =
        Session { uid: alice.clone(), created_at: 20, expires_at: 9_000_000_000, revoked: false, key: Some(key) };
    let grant = |sid: &str, uid: &str| RefreshGrant { sid: sid.into(), uid: uid.into(), expires_at: 9_000_000_000 };
    sled.create_session("s-alice", &session, &[1; 32], &grant("s-alice", &alice)).await.unwrap();
    sled.spend_refresh_token(&[1; 32]).await.unwrap();
    sled.extend_session(&[2; 32], &grant("s-alice", &alice), &SessionKey::from_bytes([8; 32])).await.unwrap();
    let keyless = Session { uid: bob.clone(), key: None, ..session };
    sled.create_session("s-bob", &keyless, &[3; 32], &grant("s-bob", &bob)).await.unwrap();
    sled.set_banned(&bob, Some(30)).await.unwrap();
    for (i, ended) in [1.0, 2.0, 3.0, 3.0, 5.0].into_iter().enumerate() {
        sled.insert_match(&game(&format!("m{i}"), &[&alice, &bob], 1_700_000_000.0 + ended)).await.unwrap();
    }
    let keep = ReplayRetention { max_count: 10, max_bytes: 10_000 };
    sled.insert_replay("m0", &[1; 100], &keep).await.unwrap();
    sled.insert_replay("m1", &[2; 50], &keep).await.unwrap();
    (alice, bob)
}

#[tokio::test]
async fn a_sled_database_is_copied_into_postgres_and_a_rerun_adds_nothing() {
    let Some(url) = postgres::fresh_database().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("accounts.sled");
    let (alice, bob) = {
        let sled = SledStore::open(&path).unwrap();
        let uids = fill(&sled).await;
        sled.flush().await.unwrap();
        uids
    };

    let out = migrate(dir.path(), &url, &path);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("copied 3 users, 2 sessions, 3 refresh tokens, 5 matches and 2 replays from "),
        "{stdout}"
    );
    let again = migrate(dir.path(), &url, &path);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let stdout = String::from_utf8(again.stdout).unwrap();
    assert!(stdout.starts_with("copied 0 users, 0 sessions, 0 refresh tokens, 0 matches and 0 replays"), "{stdout}");

    let sled = SledStore::open(&path).unwrap();
    let pg = PgStore::connect(&url, 2).await.unwrap();
    for name in ["alice", "BOB", "carol"] {
        assert_eq!(pg.user_by_name(name).await.unwrap(), sled.user_by_name(name).await.unwrap(), "{name}");
    }
    assert!(pg.user(&bob).await.unwrap().unwrap().is_banned());
    assert!(matches!(pg.create_user("ALICE", "h", Role::Player, 1).await, Err(StoreError::UsernameTaken)));
    assert_eq!(pg.create_user("dave", "h", Role::Player, 1).await.unwrap().uid, "1003", "uids continue after sled's");

    let session = pg.session("s-alice").await.unwrap().unwrap();
    assert_eq!((session.key.unwrap().as_bytes(), session.revoked), (&[7; 32], false));
    assert!(pg.session("s-bob").await.unwrap().unwrap().revoked, "the ban had revoked it");
    assert!(matches!(pg.spend_refresh_token(&[1; 32]).await.unwrap(), Some(RefreshUse::Reused(_))), "spent stays");
    assert!(matches!(pg.spend_refresh_token(&[2; 32]).await.unwrap(), Some(RefreshUse::Fresh(_))));

    // Pages and their cursors are the same on both: a cursor sled handed out pages the same on PostgreSQL.
    let (mut from_sled, mut from_pg) =
        (sled.matches_of(&alice, None, 2).await.unwrap(), pg.matches_of(&alice, None, 2).await.unwrap());
    loop {
        assert_eq!(from_pg, from_sled);
        let Some(next) = from_sled.next else { break };
        from_sled = sled.matches_of(&alice, Some(&next), 2).await.unwrap();
        from_pg = pg.matches_of(&alice, Some(&next), 2).await.unwrap();
    }
    pg.insert_match(&game("m-new", &[&alice], 1_800_000_000.0)).await.unwrap();
    let newest = pg.matches_of(&alice, None, 1).await.unwrap();
    assert_eq!(newest.matches[0].report.match_id, "m-new");

    assert_eq!(pg.replay("m0").await.unwrap().unwrap(), [1; 100]);
    assert_eq!(pg.replay_usage().await.unwrap(), ReplayUsage { count: 2, bytes: 150 });
    // The copied replays are the oldest: the next insert over the limit evicts them first, in sled's order.
    let tight = ReplayRetention { max_count: 2, max_bytes: 10_000 };
    assert_eq!(pg.insert_replay("m2", &[3; 10], &tight).await.unwrap().evicted, ["m0"]);
}

#[test]
fn migrating_needs_the_postgres_store_and_an_existing_sled_database() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[account]\nstore = \"sled\"\n").unwrap();
    let run = |from: &str| {
        Command::new(env!("CARGO_BIN_EXE_account-server"))
            .args(["migrate-from-sled", "--config", config.to_str().unwrap(), "--from", from])
            .output()
            .unwrap()
    };
    let out = run("nowhere");
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("account.store: must be \"postgres\""), "{stderr}");
    let out = migrate(dir.path(), "postgres://movan@127.0.0.1:1/movan", &dir.path().join("missing.sled"));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success() && stderr.contains("no sled database there"), "{stderr}");
}
