#!/usr/bin/env bash
# TCP slots (issue 13, item 5): one local process must not shut everyone else out.
# 1. A hog opens 1,000 connections (the whole table) from one address and keeps sending empty
#    2-byte frames: it holds at most its share (a quarter), and a client from another address
#    - and a new one from the hog's own address - still gets its TCP answer (dig, kdig).
# 2. Empty frames are no activity: a connection sending only them is closed after the idle
#    timeout, and they are not counted as queries.
# 3. A full table (four addresses at their share) makes room for a fifth client by closing
#    the connection idle longest instead of refusing the new one.
# 4. IPv6: the share is per /64, not per address. In a network namespace, a hog spreading 40
#    connections over 20 addresses of one /64 holds at most a quarter of a 40-slot table,
#    and a client from another /64 gets its TCP answer.
# The Prometheus counters (loophole_tcp_*) say what the stats' tcp line says.
. "$(dirname "$0")/lib.sh"
HOG=$(lh_peer 1)
OTHER=$(lh_peer 2)
stats() { "$LOOPHOLE" stats --control-socket "$LH_TMP/control.sock" 2>&1; }
tcp_line() { stats | grep '^tcp '; }
# wait_for_line FILE REGEX: up to 30 s (by the clock: the loop itself may be slow).
wait_for_line() {
    local end=$((SECONDS + 30))
    while [ "$SECONDS" -lt "$end" ]; do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
# hog SOURCE COUNT NAME: starts tcp_hog.py in the background; waits until it reports "opened".
hog() {
    rm -f "$LH_TMP/$3.done"
    "$LH_PY" "$LH_SRC/tests/e2e/tcp_hog.py" "$LH_ADDR" "$1" "$2" "$LH_TMP/$3.status" \
        "$LH_TMP/$3.done" >"$LH_TMP/$3.out" 2>&1 &
    LH_PIDS+=($!)
    wait_for_line "$LH_TMP/$3.status" opened && return 0
    echo "hog $3 did not start:" >&2; cat "$LH_TMP/$3.out" >&2
    return 1
}
# metric NAME{LABELS}: the value the daemon's /metrics endpoint gives for that series.
metric() {
    curl -s --max-time 5 "http://$LH_ADDR:9153/metrics" |
        awk -v k="$1" '$1 == k { print $2; found = 1 } END { if (!found) print "absent" }'
}
# tcp_field REGEX: the number before REGEX in the stats' tcp line.
tcp_field() { tcp_line | sed -n "s/.* \([0-9]*\) $1.*/\1/p"; }
# open_count: open connections the daemon reports.
open_count() { tcp_line | sed -n 's/^tcp *\([0-9]*\) open.*/\1/p'; }
# wait_tcp REGEX: until the daemon's tcp statistics line matches (up to 30 s).
wait_tcp() {
    local end=$((SECONDS + 30))
    while [ "$SECONDS" -lt "$end" ]; do [[ "$(tcp_line)" =~ $1 ]] && return 0; sleep 0.1; done
    return 1
}

# --- 1. the hog ------------------------------------------------------------------------
lh_start --no-hosts --tcp-max-connections 1000 --tcp-idle-timeout 30000 --metrics "$LH_ADDR:9153"
hog "$HOG" 1000 hog1
check "the hog opened its connections" wait_for_line "$LH_TMP/hog1.status" "^round 2 "
check "the daemon accepted all 1,000" wait_tcp " 1000 accepted"
tl=$(tcp_line); echo "$tl"
check "the hog holds at most its share: 250 of 1000 slots ($(open_count) open)" test "$(open_count)" -le 250
evicted=$(echo "$tl" | sed -n 's/.* \([0-9]*\) closed to make room.*/\1/p')
check "its own idlest connections made way for its newer ones ($evicted)" test "${evicted:-0}" -ge 750
expect_eq "another address gets its TCP answer (dig +tcp)" \
    "$(dig @"$LH_ADDR" -b "$OTHER" localhost +tcp +short +time=3 +tries=1)" "127.0.0.1"
expect_eq "... and kdig +tcp" \
    "$(kdig @"$LH_ADDR" -b "$OTHER" localhost +tcp +short +time=3 +retry=0)" "127.0.0.1"
expect_eq "a new connection from the hog's own address is answered too" \
    "$(dig @"$LH_ADDR" -b "$HOG" localhost +tcp +short +time=3 +tries=1)" "127.0.0.1"
expect_match "empty frames counted as such" "$(tcp_line)" "[1-9][0-9]* empty frames"
expect_match "... and not as queries (3 TCP queries in all)" "$(stats | grep '^queries')" "tcp 3\)"
touch "$LH_TMP/hog1.done"
check "the hog finished" wait_for_line "$LH_TMP/hog1.status" "open at the end"
# Counters the hog no longer moves (its empty frames may still be arriving: compared as a
# lower bound). Nothing was refused or oversize.
acc=$(tcp_field accepted) ev=$(tcp_field "closed to make room")
expect_eq "metrics: loophole_tcp_accepted_total as in stats ($acc)" "$(metric loophole_tcp_accepted_total)" "$acc"
expect_eq "metrics: loophole_tcp_closed_total{reason=\"evicted\"} as in stats ($ev)" \
    "$(metric 'loophole_tcp_closed_total{reason="evicted"}')" "$ev"
expect_eq "metrics: none refused, none oversize" \
    "$(metric loophole_tcp_refused_total) $(metric 'loophole_tcp_closed_total{reason="oversize"}')" "0 0"
# The hog's empty frames: a frame on a connection evicted before the daemon read it is never
# counted, so the metric is compared with what stats said just before (it only grows).
efs=$(tcp_field "empty frames")
ef=$(metric loophole_tcp_empty_frames_total)
check "metrics: loophole_tcp_empty_frames_total counts the hog's frames ($ef >= stats' $efs > 0)" \
    test "${ef:-0}" -ge "${efs:-1}" -a "${efs:-0}" -gt 0
lh_stop

# --- 2. empty frames are no activity ---------------------------------------------------
lh_start --no-hosts --tcp-idle-timeout 1000 --metrics "$LH_ADDR:9153"
hog "$HOG" 1 hog2
# The hog sends an empty frame every 0.2 s; the idle timer (1 s) must fire anyway. Bound:
# 30 s of rounds, far above 1 s.
check "a connection sending only empty frames is closed after the idle timeout" \
    wait_for_line "$LH_TMP/hog2.status" "open 0$"
expect_match "the daemon says it closed it as idle" "$(tcp_line)" " 1 closed idle"
expect_eq "... and so does loophole_tcp_closed_total{reason=\"idle\"}" \
    "$(metric 'loophole_tcp_closed_total{reason="idle"}')" "1"
touch "$LH_TMP/hog2.done"
lh_stop

# --- 3. a full table: the connection idle longest makes way ----------------------------
lh_start --no-hosts --tcp-max-connections 40 --tcp-idle-timeout 30000
for k in 1 2 3 4; do
    hog "$(lh_peer $k)" 10 full$k
    wait_for_line "$LH_TMP/full$k.status" "^round 1 " # accepted in this order
done
check "the table is full: 40 open" wait_tcp "^tcp +40 open; 40 accepted"
expect_eq "a fifth address still gets its TCP answer" \
    "$(dig @"$LH_ADDR" -b "$(lh_peer 5)" localhost +tcp +short +time=3 +tries=1)" "127.0.0.1"
expect_match "one connection was closed to make room, none refused" "$(tcp_line)" \
    "accepted, 0 refused, 1 closed to make room"
for k in 1 2 3 4; do touch "$LH_TMP/full$k.done"; done
check "the first hog finished" wait_for_line "$LH_TMP/full1.status" "open at the end"
# Which connection made way is what each hog saw before it ended: shown, not asserted. In a
# clean-clone CI run under load the first hog once ended before the close reached it, so the
# check above (the daemon's own counters: one closed to make room, none refused) is the proof.
for k in 1 2 3 4; do wait_for_line "$LH_TMP/full$k.status" "open at the end" || true
    echo "# hog $k: $(tail -1 "$LH_TMP/full$k.status")"; done
check "still serving" lh_alive
lh_stop

# --- 4. IPv6: one client is one /64 -----------------------------------------------------
lh_need_netns
NS="lh-tcp6-$$"
trap 'lh_cleanup; ip netns del "$NS" 2>/dev/null' EXIT
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
HOG6="" # 20 addresses of fd00:53:0:1::/64
for k in $(seq 10 29); do
    ip netns exec "$NS" ip -6 addr add "fd00:53:0:1::$k/128" dev lo nodad
    HOG6="$HOG6${HOG6:+,}fd00:53:0:1::$k"
done
ip netns exec "$NS" ip -6 addr add fd00:53:0:2::1/128 dev lo nodad
ip netns exec "$NS" "$LOOPHOLE" serve --listen "[::1]:53" --allow-client fd00:53::/48 --no-hosts \
    "${LH_NO_UPSTREAM[@]}" --control-socket "$LH_TMP/control.sock" --state-dir none \
    --tcp-max-connections 40 --tcp-idle-timeout 30000 >>"$LH_TMP/loophole.log" 2>&1 &
LH_PID=$!; lh_track "$LH_PID"
_ready6() { ip netns exec "$NS" dig @::1 localhost +short +time=1 +tries=1 2>/dev/null | grep -q 127.0.0.1; }
check "loophole answers on [::1]:53 in the namespace" lh_wait_for 60 _ready6
ip netns exec "$NS" "$LH_PY" "$LH_SRC/tests/e2e/tcp_hog.py" ::1 "$HOG6" 40 "$LH_TMP/hog6.status" \
    "$LH_TMP/hog6.done" >"$LH_TMP/hog6.out" 2>&1 &
LH_PIDS+=($!)
check "the hog opened 40 connections from 20 addresses of one /64" \
    wait_for_line "$LH_TMP/hog6.status" "^opened 40$"
check "the daemon accepted them all" wait_tcp " 40 accepted"
check "the /64 holds at most its share: 10 of 40 slots ($(open_count) open)" test "$(open_count)" -le 10
ev=$(tcp_field "closed to make room")
check "... its own idlest connections made way ($ev closed to make room)" test "${ev:-0}" -ge 30
expect_eq "another /64 gets its TCP answer" \
    "$(ip netns exec "$NS" dig @::1 -b fd00:53:0:2::1 localhost +tcp +short +time=3 +tries=1)" "127.0.0.1"
touch "$LH_TMP/hog6.done"
check "the IPv6 hog finished" wait_for_line "$LH_TMP/hog6.status" "open at the end"
lh_stop
expect_eq "... and the daemon stops with exit 0" "$?" "0"
lh_done
