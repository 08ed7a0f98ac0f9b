//! Engine tests: injected time, no sockets, no sleeps.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::room::DefaultRoom;
use movan_protocol::server::{Frame, ServerEvent, parse_server_message};

const UNIX0: f64 = 1_000_000.0;

struct Harness {
    engine: Engine,
    t0: Instant,
    closed: Vec<(ConnId, CloseReason)>,
    reports: Vec<MatchReport>,
    /// The replay of each game in `reports`.
    replays: Vec<Option<Vec<u8>>>,
}

fn who(uid: &str, sid: &str) -> Identity {
    Identity { uid: uid.into(), sid: sid.into(), iat: 100 }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn raw(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_owned()).unwrap()
}

impl Harness {
    fn new(config: EngineConfig) -> Self {
        Self::with_rooms(config, Box::new(crate::room::default_rooms()))
    }

    fn with_rooms(config: EngineConfig, factory: Box<dyn RoomFactory>) -> Self {
        let t0 = Instant::now();
        Self {
            engine: Engine::new(config, factory, t0, UNIX0, 7),
            t0,
            closed: Vec::new(),
            reports: Vec::new(),
            replays: Vec::new(),
        }
    }

    fn at(&self, offset_ms: u64) -> Instant {
        self.t0 + ms(offset_ms)
    }

    fn unix(&self, offset_ms: u64) -> f64 {
        UNIX0 + offset_ms as f64 / 1000.0
    }

    /// Connects player `n` (uid `"u{n}"`) on connection `n`.
    fn join(&mut self, n: u64) {
        self.engine.connect(ConnId(n), &who(&format!("u{n}"), "s1"), self.t0);
    }

    fn send(&mut self, conn: u64, request: Request, ts: Option<f64>, at_ms: u64) {
        let now = self.at(at_ms);
        self.engine.handle(ConnId(conn), request, ts, now);
    }

    fn enter(&mut self, conn: u64, room: Option<&str>) {
        self.send(conn, Request::RoomEnter { room_id: room.map(str::to_owned) }, None, 0);
    }

    fn prepare(&mut self, conn: u64, at_ms: u64) {
        self.send(conn, Request::RoomPrepare, None, at_ms);
    }

    fn act(&mut self, conn: u64, body: &str, client_ts: f64, at_ms: u64) {
        self.send(conn, Request::SyncAction { action_data: raw(body) }, Some(client_ts), at_ms);
    }

    fn tick(&mut self, at_ms: u64) {
        let now = self.at(at_ms);
        self.engine.handle_timeout(now);
    }

    /// Everything sent since the last drain, parsed, per connection.
    fn drain(&mut self) -> Vec<(u64, ServerEvent)> {
        let mut out = Vec::new();
        while let Some(o) = self.engine.poll_output() {
            match o {
                Output::Send { conn, bytes } => out.push((conn.0, parse(&bytes))),
                Output::Reload { conn, reload } => out.extend(reload.map(|b| (conn.0, parse(&b)))),
                Output::Close { conn, reason } => self.closed.push((conn, reason)),
                Output::GameEnded(game) => {
                    self.reports.push(game.report);
                    self.replays.push(game.replay);
                }
            }
        }
        out
    }

    fn frames_of(&mut self, conn: u64) -> Vec<Frame> {
        self.drain()
            .into_iter()
            .filter_map(|(c, e)| match e {
                ServerEvent::Frame(f) if c == conn => Some(f),
                _ => None,
            })
            .collect()
    }

    fn errors_of(&mut self, conn: u64) -> Vec<ErrorCode> {
        self.drain()
            .into_iter()
            .filter_map(|(c, e)| match e {
                ServerEvent::Error(b) if c == conn => Some(b.code),
                _ => None,
            })
            .collect()
    }

    /// Players 1..=n in room "r", all ready, game started at t0.
    fn started(config: EngineConfig, n: u64) -> Self {
        let mut h = Self::new(config);
        for i in 1..=n {
            h.join(i);
            h.enter(i, Some("r"));
        }
        for i in 1..=n {
            h.prepare(i, 0);
        }
        assert!(h.drain().iter().any(|(_, e)| matches!(e, ServerEvent::GameStart(_))));
        h
    }
}

fn parse(body: &Bytes) -> ServerEvent {
    parse_server_message(body).unwrap()
}

fn uids(frame: &Frame) -> Vec<&str> {
    frame.actions.iter().map(|a| a.uid.as_str()).collect()
}

fn grace(secs: u64) -> EngineConfig {
    EngineConfig { reconnect_grace: Duration::from_secs(secs), ..EngineConfig::default() }
}

fn connected_flags(events: &[(u64, ServerEvent)], to: u64) -> Vec<Vec<(String, bool)>> {
    events
        .iter()
        .filter_map(|(c, e)| match e {
            ServerEvent::RoomState(s) if *c == to => {
                Some(s.members.iter().map(|m| (m.uid.clone(), m.connected)).collect())
            }
            _ => None,
        })
        .collect()
}

mod admin;
mod checksums;
mod games;
mod late_join;
mod players;
mod reconnect;
mod replays;
mod spectators;
mod waiting;
