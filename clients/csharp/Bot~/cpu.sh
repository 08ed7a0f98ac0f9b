#!/usr/bin/env bash
# CPU per player-second of the C# bot (movan-bot-cs on Mono) against the Rust bot (movan-bot), same game settings,
# servers on this machine. Builds release binaries and an optimized C# bot, starts a fresh account server and sync
# server on free ports, then runs each bot --repeat times, alternating, and prints one line per run.
#
#   clients/csharp/Bot~/cpu.sh                                  # 200 players, rooms of 4, 20 actions/s, 60 s
#   clients/csharp/Bot~/cpu.sh --players 200 --duration 60 --repeat 3
#   clients/csharp/Bot~/cpu.sh --cs-loop-hz 60                  # the C# bot polls like Update() at 60 Hz
#   clients/csharp/Bot~/cpu.sh --transport udp                  # both bots over UDP (KCP) instead of TCP
#   clients/csharp/Bot~/cpu.sh --kinds cs --bin-dir target/debug # only the C# bot, servers from a build at hand
#
# The CPU is the bot process's user+system time (/proc/<pid>/stat) over the window in which every bot is in its
# game (from the first to the last progress line, every 0.5 s, on which all are playing), divided by
# players × window seconds. The whole run's CPU (logins, joins and JIT included) is printed too. The load average is
# printed before each run: the machine may be shared, so compare runs taken under a similar load.
set -euo pipefail
cd "$(dirname "$0")/../../.."

players=200 duration=60 rate=20 room_size=4 repeat=3 loop_hz=0 transport=tcp kinds="rust cs" bin_dir=
while [ $# -gt 0 ]; do
  case "$1" in
    --players) players=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --room-size) room_size=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --cs-loop-hz) loop_hz=$2; shift 2 ;;
    --transport) transport=$2; shift 2 ;;
    --kinds) kinds=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cpu.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

case "$transport" in tcp|udp) ;; *) echo "cpu.sh: --transport is tcp or udp" >&2; exit 2 ;; esac
if [ -n "$bin_dir" ]; then
  bin=$bin_dir
else
  cargo build --quiet --release -p account-server -p sync-server -p movan-client --bins
  bin=target/release
fi
out=target/csharp
mkdir -p "$out"
mcs -langversion:7.2 -optimize+ -nologo -target:library -r:System.Net.Http -out:"$out/Movan.Client.dll" clients/csharp/Runtime/*.cs
mcs -langversion:7.2 -optimize+ -nologo -r:"$out/Movan.Client.dll" -r:System.Net.Http -r:System.Core \
  -out:"$out/movan-bot-cs.exe" "clients/csharp/Bot~/"*.cs

source scripts/services.sh
services_init csharp-cpu
cat >"$dir/cpu.toml" <<TOML
[token]
private_key_path = "$dir/jwt.pem"
public_key_path = "$dir/jwt.pub.pem"
[account]
http_addr = "127.0.0.1:$http_port"
rpc_addr = "127.0.0.1:$rpc_port"
db_path = "$dir/accounts.sled"
demo_dir = ""
js_dir = ""
[sync]
listen_addr = "127.0.0.1:$sync_port"
ws_addr = ""
udp_addr = "$([ "$transport" = udp ] && echo 127.0.0.1:0)"
metrics_addr = ""
account_rpc_addr = "127.0.0.1:$rpc_port"
max_players = $room_size
min_players = $room_size
max_rooms = $(( players / room_size * 2 + 16 ))
max_connections = $(( players * 2 + 100 ))
max_connections_per_ip = 0
capacity = $(( players * 2 ))
[rpc]
secret_path = "$dir/rpc_secret"
TOML
services_start "$bin" "$dir/cpu.toml"

args=(--account "http://127.0.0.1:$http_port" --bots "$players" --room-size "$room_size" --duration-secs "$duration"
      --actions-per-sec "$rate" --linger-ticks 3 --join-timeout-secs 120 --progress-secs 0.5 --json --transport "$transport")
echo "cpu.sh: $players players, rooms of $room_size, $rate actions/s, ${duration} s, over $transport; $(nproc) cores; servers from $bin"
for run in $(seq 1 "$repeat"); do
  for kind in $kinds; do
    if [ "$kind" = rust ]; then cmd=("$bin/movan-bot" --prefix "cpu-rust" "${args[@]}"); else cmd=(mono "$out/movan-bot-cs.exe" --prefix "cpu-cs" --loop-hz "$loop_hz" "${args[@]}"); fi
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    python3 - "$kind" "$run" "$players" "$load" "${cmd[@]}" <<'PY'
import json, os, re, subprocess, sys, time
kind, run, players, load, cmd = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:]
tick = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
start = time.monotonic()
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
t0 = t1 = c0 = c1 = done = None
for line in p.stderr:
    m = re.search(r"progress: .*playing=(\d+)", line)
    if not m:
        continue
    playing = int(m.group(1))
    # The window runs from the first to the last progress line on which every bot is in its game.
    if playing == players and (t0 is None or t1 is not None and done is None):
        now, c = time.monotonic(), cpu(p.pid)
        if t0 is None:
            t0, c0 = now, c
        t1, c1 = now, c
    elif t0 is not None and playing < players:
        done = True
out = p.stdout.read()
_, status, usage = os.wait4(p.pid, 0)
wall = time.monotonic() - start
report = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
total = usage.ru_utime + usage.ru_stime
ok = os.waitstatus_to_exitcode(status) == 0
if t0 is None or t1 is None or t1 - t0 < 1:
    print(f"{kind} run {run}: no full playing window seen (exit {os.waitstatus_to_exitcode(status)})")
    sys.exit(0)
window = t1 - t0
per = (c1 - c0) / (players * window)
print(f"{kind:4} run {run}: load {load} | window {window:5.1f} s, CPU {c1 - c0:6.2f} s = {100 * (c1 - c0) / window:5.1f} % of a core"
      f" = {per * 1e6:6.0f} µs per player-second | whole run {total:6.2f} s CPU in {wall:5.1f} s"
      f" | frames {report.get('frames_received')}, missing {report.get('missing')}, errors {report.get('errors')}, {'PASS' if ok else 'FAIL'}")
PY
  done
done
