# Shared by scripts/soak.sh and scripts/bench.sh (sourced, not run): a throw-away account server and sync server on
# free loopback ports, stopped with SIGTERM when the script exits.
#
#   services_init NAME            makes $dir (removed at exit), sets $http_port $rpc_port $sync_port, arms the cleanup
#   ... write a config using those ...
#   services_start BIN_DIR CONFIG  starts both, waits until they listen; sets $account_pid $sync_pid

services_init() {
  dir=$(mktemp -d -t "movan-$1.XXXXXX")
  pids=()
  trap services_cleanup EXIT
  trap 'exit 130' INT TERM
  read -r http_port rpc_port sync_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
}

services_cleanup() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null || true
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}

# Waits for a line matching PATTERN in FILE while PID lives.
services_wait_line() { # file pattern pid
  for _ in $(seq 1 300); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { echo "$(basename "$0"): a service exited during start:" >&2; cat "$1" "${1%.out}.err" >&2; return 1; }
    sleep 0.1
  done
  echo "$(basename "$0"): timed out waiting for '$2'" >&2
  return 1
}

services_start() { # bin_dir config
  RUST_LOG=warn "$1/account-server" --config "$2" >"$dir/account.out" 2>"$dir/account.err" &
  pids+=($!); account_pid=$!
  services_wait_line "$dir/account.out" "^account-server rpc listening" "$account_pid"
  RUST_LOG=warn "$1/sync-server" --config "$2" >"$dir/sync.out" 2>"$dir/sync.err" &
  pids+=($!); sync_pid=$!
  services_wait_line "$dir/sync.out" "^sync-server listening" "$sync_pid"
  sleep 1 # let the sync server register with the account server
}
