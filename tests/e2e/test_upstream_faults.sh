#!/usr/bin/env bash
# Upstreams that fail or lie: each gets its own forward zone on one daemon, so the whole matrix
# runs at once. For each: SERVFAIL within the budget (or the right answer), local and blocked
# names still answered meanwhile, and failover to a healthy second upstream. Then source-port
# spread, coalescing, the in-flight bound, serve-stale and a real forwarding loop.
. "$(dirname "$0")/lib.sh"
modes=(dead blackhole slow servfail garbage wrongid wrongq lowercase wrongsrc tc)
HEALTHY=$(lh_peer 20)
lh_fake "$HEALTHY" answer
zones=()
i=1
declare -A ADDR_OF
for m in "${modes[@]}"; do
    a=$(lh_peer $i); ADDR_OF[$m]=$a; i=$((i + 1))
    case $m in
        dead) ;;                      # nothing listens: connection refused
        slow) lh_fake "$a" slow 800 ;; # over the 500 ms try, under the 1500 ms budget
        *) lh_fake "$a" "$m" ;;
    esac
    zones+=(--forward-zone "$m.test=$a" --forward-zone "fo-$m.test=$a,$HEALTHY")
done
# Two that must work: slow but under the 500 ms try, and answers too big for UDP (TC: c-ares
# retries over TCP).
SLOWOK=$(lh_peer 25) BIG=$(lh_peer 26)
lh_fake "$SLOWOK" slow 300
lh_fake "$BIG" big
zones+=(--forward-zone "slowok.test=$SLOWOK" --forward-zone "big.test=$BIG")
echo '||blocked.test^' >"$LH_TMP/block.list"
lh_start --no-hosts --upstream "$HEALTHY" --upstream-timeout 500 --query-budget 1500 \
    --blocklist "$LH_TMP/block.list" --no-serve-stale --query-log "$LH_TMP/faults.log" "${zones[@]}"

