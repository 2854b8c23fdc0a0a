#!/usr/bin/env bash
# Fuzzes the parsers (fuzz/fuzz_targets/, cargo-fuzz + libFuzzer on nightly) for a bounded time:
# SECONDS_PER_TARGET (default 60) each, one job, one after the other, starting from the committed
# seeds (fuzz/seeds/<target>/) and the corpus of earlier runs (fuzz/corpus/<target>/, not
# committed). Prints per target the executions, executions per second, coverage (libFuzzer's
# cov/ft) and whether it found a crash, a timeout or an out-of-memory; exits 1 when one did.
# Not part of CI (scripts/test.sh): the findings become unit tests there.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Environment: FUZZ_TOOLCHAIN (default nightly), FUZZ_TARGET_DIR (default fuzz/target),
# FUZZ_RSS_MB (default 2048).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
shift || true
toolchain=${FUZZ_TOOLCHAIN:-nightly}
target_dir=${FUZZ_TARGET_DIR:-target}
rss=${FUZZ_RSS_MB:-2048}
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;; esac

if ! cargo fuzz --version > /dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi
# No sanitizer: the code under test forbids unsafe; overflow checks and debug assertions are on.
flags=(+"$toolchain" fuzz)
opts=(--sanitizer none --debug-assertions --target-dir "$target_dir")
cargo "${flags[@]}" build "${opts[@]}"

if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo "${flags[@]}" list); fi
logs=$(mktemp -d /tmp/faultline-fuzz.XXXXXX)
trap 'rm -rf "$logs"' EXIT
found=0
rows=()
start=$SECONDS
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "fuzzing $t for ${secs}s" >&2
    rc=0
    # libFuzzer stops itself after -max_total_time; `timeout` is the backstop for a stuck build
    # or a hang libFuzzer's own -timeout (per input) does not catch.
    timeout --signal=INT --kill-after=30 $((secs + 300)) \
        cargo "${flags[@]}" run "${opts[@]}" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=20 -rss_limit_mb="$rss" -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" > "$logs/$t.log" 2>&1 || rc=$?
    log=$logs/$t.log
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<< "$last")
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    if [ "$rc" -eq 0 ]; then
        result=none
    else
        found=1
        kind=$(grep -oE 'ERROR: libFuzzer: [a-z-]+|panicked at [^:]+:[0-9]+' "$log" | head -1 || true)
        result="FOUND (${kind:-exit $rc}) ${artifact:-see log}"
        cp "$log" "artifacts/$t/last-failure.log"
        echo "  $t: ${result}; log in fuzz/artifacts/$t/last-failure.log" >&2
    fi
    rows+=("$(printf '%-15s %12s %9s %7s %7s %11s  %s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result")")
done
printf '\n%-15s %12s %9s %7s %7s %11s  %s\n' target execs exec/s cov ft corpus finding
printf '%s\n' "${rows[@]}"
echo "total: $((SECONDS - start)) s for ${#targets[@]} targets of ${secs} s each"
exit $found
