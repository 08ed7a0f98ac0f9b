//! The reader task of a connection: reads the handshake, opens sealed frames, decodes events.

use std::sync::{Arc, OnceLock, Weak};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use movan_protocol::codec::FrameError;
use movan_protocol::crypto::{self, Handshake, HandshakeError, Opener, SessionKey};
use movan_protocol::server::{ServerEvent, ServerParseError, parse_server_message};
use tokio::sync::{Mutex, mpsc};

use super::{Encryption, Writer};
use crate::error::ClientError;

/// Reads one connection until end-of-stream, a failure, or the receiver is gone.
pub(super) struct Reader {
    /// Message bodies as the transport cuts them (TCP frames, KCP messages).
    frames: BoxStream<'static, Result<Bytes, FrameError>>,
    tx: mpsc::Sender<Result<ServerEvent, ClientError>>,
    /// The senders' writer: the handshake installs the sealer there, a crypto failure closes it. Weak, so dropping
    /// every sender still closes the sending direction.
    writer: Weak<Mutex<Writer>>,
    encryption: Arc<OnceLock<Encryption>>,
    stage: Stage,
}

/// What the reader expects of the next frame.
enum Stage {
    /// The server's first frame: the handshake (or an `error` refusing the first message). Holds the key until then.
    Handshake(Option<SessionKey>),
    /// The server runs with `encryption = "off"`.
    Plaintext,
    /// Every frame is sealed; the opener knows the counter the next one must carry.
    Sealed(Opener),
}

impl Reader {
    pub(super) fn new(
        frames: BoxStream<'static, Result<Bytes, FrameError>>,
        tx: mpsc::Sender<Result<ServerEvent, ClientError>>,
        writer: Weak<Mutex<Writer>>,
        encryption: Arc<OnceLock<Encryption>>,
        session_key: Option<SessionKey>,
    ) -> Self {
        Self { frames, tx, writer, encryption, stage: Stage::Handshake(session_key) }
    }

    /// Runs the task; a failure is queued last, after closing the connection if it was a crypto failure.
    pub(super) async fn run(mut self) {
        let Err(err) = self.pump().await else {
            return;
        };
        if matches!(err, ClientError::Crypto(_))
            && let Some(writer) = self.writer.upgrade()
        {
            writer.lock().await.close().await;
        }
        // The receiver may be gone already; nothing is left to tell then.
        let _ = self.tx.send(Err(err)).await;
    }

    /// Forwards events; `Ok` at end-of-stream or once the receiver is gone.
    async fn pump(&mut self) -> Result<(), ClientError> {
        while let Some(item) = self.frames.next().await {
            let Some(body) = self.plaintext(item?).await? else {
                continue;
            };
            let event = match parse_server_message(&body) {
                Ok(event) => event,
                // A newer server may know more messages; skipping them keeps this client usable.
                Err(ServerParseError::UnknownProto(proto)) => {
                    tracing::warn!(%proto, "ignoring unknown server message");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if self.tx.send(Ok(event)).await.is_err() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The plaintext of a frame body, or `None` for the handshake, which it applies.
    async fn plaintext(&mut self, body: Bytes) -> Result<Option<Bytes>, ClientError> {
        match &mut self.stage {
            Stage::Plaintext => Ok(Some(body)),
            Stage::Sealed(opener) => {
                let counter = opener.counter();
                match opener.open(&body) {
                    Ok(plain) => Ok(Some(plain.into())),
                    Err(e) => Err(ClientError::Crypto(format!(
                        "server frame {counter} ({} bytes) did not open: {e}; connection closed",
                        body.len()
                    ))),
                }
            }
            Stage::Handshake(key) => match crypto::parse_handshake(&body) {
                Ok(handshake) => {
                    let key = key.take();
                    self.apply(handshake, key).await?;
                    Ok(None)
                }
                // A refused first message is answered in plaintext, and the server closes.
                Err(HandshakeError::NotHandshake(proto)) if proto == "error" => Ok(Some(body)),
                Err(HandshakeError::NotHandshake(proto)) => Err(ClientError::Crypto(format!(
                    "expected the server's handshake, got {proto:?} (a server without encrypted sessions?)"
                ))),
                Err(e) => Err(ClientError::Crypto(e.to_string())),
            },
        }
    }

    /// Switches both directions to what the handshake announced.
    async fn apply(&mut self, handshake: Handshake, key: Option<SessionKey>) -> Result<(), ClientError> {
        let encryption = match handshake {
            Handshake::Plaintext => {
                if key.is_some() {
                    tracing::warn!("the sync server runs with encryption off: frames are plaintext");
                }
                self.stage = Stage::Plaintext;
                Encryption::Plaintext
            }
            Handshake::Sealed(salt) => {
                let key = key.ok_or_else(|| {
                    ClientError::Crypto("server requires encryption but no session_key was given".into())
                })?;
                let (sealer, opener) = crypto::client_side(&key, &salt);
                // Installed before any later event is forwarded, so a reply seen means the next send is sealed.
                if let Some(writer) = self.writer.upgrade() {
                    writer.lock().await.sealer = Some(sealer);
                }
                self.stage = Stage::Sealed(opener);
                Encryption::Sealed
            }
        };
        // Only the first frame is read as a handshake, so this is set once.
        let _ = self.encryption.set(encryption);
        Ok(())
    }
}
