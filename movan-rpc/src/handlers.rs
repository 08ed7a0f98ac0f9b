//! The methods and notifications a node answers, registered by name with serde request and response types.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::codes;
use crate::error::HandlerError;
use crate::peer::Peer;
use crate::wire::ErrorBody;

/// Decodes params, then returns the future computing the reply.
type MethodFn = dyn Fn(Peer, Value) -> Result<BoxFuture<'static, Result<Value, ErrorBody>>, ErrorBody> + Send + Sync;
/// Decodes params, then returns the future handling the notification.
type NotificationFn = dyn Fn(Peer, Value) -> Result<BoxFuture<'static, ()>, serde_json::Error> + Send + Sync;
type HeartbeatFn = dyn Fn(Peer, Option<Value>) + Send + Sync;
type DisconnectFn = dyn Fn(Peer) + Send + Sync;

/// The handlers of one endpoint, shared by all its connections. Built with chained calls:
///
/// ```
/// # use movan_rpc::{Handlers, HandlerError};
/// let handlers = Handlers::new()
///     .method("add", |_peer, (a, b): (i64, i64)| async move { Ok::<_, HandlerError>(a + b) })
///     .notification("log", |peer, line: String| async move { println!("{}: {line}", peer.node_id()) });
/// ```
///
/// Registering a name twice keeps the later handler.
#[derive(Clone, Default)]
pub struct Handlers {
    methods: HashMap<String, Arc<MethodFn>>,
    notifications: HashMap<String, Arc<NotificationFn>>,
    heartbeat: Option<Arc<HeartbeatFn>>,
    disconnect: Option<Arc<DisconnectFn>>,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut methods: Vec<_> = self.methods.keys().collect();
        methods.sort();
        let mut notifications: Vec<_> = self.notifications.keys().collect();
        notifications.sort();
        f.debug_struct("Handlers")
            .field("methods", &methods)
            .field("notifications", &notifications)
            .field("on_heartbeat", &self.heartbeat.is_some())
            .field("on_disconnect", &self.disconnect.is_some())
            .finish()
    }
}

impl Handlers {
    /// No handlers: every call is answered `unknown_method`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers calls to `name`. Params that do not deserialize into `Req` are answered `bad_params` without
    /// running `f`; an `Err` from `f` is answered with its code (`handler_error` without one) and message, and a
    /// panic with `handler_error`. Each call runs in its own task, concurrently with the connection's other calls.
    pub fn method<Req, Resp, F, Fut>(mut self, name: impl Into<String>, f: F) -> Self
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + 'static,
        F: Fn(Peer, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, HandlerError>> + Send + 'static,
    {
        let method = move |peer: Peer, params: Value| {
            let request =
                serde_json::from_value::<Req>(params).map_err(|e| ErrorBody::new(codes::BAD_PARAMS, e.to_string()))?;
            let reply = f(peer, request);
            Ok(async move {
                match std::panic::AssertUnwindSafe(reply).catch_unwind().await {
                    Ok(Ok(response)) => serde_json::to_value(response)
                        .map_err(|e| ErrorBody::new(codes::HANDLER_ERROR, format!("could not encode the reply: {e}"))),
                    Ok(Err(error)) => Err(error.into_body()),
                    Err(_) => Err(ErrorBody::new(codes::HANDLER_ERROR, "the handler panicked")),
                }
            }
            .boxed())
        };
        self.methods.insert(name.into(), Arc::new(method));
        self
    }

    /// Handles notifications `name`. Notifications of one connection run one at a time, in the order received,
    /// in a task of their own (so a slow one delays the next notification but not calls). Params that do not
    /// deserialize into `Req`, and unknown notification names, are logged and dropped.
    pub fn notification<Req, F, Fut>(mut self, name: impl Into<String>, f: F) -> Self
    where
        Req: DeserializeOwned + Send + 'static,
        F: Fn(Peer, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let notification = move |peer: Peer, params: Value| {
            let request = serde_json::from_value::<Req>(params)?;
            Ok(f(peer, request).boxed())
        };
        self.notifications.insert(name.into(), Arc::new(notification));
        self
    }

    /// Called with the payload of every heartbeat ping received (the peer's load, say). Runs on the connection's
    /// reader, so it must return quickly.
    pub fn on_heartbeat(mut self, f: impl Fn(Peer, Option<Value>) + Send + Sync + 'static) -> Self {
        self.heartbeat = Some(Arc::new(f));
        self
    }

    /// Called once when an authenticated connection closes; [`Peer::disconnect_reason`] says why.
    pub fn on_disconnect(mut self, f: impl Fn(Peer) + Send + Sync + 'static) -> Self {
        self.disconnect = Some(Arc::new(f));
        self
    }

    pub(crate) fn method_handler(&self, name: &str) -> Option<&Arc<MethodFn>> {
        self.methods.get(name)
    }

    pub(crate) fn notification_handler(&self, name: &str) -> Option<&Arc<NotificationFn>> {
        self.notifications.get(name)
    }

    pub(crate) fn heartbeat(&self, peer: &Peer, load: Option<Value>) {
        if let Some(f) = &self.heartbeat {
            f(peer.clone(), load);
        }
    }

    pub(crate) fn disconnected(&self, peer: &Peer) {
        if let Some(f) = &self.disconnect {
            f(peer.clone());
        }
    }
}
