#![allow(clippy::unwrap_used)]

use super::testing::{on_every_store, temp_sled};
use super::*;

on_every_store!(
    usernames_are_unique_ignoring_case_and_uids_differ,
    uids_count_up_from_1000_and_skip_nothing,
    roles_are_set_by_username_ignoring_case,
    a_ban_revokes_every_session_of_the_user_and_refuses_new_ones,
    refresh_tokens_are_spent_once_and_not_added_to_revoked_sessions,
    a_refresh_token_is_spent_once_under_concurrency,
    session_keys_are_stored_and_kept,
    expired_refresh_tokens_are_pruned_spent_or_not,
);

fn grant(sid: &str, expires_at: u64) -> RefreshGrant {
    RefreshGrant { sid: sid.into(), uid: "1000".into(), expires_at }
}

async fn usernames_are_unique_ignoring_case_and_uids_differ(store: &dyn Store) {
    let a = store.create_user("Alice", "hash", Role::Player, 1).await.unwrap();
    assert!(matches!(store.create_user("aLiCe", "hash", Role::Admin, 2).await, Err(StoreError::UsernameTaken)));
    let b = store.create_user("bob", "hash", Role::Admin, 3).await.unwrap();
    assert_ne!(a.uid, b.uid);
    assert!(a.uid.parse::<u64>().unwrap() >= UID_OFFSET);
    assert_eq!(store.user_by_name("ALICE").await.unwrap().unwrap(), a);
    assert_eq!(store.user(&a.uid).await.unwrap().unwrap().username, "Alice");
    assert_eq!((a.role, b.role), (Role::Player, Role::Admin));
    assert!(store.user_by_name("carol").await.unwrap().is_none());
    // Only ASCII case is ignored, as sled always did.
    store.create_user("émile", "hash", Role::Player, 4).await.unwrap();
    store.create_user("Émile", "hash", Role::Player, 4).await.unwrap();
}

async fn uids_count_up_from_1000_and_skip_nothing(store: &dyn Store) {
    let uid = async |name: &str| store.create_user(name, "h", Role::Player, 1).await.unwrap().uid;
    assert_eq!(uid("a").await, "1000");
    assert!(matches!(store.create_user("A", "h", Role::Player, 1).await, Err(StoreError::UsernameTaken)));
    assert_eq!(uid("b").await, "1001", "a taken username uses no uid");
    let tries = (0..8).map(|i| store.create_user(if i % 2 == 0 { "same" } else { "SAME" }, "h", Role::Player, 1));
    let created = futures::future::join_all(tries).await.into_iter().filter(Result::is_ok).count();
    assert_eq!(created, 1, "one of eight concurrent registrations of a name wins");
    assert_eq!(uid("c").await, "1003", "the losers used no uid");
}

#[tokio::test]
async fn sled_uids_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = SledStore::open(&path).unwrap();
    store.create_user("a", "h", Role::Player, 1).await.unwrap();
    drop(store);
    let store = SledStore::open(&path).unwrap();
    assert_eq!(store.create_user("c", "h", Role::Player, 1).await.unwrap().uid, "1001", "a restart continues");
}

#[tokio::test]
async fn a_database_without_the_counter_continues_after_its_largest_uid() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let users = db.open_tree("users").unwrap();
    let old = |uid: &str| {
        format!(r#"{{"uid":"{uid}","username":"u{uid}","password_hash":"h","created_at":1,"role":"player"}}"#)
    };
    for uid in ["1014", "2001003", "999"] {
        users.insert(uid, old(uid).as_bytes()).unwrap();
    }
    let store = SledStore::from_db(db).unwrap();
    assert_eq!(store.create_user("new", "h", Role::Player, 1).await.unwrap().uid, "2001004");
}

async fn roles_are_set_by_username_ignoring_case(store: &dyn Store) {
    let a = store.create_user("Alice", "hash", Role::Player, 1).await.unwrap();
    let promoted = store.set_role_by_name("ALICE", Role::Admin).await.unwrap().unwrap();
    assert_eq!(promoted, User { role: Role::Admin, ..a.clone() });
    assert_eq!(store.user(&a.uid).await.unwrap().unwrap().role, Role::Admin);
    assert_eq!(store.set_role_by_name("nobody", Role::Admin).await.unwrap(), None);
    assert_eq!(serde_json::to_value(Role::Admin).unwrap(), "admin");
}

