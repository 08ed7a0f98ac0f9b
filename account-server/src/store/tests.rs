#![allow(clippy::unwrap_used)]

use super::*;

fn temp_store() -> SledStore {
    SledStore::from_db(sled::Config::new().temporary(true).open().unwrap()).unwrap()
}

fn grant(sid: &str, expires_at: u64) -> RefreshGrant {
    RefreshGrant { sid: sid.into(), uid: "1000".into(), expires_at }
}

#[test]
fn usernames_are_unique_ignoring_case_and_uids_differ() {
    let store = temp_store();
    let a = store.create_user("Alice", "hash", Role::Player, 1).unwrap();
    assert!(matches!(store.create_user("aLiCe", "hash", Role::Admin, 2), Err(StoreError::UsernameTaken)));
    let b = store.create_user("bob", "hash", Role::Admin, 3).unwrap();
    assert_ne!(a.uid, b.uid);
    assert!(a.uid.parse::<u64>().unwrap() >= UID_OFFSET);
    assert_eq!(store.user_by_name("ALICE").unwrap().unwrap(), a);
    assert_eq!(store.user(&a.uid).unwrap().unwrap().username, "Alice");
    assert_eq!((a.role, b.role), (Role::Player, Role::Admin));
    assert!(store.user_by_name("carol").unwrap().is_none());
}

#[test]
fn uids_count_up_from_1000_skip_nothing_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = SledStore::open(&path).unwrap();
    let uid = |store: &SledStore, name: &str| store.create_user(name, "h", Role::Player, 1).unwrap().uid;
    assert_eq!(uid(&store, "a"), "1000");
    assert!(matches!(store.create_user("A", "h", Role::Player, 1), Err(StoreError::UsernameTaken)));
    assert_eq!(uid(&store, "b"), "1001", "a taken username uses no uid");
    drop(store);
    let store = SledStore::open(&path).unwrap();
    assert_eq!(uid(&store, "c"), "1002", "a restart continues the count");
}

#[test]
fn a_database_without_the_counter_continues_after_its_largest_uid() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let users = db.open_tree("users").unwrap();
    let old = |uid: &str| {
        format!(r#"{{"uid":"{uid}","username":"u{uid}","password_hash":"h","created_at":1,"role":"player"}}"#)
    };
    for uid in ["1014", "2001003", "999"] {
        users.insert(uid, old(uid).as_bytes()).unwrap();
    }
    let store = SledStore::from_db(db).unwrap();
    assert_eq!(store.create_user("new", "h", Role::Player, 1).unwrap().uid, "2001004");
}

#[test]
fn roles_are_set_by_username_ignoring_case() {
    let store = temp_store();
    let a = store.create_user("Alice", "hash", Role::Player, 1).unwrap();
    let promoted = store.set_role_by_name("ALICE", Role::Admin).unwrap().unwrap();
    assert_eq!(promoted, User { role: Role::Admin, ..a.clone() });
    assert_eq!(store.user(&a.uid).unwrap().unwrap().role, Role::Admin);
    assert_eq!(store.set_role_by_name("nobody", Role::Admin).unwrap(), None);
    assert_eq!(serde_json::to_value(Role::Admin).unwrap(), "admin");
}

#[test]
fn records_without_a_ban_field_still_decode() {
    let old = r#"{"uid":"1000","username":"a","password_hash":"h","created_at":1,"role":"player"}"#;
    let user: User = serde_json::from_str(old).unwrap();
    assert!(!user.is_banned());
    assert!(!String::from_utf8(encode(&user)).unwrap().contains("banned_at"));
}

#[test]
fn a_ban_revokes_every_session_of_the_user_and_refuses_new_ones() {
    let store = temp_store();
    let alice = store.create_user("alice", "hash", Role::Player, 1).unwrap();
    let bob = store.create_user("bob", "hash", Role::Player, 1).unwrap();
    let session = |uid: &str| Session { uid: uid.into(), created_at: 1, expires_at: 100, revoked: false, key: None };
    let grant = |sid: &str, uid: &str| RefreshGrant { sid: sid.into(), uid: uid.into(), expires_at: 100 };
    for (i, sid) in ["a1", "a2"].into_iter().enumerate() {
        store.create_session(sid, &session(&alice.uid), &[i as u8; 32], &grant(sid, &alice.uid)).unwrap();
    }
    store.create_session("b1", &session(&bob.uid), &[9; 32], &grant("b1", &bob.uid)).unwrap();

    let banned = store.set_banned(&alice.uid, Some(50)).unwrap().unwrap();
    assert_eq!(banned.banned_at, Some(50));
    assert!(store.session("a1").unwrap().unwrap().revoked && store.session("a2").unwrap().unwrap().revoked);
    assert!(!store.session("b1").unwrap().unwrap().revoked);
    let refused = store.create_session("a3", &session(&alice.uid), &[3; 32], &grant("a3", &alice.uid));
    assert!(matches!(refused, Err(StoreError::Banned)));
    assert!(store.session("a3").unwrap().is_none());
    assert_eq!(store.spend_refresh_token(&[3; 32]).unwrap(), None);

    assert!(!store.set_banned(&alice.uid, None).unwrap().unwrap().is_banned());
    store.create_session("a4", &session(&alice.uid), &[4; 32], &grant("a4", &alice.uid)).unwrap();
    assert_eq!(store.set_banned("999999", Some(1)).unwrap(), None);
}

