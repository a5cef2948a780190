#!/usr/bin/env bash
# Runtime control through the control socket: pause/resume (dig shows the blocked name going
# upstream and coming back), allow/block/unlist (at once, kept across a reload and a restart,
# named by `why` as file:line), a restart during a pause comes back blocking, every loop of
# --threads 2 sees rules and pauses, `tail` follows the queries, stats and metrics show the
# pause, other users are refused. Then the dashboard's HTTP defences, each tried with curl:
# foreign Host, missing or wrong token, foreign Origin, cross-site fetch, GET for an action,
# query strings, the security headers.
. "$(dirname "$0")/lib.sh"
UP=$(lh_peer 1)
CTL="$LH_TMP/control.sock"
HTTP="$LH_ADDR:5380"
echo '||ads.rt.test^' >"$LH_TMP/block.list"
lh_fake "$UP" answer
ARGS=(--threads 2 --upstream "$UP" --no-default-blocklist --no-hosts --blocklist "$LH_TMP/block.list"
      --metrics "$LH_ADDR:9153" --http "$HTTP")
lh_start "${ARGS[@]}"
ctl() { "$LOOPHOLE" "$@" --control-socket "$CTL"; }
a() { d "$@" +short | grep -E '^[0-9.]+$' | head -1; }
# burst NAME N: N queries from N sockets (ports), spread by SO_REUSEPORT over both loops;
# prints the answers counted by address.
burst() {
    "$LH_PY" - "$LH_ADDR" "$1" "$2" <<'PY'
import socket, sys, dns.message, dns.rdatatype
addr, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
socks = []
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
    s.sendto(dns.message.make_query(name, "A", id=i).to_wire(), (addr, 53)); socks.append(s)
answers = {}
for s in socks:
    try:
        r = dns.message.from_wire(s.recv(4096))
        a = [rd.address for rr in r.answer for rd in rr if rr.rdtype == dns.rdatatype.A]
        k = a[0] if a else "none"
    except socket.timeout:
        k = "lost"
    answers[k] = answers.get(k, 0) + 1
    s.close()
print(" ".join("%s:%d" % kv for kv in sorted(answers.items())))
PY
}

expect_eq "a listed name is blocked" "$(a x.ads.rt.test)" "127.0.0.1"
out=$(ctl pause 1h); rc=$?
expect_eq "loophole pause 1h: exit 0" "$rc" "0"
expect_match "... says for how long" "$out" "blocking paused for 1h00m"
expect_eq "paused: the blocked name resolves upstream" "$(a x.ads.rt.test)" "192.0.2.1"
expect_eq "... in every loop (20 queries from 20 ports)" "$(burst y.ads.rt.test 20)" "192.0.2.1:20"
expect_match "stats shows the pause and the time left" "$(ctl stats)" "blocking +PAUSED, (1h00m|59m[0-9]{2}s) left"
expect_match "stats --json too" "$(ctl stats --json)" '"blocking":\{"paused":true,"until_resumed":false,"remaining_s":3[56][0-9][0-9]'
m=$(curl -s --max-time 5 "http://$LH_ADDR:9153/metrics")
expect_match "metrics: paused" "$m" $'loophole_blocking_paused 1\n'
expect_match "metrics: seconds left" "$m" $'loophole_blocking_pause_remaining_seconds 3[56][0-9][0-9]\n'
out=$(ctl resume); rc=$?
expect_eq "loophole resume" "$rc $out" "0 blocking resumed"
expect_eq "resumed: blocked again (the answer cached during the pause is not used)" "$(a x.ads.rt.test)" "127.0.0.1"
expect_eq "... in every loop" "$(burst y.ads.rt.test 20)" "127.0.0.1:20"
out=$(ctl resume 2>&1); rc=$?
expect_eq "resume when not paused: exit 1" "$rc $out" "1 blocking was not paused"
out=$(ctl pause 90x 2>&1); rc=$?
expect_eq "a bad duration: exit 2" "$rc" "2"
out=$(ctl pause 0)
expect_match "pause 0: until resumed" "$out" "until 'loophole resume'"
expect_match "... stats says so" "$(ctl stats)" "PAUSED until 'loophole resume'"
expect_eq "... metrics say -1" "$(curl -s --max-time 5 "http://$LH_ADDR:9153/metrics" | grep '^loophole_blocking_pause_remaining_seconds')" "loophole_blocking_pause_remaining_seconds -1"

