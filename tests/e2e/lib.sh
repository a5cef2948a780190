# lib.sh - shared helpers for end-to-end tests. Each test script sources this, starts its own
# loophole on its own loopback address (127.53.X.Y, derived from the script name so parallel
# tests never collide), and stops only the processes it started, by PID.
set -uo pipefail

: "${LOOPHOLE:?set LOOPHOLE to the loophole binary}"
: "${LH_SRC:?set LH_SRC to the source tree}"
LH_PY=/usr/bin/python3 # Debian's python, which can import python3-dnspython
LH_TEST=$(basename "$0" .sh)
LH_TMP=$(mktemp -d "/tmp/lh-$LH_TEST-XXXXXX")
chmod 755 "$LH_TMP" # the daemon drops to 'nobody' and must still read its lists on reload
_sum=$(printf '%s' "$LH_TEST" | cksum | cut -d' ' -f1)
LH_ADDR="127.53.$(( _sum % 250 + 1 )).$(( (_sum / 250) % 250 + 1 ))"
# lh_peer N: the Nth peer address of this test (upstreams, other daemons): 127.(53+N).X.Y
lh_peer() { echo "127.$((53 + $1)).${LH_ADDR#127.53.}"; }
LH_PIDS=()
# Never the machine's resolver: unless a test names its own --upstream, forwarded names go to
# a closed loopback port and fail at once.
LH_NO_UPSTREAM=(--resolv-conf /dev/null --fallback-upstream 127.0.0.1:1)
LH_PASS=0
LH_FAIL=0

lh_cleanup() {
    for p in "${LH_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${LH_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$LH_TMP"
}
trap lh_cleanup EXIT

ok() { LH_PASS=$((LH_PASS + 1)); echo "ok   - $*"; }
not_ok() { LH_FAIL=$((LH_FAIL + 1)); echo "FAIL - $*"; }
# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
# expect_eq DESCRIPTION ACTUAL EXPECTED
expect_eq() {
    if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1: got [$2], expected [$3]"; fi
}
# expect_match DESCRIPTION TEXT REGEX
expect_match() {
    if [[ "$2" =~ $3 ]]; then ok "$1"; else not_ok "$1: [$2] does not match /$3/"; fi
}
lh_done() {
    # Stop everything first: sanitizers report leaks when the daemon exits.
    for p in "${LH_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${LH_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    LH_PIDS=()
    if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$LH_TMP/loophole.log" 2>/dev/null; then
        not_ok "sanitizer findings in the daemon's log:"
        grep -A30 -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$LH_TMP/loophole.log" | head -60
    fi
    echo "$LH_TEST: $LH_PASS passed, $LH_FAIL failed"
    [ "$LH_FAIL" -eq 0 ]
    exit $?
}

# lh_start [ARGS...]: starts loophole on $LH_ADDR:53 (plus ARGS) and waits until it answers.
# Its state directory (the list snapshot) is the test's own, never the machine's.
# Sets LH_PID; the log is $LH_TMP/loophole.log.
lh_start() {
    "$LOOPHOLE" serve --listen "$LH_ADDR:53" --log-level debug "${LH_NO_UPSTREAM[@]}" \
        --control-socket "$LH_TMP/control.sock" --state-dir "$LH_TMP/state" "$@" \
        >>"$LH_TMP/loophole.log" 2>&1 &
    LH_PID=$!
    LH_PIDS+=("$LH_PID")
    lh_wait_ready "$LH_ADDR"
}

# lh_wait_ready ADDR: up to 5 s for a daemon to answer localhost there.
lh_wait_ready() {
    for _ in $(seq 50); do
        if dig @"$1" localhost +short +time=1 +tries=1 2>/dev/null | grep -q 127.0.0.1; then
            return 0
        fi
        kill -0 "$LH_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "loophole did not come up on $1; log:" >&2
    cat "$LH_TMP/loophole.log" >&2
    return 1
}

# lh_stop: SIGTERM, then the exit code of the daemon.
lh_stop() {
    kill -TERM "$LH_PID" 2>/dev/null
    wait "$LH_PID"
}

