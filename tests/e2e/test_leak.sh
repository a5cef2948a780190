#!/usr/bin/env bash
# The leak check and the leak server, offline, in three network namespaces the test creates:
#
#   client (C)             resolver / router (R)                      authoritative (A)
#   loophole 127.0.0.53    Unbound X  10.252.1.1 -> egress 10.252.2.1  loophole leak-server
#   resolv.conf, nsswitch  Unbound Y  10.252.1.3 -> egress 10.252.2.3  10.252.2.2, fd52:2::2
#   10.252.1.2, fd52:1::2  Unbound Z  10.252.1.4 -> egress 10.252.2.4  zone leaktest.example
#   default route via R    Unbound X6 fd52:1::1  -> egress fd52:2::1
#                          Unbound Y6 fd52:1::3  -> egress fd52:2::3
#                          forwards between C and A; nft DNAT rules for the interception cases
#
# Unbound stubs leaktest.example to the leak server and everything else to a closed local
# port, so the public whoami probes fail at once and nothing leaves the namespaces. Z and Y6
# are the "other" resolvers an intercepting router redirects port 53 to.
#
# Then the matrix: one leak-check run per case, each with its exit code, the culprit named in
# the report, and the time it took (the issue asks for at most 10 s each).
. "$(dirname "$0")/lib.sh"
lh_need_netns
C="lhlc-$$" R="lhlr-$$" A="lhla-$$" ZONE=leaktest.example
cleanup_ns() { for n in "$C" "$R" "$A"; do ip netns del "$n" 2>/dev/null; done; rm -rf "/etc/netns/$C"; }
trap 'lh_cleanup; cleanup_ns' EXIT
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
# Background servers are started with 'ip netns exec' itself, never through in_ns: $! of a
# backgrounded function is a subshell, and killing it would leave the server running.

for n in "$C" "$R" "$A"; do ip netns add "$n"; in_ns "$n" ip link set lo up; done
ip link add "lkc$$" netns "$C" type veth peer name "lkr$$" netns "$R"
ip link add "lka$$" netns "$R" type veth peer name "lkz$$" netns "$A"
in_ns "$C" ip addr add 10.252.1.2/24 dev "lkc$$"
for a in 1 3 4; do in_ns "$R" ip addr add "10.252.1.$a/24" dev "lkr$$"; done
for a in 1 3 4; do in_ns "$R" ip addr add "10.252.2.$a/24" dev "lka$$"; done
in_ns "$A" ip addr add 10.252.2.2/24 dev "lkz$$"
in_ns "$C" ip addr add fd52:1::2/64 dev "lkc$$" nodad
for a in 1 3; do in_ns "$R" ip addr add "fd52:1::$a/64" dev "lkr$$" nodad; done
for a in 1 3; do in_ns "$R" ip addr add "fd52:2::$a/64" dev "lka$$" nodad; done
in_ns "$A" ip addr add fd52:2::2/64 dev "lkz$$" nodad
in_ns "$C" ip link set "lkc$$" up; in_ns "$R" ip link set "lkr$$" up
in_ns "$R" ip link set "lka$$" up; in_ns "$A" ip link set "lkz$$" up
# R routes between the client and the leak server, as a home router would.
in_ns "$R" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
in_ns "$C" ip route add default via 10.252.1.1
in_ns "$C" ip -6 route add default via fd52:1::1
in_ns "$A" ip route add 10.252.1.0/24 via 10.252.2.1
in_ns "$A" ip -6 route add fd52:1::/64 via fd52:2::1
sleep 1 # let the veth addresses leave the tentative state

