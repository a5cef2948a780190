#!/usr/bin/env bash
# Start-up does not depend on optional files (issue 13, item 8). In a private mount namespace
# /etc is replaced by a copy without hosts and resolv.conf (a bind mount over the directory,
# so it holds however the real /etc/hosts is provided - a file, a symlink or a container's
# bind mount), and /run by an empty read-only tmpfs (no /run/loophole for the default control
# socket). The daemon, with every default path left as it is, starts, warns once about the
# hosts file and answers; the file appearing plus SIGHUP makes its names answer. A hosts file
# or resolv.conf named explicitly that does not exist is a start-up error.
. "$(dirname "$0")/lib.sh"
command -v unshare >/dev/null || { echo "SKIP: unshare is missing"; exit 77; }
unshare -m true 2>/dev/null || { echo "SKIP: cannot make a mount namespace here"; exit 77; }

ETC="$LH_TMP/etc"
mkdir "$ETC"
cp -a /etc/. "$ETC/" 2>/dev/null
rm -f "$ETC/hosts" "$ETC/resolv.conf"
check "the private /etc has no hosts file" test ! -e "$ETC/hosts"
# in_ns CMD...: runs CMD with the private /etc and an empty read-only /run.
in_ns() {
    unshare -m --propagation private -- /bin/sh -c \
        'mount --bind "$0" /etc && mount -t tmpfs -o ro,size=64k lh-empty-run /run && exec "$@"' \
        "$ETC" "$@"
}
check "inside, /etc/hosts is gone" in_ns /bin/sh -c '! test -e /etc/hosts && ! test -e /etc/resolv.conf && ! test -e /run/loophole'
check "outside, it is still there" test -e /etc/hosts -o -L /etc/hosts

# Every default path left alone: hosts, resolv.conf, control socket. The fallback upstream
# is a closed loopback port (the test never leaves the machine).
# exec all the way down (subshell -> unshare -> sh -> loophole): $! is the daemon itself.
(exec unshare -m --propagation private -- /bin/sh -c \
    'mount --bind "$0" /etc && mount -t tmpfs -o ro,size=64k lh-empty-run /run && exec "$@"' \
    "$ETC" "$LOOPHOLE" serve --listen "$LH_ADDR:53" --log-level debug \
    --fallback-upstream 127.0.0.1:1 >>"$LH_TMP/loophole.log" 2>&1) &
LH_PID=$!
LH_PIDS+=("$LH_PID")
lh_wait_ready "$LH_ADDR"
check "the daemon runs without /etc/hosts" kill -0 "$LH_PID"
expect_eq "\$! is the daemon" "$(cat /proc/$LH_PID/comm)" "loophole"
expect_eq "and answers" "$(d localhost +short)" "127.0.0.1"
log() { cat "$LH_TMP/loophole.log"; }
expect_eq "one warning about the missing hosts file" \
    "$(log | grep -c "warn.*/etc/hosts does not exist")" "1"
expect_match "the default resolv.conf missing: the fallback is used" "$(log)" \
    "upstreams: 127.0.0.1:1 .*the fallback"
expect_match "the default control socket cannot be made: a warning, no exit" "$(log)" \
    "warn.*control.*running without a control socket"
expect_eq "a name the hosts file will hold is not answered yet" "$(dstatus printer.optional.test)" "SERVFAIL"

reloads() { log | grep -c "reload: done"; }
# wait_reloads N: until N reloads are logged (bounded: 10 s, far above a reload's cost).
wait_reloads() {
    for _ in $(seq 100); do [ "$(reloads)" -ge "$1" ] && return 0; sleep 0.1; done
    return 1
}
kill -HUP "$LH_PID"
check "SIGHUP with the file still missing: the reload succeeds" wait_reloads 1
expect_eq "... and does not warn again" "$(log | grep -c "/etc/hosts does not exist")" "1"

