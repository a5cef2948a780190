#!/usr/bin/env bash
# bench/miss.sh - the forwarding path: every query a cache miss (unique names, each asked
# once) answered by a local authoritative upstream (Knot, a wildcard zone), loophole against
# Unbound and dnsmasq forwarding to the same upstream. Run by hand (as root), never by the
# test suite:
#   bench/miss.sh [SECONDS] [ROUNDS]        defaults: 5 s per measurement, 3 rounds
# Servers run pinned to CPU 0; Knot, dnsperf and tcpdump to CPU 1. Per target and round:
#   cpu-us/miss   server utime+stime per NOERROR answer at a fixed offered rate (LH_BENCH_RATE,
#                 default 8,000 q/s); ok% is the share of queries answered NOERROR (a server
#                 that gives up on a slow upstream answers SERVFAIL cheaply: not a miss served)
#   qps           unthrottled (200 queries in flight), fresh names
#   p50/p99-us    latency at the fixed rate (dnsperf -v, every answer)
#   up/q          upstream queries per client query (tcpdump of what reaches Knot)
#   ports/1k      distinct source ports among the first 1,000 upstream queries
#   sock/q        socket(2) calls per NOERROR answer at the fixed rate (perf stat counting the
#                 syscalls:sys_enter_socket tracepoint in the kernel: no slow-down, unlike strace)
#   Ir/miss       callgrind instructions per miss (5,000 fresh names after a warm-up)
# Then the medians over the rounds. Loopback only; LH_BENCH_NET picks the /24 (127.0.92).
set -euo pipefail
LH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$LH_ROOT/scripts/deps.sh"
. "$LH_ROOT/bench/lib.sh"
SECS=${1:-5}
ROUNDS=${2:-3}
RATE=${LH_BENCH_RATE:-8000}
NET=${LH_BENCH_NET:-127.0.92}
lh_install_missing "${LH_BUILD_PKGS[@]}" dnsperf dnsmasq unbound knot valgrind dnsutils tcpdump linux-perf
bench_setup miss

AUTH=$NET.10 LH=$NET.1 UB=$NET.2 DM=$NET.3 CG=$NET.20
mkdir -p "$W/knot"
cat >"$W/miss.zone" <<Z
\$ORIGIN miss.bench.
\$TTL 3600
@ SOA ns h 1 3600 600 86400 60
@ NS ns
ns A 127.0.0.1
* A 192.0.2.1
Z
cat >"$W/knot.conf" <<K
server:
    listen: $AUTH@53
    rundir: "$W/knot"
    user: root:root
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$W/knot"
log:
  - target: stderr
    any: error
zone:
  - domain: miss.bench
    file: "$W/miss.zone"
    storage: "$W/knot"
K
taskset -c 1 knotd -c "$W/knot.conf" >"$W/knot.log" 2>&1 &
PIDS+=($!)

bench_answers "$AUTH" warm.miss.bench

bench_unbound_conf $UB "$W" miss.bench $AUTH >"$W/unbound.conf"
declare -A PID
start() { # NAME ADDR CMD...
    local name=$1 addr=$2; shift 2
    taskset -c 0 "$@" >"$W/$name.log" 2>&1 &
    PID[$name]=$!
    PIDS+=($!)
    bench_answers "$addr" "start-$name.miss.bench"
}
start loophole $LH "$LH_ROOT/build-bench/loophole" --listen $LH:53 --no-hosts --allow-root \
    --no-default-blocklist --upstream $AUTH --control-socket none --state-dir none
start unbound $UB unbound -c "$W/unbound.conf"
start dnsmasq $DM dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address=$DM \
    --bind-interfaces --port=53 --user=root --server=$AUTH --cache-size=10000

hz=$(getconf CLK_TCK)

declare -A CPU OK QPS P50 P99 UPQ PORTS SOCK IR
measure() { # NAME ADDR ROUND
    local name=$1 addr=$2 key="$1/$3" q t0 t1 tp sp
    bench_names u $((RATE * SECS + 1000))
    q=$Q
    taskset -c 1 tcpdump -i lo -n -B 32768 -w "$W/up.pcap" "udp and dst host $AUTH and dst port 53" \
        >"$W/tcpdump.log" 2>&1 &
    tp=$!
    for _ in $(seq 100); do grep -q listening "$W/tcpdump.log" && break; sleep 0.05; done
    perf stat -x, -e syscalls:sys_enter_socket -p "${PID[$name]}" -o "$W/sock.stat" &
    sp=$!
    t0=$(bench_cpu_ticks "${PID[$name]}")
    taskset -c 1 dnsperf -s "$addr" -d "$q" -l "$SECS" -Q "$RATE" -c 4 -v >"$W/perf.out" 2>&1 || true
    t1=$(bench_cpu_ticks "${PID[$name]}")
    kill -INT $sp
    wait $sp 2>/dev/null || true
    sleep 0.5 # the capture drains
    kill -INT $tp
    wait $tp 2>/dev/null || true
    local done=$(awk '/Response codes:/ {for (i = 3; i < NF; i++) if ($i == "NOERROR") print $(i + 1)}' "$W/perf.out")
    local sent=$(awk '/Queries sent:/ {print $3}' "$W/perf.out")
    done=${done:-0}
    OK[$key]=$(awk -v a="$done" -v b="$sent" 'BEGIN {printf "%.1f", b ? 100 * a / b : 0}')
    CPU[$key]=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v q="$done" 'BEGIN {printf "%.2f", q ? t / hz * 1e6 / q : 0}')
    awk '/^> NOERROR / {print $NF * 1e6}' "$W/perf.out" | sort -n >"$W/lat"
    P50[$key]=$(awk '{v[NR] = $1} END {if (NR) printf "%.0f", v[int(NR * 0.50)]; else print "-"}' "$W/lat")
    P99[$key]=$(awk '{v[NR] = $1} END {if (NR) printf "%.0f", v[int(NR * 0.99)]; else print "-"}' "$W/lat")
    tcpdump -n -r "$W/up.pcap" 2>/dev/null | awk '{split($3, a, "."); print a[5]}' >"$W/ports"
    UPQ[$key]=$(awk -v n="$(wc -l <"$W/ports")" -v q="$done" 'BEGIN {printf "%.2f", q ? n / q : 0}')
    PORTS[$key]=$(head -1000 "$W/ports" | sort -u | wc -l)
    SOCK[$key]=$(awk -F, -v q="$done" '/sys_enter_socket/ {n = $1} END {printf "%.3f", q ? n / q : 0}' "$W/sock.stat")
    bench_names u 200000
    q=$Q
    QPS[$key]=$(taskset -c 1 dnsperf -s "$addr" -d "$q" -l "$SECS" -c 4 -q 200 2>&1 |
        awk '/Queries per second:/ {printf "%d", $4}')
    rm -f "$q" "$W/up.pcap"
}

