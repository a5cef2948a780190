#!/usr/bin/env bash
# bench/reload-memory.sh [NAMES] [SHAPE]: steady RSS with a NAMES-name list, and the peak RSS
# during a SIGHUP reload of it (the kernel's high-water mark, reset after start-up with
# clear_refs). Run by hand as root; loopback only. Default 1,000,000 names. SHAPE "flat" (the
# default): every name in one zone (rN-HEX.reload.test); "parents": every name under a parent
# of its own (w.rN-HEX.reload.test: twice the tree nodes, and every other node a parent, the
# worst case for the build on disk's parent table).
set -euo pipefail
LH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$LH_ROOT/scripts/deps.sh"
N=${1:-1000000}
SHAPE=${2:-flat}
case $SHAPE in flat) PREFIX= ;; parents) PREFIX=w. ;; *) echo "SHAPE: flat or parents" >&2; exit 2 ;; esac
A=${LH_BENCH_ADDR:-127.0.90.30} # another address when someone else benchmarks too
lh_install_missing "${LH_BUILD_PKGS[@]}" dnsutils
lh_build "$LH_ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null
W=$(mktemp -d /tmp/lh-reload-XXXXXX); chmod 755 "$W"
trap 'kill $P 2>/dev/null; wait $P 2>/dev/null; rm -rf "$W"' EXIT
/usr/bin/python3 -c "
import random; r = random.Random(7)
with open('$W/list', 'w') as f:
    f.write(''.join('${PREFIX}r%d-%x.reload.test\n' % (i, r.getrandbits(32)) for i in range($N)))"
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
# A tree built on disk is brought in once the old one is freed (a line says so): after it.
if grep -q "built on disk" "$W/log"; then
    for _ in $(seq 600); do grep -q "new name tree is resident" "$W/log" && break; sleep 0.1; done
fi
peak=$(kb VmHWM); after=$(kb VmRSS)
awk -v n=$N -v s=$steady -v f=$first_peak -v p=$peak -v a=$after 'BEGIN {
    printf "names %d'"${PREFIX:+ (a parent each)}"': steady RSS %.1f MiB (start-up peak %.1f MiB); reload peak %.1f MiB = %.2fx steady; after reload %.1f MiB\n",
        n, s / 1024, f / 1024, p / 1024, p / s, a / 1024 }'
# A list built on disk is a mapped file (with --state-dir none an unnamed one, "(deleted)"):
# its pages come back into the RSS as lookups touch them. Say how big it is and how much of
# it is resident, and the anonymous memory, so that the RSS after the reload is read right.
awk '/^[0-9a-f]+-[0-9a-f]+ / { m = ($0 ~ /lists\.snapshot|\(deleted\)/) }
     m && $1 == "Size:" { size += $2 } m && $1 == "Rss:" { rss += $2 }
     END { if (size) printf "  after reload: the mapped list %.1f MiB, %.1f MiB of it resident\n", size / 1024, rss / 1024 }' \
    /proc/$P/smaps
echo "  after reload: anonymous $(kb RssAnon) kB, file-backed $(kb RssFile) kB"
