#!/usr/bin/env bash
# Issue 14 point 5: a flood of connections that never authenticate against a sync server with max_connections =
# 1000 (MAX_CONNECTIONS), from 40 networks, reopened as fast as the server closes them
# (scripts/sync_flood_probe.py). Prints, every second, what the flood holds, what a player's fresh connection gets
# (served, refused, stalled), and the server's RSS.
#
#   scripts/sync_flood.sh [BASEPORT]       (default 3500: uses BASEPORT..BASEPORT+2 on 127.0.0.1)
#
# SYNC_BIN / ACCOUNT_BIN pick other binaries (an older build, for the figure before a change); LEGACY=1 leaves out
# the keys builds before UDP do not know (udp_addr, metrics_addr).
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-3500}
if [[ -z "${ACCOUNT_BIN:-}" || -z "${SYNC_BIN:-}" ]]; then
  cargo build --release --quiet -p account-server -p sync-server
fi
abin=${ACCOUNT_BIN:-target/release/account-server}
sbin=${SYNC_BIN:-target/release/sync-server}
dir=$(mktemp -d)
cleanup() {
  [[ -n "${KEEP_LOGS:-}" ]] && cat "$dir/sync.err" >&2
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
[token]
private_key_path = "$dir/k.pem"
public_key_path = "$dir/k.pub.pem"
[rpc]
secret_path = "$dir/secret"
[sync]
listen_addr = "127.0.0.1:$((port + 2))"
public_addr = "127.0.0.1:$((port + 2))"
ws_addr = ""
$([[ -n "${LEGACY:-}" ]] || printf 'udp_addr = ""\nmetrics_addr = ""')
account_rpc_addr = "127.0.0.1:$((port + 1))"
max_connections = ${MAX_CONNECTIONS:-1000}
EOT
ulimit -n "$(ulimit -Hn)"
"$abin" --config "$dir/c.toml" keygen > /dev/null
"$abin" --config "$dir/c.toml" > "$dir/account.out" 2> "$dir/account.err" &
apid=$!
sleep 1
"$sbin" --config "$dir/c.toml" > "$dir/sync.out" 2> "$dir/sync.err" &
spid=$!
sleep 2
kill -0 "$spid" 2>/dev/null || { cat "$dir/sync.err" >&2; exit 1; }
python3 scripts/sync_flood_probe.py --sync "127.0.0.1:$((port + 2))" --pid "$spid" --conns "${CONNS:-3500}" --networks 40 \
  --seconds "${SECONDS_:-15}"
if [[ -n "${TRIM:-}" ]]; then
  gdb -p "$spid" -batch -ex 'call (int)malloc_trim(0)' > /dev/null 2>&1
  echo "after malloc_trim: rss $(awk '/VmRSS/ {printf "%.1f MiB", $2 / 1024}' /proc/$spid/status)"
fi
