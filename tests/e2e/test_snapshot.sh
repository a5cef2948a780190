#!/usr/bin/env bash
# The compiled list snapshot (state-dir/lists.snapshot): written after a load of a big list,
# mapped at the next start when the sources are unchanged, and ignored with a log line (the
# lists parsed as usual) when it is truncated, corrupt, not a snapshot, or older than a source.
. "$(dirname "$0")/lib.sh"

S="$LH_TMP/state/lists.snapshot"
LIST="$LH_TMP/big.list"
# 30,000 names (snapshots are kept from 20,000 up), a subdomain rule and an exception.
/usr/bin/python3 - "$LIST" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(30000):
        f.write("n%d.snap.test\n" % i)
    f.write("||wild.snap.test^\n@@||ok.wild.snap.test^\n")
PY
log_count() { grep -c -- "$1" "$LH_TMP/loophole.log" || true; }
# start_and_check WHAT: starts the daemon and checks its answers come from the same rules.
start_and_check() {
    lh_start --no-hosts --no-default-blocklist --blocklist "$LIST"
    expect_eq "$1: a listed name is blocked" "$(d n29999.snap.test +short)" "127.0.0.1"
    expect_eq "$1: below a || rule is blocked" "$(d a.b.wild.snap.test +short)" "127.0.0.1"
    expect_eq "$1: an exception is forwarded" "$(dstatus x.ok.wild.snap.test)" "SERVFAIL"
    expect_eq "$1: an unlisted name is forwarded" "$(dstatus n30000.snap.test)" "SERVFAIL"
    expect_eq "$1: a listed name's parent is forwarded" "$(dstatus snap.test)" "SERVFAIL"
    lh_stop
}

start_and_check "first start (parsed)"
check "the snapshot is written after the load" test -s "$S"
expect_eq "written once, every name counted" "$(log_count 'snapshot of 30002 names written')" 1

start_and_check "second start (mapped)"
expect_eq "the second start maps the snapshot" "$(log_count 'mapped from')" 1
expect_eq "and parses nothing" "$(log_count 'blocklist .*big.list: ')" 1

# ignored WHAT REASON: the next start ignores the snapshot for REASON, parses, answers right,
# and writes a good snapshot again.
ignored() {
    local before=$(log_count "ignoring the snapshot .*$2") written=$(log_count 'names written')
    start_and_check "$1"
    expect_eq "$1: ignored with a log line ($2)" "$(log_count "ignoring the snapshot .*$2")" $((before + 1))
    expect_eq "$1: a new snapshot is written" "$(log_count 'names written')" $((written + 1))
}

size=$(stat -c %s "$S")
truncate -s $((size - 100)) "$S"
ignored "truncated" "truncated"
truncate -s 64 "$S"
ignored "cut inside its header" "truncated"

# One byte flipped in the middle of the name tree.
/usr/bin/python3 - "$S" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(0, 2); n = f.tell(); f.seek(n // 2); b = f.read(1); f.seek(n // 2)
    f.write(bytes([b[0] ^ 0x40]))
PY
ignored "one byte flipped" "checksum mismatch"

head -c 200000 /dev/urandom >"$S"
ignored "random bytes" "not a list snapshot"

# A changed source: the new name must be blocked, so the snapshot cannot be the one used.
echo "added.snap.test" >>"$LIST"
lh_start --no-hosts --no-default-blocklist --blocklist "$LIST"
expect_eq "a changed list: the new name is blocked" "$(d added.snap.test +short)" "127.0.0.1"
lh_stop
expect_match "a changed list: the snapshot is ignored with a log line" \
    "$(grep 'ignoring the snapshot' "$LH_TMP/loophole.log" | tail -1)" "the lists changed"
# Same size and content, another mtime: still a changed source (mtime is in the fingerprint).
touch -d '2001-01-01' "$LIST"
lh_start --no-hosts --no-default-blocklist --blocklist "$LIST"
lh_stop
expect_match "a touched list: the snapshot is ignored" \
    "$(grep 'ignoring the snapshot' "$LH_TMP/loophole.log" | tail -1)" "the lists changed"

# --state-dir none: neither read nor written.
rm -f "$S"
lh_start --no-hosts --no-default-blocklist --blocklist "$LIST" --state-dir none
expect_eq "--state-dir none: blocked all the same" "$(d n1.snap.test +short)" "127.0.0.1"
lh_stop
check "--state-dir none: no snapshot written" test ! -e "$S"

# A reload maps the current snapshot too (the daemon keeps serving from either).
lh_start --no-hosts --no-default-blocklist --blocklist "$LIST"
mapped=$(log_count 'mapped from')
kill -HUP "$LH_PID"
for _ in $(seq 100); do grep -q "reload: done" "$LH_TMP/loophole.log" && break; sleep 0.1; done
expect_eq "after a reload from the snapshot: blocked" "$(d n7.snap.test +short)" "127.0.0.1"
expect_eq "the reload mapped the snapshot" "$(log_count 'mapped from')" $((mapped + 1))
lh_stop

lh_done
