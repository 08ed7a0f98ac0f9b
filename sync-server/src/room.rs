//! The `Room` trait: the extension point for game rules.
//!
//! The engine owns membership, ticking, ordering, history and reload; a `Room` decides who may join, when the game
//! starts, which actions are valid (and may rewrite them), and when the game ends. Every method has a default, and
//! [`DefaultRoom`] uses them all: anyone may join a free seat, the game starts when every member is ready and at
//! least `min_players` are in, every action is accepted as sent, and the game runs until everyone left.

pub use movan_protocol::EndReason;
pub use movan_protocol::checksum::{Desync, HashGroup};
use serde_json::value::RawValue;

/// A read-only view of a room, handed to every [`Room`] hook.
#[derive(Debug, Clone, Copy)]
pub struct RoomInfo<'a> {
    /// The room's id.
    pub room_id: &'a str,
    /// Seats.
    pub capacity: u32,
    /// Players needed to start.
    pub min_players: u32,
    /// Members in join order.
    pub members: &'a [MemberInfo],
    /// Whether the game is running.
    pub playing: bool,
    /// Frames broadcast so far (the next frame's number).
    pub frame_count: u64,
}

impl RoomInfo<'_> {
    /// True when every member is ready and at least `min_players` are in: the default start rule.
    pub fn all_ready(&self) -> bool {
        self.members.len() >= self.min_players as usize && self.members.iter().all(|m| m.ready)
    }
}

/// A member as rooms see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// The player's uid.
    pub uid: String,
    /// Whether the player sent `room_prepare`.
    pub ready: bool,
    /// Whether the player has a live connection.
    pub connected: bool,
    /// For a player who joined the running game ([`Room::can_join_in_progress`]): the first frame it played.
    pub joined_frame: Option<u64>,
}

/// One action as ordered in a frame.
#[derive(Debug, Clone)]
pub struct OrderedAction {
    /// Who sent it.
    pub uid: String,
    /// The timestamp it was ordered by: the client's, clamped into the window in which the server received it.
    pub timestamp: f64,
    /// The action object.
    pub action_data: Box<RawValue>,
}

/// What [`Room::on_action`] decides.
#[derive(Debug)]
pub enum ActionVerdict {
    /// Queue this action (the one received, or a rewritten one) for the next frame.
    Accept(Box<RawValue>),
    /// Drop it; the sender gets an `action_rejected` error with this reason.
    Reject(String),
}

/// What [`Room::after_frame`] decides.
#[derive(Debug)]
pub enum FrameOutcome {
    /// Keep ticking.
    Continue,
    /// End the game now: every member gets `game_over` with reason `ended_by_room` and these results.
    End {
        /// Per-player results for `game_over` (any JSON), e.g. `{"winner": "1002"}`.
        results: Option<serde_json::Value>,
    },
}

/// What [`Room::on_desync`] decides.
#[derive(Debug)]
pub enum DesyncVerdict {
    /// Keep playing; the clients were told (`desync`) and may resync themselves.
    Continue,
    /// End the game now: every member gets `game_over` with reason `desync` and these results.
    End {
        /// Per-player results for `game_over` (any JSON).
        results: Option<serde_json::Value>,
    },
    /// Take the players outside the majority group out of the game: each gets `room_left` with reason `desync`,
    /// the others play on. With no majority (a tie) this is [`DesyncVerdict::Continue`].
    DropMinority,
}

