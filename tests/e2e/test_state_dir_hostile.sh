#!/usr/bin/env bash
# test_state_dir_hostile.sh - the lists built on disk against a hostile or failing state folder:
# descriptors and mappings across many reloads, a symlink
# planted at the snapshot's temporary name in the state directory.
. "$(dirname "$0")/lib.sh"

LIST="$LH_TMP/big.list"
/usr/bin/python3 - "$LIST" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(40000):
        f.write("name%d.spill.example.test\n" % i)
PY
chmod 644 "$LIST"
OPTS=(--no-hosts --no-default-blocklist --blocklist "$LIST")
lh_start "${OPTS[@]}"
ls -ld "$LH_TMP/state"
counts() { echo "fds=$(ls /proc/$LH_PID/fd | wc -l) maps=$(wc -l </proc/$LH_PID/maps) snapmaps=$(grep -c "$LH_TMP/state/" /proc/$LH_PID/maps) rss=$(awk '/VmRSS/{print $2}' /proc/$LH_PID/status)"; }
echo "# before: $(counts)"
n0=$(ls /proc/$LH_PID/fd | wc -l); m0=$(wc -l </proc/$LH_PID/maps); cp /proc/$LH_PID/maps "$LH_TMP/maps0"
for i in $(seq 1 ${RELOADS:-50}); do
    [ $((i % 2)) -eq 0 ] && echo "added$i.spill.test" >>"$LIST"
    kill -HUP "$LH_PID"
    lh_wait_log "$i" "reload: done|reload failed" || break
done
sleep 1
echo "# after: $(counts)"
grep -c 'built on disk' "$LH_TMP/loophole.log"
grep -E 'cannot build|reload failed' "$LH_TMP/loophole.log" | sort | uniq -c | head
n1=$(ls /proc/$LH_PID/fd | wc -l); m1=$(wc -l </proc/$LH_PID/maps); cp /proc/$LH_PID/maps /tmp/revspill-maps1; cp "$LH_TMP/maps0" /tmp/revspill-maps0
expect_eq "descriptors after 50 reloads" "$n1" "$n0"
# (The other mappings that appear are glibc's cached thread stacks and per-thread arenas of the
# populate threads: bounded by glibc, not a leak.)
expect_eq "one snapshot mapping after the reloads" "$(grep -c "$LH_TMP/state/" /proc/$LH_PID/maps)" "1"
expect_eq "the last added name is blocked" "$(d added$(( ${RELOADS:-50} / 2 * 2 )).spill.test +short)" "127.0.0.1"

# A symlink at the temporary name the next snapshot is written under.
echo "precious" >"$LH_TMP/victim"
chmod 666 "$LH_TMP/victim"
ln -s "$LH_TMP/victim" "$LH_TMP/state/lists.snapshot.tmp.$LH_PID"
echo "symlinked.spill.test" >>"$LIST"
c=$(lh_log_count "reload: done|reload failed")
kill -HUP "$LH_PID"
lh_wait_log $((c + 1)) "reload: done|reload failed"
expect_eq "a symlink at the temporary name: its target is not written" "$(head -c 8 "$LH_TMP/victim")" "precious"
check "the snapshot is not a symlink" test ! -L "$LH_TMP/state/lists.snapshot"
ls -la "$LH_TMP/state"
lh_stop

# The start-up build runs as root, before the privileges are dropped, in a state directory
# owned by the unprivileged user: anyone running as that user can plant symlinks at the
# temporary names of the next few pids, and root truncates and writes their targets.
rm -f "$LH_TMP/state/"*
echo "root only" >"$LH_TMP/rootfile"
chmod 600 "$LH_TMP/rootfile"
# (one process as that user plants links for the next 200 pids)
setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 -c '
import os, sys
last = int(open("/proc/sys/kernel/ns_last_pid").read())
for p in range(last + 1, last + 200):
    os.symlink(sys.argv[1], "%s/lists.snapshot.tmp.%d" % (sys.argv[2], p))
print("# planted from", last + 1)' "$LH_TMP/rootfile" "$LH_TMP/state"
echo "fresh$RANDOM.spill.test" >>"$LIST"
lh_start "${OPTS[@]}"
expect_eq "a symlink planted by the unprivileged user: root's file is not written" \
    "$(head -c 9 "$LH_TMP/rootfile")" "root only"
echo "# pid $LH_PID, link: $(ls -l "$LH_TMP/state/lists.snapshot.tmp.$LH_PID" 2>&1)"
grep -E 'snapshot|built|lists:' "$LH_TMP/loophole.log" | tail -3
ls -la "$LH_TMP/state" | grep -v 'tmp\.' | head
lh_stop

# A FIFO at the snapshot's name (made by the unprivileged user): the start-up must not block
# opening it.
rm -f "$LH_TMP/state/"*
setpriv --reuid=nobody --regid=nogroup --clear-groups mkfifo "$LH_TMP/state/lists.snapshot"
"$LOOPHOLE" serve --listen "$LH_ADDR:53" --log-level debug "${LH_NO_UPSTREAM[@]}" \
    --control-socket "$LH_TMP/control.sock" --state-dir "$LH_TMP/state" "${OPTS[@]}" \
    >>"$LH_TMP/loophole.log" 2>&1 &
LH_PID=$!
lh_track "$LH_PID"
_up() { [ "$(dig @"$LH_ADDR" localhost +short +time=1 +tries=1 2>/dev/null)" == 127.0.0.1 ]; }
check "a FIFO at the snapshot's name: the daemon still starts" lh_wait_for 20 _up
lh_stop

# `loophole why` builds the policy as serve does (on disk for a big list): under a file-size
# limit it must fall back to memory, not die of SIGXFSZ.
rm -rf "$LH_TMP/state2"
out=$(prlimit --fsize=1000 -- "$LOOPHOLE" why name5.spill.example.test --state-dir "$LH_TMP/state2" \
    "${OPTS[@]}" --resolv-conf /dev/null 2>&1)
expect_eq "why under a file-size limit: exit status" "$?" "0"
expect_match "why under a file-size limit: the answer" "$out" "name5.spill.example.test A: blocked"
# A build killed (SIGKILL) while it writes the snapshot leaves nothing in the state directory
# (it was left as lists.snapshot.tmp.PID, never removed: one more per crash).
rm -rf "$LH_TMP/state3"
/usr/bin/python3 -c '
with open("'"$LH_TMP"'/huge.list", "w") as f:
    for i in range(1500000): f.write("n%d.x%d.huge.test\n" % (i, i % 1000))'
for try in 1 2 3; do
    "$LOOPHOLE" serve --listen "$LH_ADDR:53" --log-level debug "${LH_NO_UPSTREAM[@]}" \
        --control-socket "$LH_TMP/control.sock" --state-dir "$LH_TMP/state3" --no-hosts \
        --no-default-blocklist --blocklist "$LH_TMP/huge.list" >"$LH_TMP/kill.log" 2>&1 &
    k=$!
    _parsed() { grep -q 'huge.list: ' "$LH_TMP/kill.log" || ls "$LH_TMP/state3" 2>/dev/null | grep -q tmp; }
    lh_wait_for 60 _parsed
    sleep 0.0$((try * 3))
    kill -KILL "$k"; wait "$k" 2>/dev/null
    rm -f "$LH_TMP/state3/lists.snapshot"
done
expect_eq "nothing left in the state directory by builds killed midway" "$(ls -A "$LH_TMP/state3" | grep -vc '^runtime.list$')" "0"
lh_done
