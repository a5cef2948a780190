#!/usr/bin/env bash
# Every upstream failing at once, the way an offline laptop or a file-descriptor flood fails:
# c-ares 1.18 calls the answer callback from inside ares_send when socket() or connect() fails
# immediately (ENETUNREACH, EMFILE). The client must get SERVFAIL, the daemon keeps serving,
# and (in the ASan build) no sanitizer report: a use-after-free here once went unnoticed
# because the client got its SERVFAIL before the freed request was written to.
#  1. a network namespace with only lo up: an IPv4 upstream, an IPv6 upstream, both; UDP and
#     TCP clients, one name and a burst of distinct names;
#  2. EMFILE: the daemon's RLIMIT_NOFILE lowered under a burst of distinct names to an
#     upstream that never answers (every try holds a socket).
. "$(dirname "$0")/lib.sh"
if ! ip netns add "lh-probe-$$" 2>/dev/null; then echo "SKIP: cannot create network namespaces"; exit 77; fi
ip netns del "lh-probe-$$"
NS="lh-offline-$$"
trap 'lh_cleanup; ip netns del "$NS" 2>/dev/null' EXIT
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
in_ns() { ip netns exec "$NS" "$@"; }

# offline NAME ARGS...: a daemon in the namespace on 127.0.0.53 with upstreams ARGS; the
# checks of one configuration.
offline() {
    local what=$1; shift
    ip netns exec "$NS" "$LOOPHOLE" serve --listen 127.0.0.53:53 --no-hosts --log-level debug \
        --resolv-conf /dev/null --control-socket "$LH_TMP/control.sock" --upstream-timeout 500 \
        --query-budget 1500 "$@" >>"$LH_TMP/loophole.log" 2>&1 &
    LH_PID=$!; LH_PIDS+=("$LH_PID")
    for _ in $(seq 50); do
        in_ns dig @127.0.0.53 localhost +short +time=1 +tries=1 2>/dev/null | grep -q 127.0.0.1 && break
        sleep 0.1
    done
    local st
    st=$(in_ns dig @127.0.0.53 example.com +time=3 +tries=1 +noall +comments | sed -n 's/.*status: \([A-Z]*\).*/\1/p')
    expect_eq "$what: UDP client gets SERVFAIL" "$st" "SERVFAIL"
    st=$(in_ns dig @127.0.0.53 example.org +tcp +time=3 +tries=1 +noall +comments | sed -n 's/.*status: \([A-Z]*\).*/\1/p')
    expect_eq "$what: TCP client gets SERVFAIL" "$st" "SERVFAIL"
    # A burst of distinct names over UDP and TCP at once: every one answered SERVFAIL.
    local got
    got=$(in_ns "$LH_PY" - 127.0.0.53 "$LH_SRC/tests/e2e" <<'PY'
import socket, sys, time
sys.path.insert(0, sys.argv[2])
from dnsclient import *
addr = sys.argv[1]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
t = tcp_connect(addr)
n = 200
for i in range(n):
    u.sendto(query("b%d.burst.example" % i, qid=i), (addr, 53))
    t.sendall(frame(query("t%d.burst.example" % i, qid=i)))
servfail = 0
try:
    for i in range(n):
        if header(u.recv(4096))["rcode"] == 2: servfail += 1
    for i in range(n):
        if header(read_frame(t))["rcode"] == 2: servfail += 1
except Exception as e:
    print("error", e)
print(servfail)
PY
)
    expect_eq "$what: a burst of 200 UDP and 200 TCP names, all SERVFAIL" "$got" "400"
    check "$what: still serving" bash -c "kill -0 $LH_PID && ip netns exec $NS dig @127.0.0.53 localhost +short +time=2 +tries=1 | grep -qx 127.0.0.1"
    kill -TERM "$LH_PID"; wait "$LH_PID"
    expect_eq "$what: clean exit" "$?" "0"
}
offline "no route, IPv4 upstream" --upstream 192.0.2.1
offline "no route, IPv6 upstream" --upstream 2001:db8::1
offline "no route, two upstreams (IPv4 and IPv6)" --upstream 192.0.2.1 --upstream 2001:db8::1
offline "no route, two IPv4 upstreams" --upstream 192.0.2.1 --upstream 198.51.100.1
expect_match "the unreachable network is what failed" "$(cat "$LH_TMP/loophole.log")" "upstream 192\.0\.2\.1:53: .*(unreachable|refused|Could not contact)"

# 2. EMFILE: a blackhole upstream keeps every try's socket open for 1 s; the daemon may open
# only a few dozen files.
HOLE=$(lh_peer 1)
lh_fake "$HOLE" blackhole
# The limit is set before exec (lowering one's own limit needs no privilege; changing another
# process's limit after it dropped root does).
printf '#!/bin/sh\nulimit -n 64 && exec "%s" "$@"\n' "$LOOPHOLE" >"$LH_TMP/lowfd.sh"
chmod +x "$LH_TMP/lowfd.sh"
LOOPHOLE="$LH_TMP/lowfd.sh" lh_start --no-hosts --upstream "$HOLE" --upstream "$HOLE:5300" \
    --upstream-timeout 1000 --query-budget 2000 --cache-size 0
check "EMFILE: the daemon runs with 64 descriptors" grep -Eq "^Max open files +64 " "/proc/$LH_PID/limits"
got=$("$LH_PY" - "$LH_ADDR" "$LH_SRC/tests/e2e" <<'PY'
import socket, sys
sys.path.insert(0, sys.argv[2])
from dnsclient import *
addr = sys.argv[1]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(8)
n = 300
for i in range(n):
    u.sendto(query("e%d.emfile.example" % i, qid=i), (addr, 53))
servfail = 0
try:
    for i in range(n):
        if header(u.recv(4096))["rcode"] == 2: servfail += 1
except Exception as e:
    print("error", e)
print(servfail)
PY
)
expect_eq "EMFILE: 300 distinct names, all SERVFAIL" "$got" "300"
# The fake sees one question per try that got a socket: far fewer than the names asked.
n=$(lh_fake_count "$HOLE" emfile.example)
check "EMFILE: most tries found no descriptor ($n of 300 names reached the upstream)" test "$n" -lt 150
check "EMFILE: still serving" lh_alive
lh_done
