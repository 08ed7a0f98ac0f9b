//! `movan-admin`: an admin's view of a Movan deployment through the account server's admin API: the sync nodes and
//! their load, a node's rooms, ending a room, kicking, banning, draining.
//!
//! Exit status: 0 on success, 1 when the request failed (the server's code and message are printed), 2 on bad
//! arguments.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use movan_client::AccountClient;

/// Administer a Movan deployment (an admin account: `account.admins` or `account-server promote-admin`).
#[derive(Debug, Parser)]
#[command(name = "movan-admin", version)]
struct Args {
    /// Account server base URL.
    #[arg(long, env = "MOVAN_ACCOUNT", default_value = "http://127.0.0.1:2026")]
    account: String,
    /// Admin username.
    #[arg(long, env = "MOVAN_USER")]
    user: String,
    /// Its password.
    #[arg(long, env = "MOVAN_PASSWORD")]
    password: String,
    /// Print the server's JSON instead of tables.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Lists the live sync nodes with their load.
    Nodes,
    /// Lists a node's rooms with their members and frame counts.
    Rooms {
        /// The node id, as `nodes` lists it.
        node: String,
    },
    /// Ends a room: its game ends (reason `ended_by_admin`), or a waiting room closes.
    EndRoom {
        /// The node id.
        node: String,
        /// The room id.
        room: String,
        /// Told to the players.
        #[arg(long, default_value = "ended by an admin")]
        reason: String,
    },
    /// Kicks a player (by uid) off every node: out of its room, connection closed. Not a ban.
    Kick {
        /// The player's uid.
        uid: String,
        /// Told to the player.
        #[arg(long, default_value = "kicked by an admin")]
        reason: String,
    },
    /// Bans a player (by uid): no more logins, connections closed.
    Ban {
        /// The player's uid.
        uid: String,
    },
    /// Lifts a ban.
    Unban {
        /// The player's uid.
        uid: String,
    },
    /// Drains a node: no new logins go to it; its running games finish.
    Drain {
        /// The node id.
        node: String,
    },
    /// Undoes `drain`.
    Undrain {
        /// The node id.
        node: String,
    },
}

async fn run(args: Args) -> anyhow::Result<()> {
    let client = AccountClient::new(&args.account);
    let token = client.login(&args.user, &args.password).await.context("logging in")?.token;
    let t = token.as_str();
    match args.command {
        Command::Nodes => {
            let nodes = client.admin_nodes(t).await?;
            if args.json {
                return print_json(&nodes);
            }
            println!("{:<16} {:<22} {:>8} {:>6} {:>8}  draining", "node", "address", "players", "rooms", "capacity");
            for n in nodes {
                println!(
                    "{:<16} {:<22} {:>8} {:>6} {:>8}  {}",
                    n.node_id, n.public_addr, n.players, n.rooms, n.capacity, n.draining
                );
            }
        }
        Command::Rooms { node } => {
            let list = client.admin_rooms(t, &node).await?;
            if args.json {
                return print_json(&list);
            }
            println!("{:<24} {:<8} {:>8} {:>10}  members", "room", "state", "frames", "spectators");
            for r in &list.rooms {
                let members: Vec<String> = r
                    .members
                    .iter()
                    .map(|m| format!("{}{}", m.uid, if m.connected { "" } else { " (away)" }))
                    .collect();
                println!(
                    "{:<24} {:<8} {:>8} {:>10}  {}",
                    r.room_id,
                    r.state,
                    r.frame_count,
                    r.spectators,
                    members.join(", ")
                );
            }
            if list.truncated {
                println!("(more rooms not listed)");
            }
        }
        Command::EndRoom { node, room, reason } => {
            let ended = client.admin_end_room(t, &node, &room, &reason).await?;
            let what = if ended.game_ended { "game ended" } else { "waiting room closed" };
            println!("{room} on {node}: {what}");
        }
        Command::Kick { uid, reason } => {
            let sent = client.admin_kick(t, &uid, &reason).await?;
            println!("{} kicked (told {} nodes)", sent.uid, sent.nodes);
        }
        Command::Ban { uid } => {
            client.ban(t, &uid).await?;
            println!("{uid} banned");
        }
        Command::Unban { uid } => {
            client.unban(t, &uid).await?;
            println!("{uid} unbanned");
        }
        Command::Drain { node } => {
            let n = client.admin_drain(t, &node, true).await?;
            println!("{} draining: {}", n.node_id, n.draining);
        }
        Command::Undrain { node } => {
            let n = client.admin_drain(t, &node, false).await?;
            println!("{} draining: {}", n.node_id, n.draining);
        }
    }
    Ok(())
}

/// Prints one of the API's answers as JSON.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("movan-admin: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("movan-admin: {e:#}");
            ExitCode::from(1)
        }
    }
}
