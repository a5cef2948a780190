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
# The last byte is the test's place among tests/e2e/test_*.sh (unique within a checkout); the
# third comes from the checkout and the binary, so that the same test run from two checkouts
# (or builds) on one machine at once does not talk to the other's daemon.
_sum=$(printf '%s %s' "$LH_SRC" "$LOOPHOLE" | cksum | cut -d' ' -f1)
_idx=0 _i=0
for _f in "$LH_SRC"/tests/e2e/test_*.sh; do
    _i=$((_i + 1)); [ "$(basename "$_f" .sh)" = "$LH_TEST" ] && _idx=$_i
done
if [ "$_idx" -eq 0 ] || [ "$_idx" -gt 250 ]; then # not one of the suite's scripts
    _idx=$(( $(printf '%s' "$LH_TEST" | cksum | cut -d' ' -f1) % 250 + 1 ))
fi
LH_ADDR="127.53.$(( _sum % 250 + 1 )).$_idx"
# lh_peer N: the Nth peer address of this test (upstreams, other daemons): 127.(53+N).X.Y
lh_peer() { echo "127.$((53 + $1)).${LH_ADDR#127.53.}"; }
LH_PIDS=()
# Never the machine's resolver: unless a test names its own --upstream, forwarded names go to
# a closed loopback port and fail at once.
LH_NO_UPSTREAM=(--resolv-conf /dev/null --fallback-upstream 127.0.0.1:1)
LH_PASS=0
LH_FAIL=0

LH_DAEMONS=() # loophole processes (also in LH_PIDS): their exit status is checked

lh_cleanup() {
    for p in "${LH_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${LH_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$LH_TMP"
}
trap lh_cleanup EXIT

ok() { LH_PASS=$((LH_PASS + 1)); echo "ok   - $*"; }
not_ok() { LH_FAIL=$((LH_FAIL + 1)); echo "FAIL - $*"; }
# lh_skip REASON: this test cannot run on this machine. The reason goes to stdout and, when the
# runner asks for it (scripts/test.sh sets LH_SKIP_DIR), to a file there: ctest counts exit 77
# as a pass and shows no output, so scripts/test.sh lists every skip with its reason and fails
# on any that is not declared expected for the machine.
lh_skip() {
    echo "SKIP: $*"
    if [ -n "${LH_SKIP_DIR:-}" ]; then echo "$*" >"$LH_SKIP_DIR/e2e_$LH_TEST" 2>/dev/null; fi
    exit 77
}
# lh_need_netns: skips (with the kernel's own words) when network namespaces cannot be made.
lh_need_netns() {
    local err
    if ! err=$(ip netns add "lh-probe-$$" 2>&1); then
        lh_skip "cannot create network namespaces: 'ip netns add' said: ${err:-nothing}"
    fi
    ip netns del "lh-probe-$$"
}
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
# expect_no_match DESCRIPTION TEXT REGEX: TEXT must be non-empty (something answered) and must
# not match. An empty TEXT is a failure: absence in nothing proves nothing.
expect_no_match() {
    if [ -z "$2" ]; then not_ok "$1: nothing to look at (no answer?)"
    elif [[ "$2" =~ $3 ]]; then not_ok "$1: [$2] matches /$3/"
    else ok "$1"; fi
}