# The leak server.
start_leak_server() {
    ip netns exec "$A" "$LOOPHOLE" leak-server --zone "$ZONE" --listen 10.252.2.2:53 \
        --listen "[fd52:2::2]:53" --ns-address 10.252.2.2 --ns-address fd52:2::2 --rate-limit 50 \
        "$@" >>"$LH_TMP/leak-server.log" 2>&1 &
    LEAK_PID=$!; LH_PIDS+=("$LEAK_PID")
    for _ in $(seq 50); do
        in_ns "$R" dig @10.252.2.2 "$ZONE" SOA +short +time=1 +tries=1 2>/dev/null | grep -q . && return
        sleep 0.1
    done
    echo "leak server did not start" >&2; cat "$LH_TMP/leak-server.log" >&2
}
start_leak_server
rdig() { in_ns "$R" dig @10.252.2.2 +norec +time=2 +tries=1 "$@"; }
status() { sed -n 's/.*status: \([A-Z]*\).*/\1/p' | head -1; }
flags() { sed -n 's/.*flags: \([a-z ]*\);.*/\1/p' | head -1; }
out=$(rdig "$ZONE" SOA)
expect_eq "leak server: SOA at the apex, authoritative" "$(echo "$out" | flags)" "qr aa"
expect_eq "... NS at the apex" "$(rdig "$ZONE" NS +short)" "ns1.$ZONE."
expect_eq "... the name server's address" "$(rdig "ns1.$ZONE" A +short)" "10.252.2.2"
expect_eq "... a probe name gets the asker's address (A)" "$(rdig "abc.$ZONE" A +short)" "10.252.2.1"
expect_eq "... and as TXT" "$(rdig "AbC.$ZONE" TXT +short)" '"10.252.2.1"'
expect_eq "... over TCP too" "$(rdig "abc.$ZONE" TXT +short +tcp)" '"10.252.2.1"'
in_ns "$R" dig @10.252.2.2 -b 10.252.2.3 "x.abc.$ZONE" A +short +time=2 +tries=1 >/dev/null
expect_eq "... results name lists every resolver seen for the label" \
    "$(rdig "results.abc.$ZONE" TXT +short | sort | tr '\n' ' ')" '"10.252.2.1" "10.252.2.3" '
out=$(rdig "abc.$ZONE" DS)
expect_eq "... DS below the apex: NODATA" "$(echo "$out" | status) $(echo "$out" | grep -c 'IN.SOA')" "NOERROR 1"
out=$(rdig "$ZONE" DNSKEY)
expect_eq "... DNSKEY: NODATA with the SOA, authoritative" "$(echo "$out" | status) $(echo "$out" | flags) $(echo "$out" | grep -c 'IN.SOA')" "NOERROR qr aa 1"
expect_eq "... AAAA for an IPv4 resolver: NODATA" "$(rdig "abc.$ZONE" AAAA | status)" "NOERROR"
rdig6() { in_ns "$R" dig @fd52:2::2 -b fd52:2::1 +norec +time=2 +tries=1 "$@"; }
expect_eq "... asked over IPv6: the IPv6 asker's address as AAAA" "$(rdig6 "v6.$ZONE" AAAA +short)" "fd52:2::1"
expect_eq "... and as TXT" "$(rdig6 "v6.$ZONE" TXT +short)" '"fd52:2::1"'
expect_eq "... the name server's IPv6 address" "$(rdig6 "ns1.$ZONE" AAAA +short)" "fd52:2::2"
out=$(rdig example.com A)
expect_eq "... outside its zone: REFUSED, no recursion offered" "$(echo "$out" | status) $(echo "$out" | flags)" "REFUSED qr"
answered=$(in_ns "$R" "$LH_PY" - <<'PY'
import socket, time, dns.message
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.3)
for i in range(200):
    s.sendto(dns.message.make_query("rl%d.leaktest.example" % i, "A").to_wire(), ("10.252.2.2", 53))
n = 0
try:
    while True: s.recv(512); n += 1
except socket.timeout: pass
print(n)
PY
)
check "... rate-limited per source ($answered of 200 answered, limit 50/s)" test "$answered" -ge 1 -a "$answered" -le 100
sleep 1.1 # a fresh window for Unbound's source address

