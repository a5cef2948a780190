#!/usr/bin/env bash
# --threads: several event loops bound to the same address (SO_REUSEPORT). Queries from many
# source ports spread over them; every one is answered and counted once; a reload and a cache
# flush reach every loop; SIGTERM stops them all.
. "$(dirname "$0")/lib.sh"
UP=$(lh_peer 1)
echo '||ads.threads.test^' >"$LH_TMP/block.list"
lh_fake "$UP" answer
lh_start --threads 2 --upstream "$UP" --no-default-blocklist --no-hosts \
    --blocklist "$LH_TMP/block.list"
# burst NAME N: N queries, each from its own socket (its own port), so that the kernel's
# SO_REUSEPORT hash spreads them over the loops. Prints how many were answered, and how.
burst() {
    "$LH_PY" - "$LH_ADDR" "$1" "$2" <<'PY'
import socket, sys, dns.message, dns.rdatatype
addr, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
socks = []
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
    s.bind(("127.0.0.9", 0))  # the burst's own client address, apart from lh_start's probes
    s.sendto(dns.message.make_query(name, "A", id=i).to_wire(), (addr, 53)); socks.append(s)
answers = {}
for s in socks:
    try:
        r = dns.message.from_wire(s.recv(4096))
        a = [rd.address for rr in r.answer for rd in rr if rr.rdtype == dns.rdatatype.A]
        answers[a[0] if a else "none"] = answers.get(a[0] if a else "none", 0) + 1
    except socket.timeout:
        answers["lost"] = answers.get("lost", 0) + 1
    s.close()
print(" ".join("%s:%d" % kv for kv in sorted(answers.items())))
PY
}
expect_eq "200 blocked queries from 200 ports: all answered" "$(burst x.ads.threads.test 200)" "127.0.0.1:200"
expect_eq "200 forwarded queries: all answered" "$(burst www.threads.example 200)" "192.0.2.1:200"
# Workers publish their counters every 250 ms: poll (bounded) until the burst's client shows.
figures() { lh_stat '([c["count"] for c in s["top_clients"] if c["key"] == "127.0.0.9"] or [0])[0], s["outcomes"].get("blocked", 0)'; }
_counted() { [ "$(figures)" == "(400, 200)" ]; }
lh_wait_for 10 _counted
expect_eq "stats add up every loop: the burst's 400 queries, 200 blocked" "$(figures)" "(400, 200)"
expect_eq "both loops served the burst: each asked the upstream once (a cache per loop)" \
    "$(lh_fake_count "$UP" www.threads.example)" "2"
echo '||www.threads.example^' >>"$LH_TMP/block.list"
out=$("$LOOPHOLE" reload --control-socket "$LH_TMP/control.sock")
expect_match "reload with two loops" "$out" "reloaded: 1 list\(s\) with 2 rules"
# The reply comes when the first loop has swapped; the others follow as they get to it.
_all_blocked() { [ "$(burst www.threads.example 100)" == "127.0.0.1:100" ]; }
lh_wait_for 10 _all_blocked
expect_eq "... the new list blocks on every loop" "$(burst www.threads.example 100)" "127.0.0.1:100"
lh_stop
expect_eq "SIGTERM stops every loop, exit 0" "$?" "0"
lh_done
