#!/usr/bin/env bash
# bench/reload-memory.sh [NAMES]: steady RSS with a NAMES-name list, and the peak RSS during a
# SIGHUP reload of it (the kernel's high-water mark, reset after start-up with clear_refs).
# Run by hand as root; loopback only. Default 1,000,000 names.
set -euo pipefail
LH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$LH_ROOT/scripts/deps.sh"
N=${1:-1000000}
A=${LH_BENCH_ADDR:-127.0.90.30} # another address when someone else benchmarks too
lh_install_missing "${LH_BUILD_PKGS[@]}" dnsutils
lh_build "$LH_ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null
W=$(mktemp -d /tmp/lh-reload-XXXXXX); chmod 755 "$W"
trap 'kill $P 2>/dev/null; wait $P 2>/dev/null; rm -rf "$W"' EXIT
/usr/bin/python3 -c "
import random; r = random.Random(7)
with open('$W/list', 'w') as f:
    f.write(''.join('r%d-%x.reload.test\n' % (i, r.getrandbits(32)) for i in range($N)))"
"$LH_ROOT/build-bench/loophole" --listen $A:53 --no-hosts --allow-root \
    --resolv-conf /dev/null --fallback-upstream 127.0.0.1:1 --blocklist "$W/list" \
    --control-socket none --state-dir none 2>"$W/log" &
P=$!
for _ in $(seq 6000); do dig @$A localhost +short +time=1 +tries=1 >/dev/null 2>&1 && break; sleep 0.1; done
kb() { awk -v k="$1:" '$1 == k {print $2}' /proc/$P/status; }
steady=$(kb VmRSS); first_peak=$(kb VmHWM)
echo 5 >/proc/$P/clear_refs          # reset the high-water mark to the current RSS
kill -HUP $P
for _ in $(seq 6000); do grep -q "reload: done" "$W/log" && break; sleep 0.1; done # 5M names: minutes on a loaded machine
peak=$(kb VmHWM); after=$(kb VmRSS)
awk -v n=$N -v s=$steady -v f=$first_peak -v p=$peak -v a=$after 'BEGIN {
    printf "names %d: steady RSS %.1f MiB (start-up peak %.1f MiB); reload peak %.1f MiB = %.2fx steady; after reload %.1f MiB\n",
        n, s / 1024, f / 1024, p / 1024, p / s, a / 1024 }'
