#!/usr/bin/env bash
# demo-target.sh PORT PIDFILE [NAME]
#
# A tiny real HTTP service for the Faultline demo experiment: `python3 -m http.server PORT`
# on 127.0.0.1, serving a temporary directory, kept alive by this supervisor loop. The
# server's pid goes to PIDFILE (the experiment's process-kill fault reads it); when the server
# dies it is restarted after 1 s. SIGTERM/SIGINT stop the server and the supervisor cleanly.
# A SIGSTOPped server just hangs (bash's `wait` only returns when it terminates).
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
    echo "usage: $0 PORT PIDFILE [NAME]" >&2
    exit 2
fi
port=$1 pidfile=$2 name=${3:-demo-target}
command -v python3 >/dev/null || { echo "$name: python3 not found" >&2; exit 1; }

root=$(mktemp -d "${TMPDIR:-/tmp}/faultline-demo.XXXXXX")
printf '<!doctype html><title>%s</title><p>faultline demo target</p>\n' "$name" >"$root/index.html"
child=""

stop() {
    trap - TERM INT
    if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then
        kill -TERM "$child" 2>/dev/null || true
        kill -CONT "$child" 2>/dev/null || true # a stopped process only acts on SIGTERM once continued
        wait "$child" 2>/dev/null || true
    fi
    rm -rf "$root"
    # Only remove the pid file if it still names our server.
    if [[ -n $child && -f $pidfile && $(<"$pidfile") == "$child" ]]; then rm -f "$pidfile"; fi
    echo "$name: stopped"
    exit 0
}
trap stop TERM INT

echo "$name: serving $root on http://127.0.0.1:$port/ (supervisor pid $$)"
while true; do
    python3 -m http.server "$port" --bind 127.0.0.1 --directory "$root" &
    child=$!
    echo "$child" >"$pidfile.tmp" && mv -f "$pidfile.tmp" "$pidfile"
    echo "$name: server started (pid $child)"
    status=0
    wait "$child" || status=$?
    echo "$name: server exited (status $status); restarting in 1s"
    child=""
    sleep 1 &
    wait $! || true # interruptible by SIGTERM, unlike a foreground sleep
done