#[test]
fn records_without_a_ban_field_still_decode() {
    let old = r#"{"uid":"1000","username":"a","password_hash":"h","created_at":1,"role":"player"}"#;
    let user: User = serde_json::from_str(old).unwrap();
    assert!(!user.is_banned());
    assert!(!String::from_utf8(encode(&user)).unwrap().contains("banned_at"));
}

async fn a_ban_revokes_every_session_of_the_user_and_refuses_new_ones(store: &dyn Store) {
    let alice = store.create_user("alice", "hash", Role::Player, 1).await.unwrap();
    let bob = store.create_user("bob", "hash", Role::Player, 1).await.unwrap();
    let session = |uid: &str| Session { uid: uid.into(), created_at: 1, expires_at: 100, revoked: false, key: None };
    let grant = |sid: &str, uid: &str| RefreshGrant { sid: sid.into(), uid: uid.into(), expires_at: 100 };
    for (i, sid) in ["a1", "a2"].into_iter().enumerate() {
        store.create_session(sid, &session(&alice.uid), &[i as u8; 32], &grant(sid, &alice.uid)).await.unwrap();
    }
    store.create_session("b1", &session(&bob.uid), &[9; 32], &grant("b1", &bob.uid)).await.unwrap();

    let banned = store.set_banned(&alice.uid, Some(50)).await.unwrap().unwrap();
    assert_eq!(banned.banned_at, Some(50));
    assert!(store.session("a1").await.unwrap().unwrap().revoked && store.session("a2").await.unwrap().unwrap().revoked);
    assert!(!store.session("b1").await.unwrap().unwrap().revoked);
    let refused = store.create_session("a3", &session(&alice.uid), &[3; 32], &grant("a3", &alice.uid)).await;
    assert!(matches!(refused, Err(StoreError::Banned)));
    assert!(store.session("a3").await.unwrap().is_none());
    assert_eq!(store.spend_refresh_token(&[3; 32]).await.unwrap(), None);

    assert!(!store.set_banned(&alice.uid, None).await.unwrap().unwrap().is_banned());
    store.create_session("a4", &session(&alice.uid), &[4; 32], &grant("a4", &alice.uid)).await.unwrap();
    assert_eq!(store.set_banned("999999", Some(1)).await.unwrap(), None);

    // Sessions created while a ban lands are either refused or revoked by it: none stays live.
    let bob_uid = bob.uid.as_str();
    let logins = (0..16u8).map(|i| {
        let sid = format!("c{i}");
        async move {
            let _ = store.create_session(&sid, &session(bob_uid), &[100 + i; 32], &grant(&sid, bob_uid)).await;
        }
    });
    let ban = async { store.set_banned(&bob.uid, Some(60)).await.unwrap() };
    futures::future::join(futures::future::join_all(logins), ban).await;
    for i in 0..16 {
        let live = store.session(&format!("c{i}")).await.unwrap().is_some_and(|s| !s.revoked);
        assert!(!live, "session c{i} outlived the ban");
    }
}

