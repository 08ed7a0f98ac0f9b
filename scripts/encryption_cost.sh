#!/usr/bin/env bash
# Measures what session encryption costs the sync server: the same bot load against `sync.encryption = "required"`
# and `"off"`, reporting the sync server's CPU time (from /proc) for each.
#
#   scripts/encryption_cost.sh [BOTS] [SECONDS] [ACTIONS_PER_SEC]     (defaults: 200 bots, 20 s, 20 actions/s)
set -euo pipefail
cd "$(dirname "$0")/.."
bots=${1:-200}; secs=${2:-20}; rate=${3:-20}
cargo build --release --quiet -p account-server -p sync-server -p movan-client --bins
bin=target/release
tck=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() {
  local mode=$1 dir
  dir=$(mktemp -d -t movan-enc.XXXXXX)
  cat >"$dir/movan.toml" <<TOML
[token]
private_key_path = "$dir/jwt.pem"
public_key_path = "$dir/jwt.pub.pem"
[account]
http_addr = "127.0.0.1:0"
rpc_addr = "127.0.0.1:0"
db_path = "$dir/db"
[rpc]
secret_path = "$dir/secret"
[sync]
listen_addr = "127.0.0.1:0"
udp_addr = ""
metrics_addr = ""
encryption = "$mode"
max_rooms = 10000
TOML
  RUST_LOG=warn "$bin/account-server" --config "$dir/movan.toml" >"$dir/account.out" 2>"$dir/account.err" &
  local apid=$!
  for _ in $(seq 100); do grep -q "rpc listening" "$dir/account.out" 2>/dev/null && break; sleep 0.1; done
  local http rpc
  http=$(sed -n 's/^account-server listening on //p' "$dir/account.out")
  rpc=$(sed -n 's/^account-server rpc listening on //p' "$dir/account.out")
  echo "account_rpc_addr = \"$rpc\"" >>"$dir/movan.toml"
  RUST_LOG=warn "$bin/sync-server" --config "$dir/movan.toml" >"$dir/sync.out" 2>"$dir/sync.err" &
  local spid=$!
  for _ in $(seq 100); do grep -q "listening" "$dir/sync.out" 2>/dev/null && break; sleep 0.1; done
  sleep 1
  local before after
  before=$(cpu_ticks "$spid")
  RUST_LOG=warn "$bin/movan-bot" --account "$http" --bots "$bots" --room-size 4 --duration-secs "$secs" \
    --actions-per-sec "$rate" --json >"$dir/bot.json" 2>"$dir/bot.err" || { cat "$dir/bot.err" >&2; }
  after=$(cpu_ticks "$spid")
  kill -TERM "$spid" "$apid"; wait "$spid" "$apid" 2>/dev/null || true
  local cpu
  cpu=$(echo "scale=2; ($after - $before) / $tck" | bc)
  echo "encryption=$mode bots=$bots secs=$secs rate=$rate sync_cpu_secs=$cpu bot=$(tail -1 "$dir/bot.json")"
  rm -rf "$dir"
}

run required
run off