/// Game rules for one room. One instance per room, created by a [`RoomFactory`]; called only from the engine, one
/// call at a time, so it can keep plain mutable state.
pub trait Room: Send + 'static {
    /// May `uid` take a free seat? `Err(reason)` refuses with `room_full` and the reason. Default: yes.
    fn can_join(&mut self, room: &RoomInfo<'_>, uid: &str) -> Result<(), String> {
        let _ = (room, uid);
        Ok(())
    }

    /// Should the game start now? Asked after every join, leave and `room_prepare`. Default:
    /// [`RoomInfo::all_ready`].
    fn should_start(&mut self, room: &RoomInfo<'_>) -> bool {
        room.all_ready()
    }

    /// May `uid` take a free seat while the game runs (late join)? It then gets `game_start` with `joined_frame`,
    /// catches up through a reload of the history, and plays from the next frame. Default: no (`room_in_game`).
    fn can_join_in_progress(&mut self, room: &RoomInfo<'_>, uid: &str) -> bool {
        let _ = (room, uid);
        false
    }

    /// Accept, reject or rewrite an action before it is queued for the next frame. Default: accept as sent.
    fn on_action(&mut self, room: &RoomInfo<'_>, uid: &str, action_data: Box<RawValue>) -> ActionVerdict {
        let _ = (room, uid);
        ActionVerdict::Accept(action_data)
    }

    /// Called after each frame was broadcast. Default: continue.
    fn after_frame(&mut self, room: &RoomInfo<'_>, frame_count: u64, actions: &[OrderedAction]) -> FrameOutcome {
        let _ = (room, frame_count, actions);
        FrameOutcome::Continue
    }

    /// Called when a member leaves a running game (by `room_leave` or disconnect). Default: nothing.
    fn on_leave(&mut self, room: &RoomInfo<'_>, uid: &str) {
        let _ = (room, uid);
    }

    /// Called when the checksums the players reported for a frame disagree, after every member got `desync`.
    /// `desync.majority` names the hash most players agree on, if one group is larger than every other. Default:
    /// [`DesyncVerdict::Continue`].
    fn on_desync(&mut self, room: &RoomInfo<'_>, desync: &Desync) -> DesyncVerdict {
        let _ = (room, desync);
        DesyncVerdict::Continue
    }

    /// Called when the game ends for a reason other than [`FrameOutcome::End`] (`all_left`, `max_duration`,
    /// `shutdown`, `desync`); the returned results go into `game_over` and the match report. Default: none.
    fn on_game_over(&mut self, room: &RoomInfo<'_>, reason: EndReason) -> Option<serde_json::Value> {
        let _ = (room, reason);
        None
    }
}

/// Creates the [`Room`] for each new room id.
pub trait RoomFactory: Send + 'static {
    /// A fresh room named `room_id`.
    fn create(&self, room_id: &str) -> Box<dyn Room>;

    /// What the start-up log calls these rules (`rooms=...`). Default: the factory's type name; for a closure that
    /// is the path of the function defining it, e.g. `race_room::main::{{closure}}`. [`rooms_of`] names the room type.
    fn name(&self) -> String {
        std::any::type_name::<Self>().to_owned()
    }
}

impl<F> RoomFactory for F
where
    F: Fn(&str) -> Box<dyn Room> + Send + 'static,
{
    fn create(&self, room_id: &str) -> Box<dyn Room> {
        self(room_id)
    }
}

/// A factory of `R::default()` rooms, named after `R` (see [`rooms_of`]).
pub struct RoomsOf<R>(std::marker::PhantomData<fn() -> R>);

impl<R> std::fmt::Debug for RoomsOf<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RoomsOf<{}>", std::any::type_name::<R>())
    }
}

impl<R: Room + Default> RoomFactory for RoomsOf<R> {
    fn create(&self, _room_id: &str) -> Box<dyn Room> {
        Box::new(R::default())
    }

    fn name(&self) -> String {
        std::any::type_name::<R>().to_owned()
    }
}

/// A factory giving every room a fresh `R::default()`; the start-up log names `R` (e.g. `race_room::PointsRace`).
pub fn rooms_of<R: Room + Default>() -> RoomsOf<R> {
    RoomsOf(std::marker::PhantomData)
}

/// The stock rules described in the module docs.
#[derive(Debug, Default, Clone, Copy)]
pub struct DefaultRoom;

impl Room for DefaultRoom {}

/// A factory of [`DefaultRoom`]s.
pub fn default_rooms() -> impl RoomFactory {
    rooms_of::<DefaultRoom>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Custom;
    impl Room for Custom {}

    #[test]
    fn factories_are_named_after_their_rooms_or_their_closure() {
        assert_eq!(default_rooms().name(), "sync_server::room::DefaultRoom");
        assert_eq!(rooms_of::<Custom>().name(), "sync_server::room::tests::Custom");
        let closure = |_: &str| -> Box<dyn Room> { Box::new(Custom) };
        let name = closure.name();
        assert!(name.starts_with("sync_server::room::tests::factories_are_named"), "{name}");
    }
}
