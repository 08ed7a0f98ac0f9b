//! Length-prefixed framing used on every Movan TCP connection.
//!
//! A frame is a 4-byte big-endian unsigned body length followed by that many body bytes. A length over the
//! configured maximum is an error *before* any body byte is buffered, so a peer announcing 4 GiB costs nothing.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Size of the length prefix in bytes.
pub const LENGTH_PREFIX: usize = 4;
/// Default maximum body size a server accepts from a client (64 KiB).
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;
/// Maximum body size a client should accept from the server: reload chunks carry many frames.
pub const DEFAULT_MAX_SERVER_FRAME: usize = 16 * 1024 * 1024;

/// A framing failure; after one the stream cannot be resynchronised and must be closed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer announced a body longer than the maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// Announced body length.
        len: u64,
        /// Configured maximum.
        max: usize,
    },
    /// The underlying stream failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Decoder and encoder for length-prefixed frames with a maximum body size.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    max_frame: usize,
}

impl FrameCodec {
    /// A codec that rejects bodies longer than `max_frame` bytes (in both directions).
    pub fn new(max_frame: usize) -> Self {
        Self { max_frame }
    }

    /// The maximum body size.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    /// `Ok(None)` means "not enough bytes yet", which is normal.
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(prefix) = src.get(..LENGTH_PREFIX) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if len > self.max_frame {
            return Err(FrameError::TooLarge { len: len as u64, max: self.max_frame });
        }
        let total = LENGTH_PREFIX + len;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        src.advance(LENGTH_PREFIX);
        Ok(Some(src.split_to(len).freeze()))
    }
}

impl Encoder<&[u8]> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, body: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        if body.len() > self.max_frame {
            return Err(FrameError::TooLarge { len: body.len() as u64, max: self.max_frame });
        }
        dst.reserve(LENGTH_PREFIX + body.len());
        dst.put_u32(body.len() as u32);
        dst.put_slice(body);
        Ok(())
    }
}

/// Prefixes `body` with its length: the exact bytes to write on the wire.
///
/// Used by the server to build each message once and share it across recipients.
pub fn frame_bytes(body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(LENGTH_PREFIX + body.len());
    out.put_u32(body.len() as u32);
    out.put_slice(body);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut FrameCodec, input: &[u8]) -> Result<Vec<Bytes>, FrameError> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(frame) = codec.decode(&mut buf)? {
            out.push(frame);
        }
        Ok(out)
    }

    #[test]
    fn round_trip() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::new();
        codec.encode(&b"{\"a\":1}"[..], &mut buf).unwrap();
        codec.encode(&b""[..], &mut buf).unwrap();
        assert_eq!(&buf[..4], &[0, 0, 0, 7]);
        let frames = decode_all(&mut codec, &buf).unwrap();
        assert_eq!(frames, vec![Bytes::from_static(b"{\"a\":1}"), Bytes::new()]);
    }

    #[test]
    fn partial_input_is_not_an_error() {
        let mut codec = FrameCodec::default();
        let wire = frame_bytes(b"hello");
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            assert!(codec.decode(&mut buf).unwrap().is_none(), "cut at {cut}");
        }
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), Bytes::from_static(b"hello"));
        assert!(buf.is_empty());
    }

    #[test]
    fn oversize_length_is_rejected_before_buffering() {
        let mut codec = FrameCodec::new(16);
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        match codec.decode(&mut buf) {
            Err(FrameError::TooLarge { len, max }) => {
                assert_eq!(len, u32::MAX as u64);
                assert_eq!(max, 16);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert!(buf.capacity() < 1024, "must not reserve the announced size");
    }

    #[test]
    fn exact_maximum_is_accepted() {
        let mut codec = FrameCodec::new(3);
        assert_eq!(decode_all(&mut codec, &frame_bytes(b"abc")).unwrap().len(), 1);
        assert!(decode_all(&mut codec, &frame_bytes(b"abcd")).is_err());
        let mut out = BytesMut::new();
        assert!(codec.encode(&b"abcd"[..], &mut out).is_err());
    }
}
