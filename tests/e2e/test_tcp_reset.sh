#!/usr/bin/env bash
# A TCP client that goes away while its forwarded questions still wait for the upstream:
# it sends three, half-closes (the daemon stops reading and keeps the connection for the
# answers), then resets the connection. The answers' write then fails with EPIPE, which the
# kernel also raises as SIGPIPE: the daemon must not die of it. A client that only resets
# (without the half-close) is covered too.
. "$(dirname "$0")/lib.sh"
SLOW=$(lh_peer 1)
lh_fake "$SLOW" slow 2000 # longer than the client needs to reset once the questions are out
lh_start --no-hosts --upstream "$SLOW" --upstream-timeout 8000 --query-budget 10000

for mode in halfclose reset; do
    out=$($LH_PY - "$LH_ADDR" "$LH_SRC/tests/e2e" "$LH_TMP/fake-$SLOW.log" "$mode" <<'PY'
import socket, struct, sys, time
sys.path.insert(0, sys.argv[2])
from dnsclient import *
a, log, mode = sys.argv[1], sys.argv[3], sys.argv[4]
names = ["%s%d.gone.test" % (mode, i) for i in range(3)]
s = tcp_connect(a)
s.sendall(b"".join(frame(query(n, qid=100 + i)) for i, n in enumerate(names)))
if mode == "halfclose":
    s.shutdown(socket.SHUT_WR)
# Reset only once the daemon has asked the upstream (the fake logs each question on arrival
# and answers 2 s later): the answers are then written to a connection that is gone.
deadline = time.time() + 10
while time.time() < deadline:
    seen = open(log).read().lower()
    if all(n in seen for n in names):
        break
    time.sleep(0.05)
else:
    print("questions never reached the upstream")
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
print("reset")
PY
)
    expect_eq "$mode: questions sent, connection reset" "$out" "reset"
    # Each name again over UDP: it joins the pending question or comes from the cache, so it
    # is answered only once the upstream's answer has been handed to every waiter - the
    # reset connection included.
    for i in 0 1 2; do
        expect_eq "$mode: $mode$i answered to a second client" "$(d "$mode$i.gone.test" +time=10 +short)" "192.0.2.1"
    done
    check "$mode: still serving after writing to the reset connection" lh_alive
done
lh_done
