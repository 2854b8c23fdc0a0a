#!/usr/bin/env bash
# Faultline quickstart: from a fresh Debian machine to a finished chaos experiment.
#
#   deploy/quickstart.sh [--once] [--release] [--port N]
#   deploy/quickstart.sh --stop
#
# Installs what is missing (as root: postgresql, python3, curl, jq, a C toolchain, nodejs and
# npm), builds the dashboard, the hub and the delegate, starts the hub (with its embedded
# Postgres), a demo web server under a restarting supervisor, and a delegate; then runs
# deploy/demo-experiment.yaml (kill the web server, expect it back within 15 s) and prints the
# verdict. The dashboard is at the hub's URL.
#
#   --once     stop everything again afterwards; exit 0 for a PASSED or FAILED verdict
#   --release  build and run the release profile
#   --port N   the hub's port (default 8443, or the next free one)
#   --stop     stop what an earlier quickstart left running
#
# State (data dir, logs, pid files, the administrator's login) lives in .quickstart/ of the repository, or in
# /var/lib/faultline-quickstart when running as root and the postgres user cannot reach the
# repository. Running it again reuses all of it. Exit status: 0 on success, 1 when a step
# failed, 2 when the run ended in ERROR or ABORTED.
# shellcheck disable=SC2016 # $vars in single quotes are GraphQL variables, not shell ones
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^# shellcheck/d;/^#/s/^# \{0,1\}//p}' "$0"; }

once=0 release=0 stop_only=0 port=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --once) once=1 ;;
        --release) release=1 ;;
        --stop) stop_only=1 ;;
        --port)
            [[ $# -ge 2 && $2 =~ ^[0-9]+$ && $2 -ge 1 && $2 -le 65535 ]] || { echo "error: --port needs a port number" >&2; exit 1; }
            port=$2
            shift
            ;;
        --port=*) set -- --port "${1#--port=}" "${@:2}"; continue ;;
        -h | --help) usage; exit 0 ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 1 ;;
    esac
    shift
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
FALLBACK_DIR=/var/lib/faultline-quickstart
DEMO_NAME=demo-web-survives-kill
DELEGATE_NAME=quickstart

say() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --- processes -------------------------------------------------------------------------------

# pid_alive PID PATTERN: PID is a live (non-zombie) process whose command line contains PATTERN.
pid_alive() {
    local pid=$1 pat=$2 state cmd
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/stat ]] || return 1
    state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ $state != Z && $state != X ]] || return 1
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $cmd == *"$pat"* ]]
}

# stop_pid NAME PIDFILE PATTERN [SIGNAL]: signal the process named in PIDFILE (if it is still
# the one we started), wait up to 20 s, then SIGKILL. Removes PIDFILE.
stop_pid() {
    local name=$1 file=$2 pat=$3 sig=${4:-TERM} pid i
    [[ -f $file ]] || return 0
    pid=$(head -n1 "$file" 2>/dev/null || true)
    if pid_alive "$pid" "$pat"; then
        kill "-$sig" "$pid" 2>/dev/null || true
        kill -CONT "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            pid_alive "$pid" "$pat" || break
            sleep 0.2
        done
        if pid_alive "$pid" "$pat"; then
            warn "$name (pid $pid) did not stop within 20 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
        else
            say "stopped $name (pid $pid)"
        fi
    fi
    rm -f "$file"
}

