#!/usr/bin/env bash
# Issue 14 point 2: four encrypted players spam whole-history reloads (~7 MB each) at 48/s each and drain everything,
# while a witness game (movan-bench, 4 players, 20 Hz, encrypted) in another room measures action→frame latency.
#
#   scripts/reload_spam.sh        (the services run on free loopback ports)
#
# SYNC_BIN / ACCOUNT_BIN pick other binaries (an older build, for the figure before a change); LEGACY=1 leaves out
# config keys older builds do not know. The witness measures for 25 s inside the 40 s attack.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
services_probe reload-spam 'encryption = "required"'
cargo build --release --quiet -p movan-bench
python3 scripts/reload_spam_probe.py --account "http://127.0.0.1:$http_port" --sync "127.0.0.1:$sync_port" \
  --pid "$sync_pid" --seconds 40 --ready "$dir/ready" &
probe=$!
pids+=("$probe")
while [[ ! -e "$dir/ready" ]]; do
  kill -0 "$probe" 2>/dev/null || { echo "reload_spam.sh: the probe failed" >&2; exit 1; }
  sleep 0.2
done
target/release/movan-bench --account "http://127.0.0.1:$http_port" --sync "127.0.0.1:$sync_port" --players 4 \
  --room-size 4 --rate 20 --warmup-secs 3 --duration-secs 25 --prefix witness --markdown-out "$dir/witness.md" \
  > "$dir/bench.out" 2>&1 || true
wait "$probe"
echo "witness (movan-bench, 4 players in another room):"
cat "$dir/witness.md" 2>/dev/null || tail -20 "$dir/bench.out"
echo "sync server: $(grep -c 'send queue full' "$dir/sync.err" || true) connections dropped as slow readers"
