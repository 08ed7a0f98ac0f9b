#!/usr/bin/env bash
# Starts the Movan account server and sync server with one config file, waits until both accept connections,
# prints their addresses, and stops both cleanly on Ctrl-C (SIGINT/SIGTERM).
#
#   ./server.sh                     # release build, config/config.toml
#   ./server.sh --config my.toml    # another config file
#   ./server.sh --debug             # debug build (faster to compile, slower to run)
set -euo pipefail
cd "$(dirname "$0")"

config="config/config.toml"
profile="release"
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --debug) profile="debug"; shift ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "server.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
[ -f "$config" ] || { echo "server.sh: config file $config not found" >&2; exit 2; }

if [ "$profile" = release ]; then
  cargo build --release --quiet -p account-server -p sync-server
else
  cargo build --quiet -p account-server -p sync-server
fi
bin="target/$profile"

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

# The account server first: it creates the token key pair that the sync server reads.
"$bin/account-server" --config "$config" >"$run_dir/account.out" &
pids+=($!)
account_addr=$(wait_ready account-server "$run_dir/account.out" "${pids[0]}")

"$bin/sync-server" --config "$config" >"$run_dir/sync.out" &
pids+=($!)
sync_addr=$(wait_ready sync-server "$run_dir/sync.out" "${pids[1]}")

cat <<MSG

  Movan is running ($profile build, config $config)
    account server (HTTP/JSON): $account_addr
    sync server (TCP):          $sync_addr
  Press Ctrl-C to stop both.

MSG

# Exit as soon as either service stops; the EXIT trap stops the other.
wait -n "${pids[@]}" || true
echo "server.sh: a service stopped; shutting down the other" >&2
