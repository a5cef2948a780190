#!/usr/bin/env bash
# bench/run.sh - loophole side by side with Unbound and dnsmasq, and a minimal recvmmsg
# responder as the floor. Run by hand (as root), never by the test suite:
#   bench/run.sh [NAMES] [SECONDS]          defaults: 1000000 names, 5 s per measurement
# Everything runs on loopback addresses; servers are pinned to CPU 0, dnsperf to CPU 1.
# Prints one table; the ratios (loophole / peer, same run) are the figures that matter on a
# shared, noisy machine. Results are recorded in bench/README.md.
set -euo pipefail
LH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$LH_ROOT/scripts/deps.sh"
. "$LH_ROOT/bench/lib.sh"
N=${1:-1000000}
SECS=${2:-5}
RATE=${LH_BENCH_RATE:-20000}        # offered rate for the CPU-per-query figure
CG_QUERIES=${LH_BENCH_CG_QUERIES:-20000}
MEASURE=${LH_BENCH_MEASURE:-1} # 0: instruction counts only (they do not depend on load)
CG_DIR=${LH_BENCH_CG_DIR:-}    # keep the callgrind files here (per instruction: --dump-instr)
PEERS=${LH_BENCH_PEERS:-1}     # 0: no Unbound or dnsmasq (loophole and the floor only)
PEER_NAMES=(unbound dnsmasq)
[ "$PEERS" = 1 ] || PEER_NAMES=()
lh_install_missing "${LH_BUILD_PKGS[@]}" dnsperf dnsmasq unbound valgrind dnsutils
bench_setup bench
cc -O2 -o "$W/floor" "$LH_ROOT/bench/floor.c"

echo "== inputs: $N names" >&2
/usr/bin/python3 - "$W" "$N" <<'PY'
import random, sys
w, n = sys.argv[1], int(sys.argv[2])
r = random.Random(7)
names = ["b%d-%x.bench-list.test" % (i, r.getrandbits(32)) for i in range(n)]
with open(w + "/list.domains", "w") as f:
    f.write("\n".join(names) + "\n")
with open(w + "/list.hosts", "w") as f:           # dnsmasq addn-hosts, as Pi-hole does
    for x in names:
        f.write("0.0.0.0 %s\n:: %s\n" % (x, x))
with open(w + "/unbound-zones.conf", "w") as f:   # Unbound local-zones
    f.write("server:\n")
    for x in names:
        f.write('  local-zone: "%s." always_null\n' % x)
with open(w + "/q-blocked", "w") as f:
    for _ in range(100000):
        f.write("%s A\n" % r.choice(names))
with open(w + "/q-localhost", "w") as f:
    for _ in range(1000):
        f.write("localhost A\n")
with open(w + "/q-cached", "w") as f:
    for i in range(100000):
        f.write("h%d.fwd.bench A\n" % (i % 200))
with open(w + "/fwd.zone", "w") as f:
    f.write("$ORIGIN fwd.bench.\n$TTL 86400\n@ SOA ns h 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n")
    for i in range(200):
        f.write("h%d A 192.0.2.%d\n" % (i, i % 250 + 1))
PY

NET=${LH_BENCH_NET:-127.0.90} # another /24 of loopback when someone else benchmarks too
AUTH=$NET.10 LH=$NET.1 UB=$NET.2 DM=$NET.3 FL=$NET.4
bench_auth_conf $AUTH bench fwd.bench "$W/fwd.zone" "$W" >"$W/auth.conf"
unbound -c "$W/auth.conf" & PIDS+=($!)

# answers ADDR: waits for ADDR to answer localhost; prints the milliseconds it took.
answers() {
    local t0=$(date +%s%N)
    for _ in $(seq 30000); do # 5M names take minutes to parse on a loaded machine
        dig @"$1" localhost +time=1 +tries=1 >/dev/null 2>&1 && break
        sleep 0.01
    done
    echo $(( ($(date +%s%N) - t0) / 1000000 ))
}
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

declare -A PID LOAD RSS
start() { # NAME ADDR CMD...
    local name=$1 addr=$2; shift 2
    taskset -c 0 "$@" >"$W/$name.log" 2>&1 &
    PID[$name]=$!; PIDS+=($!)
    LOAD[$name]=$(answers "$addr")
    RSS[$name]=$(rss_mib "${PID[$name]}")
}
echo "== starting servers (Unbound with $N local-zones takes a while)" >&2
LH_CMD=("$LH_ROOT/build-bench/loophole" --listen $LH:53 --no-hosts --allow-root \
    --no-default-blocklist --blocklist "$W/list.domains" --upstream $AUTH --control-socket none \
    --state-dir "$W/state")
start loophole $LH "${LH_CMD[@]}"
bench_unbound_conf $UB "$W" fwd.bench $AUTH "$W/unbound-zones.conf" >"$W/unbound.conf"
if [ "$MEASURE" = 1 ]; then # the peers and the floor: only for the timed measurements
if [ "$PEERS" = 1 ]; then
start unbound $UB unbound -c "$W/unbound.conf"
start dnsmasq $DM dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address=$DM \
    --bind-interfaces --port=53 --user=root --addn-hosts="$W/list.hosts" --server=$AUTH \
    --cache-size=10000