# lh_track PID: a loophole process the test started in the background; lh_stop/lh_done stop
# it and check that it exits 0.
lh_track() { LH_PIDS+=("$1"); LH_DAEMONS+=("$1"); }
_lh_untrack() {
    local p keep=()
    for p in "${LH_DAEMONS[@]}"; do [ "$p" != "$1" ] && keep+=("$p"); done
    LH_DAEMONS=("${keep[@]}")
}
# lh_reap PID: waits for a tracked daemon the test stopped itself; its exit status must be 0.
# Returns the status.
lh_reap() {
    wait "$1"
    local rc=$?
    _lh_untrack "$1"
    [ "$rc" -eq 0 ] || not_ok "loophole (pid $1) exited $rc, expected 0"
    return "$rc"
}
# lh_scan_logs: every log in $LH_TMP (every daemon's, the leak server's, a subcommand's) is
# searched for sanitizer reports.
lh_scan_logs() {
    local f
    for f in "$LH_TMP"/*.log "$LH_TMP"/*.out; do
        [ -f "$f" ] || continue
        if grep -qE "ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:|WARNING: .*Sanitizer" "$f"; then
            not_ok "sanitizer findings in $(basename "$f"):"
            grep -A30 -E "ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:|WARNING: .*Sanitizer" "$f" | head -60
        fi
    done
}
lh_done() {
    # Stop everything first: sanitizers report leaks when the daemon exits. A loophole that
    # does not exit 0 on SIGTERM (a crash, a sanitizer's exit code) fails the test.
    local p rc
    for p in "${LH_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${LH_DAEMONS[@]}"; do
        wait "$p"; rc=$?
        [ "$rc" -eq 0 ] || not_ok "loophole (pid $p) exited $rc at the end, expected 0"
    done
    for p in "${LH_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    LH_PIDS=() LH_DAEMONS=()
    lh_scan_logs
    echo "$LH_TEST: $LH_PASS passed, $LH_FAIL failed"
    [ "$LH_FAIL" -eq 0 ]
    exit $?
}

# lh_start [ARGS...]: starts loophole on $LH_ADDR:53 (plus ARGS) and waits until it answers.
# Its state directory (the list snapshot, the runtime rules of loophole allow/block) is the
# test's own, never the machine's.
# Sets LH_PID; the log is $LH_TMP/loophole.log.
lh_start() {
    local ready_before; ready_before=$(lh_log_count ': ready')
    "$LOOPHOLE" serve --listen "$LH_ADDR:53" --log-level debug "${LH_NO_UPSTREAM[@]}" \
        --control-socket "$LH_TMP/control.sock" --state-dir "$LH_TMP/state" "$@" \
        >>"$LH_TMP/loophole.log" 2>&1 &
    LH_PID=$!
    lh_track "$LH_PID"
    lh_wait_ready "$LH_ADDR" || return 1
    # An answer alone could come from someone else's daemon on the address: ours says "ready".
    _lh_ours() { [ "$(lh_log_count ': ready')" -gt "$ready_before" ] || ! kill -0 "$LH_PID" 2>/dev/null; }
    lh_wait_for 60 _lh_ours
    if ! kill -0 "$LH_PID" 2>/dev/null; then
        echo "loophole exited at start-up; log:" >&2; tail -20 "$LH_TMP/loophole.log" >&2
        not_ok "loophole started on $LH_ADDR"
        return 1
    fi
}

# lh_wait_ready ADDR: waits for a daemon to answer localhost there (up to 60 s: a big list
# under ASan on a busy machine); fails at once when the daemon has exited.
lh_wait_ready() {
    _lh_answers() {
        dig @"$1" localhost +short +time=1 +tries=1 2>/dev/null | grep -q 127.0.0.1 && return 0
        kill -0 "$LH_PID" 2>/dev/null || return 0 # dead: stop polling, report below
        return 1
    }
    if lh_wait_for 60 _lh_answers "$1" && kill -0 "$LH_PID" 2>/dev/null; then return 0; fi
    echo "loophole did not come up on $1; log:" >&2
    cat "$LH_TMP/loophole.log" >&2
    return 1
}

# lh_stop [PID]: SIGTERM to the daemon (default $LH_PID), then its exit code, which must be 0.
lh_stop() {
    local p=${1:-$LH_PID}
    kill -TERM "$p" 2>/dev/null
    lh_reap "$p"
}

# lh_alive: the daemon still runs and answers.
lh_alive() {
    kill -0 "$LH_PID" 2>/dev/null &&
        [ "$(dig @"$LH_ADDR" localhost +short +time=2 +tries=1)" == "127.0.0.1" ]
}

# d ARGS...: dig against the test daemon, short timeouts.
d() { dig @"$LH_ADDR" +time=2 +tries=1 "$@"; }
# status of a dig answer (empty when nothing answered)
dstatus() { d "$@" +noall +comments | sed -n 's/.*status: \([A-Z]*\).*/\1/p' | head -1; }
# expect_status DESCRIPTION STATUS DIG-ARGS...: the daemon answered, with this status.
expect_status() { local desc=$1 want=$2; shift 2; expect_eq "$desc" "$(dstatus "$@")" "$want"; }
# expect_nodata DESCRIPTION DIG-ARGS...: answered NOERROR with an empty answer section.
expect_nodata() {
    local desc=$1; shift
    local out; out=$(d "$@" +noall +comments)
    expect_match "$desc" "$out" "status: NOERROR.*ANSWER: 0,"
}
# expect_answer DESCRIPTION EXPECTED DIG-ARGS...: answered NOERROR, and +short prints EXPECTED
# (lines joined by spaces). An empty EXPECTED is not allowed: use expect_nodata.
expect_answer() {
    local desc=$1 want=$2; shift 2
    local st; st=$(dstatus "$@")
    if [ "$st" != NOERROR ]; then not_ok "$desc: status [$st], expected NOERROR"; return; fi
    expect_eq "$desc" "$(d "$@" +short | paste -sd' ')" "$want"
}
# expect_no_record DESCRIPTION REGEX DIG-ARGS...: answered, and no answer-section line matches.
expect_no_record() {
    local desc=$1 re=$2; shift 2
    local out; out=$(d "$@" +noall +comments +answer)
    if ! [[ "$out" =~ status:\ [A-Z]+ ]]; then not_ok "$desc: no answer"; return; fi
    expect_no_match "$desc" "$(grep -v '^;' <<<"$out" | grep -E -- "$re" || echo "(answered, none)")" "$re"
}
dflags() { d "$@" +noall +comments | sed -n 's/.*flags: \([a-z ]*\);.*/\1/p' | head -1; }

# lh_fake ADDR MODE [DELAY_MS]: starts tests/e2e/fakeupstream.py on ADDR:53, logging queries to
# $LH_TMP/fake-ADDR.log, and waits until it is ready.
lh_fake() {
    local addr=$1 mode=$2
    "$LH_PY" "$LH_SRC/tests/e2e/fakeupstream.py" "$addr" "$mode" "$LH_TMP/fake-$addr.log" \
        "${3:-0}" >"$LH_TMP/fake-$addr.out" 2>&1 &
    LH_PIDS+=($!)
    lh_wait_for 30 grep -q ready "$LH_TMP/fake-$addr.out" 2>/dev/null && return 0
    echo "fake upstream $mode on $addr did not start" >&2; cat "$LH_TMP/fake-$addr.out" >&2
    return 1
}
# lh_fake_count ADDR [PATTERN]: queries the fake upstream at ADDR has seen (matching the ERE PATTERN,
# case-insensitively).
lh_fake_count() { grep -ciE -- "${2:-.}" "$LH_TMP/fake-$1.log" 2>/dev/null || true; }

# lh_wait_for TIMEOUT_S COMMAND...: polls COMMAND (every 50 ms) until it succeeds; 1 if it never
# does within TIMEOUT_S. The timeout is a bound for a broken daemon, not a synchronisation.
lh_wait_for() {
    local end=$(( $(date +%s%N) + ${1%.*} * 1000000000 )); shift
    until "$@"; do
        [ "$(date +%s%N)" -lt "$end" ] || return 1
        sleep 0.05
    done
}
# lh_log_count PATTERN [FILE]: lines of the daemon log (or FILE) matching PATTERN (ERE).
lh_log_count() {
    local n
    n=$(grep -cE -- "$1" "${2:-$LH_TMP/loophole.log}" 2>/dev/null)
    echo "${n:-0}" # 0 when the log does not exist yet (not "", which no test can compare)
}
# lh_wait_log N PATTERN [FILE]: waits (up to 30 s) until the log holds N lines matching PATTERN.
lh_wait_log() {
    _lh_log_ge() { [ "$(lh_log_count "$2" "${3:-}")" -ge "$1" ]; }
    lh_wait_for 30 _lh_log_ge "$@"
}
# lh_stat PYTHON-EXPR: evaluates EXPR over the daemon's `stats --json` (as s).
lh_stat() {
    "$LOOPHOLE" stats --json --control-socket "$LH_TMP/control.sock" |
        "$LH_PY" -c 'import json,sys; s=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

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
    _lh_ub_up() { "${netns[@]}" dig @"$1" "$2" SOA +short +time=1 +tries=1 2>/dev/null | grep -q .; }
    lh_wait_for 30 _lh_ub_up "$2" "$3" && return 0
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
