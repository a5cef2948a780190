#!/usr/bin/env bash
# Forwarding to a real upstream (Unbound serving a signed test zone): record types, NXDOMAIN
# and NODATA, TTL count-down and negative caching from the cache, DO and RRSIGs, TC -> TCP,
# CNAME and HTTPS uncloaking, forward zones, resolv.conf defaults, 0x20 case at the upstream.
. "$(dirname "$0")/lib.sh"
UB=$(lh_peer 1)
FAKE=$(lh_peer 2)

cat >"$LH_TMP/fwd.test.db" <<'Z'
$ORIGIN fwd.test.
$TTL 300
@        IN SOA ns.fwd.test. host.fwd.test. 1 3600 600 86400 120
@        IN NS  ns.fwd.test.
ns       IN A   127.0.0.1
www      IN A   192.0.2.10
www      IN AAAA 2001:db8::10
mail     IN MX  10 mx.fwd.test.
txt      IN TXT "hello world"
alias    IN CNAME www.fwd.test.
cloaked  IN CNAME shop.tracker.test.
svc      IN HTTPS 1 . alpn=h2
svccloak IN HTTPS 1 shop.tracker.test. alpn=h2
lan      IN A   192.168.1.20
lo6      IN AAAA ::1
ok.lan   IN A   10.1.2.3
Z
for i in $(seq 1 30); do echo "big IN TXT \"$(printf 'x%.0s' $(seq 1 80))$i\""; done >>"$LH_TMP/fwd.test.db"
( cd "$LH_TMP" && ldns-keygen -a ECDSAP256SHA256 fwd.test >keyname ) >/dev/null 2>&1
ldns-signzone -o fwd.test. "$LH_TMP/fwd.test.db" "$LH_TMP/$(cat "$LH_TMP/keyname")" >/dev/null 2>&1
check "the test zone is signed" test -s "$LH_TMP/fwd.test.db.signed"
lh_unbound "$UB" "$LH_TMP/fwd.test.db.signed" fwd.test.
lh_fake "$FAKE" answer
echo '||tracker.test^' >"$LH_TMP/block.list"
lh_start --no-hosts --upstream "$UB" --blocklist "$LH_TMP/block.list" --query-log "$LH_TMP/query.log" \
    --forward-zone "other.test=$FAKE" --forward-zone "168.192.in-addr.arpa=$FAKE" \
    --forward-zone "fwd.test=$UB" --forward-zone "x.fwd.test=$FAKE"

for proto in +notcp +tcp; do
    expect_eq "A ($proto)" "$(d www.fwd.test A +short $proto)" "192.0.2.10"
    expect_eq "AAAA ($proto)" "$(d www.fwd.test AAAA +short $proto)" "2001:db8::10"
    expect_eq "MX ($proto)" "$(d mail.fwd.test MX +short $proto)" "10 mx.fwd.test."
    expect_eq "TXT ($proto)" "$(d txt.fwd.test TXT +short $proto)" '"hello world"'
    expect_eq "HTTPS ($proto)" "$(d svc.fwd.test HTTPS +short $proto)" '1 . alpn="h2"'
    expect_eq "CNAME chain ($proto)" "$(d alias.fwd.test +short $proto | tr '\n' ' ')" "www.fwd.test. 192.0.2.10 "
done
expect_eq "kdig gets it too" "$(kdig @"$LH_ADDR" www.fwd.test +short)" "192.0.2.10"
expect_match "drill gets it too" "$(drill @"$LH_ADDR" www.fwd.test AAAA)" "2001:db8::10"
expect_match "the client's question case comes back" "$(d WwW.FwD.TeSt +noall +answer)" "^WwW.FwD.TeSt."
out=$(d nx.fwd.test +noall +comments +authority)
expect_match "NXDOMAIN relayed" "$out" "status: NXDOMAIN"
expect_match "NXDOMAIN carries the SOA" "$out" "fwd.test.*SOA"
out=$(d www.fwd.test MX +noall +comments +authority)
expect_match "NODATA relayed" "$out" "status: NOERROR.*ANSWER: 0"
expect_match "NODATA carries the SOA" "$out" "fwd.test.*SOA"
expect_match "no OPT for a client without EDNS" "$(d www.fwd.test +noedns +noall +comments)" "ADDITIONAL: 0"
expect_match "our OPT for an EDNS client" "$(d www.fwd.test +noall +comments)" "udp: 1232"

