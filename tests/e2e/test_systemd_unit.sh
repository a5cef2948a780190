#!/usr/bin/env bash
# packaging/loophole.service under a real systemd: a Debian container that boots systemd
# (podman run --systemd=always; image from tests/e2e/containers/systemd.Containerfile), with the
# unit and this build's binary installed as docs/system-resolver.md says. Checks: the unit
# verifies; `systemctl start` answers on 127.0.0.53; the dynamic user and the capability sets
# are as written; `systemctl reload` reloads the lists (and the daemon survives it); a crash is
# restarted; `systemctl stop` ends it with exit code 0 before TimeoutStopSec; the exposure
# score of `systemd-analyze security` stays at most LH_MAX_EXPOSURE.
. "$(dirname "$0")/lib.sh"
. "$LH_SRC/tests/e2e/containers/lib.sh"
lhc_init
LH_MAX_EXPOSURE=${LH_MAX_EXPOSURE:-2.0}
SD="lh-systemd-$$"
UPSTREAM=127.0.0.2

t0=$SECONDS
if ! lhc_base_image; then not_ok "the base image ($LHC_BASE) can be made"; lh_done; fi
# Only systemd and the runtime libraries: nothing of this tree, so it is a fixture, kept
# machine-wide (containers/lib.sh). The unit and the binary under test are copied in below.
if ! IMG=$(lhc_fixture_image systemd "$LH_SRC/tests/e2e/containers/systemd.Containerfile" \
        "$LH_SRC/tests/e2e/containers" 2>"$LH_TMP/build.log"); then
    tail -30 "$LH_TMP/build.log"
    not_ok "the systemd image builds"
    lh_done
fi
echo "# systemd image ready after $((SECONDS - t0)) s"
# CAP_SYS_ADMIN: systemd sets up the unit's sandbox (ProtectSystem=, PrivateTmp=, ...) with
# mount namespaces; without it the unit fails with 226/NAMESPACE, as on no real machine.
check "systemd boots in a container" lhc_run "$SD" --systemd=always --cap-add SYS_ADMIN "$IMG" >/dev/null 2>&1
in_sd() { pm exec "$SD" "$@"; }
# in_sd_until SECONDS SHELL-CONDITION: polls the condition inside the container (one exec, not
# one per try) every 0.1 s, up to SECONDS; prints the condition's last output.
in_sd_until() {
    in_sd sh -c 'i=0; while [ $i -lt $(($1 * 10)) ]; do out=$(eval "$2") && break; i=$((i + 1));
        sleep 0.1; done; echo "$out"; [ $i -lt $(($1 * 10)) ]' sh "$1" "$2" 2>/dev/null
}
# The bus is there a moment after PID 1; then wait for the boot to finish.
state=$(in_sd_until 60 'systemctl is-system-running --wait | grep -E "^(running|degraded)$"')
expect_match "systemd is up (is-system-running)" "$state" "^(running|degraded)$"
[ "$state" = degraded ] && in_sd systemctl --failed --no-legend

# Install as the docs say: the binary, the unit, a config and a list folder.
quiet pm cp "$LOOPHOLE" "$SD:/usr/local/sbin/loophole"
quiet pm cp "$LH_SRC/packaging/loophole.service" "$SD:/etc/systemd/system/loophole.service"
mkdir -p "$LH_TMP/etc/lists"
echo '||blocked.unit.test^' >"$LH_TMP/etc/lists/first.list"
printf 'upstream = %s\nblocklist = /etc/loophole/lists\nhosts-file = none\n' "$UPSTREAM" \
    >"$LH_TMP/etc/loophole.conf"
chmod -R a+rX "$LH_TMP/etc"
in_sd mkdir -p /etc/loophole
quiet pm cp "$LH_TMP/etc/." "$SD:/etc/loophole/"
out=$(in_sd systemd-analyze verify loophole.service 2>&1)
expect_eq "systemd-analyze verify: no complaint" "$out" ""
# A test-only drop-in records how the main process ended ($EXIT_CODE/$EXIT_STATUS: "exited 0"
# for a clean exit, "killed TERM" for a death by signal, which systemd would also call success).
in_sd mkdir -p /etc/systemd/system/loophole.service.d
printf '[Service]\nExecStopPost=+/bin/sh -c "echo $$SERVICE_RESULT $$EXIT_CODE $$EXIT_STATUS >>/run/loophole-exits"\n' \
    >"$LH_TMP/exits.conf"