# stop_all DIR: stop everything a quickstart started with state in DIR (delegate first, so it
# reverts its faults while the hub is still there; the hub last, it stops its Postgres).
stop_all() {
    local dir=$1 pgpid
    stop_pid delegate "$dir/delegate.pid" "--state-dir $dir/delegate"
    stop_pid "demo target" "$dir/demo-target.pid" "demo-target.sh"
    stop_pid "demo web server" "$dir/demo.pid" "http.server"
    stop_pid hub "$dir/hub.pid" "serve --data-dir $dir "
    # A hub that was killed hard leaves its embedded Postgres running (it is in its own process
    # group on purpose); stop it with a fast shutdown.
    if [[ -f $dir/postgres/postmaster.pid ]]; then
        pgpid=$(head -n1 "$dir/postgres/postmaster.pid" 2>/dev/null || true)
        if pid_alive "$pgpid" "$dir/postgres"; then
            echo "$pgpid" >"$dir/postgres.pid"
            stop_pid "embedded postgres" "$dir/postgres.pid" "$dir/postgres" INT
        fi
    fi
}

# --- where state lives -------------------------------------------------------------------------

# postgres_can_reach DIR: the postgres user can traverse DIR and each of its parents (the same
# test the hub makes: owned by postgres, or executable for "others").
postgres_can_reach() {
    local d=$1 uid mode owner
    uid=$(id -u postgres 2>/dev/null) || return 1
    while true; do
        read -r mode owner < <(stat -c '%a %u' "$d") || return 1
        if [[ $owner != "$uid" ]] && (((8#$mode & 1) == 0)); then return 1; fi
        [[ $d == / ]] && return 0
        d=$(dirname "$d")
    done
}

choose_state_dir() {
    if [[ $EUID -eq 0 ]] && id -u postgres >/dev/null 2>&1 && ! postgres_can_reach "$REPO"; then
        echo "$FALLBACK_DIR"
    else
        echo "$REPO/.quickstart"
    fi
}

if [[ $stop_only -eq 1 ]]; then
    found=0
    for d in "$REPO/.quickstart" "$FALLBACK_DIR"; do
        if compgen -G "$d/*.pid" >/dev/null || [[ -f $d/postgres/postmaster.pid ]]; then
            found=1
            say "stopping the quickstart in $d"
            stop_all "$d"
        fi
    done
    [[ $found -eq 1 ]] || say "nothing to stop"
    exit 0
fi

# --- prerequisites -----------------------------------------------------------------------------

have_pg_server() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null; }

missing=()
have_pg_server || missing+=(postgresql)
command -v python3 >/dev/null || missing+=(python3)
command -v curl >/dev/null || missing+=(curl)
command -v jq >/dev/null || missing+=(jq)
command -v cc >/dev/null || missing+=(gcc libc6-dev) # rustc links with cc; ring compiles C
command -v npm >/dev/null || missing+=(nodejs npm)   # builds the dashboard the hub embeds
if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ $EUID -ne 0 ]]; then
        die "missing: ${missing[*]}. Install them as root: apt-get install -y ${missing[*]}"
    fi
    export DEBIAN_FRONTEND=noninteractive
    updated=0
    if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
        say "apt-get update"
        apt-get update -q
        updated=1
    fi
    say "installing ${missing[*]}"
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
        [[ $updated -eq 0 ]] || die "apt-get install ${missing[*]} failed"
        say "apt-get update"
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}" || die "apt-get install ${missing[*]} failed"
    fi
    have_pg_server || die "postgresql is installed but no initdb was found under /usr/lib/postgresql/*/bin"
