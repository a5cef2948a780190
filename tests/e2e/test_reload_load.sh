#!/usr/bin/env bash
# SIGHUP reloads of a 300,000-name list while queries stream in: no query is lost, and every
# answer is right before, during and after each swap.
. "$(dirname "$0")/lib.sh"
$LH_PY -c "
with open('$LH_TMP/big.list', 'w') as f:
    for i in range(300000):
        f.write('n%d.big-list.test\n' % i)
"
lh_start --no-hosts --blocklist "$LH_TMP/big.list"

$LH_PY - "$LH_ADDR" "$LH_SRC/tests/e2e" "$LH_PID" >"$LH_TMP/load.out" <<'PY' &
import os, signal, socket, struct, sys, time
sys.path.insert(0, sys.argv[2])
from dnsclient import *
addr, pid = sys.argv[1], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2.0)
sent = answered = wrong = 0
reloads = 0
t0 = time.time()
qid = 0
while time.time() - t0 < 8 and sent < 40000:
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
    if sent % 4000 == 0 and reloads < 6:
        os.kill(pid, signal.SIGHUP)
        reloads += 1
print("sent", sent, "answered", answered, "wrong", wrong, "reloads", reloads)
PY
load=$!
wait $load
cat "$LH_TMP/load.out"
out=$(cat "$LH_TMP/load.out")
sent=$(echo "$out" | awk '{print $2}')
expect_match "load ran with 6 reloads" "$out" "reloads 6"
check "at least 10,000 queries sent ($sent)" test "${sent:-0}" -ge 10000
expect_eq "every query answered" "$(echo "$out" | awk '{print $4}')" "$sent"
expect_eq "every answer right" "$(echo "$out" | awk '{print $6}')" "0"
for _ in $(seq 100); do [ "$(grep -c 'reload: done' "$LH_TMP/loophole.log")" -ge 1 ] && break; sleep 0.1; done
check "reloads completed ($(grep -c 'reload: done' "$LH_TMP/loophole.log"))" \
    test "$(grep -c 'reload: done' "$LH_TMP/loophole.log")" -ge 1
check "still serving" lh_alive
lh_done
