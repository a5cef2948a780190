#!/usr/bin/env bash
# The control socket bounds its connections: a client that opens many and says nothing holds
# at most CTL_CONNS_MAX (32) of them, the oldest idle ones closed first, and each is closed
# after 10 s without its request. Meanwhile the daemon answers queries and `loophole stats`
# at once, and when the idle clients are gone it holds as many descriptors as before.
. "$(dirname "$0")/lib.sh"
CTL="$LH_TMP/control.sock"
lh_start --no-hosts
fds() { ls "/proc/$LH_PID/fd" | wc -l; }
before=$(fds)

# hold.py: opens N idle connections (half with a partial request line), then reports what
# the daemon still holds open after a `loophole stats` and a query, then waits (up to 45 s,
# 4.5x the idle timeout) until the daemon has closed every one.
cat >"$LH_TMP/hold.py" <<'PY'
import socket, subprocess, sys, time, dns.message, dns.query
loophole, ctl, addr, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
held = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(ctl)  # blocking: waits while the listen backlog is full
    if i % 2:
        s.sendall(b"sta")  # a request line that never ends
    held.append(s)
def still_open():
    k = 0
    for s in held:
        try:
            if s.recv(1, socket.MSG_DONTWAIT) == b"":
                continue  # closed by the daemon
        except BlockingIOError:
            pass
        except OSError:
            continue
        k += 1
    return k
r = subprocess.run([loophole, "stats", "--control-socket", ctl], capture_output=True, timeout=20)
print("stats_rc=%d" % r.returncode)
q = dns.query.udp(dns.message.make_query("localhost", "A"), addr, timeout=5)
print("dns=%s" % " ".join(rd.address for rr in q.answer for rd in rr))
print("open=%d" % still_open(), flush=True)
end = time.monotonic() + 45
while still_open() and time.monotonic() < end:
    time.sleep(0.2)
print("open_after_idle=%d" % still_open())
PY
out=$("$LH_PY" "$LH_TMP/hold.py" "$LOOPHOLE" "$CTL" "$LH_ADDR" 200 2>&1)
expect_match "200 idle control connections: stats still answers" "$out" "stats_rc=0"
expect_match "... and so do queries" "$out" "dns=127.0.0.1"
open=$(sed -n 's/^open=//p' <<<"$out")
check "... at most 32 of them held open (held: ${open:-none})" test "${open:-999}" -le 32
expect_match "... every one closed after the idle timeout" "$out" "open_after_idle=0"
_lh_fds_back() { [ "$(fds)" -le "$before" ]; }
check "... and the daemon's descriptors back to $before" lh_wait_for 30 _lh_fds_back
check "still serving" lh_alive
expect_eq "a request after all that" "$("$LOOPHOLE" stats --control-socket "$CTL" >/dev/null; echo $?)" "0"
lh_stop
expect_eq "stops with exit 0" "$?" "0"
lh_done
