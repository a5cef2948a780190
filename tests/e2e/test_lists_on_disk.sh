#!/usr/bin/env bash
# Big lists are built on disk (src/policy/spill.c): the name tree is sorted through a
# temporary file into a snapshot that is then mapped, in the state directory, or with
# --state-dir none in an unnamed temporary file in $TMPDIR. Checked here: the answers are the
# lists' in both places and across a SIGHUP reload; nothing is left in $TMPDIR; and when the
# folder cannot be used (read-only, full, a file-size limit) a log line says why, the lists are
# built in memory instead, the answers are the same and the daemon keeps running. A folder on
# tmpfs is not used (the runs would be RAM too). A run file cut short: tests/unit/test_spill.c.
. "$(dirname "$0")/lib.sh"

LIST="$LH_TMP/big.list"
# 40,000 names (lists estimated at 20,000 names or more are built on disk), a subdomain rule
# and an exception below it.
/usr/bin/python3 - "$LIST" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(40000):
        f.write("name%d.spill.example.test\n" % i)
    f.write("||wild.spill.test^\n@@||ok.wild.spill.test^\n")
PY
OPTS=(--no-hosts --no-default-blocklist --blocklist "$LIST")
log() { cat "$LH_TMP/loophole.log"; }
# answers WHAT: the daemon answers from the list's rules.
answers() {
    expect_eq "$1: a listed name is blocked" "$(d name39999.spill.example.test +short)" "127.0.0.1"
    expect_eq "$1: below a || rule is blocked" "$(d a.b.wild.spill.test +short)" "127.0.0.1"
    expect_eq "$1: an exception is forwarded" "$(dstatus x.ok.wild.spill.test)" "SERVFAIL"
    expect_eq "$1: an unlisted name is forwarded" "$(dstatus name40000.spill.example.test)" "SERVFAIL"
    expect_eq "$1: a listed name's parent is forwarded" "$(dstatus spill.example.test)" "SERVFAIL"
}
# start_with WRAPPER...: starts the daemon through a wrapper that execs it (unshare, prlimit),
# so that $! is the daemon; extra options come from MORE.
start_with() {
    (exec "$@" "$LOOPHOLE" serve --listen "$LH_ADDR:53" --log-level debug "${LH_NO_UPSTREAM[@]}" \
        --control-socket "$LH_TMP/control.sock" "${OPTS[@]}" "${MORE[@]}" \
        >>"$LH_TMP/loophole.log" 2>&1) &
    LH_PID=$!
    lh_track "$LH_PID"
    lh_wait_ready "$LH_ADDR"
}

# 1. The state directory: built on disk into the snapshot, mapped at the next start.
lh_start "${OPTS[@]}"
expect_match "built on disk into the state directory" "$(log)" \
    "lists: snapshot of 40002 names written to $LH_TMP/state/lists.snapshot \(built on disk\)"
answers "built on disk"
check "the snapshot is kept" test -s "$LH_TMP/state/lists.snapshot"
expect_eq "no temporary file is left in the state directory" \
    "$(ls "$LH_TMP/state" | grep -vc '^lists.snapshot$\|^runtime.list$')" "0"
lh_stop
lh_start "${OPTS[@]}"
expect_eq "the next start maps it" "$(lh_log_count 'mapped from')" 1
answers "mapped"
lh_stop

# 2. --state-dir none: an unnamed temporary file in $TMPDIR, gone with the process.
mkdir -p "$LH_TMP/tmp"
chmod 1777 "$LH_TMP/tmp" # as /tmp is: the daemon reloads as the user it switched to (nobody)
MORE=(--state-dir none)
TMPDIR="$LH_TMP/tmp" start_with env
expect_match "built on disk in \$TMPDIR" "$(log)" \
    "lists: 40002 names in 1 list\(s\) built on disk in a temporary file in $LH_TMP/tmp"
