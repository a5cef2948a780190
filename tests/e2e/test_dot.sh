#!/usr/bin/env bash
# DNS over TLS upstreams against a real Unbound serving DoT with a throw-away CA made here:
# answers of every type forwarded over TLS, a large answer, many names in flight over one
# connection (1,000 names, one connection, one handshake), the strict profile (wrong name,
# untrusted CA, expired certificate, wrong pin: SERVFAIL with EDE 23; refused or stalled: EDE 22;
# and never a plaintext query: a port-53 listener on the same address records any), an IP
# address as the authentication name, failover from a dead DoT upstream to a live one, a mixed
# list and a forward zone with both transports, the query log's transport field, and
# tls-mode opportunistic: plain DNS to port 53 after a failed TLS try, reported as not private.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
command -v openssl >/dev/null && command -v unbound >/dev/null || { echo "needs openssl, unbound"; exit 77; }
DOT=$(lh_peer 1)   # Unbound on :853 (TLS), the plaintext trap on :53
DEAD=$(lh_peer 2)  # nothing on :853: connection refused
PLAIN=$(lh_peer 3) # a plain upstream for the forward zone
CTL="$LH_TMP/control.sock"
ctl() { "$LOOPHOLE" "$@" --control-socket "$CTL"; }

# ---- a throw-away CA, the server's certificate for dot.test, and a CA nobody trusts ----------
tls_make_ca dot.test "$DOT"
# The same key and name, expired: valid until yesterday (OpenSSL 3.0 takes a negative -days).
tls_ossl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out expired.pem -days -1 \
    -extfile server.ext
chmod 644 expired.pem

# ---- Unbound as the DoT server -------------------------------------------------------------
cat >"$LH_TMP/unbound-dot.conf" <<U
server:
  interface: $DOT@853
  tls-port: 853
  tls-service-key: "$LH_TMP/server.key"
  tls-service-pem: "$LH_TMP/server.pem"
  tls-session-ticket-keys: "$LH_TMP/ticket.key"
$(tls_unbound_server dot)
  extended-statistics: yes
  tcp-idle-timeout: 60000
  local-zone: "dot.test." static
  local-data: "a.dot.test. 60 IN A 192.0.2.53"
  local-data: "a.dot.test. 60 IN AAAA 2001:db8::53"
  local-data: 't.dot.test. 60 IN TXT "over tls"'
$(tls_big_txt dot.test)
  local-zone: "bulk.dot.test." redirect
  local-data: "bulk.dot.test. 60 IN A 192.0.2.7"
$(tls_unbound_tail)
U
head -c 80 /dev/urandom >"$LH_TMP/ticket.key" # kept across a restart: tickets stay valid
unbound_up() {
    unbound -c "$LH_TMP/unbound-dot.conf" >>"$LH_TMP/unbound-dot.out" 2>&1 &
    UPID=$!
    LH_PIDS+=("$UPID")
    for _ in $(seq 50); do
        kdig @"$DOT" -p 853 +tls-ca="$LH_TMP/ca.pem" +tls-hostname=dot.test a.dot.test +short \
            +time=1 +retry=0 2>/dev/null | grep -q 192.0.2.53 && return 0
        sleep 0.1
    done
    return 1
}
unbound_up
UCTL=(unbound-control -c "$LH_TMP/unbound-dot.conf")
check "Unbound serves DoT with the test CA (kdig)" bash -c \
    "kdig @$DOT -p 853 +tls-ca=$LH_TMP/ca.pem +tls-hostname=dot.test a.dot.test +short | grep -q 192.0.2.53"
# The trap: anything arriving in plaintext on port 53 of the TLS upstreams is logged.
lh_fake "$DOT" answer
lh_fake "$DEAD" answer
lh_fake "$PLAIN" answer

tls_burst_py
tls_conns() { ss -Htn state established "dst $DOT:853" | wc -l; }

# ---- the good path -------------------------------------------------------------------------
lh_start --upstream "tls://$DOT#dot.test" --tls-ca "$LH_TMP/ca.pem" --cache-size 0 \
    --forward-zone "plain.test=$PLAIN" --metrics "$LH_ADDR:9153" --query-log "$LH_TMP/q1.log"
