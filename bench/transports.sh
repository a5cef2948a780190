#!/usr/bin/env bash
# bench/transports.sh - what each upstream transport costs loophole: the same cache misses
# (unique names, each asked once) forwarded to one local Unbound over plain DNS, DNS over TLS
# and DNS over HTTPS, three loophole daemons side by side in one run. Run by hand (as root),
# never by the test suite:
#   bench/transports.sh [SECONDS] [ROUNDS]      defaults: 5 s per measurement, 3 rounds
# Unbound answers every name under miss.bench from local data (a redirect zone), so what is
# measured is loophole's side. Daemons pinned to CPU 0; Unbound and dnsperf to CPU 1. Per
# transport and round:
#   cpu-us/miss   loophole utime+stime per NOERROR answer at a fixed offered rate
#                 (LH_BENCH_RATE, default 4,000 q/s); ok% the share answered NOERROR
#   p50/p99-us    latency at that rate (dnsperf -v, every answer)
#   conns         connections loophole opened to Unbound (stats: plain DNS shows "-")
# Then the medians. Loopback only; LH_BENCH_NET picks the /24 (default 127.0.93).
set -euo pipefail
LH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$LH_ROOT/scripts/deps.sh"
. "$LH_ROOT/bench/lib.sh"
SECS=${1:-5}
ROUNDS=${2:-3}
RATE=${LH_BENCH_RATE:-4000}
NET=${LH_BENCH_NET:-127.0.93}
lh_install_missing "${LH_BUILD_PKGS[@]}" dnsperf unbound dnsutils openssl
bench_setup transports

UP=$NET.10
declare -A ADDR=([plain]=$NET.1 [dot]=$NET.2 [doh]=$NET.3)
cd "$W"
bench_tls_ca up.bench
cat >"$W/unbound.conf" <<U
server:
  interface: $UP@53
  interface: $UP@853
  interface: $UP@443
  tls-port: 853
  https-port: 443
  http-endpoint: "/dns-query"
  http-max-streams: 1000
  tls-service-key: "$W/server.key"
  tls-service-pem: "$W/server.pem"
  num-threads: 1
$(bench_unbound_daemon "$W")
  incoming-num-tcp: 100
  tcp-idle-timeout: 120000
  local-zone: "bench." nodefault
  local-zone: "miss.bench." redirect
  local-data: "miss.bench. 3600 IN A 192.0.2.1"
  module-config: "iterator"
$(bench_unbound_stub)
U
taskset -c 1 unbound -c "$W/unbound.conf" >"$W/unbound.log" 2>&1 &
PIDS+=($!)

bench_answers "$UP" warm.miss.bench

declare -A PID UPSTREAM=([plain]=$UP [dot]="tls://$UP#up.bench" [doh]="https://up.bench/dns-query@$UP")
for t in plain dot doh; do
    taskset -c 0 "$LH_ROOT/build-bench/loophole" --listen "${ADDR[$t]}:53" --no-hosts --allow-root \
        --no-default-blocklist --upstream "${UPSTREAM[$t]}" --tls-ca "$W/ca.pem" \
        --control-socket "$W/ctl-$t" --state-dir none >"$W/loophole-$t.log" 2>&1 &
    PID[$t]=$!
    PIDS+=($!)
    bench_answers "${ADDR[$t]}" "start-$t.miss.bench"
done

hz=$(getconf CLK_TCK)

declare -A CPU OK P50 P99 CONNS
measure() { # TRANSPORT ROUND
    local t=$1 key="$1/$2" t0 t1
    bench_names u $((RATE * SECS + 1000))
    t0=$(bench_cpu_ticks "${PID[$t]}")
    taskset -c 1 dnsperf -s "${ADDR[$t]}" -d "$Q" -l "$SECS" -Q "$RATE" -c 4 -v >"$W/perf.out" 2>&1 || true
    t1=$(bench_cpu_ticks "${PID[$t]}")
    local done sent
    done=$(awk '/Response codes:/ {for (i = 3; i < NF; i++) if ($i == "NOERROR") print $(i + 1)}' "$W/perf.out")
    sent=$(awk '/Queries sent:/ {print $3}' "$W/perf.out")
    done=${done:-0}
    OK[$key]=$(awk -v a="$done" -v b="$sent" 'BEGIN {printf "%.1f", b ? 100 * a / b : 0}')
    CPU[$key]=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v q="$done" 'BEGIN {printf "%.2f", q ? t / hz * 1e6 / q : 0}')
    awk '/^> NOERROR / {print $NF * 1e6}' "$W/perf.out" | sort -n >"$W/lat"
    P50[$key]=$(awk '{v[NR] = $1} END {if (NR) printf "%.0f", v[int(NR * 0.50)]; else print "-"}' "$W/lat")
    P99[$key]=$(awk '{v[NR] = $1} END {if (NR) printf "%.0f", v[int(NR * 0.99)]; else print "-"}' "$W/lat")
    CONNS[$key]=$("$LH_ROOT/build-bench/loophole" stats --json --control-socket "$W/ctl-$t" |
        /usr/bin/python3 -c 'import json,sys; u=json.load(sys.stdin)["upstreams"][0]; print(u["tls"]["connections"] if "tls" in u else "-")')
    rm -f "$Q"
}

for r in $(seq "$ROUNDS"); do
    echo "== round $r ($SECS s each)" >&2
    for t in plain dot doh; do measure $t $r; done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
printf '\n%-9s %6s %11s %6s %8s %8s %6s\n' transport round cpu-us/miss ok% p50-us p99-us conns
for t in plain dot doh; do
    for r in $(seq "$ROUNDS"); do
        k=$t/$r
        printf '%-9s %6s %11s %6s %8s %8s %6s\n' $t $r "${CPU[$k]}" "${OK[$k]}" "${P50[$k]}" "${P99[$k]}" "${CONNS[$k]}"
    done
done
echo
for t in plain dot doh; do
    c=$(for r in $(seq "$ROUNDS"); do echo -n "${CPU[$t/$r]} "; done | median)
    p=$(for r in $(seq "$ROUNDS"); do echo -n "${P50[$t/$r]} "; done | median)
    printf '%-9s median cpu-us/miss %s, p50-us %s\n' $t "$c" "$p"
    [ "$t" = plain ] && base=$c
    awk -v a="$c" -v b="$base" -v t=$t 'BEGIN {if (b > 0) printf "%-9s cpu per miss %.2fx plain\n", t, a / b}'
done
