#!/usr/bin/env bash
# bench/soak.sh - a bounded soak of one loophole, run by hand (as root), never by the suite:
#   bench/soak.sh [QUERIES] [NAMES]        defaults: 10000000 queries, a 1000000-name list
# Sends QUERIES mixed queries with dnsperf at a fixed rate (local, blocked, cached and
# forwarded names), malformed datagrams beside them (bounded), and reloads the whole list
# through the control socket every few seconds meanwhile. Passes when no query is lost, every
# reload succeeds, RSS after the run is within 5% of RSS after warm-up, and the daemon still
# answers and stops cleanly. Everything runs on loopback.
set -euo pipefail
LH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$LH_ROOT/scripts/deps.sh"
. "$LH_ROOT/bench/lib.sh"
Q=${1:-10000000}
N=${2:-1000000}
RATE=${LH_SOAK_RATE:-40000}
RELOAD_EVERY=${LH_SOAK_RELOAD_S:-5}
lh_install_missing "${LH_BUILD_PKGS[@]}" dnsperf unbound dnsutils python3-dnspython
W=$(mktemp -d /tmp/lh-soak-XXXXXX)
chmod 755 "$W"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT

echo "== build (Release)" >&2
lh_build "$LH_ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null
LOOPHOLE="$LH_ROOT/build-bench/loophole"

echo "== inputs: $N names, a mixed query file" >&2
/usr/bin/python3 - "$W" "$N" <<'PY'
import random, sys
w, n = sys.argv[1], int(sys.argv[2])
r = random.Random(11)
names = ["s%d-%x.soak-list.test" % (i, r.getrandbits(32)) for i in range(n)]
open(w + "/list.domains", "w").write("\n".join(names) + "\n")
with open(w + "/q-mix", "w") as f:       # 100,000 lines; dnsperf loops over it
    for i in range(100000):
        k = i % 20
        if k < 5:    f.write("localhost %s\n" % ("A" if k % 2 else "AAAA"))
        elif k < 12: f.write("%s A\n" % r.choice(names))                  # blocked
        elif k < 17: f.write("h%d.fwd.soak A\n" % r.randrange(200))       # cached
        else:        f.write("u%d.fwd.soak A\n" % i)                      # forwarded (NXDOMAIN)
with open(w + "/fwd.zone", "w") as f:
    f.write("$ORIGIN fwd.soak.\n$TTL 86400\n@ SOA ns h 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n")
    for i in range(200):
        f.write("h%d A 192.0.2.%d\n" % (i, i % 250 + 1))
PY

AUTH=127.0.91.10 LH=127.0.91.1
bench_auth_conf $AUTH soak fwd.soak "$W/fwd.zone" "$W" >"$W/auth.conf"
taskset -c 1 unbound -c "$W/auth.conf" & PIDS+=($!)
taskset -c 0 "$LOOPHOLE" --listen $LH:53 --no-hosts --allow-root --no-default-blocklist \
    --blocklist "$W/list.domains" --upstream $AUTH --control-socket "$W/control.sock" \
    --log-level warn >"$W/loophole.log" 2>&1 &
LH_PID=$!; PIDS+=($LH_PID)
for _ in $(seq 300); do dig @$LH localhost +time=1 +tries=1 >/dev/null 2>&1 && break; sleep 0.1; done
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

echo "== warm-up: one pass over the query file" >&2
taskset -c 1 dnsperf -s $LH -d "$W/q-mix" -n 1 -Q "$RATE" -c 8 >/dev/null 2>&1
rss0=$(rss_kib $LH_PID)

# Malformed datagrams beside the load: random bytes, truncated headers, compression loops.
/usr/bin/python3 - $LH "$W/malformed.count" <<'PY' &
import os, random, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setblocking(False)
r = random.Random(5); sent = 0; end = time.time() + 3600
loop = bytes.fromhex("abcd01000001000000000000c00c00010001")  # name pointing at itself
while time.time() < end and not os.path.exists(sys.argv[2] + ".stop"):
    kind = sent % 3
    pkt = loop if kind == 0 else os.urandom(r.randrange(1, 600)) if kind == 1 else os.urandom(r.randrange(1, 12))
    try: s.sendto(pkt, (sys.argv[1], 53)); sent += 1
    except BlockingIOError: pass
    if sent % 100 == 0: time.sleep(0.05)     # about 2,000 a second, bounded by time and count
    if sent >= 2000000: break
open(sys.argv[2], "w").write(str(sent))
PY
MAL_PID=$!; PIDS+=($MAL_PID)

( ok=0 failed=0
  while [ ! -e "$W/reload.stop" ]; do
      sleep "$RELOAD_EVERY"
      if "$LOOPHOLE" reload --control-socket "$W/control.sock" >/dev/null 2>&1; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
  done
  echo "$ok $failed" >"$W/reloads" ) &
REL_PID=$!

passes=$(( (Q + 99999) / 100000 ))
echo "== soak: $((passes * 100000)) queries at $RATE q/s, a reload every ${RELOAD_EVERY}s" >&2
t0=$(date +%s)
out=$(taskset -c 1 dnsperf -s $LH -d "$W/q-mix" -n "$passes" -Q "$RATE" -c 8 -t 5 2>&1)
t1=$(date +%s)
touch "$W/reload.stop" "$W/malformed.count.stop"
wait $REL_PID; wait $MAL_PID || true
rss1=$(rss_kib $LH_PID)
sent=$(echo "$out" | awk '/Queries sent:/ {print $3}')
done_q=$(echo "$out" | awk '/Queries completed:/ {print $3}')
lost=$(echo "$out" | awk '/Queries lost:/ {print $3}')
read -r rel_ok rel_failed <"$W/reloads"
stats=$("$LOOPHOLE" stats --json --control-socket "$W/control.sock")
alive=$(dig @$LH localhost +short +time=2 +tries=1)
kill -TERM $LH_PID; set +e; wait $LH_PID; code=$?; set -e
drift=$(awk -v a="$rss0" -v b="$rss1" 'BEGIN {printf "%.2f", (b - a) * 100 / a}')
errors=$(grep -ciE "error|sanitizer" "$W/loophole.log" || true)

cat <<R
soak: $sent queries sent, $done_q answered, $lost lost in $((t1 - t0)) s ($RATE q/s offered)
malformed datagrams sent beside them: $(cat "$W/malformed.count")
reloads of the $N-name list during the run: $rel_ok ok, $rel_failed failed
RSS after warm-up $((rss0 / 1024)) MiB, after the run $((rss1 / 1024)) MiB: drift $drift%
outcomes: $(echo "$stats" | /usr/bin/python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["outcomes"], "dropped", s["queries"]["dropped"])')
still answering localhost: ${alive:-no}; exit code on SIGTERM: $code; error lines in its log: $errors
R
pass=1
[ "$lost" = 0 ] || pass=0
[ "$rel_failed" = 0 ] && [ "$rel_ok" -gt 0 ] || pass=0
awk -v d="$drift" 'BEGIN {exit !(d < 5 && d > -5)}' || pass=0
[ "$alive" = 127.0.0.1 ] && [ "$code" = 0 ] || pass=0
[ "$pass" = 1 ] && echo "soak: PASS" || { echo "soak: FAIL"; tail -20 "$W/loophole.log"; exit 1; }
