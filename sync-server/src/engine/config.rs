//! The engine's settings.

use std::time::Duration;

/// Engine settings (derived from the `[sync]` config section).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Time between frames.
    pub tick_interval: Duration,
    /// Rooms at once.
    pub max_rooms: usize,
    /// Percent of `max_rooms` only quick match may create: named rooms stop at the rest, so that quick match works
    /// when they run out.
    pub quick_match_reserved_percent: u8,
    /// Waiting rooms one account may have created at once (0 = no limit).
    pub max_rooms_per_account: usize,
    /// How long a room may wait for its game after it was created or a member last became ready; then it is closed
    /// and its members get `room_left` with reason `waiting_room_timeout`. `None`: rooms wait forever.
    pub waiting_room_timeout: Option<Duration>,
    /// Quick match skips a waiting room where nobody is ready this long after it was created. `None`: never.
    pub quick_match_stale: Option<Duration>,
    /// Seats per room.
    pub max_players: u32,
    /// Players needed to start.
    pub min_players: u32,
    /// Frames kept per game for reload.
    pub history_frames: usize,
    /// Bytes of frames kept per game for reload (the oldest go first when over it).
    pub history_max_bytes: usize,
    /// Frames per `reload_frames` message.
    pub reload_chunk_frames: usize,
    /// Bytes of frames per `reload_frames` message (a single larger frame still goes out alone).
    pub reload_chunk_bytes: usize,
    /// Actions a room holds for its next frame.
    pub max_pending_actions: usize,
    /// Actions one player may have waiting for the next frame.
    pub max_actions_per_player: usize,
    /// Bytes of `action_data` a room holds for its next frame: bounds the size of one frame.
    pub max_pending_bytes: usize,
    /// Longest game, if limited.
    pub max_game_duration: Option<Duration>,
    /// Frames between the checksums clients report (`game_start.checksum_interval`); 0 = no desync detection.
    pub checksum_interval: u64,
    /// How long after a frame's first checksum the server waits for the others before comparing what it has.
    pub checksum_timeout: Duration,
    /// Spectators one room may have (`room_spectate`); 0 = no spectating.
    pub max_spectators: usize,
    /// Spectators see frame n when frame n + this is broadcast (against ghosting); the history keeps at least this
    /// many frames.
    pub spectator_delay_frames: u64,
    /// Bytes one game's replay holds at most (compressed frames); 0 = no replays.
    pub replay_max_bytes: usize,
    /// Bytes the replays of all running games hold together at most.
    pub replay_memory_bytes: usize,
    /// How long revoked sessions and bans are remembered: the longest an access token lives.
    pub revocation_retention: Duration,
    /// How long a player whose connection dropped keeps its seat (and its place in a running game) waiting for it
    /// to reconnect. Zero: a dropped connection leaves the room at once.
    pub reconnect_grace: Duration,
}

impl EngineConfig {
    /// Rooms a named `room_enter` may bring the server to: `max_rooms` less the quick-match reserve.
    pub fn named_room_limit(&self) -> usize {
        self.max_rooms - self.max_rooms * usize::from(self.quick_match_reserved_percent.min(100)) / 100
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            tick_interval: Duration::from_millis(50),
            max_rooms: 1000,
            quick_match_reserved_percent: 10,
            max_rooms_per_account: 2,
            waiting_room_timeout: Some(Duration::from_secs(300)),
            quick_match_stale: Some(Duration::from_secs(30)),
            max_players: 4,
            min_players: 2,
            history_frames: 24_000,
            history_max_bytes: 8 * 1024 * 1024,
            reload_chunk_frames: 256,
            reload_chunk_bytes: 1024 * 1024,
            max_pending_actions: 1024,
            max_actions_per_player: 16,
            max_pending_bytes: 256 * 1024,
            max_game_duration: None,
            checksum_interval: 60,
            checksum_timeout: Duration::from_secs(5),
            max_spectators: 100,
            spectator_delay_frames: 0,
            replay_max_bytes: 16 * 1024 * 1024,
            replay_memory_bytes: 512 * 1024 * 1024,
            revocation_retention: Duration::from_secs(3600 + 60),
            reconnect_grace: Duration::from_secs(30),
        }
    }
}