# Instructions per miss: callgrind, counting only 5,000 misses after start-up and warm-up.
cg() { # NAME CMD... (runs in a subshell: its names get their own sequence numbers)
    local name=$1 p q ir; shift
    SEQ=$((SEQ + 1000 * ${#name}))
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$W/cg.$name" "$@" \
        >"$W/cg.$name.log" 2>&1 &
    p=$!
    bench_answers $CG "cg-$name.miss.bench"
    bench_names u 2000
    dnsperf -s $CG -d "$Q" -c 1 -q 20 >/dev/null 2>&1 || true # warm-up
    bench_names u 5000
    q=$Q
    callgrind_control -i on $p >/dev/null 2>&1
    dnsperf -s $CG -d "$q" -c 1 -q 20 >"$W/cg.perf" 2>&1 || true
    callgrind_control -i off $p >/dev/null 2>&1
    callgrind_control -d $p >/dev/null 2>&1
    kill $p
    wait $p 2>/dev/null || true
    ir=$(cat "$W"/cg.$name* 2>/dev/null | awk '/^totals:/ {s += $2} END {print s + 0}')
    awk -v ir="$ir" '/Queries completed:/ {printf "%d", $3 ? ir / $3 : 0}' "$W/cg.perf"
}

for r in $(seq "$ROUNDS"); do
    echo "== round $r ($SECS s each)" >&2
    measure loophole $LH $r
    measure unbound $UB $r
    measure dnsmasq $DM $r
done
if [ "${LH_BENCH_CALLGRIND:-1}" = 1 ]; then
    echo "== callgrind" >&2
    IR[loophole]=$(cg loophole "$LH_ROOT/build-bench/loophole" --listen $CG:53 --no-hosts \
        --allow-root --no-default-blocklist --upstream $AUTH --control-socket none --state-dir none)
    sed "s/interface: $UB/interface: $CG/" "$W/unbound.conf" >"$W/unbound-cg.conf"
    IR[unbound]=$(cg unbound unbound -c "$W/unbound-cg.conf")
    IR[dnsmasq]=$(cg dnsmasq dnsmasq --keep-in-foreground --no-resolv --no-hosts \
        --listen-address=$CG --bind-interfaces --port=53 --user=root --server=$AUTH --cache-size=10000)
fi

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
printf '\n%-9s %6s %11s %6s %8s %8s %8s %6s %9s %7s %9s\n' target round cpu-us/miss ok% qps p50-us p99-us up/q ports/1k sock/q Ir/miss
for t in loophole unbound dnsmasq; do
    for r in $(seq "$ROUNDS"); do
        k=$t/$r
        printf '%-9s %6s %11s %6s %8s %8s %8s %6s %9s %7s %9s\n' $t $r "${CPU[$k]}" "${OK[$k]}" "${QPS[$k]}" \
            "${P50[$k]}" "${P99[$k]}" "${UPQ[$k]}" "${PORTS[$k]}" "${SOCK[$k]}" "${IR[$t]:--}"
    done
done
echo
declare -A MED
for t in loophole unbound dnsmasq; do
    for m in CPU OK QPS P50 P99 UPQ PORTS SOCK; do
        declare -n arr=$m
        vals=""
        for r in $(seq "$ROUNDS"); do vals="$vals ${arr[$t/$r]}"; done
        MED[$t/$m]=$(echo "$vals" | median)
    done
    printf '%-9s %6s %11s %6s %8s %8s %8s %6s %9s %7s %9s\n' $t median "${MED[$t/CPU]}" "${MED[$t/OK]}" "${MED[$t/QPS]}" \
        "${MED[$t/P50]}" "${MED[$t/P99]}" "${MED[$t/UPQ]}" "${MED[$t/PORTS]}" "${MED[$t/SOCK]}" "${IR[$t]:--}"
done
echo
for peer in unbound dnsmasq; do
    awk -v a="${MED[loophole/CPU]}" -v b="${MED[$peer/CPU]}" -v p50a="${MED[loophole/P50]}" \
        -v p50b="${MED[$peer/P50]}" -v p99a="${MED[loophole/P99]}" -v p99b="${MED[$peer/P99]}" -v p=$peer \
        'BEGIN {if (b > 0 && p50b > 0 && p99b > 0) printf "loophole/%-8s cpu per miss %.2fx, p50 %.2fx, p99 %.2fx\n", p, a / b, p50a / p50b, p99a / p99b}'
done
