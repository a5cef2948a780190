#!/usr/bin/env bash
# Observability against a live daemon: the counters after a known query sequence (exactly),
# the Prometheus endpoint (scraped with curl, parsed by the Prometheus client library), the
# JSON query log (parsed, line by line against the queries; SIGUSR1 reopen; hashed clients),
# and the control socket (stats, lists, cache flush, reload, and its permissions).
. "$(dirname "$0")/lib.sh"
UP=$(lh_peer 1)
CLIENT=127.0.0.9 # the source of the known sequence, to tell it from lh_start's own probes
CTL="$LH_TMP/control.sock"
METRICS="$LH_ADDR:9153"
echo '||ads.obs.test^' >"$LH_TMP/block.list"
lh_fake "$UP" answer
lh_start --upstream "$UP" --no-default-blocklist --no-hosts --blocklist "$LH_TMP/block.list" \
    --metrics "$METRICS" --query-log "$LH_TMP/query.log"
ctl() { "$LOOPHOLE" "$@" --control-socket "$CTL"; }
q() { dig @"$LH_ADDR" -b "$CLIENT" +time=2 +tries=1 "$@" >/dev/null; }

before=$(ctl stats --json)
check "loophole stats --json answers" test -n "$before"
for _ in 1 2 3; do q localhost A; done
q localhost AAAA
q x.ads.obs.test A; q x.ads.obs.test A
q www.obs.example A; q www.obs.example A # forwarded, then cached
q localhost A +tcp
q version.bind CH TXT
"$LH_PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.9", 0)); s.settimeout(2)
s.sendto(bytes.fromhex("abcd01000000000000000000"), (sys.argv[1], 53))  # no question: FORMERR
s.recv(512)' "$LH_ADDR"
after=$(ctl stats --json)
delta=$(printf '%s\n%s\n' "$before" "$after" | "$LH_PY" -c '
import json, sys
b, a = (json.loads(l) for l in sys.stdin.read().splitlines())
d = lambda k, x, y: {n: y[k][n] - x[k].get(n, 0) for n in y[k] if y[k][n] - x[k].get(n, 0)}
print(a["queries"]["total"] - b["queries"]["total"], a["queries"]["tcp"] - b["queries"]["tcp"])
print(sorted(d("outcomes", b, a).items()))
print(sorted(d("types", b, a).items()))
print(sorted(d("rcodes", b, a).items()))
print(list(a["blocked_by_list"].values()), a["top_blocked"][0]["key"], a["top_blocked"][0]["count"])
print([c["count"] for c in a["top_clients"] if c["key"] == "127.0.0.9"])
u = a["upstreams"][0]; print(u["queries"], u["answers"], sum(u["latency_buckets"]))
')
expect_eq "queries: 11, one of them over TCP" "$(sed -n 1p <<<"$delta")" "11 1"
expect_eq "outcomes" "$(sed -n 2p <<<"$delta")" "[('blocked', 2), ('cached', 1), ('error', 1), ('forwarded', 1), ('local', 5), ('refused', 1)]"
expect_eq "query types" "$(sed -n 3p <<<"$delta")" "[('A', 8), ('AAAA', 1), ('TXT', 1)]"
expect_eq "response codes" "$(sed -n 4p <<<"$delta")" "[('FORMERR', 1), ('NOERROR', 9), ('REFUSED', 1)]"
expect_eq "blocked by list; top blocked name" "$(sed -n 5p <<<"$delta")" "[2] x.ads.obs.test 2"
expect_eq "top clients: the test's client asked 11 times" "$(sed -n 6p <<<"$delta")" "[11]"
expect_eq "the upstream: 1 query, 1 answer, 1 latency sample" "$(sed -n 7p <<<"$delta")" "1 1 1"
text=$(ctl stats)
expect_match "loophole stats: a human table" "$text" "queries +[0-9]+ \(udp [0-9]+, tcp [0-9]+\).*top blocked names"

# Prometheus.
scrape=$(curl -s --max-time 5 "http://$METRICS/metrics")
parsed=$(printf '%s' "$scrape" | "$LH_PY" -c '
import sys
from prometheus_client.parser import text_string_to_metric_families
fam = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
v = lambda n, **l: [s.value for s in fam[n].samples if s.name.startswith(n) and all(s.labels.get(k) == x for k, x in l.items())]
print(fam["loophole_answers"].type, fam["loophole_upstream_latency_seconds"].type, fam["loophole_cache_entries"].type)
print(int(v("loophole_answers", outcome="blocked")[0]), int(v("loophole_responses", rcode="FORMERR")[0]))
print(int([s.value for s in fam["loophole_upstream_latency_seconds"].samples if s.labels.get("le") == "+Inf"][0]))
' 2>&1)
expect_eq "metrics parse; counter, histogram and gauge types" "$(sed -n 1p <<<"$parsed")" "counter histogram gauge"
expect_eq "... blocked and FORMERR counts match the stats" "$(sed -n 2p <<<"$parsed")" "2 1"
expect_eq "... the latency histogram counts the one upstream answer" "$(sed -n 3p <<<"$parsed")" "1"
expect_match "... exposition format headers" "$scrape" "# TYPE loophole_queries_total counter"
expect_eq "... other paths: 404" "$(curl -s -o /dev/null -w '%{http_code}' "http://$METRICS/other")" "404"
expect_eq "... content type" "$(curl -s -o /dev/null -w '%{content_type}' "http://$METRICS/metrics")" "text/plain; version=0.0.4; charset=utf-8"
# Every metric the endpoint exposes is in the docs' metrics table.
for name in $(grep -oE '^# TYPE [a-z_]+' <<<"$scrape" | awk '{print $3}'); do
    check "docs/observability.md lists $name" grep -q "\`$name" "$LH_SRC/docs/observability.md"
done

# The query log, written off the loop: wait (bounded) until the 11 lines of 127.0.0.9 are there.
_logged() { [ "$(grep -c '"client":"127.0.0.9"' "$1" 2>/dev/null)" -ge "$2" ]; }
lh_wait_for 10 _logged "$LH_TMP/query.log" 11
log=$("$LH_PY" -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
mine = [l for l in lines if l.get("client") == "127.0.0.9"]
print(len(mine), " ".join(l["outcome"] for l in mine))
print(" ".join("%s/%s" % (l.get("name", "-"), l.get("type", "-")) for l in mine))
b = [l for l in mine if l["outcome"] == "blocked"][0]
f = [l for l in mine if l["outcome"] == "forwarded"][0]
print(b["list"] == sys.argv[2], b["rule"], f["upstream"], f["rcode"], all(isinstance(l["latency_us"], int) for l in mine))
' "$LH_TMP/query.log" "$LH_TMP/block.list" 2>&1)
expect_eq "query log: one JSON line per query, outcomes in order" "$(sed -n 1p <<<"$log")" "11 local local local local blocked blocked forwarded cached local refused error"
expect_eq "... names and types" "$(sed -n 2p <<<"$log")" "localhost/A localhost/A localhost/A localhost/AAAA x.ads.obs.test/A x.ads.obs.test/A www.obs.example/A www.obs.example/A localhost/A version.bind/TXT -/-"
expect_eq "... list, rule, upstream, rcode, latency" "$(sed -n 3p <<<"$log")" "True ads.obs.test $UP:53 NOERROR True"
mv "$LH_TMP/query.log" "$LH_TMP/query.log.1"
# as logrotate's "create 0640 nobody nogroup" does: the daemon runs as nobody by now
install -m 640 -o nobody /dev/null "$LH_TMP/query.log"
kill -USR1 "$LH_PID"
lh_wait_log 1 "query log: reopened"
q after-rotate.obs.example A
_rotated() { grep -q after-rotate "$LH_TMP/query.log" "$LH_TMP/query.log.1" 2>/dev/null; }
lh_wait_for 10 _rotated
expect_eq "SIGUSR1 reopens: the next query goes to the new file" "$(grep -c after-rotate "$LH_TMP/query.log" 2>/dev/null) $(grep -c after-rotate "$LH_TMP/query.log.1")" "1 0"

# The control socket.
lists=$(ctl lists --json | "$LH_PY" -c 'import json,sys; l=json.load(sys.stdin)["lists"][0]; print(l["path"] == sys.argv[1], l["kind"], l["rules"], l["malformed"])' "$LH_TMP/block.list")
expect_eq "loophole lists --json" "$lists" "True block 1 0"
out=$(ctl cache flush); rc=$?
expect_eq "loophole cache flush" "$rc $(echo "$out" | grep -c 'cache flushed')" "0 1"
q www.obs.example A
expect_eq "... the next query goes upstream again" "$(lh_fake_count "$UP" www.obs.example)" "2"
printf '||ads.obs.test^\n||more.obs.test^\nnot a rule at all\n' >"$LH_TMP/block.list"
out=$(ctl reload); rc=$?
expect_eq "loophole reload: exit 0" "$rc" "0"
expect_match "... says what it loaded" "$out" "reloaded: 1 list\(s\) with 2 rules"
expect_eq "... and the new rule blocks" "$(d more.obs.test +short)" "127.0.0.1"
expect_match "loophole lists: counts and the first malformed line" "$(ctl lists)" "2 rules .*1 malformed \(first: line 3: "
rm "$LH_TMP/block.list"
out=$(ctl reload 2>&1); rc=$?
expect_eq "a failed reload: exit 1" "$rc" "1"
expect_match "... with the reason" "$out" "reload failed, kept the running configuration: .*block.list"
expect_eq "... and the old lists still block" "$(d more.obs.test +short)" "127.0.0.1"
expect_match "... recorded in stats" "$(ctl stats --json)" '"last_ok":false'
expect_eq "control socket: mode 0660, owned by root" "$(stat -c '%a %U' "$CTL")" "660 root"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$LOOPHOLE" stats --control-socket "$CTL" 2>&1); rc=$?
expect_eq "... another user is refused (exit 2)" "$rc" "2"
expect_match "... with the reason" "$out" "Permission denied"
out=$(ctl frobnicate 2>&1); rc=$?
expect_eq "an unknown command" "$rc" "2"
# Type names as the docs give them: ANY, not TYPE255.
q localhost ANY
_any() { ctl stats --json | grep -q '"ANY":[1-9]'; }
lh_wait_for 10 _any
expect_match "stats --json counts ANY by its name" "$(ctl stats --json)" '"ANY":[1-9]'
expect_no_match "... never TYPE255" "$(ctl stats --json; ctl stats)" "TYPE255"
expect_match "the metrics too" "$(curl -s --max-time 5 "http://$METRICS/metrics")" 'loophole_queries_by_type_total\{type="ANY"\} [1-9]' 
lh_stop

# Hashed clients.
echo '||ads.obs.test^' >"$LH_TMP/block.list"
lh_start --upstream "$UP" --no-hosts --query-log "$LH_TMP/hashed.log" --query-log-clients hash
q localhost A; q localhost A; q hashed-marker.localhost A
# Lines are written in order: once the marker is there, so are the two before it.
lh_wait_for 10 grep -q hashed-marker "$LH_TMP/hashed.log"
clients=$(grep -o '"client":"[^"]*"' "$LH_TMP/hashed.log" | sort | uniq -c | awk '{print $1}' | sort -n | tail -1)
expect_match "query-log-clients hash: no addresses in the log" "$(cat "$LH_TMP/hashed.log")" '"client":"[0-9a-f]{16}"'
expect_no_match "... and no address either" "$(cat "$LH_TMP/hashed.log")" "127\.0\.0\.9"
expect_eq "... the same client, the same hash" "$clients" "3"
lh_done
