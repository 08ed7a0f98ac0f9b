#!/usr/bin/env bash
# TCP against UDP (KCP) on a clean link, side by side in one run: the sync server's CPU per player-second at a
# capacity point, and its system calls per player per tick at a moderate one, counted with perf's syscall
# tracepoints (low overhead, no ptrace). Writes the table into docs/benchmarks.md between the `transport-bench`
# markers.
#
#   scripts/transport_bench.sh                                   # 2000 players for CPU, 500 for system calls
#   scripts/transport_bench.sh --players 1000 --syscall-players 200 --duration 10
#
# Options: --players N (2000), --syscall-players N (500), --duration SECS (20), --warmup SECS (5),
# --transports LIST (tcp,udp; ws works too), --out FILE (docs/benchmarks.md). Needs perf with tracepoint access
# (root, or kernel.perf_event_paranoid <= 1) for the system call counts; without it that column says so.
set -euo pipefail
cd "$(dirname "$0")/.."

players=2000 syscall_players=500 duration=20 warmup=5 transports=tcp,udp out=docs/benchmarks.md
while [ $# -gt 0 ]; do
  case "$1" in
    --players) players=$2; shift 2 ;;
    --syscall-players) syscall_players=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --transports) transports=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "transport_bench.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

cargo build --quiet --release -p account-server -p sync-server -p movan-bench
bin=target/release
data=target/transport-bench-data
mkdir -p "$data"
source scripts/services.sh
services_init transport-bench
max=$(( players > syscall_players ? players : syscall_players ))
cat >"$dir/bench.toml" <<TOML
[token]
private_key_path = "$data/jwt.pem"
public_key_path = "$data/jwt.pub.pem"
[account]
http_addr = "127.0.0.1:$http_port"
rpc_addr = "127.0.0.1:$rpc_port"
db_path = "$data/accounts.sled"
demo_dir = ""
js_dir = ""
[sync]
listen_addr = "127.0.0.1:$sync_port"
ws_addr = "127.0.0.1:0"
udp_addr = "127.0.0.1:0"
metrics_addr = ""
account_rpc_addr = "127.0.0.1:$rpc_port"
max_players = 4
min_players = 4
max_rooms = $(( max / 4 * 2 + 16 ))
max_connections = $(( max * 2 + 100 ))
max_connections_per_ip = 0
max_connections_per_prefix = 0
udp_max_sessions = $(( max * 2 + 100 ))
udp_max_pending = $(( max + 100 ))
capacity = $(( max * 2 ))
encryption = "required"
[rpc]
secret_path = "$data/rpc_secret"
TOML
[ -f "$data/jwt.pem" ] || "$bin/account-server" keygen --config "$dir/bench.toml" >/dev/null
services_start "$bin" "$dir/bench.toml"

# One movan-bench point: fresh accounts per transport and size, so no seat of an earlier point is in the way.
bench() { # transport players json
  "$bin/movan-bench" --account "http://127.0.0.1:$http_port" --transport "$1" --players "$2" --room-size 4 --rate 20 \
    --warmup-secs "$warmup" --duration-secs "$duration" --server-pid "$sync_pid" --prefix "tb-$1-$2" \
    --session-cache "$data/sessions-$1-$2.json" --json-out "$3" >"$3.log" 2>&1 \
    || { echo "transport_bench.sh: movan-bench failed over $1 at $2 players:" >&2; tail -n 5 "$3.log" >&2; }
}

events=raw_syscalls:sys_enter
for s in sendmmsg recvmmsg sendto recvfrom sendmsg recvmsg write writev read epoll_wait futex; do
  events+=",syscalls:sys_enter_$s"
done
perf_ok=1
perf stat -e "$events" -- true >/dev/null 2>&1 || perf_ok=0