printf '192.0.2.55 printer.optional.test\n' >"$ETC/hosts"
chmod 644 "$ETC/hosts"
kill -HUP "$LH_PID"
check "SIGHUP after the file appeared: reloaded" wait_reloads 2
expect_match "the log says the file is there now" "$(log)" "reload: /etc/hosts exists now"
expect_eq "its names are answered" "$(d printer.optional.test +short)" "192.0.2.55"
expect_eq "... and its reverse" "$(d -x 192.0.2.55 +short)" "printer.optional.test."
rm "$ETC/hosts"
kill -HUP "$LH_PID"
check "SIGHUP after the file went away again: reloaded" wait_reloads 3
expect_match "the log says it is gone" "$(log)" "reload: /etc/hosts does not exist any more"
check "still serving" lh_alive
kill -TERM "$LH_PID"; wait "$LH_PID"
expect_eq "clean exit" "$?" "0"

# check-config agrees.
out=$(in_ns "$LOOPHOLE" check-config 2>&1); rc=$?
expect_eq "check-config without /etc/hosts: exit 0" "$rc" "0"
expect_match "... and says there is no hosts file" "$out" "no hosts file: /etc/hosts"

# Named explicitly, a missing file stays an error.
out=$(timeout 20 "$LOOPHOLE" serve --listen "$LH_ADDR:53" "${LH_NO_UPSTREAM[@]}" \
    --control-socket none --hosts-file "$LH_TMP/no-such-hosts" 2>&1); rc=$?
check "an explicit --hosts-file that does not exist: non-zero exit ($rc)" test "$rc" -ne 0 -a "$rc" -ne 124
expect_match "... with the error" "$out" "no-such-hosts: cannot open hosts file: No such file or directory"
out=$(timeout 20 "$LOOPHOLE" serve --listen "$LH_ADDR:53" --fallback-upstream 127.0.0.1:1 \
    --control-socket none --no-hosts --resolv-conf "$LH_TMP/no-such-resolv.conf" 2>&1); rc=$?
check "an explicit --resolv-conf that does not exist: non-zero exit ($rc)" test "$rc" -ne 0 -a "$rc" -ne 124
expect_match "... with the error" "$out" "no-such-resolv.conf cannot be read: No such file or directory"
# check-config refuses what serve would refuse at start, with the same words.
out=$("$LOOPHOLE" check-config --no-hosts --resolv-conf "$LH_TMP/no-such-resolv.conf" 2>&1); rc=$?
expect_eq "check-config, an explicit --resolv-conf that does not exist: exit 1" "$rc" "1"
expect_match "... with serve's error" "$out" "no upstream to forward to: resolv-conf .*no-such-resolv.conf cannot be read"
out=$("$LOOPHOLE" check-config --no-hosts --upstream 127.0.0.1 --tls-ca "$LH_TMP/no-ca.pem" 2>&1); rc=$?
expect_eq "check-config, a --tls-ca that does not exist: exit 1" "$rc" "1"
expect_match "... with the error" "$out" "tls-ca .*no-ca.pem: No such file or directory"
out=$("$LOOPHOLE" check-config --no-hosts --upstream 127.0.0.1 --query-log "$LH_TMP/no-dir/q.log" 2>&1); rc=$?
expect_eq "check-config, a query log in a folder that does not exist: exit 1" "$rc" "1"
expect_match "... with serve's error" "$out" "query-log: cannot open .*no-dir/q.log: No such file or directory"
out=$("$LOOPHOLE" check-config --no-hosts --upstream 127.0.0.1 --query-log "$LH_TMP/q.log" 2>&1); rc=$?
expect_eq "check-config, a query log that can be created: exit 0" "$rc" "0"
check "... and check-config did not create it" test ! -e "$LH_TMP/q.log"
out=$(in_ns timeout 20 "$LOOPHOLE" serve --listen "$LH_ADDR:53" "${LH_NO_UPSTREAM[@]}" \
    --control-socket /run/lh-ctl/control.sock --no-hosts 2>&1); rc=$?
check "an explicit control socket that cannot be made: non-zero exit ($rc)" test "$rc" -ne 0 -a "$rc" -ne 124
expect_match "... with the error" "$out" "control-socket: cannot create /run/lh-ctl"
lh_done