fi
if ! command -v cargo >/dev/null; then
    if [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
        PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    else
        die "cargo not found: install the Rust toolchain with rustup, open a new shell (or source ~/.cargo/env) and run this again"
    fi
fi

# --- build -------------------------------------------------------------------------------------

profile=debug
build_args=(build -p faultline -p faultline-delegate)
if [[ $release -eq 1 ]]; then
    profile=release
    build_args+=(--release)
fi
# The dashboard first: the hub's build embeds web/dist.
if [[ ! -f $REPO/web/dist/index.html || -n $(find "$REPO/web/src" "$REPO/web/package-lock.json" -newer "$REPO/web/dist/index.html" -print -quit) ]]; then
    say "building the dashboard (npm ci, npm run build in web/)"
    (cd "$REPO/web" && { [[ -d node_modules ]] || npm ci --no-audit --no-fund; } && npm run build >/dev/null) \
        || die "the dashboard build failed (cd web && npm run build shows why)"
fi
say "cargo ${build_args[*]}"
(cd "$REPO" && cargo "${build_args[@]}") || die "the build failed"
target_dir=${CARGO_TARGET_DIR:-target}
[[ $target_dir == /* ]] || target_dir=$REPO/$target_dir
HUB_BIN=$target_dir/$profile/faultline
DELEGATE_BIN=$target_dir/$profile/faultline-delegate
[[ -x $HUB_BIN && -x $DELEGATE_BIN ]] || die "the build did not produce $HUB_BIN and $DELEGATE_BIN"

# --- state directory ---------------------------------------------------------------------------

DIR=$(choose_state_dir)
if [[ $DIR == "$FALLBACK_DIR" ]]; then
    say "the postgres user cannot reach $REPO; keeping state in $DIR"
fi
mkdir -p "$DIR"
chmod 755 "$DIR" # the postgres user must traverse it (the embedded cluster lives in DIR/postgres)
if compgen -G "$DIR/*.pid" >/dev/null || [[ -f $DIR/postgres/postmaster.pid ]]; then
    say "stopping what an earlier quickstart left running"
    stop_all "$DIR"
fi
umask 077 # logs and the login file below are for our eyes only

# Clean up on failure (and, with --once, always): whatever we started, we stop.
started=0 finished=0
# shellcheck disable=SC2317 # called through the trap
on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ $started -eq 1 && ($once -eq 1 || $finished -eq 0) ]]; then
        [[ $finished -eq 1 ]] || echo "quickstart did not finish; stopping what it started (logs stay in $DIR)" >&2
        say "stopping delegate, demo target and hub"
        stop_all "$DIR"
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# port_free PORT: nothing listens on 127.0.0.1:PORT (bind test with SO_REUSEADDR, as servers do).
port_free() {
    python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

# free_port PREFERRED: PREFERRED if free, else the next free one of the following 50, else any.
free_port() {
    local p
    for ((p = $1; p < $1 + 50 && p <= 65535; p++)); do
        if port_free "$p"; then
            echo "$p"
            return 0
        fi
    done
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# log_since FILE OFFSET: the part of FILE written after byte OFFSET.
log_since() { tail -c "+$(($2 + 1))" "$1" 2>/dev/null || true; }
log_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# wait_for_line NAME PID LOG OFFSET REGEX SECONDS: wait until LOG (past OFFSET) has a line
# matching REGEX, failing early (with the log's tail) if PID exits.
wait_for_line() {
    local name=$1 pid=$2 log=$3 off=$4 re=$5 secs=$6 i
    for ((i = 0; i < secs * 5; i++)); do
        if log_since "$log" "$off" | grep -Eq "$re"; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "--- last lines of $log ---" >&2
            log_since "$log" "$off" | tail -n 20 >&2
            die "$name exited while starting (see $log)"
        fi
        sleep 0.2
    done
    echo "--- last lines of $log ---" >&2
    log_since "$log" "$off" | tail -n 20 >&2
    die "$name did not report /$re/ within ${secs}s (see $log)"
}

# --- hub ---------------------------------------------------------------------------------------

if [[ -z $port ]]; then
    port=$(free_port 8443)
    [[ $port == 8443 ]] || say "port 8443 is busy; the hub uses $port"
elif ! port_free "$port"; then
    die "port $port is busy; choose another with --port"
fi

HUB_LOG=$DIR/hub.log
off=$(log_size "$HUB_LOG")
first_start=0
[[ -f $DIR/postgres/PG_VERSION ]] || first_start=1
if [[ $first_start -eq 1 ]]; then
    say "starting the hub on 127.0.0.1:$port (first start: initialising Postgres and TLS in $DIR)"
else
    say "starting the hub on 127.0.0.1:$port (data dir $DIR)"
fi
started=1
NO_COLOR=1 setsid "$HUB_BIN" serve --data-dir "$DIR" --listen "127.0.0.1:$port" >>"$HUB_LOG" 2>&1 </dev/null &
hub_pid=$!
echo "$hub_pid" >"$DIR/hub.pid"
wait_for_line hub "$hub_pid" "$HUB_LOG" "$off" '^faultline listening on ' 60

HUB_URL=$(log_since "$HUB_LOG" "$off" | sed -n 's/^faultline listening on //p' | tail -n1)
CA=$(log_since "$HUB_LOG" "$off" | sed -n 's/^faultline ca //p' | tail -n1)
[[ -n $CA && -f $CA ]] || die "the hub did not print the path of its CA certificate (see $HUB_LOG)"
LOGIN_FILE=$DIR/admin-login
if [[ ! -s $LOGIN_FILE ]]; then
    # Printed only on the very first start of a data dir. Look through the whole log, in case an
    # earlier start printed it but did not get to save it.
    email=$(sed -n 's/^admin user: //p' "$HUB_LOG" | tail -n1)
    password=$(sed -n 's/^admin password: //p' "$HUB_LOG" | tail -n1)
    [[ -n $email && -n $password ]] || die "the hub prints its administrator's password only on its very first start, and $LOGIN_FILE is missing. To start over, delete the data directory: rm -rf $DIR"
    printf '%s\n%s\n' "$email" "$password" >"$LOGIN_FILE.tmp"
    chmod 600 "$LOGIN_FILE.tmp"
    mv -f "$LOGIN_FILE.tmp" "$LOGIN_FILE"
    say "saved the administrator's login to $LOGIN_FILE"
fi
ADMIN_EMAIL=$(sed -n 1p "$LOGIN_FILE")
ADMIN_PASSWORD=$(sed -n 2p "$LOGIN_FILE")

for ((i = 0; ; i++)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$CA" "$HUB_URL/readyz" || true)
    [[ $code == 200 ]] && break
    kill -0 "$hub_pid" 2>/dev/null || die "the hub exited (see $HUB_LOG)"
    ((i < 120)) || die "$HUB_URL/readyz did not answer 200 within 60 s (last answer: $code; see $HUB_LOG)"
    sleep 0.5
done
say "hub ready at $HUB_URL"
# Sign in as the administrator: the session token authenticates every call below.
login=$(jq -cn --arg e "$ADMIN_EMAIL" --arg p "$ADMIN_PASSWORD" '{email: $e, password: $p}' |
    curl -sS --max-time 30 --cacert "$CA" -H 'Content-Type: application/json' --data @- "$HUB_URL/auth/login") ||
    die "could not reach $HUB_URL/auth/login"
TOKEN=$(jq -r '.token // empty' <<<"$login")
[[ -n $TOKEN ]] || die "signing in as $ADMIN_EMAIL failed: $(jq -r '.error // .' <<<"$login")"

# gql_raw QUERY [VARIABLES]: the hub's JSON answer (errors included).
gql_raw() {
    local body
    body=$(jq -cn --arg q "$1" --argjson v "${2:-null}" '{query: $q, variables: ($v // {})}')
    curl -sS --max-time 30 --cacert "$CA" -H 'Content-Type: application/json' \
        -H @<(printf 'Authorization: Bearer %s\n' "$TOKEN") \
        --data-binary @- "$HUB_URL/graphql" <<<"$body"
}

# gql QUERY [VARIABLES]: the answer's `data`; on any error prints its message and exits 1.
gql() {
    local resp
    resp=$(gql_raw "$@") || die "GraphQL request to $HUB_URL/graphql failed"
    check_gql "$resp" "$1"
    jq -c '.data' <<<"$resp"
}

# check_gql ANSWER QUERY: exits 1 with the errors' messages (and codes) if ANSWER has any.
check_gql() {
    local field
    field=$(sed -E 's/^[^{]*\{ *([A-Za-z]+).*/\1/' <<<"$2")
    jq -e . >/dev/null 2>&1 <<<"$1" || die "$field: the hub answered something that is not JSON: $1"
    if jq -e '(.errors // []) | length > 0' >/dev/null <<<"$1"; then
        die "$field: $(jq -r '.errors | map(.message + (if .extensions.code then " (" + .extensions.code + ")" else "" end)) | join("; ")' <<<"$1")"
    fi
}

# --- demo target -------------------------------------------------------------------------------

demo_port=$(free_port 18080)
[[ $demo_port == 18080 ]] || say "port 18080 is busy; the demo target uses $demo_port"
DEMO_PIDFILE=$DIR/demo.pid
rm -f "$DEMO_PIDFILE"
say "starting the demo target on http://127.0.0.1:$demo_port/"
setsid bash "$REPO/deploy/demo-target.sh" "$demo_port" "$DEMO_PIDFILE" >>"$DIR/demo.log" 2>&1 </dev/null &
demo_sup=$!
echo "$demo_sup" >"$DIR/demo-target.pid"
for ((i = 0; ; i++)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$demo_port/" || true)
    [[ $code == 200 && -s $DEMO_PIDFILE ]] && break
    kill -0 "$demo_sup" 2>/dev/null || die "the demo target exited (see $DIR/demo.log)"
    ((i < 60)) || die "the demo target did not answer 200 within 15 s (see $DIR/demo.log)"
    sleep 0.25
done

# --- delegate ----------------------------------------------------------------------------------

DELEGATE_LOG=$DIR/delegate.log
off=$(log_size "$DELEGATE_LOG")
mkdir -p "$DIR/delegate"
chmod 700 "$DIR/delegate"
# A delegate registers once: its state directory then holds its credential, and a rerun starts it
# with that, asking for no new registration token (one would stay unused until it expires).
token_args=()
token_file=$DIR/delegate/registration-token
if [[ -s $DIR/delegate/credential.json ]]; then
    say "starting the delegate \"$DELEGATE_NAME\" (registered before; state in $DIR/delegate)"
else
    reg_token=$(gql 'mutation { createDelegateToken }' | jq -r '.createDelegateToken')
    [[ -n $reg_token && $reg_token != null ]] || die "createDelegateToken returned no token"
    say "starting the delegate \"$DELEGATE_NAME\" (state in $DIR/delegate)"
    # The token goes in a 0600 file, not on the command line, where `ps` would show it to every
    # local user; the delegate keeps its own credential once registered, so the file goes after.
    (umask 077 && printf '%s\n' "$reg_token" >"$token_file")
    token_args=(--token-file "$token_file")
fi
NO_COLOR=1 setsid "$DELEGATE_BIN" --hub "$HUB_URL" --hub-ca "$CA" "${token_args[@]}" \
    --name "$DELEGATE_NAME" --label env=demo --state-dir "$DIR/delegate" \
    >>"$DELEGATE_LOG" 2>&1 </dev/null &
delegate_pid=$!
echo "$delegate_pid" >"$DIR/delegate.pid"
wait_for_line delegate "$delegate_pid" "$DELEGATE_LOG" "$off" 'faultline-delegate connected delegate_id=' 60
rm -f "$token_file"
delegate_id=$(log_since "$DELEGATE_LOG" "$off" | sed -n 's/.*faultline-delegate connected delegate_id=\([^ ]*\).*/\1/p' | tail -n1)
say "delegate connected (id $delegate_id)"

# --- template ----------------------------------------------------------------------------------

yaml=$(<"$REPO/deploy/demo-experiment.yaml")
yaml=${yaml//'127.0.0.1:18080'/"127.0.0.1:$demo_port"}
yaml=${yaml//'/abs/path/to/demo.pid'/"$(jq -n --arg p "$DEMO_PIDFILE" '$p')"}
create='mutation($yaml: String!) { createTemplate(yaml: $yaml) { id version } }'
resp=$(gql_raw "$create" "$(jq -cn --arg y "$yaml" '{yaml: $y}')") || die "GraphQL request to $HUB_URL/graphql failed"
if [[ $(jq -r '.errors[0].extensions.code // empty' <<<"$resp" 2>/dev/null) == CONFLICT ]]; then
    # It exists from an earlier run: add a version, unless the latest one is this very YAML.
    existing=$(gql 'query { templates(project: "default") { id name version yaml } }' |
        jq -c --arg n "$DEMO_NAME" '[.templates[] | select(.name == $n)][0] // empty')
    [[ -n $existing ]] || die "the hub says template $DEMO_NAME exists, but it is not in the template list"
    template_id=$(jq -r '.id' <<<"$existing")
    if [[ $(jq -r '.yaml' <<<"$existing") == "$yaml" ]]; then
        say "template $DEMO_NAME is up to date (version $(jq -r '.version' <<<"$existing"))"
    else
        data=$(gql 'mutation($id: ID!, $yaml: String!) { updateTemplate(id: $id, yaml: $yaml) { id version } }' \
            "$(jq -cn --arg id "$template_id" --arg y "$yaml" '{id: $id, yaml: $y}')")
        say "updated template $DEMO_NAME to version $(jq -r '.updateTemplate.version' <<<"$data")"
    fi
else
    check_gql "$resp" "$create"
    template_id=$(jq -r '.data.createTemplate.id' <<<"$resp")
    say "created template $DEMO_NAME"
fi

# --- dry run: resolve the targets, apply nothing ----------------------------------------------

data=$(gql 'mutation($t: ID!) { startRun(templateId: $t, delegate: "'"$DELEGATE_NAME"'", dryRun: true) { id } }' \
    "$(jq -cn --arg t "$template_id" '{t: $t}')")
dry_id=$(jq -r '.startRun.id' <<<"$data")
for ((i = 0; ; i++)); do
    dry=$(gql 'query($id: ID!) { run(id: $id) { status reason events { kind payload } } }' \
        "$(jq -cn --arg id "$dry_id" '{id: $id}')")
    case $(jq -r '.run.status' <<<"$dry") in PASSED | FAILED | ABORTED | ERROR) break ;; esac
    ((i < 30)) || die "dry run $dry_id did not finish within 30 s"
    sleep 1
done
# The delegate's reason already says "dry run: …"; print it once.
dry_reason=$(jq -r '.run.reason // "no reason given"' <<<"$dry")
[[ $dry_reason == "dry run:"* ]] || dry_reason="dry run: $dry_reason"
say "$dry_reason"
jq -r '.run.events[] | select(.kind == "fault.planned") | "  would apply \(.payload.path) \(.payload.fault): \(.payload.detail)"' <<<"$dry"
[[ $(jq -r '.run.status' <<<"$dry") == PASSED ]] || die "the dry run found a fault that cannot be applied"

# --- run ---------------------------------------------------------------------------------------

data=$(gql 'mutation($t: ID!) { startRun(templateId: $t, delegate: "'"$DELEGATE_NAME"'") { id status } }' \
    "$(jq -cn --arg t "$template_id" '{t: $t}')")
run_id=$(jq -r '.startRun.id' <<<"$data")
say "run $run_id started: pause, then kill the demo web server; expect it back within 15 s"
last="" status="" run=""
for ((i = 0; ; i++)); do
    run=$(gql 'query($id: ID!) { run(id: $id) { status resilienceScore reason recoveryMs recoveryFrom { summary } probeTally { passed failed total } latency { probe summary } } }' \
        "$(jq -cn --arg id "$run_id" '{id: $id}')")
    status=$(jq -r '.run.status' <<<"$run")
    [[ $status == "$last" ]] || say "run status: $status"
    last=$status
    case $status in PASSED | FAILED | ABORTED | ERROR) break ;; esac
    if ((i >= 120)); then
        gql_raw 'mutation($id: ID!) { abortRun(id: $id, reason: "quickstart gave up waiting") { id } }' \
            "$(jq -cn --arg id "$run_id" '{id: $id}')" >/dev/null || true
        die "run $run_id did not finish within 120 s (status $status); asked the hub to abort it"
    fi
    sleep 1
done

# --- a demo schedule, paused: resume it on the Schedules page to run the demo every night -----

sched='mutation($t: ID!, $d: String!) { createSchedule(templateId: $t, name: "nightly demo", cron: "0 3 * * *", timezone: "UTC", delegate: $d, concurrency: FORBID, enabled: false) { id nextFires(n: 1) } }'
resp=$(gql_raw "$sched" "$(jq -cn --arg t "$template_id" --arg d "$DELEGATE_NAME" '{t: $t, d: $d}')") ||
    die "GraphQL request to $HUB_URL/graphql failed"
if jq -e '.errors[0].message | test("already has a schedule")' <<<"$resp" >/dev/null 2>&1; then
    say "demo schedule \"nightly demo\" exists (paused or as you left it)"
else
    check_gql "$resp" "$sched"
    say "created schedule \"nightly demo\" (03:00 UTC daily, paused; next fire once resumed: $(jq -r '.data.createSchedule.nextFires[0]' <<<"$resp"))"
fi

echo
echo "verdict: $status"
jq -r '.run.probeTally | "probes: \(.passed) passed, \(.failed) failed, \(.total) total"' <<<"$run"
jq -r '.run.resilienceScore | "resilience score: " + (if . == null then "n/a" else ((. * 10 | round) / 10 | tostring) end)' <<<"$run"
jq -r '.run | "recovery: " + (if .recoveryMs == null then "n/a" else "\(.recoveryMs) ms" + (if .recoveryFrom == null then "" else " " + .recoveryFrom.summary end) end)' <<<"$run"
jq -r '.run.latency[]? | "latency (\(.probe)): \(.summary)"' <<<"$run"
jq -r '"reason: " + (.run.reason // "-")' <<<"$run"
# The run's report, kept beside the logs (the hub serves it while it runs).
REPORT_FILE="$DIR/demo-report.html"
if curl -sS --fail --max-time 30 --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
    -o "$REPORT_FILE" "$HUB_URL/runs/$run_id/report"; then
    report_saved=" (saved: $REPORT_FILE)"
else
    report_saved=""
fi
echo
echo "report:      $HUB_URL/runs/$run_id/report$report_saved; PDF: ?format=pdf"
echo "dashboard:   $HUB_URL  (sign in as below; GraphiQL: $HUB_URL/graphql)"
echo "CA:          $CA"
echo "admin login: $ADMIN_EMAIL, password in $LOGIN_FILE (sign in: POST $HUB_URL/auth/login)"
echo "logs:        $HUB_LOG, $DELEGATE_LOG, $DIR/demo.log"
finished=1

if [[ $once -eq 1 ]]; then
    echo
    # on_exit stops everything
    case $status in PASSED | FAILED) exit 0 ;; *) exit 2 ;; esac
fi

echo
echo "running: hub (pid $hub_pid), delegate (pid $delegate_pid), demo target (pid $demo_sup, web server pid $(cat "$DEMO_PIDFILE" 2>/dev/null || echo '?'))"
echo "try it:  curl --cacert $CA -H \"Authorization: Bearer $TOKEN\" \\"
echo "           -H 'Content-Type: application/json' -d '{\"query\":\"{ runs { id status resilienceScore } }\"}' $HUB_URL/graphql"
echo "stop:    deploy/quickstart.sh --stop   (or: kill $delegate_pid $demo_sup $hub_pid)"
case $status in PASSED | FAILED) exit 0 ;; *) exit 2 ;; esac
