#!/usr/bin/env bash
# 10,000 random and mutated packets over UDP (and a few hundred over TCP); the daemon must
# neither crash nor stop answering. Deterministic seed: a failure reproduces.
. "$(dirname "$0")/lib.sh"
lh_start --no-hosts

out=$($LH_PY - "$LH_ADDR" "$LH_SRC/tests/e2e" <<'PY'
import random, socket, struct, sys, time
sys.path.insert(0, sys.argv[2])
from dnsclient import *
a = sys.argv[1]
rng = random.Random(20261129)
seeds = [query("localhost"), query("x.onion", 28, edns=(1232, 0, True)),
         query("1.0.0.127.in-addr.arpa", 12), query("a.b.c.example.com", 65, edns=(4096, 0, False))]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
sent = answers = 0
t_end = time.time() + 60
for i in range(10000):
    if time.time() > t_end:
        break
    kind = i % 4
    if kind == 0:
        p = rng.randbytes(rng.randint(0, 600))
    else:
        p = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            op = rng.random()
            pos = rng.randrange(len(p))
            if op < 0.5:
                p[pos] = rng.randrange(256)
            elif op < 0.7:
                p = p[:pos]
            elif op < 0.85:
                p[pos:pos] = rng.randbytes(rng.randint(1, 20))
            else:
                p[pos:pos + 2] = b"\xc0" + bytes([rng.randrange(256)])  # pointer junk
            if not p:
                p = bytearray(b"\0")
        p = bytes(p)
        if rng.random() < 0.3:
            p = p[:2] + bytes([p[2] & 0x7f]) + p[3:] if len(p) > 3 else p  # keep QR clear
    s.sendto(p, (a, 53))
    sent += 1
    if i % 50 == 0:  # drain answers so the socket buffer never fills
        time.sleep(0.002)
    try:
        while True:
            s.recv(65535)
            answers += 1
    except BlockingIOError:
        pass
print("udp sent", sent, "answers", answers)

# TCP: random frames, each on a fresh connection.
for i in range(300):
    try:
        c = socket.create_connection((a, 53), timeout=2)
        body = rng.randbytes(rng.randint(0, 300))
        c.sendall(struct.pack("!H", len(body)) + body)
        c.settimeout(0.2)
        try:
            c.recv(65535)
        except (socket.timeout, ConnectionResetError):
            pass
        c.close()
    except OSError as e:
        print("tcp error", e)
        break
print("tcp done")
PY
)
echo "$out"
expect_match "10,000 packets sent" "$out" "udp sent 10000"
expect_match "tcp frames sent" "$out" "tcp done"
check "the daemon is alive and answers" lh_alive
lh_stop
expect_eq "and exits cleanly" "$?" "0"
if grep -qiE "sanitizer|runtime error" "$LH_TMP/loophole.log"; then
    not_ok "sanitizer findings in the log"; cat "$LH_TMP/loophole.log"
else ok "no sanitizer findings"; fi
lh_done
