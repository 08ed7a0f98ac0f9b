//! `sync-server`: runs Movan rooms with the stock rules. See the README for the protocol and configuration.

fn main() -> std::process::ExitCode {
    sync_server::cli::main_with_rooms(sync_server::room::default_rooms())
}
