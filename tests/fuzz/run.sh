#!/usr/bin/env bash
# run.sh BUILD_DIR: runs every fuzz target for LH_FUZZ_SECONDS (default 60) over a copy of its
# seed corpus (the checked-in corpus stays as it is). A crash fails the run and leaves the
# reproducer in tests/fuzz/ (crash-*); add it to the corpus as a regression once fixed.
# LH_FUZZ_JOBS targets (default: one per core) run at once: each target is one process on one
# core for its whole time, so two at once on two cores give each the same executions as one
# after the other, in half the wall-clock time.
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
secs=${LH_FUZZ_SECONDS:-60}
jobs=${LH_FUZZ_JOBS:-$(nproc)}
targets=(fuzz_query fuzz_answer fuzz_config fuzz_hosts fuzz_lists fuzz_trust_anchor fuzz_dnssec
    fuzz_snapshot)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# one TARGET: runs it; its log in $out/TARGET.log, its exit status in $out/TARGET.rc.
one() {
    local t=$1 work rc=0
    work=$(mktemp -d)
    cp -r "$here/corpus/${t#fuzz_}/." "$work/"
    # -timeout: one input taking over 10 s is a hang and fails the run. -max_len: the largest
    # input the code accepts: a DNS message over TCP (65,535 bytes); config and list files
    # are read line by line, so long inputs reach them too.
    "$build/tests/fuzz/$t" -max_total_time="$secs" -timeout=10 -max_len=65535 -print_final_stats=1 \
        -artifact_prefix="$here/" "$work" >"$out/$t.log" 2>&1 || rc=$?
    rm -rf "$work"
    echo "$rc" >"$out/$t.rc"
}

running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
    one "$t" &
    running=$((running + 1))
done
wait

passed=0 failed=0
for t in "${targets[@]}"; do
    if [ "$(cat "$out/$t.rc" 2>/dev/null)" = 0 ]; then
        echo "$t: ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$out/$t.log" | awk '{print $2}') executions in ${secs}s)"
        passed=$((passed + 1))
    else
        echo "$t: FAILED"; tail -40 "$out/$t.log"
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
