#!/usr/bin/env bash
# Issue 15: the size of a replay per minute of play. Four movan-bot players in one room at 20 Hz, each sending one
# action per tick (--action, default a ~120-byte input like a real game's), for --secs seconds (default 60); then one
# of them downloads the replay (movan-replay download) and this prints its frames, its raw size (every sync_frame
# message) and its file size, per minute.
#
#   scripts/replay_size.sh [SECS] [ACTION_JSON]   (the services run on free loopback ports)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
action=${2:-'{"seq":{seq},"bot":{bot},"move":[0.7071,-0.7071],"aim":[0.25,0.75],"buttons":5,"ability":"dash","t":123456}'}
cargo build --release --quiet -p movan-client --bins
source scripts/services.sh
services_probe replay-size 'encryption = "required"'
account="http://127.0.0.1:$http_port"
target/release/movan-bot --account "$account" --bots 4 --room-size 4 --duration-secs "$secs" \
  --actions-per-sec 20 --action "$action" --prefix size >/dev/null
match_id=$(python3 - "$account" <<'PY'
import json, sys, time, urllib.request
base = sys.argv[1]
def call(path, body=None, token=None):
    req = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode())
    req.add_header("content-type", "application/json")
    if token: req.add_header("authorization", "Bearer " + token)
    return json.load(urllib.request.urlopen(req))
token = call("/v1/login", {"username": "size-0", "password": "movan-bot-pass"})["token"]
for _ in range(100):
    matches = call("/v1/me/matches", token=token)["matches"]
    if matches:
        print(matches[0]["match_id"]); break
    time.sleep(0.1)
PY
)
file="$dir/game.movanreplay"
for _ in $(seq 1 50); do
  target/release/movan-replay download --account "$account" --user size-0 --password movan-bot-pass \
    --out "$file" "$match_id" >/dev/null 2>&1 && break
  sleep 0.2
done
target/release/movan-replay verify "$file" >&2
target/release/movan-replay export "$file" --out "$dir/game.jsonl"
python3 - "$file" "$dir/game.jsonl" "$action" <<'PY'
import json, os, sys
path, jsonl, action = sys.argv[1:]
lines = open(jsonl, "rb").read().splitlines()
header = json.loads(lines[0])
frames = lines[1:]
raw = sum(len(f) for f in frames)
actions = sum(f.count(b'"uid"') for f in frames)
minutes = header["frame_count"] * header["frame_interval_ms"] / 60000
size = os.path.getsize(path)
print(f"4 players, 20 Hz, action {len(action.encode())} B as sent: {header['frame_count']} frames, {actions} actions "
      f"({minutes:.2f} min of play)")
print(f"raw (sync_frame messages): {raw:,} B = {raw / minutes / 1024:,.0f} KiB per minute")
print(f"replay file (zstd level 3): {size:,} B = {size / minutes / 1024:,.0f} KiB per minute "
      f"({raw / size:.1f}x smaller); 16 MiB (sync.replay_max_bytes) holds {16 * 1024 * 1024 / (size / minutes) / 60:,.1f} h")
PY