# The resolvers in R: recursive, reaching the zone only through the leak server.
unbound_in_r() { # NAME LISTEN EGRESS FAMILY(4|6)
    local conf="$LH_TMP/unbound-$1.conf" stub=10.252.2.2 closed=127.0.0.1@1 only="do-ip6: no"
    [ "$4" = 6 ] && { stub=fd52:2::2; closed=::1@1; only="do-ip4: no"; }
    { lh_unbound_head "$2" "$1"; cat <<U
  outgoing-interface: $3
  $only
  access-control: 10.252.0.0/16 allow
  access-control: fd52::/16 allow
  qname-minimisation: yes
  local-zone: "example." nodefault
stub-zone:
  name: "$ZONE"
  stub-addr: $stub
stub-zone:
  name: "."
  stub-addr: $closed
U
    } >"$conf"
    lh_unbound_start "$conf" "$2" "$ZONE" "$R"
}
unbound_in_r x 10.252.1.1 10.252.2.1 4
unbound_in_r y 10.252.1.3 10.252.2.3 4
unbound_in_r z 10.252.1.4 10.252.2.4 4
unbound_in_r x6 fd52:1::1 fd52:2::1 6
unbound_in_r y6 fd52:1::3 fd52:2::3 6

# The client: loophole on its default address with a control socket, the system pointed at it.
CTL="$LH_TMP/control.sock"
mkdir -p "/etc/netns/$C"
echo "hosts: files dns" >"/etc/netns/$C/nsswitch.conf"
printf 'nameserver 127.0.0.53\n' >"/etc/netns/$C/resolv.conf"
start_client_loophole() { # loophole's flags
    ip netns exec "$C" "$LOOPHOLE" --no-hosts --control-socket "$CTL" "$@" >>"$LH_TMP/loophole.log" 2>&1 &
    LH_PID=$!; LH_PIDS+=("$LH_PID")
    for _ in $(seq 50); do
        in_ns "$C" dig @127.0.0.53 localhost +short +time=1 +tries=1 2>/dev/null | grep -q 127.0.0.1 && return
        sleep 0.1
    done
    echo "loophole did not start in the client namespace" >&2; cat "$LH_TMP/loophole.log" >&2
}
stop_client_loophole() { kill "$LH_PID"; wait "$LH_PID"; }
PZ=(--probe-zone "$ZONE")
check_leak() { in_ns "$C" "$LOOPHOLE" leak-check --control-socket "$CTL" "${PZ[@]}" "$@"; }

# leak_case NAME RC CULPRIT [leak-check flags...]: one matrix case. Runs the check once, shows
# the report, and checks the exit code, the culprit named in the report and the time taken.
# The report is left in $report.
leak_case() {
    local name=$1 want=$2 culprit=$3; shift 3
    local t0=$(date +%s%N)
    report=$(check_leak "$@"); local rc=$?
    local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    echo "$report" | sed 's/^/    | /'
    expect_eq "$name: exit $want" "$rc" "$want"
    expect_match "... the culprit is named" "$report" "$culprit"
    check "... within 10 s (${ms} ms)" test "$ms" -le 10000
}
# json_case FILE [leak-check flags...]: the same check as JSON, kept for the schema check.
json_case() { local f="$LH_TMP/report-$1.json"; shift; check_leak --json "$@" >"$f"; JSON_FILES+=("$f"); }
JSON_FILES=()
jq_py() { "$LH_PY" -c "import json, sys; r = json.load(open(sys.argv[1])); print($2)" "$1" 2>&1; }

start_client_loophole --upstream 10.252.1.1

# 1. Clean.
leak_case "clean" 0 "VERDICT: NO LEAK SEEN \(exit 0\)"
expect_match "... the egress through loophole is Unbound X's" "$report" "egress through loophole +10\.252\.2\.1
"
expect_match "... loophole's settings come from the running daemon" "$report" "loophole settings from +the running daemon, pid [0-9]+, through $CTL"
expect_match "... applications reach loophole (the canary)" "$report" "OK +applications \(getaddrinfo\) reach loophole"
expect_match "... no interception seen" "$report" "OK +no DNS interception seen: questions sent straight to the leak server were answered by the leak server itself, and nothing answered at 192\.0\.2\.53 or 2001:db8::53"
expect_match "... plaintext forwarding is a warning" "$report" "WARN +loophole forwards to 10\.252\.1\.1:53 in plaintext \(UDP, TCP\): on-path networks see and can change every forwarded name"
expect_match "... with its fix: an encrypted upstream" "$report" "fix: an encrypted upstream"
expect_match "... the path diagram, every hop named" "$report" "\[ ok \] application .*
 +\|
  \[ ok \] glibc +/etc/resolv.conf: 127\.0\.0\.53 \(loophole\).*
 +\|
  \[ ok \] loophole +127\.0\.0\.53:53, the running daemon.*
 +\|
  \[WARN\] upstream\(s\) +10\.252\.1\.1:53 plain.*
 +\|
  \[ ok \] egress +10\.252\.2\.1.*
 +\|
  \[ ok \] leak server +leaktest\.example at 10\.252\.2\.2 fd52:2::2"
