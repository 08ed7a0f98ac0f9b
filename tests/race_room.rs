//! The README's custom-room walkthrough, run as written: the account server, `examples/race_room.rs` in place of the
//! stock sync server, and `movan-bot` racing four bots. The commands come from README.md itself (each `cargo run ...
//! --` becomes the built binary, the arguments stay), run in a directory whose `config/config.toml` is the shipped
//! one on free ports.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use movan_tests::{binary, example};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// The README's commands, in order: (cargo prefix, its arguments after `--`).
fn readme_commands() -> Vec<(String, Vec<String>)> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let from = readme.find("The complete example is `sync-server/examples/race_room.rs`").expect("the race_room text");
    let block = readme[from..].split("```sh\n").nth(1).unwrap().split("```").next().unwrap();
    block
        .lines()
        .map(|line| {
            let (cargo, args) = line.split_once(" -- ").unwrap_or_else(|| panic!("no `--` in {line:?}"));
            (cargo.to_owned(), shell_words(args))
        })
        .collect()
}

/// Splits like a POSIX shell for what the README uses: blanks, single quotes, and a `#` comment.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut in_word) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '\'' => (quoted, in_word) = (!quoted, true),
            '#' if !quoted && !in_word => break,
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            c => (word, in_word) = (word + &c.to_string(), true),
        }
    }
    assert!(!quoted, "unbalanced quote in {line:?}");
    if in_word {
        words.push(word);
    }
    words
}

/// The shipped config with every listener on a free port and `account_rpc` for the sync server.
fn write_config(dir: &Path, account_rpc: &str) {
    let shipped = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/config.toml")).unwrap();
    let mut text = String::new();
    for line in shipped.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        let line = match key {
            "http_addr" | "rpc_addr" | "listen_addr" | "ws_addr" | "udp_addr" => format!("{key} = \"127.0.0.1:0\""),
            "metrics_addr" => format!("{key} = \"127.0.0.1:0\""),
            "account_rpc_addr" => format!("{key} = \"{account_rpc}\""),
            _ => line.to_owned(),
        };
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("config/config.toml"), text).unwrap();
}

/// Starts `program args` in `dir` and returns it with the stdout lines up to and including the one starting with
/// `ready` (stderr goes to `stderr_file`).
async fn start(program: &Path, args: &[String], dir: &Path, ready: &str, stderr_file: &Path) -> (Child, Vec<String>) {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr_file).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.starts_with(ready);
            seen.push(line);
            if done {
                return;
            }
        }
        panic!("{} exited: {}", program.display(), std::fs::read_to_string(stderr_file).unwrap());
    })
    .await
    .unwrap_or_else(|_| panic!("{} never printed {ready:?}", program.display()));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, seen)
}

#[tokio::test]
async fn the_readme_race_room_commands_run_end_to_end() {
    let commands = readme_commands();
    let prefixes: Vec<&str> = commands.iter().map(|(cargo, _)| cargo.as_str()).collect();
    assert_eq!(
        prefixes,
        [
            "cargo run --release -p account-server",
            "cargo run -p sync-server --example race_room",
            "cargo run --release -p movan-client --bin movan-bot",
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    write_config(run, "127.0.0.1:1");
    let programs: [PathBuf; 3] = [binary("account-server"), example("race_room"), binary("movan-bot")];

    let (_account, lines) =
        start(&programs[0], &commands[0].1, run, "account-server rpc listening on ", &run.join("account.err")).await;
    let http = lines.iter().find_map(|l| l.strip_prefix("account-server listening on ")).unwrap().to_owned();
    let rpc = lines.last().unwrap().strip_prefix("account-server rpc listening on ").unwrap().to_owned();
    write_config(run, &rpc);
    let (_race, _) = start(&programs[1], &commands[1].1, run, "sync-server listening on ", &run.join("sync.err")).await;
    let sync_log = std::fs::read_to_string(run.join("sync.err")).unwrap();
    assert!(sync_log.contains("rooms=race_room::PointsRace"), "the log names the room factory: {sync_log}");

    // Logins answer 503 until the race server has registered.
    let probe = movan_client::AccountClient::new(&http);
    let _ = probe.register("probe-user", "probe-password").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while probe.login("probe-user", "probe-password").await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the race server never registered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut bot = Command::new(&programs[2])
        .args(&commands[2].1)
        .current_dir(run)
        .env("MOVAN_ACCOUNT", &http)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let (mut out, mut err) = (bot.stdout.take().unwrap(), bot.stderr.take().unwrap());
    let status = tokio::time::timeout(Duration::from_secs(120), async {
        let (a, b) = tokio::join!(out.read_to_string(&mut stdout), err.read_to_string(&mut stderr));
        a.unwrap();
        b.unwrap();
        bot.wait().await.unwrap()
    })
    .await
    .expect("movan-bot finished");
    assert!(status.success(), "movan-bot failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("game over: ended_by_room (4 bots)"), "{stdout}");
    assert!(stdout.contains("\"winner\""), "the room's results are printed: {stdout}");
    assert!(stdout.contains("missing 0, duplicated 0"), "{stdout}");
    assert!(stdout.ends_with("PASS\n"), "{stdout}");
    assert!(!stderr.contains('\u{1b}') && !stdout.contains('\u{1b}'), "no colour codes into a pipe: {stderr:?}");
}

#[test]
fn shell_words_split_like_the_shell() {
    assert_eq!(shell_words("--a 4 --action '{\"points\": 1}'  # note"), ["--a", "4", "--action", "{\"points\": 1}"]);
    assert_eq!(shell_words("x'y z'w"), ["xy zw"]);
}
