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
    time.sleep(0.1)
r = read_frame(s)
print("split frame:", "answered" if r and header(r)["id"] == 9 else "lost")
s.close()

# Half a length prefix, then silence: the server must hang up after the idle timeout.
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
s = tcp_connect(a)
s.sendall(frame(query("localhost", qid=11)))
r = read_frame(s)
print("after the cap:", "answered" if r else "lost")
PY
)
echo "$out"
expect_match "20 pipelined queries answered" "$out" "pipelined: 20 distinct answers of 20"
expect_match "answer after half-close" "$out" "half-close: answered"
expect_match "split frame answered" "$out" "split frame: answered"
expect_match "stalled half frame is closed within ~0.7 s" "$out" "stalled half frame closed: True after (0\.[5-9]|1\.[0-4])"
expect_match "trickling client is cut off" "$out" "trickle cut off: True"
expect_match "oversize frame closes" "$out" "oversize frame closed: True"
expect_match "one address over its share: its oldest connections are closed" "$out" "oldest over the share closed: 20 of 20"
expect_match "... and its newest are served" "$out" "newest within the share served: 5 of 5"
expect_match "service resumes after the cap" "$out" "after the cap: answered"
check "still serving" lh_alive
lh_done
