#!/usr/bin/env bash
# Issue 14 point 2: four encrypted players spam whole-history reloads (~7 MB each) at 48/s each and drain everything,
# while a witness game (movan-bench, 4 players, 20 Hz, encrypted) in another room measures action→frame latency.
#
#   scripts/reload_spam.sh [BASEPORT]        (default 3500: uses BASEPORT..BASEPORT+2 on 127.0.0.1)
#
# SYNC_BIN / ACCOUNT_BIN pick other binaries (an older build, for the figure before a change); LEGACY=1 leaves out
# config keys older builds do not know. The witness measures for 25 s inside the 40 s attack.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-3500}
cargo build --release --quiet -p movan-bench
if [[ -z "${ACCOUNT_BIN:-}" || -z "${SYNC_BIN:-}" ]]; then
  cargo build --release --quiet -p account-server -p sync-server
fi
abin=${ACCOUNT_BIN:-target/release/account-server}
sbin=${SYNC_BIN:-target/release/sync-server}
dir=$(mktemp -d)
cleanup() {
  kill "${ppid_:-}" "${spid:-}" "${apid:-}" 2>/dev/null || true
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
$([[ -n "${LEGACY:-}" ]] || printf 'udp_addr = ""\nmetrics_addr = ""')
EOT
"$abin" --config "$dir/c.toml" keygen > /dev/null
"$abin" --config "$dir/c.toml" > "$dir/account.out" 2> "$dir/account.err" &
apid=$!
sleep 1
"$sbin" --config "$dir/c.toml" > "$dir/sync.out" 2> "$dir/sync.err" &
spid=$!
sleep 2
python3 scripts/reload_spam_probe.py --account "http://127.0.0.1:$port" --sync "127.0.0.1:$((port + 2))" \
  --pid "$spid" --seconds 40 --ready "$dir/ready" &
ppid_=$!
while [[ ! -e "$dir/ready" ]]; do
  kill -0 "$ppid_" 2>/dev/null || { echo "reload_spam.sh: the probe failed" >&2; exit 1; }
  sleep 0.2
done
target/release/movan-bench --account "http://127.0.0.1:$port" --sync "127.0.0.1:$((port + 2))" --players 4 \
  --room-size 4 --rate 20 --warmup-secs 3 --duration-secs 25 --prefix witness --markdown-out "$dir/witness.md" \
  > "$dir/bench.out" 2>&1 || true
wait "$ppid_"
echo "witness (movan-bench, 4 players in another room):"
cat "$dir/witness.md" 2>/dev/null || tail -20 "$dir/bench.out"
echo "sync server: $(grep -c 'send queue full' "$dir/sync.err" || true) connections dropped as slow readers"
