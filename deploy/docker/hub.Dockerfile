# syntax=docker/dockerfile:1
# The hub image: `faultline` with the dashboard built in. Build from the repository root:
#
#   docker build -f deploy/docker/hub.Dockerfile -t faultline:dev .                 # distroless, no shell
#   docker build -f deploy/docker/hub.Dockerfile --target hub-pg -t faultline:dev-pg .
#
# `hub` (the default, last stage) is for production: an external PostgreSQL (DATABASE_URL),
# glibc + libgcc only (the hub links nothing else: TLS is rustls), as uid 10001.
# `hub-pg` adds Debian's PostgreSQL server for the embedded single-replica trial mode (`faultline
# serve` without DATABASE_URL runs initdb/postgres in --data-dir), and a passwd entry for uid
# 10001, which initdb needs. The Helm chart's database.embedded mode uses the `-pg` tag.
# Both run with a read-only root file system: the hub writes only /tmp and FAULTLINE_DATA_DIR.

# 1. The dashboard (web/dist): exactly what package-lock.json pins, then codegen, typecheck and
#    the Vite build. It reads only web/.
FROM node:20-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

# 2. The binary, embedding web/dist (server/build.rs). protox compiles the proto: no protoc.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
COPY --from=web /src/web/dist web/dist
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p faultline --bin faultline \
    && install -D -m 0755 target/release/faultline /out/faultline

# 3a. The trial variant: PostgreSQL's server binaries (found under /usr/lib/postgresql/*/bin).
FROM debian:bookworm-slim AS hub-pg
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/faultline --shell /usr/sbin/nologin faultline \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/faultline
COPY --from=build /out/faultline /usr/local/bin/faultline
USER 10001:10001
ENV FAULTLINE_LISTEN=0.0.0.0:8443 FAULTLINE_DATA_DIR=/var/lib/faultline
WORKDIR /var/lib/faultline
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/faultline"]
CMD ["serve"]

# 3b. Production (the default target): distroless, no shell, no package manager.
FROM gcr.io/distroless/cc-debian12 AS hub
COPY --from=build /out/faultline /usr/local/bin/faultline
USER 10001:10001
ENV FAULTLINE_LISTEN=0.0.0.0:8443 FAULTLINE_DATA_DIR=/var/lib/faultline
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/faultline"]
CMD ["serve"]
