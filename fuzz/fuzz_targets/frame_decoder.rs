//! `FrameCodec::decode` on arbitrary bytes, delivered in arbitrary chunks.
//!
//! Input layout (so seeds can be written by hand): byte 0 is the maximum body size (0..=255, small so the `TooLarge`
//! path is hit often), byte 1 the number `n` of chunk lengths that follow, then `n` chunk lengths of one byte each
//! (0 is allowed: `decode` is called with nothing new), then the stream. Stream bytes left after the listed chunks
//! arrive as one last chunk.
//!
//! Properties:
//! - no panic;
//! - every decoded body is at most the maximum;
//! - `Ok(None)` only when the buffer really holds less than a whole frame;
//! - the chunked decode, a decode of the whole stream in one chunk, and a 15-line reference decoder of the
//!   specification (docs/protocol.md §2) give the same frames and the same ending (clean, `TooLarge` with the same
//!   length, or bytes left at end of stream);
//! - re-encoding the frames with `FrameCodec::encode` gives back exactly the bytes they were decoded from.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use movan_protocol::codec::LENGTH_PREFIX;
use movan_protocol::{FrameCodec, FrameError};
use tokio_util::codec::{Decoder, Encoder};

/// How a decode of the whole stream ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Every byte was consumed by whole frames.
    Clean,
    /// A length prefix announced more than the maximum.
    TooLarge { len: u64, max: usize },
    /// The stream ended inside a frame with this many bytes left over.
    Truncated { left: usize },
}

#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    frames: Vec<Bytes>,
    end: End,
}

fuzz_target!(|data: &[u8]| {
    let [max, n, rest @ ..] = data else { return };
    let max = usize::from(*max);
    let n = usize::from(*n).min(rest.len());
    let (lens, stream) = rest.split_at(n);
    let mut chunks = Vec::with_capacity(n + 1);
    let mut at = 0;
    for &len in lens {
        let end = (at + usize::from(len)).min(stream.len());
        chunks.push(&stream[at..end]);
        at = end;
    }
    chunks.push(&stream[at..]);

    let chunked = decode_chunks(max, &chunks);
    let whole = decode_chunks(max, &[stream]);
    let reference = reference_decode(max, stream);
    assert_eq!(chunked, whole, "chunking changed the result");
    assert_eq!(whole, reference, "codec disagrees with the specification");

    let mut reencoded = BytesMut::new();
    let mut codec = FrameCodec::new(max);
    for frame in &chunked.frames {
        assert!(frame.len() <= max, "body of {} bytes over the maximum {max}", frame.len());
        codec.encode(&frame[..], &mut reencoded).expect("a decoded body fits the maximum");
    }
    assert_eq!(&reencoded[..], &stream[..reencoded.len()], "frames are not the bytes they came from");
});

/// Feeds `chunks` one at a time, decoding as far as possible after each, then signals end of stream.
fn decode_chunks(max: usize, chunks: &[&[u8]]) -> Decoded {
    let mut codec = FrameCodec::new(max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => {
                    assert!(!holds_whole_frame(&buf), "Ok(None) with a whole frame buffered");
                    break;
                }
                Err(e) => return Decoded { frames, end: too_large(e) },
            }
        }
    }
    // End of stream: `decode_eof` must agree with what is left in the buffer.
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => {
                assert!(buf.is_empty(), "decode_eof returned None with {} bytes left", buf.len());
                return Decoded { frames, end: End::Clean };
            }
            Err(FrameError::Io(_)) => {
                assert!(!buf.is_empty(), "decode_eof failed on an empty buffer");
                return Decoded { frames, end: End::Truncated { left: buf.len() } };
            }
            Err(e) => return Decoded { frames, end: too_large(e) },
        }
    }
}

fn too_large(e: FrameError) -> End {
    match e {
        FrameError::TooLarge { len, max } => {
            assert!(len > max as u64, "TooLarge for {len} bytes with maximum {max}");
            End::TooLarge { len, max }
        }
        FrameError::Io(e) => panic!("decode produced an i/o error: {e}"),
    }
}

fn holds_whole_frame(buf: &[u8]) -> bool {
    buf.len() >= LENGTH_PREFIX && buf.len() - LENGTH_PREFIX >= announced(buf)
}

fn announced(buf: &[u8]) -> usize {
    u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize
}

/// The framing rule as docs/protocol.md §2 states it, written independently of the codec.
fn reference_decode(max: usize, mut stream: &[u8]) -> Decoded {
    let mut frames = Vec::new();
    while stream.len() >= LENGTH_PREFIX {
        let len = announced(stream);
        if len > max {
            return Decoded { frames, end: End::TooLarge { len: len as u64, max } };
        }
        if stream.len() - LENGTH_PREFIX < len {
            break;
        }
        frames.push(Bytes::copy_from_slice(&stream[LENGTH_PREFIX..LENGTH_PREFIX + len]));
        stream = &stream[LENGTH_PREFIX + len..];
    }
    let end = if stream.is_empty() { End::Clean } else { End::Truncated { left: stream.len() } };
    Decoded { frames, end }
}
