//! End-to-end tests of server and client on real sockets (127.0.0.1, port 0).
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::FutureExt;
use movan_rpc::{
    CallError, ConfigError, ConnectionState, DisconnectReason, HandlerError, Handlers, RpcClient, RpcConfig, RpcServer,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use support::*;
use tokio::sync::{Semaphore, mpsc};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Add {
    a: i64,
    b: i64,
}

fn math_handlers() -> Handlers {
    Handlers::new()
        .method("add", |_peer, req: Add| async move { Ok::<_, HandlerError>(req.a + req.b) })
        .method("echo", |_peer, value: Value| async move { Ok::<_, HandlerError>(value) })
        .method("fail", |_peer, room: String| async move {
            Err::<(), _>(HandlerError::from(format!("no such room: {room}")))
        })
        .method("sleep_ms", |_peer, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, HandlerError>(ms)
        })
        .method("slow_add", |_peer, req: Add| async move {
            tokio::time::sleep(Duration::from_millis(req.a.unsigned_abs() % 7)).await;
            Ok::<_, HandlerError>(req.a + req.b)
        })
        .method("unit", |_peer, ()| async move { Ok::<_, HandlerError>(()) })
        .method("whoami", |peer, ()| async move { Ok::<_, HandlerError>(peer.node_id().to_owned()) })
}

#[tokio::test]
async fn calls_go_both_ways() {
    let server = start_server(config("account"), math_handlers()).await;
    let client = client_with(server.addr, config("sync-1"), math_handlers(), |_| async {}.boxed());
    assert!(client.wait_connected(PATIENCE).await);

    let sum: i64 = client.call("add", &Add { a: 2, b: 40 }).await.unwrap();
    assert_eq!(sum, 42);
    let me: String = client.call("whoami", &()).await.unwrap();
    assert_eq!(me, "sync-1", "the server sees the client's node id");
    client.call::<_, ()>("unit", &()).await.unwrap();
    assert_eq!(client.peer().unwrap().node_id(), "account", "the client sees the server's node id");

    eventually("server lists the client", || server.peers.by_node("sync-1").is_some()).await;
    let sync = server.peers.by_node("sync-1").unwrap();
    let sum: i64 = sync.call("add", &Add { a: 1, b: 2 }).await.unwrap();
    assert_eq!(sum, 3);
    let me: String = sync.call("whoami", &()).await.unwrap();
    assert_eq!(me, "account");
    assert_eq!(server.peers.len(), 1);
    assert_eq!(server.peers.list()[0].id(), sync.id());
    assert_eq!(server.peers.get(sync.id()).unwrap().node_id(), "sync-1");

    client.shutdown();
    server.stop().await;
}

#[tokio::test]
async fn two_hundred_concurrent_calls_are_all_answered() {
    let server = start_server(config("account"), math_handlers()).await;
    let client = plain_client(server.addr, config("sync-1"));
    assert!(client.wait_connected(PATIENCE).await);

    // Varying handler delays make replies come back out of order.
    let calls = (0..200i64).map(|i| {
        let client = client.clone();
        async move { (i, client.call::<_, i64>("slow_add", &Add { a: i, b: 1000 }).await) }
    });
    let results = soon("200 calls", futures::future::join_all(calls)).await;
    for (i, sum) in results {
        assert_eq!(sum, Ok(i + 1000));
    }
    server.stop().await;
}

#[tokio::test]
async fn slow_handler_times_out_and_the_connection_keeps_working() {
    let server = start_server(config("account"), math_handlers()).await;
    let client = plain_client(server.addr, config("sync-1"));
    assert!(client.wait_connected(PATIENCE).await);

    // Timeout, not the reply the handler would send after 3 s.
    let result = client.call_with_timeout::<_, u64>("sleep_ms", &3000, Duration::from_millis(200)).await;
    assert_eq!(result, Err(CallError::Timeout));
    assert_eq!(result.unwrap_err().code(), "timeout");

    assert!(client.is_connected());
    let sum: i64 = client.call("add", &Add { a: 1, b: 1 }).await.unwrap();
    assert_eq!(sum, 2);

    // The configured default timeout applies to `call`.
    let short = RpcConfig { call_timeout: Duration::from_millis(100), ..config("sync-2") };
    let client2 = plain_client(server.addr, short);
    assert!(client2.wait_connected(PATIENCE).await);
    assert_eq!(client2.call::<_, u64>("sleep_ms", &3000).await, Err(CallError::Timeout));
    server.stop().await;
}

