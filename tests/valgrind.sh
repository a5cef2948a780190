#!/usr/bin/env bash
# tests/valgrind.sh BUILD_DIR [TEST...]: the end-to-end scripts with every loophole process
# (daemon and subcommands) under valgrind memcheck. Run by hand: too slow for CI. Reports the
# tests that failed and every valgrind error or definite leak, with the log that shows it.
#   tests/valgrind.sh build                   # all e2e scripts
#   tests/valgrind.sh build test_tcp test_forward
set -uo pipefail
build=$(cd "${1:?usage: valgrind.sh BUILD_DIR [TEST...]}" && pwd)
shift
root=$(cd "$(dirname "$0")/.." && pwd)
logs=$(mktemp -d /tmp/lh-valgrind-XXXXXX)
chmod 1777 "$logs" # the daemon drops to nobody and still writes its log there
cat >"$logs/loophole" <<W
#!/bin/sh
exec valgrind --quiet --vgdb=no --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --track-fds=no --log-file="$logs/vg.%p.log" "$build/loophole" "\$@"
W
chmod 755 "$logs/loophole"
tests=("$@")
[ ${#tests[@]} -eq 0 ] && for t in "$root"/tests/e2e/test_*.sh; do tests+=("$(basename "$t" .sh)"); done
failed=() skipped=()
for t in "${tests[@]}"; do
    if LOOPHOLE="$logs/loophole" LH_SRC="$root" timeout 900 bash "$root/tests/e2e/$t.sh" >"$logs/$t.out" 2>&1; then
        echo "$t: ok"
    else
        rc=$?
        [ $rc -eq 77 ] && { echo "$t: SKIPPED: $(grep -m1 '^SKIP' "$logs/$t.out")"; skipped+=("$t"); continue; }
        echo "$t: FAILED under valgrind (exit $rc): $(grep -c '^FAIL' "$logs/$t.out") failed checks"
        grep '^FAIL' "$logs/$t.out" | head -5
        failed+=("$t")
    fi
done
errors=0
for f in "$logs"/vg.*.log; do
    [ -s "$f" ] || continue
    errors=$((errors + 1))
    echo "== valgrind report $f:"; head -40 "$f"
done
runs=$(ls "$logs"/vg.*.log 2>/dev/null | wc -l)
echo "valgrind: $runs loophole processes, $errors with errors or definite leaks; ${#failed[@]} test script(s) failed: ${failed[*]:-none}; skipped: ${skipped[*]:-none}; logs in $logs"
# A failing script fails the run too: under valgrind a check that fails is as much a finding
# as a report in a log.
[ "$errors" -eq 0 ] && [ "${#failed[@]}" -eq 0 ]