quiet pm cp "$LH_TMP/exits.conf" "$SD:/etc/systemd/system/loophole.service.d/exits.conf"
quiet in_sd systemctl daemon-reload

# The upstream: a fake one in the container's network namespace.
pid=$(lhc_pid "$SD")
nsenter -n -t "$pid" "$LH_PY" "$LH_SRC/tests/e2e/fakeupstream.py" "$UPSTREAM" answer \
    "$LH_TMP/fake.log" >"$LH_TMP/fake.out" 2>&1 &
LH_PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$LH_TMP/fake.out" 2>/dev/null && break; sleep 0.1; done
q() { nsenter -n -t "$pid" dig @127.0.0.53 +short +time=2 +tries=1 "$@" 2>/dev/null; }
# until_answers NAME EXPECTED: up to 10 s (the unit is Type=simple: started is not ready).
until_answers() {
    for _ in $(seq 100); do [ "$(q "$1")" = "$2" ] && return 0; sleep 0.1; done
    return 1
}
show() { in_sd systemctl show -p "$1" --value loophole; }

check "systemctl start loophole" in_sd systemctl start loophole
check "... answers on 127.0.0.53" until_answers localhost 127.0.0.1
expect_eq "... a blocked name" "$(q x.blocked.unit.test)" "127.0.0.1"
expect_eq "... a forwarded name" "$(q www.example.unit)" "192.0.2.1"
main=$(show MainPID)
status=$(in_sd cat "/proc/$main/status")
uid=$(awk '/^Uid:/ {print $2}' <<<"$status")
check "DynamicUser: a uid from systemd's dynamic range (61184-65519), not root" \
    test "$uid" -ge 61184 -a "$uid" -le 65519
expect_eq "... named loophole (nss-systemd)" "$(in_sd getent passwd "$uid" | cut -d: -f1)" "loophole"
expect_eq "capabilities: only CAP_NET_BIND_SERVICE, bounding and ambient (Prm Eff Bnd Amb)" \
    "$(awk '/^Cap(Prm|Eff|Bnd|Amb):/ {printf "%s ", $2}' <<<"$status")" \
    "0000000000000400 0000000000000400 0000000000000400 0000000000000400 "
expect_eq "... as the unit says" "$(show CapabilityBoundingSet)" "cap_net_bind_service"
expect_eq "NoNewPrivileges" "$(awk '/^NoNewPrivs:/ {print $2}' <<<"$status")" "1"

echo '||second.unit.test^' >"$LH_TMP/second.list"
chmod a+r "$LH_TMP/second.list"
quiet pm cp "$LH_TMP/second.list" "$SD:/etc/loophole/lists/second.list"
check "systemctl reload loophole" in_sd systemctl reload loophole
expect_eq "... loads the new list" "$(q x.second.unit.test)" "127.0.0.1"
expect_eq "... in the same process, never restarted" "$(show MainPID) $(show NRestarts)" "$main 0"

in_sd sh -c "kill -SEGV $main"
# RestartSec=2: up to 30 s.
restarted=$(in_sd_until 30 '[ "$(systemctl show -p NRestarts --value loophole)" = 1 ] &&
    [ "$(systemctl show -p ActiveState --value loophole)" = active ] && echo restarted')
expect_eq "a crash (SIGSEGV) is restarted" "$restarted" "restarted"
check "... and the new process answers" until_answers x.second.unit.test 127.0.0.1
check "... as a new process" [ "$(show MainPID)" != "$main" ]

t=$SECONDS
check "systemctl stop loophole" in_sd systemctl stop loophole
echo "# systemctl stop took $((SECONDS - t)) s (TimeoutStopSec=10)"
expect_eq "... the crash, then the stop: exit code 0 before the stop timeout" \
    "$(in_sd cat /run/loophole-exits | tr '\n' ' ')" "signal killed SEGV success exited 0 "

sec=$(in_sd systemd-analyze security loophole.service 2>&1)
score=$(sed -n 's/.*Overall exposure level for loophole.service: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p' <<<"$sec")
echo "# systemd-analyze security: exposure $score (at most $LH_MAX_EXPOSURE asked)"
grep '✗' <<<"$sec" | sed 's/^/#   /'
check "exposure score at most $LH_MAX_EXPOSURE" \
    awk -v s="${score%% *}" -v m="$LH_MAX_EXPOSURE" 'BEGIN { exit !(s != "" && s + 0 <= m + 0) }'

echo "# systemd unit test: $((SECONDS - t0)) s in all"
lh_done
