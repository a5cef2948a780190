#!/usr/bin/env bash
# `loophole why NAME --answer FILE` and `--lookup` explain what the checks on upstream answers
# (the daemon's own, lh_policy_check_answer) make of an answer: a CNAME into a name of the real
# public lists (tests/fixtures/blocklists) is uncloaked and the deciding rule named file:line;
# a private address is refused with rebind-protection on and passes without it; a live answer
# from a scripted upstream (fakeupstream.py, mode cloak) gives the verdict the daemon gives it.
. "$(dirname "$0")/lib.sh"
L="$LH_SRC/tests/fixtures/blocklists"
UP=$(lh_peer 1)
lh_fake "$UP" cloak
args=(--no-hosts --no-default-blocklist --state-dir none)
for f in "$L"/*.hosts "$L"/*.adblock "$L"/*.sample "$L"/stevenblack.domains; do args+=(--blocklist "$f"); done

# An answer as dig prints it: www.shop.test is a CNAME for a name on the real lists.
cat >"$LH_TMP/cloaked.txt" <<'DIG'
; <<>> DiG 9.18 <<>> www.shop.test
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4242
;; flags: qr rd ra; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 1

;; QUESTION SECTION:
;www.shop.test.			IN	A

;; ANSWER SECTION:
www.shop.test.		300	IN	CNAME	x.anet1.tradedoubler.com.
x.anet1.tradedoubler.com. 300	IN	A	192.0.2.7
DIG
out=$("$LOOPHOLE" why www.shop.test "${args[@]}" --answer "$LH_TMP/cloaked.txt")
expect_match "the question alone is forwarded" "$(head -1 <<<"$out")" "^www.shop.test A: forwarded upstream"
expect_match "--answer: uncloaked, the target named" "$out" \
    "upstream answer \($LH_TMP/cloaked.txt\): uncloaked: it leads to x.anet1.tradedoubler.com, which is blocked"
expect_match "... the blocked answer sent instead" "$out" $'instead, answer: NOERROR, 1 answer record\\(s\\)\nwww.shop.test.\s+10\s+IN\s+A\s+127.0.0.1'
expect_match "... and the rule on the target as file:line" "$out" "block $L/[a-z0-9.-]+:[0-9]+: .*tradedoubler"
# Blocking paused is the daemon's state, not the CLI's; an allow rule on the target lets it pass.
echo '@@||tradedoubler.com^' >"$LH_TMP/allow.list"
out=$("$LOOPHOLE" why www.shop.test "${args[@]}" --allowlist "$LH_TMP/allow.list" --answer "$LH_TMP/cloaked.txt")
expect_match "an allowlisted target passes" "$out" "passes the checks, forwarded as it is: no CNAME/SVCB target is blocked"

# The same name answered with a private address.
sed -e '/tradedoubler.com. 300/d' -e 's/CNAME\tx.anet1.tradedoubler.com./A\t192.168.1.7/' \
    "$LH_TMP/cloaked.txt" >"$LH_TMP/private.txt"
out=$("$LOOPHOLE" why www.shop.test "${args[@]}" --answer "$LH_TMP/private.txt")
expect_match "private address, rebind-protection off: passes, and says so" "$out" \
    "passes the checks, forwarded as it is: no CNAME/SVCB target; a private address, but rebind-protection is off"
out=$("$LOOPHOLE" why www.shop.test "${args[@]}" --rebind-protection --answer "$LH_TMP/private.txt")
expect_match "rebind-protection on: refused (rebind)" "$out" "upstream answer .*: refused \(rebind\)"
expect_match "... SERVFAIL instead" "$out" "instead, answer: SERVFAIL"
out=$("$LOOPHOLE" why www.shop.test "${args[@]}" --rebind-protection --rebind-allow shop.test --answer "$LH_TMP/private.txt")
expect_match "a rebind-allow domain passes" "$out" "a private address under a rebind-allow domain"
out=$("$LOOPHOLE" why www.shop.test "${args[@]}" --rebind-protection --forward-zone "shop.test=$UP" --answer "$LH_TMP/private.txt")
expect_match "a forward zone's servers may answer privately" "$out" "a private address from a forward zone's servers"
echo 'localhost. 300 IN A 10.9.9.9' >"$LH_TMP/localhost.txt"
out=$("$LOOPHOLE" why localhost "${args[@]}" --answer "$LH_TMP/localhost.txt")
expect_match "a local name never uses the answer" "$out" "not used: localhost is answered here"

# Errors: a missing file, a line that is no record (file:line), an answer to another question.
"$LOOPHOLE" why www.shop.test "${args[@]}" --answer "$LH_TMP/none.txt" >/dev/null 2>"$LH_TMP/err"
expect_eq "a missing answer file exits 2" "$?" "2"
expect_match "... naming it" "$(cat "$LH_TMP/err")" "$LH_TMP/none.txt: cannot open"
printf 'www.shop.test. 300 IN A 192.0.2.1\nnot a record\n' >"$LH_TMP/bad.txt"
"$LOOPHOLE" why www.shop.test "${args[@]}" --answer "$LH_TMP/bad.txt" >/dev/null 2>"$LH_TMP/err"
expect_eq "a bad line exits 2" "$?" "2"
expect_match "... as file:line" "$(cat "$LH_TMP/err")" "$LH_TMP/bad.txt:2: not a resource record"
"$LOOPHOLE" why other.test "${args[@]}" --answer "$LH_TMP/cloaked.txt" >/dev/null 2>"$LH_TMP/err"
expect_eq "an answer to another question exits 2" "$?" "2"
expect_match "... and says whose it is" "$(cat "$LH_TMP/err")" "answers www.shop.test, not other.test"

# Live: asked of the upstream the question goes to, checked as the daemon checks it.
echo '||tracker.test^' >"$LH_TMP/block.list"
out=$("$LOOPHOLE" why chain17.cloak.test "${args[@]}" --blocklist "$LH_TMP/block.list" --upstream "$UP" --lookup)
expect_match "--lookup: a 17-link CNAME chain into a tracker is uncloaked" "$out" \
    "upstream answer \($UP:53\): uncloaked: it leads to shop.tracker.test"
out=$("$LOOPHOLE" why cleanchain17.cloak.test "${args[@]}" --blocklist "$LH_TMP/block.list" --upstream "$UP" --lookup)
expect_match "--lookup: a clean chain passes" "$out" "passes the checks"
out=$("$LOOPHOLE" why private.cloak.test "${args[@]}" --upstream "$UP" --rebind-protection --lookup)
expect_match "--lookup: a private answer is refused (rebind)" "$out" "refused \(rebind\)"
expect_eq "the upstream was asked each time" "$(lh_fake_count "$UP" "chain17.cloak.test|private.cloak.test")" "3"
out=$("$LOOPHOLE" why foo.localhost "${args[@]}" --upstream "$UP" --lookup)
expect_match "--lookup of a local name asks nothing" "$out" "upstream answer: not asked: foo.localhost is answered here"
expect_eq "... and the upstream never saw it" "$(lh_fake_count "$UP" "localhost")" "0"
# The daemon gives the same verdicts for the same answers.
lh_start "${args[@]}" --blocklist "$LH_TMP/block.list" --upstream "$UP" --rebind-protection
expect_eq "daemon: the chain is blocked" "$(d chain17.cloak.test +short)" "127.0.0.1"
expect_match "daemon: the private answer is refused" "$(d private.cloak.test +noall +comments)" "status: SERVFAIL"
lh_done
