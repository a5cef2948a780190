#!/usr/bin/env bash
# The daemon as a user meets it: --help, check-config, config precedence, bind errors that
# explain themselves, SIGTERM within a second, SIGHUP reload (and a failed reload keeps state).
. "$(dirname "$0")/lib.sh"

help=$("$LOOPHOLE" --help)
for flag in --config --listen --log-level --hosts-file --no-hosts --local-ttl --edns-udp-size \
            --tcp-idle-timeout --tcp-max-connections check-config; do
    expect_match "--help mentions $flag" "$help" "$flag"
done
# Every flag in --help is documented in docs/configuration.md, and vice versa for keys.
for flag in $(echo "$help" | grep -oE -- '--[a-z0-9-]+' | sort -u); do
    case $flag in --help|--version|--config) continue ;; esac
    check "docs/configuration.md documents $flag" grep -q -- "$flag" "$LH_SRC/docs/configuration.md"
done
"$LOOPHOLE" --no-such-flag >/dev/null 2>&1
expect_eq "an unknown flag exits 2" "$?" "2"
"$LOOPHOLE" frobnicate >/dev/null 2>&1
expect_eq "an unknown command exits 2" "$?" "2"
expect_match "--version" "$("$LOOPHOLE" --version)" "^loophole [0-9]+\.[0-9]+\.[0-9]+$"

# check-config: OK, then file:line for the first error.
cat >"$LH_TMP/good.conf" <<C
# a comment
listen = $LH_ADDR:53
log-level = info
hosts-file = none
C
check "check-config accepts a good file" "$LOOPHOLE" check-config --config "$LH_TMP/good.conf"
printf 'listen = 127.0.0.1\nlocal-ttl = soon\n' >"$LH_TMP/bad.conf"
err=$("$LOOPHOLE" check-config --config "$LH_TMP/bad.conf" 2>&1)
expect_eq "check-config exits non-zero" "$?" "2"
expect_eq "check-config says file:line" "$err" "$LH_TMP/bad.conf:2: local-ttl: 'soon' is not a number of seconds up to 86400"
err=$("$LOOPHOLE" check-config --hosts-file /nonexistent/hosts 2>&1)
expect_eq "check-config checks the hosts file" "$?" "1"
expect_match "names the hosts file" "$err" "/nonexistent/hosts: cannot open hosts file"
check "the shipped example config is valid" "$LOOPHOLE" check-config --config "$LH_SRC/docs/loophole.conf.example" --no-hosts
# check-config refuses what serve would refuse: the user to switch to.
err=$("$LOOPHOLE" check-config --no-hosts --user no-such-user-lh 2>&1)
expect_eq "check-config: a user that does not exist exits 1" "$?" "1"
expect_match "... and says so" "$err" "user 'no-such-user-lh' does not exist"
err=$("$LOOPHOLE" check-config --no-hosts --user root 2>&1)
expect_eq "check-config: user root without --allow-root exits 1" "$?" "1"
expect_match "... and says how to mean it" "$err" "user 'root' is root: pass --allow-root"
check "check-config: --allow-root is accepted" "$LOOPHOLE" check-config --no-hosts --allow-root
printf 'allow-root = yes\n' >"$LH_TMP/root.conf"
check "... and allow-root = yes in a file" "$LOOPHOLE" check-config --no-hosts --config "$LH_TMP/root.conf"
# A config file that cannot be read: exit 1, as for any file the configuration names.
err=$("$LOOPHOLE" check-config --config "$LH_TMP/none.conf" 2>&1)
expect_eq "a missing --config file exits 1" "$?" "1"
expect_eq "... and names it" "$err" "$LH_TMP/none.conf: cannot open: No such file or directory"
# Errors that involve two settings name the file:line of each.
printf '# budget\nupstream-timeout = 3000\nlog-level = info\nquery-budget = 2000\n' >"$LH_TMP/two.conf"
err=$("$LOOPHOLE" check-config --no-hosts --config "$LH_TMP/two.conf" 2>&1)
expect_eq "two settings in conflict: exit 2" "$?" "2"
expect_eq "... file:line of both" "$err" "loophole: $LH_TMP/two.conf:4: query-budget (2000 ms) is shorter than upstream-timeout (3000 ms) (upstream-timeout: $LH_TMP/two.conf:2)"
err=$("$LOOPHOLE" check-config --no-hosts --config "$LH_TMP/two.conf" --query-budget 1000 2>&1)
expect_eq "... a flag is named as the flag" "$err" "loophole: --query-budget: query-budget (1000 ms) is shorter than upstream-timeout (3000 ms) (upstream-timeout: $LH_TMP/two.conf:2)"
printf 'hosts-file = none\n\nlisten = 192.0.2.1:53\n' >"$LH_TMP/listen.conf"
err=$("$LOOPHOLE" check-config --config "$LH_TMP/listen.conf" 2>&1)
expect_match "a non-loopback listen line is named with its line" "$err" "^loophole: $LH_TMP/listen.conf:3: listening on 192.0.2.1:53, which is not a loopback address.*\(allow-client: the default\)$"