# A restart during a pause comes back blocking.
lh_stop
lh_start "${ARGS[@]}"
expect_eq "restarted during a pause: blocking again" "$(a x.ads.rt.test)" "127.0.0.1"
expect_match "... stats: blocking on" "$(ctl stats)" "blocking +on"

# Runtime rules.
out=$(ctl allow ok.ads.rt.test); rc=$?
expect_eq "loophole allow NAME: exit 0" "$rc" "0"
expect_match "... says where it is kept" "$out" "ok.ads.rt.test: allowed \(runtime rule, $LH_TMP/state/runtime.list\)"
expect_eq "... unblocked at once, in every loop" "$(burst ok.ads.rt.test 20)" "192.0.2.1:20"
expect_eq "... only that name (no --subdomains)" "$(a sub.ok.ads.rt.test)" "127.0.0.1"
ctl block tracker.rt.example --subdomains >/dev/null
expect_eq "loophole block NAME --subdomains: below it too, every loop" "$(burst a.b.tracker.rt.example 20)" "127.0.0.1:20"
expect_eq "... and the name itself" "$(a tracker.rt.example)" "127.0.0.1"
expect_eq "runtime.list: adblock lines" "$(grep -v '^#' "$LH_TMP/state/runtime.list" | grep .)" $'@@|ok.ads.rt.test^\n||tracker.rt.example^'
why=$("$LOOPHOLE" why ok.ads.rt.test --state-dir "$LH_TMP/state" --no-default-blocklist --no-hosts --blocklist "$LH_TMP/block.list")
line=$(grep -n 'ok.ads.rt.test' "$LH_TMP/state/runtime.list" | cut -d: -f1)
expect_match "why names the runtime rule as file:line" "$why" "allow $LH_TMP/state/runtime.list:$line: @@\|ok.ads.rt.test\^"
expect_match "... before the list rule it overrides" "$why" "runtime.list:$line.*block.list:1: \|\|ads.rt.test\^"
expect_match "... and the verdict is forwarded" "$(head -1 <<<"$why")" "forwarded upstream"
ctl reload >/dev/null
expect_eq "a reload keeps the runtime rules" "$(a ok.ads.rt.test) $(a x.tracker.rt.example)" "192.0.2.1 127.0.0.1"
expect_match "loophole lists shows them with their lines" "$(ctl lists)" "line $line: allow +ok.ads.rt.test"
# runtime.list edited by hand: checked by check-config, read again on SIGHUP; a line that is
# not a rule names itself as file:line and the running rules stay.
RL="$LH_TMP/state/runtime.list"
CC=(check-config --state-dir "$LH_TMP/state" --no-default-blocklist --no-hosts --blocklist "$LH_TMP/block.list" --allow-root)
expect_match "check-config counts the runtime rules" "$("$LOOPHOLE" "${CC[@]}")" "OK \(.*, 2 runtime rule\(s\)\)"
cp "$RL" "$LH_TMP/runtime.good"
echo '||hand.rt.example^' >>"$RL"
echo 'not a rule at all' >>"$RL"
bad=$(wc -l <"$RL")
err=$("$LOOPHOLE" "${CC[@]}" 2>&1); rc=$?
expect_eq "check-config: a broken runtime.list line exits 1" "$rc" "1"
expect_match "... named as file:line" "$err" "runtime rules: $RL:$bad: "
failed_before=$(lh_log_count "reload: runtime rules: $RL:$bad: ")
kill -HUP "$LH_PID"
check "SIGHUP: the broken line is logged as file:line" lh_wait_log $((failed_before + 1)) "reload: runtime rules: $RL:$bad: .*running ones kept \(2\)"
expect_eq "... the running rules stay, the hand-added one is not applied" \
    "$(a ok.ads.rt.test) $(a x.tracker.rt.example) $(a hand.rt.example)" "192.0.2.1 127.0.0.1 192.0.2.1"
