//! A custom `Room`: a points race.
//!
//! - Actions must be `{"points": n}` with `n` from 1 to 3; anything else is rejected (`action_rejected`).
//! - The game starts only when the room is full (not just when `min_players` are ready).
//! - After each frame the points are added up; the first player to reach 10 wins and the game ends with
//!   `game_over` reason `ended_by_room` and results `{"winner": uid, "scores": {uid: points}}`.
//!
//! Run it in place of the stock server: `cargo run -p sync-server --example race_room -- --config config/config.toml`,
//! then play it with four bots (the room starts only when full, and `sync.max_players` is 4):
//! `cargo run --release -p movan-client --bin movan-bot -- --bots 4 --room-size 4 --action '{"points": 1}'`.
//! Its start-up log says `rooms=race_room::PointsRace`.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use sync_server::{ActionVerdict, FrameOutcome, OrderedAction, Room, RoomInfo, rooms_of};

const TARGET: u64 = 10;

#[derive(Debug, Default)]
struct PointsRace {
    scores: BTreeMap<String, u64>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Points {
    points: u64,
}

impl Room for PointsRace {
    fn should_start(&mut self, room: &RoomInfo<'_>) -> bool {
        room.members.len() == room.capacity as usize && room.all_ready()
    }

    fn on_action(&mut self, _room: &RoomInfo<'_>, _uid: &str, action: Box<RawValue>) -> ActionVerdict {
        match serde_json::from_str::<Points>(action.get()) {
            Ok(p) if (1..=3).contains(&p.points) => ActionVerdict::Accept(action),
            _ => ActionVerdict::Reject("send {\"points\": n} with n from 1 to 3".into()),
        }
    }

    fn after_frame(&mut self, _room: &RoomInfo<'_>, _frame: u64, actions: &[OrderedAction]) -> FrameOutcome {
        for a in actions {
            if let Ok(p) = serde_json::from_str::<Points>(a.action_data.get()) {
                let score = self.scores.entry(a.uid.clone()).or_default();
                *score += p.points;
                if *score >= TARGET {
                    return FrameOutcome::End {
                        results: Some(serde_json::json!({ "winner": a.uid, "scores": self.scores })),
                    };
                }
            }
        }
        FrameOutcome::Continue
    }
}

fn main() -> std::process::ExitCode {
    // The stock command line, config and protocol, with these rules in every room.
    sync_server::cli::main_with_rooms(rooms_of::<PointsRace>())
}
