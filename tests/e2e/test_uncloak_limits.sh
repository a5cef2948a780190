#!/usr/bin/env bash
# Uncloaking sees every target (issue 13, item 4): a blocked tracker as the 17th and the 100th
# HTTPS record, and as the last link of a 17-link and a 100-link CNAME chain, from a scripted
# upstream (tests/e2e/fakeupstream.py, mode cloak). The same answers without a tracker are
# relayed whole, so the blocked answers come from the check and not from the size. An answer
# with more than 128 targets is blocked unread.
. "$(dirname "$0")/lib.sh"
FAKE=$(lh_peer 1)
lh_fake "$FAKE" cloak
echo '||tracker.test^' >"$LH_TMP/block.list"
lh_start --no-hosts --upstream "$FAKE" --blocklist "$LH_TMP/block.list"

for n in 1 16 17 100; do
    expect_eq "CNAME chain of $n, tracker last: the blocked answer" \
        "$(d chain$n.cloak.test A +tcp +short)" "127.0.0.1"
    expect_match "... with EDE 15" "$(d chain$n.cloak.test A +tcp +noall +comments)" "EDE: 15"
    out=$(d https$n.cloak.test HTTPS +tcp +noall +comments +answer)
    expect_match "$n HTTPS records, tracker last: the blocked answer (NODATA, EDE 15)" "$out" \
        "status: NOERROR.*ANSWER: 0.*EDE: 15"
    expect_eq "clean CNAME chain of $n: relayed, the address at its end" \
        "$(d cleanchain$n.cloak.test A +tcp +short | tail -1)" "192.0.2.7"
    expect_eq "clean HTTPS set of $n: all $n records relayed" \
        "$(d cleanhttps$n.cloak.test HTTPS +tcp +short | wc -l)" "$n"
done
# More targets than uncloaking checks (128): blocked as a whole, unread - a hostile answer
# cannot make the loop check thousands of names. 128 clean ones are still relayed whole.
expect_eq "clean HTTPS set of 128: all relayed" \
    "$(d cleanhttps128.cloak.test HTTPS +tcp +short | wc -l)" "128"
out=$(d cleanhttps129.cloak.test HTTPS +tcp +noall +comments +answer)
expect_match "clean HTTPS set of 129: the blocked answer (NODATA, EDE 15)" "$out" \
    "status: NOERROR.*ANSWER: 0.*EDE: 15"
expect_eq "clean CNAME chain of 500: the blocked answer" \
    "$(d cleanchain500.cloak.test A +tcp +short)" "127.0.0.1"
log=$(cat "$LH_TMP/loophole.log")
expect_match "the log says why" "$log" \
    "uncloaked: cleanhttps129.cloak.test leads to 129 names, more than the 128 checked; blocked"
expect_match "the log names the tracker behind the 100-link chain" "$log" \
    "uncloaked: chain100.cloak.test leads to shop.tracker.test, blocked by .*block.list"
expect_match "the log names the 100th HTTPS target" "$log" \
    "uncloaked: https100.cloak.test leads to shop.tracker.test"
expect_eq "blocked answers are not cached: the upstream was asked twice for chain17" \
    "$(lh_fake_count "$FAKE" " chain17.cloak.test. A")" "2"
check "still serving" lh_alive
lh_done