expect_match "... stats show the reload failed, with the reason" "$(ctl stats)" "runtime.list:$bad"
out=$(ctl reload 2>&1); rc=$?
expect_eq "loophole reload: exit 1" "$rc" "1"
expect_match "... with file:line" "$out" "runtime rules: $RL:$bad: .*the lists were reloaded"
sed -i '$d' "$RL" # the broken line gone: the hand-added rule applies at the next SIGHUP
ok_before=$(lh_log_count "runtime rules: 3 from $RL")
kill -HUP "$LH_PID"
check "SIGHUP: the corrected file is read" lh_wait_log $((ok_before + 1)) "runtime rules: 3 from $RL"
expect_eq "... its new rule applies, in every loop" "$(burst hand.rt.example 20)" "127.0.0.1:20"
expect_eq "... and the others still do" "$(a ok.ads.rt.test) $(a x.tracker.rt.example)" "192.0.2.1 127.0.0.1"
cp "$LH_TMP/runtime.good" "$RL"
out=$(ctl reload); rc=$?
expect_eq "back as it was: loophole reload exit 0" "$rc" "0"
expect_eq "... the hand-added rule gone" "$(a hand.rt.example)" "192.0.2.1"
lh_stop
lh_start "${ARGS[@]}"
expect_eq "a restart keeps them (read from state-dir)" "$(a ok.ads.rt.test) $(a x.tracker.rt.example)" "192.0.2.1 127.0.0.1"
out=$(ctl unlist ok.ads.rt.test); rc=$?
expect_eq "loophole unlist: exit 0, the lists decide again" "$rc $(a ok.ads.rt.test)" "0 127.0.0.1"
out=$(ctl unlist ok.ads.rt.test 2>&1); rc=$?
expect_eq "unlist of a name without a rule: exit 1" "$rc" "1"
expect_match "... says so" "$out" "has no runtime rule"
out=$(ctl allow 'bad..name' 2>&1); rc=$?
expect_eq "an invalid name: exit 1" "$rc" "1"
expect_match "... says why" "$out" "not a valid domain name"
check "... and the daemon still answers" lh_alive
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$LOOPHOLE" allow x.example --control-socket "$CTL" 2>&1); rc=$?
expect_eq "another user cannot allow (exit 2)" "$rc" "2"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$LOOPHOLE" pause --control-socket "$CTL" 2>&1); rc=$?
expect_eq "... nor pause" "$rc" "2"
expect_eq "... nothing changed" "$(a x.ads.rt.test)" "127.0.0.1"

# tail: the recent queries of both loops, live.
ctl tail --blocked >"$LH_TMP/tail.out" 2>&1 &
TAIL=$!
ctl tail >"$LH_TMP/tail-all.out" 2>&1 &
TAIL_ALL=$!
LH_PIDS+=("$TAIL" "$TAIL_ALL")
burst z.ads.rt.test 10 >/dev/null
a tail-visible.rt.example >/dev/null
for _ in $(seq 100); do
    [ "$(grep -c z.ads.rt.test "$LH_TMP/tail.out")" -ge 10 ] &&
        grep -q tail-visible "$LH_TMP/tail-all.out" && break
    sleep 0.1
done
expect_eq "tail --blocked: the 10 blocked queries of both loops" "$(grep -c 'z.ads.rt.test .*blocked' "$LH_TMP/tail.out")" "10"
check "... and no forwarded one" bash -c "! grep -q tail-visible '$LH_TMP/tail.out'"
kill "$TAIL" "$TAIL_ALL"
expect_match "tail: time, client, name, type, outcome, rcode" "$(cat "$LH_TMP/tail-all.out")" "[0-9:.]+ +127.0.0.1 +tail-visible.rt.example +A +forwarded +NOERROR"
expect_match "... and the list that blocked" "$(cat "$LH_TMP/tail-all.out")" "z.ads.rt.test +A +blocked +NOERROR +\\($LH_TMP/block.list\\)"