#[tokio::test]
async fn each_failure_has_its_own_code() {
    let server = start_server(config("account"), math_handlers()).await;
    let client = plain_client(server.addr, config("sync-1"));
    assert!(client.wait_connected(PATIENCE).await);

    let unknown = client.call::<_, Value>("nope", &()).await.unwrap_err();
    assert!(matches!(unknown, CallError::UnknownMethod(_)), "{unknown:?}");
    assert_eq!(unknown.code(), "unknown_method");

    let bad = client.call::<_, i64>("add", &json!({"a": "two"})).await.unwrap_err();
    assert!(matches!(bad, CallError::BadParams(_)), "{bad:?}");
    assert_eq!(bad.code(), "bad_params");

    let failed = client.call::<_, ()>("fail", &"lobby").await.unwrap_err();
    assert_eq!(failed, CallError::Handler("no such room: lobby".into()));
    assert_eq!(failed.code(), "handler_error");

    let mismatched = client.call::<_, String>("add", &Add { a: 1, b: 2 }).await.unwrap_err();
    assert!(matches!(mismatched, CallError::BadResponse(_)), "{mismatched:?}");

    // None of these hurt the connection.
    assert_eq!(client.call::<_, i64>("add", &Add { a: 1, b: 2 }).await, Ok(3));
    server.stop().await;
}

#[tokio::test]
async fn calls_over_the_in_flight_limit_are_refused_at_once() {
    let gate = Arc::new(Semaphore::new(0));
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let handlers = Handlers::new().method("wait", {
        let gate = gate.clone();
        move |_peer, ()| {
            let (gate, started_tx) = (gate.clone(), started_tx.clone());
            async move {
                let _ = started_tx.send(());
                let _permit = gate.acquire().await.unwrap();
                Ok::<_, HandlerError>("done")
            }
        }
    });
    let server = start_server(RpcConfig { max_in_flight: 2, ..config("account") }, handlers).await;
    let client = plain_client(server.addr, config("sync-1"));
    assert!(client.wait_connected(PATIENCE).await);

    let first = tokio::spawn({
        let client = client.clone();
        async move { client.call::<_, String>("wait", &()).await }
    });
    let second = tokio::spawn({
        let client = client.clone();
        async move { client.call::<_, String>("wait", &()).await }
    });
    // Both handlers run (and hold the server's two in-flight slots) before the third call is made.
    for _ in 0..2 {
        soon("a call reached its handler", started.recv()).await.unwrap();
    }
    let third = client.call::<_, String>("wait", &()).await.unwrap_err();
    assert!(matches!(third, CallError::Overloaded(_)), "{third:?}");
    assert_eq!(third.code(), "overloaded");

    gate.add_permits(10);
    assert_eq!(first.await.unwrap().unwrap(), "done");
    assert_eq!(second.await.unwrap().unwrap(), "done");
    assert_eq!(client.call::<_, String>("wait", &()).await.unwrap(), "done");

    // The caller's own limit: with max_in_flight 1, a second outstanding call fails locally.
    let gate2 = Arc::new(Semaphore::new(0));
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel();
    let slow = Handlers::new().method("wait", {
        let gate2 = gate2.clone();
        move |_peer, ()| {
            let (gate2, arrived_tx) = (gate2.clone(), arrived_tx.clone());
            async move {
                let _ = arrived_tx.send(());
                let _permit = gate2.acquire().await.unwrap();
                Ok::<_, HandlerError>(())
            }
        }
    });
    let server2 = start_server(config("account2"), slow).await;
    let limited = plain_client(server2.addr, RpcConfig { max_in_flight: 1, ..config("sync-2") });
    assert!(limited.wait_connected(PATIENCE).await);
    let pending = tokio::spawn({
        let limited = limited.clone();
        async move { limited.call::<_, ()>("wait", &()).await }
    });
    // The server runs the first call's handler: it is in flight, so the second one is over the limit.
    soon("first call reaches the server", arrived.recv()).await.unwrap();
    let local = limited.call::<_, ()>("wait", &()).await.unwrap_err();
    assert!(matches!(local, CallError::Overloaded(_)), "{local:?}");
    gate2.add_permits(10);
    pending.await.unwrap().unwrap();

    server.stop().await;
    server2.stop().await;
}