rows=""
for t in ${transports//,/ }; do
  echo "transport_bench.sh: $t, $players players (CPU)" >&2
  bench "$t" "$players" "$dir/cpu-$t.json"
  echo "transport_bench.sh: $t, $syscall_players players (system calls)" >&2
  bench "$t" "$syscall_players" "$dir/sys-$t.json" &
  bench_pid=$!
  count_secs=$(( duration > 12 ? 10 : duration - 2 ))
  if [ "$perf_ok" = 1 ]; then
    sleep $(( warmup + 1 ))
    perf stat -x, -e "$events" -p "$sync_pid" -o "$dir/perf-$t.csv" -- sleep "$count_secs" 2>/dev/null || true
  fi
  wait "$bench_pid" || true
  row=$(python3 - "$t" "$dir/cpu-$t.json" "$dir/sys-$t.json" "$dir/perf-$t.csv" "$syscall_players" "$count_secs" <<'PY'
import json, sys
t, cpu_path, sys_path, perf_path, players, secs = sys.argv[1:]
players, secs = int(players), int(secs)
def point(path):
    try:
        return json.load(open(path))["points"][0]
    except Exception:
        return None
cpu, sysp = point(cpu_path), point(sys_path)
counts = {}
try:
    for line in open(perf_path):
        parts = line.strip().split(",")
        if len(parts) > 2 and parts[0].isdigit():
            counts[parts[2].split(":")[-1].replace("sys_enter_", "")] = int(parts[0])
except OSError:
    pass
ticks = players * secs * 20  # player-ticks in the counting window (20 Hz)
if counts.get("raw_syscalls:sys_enter", counts.get("sys_enter")):
    total = counts.get("sys_enter", 0)
    top = sorted(((v, k) for k, v in counts.items() if k != "sys_enter" and v), reverse=True)[:4]
    breakdown = ", ".join(f"{k} {v / ticks:.2f}" for v, k in top)
    sysc = f"{total / ticks:.2f} | {breakdown}"
else:
    sysc = "not counted (perf tracepoints unavailable) | "
if cpu:
    lat = cpu["latency_ms"]
    c = (f"{(cpu['server_cpu_ms_per_player_sec'] or 0):.3f} | {lat['p99']:.1f} | "
         f"{cpu['frames_lost']} / {cpu['actions_missing']} | {(cpu['bench_cpu_secs'] or 0):.1f}")
else:
    c = "failed | | | "
s99 = f"{sysp['latency_ms']['p99']:.1f}" if sysp else "failed"
print(f"| {t} | {c} | {s99} | {sysc} |")
PY
)
  rows+="$row"$'\n'
done

section="<!-- transport-bench -->
## TCP against UDP on a clean link: CPU and system calls

Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`scripts/transport_bench.sh --players $players --syscall-players $syscall_players --duration $duration\`:
rooms of 4, 20 actions/s per player, encrypted, release build, bots on the same machine. CPU per player-second and p99
at $players players; system calls of the sync server (all threads) per player per tick at $syscall_players players,
counted over 10 s with perf's syscall tracepoints.

| transport | server CPU ms per player-s ($players) | p99 ms ($players) | frames lost / actions missing ($players) | bench CPU s ($players) | p99 ms ($syscall_players) | syscalls per player-tick ($syscall_players) | the most frequent, per player-tick |
|---|---:|---:|---:|---:|---:|---:|---|
$rows<!-- /transport-bench -->"
python3 - "$out" "$section" <<'PY'
import os, re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read() if os.path.exists(path) else "# Movan benchmarks\n"
if "<!-- transport-bench -->" in text:
    text = re.sub(r"<!-- transport-bench -->.*?<!-- /transport-bench -->", lambda _: section, text, flags=re.S)
elif "<!-- /lossy-bench -->" in text:
    text = text.replace("<!-- /lossy-bench -->", "<!-- /lossy-bench -->\n\n" + section, 1)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
echo "transport_bench.sh: wrote the table into $out" >&2
printf '%s\n' "$section"
