//! Games: the start, actions and their limits, ticking and ordering frames, reloads, and the end.

use movan_protocol::replay::{ReplayLimits, ReplayWriter};

use super::*;

impl Engine {
    pub(super) fn maybe_start(&mut self, id: &Arc<str>, now: Instant) {
        let Some(room) = self.rooms.get_mut(id) else {
            return;
        };
        if room.game.is_some() || room.members.is_empty() {
            return;
        }
        let info = room_info!(room);
        if !room.rules.should_start(&info) {
            return;
        }
        let seq = room.seq;
        let replay = (self.config.replay_max_bytes > 0)
            .then(|| ReplayWriter::new(ReplayLimits { max_bytes: self.config.replay_max_bytes }));
        let start = GameStart {
            room_id: id.to_string(),
            start_time: self.clock.unix(now),
            frame_interval_ms: self.config.tick_interval.as_millis() as u64,
            members: room.members.iter().map(|m| m.uid.clone()).collect(),
            seed: self.rng.r#gen(),
            checksum_interval: self.config.checksum_interval,
            joined_frame: None,
        };
        let start_wire = ServerMessage::GameStart(start.clone()).to_body();
        room.game = Some(Game {
            started_at: now,
            start_wire: start_wire.clone(),
            start,
            players: room.members.iter().map(|m| m.uid.clone()).collect(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            pending_per_player: None,
            history: FrameHistory::new(self.config.history_frames, self.config.history_max_bytes)
                .keep_at_least(usize::try_from(self.config.spectator_delay_frames).unwrap_or(usize::MAX)),
            arrivals: 0,
            checksums: Default::default(),
            replay,
        });
        self.stop_waiting(id);
        self.games += 1;
        self.broadcast_room_state(id);
        self.broadcast(id, start_wire);
        self.timers.push(Reverse((now + self.config.tick_interval, seq, id.clone())));
    }

    /// `uid` just took a seat in the running game of room `id` (late join): it gets its own `game_start` (with
    /// `joined_frame`), then the history as a reload, then plays on with the others.
    pub(super) fn join_running_game(&mut self, uid: &Arc<str>, id: &Arc<str>) {
        let (chunk_frames, chunk_bytes) = (self.config.reload_chunk_frames, self.config.reload_chunk_bytes);
        let conn = self.players.get(uid).and_then(|p| p.conn);
        let Some(room) = self.rooms.get_mut(id) else { return };
        let Some(start) = room.start_message_for(uid) else { return };
        let Some(game) = room.game.as_mut() else { return };
        game.players.push(uid.to_string());
        let Some(conn) = conn else { return };
        let reload = game.history.reload(game.history.oldest(), chunk_frames, chunk_bytes);
        self.send(conn, start);
        if let Ok(mut reload) = reload {
            let token = Arc::new(());
            self.reloads.insert(conn, Arc::downgrade(&token));
            reload.hold(token);
            crate::metrics::get().reloads.increment(1);
            self.outputs.push_back(Output::Reload { conn, reload });
        }
    }

    pub(super) fn action(
        &mut self,
        uid: &Arc<str>,
        client_ts: f64,
        action_data: Box<RawValue>,
        now: Instant,
    ) -> Outcome {
        let id = self.player_room(uid).ok_or_else(|| self.not_playing(uid))?;
        let limits =
            (self.config.max_pending_actions, self.config.max_actions_per_player, self.config.max_pending_bytes);
        let room = self.rooms.get_mut(&id).ok_or_else(not_in_room)?;
        let game = room
            .game
            .as_ref()
            .ok_or_else(|| ProtocolError::new(ErrorCode::GameNotRunning, "the game has not started"))?;
        check_pending_limits(game, uid, action_data.get().len(), limits)?;
        let info = room_info!(room);
        let action_data = match room.rules.on_action(&info, uid, action_data) {
            ActionVerdict::Accept(a) => a,
            ActionVerdict::Reject(why) => {
                return Err(ProtocolError::new(ErrorCode::ActionRejected, why));
            }
        };
        let game = room.game.as_mut().ok_or_else(|| internal("game vanished"))?;
        game.arrivals += 1;
        game.pending_bytes += action_data.get().len();
        game.pending.push_back(Pending {
            uid: uid.clone(),
            client_ts,
            received_at: now,
            arrival: game.arrivals,
            action_data,
        });
        match game.pending_per_player.as_mut() {
            Some(counts) => count_pending(counts, uid),
            None if game.pending.len() >= limits.1 => {
                let mut counts = Vec::new();
                for p in &game.pending {
                    count_pending(&mut counts, &p.uid);
                }
                game.pending_per_player = Some(counts);
            }
            None => {}
        }
        Ok(())
    }

    /// Refuses what would start a second reload on `conn` while one is still being sent.
    pub(super) fn check_no_reload(&self, conn: ConnId) -> Outcome {
        if self.reloads.get(&conn).is_some_and(|busy| busy.strong_count() > 0) {
            return Err(ProtocolError::new(
                ErrorCode::LimitExceeded,
                "a reload is still being sent on this connection: wait for its last chunk (last:true)",
            ));
        }
        Ok(())
    }

    pub(super) fn reload(&mut self, conn: ConnId, uid: &Arc<str>, start_frame: u64) -> Outcome {
        self.check_no_reload(conn)?;
        let (id, watching) = match self.player_room(uid) {
            Some(id) => (id, false),
            None => (self.spectated_room(uid).ok_or_else(not_in_room)?, true),
        };
        let room = self.rooms.get(&id).ok_or_else(not_in_room)?;
        let game = room
            .game
            .as_ref()
            .ok_or_else(|| ProtocolError::new(ErrorCode::GameNotRunning, "the game has not started"))?;
        // A spectator sees no further than its delay lets it.
        let frontier =
            game.history.next_frame().saturating_sub(if watching { self.config.spectator_delay_frames } else { 0 });
        if start_frame > frontier {
            return Err(ProtocolError::new(
                ErrorCode::BadFrameRange,
                format!("frame {start_frame} is not yours to see yet; the next frame is {frontier}"),
            ));
        }
        let reload = game
            .history
            .reload(start_frame, self.config.reload_chunk_frames, self.config.reload_chunk_bytes)
            .map(|r| r.until(frontier))
            .map_err(|e| match e {
                ReloadError::Expired { .. } => ProtocolError::new(ErrorCode::HistoryExpired, e.to_string()),
                ReloadError::NotYet { .. } => ProtocolError::new(ErrorCode::BadFrameRange, e.to_string()),
            })?;
        let mut reload = reload;
        let token = Arc::new(());
        self.reloads.insert(conn, Arc::downgrade(&token));
        reload.hold(token);
        crate::metrics::get().reloads.increment(1);
        self.outputs.push_back(Output::Reload { conn, reload });
        Ok(())
    }

    /// Emits every due frame of one room, then schedules its next deadline.
    pub(super) fn tick_room(&mut self, id: &Arc<str>, now: Instant) {
        self.expire_checksums(id, now);
        let interval = self.config.tick_interval;
        loop {
            let Some(room) = self.rooms.get_mut(id) else {
                return;
            };
            let Some(game) = room.game.as_mut() else {
                return;
            };
            let frame = game.history.next_frame();
            let window_start = frame_deadline(game.started_at, interval, frame);
            let deadline = window_start + interval;
            if deadline > now {
                self.timers.push(Reverse((deadline, room.seq, id.clone())));
                return;
            }
            let actions = order_actions(&mut game.pending, window_start, deadline, &self.clock);
            game.pending_bytes = game.pending.iter().map(|p| p.action_data.get().len()).sum();
            game.pending_per_player = None;
            let refs: Vec<ActionRef<'_>> = actions
                .iter()
                .map(|a| ActionRef { uid: &a.uid, timestamp: a.timestamp, action_data: &a.action_data })
                .collect();
            let encoded = encode_frame(frame, &refs);
            drop(refs);
            let m = crate::metrics::get();
            m.frames.increment(1);
            m.actions.increment(actions.len() as u64);
            m.tick_lateness.record(now.saturating_duration_since(deadline).as_secs_f64());
            if let Some(writer) = game.replay.as_mut() {
                self.replay_budget.record(writer, &encoded.body, self.config.replay_memory_bytes, id);
            }
            game.history.push(encoded.frame);
            let played = deadline.duration_since(game.started_at);
            for conn in room.member_conns.iter().flatten() {
                self.outputs.push_back(Output::Send { conn: *conn, bytes: encoded.body.clone() });
            }
            let room = if room.spectators.is_empty() {
                room
            } else {
                // Watched rooms only: the tick of an unwatched room looks nothing more up.
                self.feed_spectators(id, frame, &encoded.body);
                let Some(room) = self.rooms.get_mut(id) else { return };
                room
            };
            let info = room_info!(room);
            match room.rules.after_frame(&info, frame, &actions) {
                FrameOutcome::End { results } => {
                    self.end_game(id, EndReason::EndedByRoom, results, deadline);
                    return;
                }
                FrameOutcome::Continue => {}
            }
            if self.config.max_game_duration.is_some_and(|max| played >= max) {
                self.end_game(id, EndReason::MaxDuration, None, deadline);
                return;
            }
        }
    }

    pub(super) fn end_game(
        &mut self,
        id: &Arc<str>,
        reason: EndReason,
        results: Option<serde_json::Value>,
        now: Instant,
    ) {
        let Some(room) = self.rooms.get_mut(id) else { return };
        let Some(game) = room.game.as_ref() else { return };
        let frame_count = game.history.next_frame();
        let results = match results {
            Some(r) => Some(r),
            None => {
                let info = room_info!(room);
                room.rules.on_game_over(&info, reason)
            }
        };
        let Some(game) = room.game.as_ref() else { return };
        let (started_at, ended_at) = (self.clock.unix(game.started_at), self.clock.unix(now));
        let report = MatchReport {
            match_id: format!("{id}-{:016x}", self.rng.r#gen::<u64>()),
            room_id: id.to_string(),
            players: game.players.clone(),
            frame_count,
            duration_secs: (ended_at - started_at).max(0.0),
            end_reason: reason,
            results: results.clone(),
            started_at,
            ended_at,
            first_desync_frame: game.checksums.first_desync,
        };
        let members: Vec<String> = room.members.iter().map(|m| m.uid.clone()).collect();
        let replay = self.finish_replay(id, &report);
        self.flush_spectators(id);
        crate::metrics::get().game_ended(reason);
        let over = ServerMessage::GameOver(GameOver { room_id: id.to_string(), reason, frame_count, results });
        self.broadcast(id, over.to_body());
        self.outputs.push_back(Output::GameEnded(FinishedGame { report, replay }));
        self.free_room(id);
        for uid in members {
            if let Some(p) = self.players.get_mut(uid.as_str()) {
                p.room = None;
                self.players_in_rooms -= 1;
            }
            self.forget_if_idle(uid.as_str());
        }
    }
}

/// Start of frame `n`'s collection window: `started_at + n * interval`, computed from the start so ticks never drift.
fn frame_deadline(started_at: Instant, interval: Duration, n: u64) -> Instant {
    let nanos = interval.as_nanos().saturating_mul(u128::from(n));
    started_at + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Takes the actions received before `deadline` and orders them: by timestamp — the client's, clamped into
/// `[max(window_start, ...), received_at]` so nobody can jump the queue by lying — then by uid, then by arrival.
fn order_actions(
    pending: &mut VecDeque<Pending>,
    window_start: Instant,
    deadline: Instant,
    clock: &WallClock,
) -> Vec<OrderedAction> {
    let due = pending.iter().take_while(|p| p.received_at < deadline).count();
    let window_start_unix = clock.unix(window_start);
    let mut keyed: Vec<(f64, u64, Pending)> = pending
        .drain(..due)
        .map(|p| {
            let received = clock.unix(p.received_at);
            let low = window_start_unix.min(received);
            (p.client_ts.clamp(low, received), p.arrival, p)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.2.uid.cmp(&b.2.uid)).then(a.1.cmp(&b.1)));
    keyed
        .into_iter()
        .map(|(timestamp, _, p)| OrderedAction { uid: p.uid.to_string(), timestamp, action_data: p.action_data })
        .collect()
}

/// One more pending action of `uid`.
fn count_pending(counts: &mut Vec<(Arc<str>, usize)>, uid: &Arc<str>) {
    match counts.iter_mut().find(|(u, _)| Arc::ptr_eq(u, uid) || u == uid) {
        Some((_, n)) => *n += 1,
        None => counts.push((uid.clone(), 1)),
    }
}

/// Refuses an action that would push the room's next frame past its limits: (room actions, actions per player,
/// bytes).
fn check_pending_limits(game: &Game, uid: &str, len: usize, limits: (usize, usize, usize)) -> Outcome {
    let (max_actions, max_per_player, max_bytes) = limits;
    let over = |what: String| Err(ProtocolError::new(ErrorCode::LimitExceeded, what));
    if game.pending.len() >= max_actions {
        return over(format!(
            "the room already holds {max_actions} actions for the next frame (sync.max_pending_actions)"
        ));
    }
    let sent = |counts: &[(Arc<str>, usize)]| counts.iter().find(|(u, _)| &**u == uid).map_or(0, |(_, n)| *n);
    let over_per_player = match &game.pending_per_player {
        _ if game.pending.len() < max_per_player => false,
        Some(counts) => sent(counts) >= max_per_player,
        None => game.pending.iter().filter(|p| &*p.uid == uid).count() >= max_per_player,
    };
    if over_per_player {
        return over(format!(
            "you already have {max_per_player} actions waiting for the next frame (sync.max_actions_per_player)"
        ));
    }
    if game.pending_bytes + len > max_bytes {
        return over(format!("the next frame already holds {max_bytes} bytes of actions (sync.max_pending_bytes)"));
    }
    Ok(())
}
