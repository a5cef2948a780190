#!/usr/bin/env bash
# bench/dot.sh - forwarding cache misses over DNS over TLS, side by side: loophole, Unbound
# (forward-tls-upstream: yes) and stubby, each forwarding to the same local Unbound DoT server
# (a wildcard auth zone, miss.bench, served on DOT@853 over TLS and on DOT@53 in plain), with a
# throw-away CA made here. loophole forwarding the same misses in plain DNS (UDP) is the
# fourth row, for reference. Run by hand (as root), never by the test suite:
#   bench/dot.sh [ROUNDS]        default 3 rounds
# Forwarders run pinned to CPU 0; the DoT server, dnsperf and tcpdump to CPU 1. Per target
# and round:
#   cpu-us/miss  forwarder utime+stime per NOERROR answer, 10,000 fresh names at a fixed rate
#                (LH_BENCH_RATE, default 2,000 q/s); ok% the share answered NOERROR
#   hs/10k       TLS connections opened to the DoT server during those 10,000 misses (SYNs to
#                port 853 in a capture); the connection is warm from the start-up check
#   p50/p99-us   latency of a miss, one query at a time (a warm connection), 2,000 fresh names
# Then the medians, and the same p50 for plain TCP straight to the DoT server (dnsperf -m tcp:
# the server's own time on a warm connection, no forwarder in between). Last, loophole's
# memory per idle TLS connection: RSS growth over 32 idle connections (32 forward zones, each
# its own server entry and so its own connection). Loopback only; LH_BENCH_NET picks the /24.
set -euo pipefail
LH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$LH_ROOT/scripts/deps.sh"
. "$LH_ROOT/bench/lib.sh"
ROUNDS=${1:-3}
RATE=${LH_BENCH_RATE:-2000}
NET=${LH_BENCH_NET:-127.0.197}
lh_install_missing "${LH_BUILD_PKGS[@]}" dnsperf unbound stubby dnsutils tcpdump openssl
bench_setup dot
cleanup() { # on a failure, the ends of the logs first
    local rc=$?
    if [ $rc -ne 0 ]; then tail -n 5 "$W"/*.log >&2; fi
    bench_cleanup
}
trap cleanup EXIT
trap 'exit 1' INT TERM

DOT=$NET.10 LH=$NET.1 UB=$NET.2 ST=$NET.3 LP=$NET.4 MEM=$NET.5
cd "$W"
bench_tls_ca dot.bench
chmod 644 ./*.pem ./*.key
cat >miss.zone <<Z
\$ORIGIN miss.bench.
\$TTL 3600
@ SOA ns h 1 3600 600 86400 60
@ NS ns
ns A 127.0.0.1
* A 192.0.2.1
Z
cat >dot-server.conf <<U
server:
  interface: $DOT@853
  interface: $DOT@53
  tls-port: 853
  tls-service-key: "$W/server.key"
  tls-service-pem: "$W/server.pem"
  num-threads: 1
  incoming-num-tcp: 256
  tcp-idle-timeout: 120000
$(bench_unbound_daemon "$W")
  local-zone: "bench." nodefault
  module-config: "iterator"
$(bench_unbound_stub)
auth-zone:
  name: "miss.bench."
  zonefile: "$W/miss.zone"
U
taskset -c 1 unbound -c dot-server.conf >dot-server.log 2>&1 &
PIDS+=($!)

bench_answers "$DOT" warm.miss.bench +tcp

cat >unbound-fwd.conf <<U
server:
  interface: $UB
  num-threads: 1
$(bench_unbound_daemon "$W")
  do-not-query-localhost: no
  local-zone: "bench." nodefault
  module-config: "iterator"
  tls-cert-bundle: "$W/ca.pem"
$(bench_unbound_stub)
forward-zone:
  name: "miss.bench."
  forward-tls-upstream: yes
  forward-addr: $DOT@853#dot.bench
U
cat >stubby.yml <<S
resolution_type: GETDNS_RESOLUTION_STUB
dns_transport_list:
  - GETDNS_TRANSPORT_TLS
tls_authentication: GETDNS_AUTHENTICATION_REQUIRED
tls_query_padding_blocksize: 128
edns_client_subnet_private: 1
idle_timeout: 10000
round_robin_upstreams: 0
tls_ca_file: "$W/ca.pem"
listen_addresses:
  - $ST@53
upstream_recursive_servers:
  - address_data: $DOT
    tls_auth_name: "dot.bench"
    tls_port: 853
S
declare -A PID
start() { # NAME ADDR CMD...
    local name=$1 addr=$2
    shift 2
    taskset -c 0 "$@" >"$W/$name.log" 2>&1 &
    PID[$name]=$!
    PIDS+=($!)
    bench_answers "$addr" "start-$name.miss.bench" || { tail -n 20 "$W/$name.log" "$W/dot-server.log" >&2; exit 1; }
}
LHARGS=(--no-hosts --allow-root --no-default-blocklist --control-socket none --state-dir none
    --cache-size 0)
start loophole $LH "$LH_ROOT/build-bench/loophole" --listen $LH:53 "${LHARGS[@]}" \
    --upstream "tls://$DOT#dot.bench" --tls-ca "$W/ca.pem"
start unbound $UB unbound -c "$W/unbound-fwd.conf"
start stubby $ST stubby -C "$W/stubby.yml"
start loophole-udp $LP "$LH_ROOT/build-bench/loophole" --listen $LP:53 "${LHARGS[@]}" \
    --upstream "$DOT"
declare -A ADDR=([loophole]=$LH [unbound]=$UB [stubby]=$ST [loophole-udp]=$LP)
TARGETS="loophole unbound stubby loophole-udp"

hz=$(getconf CLK_TCK)
pct() { # FILE FRACTION: the value at that fraction of the sorted file
    awk -v f="$2" '{v[NR] = $1} END {i = int(NR * f); if (i < 1) i = 1; if (NR) printf "%.0f", v[i]; else print "-"}' "$1"
}

declare -A CPU OK HS P50 P99
measure() { # NAME ROUND
    local name=$1 key="$1/$2" addr=${ADDR[$1]} t0 t1 tp
    if ! kill -0 "${PID[$name]}" 2>/dev/null; then
        echo "$name is not running:" >&2
        tail -n 20 "$W/$name.log" >&2
        exit 1
    fi
    bench_names d 10000
    taskset -c 1 tcpdump -i lo -n -B 8192 -w "$W/syn.pcap" \
        "dst host $DOT and dst port 853 and tcp[tcpflags] & tcp-syn != 0" >"$W/tcpdump.log" 2>&1 &
    tp=$!
    PIDS+=($tp)
    for _ in $(seq 100); do grep -q listening "$W/tcpdump.log" && break; sleep 0.05; done
    t0=$(bench_cpu_ticks "${PID[$name]}")
    taskset -c 1 dnsperf -s "$addr" -d "$Q" -n 1 -Q "$RATE" -c 4 -t 5 >"$W/perf.out" 2>&1 || true
    t1=$(bench_cpu_ticks "${PID[$name]}")
    sleep 0.5 # the capture drains
    kill -INT $tp
    wait $tp 2>/dev/null || true
    local done sent
    done=$(awk '/Response codes:/ {for (i = 3; i < NF; i++) if ($i == "NOERROR") print $(i + 1)}' "$W/perf.out")
    sent=$(awk '/Queries sent:/ {print $3}' "$W/perf.out")
    done=${done:-0}
    OK[$key]=$(awk -v a="$done" -v b="$sent" 'BEGIN {printf "%.1f", b ? 100 * a / b : 0}')
    CPU[$key]=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v q="$done" 'BEGIN {printf "%.1f", q ? t / hz * 1e6 / q : 0}')
    HS[$key]=$(tcpdump -n -r "$W/syn.pcap" 2>/dev/null | wc -l)
    bench_names d 2000
    taskset -c 1 dnsperf -s "$addr" -d "$Q" -n 1 -c 1 -q 1 -v -t 5 >"$W/lat.out" 2>&1 || true
    awk '/^> NOERROR / {print $NF * 1e6}' "$W/lat.out" | sort -n >"$W/lat"
    P50[$key]=$(pct "$W/lat" 0.50)
    P99[$key]=$(pct "$W/lat" 0.99)
    rm -f "$W"/q* "$W/syn.pcap"
}
TCP50=()
for r in $(seq "$ROUNDS"); do
    echo "== round $r" >&2
    for t in $TARGETS; do measure "$t" "$r"; done
    bench_names d 2000 # the DoT server itself over plain TCP, one query at a time on one connection
    taskset -c 1 dnsperf -m tcp -s "$DOT" -d "$Q" -n 1 -c 1 -q 1 -v -t 5 >"$W/lat.out" 2>&1 || true
    awk '/^> NOERROR / {print $NF * 1e6}' "$W/lat.out" | sort -n >"$W/lat"
    TCP50+=("$(pct "$W/lat" 0.50)")
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
printf '\n%-13s %6s %11s %6s %7s %7s %7s\n' target round cpu-us/miss ok% hs/10k p50-us p99-us
for t in $TARGETS; do
    for r in $(seq "$ROUNDS"); do
        k=$t/$r
        printf '%-13s %6s %11s %6s %7s %7s %7s\n' "$t" "$r" "${CPU[$k]}" "${OK[$k]}" "${HS[$k]}" \
            "${P50[$k]}" "${P99[$k]}"
    done
done
echo
declare -A MED
for t in $TARGETS; do
    for m in CPU OK HS P50 P99; do
        declare -n arr=$m
        vals=""
        for r in $(seq "$ROUNDS"); do vals="$vals ${arr[$t/$r]}"; done
        MED[$t/$m]=$(echo "$vals" | median)
    done
    printf '%-13s %6s %11s %6s %7s %7s %7s\n' "$t" median "${MED[$t/CPU]}" "${MED[$t/OK]}" \
        "${MED[$t/HS]}" "${MED[$t/P50]}" "${MED[$t/P99]}"
done
tcp50=$(echo "${TCP50[*]}" | median)
printf '%-13s %6s %11s %6s %7s %7s %7s\n' "tcp-direct" median - - - "$tcp50" -
echo
for peer in unbound stubby; do
    awk -v a="${MED[loophole/CPU]}" -v b="${MED[$peer/CPU]}" -v p=$peer \
        'BEGIN {if (b > 0) printf "loophole/%-8s cpu per miss %.2fx\n", p, a / b}'
done
awk -v a="${MED[loophole/P50]}" -v b="$tcp50" \
    'BEGIN {printf "loophole DoT p50 - direct TCP p50: %+.0f us (warm connection, one query at a time)\n", a - b}'

# loophole's memory per idle TLS connection: 32 forward zones, each naming the DoT server as
# its own upstream entry (its own pool, so its own connection); RSS after one warm query, then
# after one query per zone (all 32 connections open and idle, well within the 10 s idle close).
ZARGS=()
for i in $(seq 0 32); do ZARGS+=(--forward-zone "z$i.miss.bench=tls://$DOT#dot.bench"); done
start mem $MEM "$LH_ROOT/build-bench/loophole" --listen $MEM:53 "${LHARGS[@]}" \
    --upstream "tls://$DOT#dot.bench" --tls-ca "$W/ca.pem" "${ZARGS[@]}"
bench_answers $MEM a.z0.miss.bench
rss() { awk '/^VmRSS:/ {print $2}' "/proc/${PID[mem]}/status"; }
rss0=$(rss)
for i in $(seq 1 32); do bench_answers $MEM "a.z$i.miss.bench"; done
rss1=$(rss)
conns=$(ss -Htn state established "dst $DOT:853" | wc -l)
kill "${PID[mem]}"
awk -v a="$rss0" -v b="$rss1" -v c="$conns" \
    'BEGIN {printf "loophole memory per idle TLS connection: %.1f KiB (RSS %d -> %d KiB over %d open connections, 32 added)\n", (b - a) / 32, a, b, c}'

