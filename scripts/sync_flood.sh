#!/usr/bin/env bash
# Issue 14 point 5: a flood of connections that never authenticate against a sync server with max_connections =
# 1000 (MAX_CONNECTIONS), from 40 networks, reopened as fast as the server closes them
# (scripts/sync_flood_probe.py). Prints, every second, what the flood holds, what a player's fresh connection gets
# (served, refused, stalled), and the server's RSS.
#
#   scripts/sync_flood.sh        (the services run on free loopback ports)
#
# SYNC_BIN / ACCOUNT_BIN pick other binaries (an older build, for the figure before a change); LEGACY=1 leaves out
# the keys builds before UDP do not know (udp_addr, metrics_addr).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
services_probe sync-flood "max_connections = ${MAX_CONNECTIONS:-1000}"
ulimit -n "$(ulimit -Hn)"
python3 scripts/sync_flood_probe.py --sync "127.0.0.1:$sync_port" --pid "$sync_pid" --conns "${CONNS:-3500}" --networks 40 \
  --seconds "${SECONDS_:-15}"
if [[ -n "${TRIM:-}" ]]; then
  gdb -p "$sync_pid" -batch -ex 'call (int)malloc_trim(0)' > /dev/null 2>&1
  echo "after malloc_trim: rss $(awk '/VmRSS/ {printf "%.1f MiB", $2 / 1024}' /proc/$sync_pid/status)"
fi
[[ -z "${KEEP_LOGS:-}" ]] || cat "$dir/sync.err" >&2
