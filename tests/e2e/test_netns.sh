#!/usr/bin/env bash
# Network namespaces the test creates itself (nothing leaves them):
#  1. the sidecar contract, as the kernel sees a pod: loophole on 127.0.0.53 in a namespace,
#     an "app" in the same namespace with a private resolv.conf resolving localhost, a blocked
#     name and a forwarded name through it, while nothing outside the namespace reaches it;
#  2. access control: a client on another host (namespace) is REFUSED unless allow-client
#     names its network; listening on a non-loopback address requires allow-client;
#  3. response-rate limiting of remote clients (and none for loopback).
. "$(dirname "$0")/lib.sh"
lh_need_netns
POD="lh-pod-$$" SRV="lh-srv-$$" CLI="lh-cli-$$"
cleanup_ns() { for n in "$POD" "$SRV" "$CLI"; do ip netns del "$n" 2>/dev/null; done; }
trap 'lh_cleanup; cleanup_ns' EXIT
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# 1. The pod: loophole and a fake upstream share the namespace's loopback.
ip netns add "$POD"
in_ns "$POD" ip link set lo up
# A pod has an eth0: glibc's AI_ADDRCONFIG ignores loopback-only hosts.
ip link add "lhp$$" netns "$POD" type veth peer name eth0 netns "$POD"
in_ns "$POD" ip addr add 10.254.0.2/24 dev eth0
in_ns "$POD" ip addr add fd00:254::2/64 dev eth0 nodad
in_ns "$POD" ip link set "lhp$$" up
in_ns "$POD" ip link set eth0 up
echo '||ads.pod.test^' >"$LH_TMP/block.list"
ip netns exec "$POD" "$LH_PY" "$LH_SRC/tests/e2e/fakeupstream.py" 127.0.0.2 answer "$LH_TMP/fake-pod.log" \
    >"$LH_TMP/fake-pod.out" 2>&1 &
LH_PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$LH_TMP/fake-pod.out" 2>/dev/null && break; sleep 0.1; done
ip netns exec "$POD" "$LOOPHOLE" --no-hosts --upstream 127.0.0.2 --blocklist "$LH_TMP/block.list" \
    >>"$LH_TMP/loophole.log" 2>&1 &   # the default address: 127.0.0.53:53
LH_PID=$!; lh_track "$LH_PID"
for _ in $(seq 50); do
    in_ns "$POD" dig @127.0.0.53 localhost +short +time=1 +tries=1 2>/dev/null | grep -q 127.0.0.1 && break
    sleep 0.1
done
printf 'nameserver 127.0.0.53\noptions timeout:2 attempts:1\n' >"$LH_TMP/resolv.conf"
echo "hosts: dns" >"$LH_TMP/nsswitch.conf"
app() { # the app container: same network namespace, its own /etc/resolv.conf
    in_ns "$POD" unshare -m bash -c "mount --bind '$LH_TMP/resolv.conf' /etc/resolv.conf &&
        mount --bind '$LH_TMP/nsswitch.conf' /etc/nsswitch.conf && $1"
}
expect_eq "app: localhost (both families)" "$(app 'getent ahosts localhost' | awk '{print $1}' | sort -u | tr '\n' ' ')" "127.0.0.1 ::1 "
expect_eq "app: a blocked name is sinkholed" "$(app 'getent ahostsv4 x.ads.pod.test' | awk 'NR==1{print $1}')" "127.0.0.1"
expect_eq "app: a forwarded name resolves through the upstream" "$(app 'getent ahostsv4 www.example.pod' | awk 'NR==1{print $1}')" "192.0.2.1"
expect_eq "the upstream saw the forwarded name" "$(grep -ci www.example.pod "$LH_TMP/fake-pod.log")" "1"
expect_eq "nothing outside the pod reaches it" "$(dig @127.0.0.53 x.ads.pod.test +short +time=1 +tries=1 2>/dev/null | grep -c '^127.0.0.1$')" "0"
lh_stop
expect_eq "the sidecar stops cleanly" "$?" "0"