expect_match "... DoH and hard-coded resolvers are reported as not observable" "$report" "NOT SEEN +browsers' own DNS over HTTPS"
check "... plain text when not on a terminal (no escape sequences)" test "$(printf '%s' "$report" | grep -c $'\033')" -eq 0
tty_out=$(in_ns "$C" script -qec "$LOOPHOLE leak-check --control-socket $CTL --probe-zone $ZONE" /dev/null)
check "... colour on a terminal" grep -q $'\033\\[32m ok ' <<<"$tty_out"
json_case clean
expect_eq "--json says the same" "$(jq_py "$LH_TMP/report-clean.json" '
    r["verdict"], r["exit_code"], r["configured"]["source"], r["observed"]["paths"][0]["via"],
    ",".join(r["observed"]["paths"][0]["egress"]), ",".join(r["observed"]["paths"][1]["egress"]),
    r["observed"]["canary"]["getaddrinfo"] == r["observed"]["canary"]["expected"],
    r["configured"]["upstreams"][0]["transport"], r["configured"]["upstreams"][0]["privacy"],
    r["configured"]["upstreams"][0]["source"],
    r["observed"]["interception"]["tested"], r["observed"]["interception"]["intercepted"],
    [h["status"] for h in r["path"]]')" \
    "clean 0 daemon loophole 10.252.2.1 10.252.2.1 True plain plain flag True False ['ok', 'ok', 'ok', 'warn', 'ok', 'ok']"
same=$("$LH_PY" -c '
import json, re, sys
# The two runs used different random names: compare with the random parts masked.
mask = lambda t: re.sub(r"lh[0-9a-f]{16}|127\.\d+\.\d+\.\d+|pid \d+", "X", t)
human = mask(open(sys.argv[1]).read())
r = json.load(open(sys.argv[2]))
missing = [f["finding"] for f in r["findings"] if mask(f["finding"]) not in human or (f["fix"] and mask(f["fix"]) not in human)]
print(len(r["findings"]), "missing:", missing)
' <(printf '%s' "$report") "$LH_TMP/report-clean.json" 2>&1)
expect_match "... every JSON finding and fix is in the text report" "$same" "^[0-9]+ missing: \[\]$"
stats=$(in_ns "$C" "$LOOPHOLE" stats --control-socket "$CTL")
expect_match "stats: the listen addresses and where they came from" "$stats" "listening +127\.0\.0\.53:53 \(default\)"
expect_match "... each upstream with its transport and origin" "$stats" "10\.252\.1\.1:53 +plain, flag; queries [0-9]+"
expect_eq "... and in stats --json" "$(in_ns "$C" "$LOOPHOLE" stats --json --control-socket "$CTL" | "$LH_PY" -c '
import json, sys; s = json.load(sys.stdin); u = s["upstreams"][0]
print(s["listen"][0]["address"], s["listen"][0]["source"], u["server"], u["transport"], u["zone"], u["source"], s["config_file"])')" \
    "127.0.0.53:53 default 10.252.1.1:53 plain . flag None"
expect_eq "... and the control socket's 'config json'" "$("$LH_PY" - "$CTL" <<'PY' 2>&1
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"config json\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk: break
    data += chunk
status, body = data.decode().split("\n", 1)
c = json.loads(body); u = c["upstreams"][0]
print(status, c["pid"] > 0, c["listen"][0]["address"], u["server"], u["transport"], u["zone"], u["source"])
PY
)" "ok True 127.0.0.53:53 10.252.1.1:53 plain . flag"