# The dashboard's defences (curl): everything but the page needs the token, the Host must be
# the listen address or localhost, a browser's Origin must be the page's, actions are POST.
TOKEN_FILE="$LH_TMP/dashboard.token"
expect_eq "token file: root only without control-group" "$(stat -c '%a %U' "$TOKEN_FILE")" "600 root"
TOK=$(cat "$TOKEN_FILE")
expect_match "loophole dashboard prints the URL with the token" "$(ctl dashboard)" "^http://$HTTP/#token=$TOK"
code() { curl -s -o "$LH_TMP/body" -w '%{http_code}' --max-time 5 "$@"; }
U="http://$HTTP"
expect_eq "GET / without a token: the page (no data)" "$(code "$U/")" "200"
expect_eq "GET /api/state without a token: 401" "$(code "$U/api/state")" "401"
expect_eq "... with a wrong token: 401" "$(code -H "X-Loophole-Token: ${TOK//[0-9]/a}" "$U/api/state")" "401"
expect_eq "... with the token: 200" "$(code -H "X-Loophole-Token: $TOK" "$U/api/state")" "200"
expect_match "... the state is JSON with the pause state" "$(cat "$LH_TMP/body")" '"blocking":\{"paused":false'
expect_eq "foreign Host (DNS rebinding): 421" "$(code -H "X-Loophole-Token: $TOK" -H 'Host: rebind.attacker.example:5380' "$U/api/state")" "421"
expect_eq "... even for the page" "$(code -H 'Host: rebind.attacker.example' "$U/")" "421"
expect_eq "Host localhost:PORT: accepted" "$(code -H 'Host: localhost:5380' "$U/")" "200"
expect_eq "foreign Origin: 403" "$(code -H "X-Loophole-Token: $TOK" -H 'Origin: http://attacker.example' -d seconds=60 "$U/api/pause")" "403"
expect_eq "cross-site fetch (Sec-Fetch-Site): 403" "$(code -H "X-Loophole-Token: $TOK" -H 'Sec-Fetch-Site: cross-site' -d seconds=60 "$U/api/pause")" "403"
expect_eq "an action without the token: 401" "$(code -H "Origin: $U" -d seconds=60 "$U/api/pause")" "401"
expect_eq "an action as GET: 405" "$(code -H "X-Loophole-Token: $TOK" "$U/api/pause")" "405"
expect_eq "a query string: 400" "$(code -H "X-Loophole-Token: $TOK" "$U/api/state?name=x")" "400"
expect_eq "... on the page too" "$(code "$U/?token=$TOK")" "400"
expect_match "none of these paused blocking" "$(ctl stats)" "blocking +on"
expect_eq "the page's own POST (token, same Origin): 200" "$(code -H "X-Loophole-Token: $TOK" -H "Origin: $U" -H 'Sec-Fetch-Site: same-origin' -d seconds=60 "$U/api/pause")" "200"
expect_match "... paused" "$(ctl stats)" "blocking +PAUSED"
ctl resume >/dev/null
hdr=$(curl -s -D - -o /dev/null --max-time 5 "$U/app.js")
expect_match "CSP: scripts only from the page's own origin, no framing" "$hdr" "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self';.*frame-ancestors 'none'"
expect_match "nosniff" "$hdr" "X-Content-Type-Options: nosniff"
check "the page has no inline script or handler" bash -c "! curl -s '$U/' | grep -E '<script>|<script [^>]*>[^<]| on[a-z]+='"
expect_eq "an unknown path: 404" "$(code "$U/etc/passwd")" "404"
big=$(head -c 5000 /dev/zero | tr '\0' a)
expect_eq "a body over 2 KiB: 413" "$(code -H "X-Loophole-Token: $TOK" -d "name=$big" "$U/api/allow")" "413"
expect_eq "Origin null (sandboxed frame, file:): 403" "$(code -H "X-Loophole-Token: $TOK" -H 'Origin: null' -d seconds=60 "$U/api/pause")" "403"
expect_eq "Host with a trailing dot: 421" "$(code -H 'Host: localhost.:5380' "$U/")" "421"
expect_eq "an absolute-form target is no API path: 404" "$(code -H "X-Loophole-Token: $TOK" --request-target "http://$HTTP/api/state" "$U/")" "404"
expect_eq "a text/plain body (a form's enctype): 415" "$(code -H "X-Loophole-Token: $TOK" -H 'Content-Type: text/plain' -d 'name=x.rt.test' "$U/api/block")" "415"
# A queried name is attacker-chosen and the page offers it to the allow button: a name that
# runtime.list would read back as another rule (or drop) is refused, nothing is written.
before=$(ctl lists | grep -cE '^  line [0-9]+: ' || true)
expect_eq "allow a name with adblock syntax in it: 400" "$(code -H "X-Loophole-Token: $TOK" -d 'name=ads.rt.test%5E%24important' "$U/api/allow")" "400"
expect_match "... with the reason" "$(cat "$LH_TMP/body")" "not a valid domain name"
expect_eq "... and no rule was added" "$(ctl lists | grep -cE '^  line [0-9]+: ' || true)" "$before"
check "the daemon still answers" lh_alive
lh_done
