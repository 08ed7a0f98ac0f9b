#!/usr/bin/env bash
# Issue 14 point 1: four players who request whole-history reloads at 90/s each and never read, against the release
# binaries (or ACCOUNT_BIN / SYNC_BIN), with the sync server's RSS printed as it goes (scripts/reload_flood_probe.py).
#
#   scripts/reload_flood.sh        (the services run on free loopback ports)
#
# The sync server runs with encryption off (the memory effect does not depend on sealing) and 5 ms ticks, so that
# the 8,000-frame history of a 6.6-minute game builds up in 40 s.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
services_probe reload-flood 'encryption = "off"' 'tick_interval_ms = 5'
python3 scripts/reload_flood_probe.py --account "http://127.0.0.1:$http_port" --sync "127.0.0.1:$sync_port" \
  --pid "$sync_pid" --frames 8000 --rate 90 --seconds 10
echo "sync server: $(grep -c 'send queue full' "$dir/sync.err" || true) connections dropped as slow readers"
