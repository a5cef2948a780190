#!/usr/bin/env bash
# bench/dnssec.sh - what DNSSEC validation costs, beside Unbound and dnsmasq validating the same
# tree. Run by hand (as root: the resolvers listen on port 53 of loopback addresses), never by
# the test suite:
#   bench/dnssec.sh [MISSES] [HITS] [ROUNDS] [CPU_MISSES]     (default 2000 20000 3 20000)
# The signed tree of the tests (tests/e2e/dnssec_tree.sh) is served by Knot on loopback; every
# resolver forwards lhtest. to it and is asked with DO set (dnsperf -D):
#   miss   names never asked before under the tree's wildcards, *.wild.lhtest A (NSEC) and
#          *.wild.sec.lhtest TXT (NSEC3): each answer is a wildcard expansion whose proof is
#          checked; the zones' keys are validated during the warm-up and stay cached, as they
#          would in a running resolver
#   hit    www.sec.lhtest A again and again: a cached answer
# Each round starts every target afresh, twice:
#   - under callgrind: instructions per miss (MISSES) and per hit (HITS), counted between
#     callgrind_control -i on/off after the warm-up (they do not depend on the machine's load);
#   - natively: CPU time per miss over CPU_MISSES other never-asked names (utime + stime from
#     /proc, in clock ticks of 10 ms: hence the larger count).
# Targets:
#   loophole-validate   --dnssec validate --trust-anchor (the tree's DS)
#   loophole-process    --dnssec process: no validation (the baseline for a hit)
#   unbound-validate    Unbound, 1 thread, module-config "validator iterator", the same anchor,
#                       a forward-zone to Knot, aggressive-nsec off
#   dnsmasq-validate    dnsmasq --dnssec with the tree's DS as --trust-anchor (plus the real
#                       root's from dns-root-data: dnsmasq refuses to start without a root anchor,
#                       and never needs it for lhtest. names), --dnssec-check-unsigned
# LH_BENCH_TARGETS / LH_BENCH_KEEP=DIR (keep the callgrind files) narrow or keep a run.
# The goals (issue 16): CPU per validated miss <= Unbound's; a validated hit within +-5% of an
# unvalidated hit. Results are in bench/README.md.
set -euo pipefail
LH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$LH_ROOT/scripts/deps.sh"
. "$LH_ROOT/bench/lib.sh"
MISSES=${1:-2000}
HITS=${2:-20000}
ROUNDS=${3:-3}
CPU_MISSES=${4:-20000}
lh_install_missing "${LH_BUILD_PKGS[@]}" dnsperf valgrind dnsutils knot ldnsutils unbound dnsmasq-base dns-root-data
NET=${LH_BENCH_NET:-127.0.94}
KNOT=$NET.1
A=$NET.2
TARGETS=${LH_BENCH_TARGETS:-loophole-validate loophole-process unbound-validate dnsmasq-validate}
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

/usr/bin/python3 - "$W" "$MISSES" "$CPU_MISSES" <<'PY'
import sys
w, misses, cpu = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for tag, n in (("warm", 200), ("miss", misses), ("cpu", cpu)):
    with open("%s/q-%s" % (w, tag), "w") as f:
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

# dnsmasq's trust anchors: "name,keytag,algorithm,digest-type,digest"
DM_TA=$(awk '{sub(/\.$/, "", $1); print $1 "," $4 "," $5 "," $6 "," $7; exit}' "$W/tree/anchor.ds")
DM_ROOT=$(awk '$4 ~ /^[0-9]+$/ {print "," $4 "," $5 "," $6 "," $7; exit}' /usr/share/dns/root.ds)

# target_cmd TARGET: the command line into CMD
target_cmd() {
    case $1 in
    loophole-validate)
        CMD=("$LH_ROOT/build-bench/loophole" --listen "$A:53" --no-hosts --allow-root
            --no-default-blocklist --control-socket none --upstream "$KNOT" --dnssec validate
            --trust-anchor "$W/tree/anchor.ds" --state-dir "$W/state") ;;
    loophole-process)
        CMD=("$LH_ROOT/build-bench/loophole" --listen "$A:53" --no-hosts --allow-root
            --no-default-blocklist --control-socket none --upstream "$KNOT" --dnssec process
            --state-dir "$W/state") ;;
    unbound-validate) CMD=(unbound -d -c "$W/unbound.conf") ;;
    dnsmasq-validate)
        CMD=(dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address="$A"
            --bind-interfaces --port=53 --server="$KNOT" --dnssec --trust-anchor="$DM_ROOT"
            --trust-anchor="$DM_TA" --dnssec-check-unsigned --cache-size=20000 --user=root
            --group=root --pid-file="$W/dnsmasq.pid") ;;
    esac
}

