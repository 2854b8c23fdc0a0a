#!/usr/bin/env bash
# The dashboard's benchmark: bundle size, first-load time on loopback, and the live run view
# under 50 probe checks per second (web/e2e/bench.mjs). Starts its own hub (embedded Postgres),
# delegate and target on free ports in a temporary directory and stops them all at the end.
# Needs the binaries built (cargo build --workspace --bins) with the dashboard built before them.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CARGO_TARGET_DIR:-target}/debug
dir=$(mktemp -d /tmp/faultline-bench-web.XXXXXX)
chmod 755 "$dir"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(free_port)
FAULTLINE_ADMIN_PASSWORD=bench-admin-password FAULTLINE_RATE_LIMIT=0 "$bin/faultline" serve \
    --data-dir "$dir/hub" --listen "127.0.0.1:$port" > "$dir/hub.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do grep -q '^faultline listening on ' "$dir/hub.log" && break; sleep 0.2; done
url=$(sed -n 's/^faultline listening on //p' "$dir/hub.log")
[ -n "$url" ] || { cat "$dir/hub.log"; exit 1; }
export HUB_URL=$url ADMIN_EMAIL=admin@faultline.local ADMIN_PASSWORD=bench-admin-password
tok=$(curl -sk "$url/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$ADMIN_EMAIL\",\"password\":\"$ADMIN_PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
gql() { python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1], "variables": json.loads(sys.argv[2])}))' "$1" "${2:-{\}}" \
    | curl -sk "$url/graphql" -H "authorization: Bearer $tok" -H 'content-type: application/json' -d @-; }

# The probe's target: a real HTTP server. The fault pauses an idle process of its own, so the
# probe keeps its full rate for the whole run.
tport=$(free_port)
python3 -m http.server "$tport" --bind 127.0.0.1 --directory "$dir" > /dev/null 2>&1 &
pids+=($!)
sleep 600 & pids+=($!); echo $! > "$dir/idle.pid"
reg=$(gql 'mutation { createDelegateToken }' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["createDelegateToken"])')
mkdir -m 700 "$dir/delegate"
"$bin/faultline-delegate" --hub "$url" --hub-ca "$dir/hub/tls/ca.pem" --token "$reg" --name bench \
    --label env=bench --state-dir "$dir/delegate" > "$dir/delegate.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q 'connected to the hub' "$dir/delegate.log" && break; sleep 0.2; done
interval=$((1000 / ${BENCH_RATE:-50}))
yaml="apiVersion: faultline.dev/v1
kind: Experiment
metadata: {name: bench-live-view}
target: {delegate: {env: bench}}
hypothesis:
  probes:
    - name: web-ok
      http: {url: \"http://127.0.0.1:$tport/\", expect: {status: 200}}
      mode: continuous
      interval: ${interval}ms
      timeout: 1s
steps:
  - fault: process-pause
    target: {pidFile: $dir/idle.pid}
    duration: ${BENCH_SECONDS:-20}s
"
created=$(gql 'mutation($y: String!) { createTemplate(yaml: $y) { id } }' \
    "$(python3 -c 'import json,sys; print(json.dumps({"y": sys.argv[1]}))' "$yaml")")
BENCH_TEMPLATE_ID=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["data"]["createTemplate"]["id"])' "$created") \
    || { echo "createTemplate failed: $created"; exit 1; }
export BENCH_TEMPLATE_ID
(cd web && node e2e/bench.mjs)