expect_eq "A over DoT" "$(d a.dot.test A +short)" "192.0.2.53"
expect_eq "AAAA over DoT" "$(d a.dot.test AAAA +short)" "2001:db8::53"
expect_eq "TXT over DoT" "$(d t.dot.test TXT +short)" '"over tls"'
expect_eq "a large answer (30 TXT, >3 KB) over DoT, to a TCP client" \
    "$(d big.dot.test TXT +tcp +short | wc -l)" "30"
expect_eq "forward zone to a plain upstream beside DoT" "$(d x.plain.test A +short)" "192.0.2.1"
expect_eq "the plain forward zone's query reached its plain upstream" "$(lh_fake_count "$PLAIN" x.plain.test)" "1"

# The query log says how each forwarded answer came (the log is written by the thread pool:
# waited for, bounded).
lh_wait_for 10 grep -q '"name":"t.dot.test"' "$LH_TMP/q1.log"
expect_match "query log: a DoT answer says transport tls" \
    "$(grep '"name":"t.dot.test"' "$LH_TMP/q1.log")" '"upstream":"tls://[0-9.]+:853","transport":"tls"'
lh_wait_for 10 grep -q '"name":"x.plain.test"' "$LH_TMP/q1.log"
expect_match "query log: the plain forward zone's answer says transport plain" \
    "$(grep '"name":"x.plain.test"' "$LH_TMP/q1.log")" '"transport":"plain"'