# 0x20: Unbound saw the name in mixed case.
check "upstream questions carry random case (0x20)" grep -qE " [a-zA-Z]*[A-Z][a-zA-Z.]*\.fwd\.test\.| [a-zA-Z.]*F[wW][dD]\.| [a-zA-Z.]*[fF][wW]D\." "$LH_TMP/unbound-$UB.log"

# The cache: nothing more reaches the upstream. (How cached TTLs count down is pinned by the
# scenario tests, on a manual clock: tests/scenarios/cache_ttl_countdown.rpl.)
t1=$(d ttl1.fwd.test +short; d www.fwd.test +noall +answer | awk '{print $2}')
before=$(grep -ci "www.fwd.test. A " "$LH_TMP/unbound-$UB.log")
t2=$(d www.fwd.test +noall +answer | awk '{print $2}')
after=$(grep -ci "www.fwd.test. A " "$LH_TMP/unbound-$UB.log")
check "a cached TTL never grows ($t1 -> $t2)" test "$t2" -le "$t1"
expect_eq "a cached answer does not reach the upstream" "$after" "$before"
d nx2.fwd.test >/dev/null; d nx2.fwd.test >/dev/null; d NX2.fwd.test >/dev/null
expect_eq "NXDOMAIN is cached (RFC 2308): one upstream query for three" "$(grep -ci "nx2.fwd.test. A " "$LH_TMP/unbound-$UB.log")" "1"
negttl=$(d nx2.fwd.test +noall +authority | awk '{print $2}')
check "negative TTL is the SOA minimum, counting down ($negttl <= 120)" test "$negttl" -le 120

# DNSSEC: DO goes upstream, RRSIGs come back; without DO, none.
expect_match "DO: RRSIG relayed" "$(d www.fwd.test +dnssec +noall +answer)" "RRSIG\s+A 13 3 300"
expect_answer "no DO: the answer itself" "192.0.2.10" www.fwd.test
expect_no_record "no DO: no RRSIG" "RRSIG" www.fwd.test
expect_match "DO echoed" "$(d www.fwd.test +dnssec +noall +comments)" "flags: do;"

# A large answer: truncated upstream over UDP, fetched over TCP by c-ares; the client gets
# all of it over TCP, and TC over UDP without EDNS.
expect_eq "large TXT over TCP: all 30 records" "$(d big.fwd.test TXT +tcp +short | wc -l)" "30"
expect_match "large TXT over UDP: TC for the client" "$(d big.fwd.test TXT +ignore +noall +comments)" "flags: qr.* tc"
expect_eq "dig retries over TCP and gets all" "$(d big.fwd.test TXT +short | wc -l)" "30"

