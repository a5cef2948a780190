#!/usr/bin/env bash
# The memory of coalesced waiters is bounded in total, not only per question: with
# upstream-max-inflight 16 one loop keeps at most 256 clients waiting (8 per question it may
# have upstream, at least 256). 2 names x 200 identical queries to an upstream that never
# answers: 256 wait (and get SERVFAIL with EDE 22, No Reachable Authority, when the budget
# runs out), the other 144 get SERVFAIL at once (no EDE: nothing was asked), and the daemon
# says so.
. "$(dirname "$0")/lib.sh"
HOLE=$(lh_peer 1)
lh_fake "$HOLE" blackhole
lh_start --no-hosts --upstream "$HOLE" --upstream-max-inflight 16 --upstream-timeout 500 \
    --query-budget 1000 --no-serve-stale
got=$("$LH_PY" - "$LH_ADDR" "$LH_SRC/tests/e2e" <<'PY'
import socket, sys
import dns.message, dns.edns
sys.path.insert(0, sys.argv[2])
from dnsclient import *
addr = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(10)
qid = 0
for name in ("one.waiters.test", "two.waiters.test"):
    for i in range(200):
        s.sendto(query(name, qid=qid, edns=(1232, 0, False)), (addr, 53)); qid += 1
at_once = waited = other = 0
try:
    for i in range(400):
        m = dns.message.from_wire(s.recv(4096))
        ede = [o.code for o in m.options if isinstance(o, dns.edns.EDEOption)]
        if m.rcode() != 2: other += 1
        elif ede == [dns.edns.EDECode.NO_REACHABLE_AUTHORITY]: waited += 1
        elif not ede: at_once += 1
        else: other += 1
except Exception as e:
    print("error", e)
print(at_once, waited, other)
PY
)
expect_eq "400 identical queries: 144 SERVFAIL at once, 256 waited, nothing else" "$got" "144 256 0"
expect_match "the bound is logged" "$(cat "$LH_TMP/loophole.log")" "256 clients already wait for upstream answers"
expect_eq "two questions asked upstream, once each" "$(lh_fake_count "$HOLE" waiters.test)" "2"
check "still serving" lh_alive
lh_done