# start TARGET [valgrind...]: runs the target (under the given tool, if any) into PID, waits
# for its first answer and warms it up: the zones' keys validated, the hit's answer cached.
start() {
    local t=$1
    shift
    target_cmd "$t"
    "$@" "${CMD[@]}" >"$W/$t.log" 2>&1 &
    PID=$!
    for _ in $(seq 900); do
        dig @$A www.sec.lhtest A +time=1 +tries=1 2>/dev/null | grep -q 'status: NOERROR' && break
        sleep 0.2
    done
    dnsperf -s $A -D -d "$W/q-warm" -n 1 -c 1 -q 10 >/dev/null 2>&1 || true
    dnsperf -s $A -D -d "$W/q-hit" -n 1 -c 1 -q 10 >/dev/null 2>&1 || true
}
stop() {
    kill "$PID"
    wait "$PID" 2>/dev/null || true
}
completed() { sed -n 's/.*Queries completed: *\([0-9]*\).*/\1/p' "$1"; }

# cg TARGET ROUND: instructions per miss and per hit (two dumps of one callgrind run) into
# IR_MISS, IR_HIT
cg() {
    local t=$1 r=$2 out="$W/cg.$1.$2"
    start "$t" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out"
    local mix q ir dump=0
    for mix in miss hit; do
        local n=1
        [ $mix = hit ] && n=$((HITS / 1000))
        dump=$((dump + 1))
        callgrind_control -i on $PID >/dev/null 2>&1
        dnsperf -s $A -D -d "$W/q-$mix" -c 1 -q 10 -n $n >"$W/perf.$t.$mix" 2>&1 || true
        callgrind_control -i off $PID >/dev/null 2>&1
        callgrind_control -d $PID >/dev/null 2>&1
        q=$(completed "$W/perf.$t.$mix")
        # dump N is this mix's alone: the counters restart at every dump
        ir=$(awk '/^totals:/ {s += $2} END {printf "%.0f", s}' "$out.$dump")
        if [ $mix = miss ]; then IR_MISS=$((ir / ${q:-1})); else IR_HIT=$((ir / ${q:-1})); fi
    done
    stop
    if [ -n "${LH_BENCH_KEEP:-}" ]; then mkdir -p "$LH_BENCH_KEEP" && cp "$out"* "$LH_BENCH_KEEP/"; fi
    rm -f "$out"*
}

# cpu TARGET: CPU microseconds per miss, natively, into CPU_MISS
cpu() {
    local t=$1
    start "$t"
    local before after q
    before=$(bench_cpu_ticks $PID)
    dnsperf -s $A -D -d "$W/q-cpu" -c 1 -q 20 -n 1 >"$W/perf.$t.cpu" 2>&1 || true
    after=$(bench_cpu_ticks $PID)
    stop
    q=$(completed "$W/perf.$t.cpu")
    CPU_MISS=$(awk -v t=$((after - before)) -v q="${q:-0}" -v hz="$(getconf CLK_TCK)" \
        'BEGIN {printf "%.1f", q ? t * 1e6 / hz / q : 0}')
}

RES="$W/results"
: >"$RES"
printf '%-18s %5s %12s %9s %12s\n' target round Ir/miss Ir/hit cpu-us/miss
for r in $(seq "$ROUNDS"); do
    for t in $TARGETS; do
        cg "$t" "$r"
        cpu "$t"
        printf '%-18s %5s %12s %9s %12s\n' "$t" "$r" "$IR_MISS" "$IR_HIT" "$CPU_MISS" | tee -a "$RES"
    done
done
echo
/usr/bin/python3 - "$RES" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
med = {}
for t in dict.fromkeys(r[0] for r in rows):
    mine = [r for r in rows if r[0] == t]
    med[t] = [statistics.median(float(r[i]) for r in mine) for i in (2, 3, 4)]
    print("%-18s %5s %12.0f %9.0f %12.1f" % (t, "med", *med[t]))
print()
v = med.get("loophole-validate")
for peer in ("unbound-validate", "dnsmasq-validate"):
    if v and peer in med and med[peer][0] and med[peer][2]:
        print("loophole-validate/%-17s Ir per miss %.2fx, CPU per miss %.2fx" %
              (peer, v[0] / med[peer][0], v[2] / med[peer][2]))
p = med.get("loophole-process")
if v and p and p[1]:
    print("validated hit vs unvalidated hit (loophole): %+.1f%% Ir" % (100 * (v[1] / p[1] - 1)))
PY
