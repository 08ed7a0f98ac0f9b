#!/usr/bin/env bash
# Issue 15: spectator fan-out (scripts/spectator_fanout.py): the sync server's CPU for one 4-player room at 20 Hz,
# encrypted, without and with 100 encrypted spectators, and a byte-for-byte check of every spectator's frames.
#
#   scripts/spectator_fanout.sh [SPECTATORS]   (default 100; the services run on free loopback ports)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
services_probe spectator-fanout 'encryption = "required"' "max_spectators = ${1:-100}"
python3 scripts/spectator_fanout.py --account "http://127.0.0.1:$http_port" --sync "127.0.0.1:$sync_port" \
  --pid "$sync_pid" --spectators "${1:-100}"