async fn refresh_tokens_are_spent_once_and_not_added_to_revoked_sessions(store: &dyn Store) {
    let key = SessionKey::from_bytes([5; 32]);
    let session = Session { uid: "1000".into(), created_at: 10, expires_at: 100, revoked: false, key: Some(key) };
    store.create_session("s1", &session, &[1; 32], &grant("s1", 100)).await.unwrap();
    assert_eq!(store.spend_refresh_token(&[1; 32]).await.unwrap(), Some(RefreshUse::Fresh(grant("s1", 100))));
    assert_eq!(store.spend_refresh_token(&[1; 32]).await.unwrap(), Some(RefreshUse::Reused(grant("s1", 100))));
    assert_eq!(store.spend_refresh_token(&[1; 32]).await.unwrap(), Some(RefreshUse::Reused(grant("s1", 100))));

    let other = SessionKey::from_bytes([6; 32]);
    let kept = store.extend_session(&[2; 32], &grant("s1", 200), &other).await.unwrap().unwrap();
    assert_eq!(kept.as_bytes(), &[5; 32], "a session keeps its key");
    assert_eq!(store.session("s1").await.unwrap().unwrap().expires_at, 200);
    assert!(store.extend_session(&[5; 32], &grant("s1", 150), &other).await.unwrap().is_some());
    assert_eq!(store.session("s1").await.unwrap().unwrap().expires_at, 200, "an expiry never moves back");
    assert!(store.revoke_session("s1").await.unwrap());
    assert!(store.session("s1").await.unwrap().unwrap().revoked);
    assert!(store.extend_session(&[3; 32], &grant("s1", 300), &other).await.unwrap().is_none());
    assert_eq!(store.spend_refresh_token(&[3; 32]).await.unwrap(), None);
    assert!(store.extend_session(&[4; 32], &grant("nope", 300), &other).await.unwrap().is_none());
    assert!(!store.revoke_session("nope").await.unwrap());
}

async fn a_refresh_token_is_spent_once_under_concurrency(store: &dyn Store) {
    let session = Session { uid: "1000".into(), created_at: 10, expires_at: 100, revoked: false, key: None };
    store.create_session("s1", &session, &[1; 32], &grant("s1", 100)).await.unwrap();
    let spends = (0..16).map(|_| store.spend_refresh_token(&[1; 32]));
    let uses = futures::future::join_all(spends).await;
    let fresh = uses.iter().filter(|u| matches!(u, Ok(Some(RefreshUse::Fresh(_))))).count();
    let reused = uses.iter().filter(|u| matches!(u, Ok(Some(RefreshUse::Reused(_))))).count();
    assert_eq!((fresh, reused), (1, 15), "{uses:?}");
}

async fn session_keys_are_stored_and_kept(store: &dyn Store) {
    let key = SessionKey::from_bytes([7; 32]);
    let session = Session { uid: "1000".into(), created_at: 10, expires_at: 100, revoked: false, key: Some(key) };
    store.create_session("s1", &session, &[1; 32], &grant("s1", 100)).await.unwrap();
    let read = store.session("s1").await.unwrap().unwrap();
    assert_eq!(read.key.as_ref().unwrap().as_bytes(), &[7; 32]);
    assert_eq!((read.uid.as_str(), read.created_at, read.expires_at, read.revoked), ("1000", 10, 100, false));
    assert!(!format!("{read:?}").contains("Bwc"), "Debug shows no key");

    let keyless = Session { key: None, ..session };
    store.create_session("s2", &keyless, &[2; 32], &grant("s2", 100)).await.unwrap();
    assert!(store.session("s2").await.unwrap().unwrap().key.is_none());
    let fresh = SessionKey::from_bytes([8; 32]);
    let given = store.extend_session(&[3; 32], &grant("s2", 200), &fresh).await.unwrap().unwrap();
    assert_eq!(given.as_bytes(), &[8; 32]);
    assert_eq!(store.session("s2").await.unwrap().unwrap().key.unwrap().as_bytes(), &[8; 32]);
}

#[tokio::test]
async fn sled_session_keys_are_base64_in_records_and_old_records_decode() {
    let store = temp_sled();
    let key = SessionKey::from_bytes([7; 32]);
    let session = Session { uid: "1000".into(), created_at: 10, expires_at: 100, revoked: false, key: Some(key) };
    store.create_session("s1", &session, &[1; 32], &grant("s1", 100)).await.unwrap();
    let record = String::from_utf8(store.sessions.get("s1").unwrap().unwrap().to_vec()).unwrap();
    assert!(record.contains(&format!("\"key\":\"{}\"", SessionKey::from_bytes([7; 32]).to_base64())), "{record}");

    // A record written before encrypted sessions.
    store.sessions.insert("old", r#"{"uid":"1000","created_at":1,"expires_at":100,"revoked":false}"#).unwrap();
    assert!(store.session("old").await.unwrap().unwrap().key.is_none());
    let fresh = SessionKey::from_bytes([8; 32]);
    let given = store.extend_session(&[2; 32], &grant("old", 200), &fresh).await.unwrap().unwrap();
    assert_eq!(given.as_bytes(), &[8; 32]);

    store.sessions.insert("bad", r#"{"uid":"1","created_at":1,"expires_at":1,"revoked":false,"key":"AAAA"}"#).unwrap();
    assert!(matches!(store.session("bad").await, Err(StoreError::Corrupt { tree: "sessions", .. })));
}

#[test]
fn open_waits_for_a_lock_released_soon_but_not_forever() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let held = SledStore::open(&path).unwrap();
    let e = SledStore::open_waiting(&path, Duration::from_millis(50)).unwrap_err();
    assert!(matches!(e, OpenError::Locked { .. }), "{e}");
    assert!(e.to_string().contains("another account server is probably running with the same account.db_path"));
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        drop(held);
    });
    SledStore::open_waiting(&path, Duration::from_secs(30)).unwrap();
    releaser.join().unwrap();
}

