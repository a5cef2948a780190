#!/usr/bin/env bash
# The leak check and the leak server, offline, in three network namespaces the test creates:
#
#   client (C)            resolver (R)                      authoritative (A)
#   loophole 127.0.0.53   Unbound X 10.252.1.1 -> egress   loophole leak-server
#   resolv.conf, nsswitch Unbound Y 10.252.1.3 -> egress   10.252.2.2, zone leaktest.example
#   10.252.1.2 ---------- 10.252.1.1/.3    10.252.2.1/.3 -- 10.252.2.2
#
# Unbound stubs leaktest.example to the leak server and everything else to a closed local
# port, so the public whoami probes fail at once and nothing leaves the namespaces.
. "$(dirname "$0")/lib.sh"
if ! ip netns add "lh-probe-$$" 2>/dev/null; then echo "SKIP: cannot create network namespaces"; exit 77; fi
ip netns del "lh-probe-$$"
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
in_ns "$R" ip addr add 10.252.1.1/24 dev "lkr$$"
in_ns "$R" ip addr add 10.252.1.3/24 dev "lkr$$"
in_ns "$R" ip addr add 10.252.2.1/24 dev "lka$$"
in_ns "$R" ip addr add 10.252.2.3/24 dev "lka$$"
in_ns "$A" ip addr add 10.252.2.2/24 dev "lkz$$"
in_ns "$C" ip link set "lkc$$" up; in_ns "$R" ip link set "lkr$$" up
in_ns "$R" ip link set "lka$$" up; in_ns "$A" ip link set "lkz$$" up
sleep 1 # let the veth addresses leave the tentative state