answers "a temporary file"
expect_eq "nothing is left in \$TMPDIR" "$(ls -A "$LH_TMP/tmp" | wc -l)" "0"
# A reload with the list changed: built on disk again, the new name answered, the old tree
# served until the swap.
echo "added.spill.test" >>"$LIST"
kill -HUP "$LH_PID"
lh_wait_log 1 "reload: done"
expect_eq "a reload built on disk: the new name is blocked" "$(d added.spill.test +short)" "127.0.0.1"
answers "after the reload"
# The new tree is brought in once the old one is freed (a thread of its own, a line).
check "the new tree is made resident after the swap" lh_wait_log 1 "the new name tree is resident"
expect_eq "the reload built on disk too" "$(lh_log_count "built on disk in a temporary file in $LH_TMP/tmp")" 2
# A reload that fails (the list gone) keeps the tree being served and leaves no file behind.
mv "$LIST" "$LIST.away"
kill -HUP "$LH_PID"
lh_wait_log 1 "reload failed"
expect_match "a failed reload names the list" "$(grep 'reload failed' "$LH_TMP/loophole.log")" \
    "big.list: cannot read blocklist"
answers "after a failed reload"
mv "$LIST.away" "$LIST"
expect_eq "still nothing in \$TMPDIR" "$(ls -A "$LH_TMP/tmp" | wc -l)" "0"
lh_stop

fallback_count() { lh_log_count "cannot build the name tree on disk .*$1.*building it in memory"; }
if command -v unshare >/dev/null && unshare -m true 2>/dev/null; then
    # 3. $TMPDIR not writable (root writes anywhere else: a read-only bind mount of it, in a
    # mount namespace).
    mkdir -p "$LH_TMP/ro" "$LH_TMP/mem"
    TMPDIR="$LH_TMP/ro" start_with unshare -m --propagation private -- /bin/sh -c \
        'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"' "$LH_TMP/ro" env
    expect_eq "read-only \$TMPDIR: a log line says why" "$(fallback_count 'Read-only file system')" 1
    answers "read-only \$TMPDIR, built in memory"
    # A reload meets the same folder: it still succeeds, in memory.
    kill -HUP "$LH_PID"
    lh_wait_log 1 "reload: done"
    expect_eq "read-only \$TMPDIR at a reload: in memory again" "$(fallback_count 'Read-only file system')" 2
    answers "read-only \$TMPDIR, reloaded"
    lh_stop
    # 4. $TMPDIR on a tmpfs: the runs and the tree would be in RAM all the same (more of it than
    # the in-memory build holds), so the build stays in memory and says so.
    TMPDIR="$LH_TMP/mem" start_with unshare -m --propagation private -- /bin/sh -c \
        'mount -t tmpfs -o size=64m lh-spill "$0" && exec "$@"' "$LH_TMP/mem" env
    expect_eq "\$TMPDIR on a tmpfs: built in memory, with a log line" \
        "$(lh_log_count "$LH_TMP/mem is in memory \(tmpfs\): the name tree is built in memory")" 1
    answers "\$TMPDIR on a tmpfs"
    lh_stop
else
    echo "# no mount namespace here: the read-only and tmpfs \$TMPDIR cases are not run"
fi

# 5. The disk full, as a file-size limit (RLIMIT_FSIZE) below a run's size: the write fails
# (EFBIG, as ENOSPC would), which must not end the daemon (SIGXFSZ is ignored), and the lists
# are built in memory.
if command -v prlimit >/dev/null; then
    # The limit holds for every file the daemon writes: its log starts afresh, far below it.
    mv "$LH_TMP/loophole.log" "$LH_TMP/before-fsize.log"
    TMPDIR="$LH_TMP/tmp" start_with prlimit --fsize=100000 -- env
    check "a file-size limit does not end the daemon" kill -0 "$LH_PID"
    expect_eq "a file-size limit: a log line says why" "$(fallback_count 'File too large')" 1
    answers "a file-size limit, built in memory"
    lh_stop
fi
lh_done
