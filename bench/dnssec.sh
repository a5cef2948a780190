#!/usr/bin/env bash
# bench/dnssec.sh - what DNSSEC validation costs, in callgrind instructions per query (which do
# not depend on the machine's load), beside Unbound validating the same tree. Run by hand (as
# root or not), never by the test suite:
#   bench/dnssec.sh [MISSES] [HITS]          (default 3000 and 20000)
# The signed tree of the tests (tests/e2e/dnssec_tree.sh) is served by Knot on loopback; every
# resolver forwards lhtest. to it and is asked with DO set (dnsperf -D):
#   miss   names never asked before under the tree's wildcards, *.wild.lhtest A (NSEC) and
#          *.wild.sec.lhtest TXT (NSEC3): each answer is a wildcard expansion whose proof is
#          checked; the zones' keys are validated during the warm-up and stay cached, as they
#          would in a running resolver
#   hit    www.sec.lhtest A again and again: a cached answer
# Targets:
#   loophole-validate   --dnssec validate --trust-anchor (the tree's DS)
#   loophole-process    --dnssec process: no validation (the baseline for a hit)
#   unbound-validate    Unbound 1 thread, module-config "validator iterator", the same anchor,
#                       a forward-zone to Knot
# The goals (issue 16): Ir per validated miss <= Unbound's; a validated hit within +-5% of an
# unvalidated hit. Results are in bench/README.md.
set -euo pipefail
LH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$LH_ROOT/scripts/deps.sh"
. "$LH_ROOT/bench/lib.sh"
MISSES=${1:-3000}
HITS=${2:-20000}
lh_install_missing "${LH_BUILD_PKGS[@]}" dnsperf valgrind dnsutils knot ldnsutils unbound
NET=${LH_BENCH_NET:-127.0.92}
KNOT=$NET.1
A=$NET.2
bench_setup bench-dnssec
bash "$LH_ROOT/tests/e2e/dnssec_tree.sh" "$W/tree" >"$W/tree.log" 2>&1

mkdir -p "$W/knot"
{
    printf 'server:\n    rundir: "%s"\n    listen: %s@53\n    udp-workers: 1\n' "$W/knot" "$KNOT"
    printf 'log:\n  - target: stderr\n    any: warning\ndatabase:\n    storage: "%s"\n' "$W/knot"
    printf 'template:\n  - id: default\n    storage: "%s"\n    file: "%%s.zone"\n' "$W/tree"
    printf '    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\nzone:\n'
    while read -r z; do echo "  - domain: $z"; done <"$W/tree/zones"
} >"$W/knot.conf"
knotd -c "$W/knot.conf" >"$W/knot.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    kdig @"$KNOT" lhtest. SOA +short +timeout=1 +retry=0 2>/dev/null | grep -q . && break
    sleep 0.1
done

/usr/bin/python3 - "$W" "$MISSES" "$HITS" <<'PY'
import sys
w, misses, hits = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for tag in ("warm", "miss"):
    with open("%s/q-%s" % (w, tag), "w") as f:
        n = 200 if tag == "warm" else misses
        for i in range(n):
            f.write("%s%d.wild.lhtest A\n" % (tag, i) if i % 2 else
                    "%s%d.wild.sec.lhtest TXT\n" % (tag, i))
open(w + "/q-hit", "w").write("www.sec.lhtest A\n" * 1000)
PY

unbound_conf() {
    cat <<U
server:
  interface: $A
$(bench_unbound_daemon "$W")
  num-threads: 1
  do-not-query-localhost: no
  module-config: "validator iterator"
  trust-anchor-file: "$W/tree/anchor.ds"
  qname-minimisation: no
  aggressive-nsec: no
  msg-cache-size: 64m
  rrset-cache-size: 64m
forward-zone:
  name: "lhtest."
  forward-addr: $KNOT@53
U
}
unbound_conf >"$W/unbound.conf"

# cg TARGET MIX: instructions per query between callgrind_control -i on/off, after warm-up.
cg() {
    local target=$1 mix=$2 out="$W/cg.$1.$2"
    local cmd
    case $target in
    loophole-validate)
        cmd=("$LH_ROOT/build-bench/loophole" --listen "$A:53" --no-hosts --allow-root
            --no-default-blocklist --control-socket none --upstream "$KNOT" --dnssec validate
            --trust-anchor "$W/tree/anchor.ds" --state-dir "$W/state") ;;
    loophole-process)
        cmd=("$LH_ROOT/build-bench/loophole" --listen "$A:53" --no-hosts --allow-root
            --no-default-blocklist --control-socket none --upstream "$KNOT" --dnssec process
            --state-dir "$W/state") ;;
    unbound-validate) cmd=(unbound -d -c "$W/unbound.conf") ;;
    esac
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" "${cmd[@]}" \
        >"$W/cg.$target.log" 2>&1 &
    local p=$!
    for _ in $(seq 900); do
        dig @$A www.sec.lhtest A +time=1 +tries=1 2>/dev/null | grep -q 'status: NOERROR' && break
        sleep 0.2
    done
    # warm-up: the zones' keys validated and cached, the hit's answer in the cache
    dnsperf -s $A -D -d "$W/q-warm" -n 1 -c 1 -q 10 >/dev/null 2>&1 || true
    dnsperf -s $A -D -d "$W/q-hit" -n 1 -c 1 -q 10 >/dev/null 2>&1 || true
    local rounds=1
    [ "$mix" = hit ] && rounds=$((HITS / 1000))
    callgrind_control -i on $p >/dev/null
    dnsperf -s $A -D -d "$W/q-$mix" -c 1 -q 10 -n $rounds >"$W/perf.$target.$mix" 2>&1 || true
    callgrind_control -i off $p >/dev/null
    callgrind_control -d $p >/dev/null
    kill $p
    wait $p 2>/dev/null || true
    local q
    q=$(sed -n 's/.*Queries completed: *\([0-9]*\).*/\1/p' "$W/perf.$target.$mix")
    local ir
    ir=$(cat "$out"* | awk '/^totals:/ {s += $2} END {printf "%.0f", s}')
    if [ -n "${LH_BENCH_KEEP:-}" ]; then mkdir -p "$LH_BENCH_KEEP" && cp "$out"* "$LH_BENCH_KEEP/"; fi
    rm -f "$out"*
    printf "%-18s %-5s %9s %12d\n" "$target" "$mix" "${q:-0}" $((ir / ${q:-1}))
}
printf '%-18s %-5s %9s %12s\n' target mix queries "Ir/query"
for t in ${LH_BENCH_TARGETS:-loophole-validate loophole-process unbound-validate}; do
    for mix in ${LH_BENCH_MIXES:-miss hit}; do cg $t $mix; done
done