# Uncloaking: the CNAME and the HTTPS target lead to a blocked name.
expect_eq "CNAME uncloaking: blocked answer" "$(d cloaked.fwd.test +short)" "127.0.0.1"
expect_match "uncloaked answer carries EDE 15" "$(d cloaked.fwd.test +noall +comments)" "EDE: 15"
expect_match "the log says which CNAME matched" "$(cat "$LH_TMP/loophole.log")" "uncloaked: cloaked.fwd.test leads to shop.tracker.test, blocked by .*block.list"
out=$(d svccloak.fwd.test HTTPS +noall +comments +answer)
expect_match "HTTPS target uncloaking: the blocked answer (NODATA, EDE 15)" "$out" "status: NOERROR.*ANSWER: 0.*EDE: 15"
expect_match "the log names the HTTPS target" "$(cat "$LH_TMP/loophole.log")" "uncloaked: svccloak.fwd.test leads to shop.tracker.test"
# The query log names the rule that matched the target, as the daemon's log does, not a part
# of the queried name.
lh_wait_for 10 grep -q '"name":"svccloak.fwd.test"' "$LH_TMP/query.log"
rules=$("$LH_PY" -c '
import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("name") in ("cloaked.fwd.test", "svccloak.fwd.test") and e["outcome"] == "blocked":
        print(e["name"], e.get("rule"), e.get("list", "").endswith("block.list"))
' "$LH_TMP/query.log" | sort -u | paste -sd' ')
expect_eq "query log: the rule of a block found through a CNAME or HTTPS target" "$rules" \
    "cloaked.fwd.test tracker.test True svccloak.fwd.test tracker.test True"

# Forward zones, and a private reverse zone opted out of local NXDOMAIN.
expect_eq "forward zone goes to its own upstream" "$(d a.b.other.test +short)" "192.0.2.1"
expect_eq "forward zone name did not reach the default upstream" "$(grep -ci other.test "$LH_TMP/unbound-$UB.log")" "0"
expect_eq "forward zone for 168.192.in-addr.arpa" "$(dstatus -x 192.168.1.1)" "NOERROR"
expect_eq "other private reverse zones stay local" "$(dstatus -x 10.1.1.1)" "NXDOMAIN"
expect_eq "the fake saw the reverse query" "$(lh_fake_count "$FAKE" "in-addr.arpa")" "1"
expect_eq "the longest forward zone wins" "$(d a.x.fwd.test +short)" "192.0.2.1"
expect_eq "... the shorter one keeps the rest" "$(d www.fwd.test +short)" "192.0.2.10"
expect_eq "without rebinding protection (the default), private answers pass" "$(d lan.fwd.test +short)" "192.168.1.20"

# SIGUSR2 flushes the cache: the next question goes upstream again.
d flush.fwd.test >/dev/null; d flush.fwd.test >/dev/null
expect_eq "cached once" "$(grep -ci "flush.fwd.test. A " "$LH_TMP/unbound-$UB.log")" "1"
kill -USR2 "$LH_PID"; lh_wait_log 1 "SIGUSR2: flushing the cache"
d flush.fwd.test >/dev/null
expect_eq "after SIGUSR2 it is asked again" "$(grep -ci "flush.fwd.test. A " "$LH_TMP/unbound-$UB.log")" "2"
lh_stop

# Rebinding protection: a public name answering a private address is refused.
lh_start --no-hosts --upstream "$UB" --rebind-protection --rebind-allow ok.lan.fwd.test \
    --query-log "$LH_TMP/rebind.log"
out=$(d lan.fwd.test +noall +comments)
expect_match "private A for a public name: SERVFAIL" "$out" "status: SERVFAIL"
expect_match "... with EDE 18" "$out" "EDE: 18"
expect_eq "loopback AAAA refused too" "$(dstatus lo6.fwd.test AAAA)" "SERVFAIL"
expect_eq "public answers pass" "$(d www.fwd.test +short)" "192.0.2.10"
expect_eq "a rebind-allow domain may resolve privately" "$(d ok.lan.fwd.test +short)" "10.1.2.3"
expect_match "refusals are logged" "$(cat "$LH_TMP/loophole.log")" "rebinding protection: lan.fwd.test from .* resolves to a private address"
lh_stop
# Its own outcome in the query log and the counters, not "failed".
expect_match "query log: outcome rebind" "$(grep '"name":"lan.fwd.test"' "$LH_TMP/rebind.log")" '"outcome":"rebind"'

# Default upstreams from a resolv.conf, minus loophole's own address.
printf 'nameserver %s\nnameserver %s\noptions edns0\n' "$LH_ADDR" "$UB" >"$LH_TMP/resolv.conf"
"$LOOPHOLE" --listen "$LH_ADDR:53" --no-hosts --resolv-conf "$LH_TMP/resolv.conf" \
    >>"$LH_TMP/loophole.log" 2>&1 &
LH_PID=$!; lh_track "$LH_PID"; lh_wait_ready "$LH_ADDR"
expect_match "resolv.conf minus our own address" "$(cat "$LH_TMP/loophole.log")" "upstreams: $UB:53 \(from $LH_TMP/resolv.conf, minus loophole's own address\)"
expect_eq "and it forwards there" "$(d www.fwd.test +short)" "192.0.2.10"
lh_stop
printf 'nameserver %s\n' "$LH_ADDR" >"$LH_TMP/resolv.conf"
"$LOOPHOLE" --listen "$LH_ADDR:53" --no-hosts --resolv-conf "$LH_TMP/resolv.conf" \
    --fallback-upstream "$UB" >"$LH_TMP/fallback.log" 2>&1 &
LH_PID=$!; lh_track "$LH_PID"
lh_wait_log 1 "ready" "$LH_TMP/fallback.log"
lh_stop
out=$(cat "$LH_TMP/fallback.log")
expect_match "only our own address: the fallback, said clearly" "$out" "upstreams: $UB:53 \(the fallback: .* has no nameserver but loophole's own address"
err=$("$LOOPHOLE" --listen "$LH_ADDR:53" --no-hosts --upstream "$LH_ADDR" 2>&1)
expect_match "forwarding to ourselves is refused" "$err" "upstream $LH_ADDR:53 is one of loophole's own listen addresses"
lh_done