fi
start floor $FL "$W/floor" $FL 53
fi

# Warm the caches for the cached-forward mix.
for a in $LH $UB $DM; do { [ "$MEASURE" = 1 ] && [ "$PEERS" = 1 ]; } || [ $a = $LH ] || continue; dnsperf -s $a -d "$W/q-cached" -n 1 -q 50 >/dev/null 2>&1 || true; done

# perf_at NAME ADDR MIX: CPU microseconds per answered query at $RATE q/s, then unthrottled.
declare -A CPU QPS LAT LOST P99
measure() {
    local name=$1 addr=$2 mix=$3 key="$1/$3" out t0 t1
    t0=$(cpu_ticks "${PID[$name]}")
    taskset -c 1 dnsperf -s "$addr" -d "$W/q-$mix" -l "$SECS" -Q "$RATE" -c 4 -v >"$W/perf.out" 2>&1
    t1=$(cpu_ticks "${PID[$name]}")
    out=$(grep -v '^>' "$W/perf.out")
    # -v prints every answer with its latency: the 99th percentile at the fixed rate
    P99[$key]=$(awk '/^> / {print $NF * 1e6}' "$W/perf.out" | sort -n |
        awk '{v[NR] = $1} END {if (NR) printf "%.0f", v[int(NR * 0.99)]; else print "-"}')
    local done=$(echo "$out" | awk '/Queries completed:/ {print $3}')
    local hz=$(getconf CLK_TCK)
    CPU[$key]=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v q="$done" 'BEGIN {printf "%.2f", q ? t / hz * 1e6 / q : 0}')
    out=$(taskset -c 1 dnsperf -s "$addr" -d "$W/q-$mix" -l "$SECS" -c 4 -q 200 2>&1)
    QPS[$key]=$(echo "$out" | awk '/Queries per second:/ {printf "%d", $4}')
    LAT[$key]=$(echo "$out" | awk '/Average Latency/ {printf "%.0f", $4 * 1e6}')
    LOST[$key]=$(echo "$out" | awk '/Queries lost:/ {print $3}')
}
if [ "$MEASURE" = 1 ]; then
echo "== measuring ($SECS s each)" >&2
for mix in blocked localhost cached; do
    for t in loophole "${PEER_NAMES[@]}"; do
        a=$LH; [ $t = unbound ] && a=$UB; [ $t = dnsmasq ] && a=$DM
        measure $t $a $mix
    done
    measure floor $FL $mix
done
for t in loophole "${PEER_NAMES[@]}" floor; do RSS[$t]=$(rss_mib "${PID[$t]}"); done
# A restart of loophole with the same lists maps the compiled snapshot the first start wrote.
kill "${PID[loophole]}"; wait "${PID[loophole]}" 2>/dev/null || true
start loophole-again $LH "${LH_CMD[@]}"
grep -q "mapped from" "$W/loophole-again.log" || echo "the restart did not map the snapshot" >&2
else
    RSS[loophole]=$(rss_mib "${PID[loophole]}")
fi

# Instructions per query (callgrind): counting starts after start-up and warm-up.
cg() { # NAME MIX ARGS...
    local name=$1 mix=$2; shift 2
    local a=$NET.20
    valgrind --tool=callgrind --instr-atstart=no --dump-instr=yes \
        --callgrind-out-file="$W/cg.$name.$mix" "$@" >"$W/cg.$name.log" 2>&1 &
    local p=$!
    for _ in $(seq 900); do dig @$a localhost +time=1 +tries=1 >/dev/null 2>&1 && break; sleep 0.2; done
    dnsperf -s $a -d "$W/q-$mix" -n 1 -c 1 -q 20 >/dev/null 2>&1 || true   # warm-up
    callgrind_control -i on $p >/dev/null
    dnsperf -s $a -d "$W/q-$mix" -c 1 -q 20 -n $(( CG_QUERIES / $(wc -l <"$W/q-$mix") + 1 )) >/dev/null 2>&1 || true
    callgrind_control -i off $p >/dev/null
    callgrind_control -d $p >/dev/null
    kill $p; wait $p 2>/dev/null || true
    local ir=$(cat "$W"/cg.$name.$mix* 2>/dev/null | awk '/^totals:/ {s += $2} END {print s + 0}')
    local q=$(( ($(wc -l <"$W/q-$mix")) * (CG_QUERIES / $(wc -l <"$W/q-$mix") + 1) ))
    if [ -n "$CG_DIR" ]; then # e.g. callgrind_annotate --auto=yes DIR/cg.loophole.blocked.1
        mkdir -p "$CG_DIR"
        cp "$W"/cg.$name.$mix* "$CG_DIR"/
        echo "$q" >"$CG_DIR/queries.$name.$mix"
    fi
    echo $(( ${ir:-0} / q ))
}
declare -A IR TQPS
if [ "${LH_BENCH_CALLGRIND:-1}" = 1 ]; then
    echo "== callgrind" >&2
    # loophole maps the snapshot its first start wrote (lists of 20,000+ names): a 5M list
    # is ready under valgrind in seconds, not parsed for an hour. The lookup code and the
    # tree's layout are the same as after a parse.
    for mix in blocked localhost cached; do
        IR[loophole/$mix]=$(cg loophole $mix "$LH_ROOT/build-bench/loophole" --listen $NET.20:53 \
            --no-hosts --allow-root --no-default-blocklist --blocklist "$W/list.domains" --upstream $AUTH --control-socket none \
            --state-dir "$W/state")
    done
    if [ "$N" -le 100000 ] && [ "$PEERS" = 1 ]; then # the peers too (a big list under valgrind takes ages)
        sed "s/interface: $UB/interface: $NET.20/" "$W/unbound.conf" >"$W/unbound-cg.conf"
        for mix in blocked localhost cached; do
            IR[unbound/$mix]=$(cg unbound $mix unbound -c "$W/unbound-cg.conf")
            IR[dnsmasq/$mix]=$(cg dnsmasq $mix dnsmasq --keep-in-foreground --no-resolv --no-hosts \
                --listen-address=$NET.20 --bind-interfaces --port=53 --user=root \
                --addn-hosts="$W/list.hosts" --server=$AUTH --cache-size=10000)
        done
    fi