# Flags override the file: the file says hosts-file = none, the flag gives one.
echo "10.0.0.99 flagged.test" >"$LH_TMP/hosts"
"$LOOPHOLE" serve --config "$LH_TMP/good.conf" --hosts-file "$LH_TMP/hosts" "${LH_NO_UPSTREAM[@]}" >>"$LH_TMP/loophole.log" 2>&1 &
LH_PID=$!; lh_track "$LH_PID"
lh_wait_ready "$LH_ADDR"
expect_eq "flag overrides the config file" "$(d flagged.test +short)" "10.0.0.99"

# Privilege drop: started as root, it binds and then serves as an unprivileged user.
if [ "$(id -u)" = 0 ]; then
    expect_eq "runs as nobody after binding" "$(ps -o user= -p "$LH_PID")" "nobody"
    err=$("$LOOPHOLE" --listen "$(lh_peer 1):53" --no-hosts "${LH_NO_UPSTREAM[@]}" --user no-such-user-lh 2>&1)
    expect_eq "an unknown --user exits 1" "$?" "1"
    expect_match "... and says how to create one" "$err" "user 'no-such-user-lh' does not exist: create it"
    # (bounded: a daemon that accepts it would serve on)
    err=$(timeout 20 "$LOOPHOLE" --listen "$(lh_peer 1):53" --no-hosts "${LH_NO_UPSTREAM[@]}" --user root 2>&1)
    expect_eq "--user root without --allow-root exits 1 (root is not a user to switch to)" "$?" "1"
    expect_match "... and says so" "$err" "user 'root' is root: pass --allow-root"
    "$LOOPHOLE" --listen "$(lh_peer 2):53" --no-hosts "${LH_NO_UPSTREAM[@]}" --allow-root >"$LH_TMP/root.log" 2>&1 &
    rp=$!; lh_track "$rp"
    lh_wait_log 1 "ready" "$LH_TMP/root.log"
    expect_eq "--allow-root keeps root" "$(ps -o user= -p "$rp")" "root"
    expect_match "... with a warning" "$(cat "$LH_TMP/root.log")" "running as root \(--allow-root\)"
    lh_stop "$rp"
    expect_eq "... and stops with exit 0" "$?" "0"
    # A state directory that is a symbolic link is refused, and its target keeps its owner
    # (it used to be chowned to the daemon's user through the link).
    mkdir -m 0700 "$LH_TMP/victim"
    ln -s "$LH_TMP/victim" "$LH_TMP/state-link"
    err=$(timeout 20 "$LOOPHOLE" --listen "$(lh_peer 2):53" --no-hosts "${LH_NO_UPSTREAM[@]}" \
        --state-dir "$LH_TMP/state-link" --control-socket none 2>&1)
    expect_eq "a symlinked --state-dir exits 1" "$?" "1"
    expect_match "... and says why" "$err" "state-dir: $LH_TMP/state-link is a symbolic link; refusing it"
    expect_eq "... its target still belongs to root" "$(stat -c %U "$LH_TMP/victim")" "root"
fi

# health: exit 0 only when the daemon answers.
expect_match "health: the running daemon answers" "$("$LOOPHOLE" health --listen "$LH_ADDR")" "answers"
"$LOOPHOLE" health --listen "$(lh_peer 3)" >/dev/null 2>&1
expect_eq "health: nothing there exits 1" "$?" "1"