# All faulty zones at once. The time each question took is the daemon's own, from its query
# log (latency_us: from receipt to handing the answer to the kernel), bounded at 3x the 1.5 s
# budget the daemon arms: more shows a budget not kept. It used to be measured around each
# dig, which counts the start of ten dig processes at once on a loaded machine too (and flaked
# once under ASan); the client's own wait (+time=20) only bounds the test.
# logged_answer LOG NAME [CLIENT]: "outcome rcode milliseconds" of NAME's first line in a query log
logged_answer() {
    "$LH_PY" - "$@" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    q = json.loads(line)
    if q.get("name", "").lower() == sys.argv[2] and (len(sys.argv) < 4 or q.get("client") == sys.argv[3]):
        print(q["outcome"], q["rcode"], q["latency_us"] // 1000)
        break
else:
    print("not-logged")
PY
}
clients=()
for m in "${modes[@]}"; do
    ( dstatus "q.$m.test" +time=20 >"$LH_TMP/r-$m" ) &
    clients+=($!)
done
wait "${clients[@]}"
_logged() { [ "$(grep -c '"name":"q\.[a-z]*\.test"' "$LH_TMP/faults.log" 2>/dev/null)" -ge "${#modes[@]}" ]; }
lh_wait_for 30 _logged
for m in "${modes[@]}"; do
    expect_eq "$m: SERVFAIL" "$(cat "$LH_TMP/r-$m")" "SERVFAIL"
    read -r outcome rcode ms <<<"$(logged_answer "$LH_TMP/faults.log" "q.$m.test")"
    expect_eq "$m: logged as failed, SERVFAIL" "$outcome $rcode" "failed SERVFAIL"
    check "$m: within 3x the 1.5 s budget by the daemon's clock (${ms:-?} ms)" test "${ms:-99999}" -lt 4500
done
# Failover: the faulty server first, the healthy one second.
for m in "${modes[@]}"; do
    expect_eq "$m: fails over to the healthy upstream" "$(d "q.fo-$m.test" +short +time=5)" "192.0.2.1"
done
expect_eq "slow, just under the try timeout (300 of 500 ms): answered" "$(d q.slowok.test +short +time=5)" "192.0.2.1"
expect_eq "an upstream answer too big for UDP: fetched over TCP, all 40 records" "$(d q.big.test TXT +tcp +short | wc -l)" "40"
expect_match "... and TC=1 for a UDP client that allows 1232 bytes" "$(d q.big.test TXT +bufsize=1232 +ignore +noall +comments)" "flags: qr.* tc"
expect_match "a 0x20 mismatch is reported as possible spoofing" "$(cat "$LH_TMP/loophole.log")" "does not echo the question as sent \(0x20 case\)"
expect_eq "the blackhole saw the query (it was asked)" "$(lh_fake_count "${ADDR_OF[blackhole]}" q.blackhole.test)" "1"
expect_match "a server failing repeatedly is tried last" "$( for k in 1 2 3; do d "r$k.fo-blackhole.test" +short >/dev/null; done; cat "$LH_TMP/loophole.log")" "upstream ${ADDR_OF[blackhole]}:53: 3 failures in a row"
expect_answer "then the healthy server answers first" "192.0.2.1" r9.fo-blackhole.test
expect_eq "... and the failing server is not asked at all" "$(lh_fake_count "${ADDR_OF[blackhole]}" r9.fo-blackhole.test)" "0"
check "still serving" lh_alive
lh_stop

# Local and blocked answers do not wait for upstreams: with questions hanging at a blackhole
# (a 30 s budget, so they stay pending however slow the machine), localhost and a blocked name
# are answered, and the hanging clients are still waiting when they are.
HANG=$(lh_peer 27)
lh_fake "$HANG" blackhole
lh_start --no-hosts --upstream "$HANG" --upstream-timeout 30000 --query-budget 30000 \
    --blocklist "$LH_TMP/block.list" --no-serve-stale
hang=()
for i in 1 2 3 4 5; do ( dstatus "h$i.hang.test" +time=40 >"$LH_TMP/hang-$i" ) & hang+=($!); done
_asked() { [ "$(lh_fake_count "$HANG" "hang.test")" -ge 5 ]; }
check "five questions are in flight at the blackhole" lh_wait_for 30 _asked
expect_answer "localhost answered while upstream questions hang" "127.0.0.1" localhost
expect_answer "a blocked name answered while upstream questions hang" "127.0.0.1" x.blocked.test
expect_eq "... and the hanging clients are still waiting" "$(cat "$LH_TMP"/hang-* | tr -d '\n')" ""
lh_stop # answers the hanging questions with SERVFAIL
wait "${hang[@]}"
expect_eq "stop answers what still hangs with SERVFAIL" "$(cat "$LH_TMP"/hang-* | sort -u)" "SERVFAIL"

# Source ports, with the socket pool (transport_ares.c) full and reusing its sockets: 3,000
# upstream queries; the last 1,000 leave from at least 900 different ports, and all 3,000 from
# far fewer ports than queries (a socket carries several queries: not one socket per query).
SPREAD=$(lh_peer 21)
lh_fake "$SPREAD" answer
lh_start --no-hosts --upstream "$SPREAD" --cache-size 0
$LH_PY - "$LH_ADDR" "$LH_SRC/tests/e2e" <<'PY'
import socket, sys
sys.path.insert(0, sys.argv[2])
from dnsclient import *
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
for base in range(0, 3000, 50):  # 50 in flight at a time
    for i in range(base, base + 50):
        s.sendto(query("p%d.spread.test" % i, qid=i), (sys.argv[1], 53))
    for i in range(50):
        s.recv(4096)
PY
awk 'tolower($0) ~ /spread.test/ {print $1}' "$LH_TMP/fake-$SPREAD.log" >"$LH_TMP/spread.ports"
total=$(wc -l <"$LH_TMP/spread.ports")
ports=$(tail -n 1000 "$LH_TMP/spread.ports" | sort -u | wc -l)
all=$(sort -u "$LH_TMP/spread.ports" | wc -l)
nofile=$(awk '/^Max open files/ {print $4}' "/proc/$LH_PID/limits")
expect_eq "3,000 upstream queries sent" "$total" "3000"
check "the last 1,000 from >= 900 distinct source ports ($ports; descriptor limit $nofile, the pool keeps 1,024 from 8,192)" test "$ports" -ge 900
check "sockets are reused: all 3,000 from < 2,000 ports ($all)" test "$all" -lt 2000
lh_stop

# Coalescing: 20 identical questions in flight -> one upstream query, 20 answers.
SLOW=$(lh_peer 22)
lh_fake "$SLOW" slow 400
lh_start --no-hosts --upstream "$SLOW" --upstream-max-inflight 5 --upstream-timeout 2000 --query-budget 3000
out=$($LH_PY - "$LH_ADDR" "$LH_SRC/tests/e2e" <<'PY'
import socket, sys
sys.path.insert(0, sys.argv[2])
from dnsclient import *
socks = []
for i in range(20):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
    s.sendto(query("same.coalesce.test", qid=100 + i), (sys.argv[1], 53)); socks.append(s)
ok = sum(1 for i, s in enumerate(socks) if header(s.recv(4096))["id"] == 100 + i)
print("coalesced answers", ok)
# The in-flight bound: 5 upstream questions at once; the rest get SERVFAIL at once.
socks = []
for i in range(12):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
    s.sendto(query("d%d.bound.test" % i), (sys.argv[1], 53)); socks.append(s)
rcodes = [header(s.recv(4096))["rcode"] for s in socks]
print("bound servfail", rcodes.count(2), "answered", rcodes.count(0))
PY
)
expect_match "20 identical questions: 20 answers" "$out" "coalesced answers 20"
expect_eq "... and one upstream query" "$(lh_fake_count "$SLOW" same.coalesce.test)" "1"
expect_match "beyond the in-flight bound: SERVFAIL, never unbounded" "$out" "bound servfail 7 answered 5"
lh_stop

# Serve-stale: the upstream dies after answering once; the expired entry is served with a
# short TTL and EDE 3 (Stale Answer). Without serve-stale: SERVFAIL.
STALE=$(lh_peer 23)
lh_fake "$STALE" answer
fake_pid=${LH_PIDS[-1]}
lh_start --no-hosts --upstream "$STALE" --cache-max-ttl 1 --upstream-timeout 300 --query-budget 600
expect_eq "fresh answer" "$(d www.stale.test +short)" "192.0.2.1"
kill "$fake_pid"; wait "$fake_pid" 2>/dev/null
sleep 1.2
out=$(d www.stale.test +noall +answer +comments)
expect_match "stale answer served when the upstream is gone" "$out" $'www.stale.test.\s+30\s+IN\s+A\s+192.0.2.1'
expect_match "stale answer carries EDE 3" "$out" "EDE: 3 \(Stale Answer\)"
expect_eq "a name never seen: SERVFAIL" "$(dstatus never.stale.test)" "SERVFAIL"
expect_match "SERVFAIL carries EDE 22" "$(d never.stale.test +noall +comments)" "EDE: 22"
lh_stop

# A real loop: loophole -> Unbound -> back to loophole. Detected (or at worst bounded): the
# client gets SERVFAIL within the budget and Unbound sees a handful of queries, not a storm.
LOOP=$(lh_peer 24)
{ lh_unbound_head "$LOOP" loop; cat <<U
  access-control: 127.0.0.0/8 allow
  local-zone: "test." nodefault
  do-not-query-localhost: no
forward-zone:
  name: "."
  forward-addr: $LH_ADDR
U
} >"$LH_TMP/loop.conf"
lh_unbound_start "$LH_TMP/loop.conf" "$LOOP" localhost
lh_start --no-hosts --upstream "$LOOP" --upstream-timeout 500 --query-budget 1500 \
    --query-log "$LH_TMP/loop-q.log"
# The client asks from its own address, so that its line in the query log is told apart from
# the looped copies Unbound sends back; the time is the daemon's own, as above.
expect_eq "a forwarding loop ends in SERVFAIL" "$(dstatus -b 127.0.0.9 abcdefghijkl.loop.test +time=20)" "SERVFAIL"
_loop_logged() { grep -q '"client":"127.0.0.9".*"name":"abcdefghijkl.loop.test"' "$LH_TMP/loop-q.log" 2>/dev/null; }
lh_wait_for 30 _loop_logged
read -r outcome rcode ms <<<"$(logged_answer "$LH_TMP/loop-q.log" abcdefghijkl.loop.test 127.0.0.9)"
expect_eq "... logged as failed, SERVFAIL" "$outcome $rcode" "failed SERVFAIL"
check "within 3x the 1.5 s budget by the daemon's clock (${ms:-?} ms)" test "${ms:-99999}" -lt 4500
sleep 0.5
n=$(grep -ci "abcdefghijkl.loop.test" "$LH_TMP/unbound-loop.log")
check "no storm: Unbound saw $n queries for the name" test "$n" -le 10
expect_match "the loop is logged" "$(cat "$LH_TMP/loophole.log")" "forwarding loop: an upstream sent loophole's own query back"
check "still serving" lh_alive
lh_stop

# The socket pools' descriptor budget: every loop (--threads) has a pool per server, so a
# per-server capacity alone (an eighth of the limit) would let 6 servers x 2 loops hold far
# more than the process may open. With a limit of 256, all pools together keep at most a
# quarter (64) once the queries are answered, whatever the number of servers and loops.
ZONES=$(lh_peer 28)
"$LH_PY" - "$ZONES" >"$LH_TMP/zones.out" 2>&1 <<'PY' &
import select, socket, sys
socks = []
for port in range(5301, 5307):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], port))
    socks.append(s)
