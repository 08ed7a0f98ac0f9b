#!/usr/bin/env bash
# Login throughput of the account server on one store: scripts/login-bench.sh sled|postgres [LOGINS] [CLIENTS]
#
# Starts the release account-server (default argon2 cost) and a sync-server (login needs a live node) on free
# loopback ports in a temporary directory, with a throwaway PostgreSQL there for `postgres` (Debian's postgresql;
# as user nobody when run as root, like the tests), registers CLIENTS users, then times LOGINS logins (default 200)
# sent by CLIENTS concurrent curl loops (default 8). Prints logins/s. Build first:
#   cargo build --release -p account-server -p sync-server
set -euo pipefail
cd "$(dirname "$0")/.."
store=${1:?usage: scripts/login-bench.sh sled|postgres [LOGINS] [CLIENTS]}
logins=${2:-200}
clients=${3:-8}
bin=target/release
dir=$(mktemp -d /tmp/movan-login-bench.XXXXXX)
pids=()
as=()
cleanup() {
  if [ -n "${pgbin:-}" ]; then "${as[@]}" "$pgbin/pg_ctl" -D "$dir/pg/data" stop -m fast >/dev/null 2>&1 || true; fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(free_port); rpc=$(free_port); tcp=$(free_port); ws=$(free_port); udp=$(free_port); metrics=$(free_port)

extra=""
if [ "$store" = postgres ]; then
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  pgport=$(free_port)
  mkdir "$dir/pg"
  if [ "$(id -u)" -eq 0 ]; then chmod 711 "$dir"; chown nobody: "$dir/pg"; as=(runuser -u nobody --); fi
  "${as[@]}" "$pgbin/initdb" -D "$dir/pg/data" -U postgres --auth=trust -E UTF8 --locale=C >"$dir/initdb.log"
  # Durable commits (fsync on, synchronous_commit on): the settings a deployment runs with.
  "${as[@]}" "$pgbin/postgres" -D "$dir/pg/data" -p "$pgport" -k "$dir/pg" -c listen_addresses=127.0.0.1 \
    >"$dir/postgres.log" 2>&1 &
  pids+=($!)
  until "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pgport"; do sleep 0.2; done
  "$pgbin/createdb" -h 127.0.0.1 -p "$pgport" -U postgres movan
  extra="store = \"postgres\"
database_url = \"postgres://postgres@127.0.0.1:$pgport/movan\""
fi

cat >"$dir/config.toml" <<EOF
[token]
private_key_path = "$dir/jwt.pem"
public_key_path = "$dir/jwt.pub.pem"
[rpc]
secret_path = "$dir/rpc_secret"
[account]
http_addr = "127.0.0.1:$http"
rpc_addr = "127.0.0.1:$rpc"
db_path = "$dir/accounts.sled"
$extra
[sync]
listen_addr = "127.0.0.1:$tcp"
ws_addr = "127.0.0.1:$ws"
udp_addr = "127.0.0.1:$udp"
metrics_addr = "127.0.0.1:$metrics"
account_rpc_addr = "127.0.0.1:$rpc"
EOF

RUST_LOG=warn "$bin/account-server" --config "$dir/config.toml" >"$dir/account.out" 2>"$dir/account.err" &
pids+=($!)
until grep -q "rpc listening" "$dir/account.out" 2>/dev/null; do sleep 0.1; done
RUST_LOG=warn "$bin/sync-server" --config "$dir/config.toml" >"$dir/sync.out" 2>"$dir/sync.err" &
pids+=($!)
until curl -sf "http://127.0.0.1:$http/readyz" >/dev/null; do sleep 0.1; done

api="http://127.0.0.1:$http/v1"
for i in $(seq 1 "$clients"); do
  curl -sf -o /dev/null -H 'content-type: application/json' \
    -d "{\"username\":\"bench$i\",\"password\":\"correct horse battery\"}" "$api/register"
done

start=$(date +%s.%N)
seq 1 "$logins" | xargs -P "$clients" -I{} sh -c '
  i=$(( {} % '"$clients"' + 1 ))
  curl -sf -o /dev/null -H "content-type: application/json" \
    -d "{\"username\":\"bench$i\",\"password\":\"correct horse battery\"}" "'"$api"'/login" || echo FAILED
' >"$dir/failures"
end=$(date +%s.%N)
failed=$(grep -c FAILED "$dir/failures" || true)
python3 -c "import sys; s=$end-$start; print(f'$store: $logins logins, $clients clients, {s:.2f} s, {$logins/s:.1f} logins/s, $failed failed')"
