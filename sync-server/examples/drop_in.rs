//! A custom `Room` that lets players join a game already running (late join): `can_join_in_progress` says yes while
//! a seat is free. The late joiner gets `game_start` with `joined_frame`, the frames so far as a reload, then plays
//! on with the others. Everything else is the stock room.
//!
//! Run it in place of the stock server: `cargo run -p sync-server --example drop_in -- --config config/config.toml`.
//! `tests/late_join.rs` plays it.

use sync_server::{Room, RoomInfo, rooms_of};

#[derive(Debug, Default)]
struct DropIn;

impl Room for DropIn {
    fn can_join_in_progress(&mut self, _room: &RoomInfo<'_>, _uid: &str) -> bool {
        true
    }
}

fn main() -> std::process::ExitCode {
    sync_server::cli::main_with_rooms(rooms_of::<DropIn>())
}
