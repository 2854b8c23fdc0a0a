#!/usr/bin/env bash
# Issue 20's targets, measured and printed by one command (BENCHMARKS.md, "Scale and endurance"):
# event ingest, a fleet of 10,000 delegates over 1,000,000 runs (one table of every target and
# whether it is met), then the soak through two replicas and 50 delegates.
#
#   scripts/bench-scale.sh [SOAK_MINUTES]     default 30; the soak needs root (a tmpfs mount)
#
# Uses FAULTLINE_TEST_PG if set, else each bench starts a private PostgreSQL. Everything binds
# to loopback and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
target=${CARGO_TARGET_DIR:-target}
cargo build --release -p faultline -p faultline-delegate -p faultline-e2e --bins
# 10,000 connections on each side of the loopback.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
"$target/release/faultline-bench-scale" all
"$target/release/faultline-bench-soak" --minutes "$minutes" --delegates 50 --every-secs 30 \
  --hold-secs 15 --sample-secs 10 --warmup-minutes 5
