//! What a [`SyncSender`] sends: every request of docs/protocol.md §4, typed, and the raw sends tests need.

use super::*;

impl SyncSender {
    /// The uid this connection speaks for.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// Whether frames are sealed, as the server's handshake decided.
    pub fn encryption(&self) -> Encryption {
        self.encryption.get().copied().unwrap_or(Encryption::Pending)
    }

    /// `room_enter`: joins `room_id` (created when missing), or quick-matches when `None`.
    pub async fn enter_room(&self, room_id: Option<&str>) -> Result<(), ClientError> {
        let data = room_id.map(|id| serde_json::json!({ "room_id": id }));
        self.send_proto("room_enter", data.as_ref()).await
    }

    /// `room_leave`: leaves the current room.
    pub async fn leave_room(&self) -> Result<(), ClientError> {
        self.send_proto("room_leave", None).await
    }

    /// `room_prepare`: marks the player ready.
    pub async fn prepare(&self) -> Result<(), ClientError> {
        self.send_proto("room_prepare", None).await
    }

    /// `sync_action` stamped with the current time.
    pub async fn send_action(&self, action_data: &Value) -> Result<(), ClientError> {
        self.send_action_at(action_data, unix_now()).await
    }

    /// `sync_action` with an explicit `timestamp`. `action_data` is sent as given, even if it is not an object.
    pub async fn send_action_at(&self, action_data: &Value, timestamp: f64) -> Result<(), ClientError> {
        self.send_typed("sync_action", timestamp, None, Some(action_data)).await
    }

    /// `sync_request_reload_frames` from `start_frame`.
    pub async fn request_reload(&self, start_frame: u64) -> Result<(), ClientError> {
        let data = serde_json::json!({ "start_frame": start_frame });
        self.send_proto(RELOAD_PROTO, Some(&data)).await
    }

    /// `room_spectate`: watch a waiting or running room without playing. The answer is `room_state` (counting
    /// spectators); in a running game the `game_start` and the history as `reload_frames` follow, then every frame,
    /// `sync.spectator_delay_frames` behind the players. `room_leave` ends it.
    pub async fn spectate(&self, room_id: &str) -> Result<(), ClientError> {
        let data = serde_json::json!({ "room_id": room_id });
        self.send_proto("room_spectate", Some(&data)).await
    }

    /// `sync_checksum`: this client's hash of its game state after `frame`, a multiple of
    /// `game_start.checksum_interval`; 1 to 64 bytes, any string (e.g. hex of a 64-bit hash). When the members'
    /// hashes differ, each gets [`ServerEvent::Desync`](movan_protocol::server::ServerEvent::Desync).
    pub async fn send_checksum(&self, frame: u64, hash: &str) -> Result<(), ClientError> {
        let data = serde_json::json!({ "frame": frame, "hash": hash });
        self.send_proto("sync_checksum", Some(&data)).await
    }

    /// `ping`, stamped with the current time.
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.send_proto("ping", None).await
    }

    /// Sends any proto, known or not, with optional `data` and the current time as `timestamp`.
    pub async fn send_proto(&self, proto: &str, data: Option<&Value>) -> Result<(), ClientError> {
        self.send_typed(proto, unix_now(), data, None).await
    }

    /// Sends `body` as one frame without checking it, for bad-input tests: raw JSON, but sealed like any frame once
    /// the connection is encrypted. It does not count as the first message: the token still goes on the next typed
    /// message.
    pub async fn send_raw_body(&self, body: &[u8]) -> Result<(), ClientError> {
        let mut w = self.writer.lock().await;
        let wire = w.frame(body).await?;
        w.write(&wire).await
    }

    /// The exact bytes [`SyncSender::send_raw_body`] would write next, without writing them, for replay and tamper
    /// tests.
    ///
    /// When encrypted, the frame is sealed with the next client→server counter and the counter advances as if it
    /// had been sent: write it with [`SyncSender::send_raw_bytes`] before any other send to keep the connection in
    /// step (writing it twice, late, altered or on another connection is what makes the server close).
    pub async fn seal_raw_body(&self, body: &[u8]) -> Result<Bytes, ClientError> {
        self.writer.lock().await.frame(body).await
    }

    /// Writes `bytes` exactly as given, with no framing and no sealing, for framing and crypto attack tests.
    pub async fn send_raw_bytes(&self, bytes: &[u8]) -> Result<(), ClientError> {
        self.writer.lock().await.write(bytes).await
    }

    /// Shuts down the sending direction of the socket; later sends fail. Over UDP this ends the session.
    pub async fn shutdown(&self) -> Result<(), ClientError> {
        let mut w = self.writer.lock().await;
        match &mut w.stream {
            Outbound::Tcp(s) => s.shutdown().await?,
            Outbound::Udp(s) => s.close().await,
            Outbound::Ws(s) => crate::ws::close(s).await?,
        }
        Ok(())
    }

    /// Over UDP: moves the session to a new local port, as a phone changing networks does (see
    /// [`crate::udp::UdpSender::rebind`]); send a message next so that the server follows. `None` over TCP.
    pub async fn rebind_udp(&self) -> Option<Result<std::net::SocketAddr, ClientError>> {
        let w = self.writer.lock().await;
        match &w.stream {
            Outbound::Udp(s) => Some(s.rebind().await),
            Outbound::Tcp(_) | Outbound::Ws(_) => None,
        }
    }

    async fn send_typed(
        &self,
        proto: &str,
        timestamp: f64,
        data: Option<&Value>,
        action_data: Option<&Value>,
    ) -> Result<(), ClientError> {
        let mut w = self.writer.lock().await;
        if w.closed {
            return Err(ClientError::Closed);
        }
        let token = w.token.take();
        let message = OutgoingMessage { uid: &self.uid, token: token.as_deref(), proto, timestamp, data, action_data };
        let body = message.to_body()?;
        let wire = w.frame(&body).await?;
        w.write(&wire).await
    }
}