# 2-7. The system around loophole.
printf 'nameserver 127.0.0.53\nnameserver 10.252.1.1\n' >"/etc/netns/$C/resolv.conf"
leak_case "extra IPv4 nameserver" 1 "LEAK +/etc/resolv.conf also lists nameserver 10\.252\.1\.1: glibc sends queries there"
expect_match "... with the fix" "$report" "fix: make /etc/resolv.conf list only loophole"
expect_match "... the diagram marks glibc as the leaking hop" "$report" "\[LEAK\] glibc .* <-- leaks here"
printf 'nameserver 127.0.0.53\nnameserver fd52:1::3\n' >"/etc/netns/$C/resolv.conf"
leak_case "extra IPv6 nameserver" 1 "LEAK +/etc/resolv.conf also lists nameserver fd52:1::3 \(IPv6\)"
printf 'nameserver 10.252.1.1\n' >"/etc/netns/$C/resolv.conf"
leak_case "system bypassing loophole" 1 "LEAK +getaddrinfo says the canary .* does not exist: a resolver other than loophole"
expect_match "... and resolv.conf does not point at loophole" "$report" "LEAK +/etc/resolv.conf does not point at loophole"
printf 'nameserver 127.0.0.53\nnameserver 10.252.1.3\noptions rotate\n' >"/etc/netns/$C/resolv.conf"
leak_case "options rotate" 1 "LEAK +/etc/resolv.conf has 'options rotate': glibc spreads queries over all 2 nameservers"
printf 'nameserver 127.0.0.53\n' >"/etc/netns/$C/resolv.conf"
echo "hosts: files resolve [!UNAVAIL=return] dns" >"/etc/netns/$C/nsswitch.conf"
leak_case "nss-resolve" 1 "LEAK +nsswitch.conf sends host lookups to systemd-resolved \('resolve' in"
echo "hosts: files dns" >"/etc/netns/$C/nsswitch.conf"
ip netns exec "$C" "$LH_PY" -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.99", 53))
print("ready", flush=True); time.sleep(60)' >"$LH_TMP/other53.out" 2>&1 &
OTHER=$!; LH_PIDS+=("$OTHER")
for _ in $(seq 50); do grep -q ready "$LH_TMP/other53.out" && break; sleep 0.1; done
leak_case "another port-53 server (a warning, not a proven leak)" 0 "WARN +another DNS server listens on 127\.0\.0\.99 port 53"
kill "$OTHER"; wait "$OTHER" 2>/dev/null

# 8. Interception: R redirects every port-53 packet from the client to Unbound Z.
in_ns "$R" nft -f - <<NFT
table ip lhnat {
  chain pre {
    type nat hook prerouting priority dstnat;
    iifname "lkr$$" meta l4proto { udp, tcp } th dport 53 dnat to 10.252.1.4
  }
}
NFT
leak_case "interception by DNAT" 1 "LEAK +DNS is intercepted: .* sent to 10\.252\.2\.2:53 \(the leak server\) was answered \(NXDOMAIN, recursion available\) by a resolver that reaches the authoritative side from 10\.252\.2\.4"
expect_match "... the address where no DNS server runs answered too" "$report" "LEAK +DNS is intercepted: lh[0-9a-f]+\.$ZONE sent to 192\.0\.2\.53:53, where no DNS server runs, was answered"
expect_match "... the diagram marks the upstream hop" "$report" "\[LEAK\] upstream\(s\) .* <-- leaks here"
json_case intercepted
expect_eq "... --json names the interceptor" "$(jq_py "$LH_TMP/report-intercepted.json" 'r["exit_code"], r["observed"]["interception"]["intercepted"], r["observed"]["interception"]["answered_by"]')" "1 True ['10.252.2.4']"
PZ=()
leak_case "interception without a leak server: the unused address answers" 1 "LEAK +DNS is intercepted: whoami\.akamai\.net sent to 192\.0\.2\.53:53, where no DNS server runs, was answered \(SERVFAIL, recursion available\)"
PZ=(--probe-zone "$ZONE")
in_ns "$R" nft delete table ip lhnat
leak_case "... the redirect removed" 0 "OK +no DNS interception seen"

