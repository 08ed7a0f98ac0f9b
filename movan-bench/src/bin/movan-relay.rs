//! `movan-relay`: the yardstick `scripts/bench.sh` measures Movan against. A bare lockstep relay over TCP, with the
//! same shape of work as the sync server and none of its features: no JSON, no authentication, no encryption, no
//! limits, no reconnects. Rooms of `--room-size` start when full; each tick every room's inputs since the last tick go
//! to every member as one frame, one `write` per message.
//!
//! Wire (all lengths big-endian):
//! - client → relay: `[u32 length][body]`. The first body is the room id (UTF-8); every later one is an input,
//!   relayed as is (at most 64 KiB).
//! - relay → client: `[u32 length][frame]`, frame = `[u64 frame number][u16 inputs]` then per input
//!   `[u32 sender][u16 length][bytes]`; the sender is the relay's number for the connection. Frames count from 0.
//!
//! `movan-bench --relay ADDR` drives it; it prints `movan-relay listening on ADDR` once it listens.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A bare lockstep relay: the yardstick for Movan's benchmarks.
#[derive(Debug, Parser)]
#[command(name = "movan-relay", version)]
struct Args {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Members a room needs before it ticks.
    #[arg(long, default_value_t = 4)]
    room_size: usize,
    /// Milliseconds between frames.
    #[arg(long, default_value_t = 50)]
    tick_ms: u64,
}

/// Largest input or room id accepted.
const MAX_BODY: usize = 64 * 1024;
/// Frames a slow member may have waiting before it is dropped.
const QUEUE: usize = 1024;

#[derive(Default)]
struct Room {
    /// Inputs since the last frame, encoded as in the frame.
    pending: BytesMut,
    count: u16,
    members: Vec<mpsc::Sender<Bytes>>,
    started: bool,
}

type Rooms = Arc<Mutex<HashMap<String, Arc<Mutex<Room>>>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(&args.listen).await?;
    println!("movan-relay listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let rooms: Rooms = Arc::default();
    let ids = Arc::new(AtomicU32::new(0));
    let tick = Duration::from_millis(args.tick_ms.max(1));
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let (rooms, id) = (rooms.clone(), ids.fetch_add(1, Ordering::Relaxed));
        let room_size = args.room_size.max(1);
        tokio::spawn(async move {
            let _ = serve(stream, id, rooms, room_size, tick).await;
        });
    }
}

async fn read_body(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<Vec<u8>> {
    let len = reader.read_u32().await? as usize;
    if len > MAX_BODY {
        return Err(std::io::Error::other("body too large"));
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).await?;
    Ok(body)
}

async fn serve(stream: TcpStream, id: u32, rooms: Rooms, room_size: usize, tick: Duration) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let room_id = String::from_utf8_lossy(&read_body(&mut reader).await?).into_owned();
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
    let room = {
        let mut rooms = lock(&rooms);
        rooms.entry(room_id.clone()).or_default().clone()
    };
    let start = {
        let mut r = lock(&room);
        r.members.push(tx);
        let start = !r.started && r.members.len() >= room_size;
        r.started |= start;
        start
    };
    if start {
        tokio::spawn(ticker(room.clone(), rooms.clone(), room_id, tick));
    }
    // The writer: one write per message.
    tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if write.write_all(&frame).await.is_err() {
                break;
            }
        }
    });
    loop {
        let input = read_body(&mut reader).await?;
        let mut r = lock(&room);
        r.pending.put_u32(id);
        r.pending.put_u16(u16::try_from(input.len()).unwrap_or(u16::MAX));
        r.pending.put_slice(&input);
        r.count = r.count.saturating_add(1);
    }
}

/// Every `tick`, one frame of the room's pending inputs to every member, until all members are gone.
async fn ticker(room: Arc<Mutex<Room>>, rooms: Rooms, room_id: String, tick: Duration) {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut frame_number = 0u64;
    loop {
        interval.tick().await;
        let mut r = lock(&room);
        let inputs = std::mem::take(&mut r.pending);
        let count = std::mem::take(&mut r.count);
        let mut frame = BytesMut::with_capacity(4 + 10 + inputs.len());
        frame.put_u32(u32::try_from(10 + inputs.len()).unwrap_or(u32::MAX));
        frame.put_u64(frame_number);
        frame.put_u16(count);
        frame.put_slice(&inputs);
        let frame = frame.freeze();
        r.members.retain(|m| m.try_send(frame.clone()).is_ok());
        if r.members.is_empty() {
            lock(&rooms).remove(&room_id);
            return;
        }
        frame_number += 1;
    }
}