# 2. Two hosts joined by a veth link: the server at 10.253.0.1, a client at 10.253.0.2.
ip netns add "$SRV"; ip netns add "$CLI"
ip link add "lhs$$" netns "$SRV" type veth peer name "lhc$$" netns "$CLI"
in_ns "$SRV" ip addr add 10.253.0.1/30 dev "lhs$$"; in_ns "$SRV" ip link set "lhs$$" up; in_ns "$SRV" ip link set lo up
in_ns "$CLI" ip addr add 10.253.0.2/30 dev "lhc$$"; in_ns "$CLI" ip link set "lhc$$" up
err=$(in_ns "$SRV" "$LOOPHOLE" --listen 10.253.0.1:53 --no-hosts "${LH_NO_UPSTREAM[@]}" 2>&1)
expect_eq "a non-loopback listener without allow-client is refused" "$?" "2"
expect_match "... with the reason" "$err" "not a loopback address, needs an explicit list of client networks"
start_srv() {
    ip netns exec "$SRV" "$LOOPHOLE" --listen 10.253.0.1:53 --listen 127.0.0.1:53 --no-hosts \
        "${LH_NO_UPSTREAM[@]}" "$@" >>"$LH_TMP/loophole.log" 2>&1 &
    LH_PID=$!; lh_track "$LH_PID"
    for _ in $(seq 50); do
        in_ns "$SRV" dig @127.0.0.1 localhost +short +time=1 +tries=1 2>/dev/null | grep -q 127.0.0.1 && return
        sleep 0.1
    done
}
start_srv --allow-client 192.0.2.0/24
expect_eq "a client outside allow-client gets REFUSED (UDP)" "$(in_ns "$CLI" dig @10.253.0.1 localhost +time=2 +tries=1 | sed -n 's/.*status: \([A-Z]*\).*/\1/p')" "REFUSED"
expect_match "... with EDE 18 (Prohibited)" "$(in_ns "$CLI" dig @10.253.0.1 localhost +time=2 +tries=1)" "EDE: 18"
expect_match "... and no answer over TCP" "$(in_ns "$CLI" dig @10.253.0.1 localhost +tcp +time=2 +tries=1 2>&1)" "(communications error|connection reset|end of file|no servers could be reached)"
expect_eq "loopback clients are still answered" "$(in_ns "$SRV" dig @127.0.0.1 localhost +short)" "127.0.0.1"
lh_stop
start_srv --allow-client 10.253.0.0/30
expect_eq "a client inside allow-client is answered (UDP)" "$(in_ns "$CLI" dig @10.253.0.1 localhost +short +time=2 +tries=1)" "127.0.0.1"
expect_eq "... and over TCP" "$(in_ns "$CLI" dig @10.253.0.1 localhost +short +tcp +time=2 +tries=1)" "127.0.0.1"
lh_stop

# 3. Response-rate limiting: a burst of 200 queries from the client network at --rate-limit 20.
burst() { # NS SERVER: prints "answered truncated"
    ip netns exec "$1" "$LH_PY" -c '
import socket, sys, dns.message, dns.flags
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
for i in range(200):
    s.sendto(dns.message.make_query("localhost", "A", id=i).to_wire(), (sys.argv[1], 53))
full = tc = 0
try:
    while True:
        r = dns.message.from_wire(s.recv(4096))
        if r.flags & dns.flags.TC: tc += 1
        else: full += 1
except socket.timeout: pass
print(full, tc)' "$2"
}
start_srv --allow-client 10.253.0.0/30 --rate-limit 20
read -r full tc <<<"$(burst "$CLI" 10.253.0.1)"
check "rate limit: at most 2 windows of 20 full answers to a remote burst ($full of 200)" test "$full" -ge 1 -a "$full" -le 40
check "... every 2nd answer over the limit is sent truncated, empty ($tc)" test "$tc" -ge 60 -a "$tc" -le 100
read -r full tc <<<"$(burst "$SRV" 127.0.0.1)"
expect_eq "... loopback clients are never limited" "$full $tc" "200 0"
expect_eq "... and TCP still answers the limited client" "$(in_ns "$CLI" dig @10.253.0.1 localhost +short +tcp +time=2 +tries=1)" "127.0.0.1"
lh_stop
lh_done
