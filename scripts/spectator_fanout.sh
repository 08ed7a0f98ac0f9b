#!/usr/bin/env bash
# Issue 15: spectator fan-out (scripts/spectator_fanout.py): the sync server's CPU for one 4-player room at 20 Hz,
# encrypted, without and with 100 encrypted spectators, and a byte-for-byte check of every spectator's frames.
#
#   scripts/spectator_fanout.sh [BASEPORT] [SPECTATORS]   (default 3700 100: uses BASEPORT..BASEPORT+2 on 127.0.0.1)
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-3700}
spectators=${2:-100}
if [[ -z "${ACCOUNT_BIN:-}" || -z "${SYNC_BIN:-}" ]]; then
  cargo build --release --quiet -p account-server -p sync-server
fi
abin=${ACCOUNT_BIN:-target/release/account-server}
sbin=${SYNC_BIN:-target/release/sync-server}
dir=$(mktemp -d)
cleanup() {
  kill "${spid:-}" "${apid:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
cat > "$dir/c.toml" <<EOT
[account]
http_addr = "127.0.0.1:$port"
rpc_addr = "127.0.0.1:$((port + 1))"
db_path = "$dir/db"
demo_dir = ""
js_dir = ""
register_per_ip = 0
login_attempts_per_ip = 0
[token]
private_key_path = "$dir/k.pem"
public_key_path = "$dir/k.pub.pem"
[rpc]
secret_path = "$dir/secret"
[sync]
listen_addr = "127.0.0.1:$((port + 2))"
public_addr = "127.0.0.1:$((port + 2))"
ws_addr = ""
account_rpc_addr = "127.0.0.1:$((port + 1))"
encryption = "required"
udp_addr = ""
metrics_addr = ""
max_spectators = $spectators
EOT
"$abin" --config "$dir/c.toml" keygen > /dev/null
"$abin" --config "$dir/c.toml" > "$dir/account.out" 2> "$dir/account.err" &
apid=$!
sleep 1
"$sbin" --config "$dir/c.toml" > "$dir/sync.out" 2> "$dir/sync.err" &
spid=$!
sleep 2
python3 scripts/spectator_fanout.py --account "http://127.0.0.1:$port" --sync "127.0.0.1:$((port + 2))" \
  --pid "$spid" --spectators "$spectators"
