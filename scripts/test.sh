#!/usr/bin/env bash
# The test command: builds the binaries, starts one shared PostgreSQL for all tests (each test
# creates its own database on it), runs the whole suite, and stops PostgreSQL again.
# Needs PostgreSQL server binaries (apt-get install postgresql), python3, Node.js with npm,
# Debian's chromium for the dashboard's browser test and poppler-utils (pdftotext) for the run
# report's PDF test (.ci/run installs them all).
set -euo pipefail
cd "$(dirname "$0")/.."

# The dashboard first: its unit tests (Vitest), then the build the hub binary embeds.
[ -d web/node_modules ] || (cd web && npm ci --no-audit --no-fund)
(cd web && npm test && npm run build)
cargo build --workspace --bins --locked
pgdir=$(mktemp -d /tmp/faultline-test-pg.XXXXXX)
chmod 755 "$pgdir"
FAULTLINE_PG_NOSYNC=1 "${CARGO_TARGET_DIR:-target}/debug/faultline" postgres --data-dir "$pgdir" --max-connections 400 > "$pgdir/out" 2> "$pgdir/err" &
pg=$!
cleanup() { kill -INT "$pg" 2>/dev/null || true; wait "$pg" 2>/dev/null || true; rm -rf "$pgdir"; }
trap cleanup EXIT
for _ in $(seq 1 300); do
  grep -q '^postgres ready ' "$pgdir/out" 2>/dev/null && break
  kill -0 "$pg" 2>/dev/null || { cat "$pgdir/err"; exit 1; }
  sleep 0.1
done
FAULTLINE_TEST_PG=$(sed -n 's/^postgres ready //p' "$pgdir/out")
[ -n "$FAULTLINE_TEST_PG" ] || { echo "postgres did not start"; cat "$pgdir/err"; exit 1; }
export FAULTLINE_TEST_PG
cargo test --workspace --locked "$@"