# The leak server.
start_leak_server() {
    ip netns exec "$A" "$LOOPHOLE" leak-server --zone "$ZONE" --listen 10.252.2.2:53 \
        --ns-address 10.252.2.2 --rate-limit 50 "$@" >>"$LH_TMP/leak-server.log" 2>&1 &
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

# Unbound X and Y: recursive resolvers that reach the zone only through the leak server.
unbound_in_r() { # ADDR EGRESS
    local conf="$LH_TMP/unbound-$1.conf"
    { lh_unbound_head "$1" "$1"; cat <<U
  outgoing-interface: $2
  do-ip6: no
  access-control: 10.252.0.0/16 allow
  qname-minimisation: yes
  local-zone: "example." nodefault
stub-zone:
  name: "$ZONE"
  stub-addr: 10.252.2.2
stub-zone:
  name: "."
  stub-addr: 127.0.0.1@1
U
    } >"$conf"
    lh_unbound_start "$conf" "$1" "$ZONE" "$R"
}
unbound_in_r 10.252.1.1 10.252.2.1
unbound_in_r 10.252.1.3 10.252.2.3

# The client: loophole on its default address, the system pointed at it.
mkdir -p "/etc/netns/$C"
echo "hosts: files dns" >"/etc/netns/$C/nsswitch.conf"
printf 'nameserver 127.0.0.53\n' >"/etc/netns/$C/resolv.conf"
start_client_loophole() { # UPSTREAM
    ip netns exec "$C" "$LOOPHOLE" --no-hosts --upstream "$1" >>"$LH_TMP/loophole.log" 2>&1 &
    LH_PID=$!; LH_PIDS+=("$LH_PID")
    for _ in $(seq 50); do
        in_ns "$C" dig @127.0.0.53 localhost +short +time=1 +tries=1 2>/dev/null | grep -q 127.0.0.1 && return
        sleep 0.1
    done
    echo "loophole did not start in the client namespace" >&2; cat "$LH_TMP/loophole.log" >&2
}
start_client_loophole 10.252.1.1
check_leak() { in_ns "$C" "$LOOPHOLE" leak-check --upstream 10.252.1.1 --probe-zone "$ZONE" "$@"; }

# 1. Clean.
t0=$(date +%s%N)
report=$(check_leak); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "$report" | sed 's/^/    | /'
expect_eq "clean setup: exit 0" "$rc" "0"
expect_match "... the egress through loophole is Unbound X's" "$report" "egress through loophole +10\.252\.2\.1
"
expect_match "... applications reach loophole (the canary)" "$report" "OK +applications \(getaddrinfo\) reach loophole"
expect_match "... DoH and hard-coded resolvers are reported as not observable" "$report" "NOT SEEN +browsers' own DNS over HTTPS"
check "... the whole check takes at most 10 s (${ms} ms)" test "$ms" -le 10000
json=$(check_leak --json); jrc=$?
jcheck=$(printf '%s' "$json" | "$LH_PY" -c '
import json, sys
r = json.load(sys.stdin)
print(r["verdict"], r["exit_code"], r["observed"]["paths"][0]["via"], ",".join(r["observed"]["paths"][0]["egress"]),
      ",".join(r["observed"]["paths"][1]["egress"]), r["observed"]["canary"]["getaddrinfo"] == r["observed"]["canary"]["expected"])
' 2>&1)
expect_eq "--json parses and says the same" "$jrc $jcheck" "0 clean 0 loophole 10.252.2.1 10.252.2.1 True"
same=$(printf '%s' "$json" | "$LH_PY" -c '
import json, re, sys
# The two runs used different canary names: compare with the random parts masked.
mask = lambda t: re.sub(r"lh[0-9a-f]{16}|127\.\d+\.\d+\.\d+", "X", t)
human = mask(open(sys.argv[1]).read())
r = json.load(sys.stdin)
missing = [f["finding"] for f in r["findings"] if mask(f["finding"]) not in human or (f["fix"] and mask(f["fix"]) not in human)]
print(len(r["findings"]), "missing:", missing)
' <(printf '%s' "$report") 2>&1)
expect_match "... every JSON finding and fix is in the human report" "$same" "^[0-9]+ missing: \[\]$"

# 2. A second nameserver that glibc falls back to.
printf 'nameserver 127.0.0.53\nnameserver 10.252.1.1\n' >"/etc/netns/$C/resolv.conf"
report=$(check_leak); rc=$?
expect_eq "extra nameserver in resolv.conf: exit 1" "$rc" "1"
expect_match "... the leak is named" "$report" "LEAK +/etc/resolv.conf also lists nameserver 10\.252\.1\.1"
expect_match "... with the fix" "$report" "fix: make /etc/resolv.conf list only loophole"
printf 'nameserver 10.252.1.1\n' >"/etc/netns/$C/resolv.conf"
report=$(check_leak); rc=$?
expect_eq "resolv.conf without loophole: exit 1" "$rc" "1"
expect_match "... the canary is answered by someone else" "$report" "LEAK +getaddrinfo says the canary .* does not exist"
printf 'nameserver 127.0.0.53\nnameserver fd00::53\noptions rotate\n' >"/etc/netns/$C/resolv.conf"
echo "hosts: files resolve [!UNAVAIL=return] dns" >"/etc/netns/$C/nsswitch.conf"
ip netns exec "$C" "$LH_PY" -c 'import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.99", 53)); time.sleep(30)' &
OTHER=$!; LH_PIDS+=("$OTHER"); sleep 0.3
report=$(check_leak); rc=$?
expect_eq "IPv6 nameserver, rotate, nss-resolve, another server on port 53: exit 1" "$rc" "1"
expect_match "... the IPv6 nameserver" "$report" "LEAK +/etc/resolv.conf also lists nameserver fd00::53 \(IPv6\)"
expect_match "... options rotate" "$report" "LEAK +/etc/resolv.conf has 'options rotate'"
expect_match "... nsswitch's resolve module" "$report" "LEAK +nsswitch.conf sends host lookups to systemd-resolved"
expect_match "... the other port-53 server" "$report" "WARN +another DNS server listens on 127.0.0.99 port 53"
kill "$OTHER"
echo "hosts: files dns" >"/etc/netns/$C/nsswitch.conf"
printf 'nameserver 127.0.0.53\n' >"/etc/netns/$C/resolv.conf"

# 3. loophole's configuration says X, but the running daemon sends queries out through Y.
kill "$LH_PID"; wait "$LH_PID"
start_client_loophole 10.252.1.3
report=$(check_leak); rc=$?
expect_eq "configured upstream X, egress through Y: exit 1" "$rc" "1"
expect_match "... the foreign egress is named" "$report" "LEAK +queries through loophole reach the authoritative side from 10\.252\.2\.3"
kill "$LH_PID"; wait "$LH_PID"
start_client_loophole 10.252.1.1

# 4. The probe zone is unreachable: cannot tell.
kill "$LEAK_PID"; wait "$LEAK_PID"
report=$(check_leak); rc=$?
expect_eq "probe zone unreachable: exit 2" "$rc" "2"
expect_match "... with the reason" "$report" "UNKNOWN +no egress probe through loophole \(127\.0\.0\.53:53\) reported a resolver address"
expect_match "... the verdict says so" "$report" "Verdict: COULD NOT TELL \(exit 2\)"

lh_done
