# syntax=docker/dockerfile:1
# Movan in a container: the account server, the sync server and the tools, built in one stage and run from a small
# Debian image as a non-root user. Build and run (docker compose: deploy/docker-compose.yml):
#
#   docker build -t movan .
#   docker run --rm -p 2026:2026 -p 2025:2025 -v movan-data:/data movan account-server --config /etc/movan/movan.toml
#
# The image holds no configuration or keys: mount a config file at /etc/movan/ and a volume at /data (keys, the
# sled database). See README "Running in containers".

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target caches survive between builds (BuildKit), so a rebuild compiles only what changed.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p account-server -p sync-server -p movan-client --bins \
 && mkdir -p /out \
 && cp target/release/account-server target/release/sync-server target/release/movan-admin \
       target/release/movan-replay target/release/movan-bot /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin movan \
 && mkdir -p /data/keys /etc/movan \
 && chown -R movan:movan /data
COPY --from=build /out/ /usr/local/bin/
COPY --from=build /src/web/demo /usr/share/movan/web/demo
COPY --from=build /src/clients/js /usr/share/movan/clients/js
USER movan
WORKDIR /data
# Account HTTP, account RPC, sync TCP, sync WebSocket, sync UDP, sync metrics.
EXPOSE 2026 2027 2025 2028 2029/udp 2030
CMD ["account-server", "--config", "/etc/movan/movan.toml"]
