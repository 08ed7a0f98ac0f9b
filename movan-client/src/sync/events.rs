//! The consumer side of a connection: reading server events, waiting for one, reloads.

use super::*;

impl SyncEvents {
    /// The next server message, or `None` once the connection closed (then see [`SyncEvents::close_reason`]).
    ///
    /// Cancel-safe: no event is lost if the future is dropped.
    pub async fn next_event(&mut self) -> Option<ServerEvent> {
        if let Some(ev) = self.pending.pop_front() {
            return Some(ev);
        }
        if self.closed {
            return None;
        }
        match self.rx.recv().await {
            Some(Ok(ev)) => Some(ev),
            Some(Err(e)) => {
                tracing::debug!(error = %e, "sync connection failed");
                self.close_reason = Some(e);
                self.closed = true;
                None
            }
            None => {
                self.closed = true;
                None
            }
        }
    }

    /// [`SyncEvents::next_event`] giving up after `timeout`.
    pub async fn next_event_timeout(&mut self, timeout: Duration) -> Result<Option<ServerEvent>, Elapsed> {
        tokio::time::timeout(timeout, self.next_event()).await
    }

    /// The first event matching `pred` within `timeout`, discarding the others. Fails with
    /// [`ClientError::Timeout`] or [`ClientError::Closed`].
    pub async fn wait_for(
        &mut self,
        mut pred: impl FnMut(&ServerEvent) -> bool,
        timeout: Duration,
    ) -> Result<ServerEvent, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            match timeout_at(deadline, self.next_event()).await? {
                None => return Err(ClientError::Closed),
                Some(ev) if pred(&ev) => return Ok(ev),
                Some(ev) => tracing::trace!(?ev, "wait_for: discarded"),
            }
        }
    }

    /// Waits for the answer to a `room_leave` sent on this connection: `room_left` with the room it left, or `None`
    /// when there was no room to leave (`not_in_room`: the game had already ended, say). The events in between are
    /// kept for [`SyncEvents::next_event`]. After it, closing the connection cannot lose the `room_leave`.
    pub async fn wait_left(&mut self, timeout: Duration) -> Result<Option<RoomLeft>, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut kept = VecDeque::new();
        let result = loop {
            let ev = match timeout_at(deadline, self.next_event()).await {
                Err(e) => break Err(e.into()),
                Ok(None) => break Err(ClientError::Closed),
                Ok(Some(ev)) => ev,
            };
            match ev {
                ServerEvent::RoomLeft(left) => break Ok(Some(left)),
                ServerEvent::Error(body) if body.proto.as_deref() == Some("room_leave") => {
                    break if body.code == ErrorCode::NotInRoom { Ok(None) } else { Err(body.into()) };
                }
                other => kept.push_back(other),
            }
        };
        kept.append(&mut self.pending);
        self.pending = kept;
        result
    }

    /// Waits until the connection closes, returning the events received meanwhile. Fails with
    /// [`ClientError::Timeout`] if it is still open after `timeout`.
    pub async fn wait_closed(&mut self, timeout: Duration) -> Result<Vec<ServerEvent>, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(ev) = timeout_at(deadline, self.next_event()).await? {
            seen.push(ev);
        }
        Ok(seen)
    }

    /// Collects the `reload_frames` chunks answering a request from `start_frame`, until the one marked `last`.
    ///
    /// Other events arriving meanwhile (live `sync_frame`s, `room_state`, errors about other requests) are kept,
    /// in order, for [`SyncEvents::next_event`]. An `error` about the reload (or about no particular request, such
    /// as `replaced`) fails with [`ClientError::Server`]. Chunks must cover `start_frame..end_frame` consecutively,
    /// otherwise [`ClientError::Protocol`]. The `timeout` covers the whole reload.
    pub async fn recv_reload(&mut self, start_frame: u64, timeout: Duration) -> Result<Vec<Frame>, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut frames = Vec::new();
        let mut next = start_frame;
        loop {
            // Read past `pending`: it holds only events older than this reload's answer.
            let ev = match timeout_at(deadline, self.rx.recv()).await? {
                Some(Ok(ev)) => ev,
                Some(Err(e)) => {
                    self.closed = true;
                    self.close_reason = Some(e);
                    return Err(ClientError::Closed);
                }
                None => {
                    self.closed = true;
                    return Err(ClientError::Closed);
                }
            };
            match ev {
                ServerEvent::Reload(chunk) => {
                    if chunk.start_frame != next {
                        return Err(ClientError::Protocol(format!(
                            "reload chunk starts at frame {}, expected {next}",
                            chunk.start_frame
                        )));
                    }
                    for frame in chunk.frames {
                        if frame.frame_count != next {
                            return Err(ClientError::Protocol(format!(
                                "reload chunk holds frame {}, expected {next}",
                                frame.frame_count
                            )));
                        }
                        next += 1;
                        frames.push(frame);
                    }
                    if chunk.last {
                        if next != chunk.end_frame {
                            return Err(ClientError::Protocol(format!(
                                "reload ended at frame {next}, but the server announced end_frame {}",
                                chunk.end_frame
                            )));
                        }
                        return Ok(frames);
                    }
                }
                ServerEvent::Error(body) if body.proto.as_deref().is_none_or(|p| p == RELOAD_PROTO) => {
                    return Err(body.into());
                }
                other => self.pending.push_back(other),
            }
        }
    }

    /// Waits until the reader has seen the server's handshake, keeping other events queued; an `error` first means
    /// the server refused the connection.
    pub(super) async fn await_handshake(&mut self, encryption: &OnceLock<Encryption>) -> Result<(), ClientError> {
        while encryption.get().is_none() {
            match tokio::time::timeout(Duration::from_millis(5), self.rx.recv()).await {
                Err(_) => {}
                Ok(Some(Ok(ServerEvent::Error(body)))) => return Err(body.into()),
                Ok(Some(Ok(ev))) => self.pending.push_back(ev),
                Ok(Some(Err(e))) => return Err(e),
                Ok(None) => return Err(ClientError::Closed),
            }
        }
        Ok(())
    }

    /// Waits for the next `pong` (one per connect `ping`), consuming it and queueing what came before it; an `error`
    /// first means the server refused the connection.
    pub(super) async fn await_connect_pong(&mut self) -> Result<(), ClientError> {
        // `await_handshake` may already have queued it.
        if let Some(i) = self.pending.iter().position(|e| matches!(e, ServerEvent::Pong(_))) {
            self.pending.remove(i);
            return Ok(());
        }
        loop {
            match self.rx.recv().await {
                Some(Ok(ServerEvent::Pong(_))) => return Ok(()),
                Some(Ok(ServerEvent::Error(body))) => return Err(body.into()),
                Some(Ok(ev)) => self.pending.push_back(ev),
                Some(Err(e)) => return Err(e),
                None => return Err(ClientError::Closed),
            }
        }
    }

    /// Why the connection closed, when it was not a clean end-of-stream: a read error, an unparsable message, or a
    /// crypto failure ([`ClientError::Crypto`], after which this client closed the connection itself).
    pub fn close_reason(&self) -> Option<&ClientError> {
        self.close_reason.as_ref()
    }

    /// True once [`SyncEvents::next_event`] has seen the end of the connection.
    pub fn is_closed(&self) -> bool {
        self.closed && self.pending.is_empty()
    }
}

impl Drop for SyncEvents {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
