#!/usr/bin/env bash
# TCP against UDP (KCP) on a lossy network: as root, in a private network namespace whose loopback drops packets at
# random (nftables `numgen random`, both directions, the account server's HTTP and RPC ports spared), for each loss
# rate, runs movan-bench over TCP and over UDP (40 players in rooms of 4, 20 actions/s, encrypted) and writes the table
# into docs/benchmarks.md between the `lossy-bench` markers.
#
#   sudo scripts/lossy_bench.sh                           # 0,1,2,5,10 % loss, 40 players, 30 s per point
#   sudo scripts/lossy_bench.sh --loss 0,5 --duration 10  # a quick one
#
# Options: --loss LIST (percent), --players N (40), --duration SECS (30), --warmup SECS (5), --out FILE
# (docs/benchmarks.md). Needs nftables (apt-get install -y nftables) and root (ip netns).
set -euo pipefail
cd "$(dirname "$0")/.."

loss=0,1,2,5,10 players=40 duration=30 warmup=5 out=docs/benchmarks.md
while [ $# -gt 0 ]; do
  case "$1" in
    --loss) loss=$2; shift 2 ;;
    --players) players=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "lossy_bench.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "lossy_bench.sh: needs root (ip netns, nft)" >&2; exit 1; }
command -v nft >/dev/null || { echo "lossy_bench.sh: needs nftables (apt-get install -y nftables)" >&2; exit 1; }

cargo build --quiet --release -p account-server -p sync-server -p movan-bench
bin=target/release
ns="movan-lossy-$$"
dir=$(mktemp -d)
data=target/lossy-bench-data
mkdir -p "$data"
cleanup() {
  [ -n "${pids:-}" ] && kill $pids 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$ns"
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up

http_port=2026 rpc_port=2027 sync_port=2025 udp_port=2029
cat >"$dir/lossy.toml" <<TOML
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
ws_addr = ""
udp_addr = "127.0.0.1:$udp_port"
metrics_addr = ""
account_rpc_addr = "127.0.0.1:$rpc_port"
max_players = 4
min_players = 4
max_connections_per_ip = 0
max_connections_per_prefix = 0
encryption = "required"
[rpc]
secret_path = "$data/rpc_secret"
TOML
[ -f "$data/jwt.pem" ] || in_ns "$bin/account-server" keygen --config "$dir/lossy.toml" >/dev/null
# Not through in_ns: `ip netns exec` execs the server, so $! is the server's pid (movan-bench measures its CPU).
ip netns exec "$ns" env RUST_LOG=warn "$bin/account-server" --config "$dir/lossy.toml" >"$dir/account.out" 2>&1 &
pids="$!"
ip netns exec "$ns" env RUST_LOG=warn "$bin/sync-server" --config "$dir/lossy.toml" >"$dir/sync.out" 2>&1 &
sync_pid=$!
pids="$pids $sync_pid"
for _ in $(seq 100); do grep -q "sync-server listening on" "$dir/sync.out" && break; sleep 0.2; done
grep -q "sync-server listening on" "$dir/sync.out" || { cat "$dir/sync.out" >&2; exit 1; }
sleep 1

in_ns nft add table inet lossy
in_ns nft add chain inet lossy in '{ type filter hook input priority 0; }'
rows=""
for pct in ${loss//,/ }; do
  in_ns nft flush chain inet lossy in
  if [ "$pct" != 0 ]; then
    in_ns nft add rule inet lossy in iif lo th dport != "{ $http_port, $rpc_port }" th sport != "{ $http_port, $rpc_port }" \
      numgen random mod 1000 '<' $(( pct * 10 )) drop
  fi
  for transport in tcp udp; do
    json="$dir/$transport-$pct.json"
    # Fresh accounts for every point: the previous point's players keep their seats for sync.reconnect_grace_secs,
    # and the same accounts would get `already_in_room`.
    if ! in_ns "$bin/movan-bench" --account "http://127.0.0.1:$http_port" --transport "$transport" --players "$players" \
      --room-size 4 --rate 20 --warmup-secs "$warmup" --duration-secs "$duration" --server-pid "$sync_pid" \
      --prefix "lossy-$transport-$pct" --session-cache "$data/sessions-$transport-$pct.json" --json-out "$json" \
      >"$dir/bench-$transport-$pct.log" 2>&1; then
      echo "lossy_bench.sh: movan-bench failed at $pct % over $transport:" >&2
      tail -n 20 "$dir/bench-$transport-$pct.log" >&2
    fi
    echo "lossy_bench.sh: $pct % over $transport done" >&2
    row=$(python3 - "$json" "$pct" "$transport" <<'PY'
import json, sys
path, pct, transport = sys.argv[1:]
try:
    p = json.load(open(path))["points"][0]
except Exception as e:
    print(f"| {pct} % | {transport} | failed ({e}) | | | | |")
    raise SystemExit
lat, gap = p["latency_ms"], p["frame_gap_ms"]
print(f"| {pct} % | {transport} | {lat['p50']:.0f} / {lat['p99']:.0f} | {lat['max']:.0f} | "
      f"{gap['p99']:.0f} / {gap['max']:.0f} | {p['frames_lost']} | {p['actions_missing']} |")
PY
)
    rows+="$row"$'\n'
  done
done

table="| loss | transport | action→frame p50 / p99 (ms) | max (ms) | frame gap p99 / max (ms) | frames lost | actions missing |
|---:|---|---:|---:|---:|---:|---:|
$rows"
section="<!-- lossy-bench -->
## TCP against UDP on a lossy network

Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`scripts/lossy_bench.sh --loss $loss --players $players --duration $duration\`:
$players players in rooms of 4, 20 actions/s each, encrypted, release build, in a private network namespace whose
loopback drops that share of packets in both directions (nftables \`numgen random\`), no added delay.

$table
<!-- /lossy-bench -->"
python3 - "$out" "$section" <<'PY'
import re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read() if __import__("os").path.exists(path) else "# Movan benchmarks\n"
if "<!-- lossy-bench -->" in text:
    text = re.sub(r"<!-- lossy-bench -->.*?<!-- /lossy-bench -->", lambda _: section, text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
echo "lossy_bench.sh: wrote the table into $out"
printf '%s\n' "$table"
