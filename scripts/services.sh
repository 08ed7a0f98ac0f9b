# Shared by the benchmark and probe scripts (sourced, not run): a throw-away account server and sync server on free
# loopback ports, stopped with SIGTERM when the script exits.
#
#   services_init NAME            makes $dir (removed at exit), sets $http_port $rpc_port $sync_port, arms the cleanup
#   ... write a config using those (or services_probe_config) ...
#   services_start BIN_DIR CONFIG  starts both, waits until they listen; sets $account_pid $sync_pid
#   services_start_bins ACCOUNT_BIN SYNC_BIN CONFIG   the same with the two binaries named (e.g. an older build)
#   services_probe_config [SYNC_LINE...]   $dir/c.toml for the probes: no per-address login or registration limits,
#                                 no WebSocket listener; LEGACY=1 leaves out the keys builds before UDP lack
#   services_probe NAME [SYNC_LINE...]   all of it for a probe: builds the release binaries (unless ACCOUNT_BIN and
#                                 SYNC_BIN name others, e.g. an older build), writes that config, makes the keys,
#                                 starts both

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
  services_start_bins "$1/account-server" "$1/sync-server" "$2"
}

services_start_bins() { # account_bin sync_bin config
  RUST_LOG=warn "$1" --config "$3" >"$dir/account.out" 2>"$dir/account.err" &
  pids+=($!); account_pid=$!
  services_wait_line "$dir/account.out" "^account-server rpc listening" "$account_pid"
  RUST_LOG=warn "$2" --config "$3" >"$dir/sync.out" 2>"$dir/sync.err" &
  pids+=($!); sync_pid=$!
  services_wait_line "$dir/sync.out" "^sync-server listening" "$sync_pid"
  sleep 1 # let the sync server register with the account server
}

services_probe_config() { # extra [sync] lines...
  cat >"$dir/c.toml" <<EOT
[account]
http_addr = "127.0.0.1:$http_port"
rpc_addr = "127.0.0.1:$rpc_port"
db_path = "$dir/db"
demo_dir = ""
js_dir = ""
register_per_ip = 0
login_attempts_per_ip = 0
[token]
private_key_path = "$dir/k.pem"
public_key_path = "$dir/k.pub.pem"
[rpc]
secret_path = "$dir/secret"
[sync]
listen_addr = "127.0.0.1:$sync_port"
public_addr = "127.0.0.1:$sync_port"
ws_addr = ""
account_rpc_addr = "127.0.0.1:$rpc_port"
$([[ -n "${LEGACY:-}" ]] || printf 'udp_addr = ""\nmetrics_addr = ""')
EOT
  if [ $# -gt 0 ]; then printf '%s\n' "$@" >>"$dir/c.toml"; fi
}

services_probe() { # name [sync lines...]
  if [[ -z "${ACCOUNT_BIN:-}" || -z "${SYNC_BIN:-}" ]]; then
    cargo build --release --quiet -p account-server -p sync-server
  fi
  services_init "$1"
  shift
  services_probe_config "$@"
  local abin=${ACCOUNT_BIN:-target/release/account-server}
  "$abin" --config "$dir/c.toml" keygen >/dev/null
  services_start_bins "$abin" "${SYNC_BIN:-target/release/sync-server}" "$dir/c.toml"
}
