#!/usr/bin/env bash
# Command 2: install what is missing, build, and run the whole test suite: the normal build, then
# the same suite in an ASan+UBSan build, then each fuzz target for a short bounded time.
#
# A test that cannot run on this machine exits 77 (ctest counts that as passed and shows
# nothing). Here every skip is listed with its reason, and the run fails on any skip that is
# not declared expected for this machine: a file of "TEST-NAME REASON" lines, named by
# LH_EXPECTED_SKIPS (default: .expected-skips in the checkout, which git ignores), e.g.
#   e2e_test_container  this CI machine has no container engine; test_netns covers the contract
set -euo pipefail
LH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$LH_ROOT/scripts/deps.sh"
lh_install_missing "${LH_BUILD_PKGS[@]}" "${LH_TEST_PKGS[@]}"

jobs=$(nproc)
expected=${LH_EXPECTED_SKIPS:-$LH_ROOT/.expected-skips}
unexpected=0
t_start=$(date +%s)

# run_ctest BUILD_DIR [VAR=VALUE...] [-- CTEST_ARGS...]: the suite in BUILD_DIR; then every
# skip with its reason.
run_ctest() {
    local build=$1; shift
    local skipdir rc=0 vars=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do vars+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    skipdir=$(mktemp -d /tmp/lh-skips-XXXXXX)
    env LH_SKIP_DIR="$skipdir" "${vars[@]}" ctest --test-dir "$build" --output-on-failure \
        --no-tests=error -j "$jobs" "$@" 2>&1 | tee "$skipdir/ctest.out" || rc=1
    local name reason why
    while read -r name; do
        # The reason lh_skip wrote; else the test's own "SKIP:" line from ctest's log.
        reason=$(cat "$skipdir/$name" 2>/dev/null ||
            awk -v n="$name" '$2 == "Testing:" && $3 == n { on = 1; next }
                 on && /^Output:/ { out = 1; next } out && /^<end of output>/ { exit }
                 out && /^SKIP/ { print; exit }' \
                "$build/Testing/Temporary/LastTest.log")
        [ -n "$reason" ] || reason="no reason given (exit 77 without a SKIP: line)"
        why=""
        [ -f "$expected" ] && why=$(awk -v n="$name" '$1 == n { $1 = ""; sub(/^ +/, ""); print; exit }' "$expected")
        if [ -n "$why" ]; then
            echo "SKIPPED (expected here: $why): $name: $reason"
        else
            echo "SKIPPED, NOT EXPECTED: $name: $reason"
            unexpected=$((unexpected + 1))
        fi
    done < <(sed -n 's/^[[:space:]]*[0-9]* - \([A-Za-z0-9_]*\) (Skipped)$/\1/p' "$skipdir/ctest.out")
    rm -rf "$skipdir"
    return "$rc"
}

# stage NAME: prints how long the previous stage took (CI's log then shows where time goes).
t_stage=$t_start
stage() { local now; now=$(date +%s); echo "== ($((now - t_stage)) s) $1"; t_stage=$now; }

stage "build (RelWithDebInfo) and test"
lh_build "$LH_ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_ctest "$LH_ROOT/build"

stage "build (ASan+UBSan) and test"
lh_build "$LH_ROOT/build-asan" -DCMAKE_BUILD_TYPE=Debug -DLH_SANITIZE=ON \
    -DCMAKE_C_COMPILER=clang
# Not the tests labelled "container" again: they test the image's own build and the systemd
# unit, which the first run has done; only their minutes would be spent twice.
run_ctest "$LH_ROOT/build-asan" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 -- -LE container

stage "fuzz targets (bounded)"
lh_build "$LH_ROOT/build-fuzz" -DCMAKE_BUILD_TYPE=Debug -DLH_FUZZ=ON -DCMAKE_C_COMPILER=clang
LH_FUZZ_SECONDS=${LH_FUZZ_SECONDS:-30} "$LH_ROOT/tests/fuzz/run.sh" "$LH_ROOT/build-fuzz"

stage "whole suite: $(( $(date +%s) - t_start )) s"
if [ "$unexpected" -ne 0 ]; then
    echo "FAILED: $unexpected skip(s) not declared expected for this machine (see above; declare" \
         "one in $expected as 'TEST-NAME REASON' only if this machine truly cannot run it)"
    exit 1
fi
