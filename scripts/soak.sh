#!/usr/bin/env bash
# Soak test: runs movan-bot rounds against a fresh account server and sync server for a given time, printing
# players, frames/s and each server's RSS every few seconds, then a verdict on memory and on the bots' checks.
#
#   scripts/soak.sh                          # 10 minutes, 200 bots in rooms of 4, 20 actions/s each
#   scripts/soak.sh --minutes 2 --bots 40    # shorter, smaller
#
# Options: --minutes M (10), --bots N (200), --room-size R (4), --rate A actions/s per bot (20), --round-secs S (60:
# each round logs every bot in, plays one game of S seconds and leaves, so rooms, games and sessions churn),
# --sample-secs I (5), --debug (debug build). Exit status: 0 when every round passed its checks (no missing,
# duplicated or desynced frame or action, no error) and memory stayed flat; 1 otherwise.
#
# "Flat": after the first round (warm-up), each server's RSS may not grow by more than 20% + 8 MiB from the first
# sample after warm-up to the last sample.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=10 bots=200 room_size=4 rate=20 round_secs=60 sample_secs=5 profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=$2; shift 2 ;;
    --bots) bots=$2; shift 2 ;;
    --room-size) room_size=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --round-secs) round_secs=$2; shift 2 ;;
    --sample-secs) sample_secs=$2; shift 2 ;;
    --debug) profile=debug; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

flags=(--quiet -p account-server -p sync-server -p movan-client --bins)
[ "$profile" = release ] && flags+=(--release)
cargo build "${flags[@]}"
bin="target/$profile"

source scripts/services.sh
services_init soak
cat >"$dir/soak.toml" <<TOML
[token]
private_key_path = "$dir/jwt.pem"
public_key_path = "$dir/jwt.pub.pem"
[account]
http_addr = "127.0.0.1:$http_port"
rpc_addr = "127.0.0.1:$rpc_port"
db_path = "$dir/accounts.sled"
[sync]
listen_addr = "127.0.0.1:$sync_port"
ws_addr = ""
udp_addr = ""
metrics_addr = ""
account_rpc_addr = "127.0.0.1:$rpc_port"
max_connections_per_ip = 0
max_connections_per_prefix = 0
capacity = 100000
[rpc]
secret_path = "$dir/rpc_secret"
TOML

services_start "$bin" "$dir/soak.toml"

rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }
cpu_secs() { awk '{printf "%.1f", ($14 + $15) / '"$(getconf CLK_TCK)"'}' "/proc/$1/stat" 2>/dev/null || echo "?"; }

echo "soak: $minutes min, $bots bots in rooms of $room_size, $rate actions/s each, rounds of $round_secs s ($profile)"
echo "soak: account pid $account_pid, sync pid $sync_pid; samples every $sample_secs s"
printf '%8s %8s %8s %10s %12s %12s %10s %10s\n' elapsed round playing frames/s sync_rss_mib acct_rss_mib sync_cpu_s acct_cpu_s

end=$((SECONDS + minutes * 60))
round=0 failed=0 rounds_passed=0
samples="$dir/samples.txt"
: >"$samples"
while [ $SECONDS -lt $end ]; do
  round=$((round + 1))
  left=$((end - SECONDS))
  secs=$(( left < round_secs ? left : round_secs ))
  [ "$secs" -lt 5 ] && break
  RUST_LOG=warn "$bin/movan-bot" --account "http://127.0.0.1:$http_port" --bots "$bots" --room-size "$room_size" \
    --actions-per-sec "$rate" --duration-secs "$secs" --prefix soak --json --progress-secs "$sample_secs" \
    --join-timeout-secs 60 >"$dir/round.json" 2>"$dir/round.err" &
  bot_pid=$!
  while kill -0 "$bot_pid" 2>/dev/null; do
    sleep "$sample_secs"
    line=$(grep 'movan-bot progress' "$dir/round.err" | tail -1 || true)
    playing=$(sed -n 's/.*playing=\([0-9]*\).*/\1/p' <<<"$line")
    fps=$(sed -n 's/.*frames_per_s=\([0-9]*\).*/\1/p' <<<"$line")
    srss=$(rss_mib "$sync_pid") arss=$(rss_mib "$account_pid")
    printf '%8s %8s %8s %10s %12s %12s %10s %10s\n' "${SECONDS}s" "$round" "${playing:-0}" "${fps:-0}" \
      "$srss" "$arss" "$(cpu_secs "$sync_pid")" "$(cpu_secs "$account_pid")"
    echo "$round $srss $arss" >>"$samples"
  done
  if wait "$bot_pid"; then
    rounds_passed=$((rounds_passed + 1))
  else
    failed=1
    echo "soak: round $round FAILED:" >&2
    grep -v 'movan-bot progress' "$dir/round.err" | tail -20 >&2
  fi
  python3 - "$dir/round.json" "$round" <<'PY'
import json, sys
try:
    r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
except Exception as e:
    print(f"soak: round {sys.argv[2]}: no report ({e})"); sys.exit(0)
print(f"soak: round {sys.argv[2]}: {r['bots']} bots, {r['rooms']} rooms, frames {r['frames_received']}, "
      f"actions sent {r['actions_sent']} seen {r['actions_seen_own']}, missing {r['missing']}, "
      f"duplicated {r['duplicated']}, gaps {r['gaps']}, desyncs {r['desyncs']}, errors {r['errors']}")
PY
done

for pid in "$sync_pid" "$account_pid"; do kill -0 "$pid" 2>/dev/null || { echo "soak: a server died" >&2; failed=1; }; done
python3 - "$samples" <<'PY' || failed=1
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
rows = [(int(r), float(s), float(a)) for r, s, a in rows if s != "?" and a != "?"]
warm = [r for r in rows if r[0] > 1] or rows
ok = True
for i, name in ((1, "sync-server"), (2, "account-server")):
    if not warm:
        print(f"soak: {name}: no samples"); ok = False; continue
    first, last = warm[0][i], warm[-1][i]
    peak = max(r[i] for r in warm)
    limit = first * 1.2 + 8
    flat = last <= limit
    ok &= flat
    print(f"soak: {name} RSS after warm-up: first {first:.1f} MiB, peak {peak:.1f} MiB, last {last:.1f} MiB "
          f"(limit {limit:.1f}): {'flat' if flat else 'GROWING'}")
sys.exit(0 if ok else 1)
PY
echo "soak: $rounds_passed of $round rounds passed"
if [ "$failed" -ne 0 ]; then echo "soak: FAILED" >&2; exit 1; fi
echo "soak: OK"
