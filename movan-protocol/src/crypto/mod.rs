//! Encrypted sessions: per-connection keys and sealed frames, without IO.
//!
//! At login the account server hands the client a random 256-bit [`SessionKey`]; the sync server obtains the same key
//! for the session. A connection then goes:
//!
//! 1. The client's first frame is plaintext and carries the token, as before.
//! 2. The server answers with a plaintext [`handshake_message`] holding a fresh random 32-byte salt for this connection.
//! 3. Every later frame, both ways, is sealed with ChaCha20-Poly1305 under a per-direction key,
//!    `HKDF-SHA256(ikm = session key, salt = connection salt, info = direction label)`.
//!
//! The nonce is `0u32 || counter` (big-endian), where the counter counts sealed frames in that direction from 0. It is
//! never sent: the receiver expects the next number, so a replayed, dropped, reordered or forged frame fails
//! authentication. The associated data is the frame's 4-byte length prefix. A new salt per connection means a
//! (key, nonce) pair never repeats, even across reconnects with the same session key.
//!
//! A sealed frame is `[u32 BE len = plaintext len + 16][ciphertext][16-byte tag]`, so [`crate::FrameCodec`] frames it
//! unchanged and its maximum applies to the sealed length. Every [`CryptoError`] is fatal: close the connection.
//! `docs/encryption.md` specifies the scheme byte by byte, with test vectors (`scripts/crypto_vectors.py`).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{BufMut, Bytes, BytesMut};
use hkdf::Hkdf;
use rand::{CryptoRng, RngCore};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, Tag, UnboundKey};
use serde::Deserialize;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::codec::{LENGTH_PREFIX, frame_bytes};

/// Length of a session key in bytes.
pub const SESSION_KEY_LEN: usize = 32;
/// Length of the per-connection salt in bytes.
pub const SALT_LEN: usize = 32;
/// Length of the Poly1305 tag that ends every sealed frame.
pub const TAG_LEN: usize = 16;
/// The cipher name announced in the handshake.
pub const CIPHER: &str = "chacha20poly1305";

/// The 256-bit secret shared by a client and the servers for one login session.
///
/// `Debug` never shows the key, and the bytes are zeroed when the value is dropped.
#[derive(Clone)]
pub struct SessionKey([u8; SESSION_KEY_LEN]);

impl SessionKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; SESSION_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh random key.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut key = [0u8; SESSION_KEY_LEN];
        rng.fill_bytes(&mut key);
        Self(key)
    }

    /// Parses the key as the account server sends it: standard base64 with padding, decoding to exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = Zeroizing::new(BASE64.decode(text).map_err(|e| CryptoError::BadKey(e.to_string()))?);
        let key: [u8; SESSION_KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::BadKey(format!("{} bytes, expected {SESSION_KEY_LEN}", bytes.len())))?;
        Ok(Self(key))
    }

    /// The key as standard base64 with padding (44 characters).
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; SESSION_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

impl Drop for SessionKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A fresh random per-connection salt, for the server's [`handshake_message`].
pub fn generate_salt(rng: &mut (impl RngCore + CryptoRng)) -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    salt
}

/// Which way a frame travels; each direction has its own key and counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Frames the client sends.
    ClientToServer,
    /// Frames the server sends.
    ServerToClient,
}

impl Direction {
    /// The HKDF `info` label that separates the two directions' keys.
    pub fn info(self) -> &'static [u8] {
        match self {
            Self::ClientToServer => b"movan/v1/client-to-server",
            Self::ServerToClient => b"movan/v1/server-to-client",
        }
    }
}

