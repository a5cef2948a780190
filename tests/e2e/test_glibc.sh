#!/usr/bin/env bash
# glibc as applications see it: getent through a private resolv.conf and nsswitch.conf
# (a mount namespace with bind mounts; the machine's own files are not touched).
. "$(dirname "$0")/lib.sh"
cat >"$LH_TMP/hosts" <<'H'
10.20.30.40 app.internal.test
H
lh_start --hosts-file "$LH_TMP/hosts"
echo "nameserver $LH_ADDR" >"$LH_TMP/resolv.conf"
echo "options timeout:2 attempts:1" >>"$LH_TMP/resolv.conf"
echo "hosts: dns" >"$LH_TMP/nsswitch.conf"

in_ns() {
    unshare -m bash -c "mount --bind '$LH_TMP/resolv.conf' /etc/resolv.conf &&
        mount --bind '$LH_TMP/nsswitch.conf' /etc/nsswitch.conf && $1"
}
expect_eq "getent ahosts localhost: both families" \
    "$(in_ns 'getent ahosts localhost' | awk '{print $1}' | sort -u | tr '\n' ' ')" "127.0.0.1 ::1 "
expect_eq "getent ahostsv4 localhost" "$(in_ns 'getent ahostsv4 localhost' | awk 'NR==1{print $1}')" "127.0.0.1"
expect_eq "getent ahostsv6 localhost" "$(in_ns 'getent ahostsv6 localhost' | awk 'NR==1{print $1}')" "::1"
expect_eq "getent hosts from loophole's hosts file" "$(in_ns 'getent hosts app.internal.test' | awk '{print $1}')" "10.20.30.40"
expect_eq "getent hosts 127.0.0.1 (PTR)" "$(in_ns 'getent hosts 127.0.0.1' | awk '{print $2}')" "localhost"
# getent exits 2 for "not found" whatever the cause (NXDOMAIN, SERVFAIL, no server): the
# status comes from dig, and getent must agree with it.
expect_status "foo.onion: loophole answers NXDOMAIN" NXDOMAIN foo.onion
in_ns 'getent hosts foo.onion' >/dev/null
expect_eq "getent for .onion: not found (exit 2)" "$?" "2"
# ... and the same getent call succeeds for a name loophole does answer, in the same namespace.
expect_eq "getent for a hosts name in the same setup: found (exit 0)" "$(in_ns 'getent hosts app.internal.test >/dev/null; echo $?')" "0"
lh_done
