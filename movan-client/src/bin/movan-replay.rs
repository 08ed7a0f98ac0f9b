//! `movan-replay`: check, describe and export Movan replay files (docs/replay.md), and download them.
//!
//! Exit status: 0 on success, 1 when `verify` finds a problem or a file cannot be read, 2 on bad arguments.

use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use movan_client::AccountClient;
use movan_protocol::replay::{Replay, one_line};

/// Check, describe, export and download Movan replays.
#[derive(Debug, Parser)]
#[command(name = "movan-replay", version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Checks a replay: blocks decompress, frames run 0, 1, 2, ... without a gap, the frame count and the SHA-256 of
    /// the frames match the header, and the checksum comparisons agree with the first desync. Exit 1 on a problem.
    Verify {
        /// The replay file.
        file: PathBuf,
    },
    /// Prints what a replay says about its game.
    Info {
        /// The replay file.
        file: PathBuf,
        /// Print the header as JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Writes a replay as JSON lines: the header, then every `sync_frame` message, one per line.
    Export {
        /// The replay file.
        file: PathBuf,
        /// Where to write; default standard output.
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Downloads the replay of one of your matches (any match, for an admin).
    Download {
        /// Account server base URL.
        #[arg(long, env = "MOVAN_ACCOUNT", default_value = "http://127.0.0.1:2026")]
        account: String,
        /// Username to log in with.
        #[arg(long, env = "MOVAN_USER")]
        user: String,
        /// Password.
        #[arg(long, env = "MOVAN_PASSWORD")]
        password: String,
        /// The match, as listed by `GET /v1/me/matches`.
        match_id: String,
        /// Where to write; default `<match_id>.movanreplay`.
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
}

fn read(file: &PathBuf) -> anyhow::Result<Replay> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    Replay::parse(bytes).with_context(|| format!("{}", file.display()))
}

fn info(replay: &Replay) {
    let h = &replay.header;
    let duration = h.ended_at - h.started_at;
    println!("match       {}", h.match_id);
    println!("room        {}", h.room_id);
    println!("players     {}", h.players.join(", "));
    println!("seed        {}", h.seed);
    println!("tick        {} ms", h.frame_interval_ms);
    println!("started at  {:.3} (Unix seconds)", h.started_at);
    println!("duration    {duration:.2} s");
    println!("end reason  {}", h.end_reason);
    if let Some(results) = &h.results {
        println!("results     {results}");
    }
    let truncated = if h.truncated { " (truncated: the replay reached its size limit)" } else { "" };
    println!("frames      {} of {}{truncated}", h.frame_count, h.game_frame_count);
    let desyncs = h.checksums.iter().filter(|c| c.groups.len() > 1).count();
    let more = if h.checksums_truncated { "+" } else { "" };
    println!(
        "checksums   {}{more} compared every {} frames, {desyncs} disagreed",
        h.checksums.len(),
        h.checksum_interval
    );
    match h.first_desync_frame {
        Some(frame) => println!("first desync frame {frame}"),
        None => println!("first desync none"),
    }
    println!("file        {} bytes in {} blocks", replay.as_bytes().len(), replay.block_count());
    println!("frames sha  {}", h.frames_sha256);
}

fn export(replay: &Replay, out: Option<&PathBuf>) -> anyhow::Result<()> {
    let sink: Box<dyn std::io::Write> = match out {
        Some(path) => Box::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut sink = BufWriter::new(sink);
    serde_json::to_writer(&mut sink, &replay.header)?;
    sink.write_all(b"\n")?;
    for frame in replay.frames() {
        let (_, body) = frame?;
        sink.write_all(&one_line(&body))?;
        sink.write_all(b"\n")?;
    }
    sink.flush()?;
    Ok(())
}

async fn download(
    account: &str,
    user: &str,
    password: &str,
    match_id: &str,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let client = AccountClient::new(account);
    let session = client.login(user, password).await.context("logging in")?;
    let file = client.replay_file(&session.token, match_id).await.with_context(|| format!("downloading {match_id}"))?;
    let path = out.unwrap_or_else(|| PathBuf::from(format!("{match_id}.movanreplay")));
    std::fs::write(&path, &file).with_context(|| format!("writing {}", path.display()))?;
    println!("{} bytes written to {}", file.len(), path.display());
    Ok(())
}

fn run(args: Args) -> anyhow::Result<bool> {
    match args.command {
        Command::Verify { file } => {
            let replay = read(&file)?;
            let verified = replay.verify();
            for problem in &verified.problems {
                eprintln!("{}: {problem}", file.display());
            }
            let truncated = if replay.header.truncated { ", truncated" } else { "" };
            if verified.is_ok() {
                println!(
                    "{}: ok: {} frames in {} blocks, {} checksum comparisons{truncated}",
                    file.display(),
                    verified.frames,
                    verified.blocks,
                    verified.checksums
                );
            }
            Ok(verified.is_ok())
        }
        Command::Info { file, json } => {
            let replay = read(&file)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&replay.header)?);
            } else {
                info(&replay);
            }
            Ok(true)
        }
        Command::Export { file, out } => {
            export(&read(&file)?, out.as_ref())?;
            Ok(true)
        }
        Command::Download { account, user, password, match_id, out } => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(download(&account, &user, &password, &match_id, out))?;
            Ok(true)
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("movan-replay: {e:#}");
            ExitCode::from(1)
        }
    }
}
