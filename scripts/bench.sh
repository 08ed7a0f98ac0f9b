#!/usr/bin/env bash
# Capacity and latency sweep: builds release binaries, starts a fresh account server and sync server, runs
# movan-bench over a list of player counts (rooms of 4, 20 actions/s per player, one per tick at 20 Hz), then the same
# sweep against the bare relay movan-relay (the yardstick: no JSON, no auth, no crypto), and writes the top of
# docs/benchmarks.md (everything before its first "## " heading, which it keeps) with both tables, the plot
# (docs/benchmarks.svg), the machine and the command.
#
#   scripts/bench.sh                                   # the standard sweep: 500,1000,2000,3000,4000 players, 30 s each
#   scripts/bench.sh --players 200,400 --duration 10   # a quick one
#
# Options: --players LIST, --duration SECS (30), --warmup SECS (5), --rate N (20), --room-size N (4),
# --transports LIST (tcp,udp: Movan is measured over each, the relay over TCP),
# --encryption required|off (required), --out FILE (docs/benchmarks.md; the SVG and JSON go beside it),
# --debug (debug build, for trying the script only). Accounts and sessions are kept in target/bench-data between
# runs so that argon2 logins do not dominate; delete it to start over.
set -euo pipefail
cd "$(dirname "$0")/.."

players=500,1000,2000,3000,4000 duration=30 warmup=5 rate=20 room_size=4 encryption=required transports=tcp,udp
out=docs/benchmarks.md profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --players) players=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --room-size) room_size=$2; shift 2 ;;
    --encryption) encryption=$2; shift 2 ;;
    --transports) transports=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --debug) profile=debug; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

flags=(--quiet -p account-server -p sync-server -p movan-bench --bins)
[ "$profile" = release ] && flags+=(--release)
cargo build "${flags[@]}"
bin="target/$profile"

data=target/bench-data
mkdir -p "$data"
source scripts/services.sh
services_init bench
max_players=$(tr ',' '\n' <<<"$players" | sort -n | tail -1)
cat >"$dir/bench.toml" <<TOML
[token]
private_key_path = "$data/jwt.pem"
public_key_path = "$data/jwt.pub.pem"
[account]
http_addr = "127.0.0.1:$http_port"
rpc_addr = "127.0.0.1:$rpc_port"
db_path = "$data/accounts.sled"
[sync]
listen_addr = "127.0.0.1:$sync_port"
ws_addr = ""
udp_addr = "127.0.0.1:$sync_port"
udp_max_sessions = $(( max_players * 2 + 100 ))
udp_max_pending = $(( max_players * 2 + 100 ))
metrics_addr = ""
account_rpc_addr = "127.0.0.1:$rpc_port"
max_players = $room_size
min_players = $room_size
max_rooms = $(( max_players / room_size * 2 + 16 ))
max_connections = $(( max_players * 2 + 100 ))
max_connections_per_ip = 0
max_connections_per_prefix = 0
capacity = $(( max_players * 2 ))
encryption = "$encryption"
[rpc]
secret_path = "$data/rpc_secret"
TOML

services_start "$bin" "$dir/bench.toml"

base="${out%.md}"
cmd=(scripts/bench.sh --players "$players" --duration "$duration" --warmup "$warmup" --rate "$rate"
     --room-size "$room_size" --encryption "$encryption" --transports "$transports")
status=0
# The yardstick first, on its own: the bare relay with the same rooms, tick and load.
"$bin/movan-relay" --listen 127.0.0.1:0 --room-size "$room_size" --tick-ms 50 >"$dir/relay.out" 2>&1 &
relay_pid=$!
pids+=("$relay_pid")
services_wait_line "$dir/relay.out" "^movan-relay listening" "$relay_pid"
relay_addr=$(sed -n 's/^movan-relay listening on //p' "$dir/relay.out")
"$bin/movan-bench" --relay "$relay_addr" --players "$players" --room-size "$room_size" --rate "$rate" \
  --warmup-secs "$warmup" --duration-secs "$duration" --server-pid "$relay_pid" --json-out "$base-relay.json" \
  --markdown-out "$dir/relay.md" || status=$?
kill -TERM "$relay_pid" 2>/dev/null || true
tables=""
for transport in ${transports//,/ }; do
  # TCP keeps the historical file names (benchmarks.json, benchmarks.svg); other transports get a suffix.
  suffix=$([ "$transport" = tcp ] && echo "" || echo "-$transport")
  "$bin/movan-bench" --account "http://127.0.0.1:$http_port" --sync "127.0.0.1:$sync_port" --transport "$transport" \
    --players "$players" --room-size "$room_size" --rate "$rate" --warmup-secs "$warmup" --duration-secs "$duration" \
    --server-pid "$sync_pid" --session-cache "$data/sessions.json" --json-out "$base$suffix.json" \
    --markdown-out "$dir/table-$transport.md" --relay-json "$base-relay.json" --plot "$base$suffix.svg" || status=$?
  [ -s "$dir/table-$transport.md" ] || { echo "bench.sh: movan-bench over $transport produced no results (exit $status)" >&2; exit 1; }
  tables+="### Movan over ${transport^^}"$'\n\n'"$(cat "$dir/table-$transport.md")"$'\n\n'
done

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
rustc_version=$(rustc --version)
# The hand-written sections after the generated part stay.
kept=""
[ -f "$out" ] && kept=$(awk 'found || /^## / {found=1; print}' "$out")
cat >"$out" <<MD
# Movan benchmarks

Measured $(date -u '+%Y-%m-%d %H:%M UTC') with \`movan-bench\` ($profile build), sync server encryption
\`$encryption\`. Machine: $(nproc) cores ($cpu), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM,
$(uname -sr), $rustc_version. **The bots ran on the same machine as both servers**, sharing its cores.

Load: rooms of $room_size, $rate actions per second per player (one per tick at the default 20 Hz), sent open-loop
(on schedule, never waiting for a reply; the scheduled time is the send time, so a late send counts as latency),
$warmup s warm-up, then $duration s measured per point.

- **latency**: from an action's scheduled send to the arrival of the frame holding it, at its sender (p50/p90/p99/max).
- **frame gap**: time between consecutive frames at a client; 50 ms when the server ticks on time.
- **frames lost / dup**, **actions missing / dup**: must all be 0.
- **server CPU**: the sync server's user+system CPU over the window, as % of one core and per player-second.
- **RSS per room**: the sync server's peak RSS growth over its idle RSS, divided by rooms.
- **bench CPU**: the load generator's own CPU seconds over the window (it competes with the server for the cores).
- **the relay** (\`movan-relay\`, measured first in the same run with the same load and rooms): a bare lockstep TCP
  relay, one write per message, no JSON, no authentication, no encryption; the yardstick for what Movan's features
  cost.

$tables
The relay alone (TCP):

$(cat "$dir/relay.md" 2>/dev/null || echo "(the relay run failed)")

![latency and CPU against players]($(basename "$base").svg)

Raw results: [$(basename "$base").json]($(basename "$base").json), relay
[$(basename "$base")-relay.json]($(basename "$base")-relay.json).

Reproduce:

\`\`\`
${cmd[*]}
\`\`\`

$kept
MD
echo "bench.sh: wrote $out, $base.svg and $base.json"
exit "$status"
