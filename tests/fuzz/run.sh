#!/usr/bin/env bash
# run.sh BUILD_DIR: runs every fuzz target for LH_FUZZ_SECONDS (default 60) over a copy of its
# seed corpus (the checked-in corpus stays as it is). A crash fails the run and leaves the
# reproducer in tests/fuzz/ (crash-*); add it to the corpus as a regression once fixed.
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
secs=${LH_FUZZ_SECONDS:-60}
passed=0 failed=0
for t in fuzz_query fuzz_answer fuzz_config fuzz_hosts fuzz_lists fuzz_trust_anchor fuzz_dnssec \
    fuzz_snapshot; do
    corpus="${t#fuzz_}"
    work=$(mktemp -d)
    cp -r "$here/corpus/$corpus/." "$work/"
    # -timeout: one input taking over 10 s is a hang and fails the run. -max_len: the largest
    # input the code accepts: a DNS message over TCP (65,535 bytes); config and list files
    # are read line by line, so long inputs reach them too.
    if "$build/tests/fuzz/$t" -max_total_time="$secs" -timeout=10 -max_len=65535 -print_final_stats=1 \
        -artifact_prefix="$here/" "$work" >"$work.log" 2>&1; then
        echo "$t: ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work.log" | awk '{print $2}') executions in ${secs}s)"
        passed=$((passed + 1))
    else
        echo "$t: FAILED"; tail -40 "$work.log"
        failed=$((failed + 1))
    fi
    rm -rf "$work" "$work.log"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