/// Why sealing or opening a frame failed. Every one of these is fatal: the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The tag did not verify: the frame was tampered with, replayed, reordered, follows a dropped frame, or was
    /// sealed under another key, salt or direction.
    #[error("frame failed authentication")]
    Authentication,
    /// The sealed body is shorter than a tag.
    #[error("sealed frame of {len} bytes is shorter than the {TAG_LEN}-byte tag")]
    TooShort {
        /// Body length received.
        len: usize,
    },
    /// The plaintext plus tag does not fit in a 32-bit length prefix.
    #[error("plaintext of {len} bytes is too large to seal")]
    TooLarge {
        /// Plaintext (or body) length.
        len: usize,
    },
    /// The direction's frame counter reached `u64::MAX`; it never wraps, so no more frames can be sealed or opened.
    #[error("frame counter exhausted")]
    CounterExhausted,
    /// A session key that is not base64 of exactly 32 bytes.
    #[error("bad session key: {0}")]
    BadKey(String),
}

/// Seals the frames one side sends: the key for its sending direction and the next frame counter.
pub struct Sealer {
    key: DirectionKey,
}

impl Sealer {
    /// The sealer for `dir` on the connection with `salt`.
    pub fn new(key: &SessionKey, salt: &[u8; SALT_LEN], dir: Direction) -> Self {
        Self { key: DirectionKey::new(key, salt, dir) }
    }

    /// Seals `plaintext` into a whole wire frame: length prefix, ciphertext, tag.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Bytes, CryptoError> {
        let mut out = BytesMut::with_capacity(LENGTH_PREFIX + plaintext.len() + TAG_LEN);
        self.seal_into(plaintext, &mut out)?;
        Ok(out.freeze())
    }

    /// Appends the sealed wire frame for `plaintext` to `dst` (length prefix, ciphertext, tag), so several frames can
    /// go out in one write.
    ///
    /// On error nothing is appended and the counter does not move.
    pub fn seal_into(&mut self, plaintext: &[u8], dst: &mut BytesMut) -> Result<(), CryptoError> {
        let prefix = sealed_len_prefix(plaintext.len())?;
        let start = dst.len();
        dst.put_slice(&prefix);
        self.seal_body_into(plaintext, dst).inspect_err(|_| dst.truncate(start))
    }

    /// Appends the sealed message body for `plaintext` to `dst`: ciphertext then tag, without a length prefix, for
    /// transports that frame messages themselves (a WebSocket message, a TCP frame written after its prefix). The
    /// associated data is still the body's length as 4 big-endian bytes, so the body is the same on every transport.
    ///
    /// On error nothing is appended and the counter does not move.
    pub fn seal_body_into(&mut self, plaintext: &[u8], dst: &mut BytesMut) -> Result<(), CryptoError> {
        let too_large = CryptoError::TooLarge { len: plaintext.len() };
        let ad = sealed_len_prefix(plaintext.len())?;
        let nonce = self.key.nonce()?;
        let start = dst.len();
        dst.reserve(plaintext.len() + TAG_LEN);
        dst.put_slice(plaintext);
        let sealed = self.key.cipher.seal_in_place_separate_tag(nonce, Aad::from(ad), &mut dst[start..]);
        match sealed {
            Ok(tag) => {
                dst.put_slice(tag.as_ref());
                self.key.advance();
                Ok(())
            }
            Err(_) => {
                // Unreachable for bodies under 4 GiB (ChaCha20's limit is 256 GiB), but never leave half a frame.
                dst.truncate(start);
                Err(too_large)
            }
        }
    }

    /// The counter the next sealed frame will use.
    pub fn counter(&self) -> u64 {
        self.key.next
    }

    /// Starts the counter at `next`, to reach exhaustion in tests.
    #[cfg(test)]
    fn with_counter(mut self, next: u64) -> Self {
        self.key.next = next;
        self
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer").field("direction", &self.key.dir).field("counter", &self.key.next).finish()
    }
}

/// Opens the frames one side receives: the key for its receiving direction and the counter it expects next.
pub struct Opener {
    key: DirectionKey,
}

impl Opener {
    /// The opener for `dir` on the connection with `salt`.
    pub fn new(key: &SessionKey, salt: &[u8; SALT_LEN], dir: Direction) -> Self {
        Self { key: DirectionKey::new(key, salt, dir) }
    }