#[tokio::test]
async fn notifications_are_delivered_in_order_both_ways() {
    let (to_server, mut at_server) = mpsc::channel(256);
    let server_handlers = Handlers::new().notification("log", move |peer, n: u32| {
        let to_server = to_server.clone();
        async move {
            to_server.send((peer.node_id().to_owned(), n)).await.unwrap();
        }
    });
    let (to_client, mut at_client) = mpsc::channel(16);
    let client_handlers = Handlers::new().notification("kick", move |_peer, who: String| {
        let to_client = to_client.clone();
        async move {
            to_client.send(who).await.unwrap();
        }
    });
    let server = start_server(config("account"), server_handlers).await;
    let client = client_with(server.addr, config("sync-1"), client_handlers, |_| async {}.boxed());
    assert!(client.wait_connected(PATIENCE).await);

    for n in 0..100u32 {
        client.notify("log", &n).unwrap();
    }
    client.notify("nobody_listens", &()).unwrap();
    client.notify("log", &"not a number").unwrap();
    for expected in 0..100u32 {
        let (node, n) = soon("notification", at_server.recv()).await.unwrap();
        assert_eq!((node.as_str(), n), ("sync-1", expected));
    }

    eventually("server lists the client", || server.peers.by_node("sync-1").is_some()).await;
    server.peers.by_node("sync-1").unwrap().notify("kick", &"player-7").unwrap();
    assert_eq!(soon("server notification", at_client.recv()).await.unwrap(), "player-7");
    assert!(client.is_connected(), "unknown or malformed notifications do not close the connection");
    server.stop().await;
}

