#!/usr/bin/env bash
# Reloads of a 300,000-name list while queries stream in: the load runs for a time, not a count,
# and goes on until at least three reloads have completed *while it runs* (each started with
# SIGHUP; its result polled from the control socket's reload counters, which change only when
# the swap is done or has failed); no query is lost, and every answer is right before, during
# and after each swap. Bounded: at most 240 s (an ASan reload on a busy machine takes ~30 s).
. "$(dirname "$0")/lib.sh"
$LH_PY -c "
with open('$LH_TMP/big.list', 'w') as f:
    for i in range(300000):
        f.write('n%d.big-list.test\n' % i)
"
lh_start --no-hosts --blocklist "$LH_TMP/big.list"

$LH_PY - "$LH_ADDR" "$LH_SRC/tests/e2e" "$LOOPHOLE" "$LH_TMP/control.sock" "$LH_PID" >"$LH_TMP/load.out" <<'PY'
import json, os, signal, socket, subprocess, sys, threading, time
sys.path.insert(0, sys.argv[2])
from dnsclient import *
addr, loophole, ctl, pid = sys.argv[1], sys.argv[3], sys.argv[4], int(sys.argv[5])
WANT_SWAPS, MIN_S, MAX_S = 3, 3.0, 240.0
swaps = []      # (start, end, reply) of each completed reload, in load-loop time
failed = []
stop = threading.Event()
t0 = time.time()

def reloads():
    r = subprocess.run([loophole, "stats", "--json", "--control-socket", ctl], capture_output=True,
                       text=True, timeout=60)
    j = json.loads(r.stdout)["reloads"]
    return j["ok"], j["failed"]

def reloader():
    # One reload after another: SIGHUP, then poll the reload counters until this one is done.
    ok, bad = reloads()
    while not stop.is_set() and len(swaps) < WANT_SWAPS:
        start = time.time() - t0
        os.kill(pid, signal.SIGHUP)
        while not stop.is_set():
            time.sleep(0.2)
            ok2, bad2 = reloads()
            if ok2 > ok or bad2 > bad:
                break
        if stop.is_set():
            return
        (swaps if bad2 == bad else failed).append((start, time.time() - t0, "ok" if bad2 == bad else "failed"))
        ok, bad = ok2, bad2
        if failed:
            return

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2.0)
sent = answered = wrong = 0
qid = 0
last_query = 0.0
th = threading.Thread(target=reloader, daemon=True)
th.start()
# The loop polls the reloads' results: it stops only once three swaps completed while it ran.
while True:
    now = time.time() - t0
    if now > MAX_S or failed or (len(swaps) >= WANT_SWAPS and now >= MIN_S):
        break
    batch = {}
    for _ in range(16):
        qid = (qid + 1) & 0xFFFF
        n = "n%d.big-list.test" % (qid * 7 % 300000) if qid % 2 else "localhost"
        batch[qid] = n
        s.sendto(query(n, qid=qid), (addr, 53))
        sent += 1
    while batch:
        try:
            r = s.recv(4096)
        except socket.timeout:
            break
        h = header(r)
        if h["id"] in batch:
            del batch[h["id"]]
            answered += 1
            if h["rcode"] != 0 or h["an"] != 1 or r[-4:] != bytes([127, 0, 0, 1]):
                wrong += 1
    last_query = time.time() - t0
stop.set()
# A swap counts only if queries were still being sent after it completed.
during = sum(1 for (_, end, _) in swaps if end < last_query)
print("sent", sent, "answered", answered, "wrong", wrong, "swaps", len(swaps), "during", during,
      "failed", len(failed), "seconds %.1f" % last_query)
for sw in swaps + failed:
    print("reload %.2f-%.2f s: %s" % sw)
PY
cat "$LH_TMP/load.out"
out=$(head -1 "$LH_TMP/load.out")
field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' <<<"$out"; }
sent=$(field sent)
check "at least 3 reloads completed while queries flowed ($(field during))" test "$(field during)" -ge 3
expect_eq "no reload failed" "$(field failed)" "0"
expect_eq "each swap loaded the whole list" "$(grep -c 'reload: done (2 list(s) with 300061 rules' "$LH_TMP/loophole.log")" "$(field swaps)"
check "queries were sent ($sent)" test "${sent:-0}" -ge 1000
expect_eq "every query answered" "$(field answered)" "$sent"
expect_eq "every answer right" "$(field wrong)" "0"
expect_eq "the daemon logged each swap" "$(lh_log_count 'reload: done')" "$(field swaps)"
check "still serving" lh_alive
lh_done