    /// Opens a sealed frame body (ciphertext then tag, as [`crate::FrameCodec`] yields it) into its plaintext.
    ///
    /// The associated data is recomputed from `body.len()`, so a length prefix that was altered in transit makes the
    /// tag fail. On error the counter does not move, but the connection must be closed anyway.
    pub fn open(&mut self, body: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (ciphertext, tag) = body.split_last_chunk::<TAG_LEN>().ok_or(CryptoError::TooShort { len: body.len() })?;
        let prefix = u32::try_from(body.len()).map_err(|_| CryptoError::TooLarge { len: body.len() })?.to_be_bytes();
        let nonce = self.key.nonce()?;
        let mut plaintext = ciphertext.to_vec();
        self.key
            .cipher
            .open_in_place_separate_tag(nonce, Aad::from(prefix), Tag::from(*tag), &mut plaintext, 0..)
            .map_err(|_| CryptoError::Authentication)?;
        self.key.advance();
        Ok(plaintext)
    }

    /// The counter the next frame must have been sealed with.
    pub fn counter(&self) -> u64 {
        self.key.next
    }

    /// Starts the counter at `next`, to reach exhaustion in tests.
    #[cfg(test)]
    fn with_counter(mut self, next: u64) -> Self {
        self.key.next = next;
        self
    }
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener").field("direction", &self.key.dir).field("counter", &self.key.next).finish()
    }
}

/// The length prefix of the sealed frame of a `plaintext_len`-byte plaintext: also the associated data.
fn sealed_len_prefix(plaintext_len: usize) -> Result<[u8; LENGTH_PREFIX], CryptoError> {
    let too_large = CryptoError::TooLarge { len: plaintext_len };
    let body_len = plaintext_len.checked_add(TAG_LEN).ok_or(too_large.clone())?;
    Ok(u32::try_from(body_len).map_err(|_| too_large)?.to_be_bytes())
}

/// The server's half of a connection: seals server→client, opens client→server.
pub fn server_side(key: &SessionKey, salt: &[u8; SALT_LEN]) -> (Sealer, Opener) {
    (Sealer::new(key, salt, Direction::ServerToClient), Opener::new(key, salt, Direction::ClientToServer))
}

/// The client's half of a connection: seals client→server, opens server→client.
pub fn client_side(key: &SessionKey, salt: &[u8; SALT_LEN]) -> (Sealer, Opener) {
    (Sealer::new(key, salt, Direction::ClientToServer), Opener::new(key, salt, Direction::ServerToClient))
}

/// The plaintext handshake frame the server sends after the token frame:
/// `{"proto":"handshake","data":{"salt":"<base64>","cipher":"chacha20poly1305"}}`, with its length prefix.
pub fn handshake_message(salt: &[u8; SALT_LEN]) -> Bytes {
    frame_bytes(&handshake_body(salt))
}