# Address in use: explained, exit non-zero.
err=$("$LOOPHOLE" --listen "$LH_ADDR:53" --no-hosts "${LH_NO_UPSTREAM[@]}" 2>&1)
expect_eq "a second instance exits 1" "$?" "1"
expect_match "address in use names systemd-resolved" "$err" "address already in use.*systemd-resolved.*DNSStubListener=no.*--listen"
# Permission denied: port 53 as an unprivileged user.
if command -v setpriv >/dev/null; then
    err=$(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$LOOPHOLE" --listen 127.0.0.1:53 --no-hosts "${LH_NO_UPSTREAM[@]}" 2>&1)
    expect_eq "unprivileged bind exits 1" "$?" "1"
    expect_match "permission denied names CAP_NET_BIND_SERVICE" "$err" "permission denied.*CAP_NET_BIND_SERVICE.*--listen 127.0.0.53:5353"
fi
err=$("$LOOPHOLE" --listen 192.0.2.1:53 --allow-client 192.0.2.0/24 --no-hosts "${LH_NO_UPSTREAM[@]}" 2>&1)
expect_match "an address not on this machine is explained" "$err" "not configured on any interface"

# SIGHUP reloads the hosts file; a failed reload keeps the old data.
echo "10.0.0.100 flagged.test" >"$LH_TMP/hosts"
kill -HUP "$LH_PID"
lh_wait_log 1 "reload: done"
expect_eq "SIGHUP reloads the hosts file" "$(d flagged.test +short)" "10.0.0.100"
mv "$LH_TMP/hosts" "$LH_TMP/hosts.gone"
kill -HUP "$LH_PID"
lh_wait_log 1 "reload failed"
expect_match "a failed reload is logged" "$(cat "$LH_TMP/loophole.log")" "reload failed, keeping the current configuration: .*hosts.*cannot open"
expect_eq "a failed reload keeps the old answers" "$(d flagged.test +short)" "10.0.0.100"

# SIGTERM with a TCP client connected and idle: the client has been answered once (so it is
# connected for sure), then sits idle. The daemon closes it at once and exits 0; it must not
# need its 800 ms grace timer for an idle connection (the log would say "still busy"). The
# wait is bounded at 10 s, over 3x that timer: a hang fails, a busy machine does not.
$LH_PY - "$LH_ADDR" "$LH_SRC/tests/e2e" >"$LH_TMP/idle-client.out" <<'PY' &
import socket, sys, time
sys.path.insert(0, sys.argv[2])
from dnsclient import *
s = tcp_connect(sys.argv[1], timeout=30)
s.sendall(frame(query("localhost", qid=77)))
r = read_frame(s)
print("connected, answered" if r and header(r)["id"] == 77 else "no answer", flush=True)
try:
    print("closed by the server" if s.recv(10) == b"" else "data", flush=True)
except OSError as e:
    print("closed by the server (%s)" % e.__class__.__name__, flush=True)
PY
client=$!
lh_wait_for 30 grep -q "connected" "$LH_TMP/idle-client.out"
expect_eq "the idle client was connected and answered" "$(head -1 "$LH_TMP/idle-client.out")" "connected, answered"
kill -TERM "$LH_PID"
_gone() { ! kill -0 "$LH_PID" 2>/dev/null; }
check "SIGTERM: the daemon exits (bounded at 10 s)" lh_wait_for 10 _gone
lh_reap "$LH_PID"
expect_eq "SIGTERM exits 0" "$?" "0"
wait "$client"
expect_match "the idle client was closed by the server" "$(cat "$LH_TMP/idle-client.out")" "closed by the server"
expect_eq "no grace period was needed for an idle connection" "$(lh_log_count 'still busy')" "0"
expect_match "stop is logged" "$(cat "$LH_TMP/loophole.log")" "SIGTERM: stopping"

# SIGINT likewise.
lh_start --no-hosts
kill -INT "$LH_PID"; lh_reap "$LH_PID"
expect_eq "SIGINT exits 0" "$?" "0"
lh_done
