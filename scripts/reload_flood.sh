#!/usr/bin/env bash
# Issue 14 point 1: four players who request whole-history reloads at 90/s each and never read, against the release
# binaries (or ACCOUNT_BIN / SYNC_BIN), with the sync server's RSS printed as it goes (scripts/reload_flood_probe.py).
#
#   scripts/reload_flood.sh [BASEPORT]        (default 3400: uses BASEPORT..BASEPORT+2 on 127.0.0.1)
#
# The sync server runs with encryption off (the memory effect does not depend on sealing) and 5 ms ticks, so that
# the 8,000-frame history of a 6.6-minute game builds up in 40 s.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-3400}
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
udp_addr = ""
metrics_addr = ""
account_rpc_addr = "127.0.0.1:$((port + 1))"
encryption = "off"
tick_interval_ms = 5
EOT
"$abin" --config "$dir/c.toml" keygen > /dev/null
"$abin" --config "$dir/c.toml" > "$dir/account.out" 2> "$dir/account.err" &
apid=$!
sleep 1
"$sbin" --config "$dir/c.toml" > "$dir/sync.out" 2> "$dir/sync.err" &
spid=$!
sleep 2
python3 scripts/reload_flood_probe.py --account "http://127.0.0.1:$port" --sync "127.0.0.1:$((port + 2))" \
  --pid "$spid" --frames 8000 --rate 90 --seconds 10
echo "sync server: $(grep -c 'send queue full' "$dir/sync.err" || true) connections dropped as slow readers"