#[test]
fn refresh_tokens_are_spent_once_and_not_added_to_revoked_sessions() {
    let store = temp_store();
    let key = SessionKey::from_bytes([5; 32]);
    let session = Session { uid: "1000".into(), created_at: 10, expires_at: 100, revoked: false, key: Some(key) };
    store.create_session("s1", &session, &[1; 32], &grant("s1", 100)).unwrap();
    assert_eq!(store.spend_refresh_token(&[1; 32]).unwrap(), Some(RefreshUse::Fresh(grant("s1", 100))));
    assert_eq!(store.spend_refresh_token(&[1; 32]).unwrap(), Some(RefreshUse::Reused(grant("s1", 100))));
    assert_eq!(store.spend_refresh_token(&[1; 32]).unwrap(), Some(RefreshUse::Reused(grant("s1", 100))));

    let other = SessionKey::from_bytes([6; 32]);
    let kept = store.extend_session(&[2; 32], &grant("s1", 200), &other).unwrap().unwrap();
    assert_eq!(kept.as_bytes(), &[5; 32], "a session keeps its key");
    assert_eq!(store.session("s1").unwrap().unwrap().expires_at, 200);
    assert!(store.revoke_session("s1").unwrap());
    assert!(store.session("s1").unwrap().unwrap().revoked);
    assert!(store.extend_session(&[3; 32], &grant("s1", 300), &other).unwrap().is_none());
    assert_eq!(store.spend_refresh_token(&[3; 32]).unwrap(), None);
    assert!(store.extend_session(&[4; 32], &grant("nope", 300), &other).unwrap().is_none());
    assert!(!store.revoke_session("nope").unwrap());
}

#[test]
fn session_keys_are_stored_and_old_sessions_get_one_at_refresh() {
    let store = temp_store();
    let key = SessionKey::from_bytes([7; 32]);
    let session = Session { uid: "1000".into(), created_at: 10, expires_at: 100, revoked: false, key: Some(key) };
    store.create_session("s1", &session, &[1; 32], &grant("s1", 100)).unwrap();
    assert_eq!(store.session("s1").unwrap().unwrap().key.unwrap().as_bytes(), &[7; 32]);
    let record = String::from_utf8(store.sessions.get("s1").unwrap().unwrap().to_vec()).unwrap();
    assert!(record.contains(&format!("\"key\":\"{}\"", SessionKey::from_bytes([7; 32]).to_base64())), "{record}");
    assert!(!format!("{:?}", store.session("s1").unwrap().unwrap()).contains("Bwc"), "Debug shows no key");

    // A record written before encrypted sessions.
    store.sessions.insert("old", r#"{"uid":"1000","created_at":1,"expires_at":100,"revoked":false}"#).unwrap();
    assert!(store.session("old").unwrap().unwrap().key.is_none());
    let fresh = SessionKey::from_bytes([8; 32]);
    let given = store.extend_session(&[2; 32], &grant("old", 200), &fresh).unwrap().unwrap();
    assert_eq!(given.as_bytes(), &[8; 32]);
    assert_eq!(store.session("old").unwrap().unwrap().key.unwrap().as_bytes(), &[8; 32]);

    store.sessions.insert("bad", r#"{"uid":"1","created_at":1,"expires_at":1,"revoked":false,"key":"AAAA"}"#).unwrap();
    assert!(matches!(store.session("bad"), Err(StoreError::Corrupt { tree: "sessions", .. })));
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

#[test]
fn corrupt_records_are_errors() {
    let store = temp_store();
    store.sessions.insert("s1", "not json").unwrap();
    assert!(matches!(store.session("s1"), Err(StoreError::Corrupt { tree: "sessions", .. })));
    assert!(matches!(store.revoke_session("s1"), Err(StoreError::Corrupt { tree: "sessions", .. })));
}

#[test]
fn expired_refresh_tokens_are_pruned_spent_or_not() {
    let store = temp_store();
    let session = Session { uid: "1000".into(), created_at: 10, expires_at: 300, revoked: false, key: None };
    store.create_session("s1", &session, &[1; 32], &grant("s1", 100)).unwrap();
    store.extend_session(&[2; 32], &grant("s1", 200), &SessionKey::from_bytes([1; 32])).unwrap().unwrap();
    store.extend_session(&[3; 32], &grant("s1", 300), &SessionKey::from_bytes([1; 32])).unwrap().unwrap();
    assert!(matches!(store.spend_refresh_token(&[1; 32]).unwrap(), Some(RefreshUse::Fresh(_))));
    assert_eq!(store.prune_refresh_tokens(99).unwrap(), 0);
    assert_eq!(store.prune_refresh_tokens(200).unwrap(), 2, "the spent one of 100 and the unused one of 200");
    assert_eq!(store.spend_refresh_token(&[1; 32]).unwrap(), None);
    assert_eq!(store.spend_refresh_token(&[2; 32]).unwrap(), None);
    assert_eq!(store.spend_refresh_token(&[3; 32]).unwrap(), Some(RefreshUse::Fresh(grant("s1", 300))));
}