print("ready", flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        q, peer = s.recvfrom(4096)
        if len(q) >= 12: # the question back: NOERROR, no data
            s.sendto(q[:2] + bytes([0x81, 0x80]) + q[4:], peer)
PY
LH_PIDS+=($!)
lh_wait_for 30 grep -q ready "$LH_TMP/zones.out"
printf '#!/bin/sh\nulimit -n 256 && exec "%s" "$@"\n' "$LOOPHOLE" >"$LH_TMP/fd256.sh"
chmod +x "$LH_TMP/fd256.sh"
zones=()
for i in 1 2 3 4 5 6; do zones+=(--forward-zone "z$i.pool.test=$ZONES:530$i"); done
LOOPHOLE="$LH_TMP/fd256.sh" lh_start --no-hosts --threads 2 --upstream "$ZONES:5301" \
    "${zones[@]}" --cache-size 0
check "pool budget: the daemon runs with 256 descriptors" grep -Eq "^Max open files +256 " "/proc/$LH_PID/limits"
got=$("$LH_PY" - "$LH_ADDR" "$LH_SRC/tests/e2e" <<'PY'
import socket, sys
sys.path.insert(0, sys.argv[2])
from dnsclient import *
addr = sys.argv[1]
ok = 0
for z in range(1, 7):
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(20)]
    for rnd in range(4): # 80 names per zone, 20 at a time from 20 ports (both loops)
        for i, u in enumerate(socks):
            u.settimeout(8)
            u.sendto(query("n%d-%d.z%d.pool.test" % (rnd, i, z), qid=i), (addr, 53))
        for u in socks:
            try:
                if header(u.recv(4096))["rcode"] == 0: ok += 1
            except Exception:
                pass
print(ok)
PY
)
expect_eq "pool budget: 480 names over 6 zone servers answered" "$got" "480"
pooled=$(ss -Hunp "dst $ZONES" | grep -c "pid=$LH_PID,")
check "pool budget: $pooled pooled sockets held, at most 64 (a quarter of 256)" test "$pooled" -le 64
check "pool budget: still serving over TCP" bash -c "dig @$LH_ADDR +tcp +time=2 +tries=1 localhost +short | grep -qx 127.0.0.1"
lh_stop
lh_done