# 1,000 distinct names at once: all answered, over one connection.
"$LH_PY" "$LH_TMP/burst.py" "$LH_ADDR" 1000 bulk.dot.test 192.0.2.7 >"$LH_TMP/bulk.out"
expect_eq "1,000 distinct names sent at once, all answered over DoT" "$(cat "$LH_TMP/bulk.out")" "1000"
stats=$(ctl stats --json)
conns=$(echo "$stats" | "$LH_PY" -c 'import json,sys; u=json.load(sys.stdin)["upstreams"][0]["tls"]; print(u["connections"], u["handshakes"], u["reused"])')
read -r nconn nhs nreused <<<"$conns"
expect_eq "one TLS connection and one handshake for all of it (loophole's count)" "$nconn $nhs" "1 1"
check "queries reused the open connection ($nreused)" test "$nreused" -ge 1000
expect_eq "one established connection to the DoT server (ss)" "$(tls_conns)" "1"
utcp=$("${UCTL[@]}" stats_noreset 2>/dev/null | sed -n 's/^num.query.tls=//p')
check "Unbound counted the queries as DNS over TLS ($utcp)" test "${utcp:-0}" -ge 1005
ujson=$(ctl stats --json | "$LH_PY" -c 'import json,sys; u=json.load(sys.stdin)["upstreams"][0]; print(u["privacy"], u["private"], sum(u["tls"]["handshake_latency_buckets"]))')
expect_eq "stats --json: strict DoT is private, one handshake timed" "$ujson" "private True 1"
prom=$(curl -s --max-time 5 "http://$LH_ADDR:9153/metrics" | "$LH_PY" -c '
import sys
from prometheus_client.parser import text_string_to_metric_families
want = {"loophole_upstream_tls_handshakes": None, "loophole_upstream_tls_failures": 0}
for fam in text_string_to_metric_families(sys.stdin.read()):
    for smp in fam.samples:
        if smp.name == "loophole_upstream_tls_handshakes_total":
            want["loophole_upstream_tls_handshakes"] = (smp.labels["upstream"], int(smp.value))
        if smp.name == "loophole_upstream_tls_failures_total":
            want["loophole_upstream_tls_failures"] += int(smp.value)
print(want["loophole_upstream_tls_handshakes"], want["loophole_upstream_tls_failures"])')
expect_eq "Prometheus: TLS handshakes and failures per upstream" "$prom" "('tls://$DOT:853', 1) 0"
check "stats shows the TLS counters" bash -c "'$LOOPHOLE' stats --control-socket '$CTL' | grep -q 'tls: connections 1, handshakes 1'"
# The leak check's JSON says each upstream's privacy as its findings judge it (and stays valid
# against the documented schema with an encrypted upstream).
leak_json() {
    "$LOOPHOLE" leak-check --json --listen "$LH_ADDR:53" --control-socket "$CTL" --upstream-timeout 300 \
        >"$LH_TMP/leak.json" 2>/dev/null
    "$LH_PY" - "$LH_SRC/docs/leak-check.schema.json" "$LH_TMP/leak.json" <<'PY' 2>&1
import json, sys, jsonschema
schema, r = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
jsonschema.validate(r, schema, cls=jsonschema.Draft202012Validator)
u = r["configured"]["upstreams"][0]
warned = any(f["severity"] == "warn" and u["server"] in f["finding"] for f in r["findings"])
print(u["server"], u["transport"], u["privacy"], "warned" if warned else "no-warning")
PY
}
expect_eq "leak-check --json: strict DoT is private, no finding about it (schema-valid)" \
    "$(leak_json)" "tls://$DOT:853 tls private no-warning"
leak=$("$LOOPHOLE" leak-check --listen "$LH_ADDR:53" --control-socket "$CTL" --upstream-timeout 300 2>&1)
expect_match "leak-check: the text says private too" "$leak" "tls://$DOT:853 +tls \(private\), zone \."

# The server goes away with the connection idle (a restart, same ticket keys): loophole drops
# the dead connection quietly, and the next query opens a new one, resuming the TLS session.
kill -TERM "$UPID"
wait "$UPID" 2>/dev/null
unbound_up
expect_eq "answered after the server closed the idle connection" "$(d a2.bulk.dot.test A +short)" "192.0.2.7"
tls=$(ctl stats --json | "$LH_PY" -c 'import json,sys; u=json.load(sys.stdin)["upstreams"][0]["tls"]; print(u["connections"], u["handshakes"], u["resumed"], sum(u["failures"].values()))')
expect_eq "a second connection, resumed (connections handshakes resumed failures)" "$tls" "2 2 1 0"

lh_stop

# ---- pins ----------------------------------------------------------------------------------
lh_start --upstream "tls://$DOT#dot.test?pin-sha256=$PIN" --tls-ca "$LH_TMP/ca.pem" --cache-size 0
expect_eq "the right pin: answered" "$(d a.dot.test A +short)" "192.0.2.53"
lh_stop
lh_start --upstream "$DOT@853#dot.test" --tls-ca "$LH_TMP/ca.pem" --cache-size 0
expect_eq "Unbound's ADDR@853#NAME form" "$(d a.dot.test A +short)" "192.0.2.53"
lh_stop

# ---- an IP address as the authentication name: the certificate's IP SAN -------------------
lh_start --upstream "tls://$DOT#$DOT" --tls-ca "$LH_TMP/ca.pem" --cache-size 0
expect_eq "tls://ADDR#ADDR: the IP address SAN verified, answered" "$(d a.dot.test A +short)" "192.0.2.53"
lh_stop

# ---- strict: every failure is SERVFAIL with an EDE, never plaintext -------------------------
# RFC 8914: 22 (No Reachable Authority) when the server could not be reached, 23 (Network
# Error) when talking to it went wrong.
strict() { # DESCRIPTION EDE LOGPATTERN ARGS...
    local what=$1 code=$2 pat=$3
    shift 3
    : >"$LH_TMP/loophole.log"
    lh_start "$@" --cache-size 0
    expect_eq "$what: SERVFAIL" "$(dstatus s1.dot.test A)" "SERVFAIL"
    expect_eq "$what: EDE $code" "$(ede s2.dot.test A)" "EDE: $code"
    check "$what: the log says why" grep -q "$pat" "$LH_TMP/loophole.log"
    lh_stop
}
strict "wrong name" 23 "certificate not trusted" --upstream "tls://$DOT#wrong.test" --tls-ca "$LH_TMP/ca.pem"
strict "wrong IP address as the name" 23 "certificate not trusted" --upstream "tls://$DOT#127.0.0.1" \
    --tls-ca "$LH_TMP/ca.pem"
strict "untrusted CA (the system store)" 23 "certificate not trusted" --upstream "tls://$DOT#dot.test"
strict "another CA given" 23 "certificate not trusted" --upstream "tls://$DOT#dot.test" --tls-ca "$LH_TMP/other.pem"
strict "wrong pin" 23 "does not match pin-sha256" --upstream "tls://$DOT#dot.test?pin-sha256=$WRONGPIN" \
    --tls-ca "$LH_TMP/ca.pem"
strict "refused" 22 "connection failed: connection refused" --upstream "tls://$DEAD#dot.test" --tls-ca "$LH_TMP/ca.pem"

# ---- failover: a dead DoT upstream first, a live one second ---------------------------------
lh_start --upstream "tls://$DEAD#dot.test" --upstream "tls://$DOT#dot.test" \
    --tls-ca "$LH_TMP/ca.pem" --cache-size 0
for i in 1 2 3; do
    expect_eq "failover from a dead DoT upstream to a live one ($i)" "$(d "f$i.bulk.dot.test" A +short)" "192.0.2.7"
done
lh_stop

# ---- a scripted TLS upstream: out of order, split records, a close mid-pipeline, a stall -----
SCRIPTED=$(lh_peer 4)
lh_fake "$SCRIPTED" answer # the plaintext trap on its port 53
tlsup() { # MODE: tests/e2e/tlsupstream.py on $SCRIPTED:853, log $LH_TMP/tls-MODE.log
    "$LH_PY" "$LH_SRC/tests/e2e/tlsupstream.py" "$SCRIPTED" 853 "$LH_TMP/${TLSUP_CERT:-server.pem}" \
        "$LH_TMP/server.key" "$1" "$LH_TMP/tls-$1.log" >"$LH_TMP/tls-$1.out" 2>&1 &
    TLSUP_PID=$!
    LH_PIDS+=("$TLSUP_PID")
    for _ in $(seq 50); do grep -q ready "$LH_TMP/tls-$1.out" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
tlsup_stop() { kill -TERM "$TLSUP_PID" 2>/dev/null; wait "$TLSUP_PID" 2>/dev/null; }
tls_stat() { ctl stats --json | "$LH_PY" -c "import json,sys; print(json.load(sys.stdin)['upstreams'][0]['tls']$1)"; }

tlsup reorder
lh_start --upstream "tls://$SCRIPTED#dot.test" --tls-ca "$LH_TMP/ca.pem" --cache-size 0
expect_eq "20 names answered in reverse order, each answer split over two TLS records" \
    "$("$LH_PY" "$LH_TMP/burst.py" "$LH_ADDR" 20 ooo.test 192.0.2.99)" "20"
check "the server answered several at once, reversed ($(grep batch "$LH_TMP/tls-reorder.log" | sort | uniq -c | tr '\n' ' '))" \
    grep -qE "batch ([2-9]|[0-9]{2})" "$LH_TMP/tls-reorder.log"
expect_eq "all over one connection" "$(grep -c '^conn' "$LH_TMP/tls-reorder.log")" "1"
expect_eq "every query padded to a multiple of 128 bytes (RFC 8467), as received" \
    "$(awk '/^query/ {print ($3 % 128 == 0) ? "padded" : "unpadded " $3}' "$LH_TMP/tls-reorder.log" | sort | uniq -c | tr -s ' ')" " 20 padded"
lh_stop
tlsup_stop

tlsup dropfirst
lh_start --upstream "tls://$SCRIPTED#dot.test" --tls-ca "$LH_TMP/ca.pem" --cache-size 0
expect_eq "the server closes mid-pipeline: every query retried once on a new connection and answered" \
    "$("$LH_PY" "$LH_TMP/burst.py" "$LH_ADDR" 10 drop.test 192.0.2.99)" "10"
check "it did drop the first connection with queries in flight" grep -q dropping "$LH_TMP/tls-dropfirst.log"
check "loophole counted the retries ($(tls_stat "['retried']"))" test "$(tls_stat "['retried']")" -ge 1
expect_eq "no query failed for it" "$(tls_stat "['failures']['reset']")" "0"
lh_stop
tlsup_stop

tlsup stall
: >"$LH_TMP/loophole.log"
lh_start --upstream "tls://$SCRIPTED#dot.test" --tls-ca "$LH_TMP/ca.pem" --cache-size 0 \
    --upstream-timeout 1000
out=$(d stall.test A +time=8)
expect_eq "a stalled handshake: SERVFAIL" "$(grep -o 'status: [A-Z]*' <<<"$out")" "status: SERVFAIL"
expect_eq "a stalled handshake: EDE 22 (not reached)" "$(grep -o 'EDE: [0-9]*' <<<"$out")" "EDE: 22"
check "a stalled handshake: the log says so" grep -q "stalled" "$LH_TMP/loophole.log"
expect_eq "a stalled handshake: counted as a timeout" "$(tls_stat "['failures']['timeout']")" "1"
lh_stop
tlsup_stop

# RFC 7766 section 7: an answer is matched by ID and question. A late answer to an earlier
# query whose ID a new query drew again is not the new query's answer.
tlsup lateid
lh_start --upstream "tls://$SCRIPTED#dot.test" --tls-ca "$LH_TMP/ca.pem" --cache-size 0
expect_eq "an answer with the query's ID but another question is not taken for it" \
    "$(d late.test A +short +time=8)" "192.0.2.99"
expect_eq "no query failed for it" "$(tls_stat "['failures']['timeout']")" "0"
lh_stop
tlsup_stop

# A connection that goes silent without closing: the query on it times out, and the next one
# goes to a new connection instead of joining the dead one.
tlsup mute
lh_start --upstream "tls://$SCRIPTED#dot.test" --tls-ca "$LH_TMP/ca.pem" --cache-size 0 \
    --upstream-timeout 1000
expect_eq "mute: the first query answered" "$(d m1.test A +short +time=8)" "192.0.2.99"
expect_eq "mute: the second, unanswered on the open connection: SERVFAIL" \
    "$(d m2.test A +time=8 | grep -o 'status: [A-Z]*')" "status: SERVFAIL"
check "mute: the server did go silent" grep -q muted "$LH_TMP/tls-mute.log"
expect_eq "mute: the third answered, on a new connection" "$(d m3.test A +short +time=8)" "192.0.2.99"
expect_eq "mute: two connections" "$(grep -c '^conn' "$LH_TMP/tls-mute.log")" "2"
lh_stop
tlsup_stop

# An expired certificate: SERVFAIL, EDE 23, the log names it, and nothing goes in plaintext.
TLSUP_CERT=expired.pem tlsup reorder
: >"$LH_TMP/loophole.log"
lh_start --upstream "tls://$SCRIPTED#dot.test" --tls-ca "$LH_TMP/ca.pem" --cache-size 0
out=$(d e1.test A +time=8)
expect_eq "an expired certificate: SERVFAIL" "$(grep -o 'status: [A-Z]*' <<<"$out")" "status: SERVFAIL"
expect_eq "an expired certificate: EDE 23" "$(grep -o 'EDE: [0-9]*' <<<"$out")" "EDE: 23"
check "an expired certificate: the log says so" grep -q "certificate has expired" "$LH_TMP/loophole.log"
expect_eq "an expired certificate: counted as cert" "$(tls_stat "['failures']['cert']")" "1"
lh_stop
tlsup_stop
expect_eq "no plaintext query reached the scripted upstreams' address" "$(lh_fake_count "$SCRIPTED")" "0"

# ---- nothing ever left in plaintext ---------------------------------------------------------
expect_eq "no plaintext query reached the DoT server's address" "$(lh_fake_count "$DOT")" "0"
expect_eq "no plaintext query reached the dead DoT upstream's address" "$(lh_fake_count "$DEAD")" "0"

# The list updater resolves a list's host in plain DNS: never through a DoT upstream. A UDP
# and TCP trap on port 853 of a DoT upstream's address records anything sent there in clear.
TRAP=$(lh_peer 5)
cat >"$LH_TMP/trap853.py" <<'PY'
import socket, sys, threading
addr, logfile = sys.argv[1], sys.argv[2]
log = open(logfile, "a", buffering=1)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind((addr, 853))
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind((addr, 853))
t.listen(8)
def tcp():
    while True:
        c, _ = t.accept()
        log.write("tcp %r\n" % c.recv(512))
        c.close()
threading.Thread(target=tcp, daemon=True).start()
print("ready", flush=True)
while True:
    log.write("udp %r\n" % u.recv(4096)[:64])
PY
"$LH_PY" "$LH_TMP/trap853.py" "$TRAP" "$LH_TMP/trap853.log" >"$LH_TMP/trap853.out" 2>&1 &
LH_PIDS+=($!)
for _ in $(seq 50); do grep -q ready "$LH_TMP/trap853.out" 2>/dev/null && break; sleep 0.1; done
out=$("$LOOPHOLE" lists update --upstream "tls://$TRAP#dot.test" --upstream-timeout 500 \
    --list-url "http://lists.leak.test:1/ads.txt $LH_TMP/leak-list.txt" 2>&1)
expect_match "lists update with only DoT upstreams: a precise error" "$out" "upstreams are DNS over TLS"
expect_eq "lists update sent nothing in plaintext to the DoT upstream's port 853" \
    "$(grep -c . "$LH_TMP/trap853.log" 2>/dev/null || true)" "0"
out=$("$LOOPHOLE" dnssec a.dot.test --upstream "tls://$TRAP#dot.test" --upstream-timeout 500 2>&1)
expect_match "loophole dnssec with a DoT upstream: a precise error" "$out" "upstream is DNS over TLS"
expect_eq "loophole dnssec sent nothing in plaintext to the DoT upstream's port 853" \
    "$(grep -c . "$LH_TMP/trap853.log" 2>/dev/null || true)" "0"

# ---- tls-mode opportunistic: plain DNS after a failed TLS try, and said so ------------------
# The dead upstream refuses TLS; its port 53 (the fake) answers 192.0.2.1 in plaintext.
: >"$LH_TMP/loophole.log"
lh_start --upstream "tls://$DEAD#dot.test" --tls-mode opportunistic --tls-ca "$LH_TMP/ca.pem" \
    --cache-size 0 --metrics "$LH_ADDR:9153" --query-log "$LH_TMP/q2.log"
expect_eq "opportunistic: answered by plain DNS at the same address" "$(d o1.dot.test A +short)" "192.0.2.1"
expect_eq "opportunistic: a second one too" "$(d o2.dot.test A +short)" "192.0.2.1"
expect_eq "opportunistic: the queries did go to port 53 in plaintext" "$(lh_fake_count "$DEAD" 'o[12]\.dot\.test')" "2"
check "opportunistic: the log says plaintext, not private" grep -q "plaintext (not private)" "$LH_TMP/loophole.log"
ujson=$(ctl stats --json | "$LH_PY" -c 'import json,sys; u=json.load(sys.stdin)["upstreams"][0]; print(u["privacy"], u["private"], u["tls"]["fallbacks"], u["tls"]["failures"]["connect"] + u["tls"]["failures"]["backoff"])')
expect_eq "stats --json: opportunistic, not private, 2 fallbacks after 2 failed TLS tries" "$ujson" "opportunistic False 2 2"
check "stats: the upstream line says not private" bash -c "'$LOOPHOLE' stats --control-socket '$CTL' | grep -q 'tls (opportunistic: not private)'"
expect_match "metrics: loophole_upstream_private 0" "$(curl -s --max-time 5 "http://$LH_ADDR:9153/metrics")" \
    "loophole_upstream_private\{upstream=\"tls://$DEAD:853\"\} 0"
lh_wait_for 10 grep -q '"name":"o1.dot.test"' "$LH_TMP/q2.log"
expect_match "query log: the fallback answer says plain, from port 53" \
    "$(grep '"name":"o1.dot.test"' "$LH_TMP/q2.log")" "\"upstream\":\"$DEAD:53\",\"transport\":\"plain\""
leak=$("$LOOPHOLE" leak-check --listen "$LH_ADDR:53" --control-socket "$CTL" --upstream-timeout 300 2>&1)
expect_match "leak-check: opportunistic is a WARN, not private" "$leak" "WARN.*tls-mode opportunistic: not private"
expect_match "leak-check: the upstream line says opportunistic" "$leak" "tls://$DEAD:853 +tls \(opportunistic: not private\)"
expect_eq "leak-check --json: privacy opportunistic, warned (schema-valid)" \
    "$(leak_json)" "tls://$DEAD:853 tls opportunistic warned"
lh_stop
out=$("$LOOPHOLE" serve --tls-mode sometimes 2>&1)
expect_match "an unknown tls-mode is refused" "$out" "tls-mode: 'sometimes' is not strict"

# ---- configuration errors ------------------------------------------------------------------
out=$("$LOOPHOLE" serve --upstream "tls://$DOT" 2>&1)
expect_match "tls:// without a name is refused" "$out" "needs the name"
out=$("$LOOPHOLE" serve --upstream "tls://$DOT#dot.test?pin-sha256=abc" 2>&1)
expect_match "a malformed pin is refused" "$out" "pin-sha256=BASE64"
lh_done