fi

# Several event loops: unthrottled qps of the blocked mix with --threads 2 against one loop.
# dnsperf needs a core too, so on a 2-core machine this shows what a second loop adds when
# the load generator competes with it, not the scaling on idle cores.
if [ "$MEASURE" = 1 ] && [ "${LH_BENCH_THREADS:-1}" = 1 ]; then
    echo "== threads" >&2
    for n in 1 2; do
        "$LH_ROOT/build-bench/loophole" --listen $NET.30:53 --threads $n --no-hosts \
            --allow-root --no-default-blocklist --blocklist "$W/list.domains" --upstream $AUTH \
            --control-socket none --state-dir none >"$W/threads.log" 2>&1 &
        tp=$!
        answers $NET.30 >/dev/null
        TQPS[$n]=$(dnsperf -s $NET.30 -d "$W/q-blocked" -l "$SECS" -c 8 -T 2 -q 400 2>&1 |
            awk '/Queries per second:/ {printf "%d", $4}')
        kill $tp; wait $tp 2>/dev/null || true
    done
fi

if [ "$MEASURE" = 0 ]; then
    printf '\ninstructions per query (callgrind), %s names; loophole load %s ms, RSS %s MiB\n' \
        "$N" "${LOAD[loophole]}" "${RSS[loophole]}"
    for mix in blocked localhost cached; do
        for t in loophole unbound dnsmasq; do
            [ -n "${IR[$t/$mix]:-}" ] && printf '%-10s %-9s %10s\n' $t $mix "${IR[$t/$mix]}"
        done
    done
    exit 0
fi
printf '\n%-10s %-9s %10s %9s %9s %8s %7s %8s %8s %10s\n' target mix "cpu-us/q" "qps" "lat-us" "p99-us" lost "rss-MiB" "load-ms" "Ir/query"
for mix in blocked localhost cached; do
    for t in loophole unbound dnsmasq floor; do
        k="$t/$mix"; [ -n "${CPU[$k]:-}" ] || continue
        printf '%-10s %-9s %10s %9s %9s %8s %7s %8s %8s %10s\n' $t $mix "${CPU[$k]}" "${QPS[$k]}" \
            "${LAT[$k]}" "${P99[$k]:--}" "${LOST[$k]}" "${RSS[$t]}" "${LOAD[$t]}" "${IR[$k]:--}"
    done
done
echo
for mix in blocked localhost cached; do
    for peer in unbound dnsmasq floor; do
        [ -n "${CPU[$peer/$mix]:-}" ] || continue
        awk -v a="${CPU[loophole/$mix]}" -v b="${CPU[$peer/$mix]}" -v m=$mix -v p=$peer \
            'BEGIN {if (b > 0) printf "cpu/query ratio loophole/%-8s %-9s %.2f\n", p, m, a / b}'
    done
done
printf 'loophole to the first answer: %s ms parsing the list, %s ms from the snapshot (RSS %s MiB)\n' \
    "${LOAD[loophole]}" "${LOAD[loophole-again]}" "${RSS[loophole-again]}"
awk -v a="${CPU[loophole/localhost]}" -v b="${CPU[floor/localhost]}" \
    'BEGIN {if (b > 0) printf "loophole vs floor (localhost): %.2fx\n", a / b}'
if [ -n "${TQPS[1]:-}" ]; then
    awk -v a="${TQPS[1]}" -v b="${TQPS[2]}" 'BEGIN {printf "threads: 1 loop %d q/s, 2 loops %d q/s: %.2fx (dnsperf on the same 2 cores)\n", a, b, b / a}'
fi
