//! Bots for `movan-relay` (the bare relay `scripts/bench.sh` measures Movan against): the same open-loop load and
//! the same measurements as against the sync server, over the relay's wire (src/bin/movan-relay.rs): no login, no
//! JSON, no encryption. Each input is `[u32 bot][u64 seq]` padded to `INPUT_LEN` bytes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::load::{BotResult, Bots, Live, LoadConfig, measure};
use crate::procfs;
use crate::report::Point;
use crate::tracker::Window;

/// Bytes of every input: about what a game's input is, and what the Movan bots' `{"s":n}` actions come to with
/// their envelope.
pub const INPUT_LEN: usize = 120;

/// Runs one point of `n` relay bots against `addr`.
pub async fn run_point(cfg: &LoadConfig, addr: &str, n: usize, tag: &str, bar: &ProgressBar) -> Point {
    let rooms = n.div_ceil(cfg.room_size.max(1));
    let baseline = cfg.server_pid.and_then(procfs::sample);
    let live = Arc::new(Live::default());
    let (window_tx, window_rx) = watch::channel(None::<Window>);
    let (started_tx, started_rx) = mpsc::channel::<bool>(n.max(1));
    let gate = Arc::new(Semaphore::new(cfg.connect_concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let room = format!("{}-{tag}-{}", cfg.prefix, i / cfg.room_size.max(1));
        let bot = RelayBot {
            cfg: cfg.clone(),
            addr: addr.to_owned(),
            id: i as u32,
            room,
            live: live.clone(),
            window: window_rx.clone(),
        };
        let (gate, started) = (gate.clone(), started_tx.clone());
        tasks.spawn(async move { bot.run(gate, started).await });
    }
    drop(started_tx);
    measure(cfg, n, rooms, Bots { live, window_tx, started_rx, tasks, baseline }, bar).await
}

struct RelayBot {
    cfg: LoadConfig,
    addr: String,
    id: u32,
    room: String,
    live: Arc<Live>,
    window: watch::Receiver<Option<Window>>,
}

impl RelayBot {
    async fn run(self, gate: Arc<Semaphore>, started: mpsc::Sender<bool>) -> BotResult {
        let mut result = BotResult::default();
        let joined = self.join(gate).await;
        let _ = started.send(joined.is_ok()).await;
        let (reader, writer) = match joined {
            Ok(halves) => halves,
            Err(e) => {
                result.error = Some(format!("relay bot {}: {e:#}", self.id));
                return result;
            }
        };
        self.live.playing.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.play(reader, writer, &mut result).await {
            result.error = Some(format!("relay bot {}: {e:#}", self.id));
        }
        self.live.playing.fetch_sub(1, Ordering::Relaxed);
        result.actions.finish();
        result
    }

    /// Connects, names the room, and waits for the first frame (the room is full and ticking).
    async fn join(
        &self,
        gate: Arc<Semaphore>,
    ) -> anyhow::Result<(BufReader<tokio::net::tcp::OwnedReadHalf>, tokio::net::tcp::OwnedWriteHalf)> {
        let stream = {
            let _permit = gate.acquire_owned().await?;
            tokio::time::timeout(self.cfg.join_timeout, TcpStream::connect(&self.addr))
                .await
                .context("connecting: timed out")??
        };
        stream.set_nodelay(true)?;
        let (read, mut write) = stream.into_split();
        let mut hello = (self.room.len() as u32).to_be_bytes().to_vec();
        hello.extend_from_slice(self.room.as_bytes());
        write.write_all(&hello).await?;
        Ok((BufReader::new(read), write))
    }

    async fn play(
        &self,
        mut reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
        mut writer: tokio::net::tcp::OwnedWriteHalf,
        result: &mut BotResult,
    ) -> anyhow::Result<()> {
        let (frames_tx, mut frames_rx) = mpsc::channel::<(Vec<u8>, std::time::Instant)>(1024);
        // Reading in its own task, so that a send never delays the receive timestamp.
        let read_task = tokio::spawn(async move {
            loop {
                let len = reader.read_u32().await? as usize;
                let mut frame = vec![0; len];
                reader.read_exact(&mut frame).await?;
                if frames_tx.send((frame, std::time::Instant::now())).await.is_err() {
                    return Ok::<_, std::io::Error>(());
                }
            }
        });
        let mut window: Option<Window> = *self.window.borrow();
        let period = Duration::from_secs_f64(1.0 / self.cfg.rate.max(0.001));
        let phase =
            Duration::from_nanos(u64::from(self.id).wrapping_mul(0x9E37_79B9) % period.as_nanos().max(1) as u64);
        let mut ticks = tokio::time::interval_at(Instant::now() + phase, period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut sending = true;
        let mut input = vec![0u8; 4 + INPUT_LEN];
        input[..4].copy_from_slice(&(INPUT_LEN as u32).to_be_bytes());
        input[4..8].copy_from_slice(&self.id.to_be_bytes());
        loop {
            if window.is_none() {
                window = *self.window.borrow();
            }
            let done_at = window.map(|w| Instant::from_std(w.end) + self.cfg.linger);
            if done_at.is_some_and(|t| Instant::now() >= t) {
                read_task.abort();
                return Ok(());
            }
            let wake = done_at.unwrap_or_else(|| Instant::now() + Duration::from_millis(100));
            tokio::select! {
                scheduled = ticks.tick(), if sending => {
                    if window.is_some_and(|w| scheduled.into_std() >= w.end) {
                        sending = false;
                        continue;
                    }
                    let seq = result.actions.on_send(scheduled.into_std());
                    input[8..16].copy_from_slice(&seq.to_be_bytes());
                    if let Err(e) = writer.write_all(&input).await {
                        result.actions.on_send_failed(seq);
                        bail!("sending: {e}");
                    }
                }
                frame = frames_rx.recv() => {
                    let Some((frame, at)) = frame else { bail!("the relay closed the connection") };
                    self.live.frames.fetch_add(1, Ordering::Relaxed);
                    self.on_frame(&frame, at, window.as_ref(), result)?;
                }
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Reads a frame: `[u64 number][u16 inputs]`, then `[u32 sender][u16 len][bytes]` per input.
    fn on_frame(
        &self,
        frame: &[u8],
        at: std::time::Instant,
        window: Option<&Window>,
        result: &mut BotResult,
    ) -> anyhow::Result<()> {
        let short = || anyhow::anyhow!("a frame from the relay is cut short");
        let number = u64::from_be_bytes(frame.get(..8).ok_or_else(short)?.try_into()?);
        result.frames.on_frame(number, at, window);
        let mut rest = frame.get(10..).ok_or_else(short)?;
        while !rest.is_empty() {
            let len = u16::from_be_bytes(rest.get(4..6).ok_or_else(short)?.try_into()?) as usize;
            let body = rest.get(6..6 + len).ok_or_else(short)?;
            if body.len() >= 12 && body[..4] == self.id.to_be_bytes() {
                let seq = u64::from_be_bytes(body[4..12].try_into()?);
                result.actions.on_seen(seq, at, window);
            }
            rest = &rest[6 + len..];
        }
        Ok(())
    }
}
