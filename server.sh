#!/usr/bin/env bash
# Starts the Movan account server and sync server with one config file, waits until both accept connections,
# prints every endpoint (account HTTP, the browser demo, sync TCP and WebSocket), and stops both cleanly on Ctrl-C
# (SIGINT/SIGTERM).
#
#   ./server.sh                     # release build, config/config.toml
#   ./server.sh --config my.toml    # another config file (or MOVAN_CONFIG=my.toml)
#   ./server.sh --debug             # debug build (faster to compile, slower to run)
#
# The first run builds the release binaries, which takes a few minutes; later runs rebuild only what changed. The
# binaries are target/release/account-server and target/release/sync-server: run either alone with --config.
# The services log to this terminal (RUST_LOG=debug for more); runtime files go under data/ by default.
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  # The comment block above, without the "#!" line and without the code after it.
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}

config="${MOVAN_CONFIG:-config/config.toml}"
profile="release"
while [ $# -gt 0 ]; do
  case "$1" in
    --config)
      [ $# -ge 2 ] || { echo "server.sh: --config needs a file (try --help)" >&2; exit 2; }
      config="$2"; shift 2 ;;
    --config=*) config="${1#--config=}"; shift ;;
    --debug) profile="debug"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "server.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
[ -f "$config" ] || { echo "server.sh: config file $config not found" >&2; exit 2; }

# Prints the value of `key` in `[section]` of the config file, or `default` when the key is absent. Reads the simple
# `key = "value"` (or 'value', or a bare value) lines the Movan config uses; the binaries read the file properly and
# refuse what is wrong in it.
config_get() {
  local section=$1 key=$2 default=$3 value
  if value=$(awk -v want="$section" -v key="$key" '
      /^[ \t]*\[/ { s = $0; sub(/^[ \t]*\[[ \t]*/, "", s); sub(/[ \t]*\].*$/, "", s); in_section = (s == want); next }
      in_section {
        line = $0
        sub(/^[ \t]+/, "", line)
        if (index(line, key) != 1) next
        rest = substr(line, length(key) + 1)
        if (rest !~ /^[ \t]*=/) next
        sub(/^[ \t]*=[ \t]*/, "", rest)
        q = substr(rest, 1, 1)
        if (q == "\"" || q == "\047") { rest = substr(rest, 2); rest = substr(rest, 1, index(rest, q) - 1) }
        else { sub(/[ \t]*#.*$/, "", rest); sub(/[ \t]+$/, "", rest) }
        print rest; found = 1; exit
      }
      END { exit found ? 0 : 1 }' "$config"); then
    printf '%s\n' "$value"
  else
    printf '%s\n' "$default"
  fi
}

command -v cargo >/dev/null 2>&1 || {
  echo "server.sh: cargo not found; install Rust 1.88 or newer (https://rustup.rs)" >&2
  exit 1
}
bin="target/$profile"
cargo_args=(build -p account-server -p sync-server)
[ "$profile" = release ] && cargo_args+=(--release)
if [ -x "$bin/account-server" ] && [ -x "$bin/sync-server" ]; then
  echo "server.sh: building the $profile binaries if anything changed (cargo ${cargo_args[*]})" >&2
else
  echo "server.sh: building $profile binaries, the first time takes a few minutes (cargo ${cargo_args[*]})" >&2
fi
build_start=$SECONDS
cargo "${cargo_args[@]}"
if [ $((SECONDS - build_start)) -ge 10 ]; then
  echo "server.sh: built in $(((SECONDS - build_start) / 60)) min $(((SECONDS - build_start) % 60)) s" >&2
fi

run_dir=$(mktemp -d -t movan.XXXXXX)
pids=()
stop() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    echo "server.sh: stopping..." >&2
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  fi
  rm -rf "$run_dir"
}
trap stop EXIT
trap 'exit 130' INT TERM

# Waits for "<name> listening on <addr>" on the service's stdout and prints the address.
wait_ready() {
  local name=$1 out=$2 pid=$3
  for _ in $(seq 1 300); do
    if line=$(grep -m1 "^$name listening on " "$out" 2>/dev/null); then
      echo "${line#"$name listening on "}"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "server.sh: $name exited during start (see the log above)" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "server.sh: $name did not start within 30 s" >&2
  return 1
}

# What else a ready service printed: "<prefix><addr>" lines on its stdout (empty when there is none).
printed() {
  local prefix=$1 out=$2 line
  if line=$(grep -m1 "^$prefix" "$out" 2>/dev/null); then echo "${line#"$prefix"}"; fi
}

echo "server.sh: starting the account server and the sync server (config $config)" >&2
# The account server first: it creates the token key pair that the sync server reads.
"$bin/account-server" --config "$config" >"$run_dir/account.out" &
pids+=($!)
account_url=$(wait_ready account-server "$run_dir/account.out" "${pids[0]}")
account_rpc=$(printed "account-server rpc listening on " "$run_dir/account.out")

"$bin/sync-server" --config "$config" >"$run_dir/sync.out" &
pids+=($!)
sync_tcp=$(wait_ready sync-server "$run_dir/sync.out" "${pids[1]}")
# The sync server prints its WebSocket URL before its "listening" line.
sync_ws=$(printed "sync-server websocket listening on " "$run_dir/sync.out")
# UDP (`sync.udp_addr`) and the health endpoint (`sync.metrics_addr`), printed before the "listening" line when on.
sync_udp=$(printed "sync-server udp listening on " "$run_dir/sync.out")
sync_health=$(printed "sync-server health listening on " "$run_dir/sync.out")

# What the binaries do not print, from the config file, with the binaries' defaults.
demo_dir=$(config_get account demo_dir "web/demo")
if [ -z "$demo_dir" ]; then
  demo="not served (account.demo_dir is empty)"
elif [ ! -d "$demo_dir" ]; then
  demo="not served (account.demo_dir: no directory $demo_dir)"
else
  demo="$account_url/demo/"
fi
[ -n "$sync_ws" ] || sync_ws="off (sync.ws_addr is empty)"
[ -n "$sync_udp" ] || sync_udp="off (sync.udp_addr is empty)"
if [ -n "$sync_health" ]; then
  sync_health="$sync_health/healthz, $sync_health/readyz"
else
  sync_health="off (sync.metrics_addr is empty)"
fi

echo
echo "  Movan is running ($profile build, config $config)"
printf '    %-28s %s\n' \
  "account HTTP API:" "$account_url" \
  "browser demo:" "$demo" \
  "sync TCP (game clients):" "$sync_tcp" \
  "sync WebSocket (browsers):" "$sync_ws" \
  "sync UDP (lossy networks):" "$sync_udp" \
  "account health:" "$account_url/healthz, $account_url/readyz" \
  "sync health:" "$sync_health" \
  "account RPC (sync servers):" "${account_rpc:-?}"
echo "  Press Ctrl-C to stop both."
echo

# Exit as soon as either service stops; the EXIT trap stops the other.
wait -n "${pids[@]}" || true
echo "server.sh: a service stopped; shutting down the other" >&2
