#!/usr/bin/env bash
# A client that goes away before its answer is written must cost only its own connection.
# Writing to a TCP connection the peer has closed (its RST answers the first write; the next
# fails with EPIPE) or to a control connection whose peer shut its reading side raises
# SIGPIPE, which by default ends the process: one unprivileged TCP client could stop the
# daemon for everyone. The answers here come from a slow fake upstream, so that they are
# written after the client has closed, two per connection. Each half has its own daemon.
# Last, a control client that connects and says nothing while the daemon stops.
. "$(dirname "$0")/lib.sh"
FAKE=$(lh_peer 1)
lh_fake "$FAKE" slow 200
lh_start --no-hosts --upstream "$FAKE"

out=$("$LH_PY" "$LH_SRC/tests/e2e/peer_gone.py" control "$LH_TMP/control.sock" 10 2>&1)
expect_eq "ten control clients asked and stopped reading" "$out" "sent 10"
expect_match "the control socket still answers" \
    "$("$LOOPHOLE" stats --control-socket "$LH_TMP/control.sock" 2>&1)" "queries"
check "the daemon is alive after writing to gone control clients" lh_alive
lh_stop # a fresh daemon for the TCP half, whatever became of this one
lh_start --no-hosts --upstream "$FAKE"

out=$("$LH_PY" "$LH_SRC/tests/e2e/peer_gone.py" tcp "$LH_ADDR" 10 one.gone.test two.gone.test 2>&1)
expect_eq "ten TCP clients asked two questions each and closed" "$out" "sent 10"
# Until the daemon has passed on all twenty answers (it counts each one just before writing
# it) or is gone; each comes 200 ms after its question, the bound is 30 s.
forwarded() {
    "$LOOPHOLE" stats --control-socket "$LH_TMP/control.sock" 2>/dev/null |
        sed -n 's/^outcomes.* forwarded \([0-9]*\).*/\1/p'
}
for _ in $(seq 300); do
    n=$(forwarded)
    { [ -z "$n" ] || [ "$n" -ge 20 ]; } && break
    sleep 0.1
done
expect_eq "the upstream got the twenty questions" "$(lh_fake_count "$FAKE" "gone.test")" "20"
expect_eq "the daemon passed the twenty answers on" "$(forwarded)" "20"
expect_eq "... and the daemon still answers over TCP" "$(d localhost +tcp +short)" "127.0.0.1"
check "the daemon is alive after writing to closed TCP connections" lh_alive

# A control connection that never sends its request does not hold the stop: the daemon closes
# it and exits (the stop's grace is 0.8 s; the bound here 20 s). Left open, it kept the loop
# running, and a request arriving after the stop reached freed memory.
"$LH_PY" "$LH_SRC/tests/e2e/peer_gone.py" idle "$LH_TMP/control.sock" "$LH_TMP/idle.status" \
    "$LH_TMP/idle.poke" &
IDLE=$!
LH_PIDS+=("$IDLE")
for _ in $(seq 100); do grep -q connected "$LH_TMP/idle.status" 2>/dev/null && break; sleep 0.1; done
kill -TERM "$LH_PID"
end=$((SECONDS + 20))
while [ "$SECONDS" -lt "$end" ] && kill -0 "$LH_PID" 2>/dev/null; do sleep 0.1; done
check "the daemon exits on SIGTERM with an idle control connection open" \
    bash -c "! kill -0 $LH_PID 2>/dev/null"
touch "$LH_TMP/idle.poke" # a daemon still running gets the late request now
wait "$IDLE"
wait "$LH_PID" 2>/dev/null
expect_match "the daemon closed that connection" "$(cat "$LH_TMP/idle.status")" \
    "closed by the daemon"
lh_done