# 9. A stale daemon: started from a config file that has been edited since.
stop_client_loophole
printf 'upstream = 10.252.1.3\n' >"$LH_TMP/client.conf"
start_client_loophole --config "$LH_TMP/client.conf"
printf 'upstream = 10.252.1.1\n' >"$LH_TMP/client.conf"
leak_case "stale daemon vs config" 1 "LEAK +the running loophole \(pid [0-9]+\) forwards to 10\.252\.1\.3:53, but $LH_TMP/client\.conf names 10\.252\.1\.1:53"
expect_match "... the probes test what runs: Y's egress, seen directly too" "$report" "OK +queries through loophole egress only where its upstreams do"
# 10. No daemon to ask: the check says so and uses its flags; the egress still gives the
# stale daemon away.
leak_case "no daemon reachable, flags used" 1 "LEAK +queries through loophole reach the authoritative side from 10\.252\.2\.3" \
    --control-socket "$LH_TMP/nothing.sock" --upstream 10.252.1.1
expect_match "... and says it used its own configuration" "$report" "INFO +no running loophole could be asked \(cannot reach $LH_TMP/nothing\.sock: No such file or directory"
json_case nodaemon --control-socket "$LH_TMP/nothing.sock" --upstream 10.252.1.1
stop_client_loophole
# A flag that overrides the config file is what the user asked for, not a stale setting.
start_client_loophole --config "$LH_TMP/client.conf" --upstream 10.252.1.3
leak_case "a flag overriding the config file is not stale" 0 "OK +the running loophole \(pid [0-9]+\) was asked for its listen addresses and upstreams"
stop_client_loophole

# 11. IPv6 end to end: loophole forwards to X6, which reaches the leak server over IPv6.
start_client_loophole --upstream "[fd52:1::1]:53"
leak_case "IPv6 egress, clean" 0 "egress through loophole +fd52:2::1
"
json_case ipv6
expect_eq "... --json: the IPv6 egress on both paths" "$(jq_py "$LH_TMP/report-ipv6.json" 'r["verdict"], r["observed"]["paths"][0]["egress"], r["observed"]["paths"][1]["egress"]')" "clean ['fd52:2::1'] ['fd52:2::1']"
# 12. ... and a client whose IPv6 DNS leaves by another resolver: R redirects IPv6 port 53 to Y6.
in_ns "$R" nft -f - <<NFT
table ip6 lhnat6 {
  chain pre {
    type nat hook prerouting priority dstnat;
    iifname "lkr$$" meta l4proto { udp, tcp } th dport 53 dnat to fd52:1::3
  }
}
NFT
leak_case "IPv6 route by another resolver" 1 "LEAK +DNS is intercepted: .* sent to \[fd52:2::2\]:53 \(the leak server\) was answered .* from fd52:2::3"
expect_match "... the egress through loophole is Y6's" "$report" "egress through loophole +fd52:2::3"
in_ns "$R" nft delete table ip6 lhnat6
stop_client_loophole
start_client_loophole --upstream 10.252.1.1

# 13. The probe zone is unreachable: cannot tell.
kill "$LEAK_PID"; wait "$LEAK_PID"
leak_case "probe path cut" 2 "UNKNOWN +no egress probe through loophole \(127\.0\.0\.53:53\) reported a resolver address"
expect_match "... the verdict says so" "$report" "Verdict: COULD NOT TELL \(exit 2\)"
expect_match "... and the banner" "$report" "VERDICT: COULD NOT TELL \(exit 2\)"
json_case cut

# The JSON reports against the documented schema.
for f in "${JSON_FILES[@]}"; do
    out=$("$LH_PY" - "$LH_SRC/docs/leak-check.schema.json" "$f" <<'PY' 2>&1
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
jsonschema.validate(json.load(open(sys.argv[2])), schema, cls=jsonschema.Draft202012Validator)
print("valid")
PY
)
    expect_eq "$(basename "$f"): valid against docs/leak-check.schema.json" "$out" "valid"
done

lh_done
