# syntax=docker/dockerfile:1
# The delegate image: `faultline-delegate` and the programs its host faults run (ip and tc from
# iproute2, nft from nftables). Build from the repository root:
#
#   docker build -f deploy/docker/delegate.Dockerfile -t faultline-delegate:dev .
#
# It runs as uid 10001 by default, which is all the Kubernetes faults need (they only call the
# API). Faults on a host or inside other pods (process, network, stress; the faultline-delegate
# chart's daemonset mode) need root and the capabilities deploy/systemd/faultline-delegate.service
# lists: the chart sets runAsUser 0 and privileged (or those capabilities) there.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p faultline-delegate --bin faultline-delegate \
    && install -D -m 0755 target/release/faultline-delegate /out/faultline-delegate

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends iproute2 nftables ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/faultline-delegate --shell /usr/sbin/nologin faultline \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/faultline-delegate
COPY --from=build /out/faultline-delegate /usr/local/bin/faultline-delegate
USER 10001:10001
ENV FAULTLINE_DELEGATE_STATE_DIR=/var/lib/faultline-delegate
ENTRYPOINT ["/usr/local/bin/faultline-delegate"]