# lh_alive: the daemon still runs and answers.
lh_alive() {
    kill -0 "$LH_PID" 2>/dev/null &&
        [ "$(dig @"$LH_ADDR" localhost +short +time=2 +tries=1)" == "127.0.0.1" ]
}

# d ARGS...: dig against the test daemon, short timeouts.
d() { dig @"$LH_ADDR" +time=2 +tries=1 "$@"; }
# status of a dig answer
dstatus() { d "$@" +noall +comments | sed -n 's/.*status: \([A-Z]*\).*/\1/p' | head -1; }
dflags() { d "$@" +noall +comments | sed -n 's/.*flags: \([a-z ]*\);.*/\1/p' | head -1; }

# lh_fake ADDR MODE [DELAY_MS]: starts tests/e2e/fakeupstream.py on ADDR:53, logging queries to
# $LH_TMP/fake-ADDR.log, and waits until it is ready.
lh_fake() {
    local addr=$1 mode=$2
    "$LH_PY" "$LH_SRC/tests/e2e/fakeupstream.py" "$addr" "$mode" "$LH_TMP/fake-$addr.log" \
        "${3:-0}" >"$LH_TMP/fake-$addr.out" 2>&1 &
    LH_PIDS+=($!)
    for _ in $(seq 50); do grep -q ready "$LH_TMP/fake-$addr.out" 2>/dev/null && return 0; sleep 0.1; done
    echo "fake upstream $mode on $addr did not start" >&2; cat "$LH_TMP/fake-$addr.out" >&2
    return 1
}
# lh_fake_count ADDR [PATTERN]: queries the fake upstream at ADDR has seen (matching PATTERN,
# case-insensitively).
lh_fake_count() { grep -ci -- "${2:-.}" "$LH_TMP/fake-$1.log" 2>/dev/null || true; }

# lh_unbound_head ADDR NAME: the server: lines every test Unbound shares (on ADDR:53, in the
# foreground, logging queries to $LH_TMP/unbound-NAME.log, iterator only); more server: lines
# and zones may follow.
lh_unbound_head() {
    cat <<U
server:
  interface: $1
  port: 53
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "$LH_TMP"
  pidfile: ""
  use-syslog: no
  logfile: "$LH_TMP/unbound-$2.log"
  log-queries: yes
  verbosity: 1
  module-config: "iterator"
U
}

# lh_unbound_start CONF ADDR NAME [NETNS]: runs Unbound with CONF (inside NETNS if given) and
# waits until ADDR answers NAME SOA.
lh_unbound_start() {
    local netns=()
    [ -n "${4:-}" ] && netns=(ip netns exec "$4")
    "${netns[@]}" unbound -c "$1" >"$1.out" 2>&1 &
    LH_PIDS+=($!)
    for _ in $(seq 50); do
        "${netns[@]}" dig @"$2" "$3" SOA +short +time=1 +tries=1 2>/dev/null | grep -q . && return 0
        sleep 0.1
    done
    echo "unbound on $2 did not start" >&2; cat "$1.out" >&2
    return 1
}

# lh_unbound ADDR ZONEFILE ZONE: a real Unbound on ADDR:53 serving ZONE from ZONEFILE
# authoritatively (auth-zone), logging queries to $LH_TMP/unbound-ADDR.log.
lh_unbound() {
    local addr=$1 zonefile=$2 zone=$3 conf="$LH_TMP/unbound-$1.conf"
    { lh_unbound_head "$addr" "$addr"; cat <<U
  access-control: 127.0.0.0/8 allow
  local-zone: "test." nodefault
# Never recurse past loopback: anything outside the test zone goes to a closed local port.
stub-zone:
  name: "."
  stub-addr: 127.0.0.1@1
auth-zone:
  name: "$zone"
  zonefile: "$zonefile"
  for-downstream: yes
  for-upstream: no
U
    } >"$conf"
    lh_unbound_start "$conf" "$addr" "$zone"
}