#[tokio::test]
async fn heartbeat_payload_reaches_on_heartbeat() {
    let (loads, mut received) = mpsc::channel(64);
    let handlers = Handlers::new().on_heartbeat(move |peer, load| {
        let _ = loads.try_send((peer.node_id().to_owned(), load));
    });
    let server = start_server(config("account"), handlers).await;
    let players = Arc::new(AtomicU32::new(5));
    let client = RpcClient::connect(
        server.addr.to_string(),
        config("sync-1"),
        Handlers::new(),
        {
            let players = players.clone();
            move || Some(json!({"players": players.load(Ordering::Relaxed), "rooms": 2}))
        },
        |_| async {}.boxed(),
    )
    .unwrap();
    assert!(client.wait_connected(PATIENCE).await);

    let (node, load) = soon("first heartbeat", received.recv()).await.unwrap();
    assert_eq!(node, "sync-1");
    assert_eq!(load, Some(json!({"players": 5, "rooms": 2})));
    players.store(9, Ordering::Relaxed);
    loop {
        let (_, load) = soon("updated heartbeat", received.recv()).await.unwrap();
        if load == Some(json!({"players": 9, "rooms": 2})) {
            break;
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn client_reconnects_after_a_server_restart_and_reruns_its_hook() {
    let registrations = Arc::new(AtomicU32::new(0));
    let server_handlers = || {
        let registrations = registrations.clone();
        math_handlers().method("register", move |peer, rooms: u32| {
            let registrations = registrations.clone();
            async move {
                registrations.fetch_add(1, Ordering::SeqCst);
                Ok::<_, HandlerError>(format!("{} registered with {rooms} rooms", peer.node_id()))
            }
        })
    };
    let (hooks, mut hook_runs) = mpsc::channel(16);
    let on_connect = move |peer: movan_rpc::Peer| {
        let hooks = hooks.clone();
        async move {
            let answer: Result<String, _> = peer.call("register", &3u32).await;
            let _ = hooks.send(answer).await;
        }
        .boxed()
    };

    let listener = bind("127.0.0.1:0".parse().unwrap());
    let addr = listener.local_addr().unwrap();
    let server = start_server_on(listener, RpcServer::new(config("account"), server_handlers()).unwrap());
    let client = client_with(addr, config("sync-1"), Handlers::new(), on_connect);
    let mut states = client.watch_state();
    assert_eq!(soon("first hook", hook_runs.recv()).await.unwrap().unwrap(), "sync-1 registered with 3 rooms");
    assert_eq!(registrations.load(Ordering::SeqCst), 1);

    server.stop().await;
    soon("client notices", states.wait_for(|s| *s != ConnectionState::Connected)).await.unwrap();
    assert!(!client.is_connected());
    // Fails without waiting: the call's future is ready at its first poll.
    let call = client.call::<_, i64>("add", &Add { a: 1, b: 1 }).now_or_never();
    assert_eq!(call, Some(Err(CallError::Disconnected)), "calls while disconnected fail fast");

    // Same port, new server.
    let server = start_server_on(bind(addr), RpcServer::new(config("account"), server_handlers()).unwrap());
    assert_eq!(soon("second hook", hook_runs.recv()).await.unwrap().unwrap(), "sync-1 registered with 3 rooms");
    assert_eq!(registrations.load(Ordering::SeqCst), 2);
    assert!(client.is_connected());
    assert_eq!(client.call::<_, i64>("add", &Add { a: 1, b: 1 }).await, Ok(2));

    client.shutdown();
    soon("client stops", states.wait_for(|s| *s == ConnectionState::Stopped)).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn wrong_secret_is_refused() {
    let server = start_server(config("account"), math_handlers()).await;
    let wrong = RpcConfig { secret: "not the secret".into(), ..config("intruder") };
    let client = plain_client(server.addr, wrong);
    let mut states = client.watch_state();
    soon("refusal", states.wait_for(|s| *s == ConnectionState::Rejected)).await.unwrap();
    assert!(!client.wait_connected(Duration::from_millis(500)).await);
    assert_eq!(client.call::<_, i64>("add", &Add { a: 1, b: 1 }).await, Err(CallError::Unauthenticated));
    assert!(server.peers.is_empty());

    // A client with the right secret still gets in.
    let good = plain_client(server.addr, config("sync-1"));
    assert!(good.wait_connected(PATIENCE).await);
    server.stop().await;
}

#[tokio::test]
async fn calls_while_disconnected_fail_fast() {
    // Nothing listens on this port once the listener is dropped.
    let addr = bind("127.0.0.1:0".parse().unwrap()).local_addr().unwrap();
    let client = plain_client(addr, config("sync-1"));
    let call = client.call::<_, i64>("add", &Add { a: 1, b: 1 }).now_or_never();
    assert_eq!(call, Some(Err(CallError::Disconnected)), "fails at the first poll, without waiting");
    assert_eq!(client.notify("log", &1), Err(CallError::Disconnected));
    assert!(!client.is_connected());
    assert!(client.peer().is_none());
}

#[tokio::test]
async fn connection_lost_while_waiting_fails_the_call_at_once() {
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel();
    let handlers = Handlers::new().method("hang", move |_peer, ()| {
        let arrived_tx = arrived_tx.clone();
        async move {
            let _ = arrived_tx.send(());
            std::future::pending::<()>().await;
            Ok::<_, HandlerError>(())
        }
    });
    let server = start_server(config("account"), handlers).await;
    let client = plain_client(server.addr, config("sync-1"));
    assert!(client.wait_connected(PATIENCE).await);
    let peer = client.peer().unwrap();

    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.call_with_timeout::<_, ()>("hang", &(), Duration::from_secs(60)).await }
    });
    soon("the call reaches the server", arrived.recv()).await.unwrap();
    server.stop().await;
    // Long before the call's own 60 s timeout.
    assert_eq!(soon("call fails", waiting).await.unwrap(), Err(CallError::Disconnected));

    // An old handle stays usable as a value but fails fast.
    assert!(!peer.is_connected());
    assert_eq!(peer.call::<_, ()>("hang", &()).await, Err(CallError::Disconnected));
    assert!(peer.disconnect_reason().is_some());
}

#[tokio::test]
async fn server_sees_disconnects() {
    let (gone, mut disconnected) = mpsc::channel(4);
    let handlers = Handlers::new().on_disconnect(move |peer| {
        let _ = gone.try_send((peer.node_id().to_owned(), peer.disconnect_reason()));
    });
    let server = start_server(config("account"), handlers).await;
    let client = plain_client(server.addr, config("sync-1"));
    assert!(client.wait_connected(PATIENCE).await);
    eventually("server lists the client", || server.peers.len() == 1).await;

    drop(client);
    let (node, reason) = soon("disconnect", disconnected.recv()).await.unwrap();
    assert_eq!(node, "sync-1");
    assert_eq!(reason, Some(DisconnectReason::Closed));
    eventually("server forgets the client", || server.peers.is_empty()).await;
    server.stop().await;
}

#[tokio::test]
async fn same_node_reconnecting_replaces_its_old_connection() {
    let server = start_server(config("account"), math_handlers()).await;
    let first = plain_client(server.addr, config("sync-1"));
    assert!(first.wait_connected(PATIENCE).await);
    eventually("first listed", || server.peers.len() == 1).await;
    let old = server.peers.by_node("sync-1").unwrap();

    let second = plain_client(server.addr, config("sync-1"));
    assert!(second.wait_connected(PATIENCE).await);
    eventually("old connection replaced", || !old.is_connected()).await;
    assert_eq!(old.disconnect_reason(), Some(DisconnectReason::Replaced));
    assert_ne!(server.peers.by_node("sync-1").unwrap().id(), old.id());
    first.shutdown();
    server.stop().await;
}

#[tokio::test]
async fn invalid_config_is_rejected_up_front() {
    let empty = RpcConfig::default();
    assert_eq!(RpcServer::new(empty.clone(), Handlers::new()).unwrap_err(), ConfigError::EmptySecret);
    let client = RpcClient::connect("127.0.0.1:1", empty, Handlers::new(), || None, |_| async {}.boxed());
    assert_eq!(client.unwrap_err(), ConfigError::EmptySecret);
}
