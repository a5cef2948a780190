#!/usr/bin/env bash
# TCP (RFC 7766): pipelining, half-close, stalled half frames, oversize frames, connection cap
# and per-client share (more in test_tcp_slots).
. "$(dirname "$0")/lib.sh"
lh_start --no-hosts --tcp-idle-timeout 700 --tcp-max-connections 20

out=$($LH_PY - "$LH_ADDR" "$LH_SRC/tests/e2e" <<'PY'
import socket, struct, sys, time
sys.path.insert(0, sys.argv[2])
from dnsclient import *
a = sys.argv[1]

# 20 queries in one write on one connection; every answer comes back with its own ID.
s = tcp_connect(a)
names = ["localhost", "x.onion", "example.com", "a.localhost"] * 5
s.sendall(b"".join(frame(query(n, qtype=1 if i % 2 else 28, qid=1000 + i)) for i, n in enumerate(names)))
ids = set()
for _ in names:
    r = read_frame(s)
    if r is None:
        break
    ids.add(header(r)["id"])
print("pipelined:", len(ids), "distinct answers of", len(names))
s.close()

# Half-close after sending: the answer still arrives.
s = tcp_connect(a)
s.sendall(frame(query("localhost", qid=7)))
s.shutdown(socket.SHUT_WR)
r = read_frame(s)
print("half-close:", "answered" if r and header(r)["id"] == 7 else "lost")
s.close()

# A frame split across writes, with pauses shorter than the idle timeout.
s = tcp_connect(a)
f = frame(query("localhost", qid=9))
for b in (f[:1], f[1:5], f[5:]):
    s.sendall(b)
    time.sleep(0.1)  # pauses well inside the 700 ms idle timeout: not a synchronisation
r = read_frame(s)
print("split frame:", "answered" if r and header(r)["id"] == 9 else "lost")
s.close()

# Half a length prefix, then silence: the server must hang up after the idle timeout (700 ms),
# not before; the upper bound (5 s) is over 3x the timer, so only a timer never armed fails it.
s = tcp_connect(a, timeout=5)
s.sendall(b"\x00")
t0 = time.time()
try:
    data = s.recv(10)
    closed = data == b""
except (ConnectionResetError, socket.timeout):
    closed = True
print("stalled half frame closed: %s after %.1f s" % (closed, time.time() - t0))
s.close()

# A client trickling one byte at a time cannot keep a partial query alive forever.
s = tcp_connect(a, timeout=5)
t0 = time.time()
big = frame(query("localhost") + b"\0" * 200)
closed = False
for b in big:
    try:
        s.sendall(bytes([b]))
    except (BrokenPipeError, ConnectionResetError):
        closed = True
        break
    time.sleep(0.05)
    if time.time() - t0 > 4:
        break
print("trickle cut off:", closed)
s.close()

# A frame longer than any query we accept closes the connection.
s = tcp_connect(a)
s.sendall(struct.pack("!H", 60000) + b"\0" * 100)
try:
    closed = s.recv(10) == b""
except ConnectionResetError:
    closed = True
print("oversize frame closed:", closed)
s.close()

# The cap and the per-client share: 25 connections from one address, with room for 20 in
# all. The address holds at most a quarter (5): each new connection closes its idlest one,
# so the 20 oldest see the server hang up and the 5 newest are served.
conns = [tcp_connect(a) for _ in range(25)]
closed = 0
for c in conns[:20]:
    c.settimeout(5)
    try:
        closed += c.recv(10) == b""
    except ConnectionResetError:
        closed += 1
    except socket.timeout:
        pass
print("oldest over the share closed:", closed, "of 20")
served = 0
for i, c in enumerate(conns[20:]):
    c.sendall(frame(query("localhost", qid=100 + i)))
    r = read_frame(c)
    served += bool(r) and header(r)["id"] == 100 + i
print("newest within the share served:", served, "of 5")
for c in conns:
    c.close()
# The daemon notices the closes as its loop gets to them: retry (bounded) until a slot is free.
r = None
for _ in range(50):
    try:
        s = tcp_connect(a)
        s.sendall(frame(query("localhost", qid=11)))
        r = read_frame(s)
    except OSError:
        r = None
    if r:
        break
    time.sleep(0.2)
print("after the cap:", "answered" if r else "lost")
PY
)
echo "$out"
expect_match "20 pipelined queries answered" "$out" "pipelined: 20 distinct answers of 20"
expect_match "answer after half-close" "$out" "half-close: answered"
expect_match "split frame answered" "$out" "split frame: answered"
expect_match "stalled half frame is closed after the 700 ms idle timeout (bounded at 5 s)" "$out" "stalled half frame closed: True after (0\.[6-9]|[1-4]\.[0-9])"
expect_match "... by the idle timer, which says so" "$(cat "$LH_TMP/loophole.log")" "tcp: closing a connection idle or stalled for 700 ms"
expect_match "trickling client is cut off" "$out" "trickle cut off: True"
expect_match "oversize frame closes" "$out" "oversize frame closed: True"
expect_match "one address over its share: its oldest connections are closed" "$out" "oldest over the share closed: 20 of 20"
expect_match "... and its newest are served" "$out" "newest within the share served: 5 of 5"
expect_match "service resumes after the cap" "$out" "after the cap: answered"
check "still serving" lh_alive
lh_stop

# Clients that pipeline two queries for forwarded names and close at once (FIN): the daemon
# answers the half-closed connection, and its second write meets a closed socket (EPIPE). That
# must not kill it (SIGPIPE). A slow fake upstream makes sure the answers come after the close.
UP=$(lh_peer 1)
lh_fake "$UP" slow 300
lh_start --no-hosts --upstream "$UP"
$LH_PY - "$LH_ADDR" "$LH_SRC/tests/e2e" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
from dnsclient import *
for i in range(5):
    s = tcp_connect(sys.argv[1])
    s.sendall(frame(query("a%d.gone.test" % i, qid=i)) + frame(query("b%d.gone.test" % i, qid=100 + i)))
    s.close()
PY
_asked() { [ "$(lh_fake_count "$UP" "gone.test")" -ge 10 ]; }
check "the upstream was asked all ten questions" lh_wait_for 30 _asked
# Wait until the daemon has handled the ten answers (or died trying): its counters say so.
_answered() { kill -0 "$LH_PID" 2>/dev/null || return 0; [ "$(lh_stat 's["outcomes"].get("forwarded", 0)' 2>/dev/null)" -ge 10 ] 2>/dev/null; }
lh_wait_for 30 _answered
check "still serving after clients closed before their answers" lh_alive
lh_done
