#!/usr/bin/env bash
# control-group membership through a supplementary group (issue 13, item 9): a throwaway
# group and two throwaway users are made for the test and removed at exit. The member has the
# group only as a supplementary group (its primary group is nogroup); `loophole stats` run as
# it is accepted. A user outside the group is refused - by the socket's file mode, and by the
# daemon's own SO_PEERCRED check once that mode is loosened.
. "$(dirname "$0")/lib.sh"
for tool in groupadd useradd userdel groupdel setpriv; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is missing"; exit 77; }
done
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to add users"; exit 77; }
suffix=$$
GRP="lhctl$suffix"
MEMBER="lhmem$suffix"
OTHER="lhoth$suffix"
lh_users_cleanup() {
    userdel "$MEMBER" 2>/dev/null
    userdel "$OTHER" 2>/dev/null
    groupdel "$GRP" 2>/dev/null
}
trap 'lh_users_cleanup; lh_cleanup' EXIT
groupadd "$GRP" || { not_ok "groupadd $GRP"; lh_done; }
useradd -M -N -g nogroup -G "$GRP" -s /usr/sbin/nologin -d / "$MEMBER" || { not_ok "useradd"; lh_done; }
useradd -M -N -g nogroup -s /usr/sbin/nologin -d / "$OTHER" || { not_ok "useradd"; lh_done; }
expect_eq "the member's primary group is not the control group" "$(id -gn "$MEMBER")" "nogroup"
expect_match "the member has it as a supplementary group" "$(id -Gn "$MEMBER")" "\b$GRP\b"

SOCK="$LH_TMP/ctl/control.sock"
lh_start --no-hosts --control-socket "$SOCK" --control-group "$GRP"
chmod 755 "$LH_TMP/ctl"
# as USER CMD...: runs CMD with USER's uid, primary gid and supplementary groups (initgroups).
as() { local u=$1; shift; setpriv --reuid "$u" --regid nogroup --init-groups "$@"; }

out=$(as "$MEMBER" "$LOOPHOLE" stats --control-socket "$SOCK" 2>&1); rc=$?
expect_eq "a supplementary member runs 'loophole stats': exit 0" "$rc" "0"
expect_match "... and gets the statistics" "$out" "queries"
out=$(as "$OTHER" "$LOOPHOLE" stats --control-socket "$SOCK" 2>&1); rc=$?
expect_eq "a user outside the group is refused" "$rc" "2"
expect_match "... by the socket's mode" "$out" "Permission denied"
# Loosen the file mode: the daemon's own peer check must still keep the outsider out.
chmod 666 "$SOCK"
out=$(as "$OTHER" "$LOOPHOLE" stats --control-socket "$SOCK" 2>&1); rc=$?
expect_eq "with the mode loosened, the outsider is still refused (SO_PEERCRED)" "$rc" "2"
expect_match "... the daemon closed without an answer" "$out" "no answer from the daemon"
out=$(as "$MEMBER" "$LOOPHOLE" stats --control-socket "$SOCK" 2>&1); rc=$?
expect_eq "... and the member is still accepted" "$rc" "0"
check "still serving" lh_alive
lh_done
