#!/usr/bin/env bash
# bench/recent.sh - what runtime control, the recent-queries ring and the dashboard cost on
# the query path, in callgrind instructions per query (which do not depend on the machine's
# load). Run by hand (as root), never by the test suite:
#   bench/recent.sh [BASE_SOURCE_DIR]
# Configurations, each with the blocked and the localhost mix (1000-name list):
#   off     no recent queries, no dashboard (the runtime rules and pause are always there)
#   ring    --recent-queries 1000
#   http    --http (the dashboard; implies 1000 recent queries)
#   base    the same "off" daemon built from BASE_SOURCE_DIR (e.g. /work/main), if given
# and lh_recent_push's own inclusive cost per call. Results are in bench/README.md.
set -euo pipefail
LH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$LH_ROOT/scripts/deps.sh"
BASE=${1:-}
CG_QUERIES=${LH_BENCH_CG_QUERIES:-20000}
lh_install_missing "${LH_BUILD_PKGS[@]}" dnsperf valgrind dnsutils
W=$(mktemp -d /tmp/lh-bench-recent-XXXXXX)
chmod 755 "$W"
cleanup() { rm -rf "$W"; }
trap cleanup EXIT

echo "== build (Release)" >&2
lh_build "$LH_ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null
if [ -n "$BASE" ]; then
    cmake -S "$BASE" -B "$LH_ROOT/build-bench-base" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$LH_ROOT/build-bench-base" -j "$(nproc)" >/dev/null
fi
/usr/bin/python3 - "$W" <<'PY'
import random, sys
w = sys.argv[1]
r = random.Random(7)
names = ["b%d-%x.bench-list.test" % (i, r.getrandbits(32)) for i in range(1000)]
open(w + "/list.domains", "w").write("\n".join(names) + "\n")
open(w + "/q-blocked", "w").write("".join("%s A\n" % r.choice(names) for _ in range(10000)))
open(w + "/q-localhost", "w").write("localhost A\n" * 1000)
PY

A=127.0.90.40
# cg NAME MIX BINARY ARGS...: instructions per query, and lh_recent_push's per call.
cg() {
    local name=$1 mix=$2 bin=$3; shift 3
    local out="$W/cg.$name.$mix"
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
        "$bin" --listen $A:53 --no-hosts --allow-root --no-default-blocklist \
        --blocklist "$W/list.domains" --upstream 127.0.0.1:1 "$@" >"$W/cg.$name.log" 2>&1 &
    local p=$!
    for _ in $(seq 900); do dig @$A localhost +time=1 +tries=1 >/dev/null 2>&1 && break; sleep 0.2; done
    dnsperf -s $A -d "$W/q-$mix" -n 1 -c 1 -q 20 >/dev/null 2>&1 || true # warm-up
    local lines=$(wc -l <"$W/q-$mix") rounds=$((CG_QUERIES / $(wc -l <"$W/q-$mix") + 1))
    callgrind_control -i on $p >/dev/null
    dnsperf -s $A -d "$W/q-$mix" -c 1 -q 20 -n $rounds >/dev/null 2>&1 || true
    callgrind_control -i off $p >/dev/null
    callgrind_control -d $p >/dev/null
    kill $p; wait $p 2>/dev/null || true
    local q=$((lines * rounds))
    local ir=$(cat "$out"* | awk '/^totals:/ {s += $2} END {print s + 0}')
    # lh_recent_push: inclusive instructions and calls, from the callers' cfn/calls lines.
    local push=$(cat "$out"* | awk '
        /^cfn=/ { id = $1; sub(/^cfn=/, "", id); if (NF > 1) names[id] = $2; cur = names[id] }
        /^calls=/ && cur == "lh_recent_push" { split($1, c, "="); calls += c[2]; want = 1; next }
        want { incl += $2; want = 0 }
        { if (!/^calls=/) want = 0 }
        END { if (calls) printf "%.0f", incl / calls; else print "-" }')
    printf '%-6s %-10s %10d %12s\n' "$name" "$mix" $((ir / q)) "$push"
}
printf '%-6s %-10s %10s %12s\n' config mix "Ir/query" "push Ir/call"
for mix in blocked localhost; do
    [ -n "$BASE" ] && cg base $mix "$LH_ROOT/build-bench-base/loophole" --control-socket none
    OURS=(--control-socket "$W/ctl.sock" --state-dir "$W/state")
    cg off $mix "$LH_ROOT/build-bench/loophole" "${OURS[@]}"
    cg ring $mix "$LH_ROOT/build-bench/loophole" "${OURS[@]}" --recent-queries 1000
    cg http $mix "$LH_ROOT/build-bench/loophole" "${OURS[@]}" --http $A:5380
done