/// The body of [`handshake_message`], for transports that frame messages themselves.
pub fn handshake_body(salt: &[u8; SALT_LEN]) -> Bytes {
    format!(r#"{{"proto":"handshake","data":{{"salt":"{}","cipher":"{CIPHER}"}}}}"#, BASE64.encode(salt)).into()
}

/// The handshake of a server running with `encryption = "off"`: `{"salt":null,"cipher":"none"}`; every later
/// frame stays plaintext. With its length prefix.
pub fn plaintext_handshake_message() -> Bytes {
    frame_bytes(&plaintext_handshake_body())
}

/// The body of [`plaintext_handshake_message`].
pub fn plaintext_handshake_body() -> Bytes {
    Bytes::from_static(br#"{"proto":"handshake","data":{"salt":null,"cipher":"none"}}"#)
}

/// What the server's handshake announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// Every later frame is sealed with keys derived from the session key and this salt.
    Sealed([u8; SALT_LEN]),
    /// The server runs without encryption (`encryption = "off"`, for local debugging).
    Plaintext,
}

/// Why a client could not read the server's handshake.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Not JSON, or fields of the wrong shape.
    #[error("malformed handshake: {0}")]
    Json(#[from] serde_json::Error),
    /// Another message came instead; an `error` (e.g. a rejected token) is read with
    /// [`crate::server::parse_server_message`] on the same body.
    #[error("expected a handshake, got proto {0:?}")]
    NotHandshake(String),
    /// The server wants a cipher this client does not implement.
    #[error("unsupported cipher {0:?}")]
    UnsupportedCipher(String),
    /// The salt is not base64 of exactly 32 bytes.
    #[error("bad handshake salt: {0}")]
    BadSalt(String),
}

/// Reads the server's handshake frame body (without its length prefix).
pub fn parse_handshake(body: &[u8]) -> Result<Handshake, HandshakeError> {
    #[derive(Deserialize)]
    struct Envelope {
        proto: String,
        #[serde(default)]
        data: Option<serde_json::Value>,
    }
    #[derive(Deserialize)]
    struct HandshakeData {
        salt: Option<String>,
        cipher: String,
    }
    let env: Envelope = serde_json::from_slice(body)?;
    if env.proto != "handshake" {
        return Err(HandshakeError::NotHandshake(env.proto));
    }
    let data: HandshakeData = serde_json::from_value(env.data.unwrap_or_default())?;
    match data.cipher.as_str() {
        "none" => return Ok(Handshake::Plaintext),
        CIPHER => {}
        _ => return Err(HandshakeError::UnsupportedCipher(data.cipher)),
    }
    let salt = data.salt.ok_or_else(|| HandshakeError::BadSalt("missing".into()))?;
    let salt = BASE64.decode(&salt).map_err(|e| HandshakeError::BadSalt(e.to_string()))?;
    let salt: [u8; SALT_LEN] = salt
        .as_slice()
        .try_into()
        .map_err(|_| HandshakeError::BadSalt(format!("{} bytes, expected {SALT_LEN}", salt.len())))?;
    Ok(Handshake::Sealed(salt))
}

/// One direction's AEAD key and next frame counter. The cipher is `ring`'s ChaCha20-Poly1305 (BoringSSL's
/// assembly); the tests check it byte for byte against the RustCrypto `chacha20poly1305` crate. The derived key bytes
/// are zeroed once ring has expanded them.
struct DirectionKey {
    /// Boxed: ring's expanded key is over 500 bytes, and sealers and openers move around in enums.
    cipher: Box<LessSafeKey>,
    dir: Direction,
    next: u64,
}

impl DirectionKey {
    fn new(key: &SessionKey, salt: &[u8; SALT_LEN], dir: Direction) -> Self {
        let okm = derive_direction_key(key, salt, dir);
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, okm.as_slice()).expect("HKDF output is a 32-byte key");
        Self { cipher: Box::new(LessSafeKey::new(unbound)), dir, next: 0 }
    }

    /// The nonce for the next frame; the last counter value, `u64::MAX`, is never used so the counter cannot wrap.
    fn nonce(&self) -> Result<Nonce, CryptoError> {
        if self.next == u64::MAX {
            return Err(CryptoError::CounterExhausted);
        }
        Ok(nonce_for(self.next))
    }

    fn advance(&mut self) {
        self.next += 1;
    }
}

/// One direction's ChaCha20-Poly1305 key: HKDF-SHA256 with ikm = session key, salt = connection salt, info =
/// [`Direction::info`], 32 bytes out (`docs/encryption.md`). Public for implementers checking their derivation.
pub fn derive_direction_key(key: &SessionKey, salt: &[u8; SALT_LEN], dir: Direction) -> Zeroizing<[u8; 32]> {
    let mut okm = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(salt), key.as_bytes())
        .expand(dir.info(), okm.as_mut_slice())
        .expect("32 bytes is within HKDF-SHA256's 8160-byte output limit");
    okm
}

/// The nonce of frame `counter`: 4 zero bytes, then the counter as 64-bit big-endian.
pub fn nonce_bytes(counter: u64) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[4..].copy_from_slice(&counter.to_be_bytes());
    nonce
}

fn nonce_for(counter: u64) -> Nonce {
    Nonce::assume_unique_for_key(nonce_bytes(counter))
}

#[cfg(test)]
mod tests;