#[tokio::test]
async fn corrupt_sled_records_are_errors() {
    let store = temp_sled();
    store.sessions.insert("s1", "not json").unwrap();
    assert!(matches!(store.session("s1").await, Err(StoreError::Corrupt { tree: "sessions", .. })));
    assert!(matches!(store.revoke_session("s1").await, Err(StoreError::Corrupt { tree: "sessions", .. })));
}

async fn expired_refresh_tokens_are_pruned_spent_or_not(store: &dyn Store) {
    let session = Session { uid: "1000".into(), created_at: 10, expires_at: 300, revoked: false, key: None };
    store.create_session("s1", &session, &[1; 32], &grant("s1", 100)).await.unwrap();
    store.extend_session(&[2; 32], &grant("s1", 200), &SessionKey::from_bytes([1; 32])).await.unwrap().unwrap();
    store.extend_session(&[3; 32], &grant("s1", 300), &SessionKey::from_bytes([1; 32])).await.unwrap().unwrap();
    assert!(matches!(store.spend_refresh_token(&[1; 32]).await.unwrap(), Some(RefreshUse::Fresh(_))));
    assert_eq!(store.prune_refresh_tokens(99).await.unwrap(), 0);
    assert_eq!(store.prune_refresh_tokens(200).await.unwrap(), 2, "the spent one of 100 and the unused one of 200");
    assert_eq!(store.spend_refresh_token(&[1; 32]).await.unwrap(), None);
    assert_eq!(store.spend_refresh_token(&[2; 32]).await.unwrap(), None);
    assert_eq!(store.spend_refresh_token(&[3; 32]).await.unwrap(), Some(RefreshUse::Fresh(grant("s1", 300))));
}

#[tokio::test]
async fn postgres_migrations_apply_once_and_the_uid_counter_survives_a_restart() {
    let Some(url) = super::testing::harness::fresh_database().await else { return };
    let store = PgStore::connect(&url, 2).await.unwrap();
    assert_eq!(store.create_user("a", "h", Role::Player, 1).await.unwrap().uid, "1000");
    drop(store);
    let store = PgStore::connect(&url, 2).await.unwrap();
    assert_eq!(store.create_user("b", "h", Role::Player, 1).await.unwrap().uid, "1001", "a restart continues");
    let client = store.client().await.unwrap();
    let versions: Vec<(i32, String)> = client
        .query("SELECT version, name FROM movan_schema ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(versions, [(1, "initial".to_owned())], "each migration recorded once");
    client.execute("INSERT INTO movan_schema (version, name) VALUES (99, 'future')", &[]).await.unwrap();
    let e = PgStore::connect(&url, 2).await.unwrap_err();
    assert!(matches!(e, PgOpenError::Migrate { error: MigrateError::TooNew { found: 99, known: 1 }, .. }), "{e}");
}

#[tokio::test]
async fn an_unreachable_postgres_is_named_without_its_password() {
    let e = PgStore::connect("postgres://movan:hunter2@127.0.0.1:1/movan", 1).await.unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("cannot connect to PostgreSQL at movan@127.0.0.1:1/movan: "), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(matches!(PgStore::connect("mysql://x", 1).await, Err(PgOpenError::Url(_))));
}
