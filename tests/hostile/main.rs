//! Hostile input against the real binaries: malformed framing, malformed and lying messages, stalling, flooding and
//! connection exhaustion. Every case expects the documented `error` code (docs/protocol.md §8) and/or the close,
//! and every test runs a two-player game in another room throughout that must not lose a single frame, see an
//! error, or be disconnected.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use movan_client::{AccountClient, Encryption, ErrorBody, FrameLog, Session, SyncClient, unix_now};
use movan_protocol::ErrorCode;
use movan_protocol::server::{ServerEvent, parse_server_message};
use movan_tests::{Cluster, Options, WAIT, body, connect, forge, login, now_secs, start_game};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// `sync.max_frame_bytes` in every test: small, so that over-size frames are cheap to build.
const MAX_FRAME: usize = 1024;
/// Poly1305 tag appended to every sealed frame.
const TAG: usize = 16;

// ---------------------------------------------------------------------------------------------------------------
// Cluster, logins, games
// ---------------------------------------------------------------------------------------------------------------

/// Small limits so every case is fast; `overrides` replace or add `[sync]` keys.
fn options(overrides: &[(&str, &str)]) -> Options {
    let mut keys: BTreeMap<&str, String> = [
        ("max_frame_bytes", MAX_FRAME.to_string()),
        ("first_frame_timeout_secs", "1".into()),
        ("idle_timeout_secs", "2".into()),
        ("max_messages_per_sec", "50".into()),
        ("message_burst", "20".into()),
        ("max_connections_per_ip", "64".into()),
    ]
    .into_iter()
    .collect();
    for (k, v) in overrides {
        keys.insert(k, (*v).to_owned());
    }
    Options { sync: keys.into_iter().map(|(k, v)| format!("{k} = {v}")).collect(), ..Options::default() }
}

async fn start_cluster(overrides: &[(&str, &str)]) -> Cluster {
    tokio::time::timeout(Duration::from_secs(600), Cluster::start_with(options(overrides)))
        .await
        .expect("cluster start timed out")
        .unwrap()
}

mod attacks;
mod bystanders;
mod framing;
mod game;
mod limits;
mod requests;

use attacks::*;
use bystanders::*;
