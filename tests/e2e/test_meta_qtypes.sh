#!/usr/bin/env bash
# Meta-query types are answered here and never forwarded (issue 13, item 6): AXFR and IXFR
# get REFUSED, MAILA and MAILB NOTIMP, OPT and TSIG as the question type FORMERR. "Never
# forwarded" is proven by the fake upstream's query log: it sees the ordinary questions
# asked around them, and none of these. Unknown opcodes (item 9, first point): NOTIMP with
# QR and the opcode only - no RA, none of the query's flags.
. "$(dirname "$0")/lib.sh"
FAKE=$(lh_peer 1)
lh_fake "$FAKE" answer
lh_start --no-hosts --upstream "$FAKE"

expect_eq "control: an A question is forwarded" "$(d before.meta.test +short)" "192.0.2.1"
expect_eq "the fake logged it" "$(lh_fake_count "$FAKE" "before.meta.test")" "1"

# dig asks AXFR and IXFR over TCP, as a transfer client does.
expect_eq "dig AXFR: REFUSED" "$(dstatus zone.meta.test AXFR)" "REFUSED"
expect_eq "dig IXFR: REFUSED" "$(dstatus zone.meta.test IXFR=1)" "REFUSED"
expect_eq "dig AXFR over UDP: REFUSED" "$(dstatus zone.meta.test AXFR +notcp)" "REFUSED"
expect_match "kdig AXFR: REFUSED" "$(kdig @"$LH_ADDR" zone.meta.test AXFR 2>&1)" "REFUSED"
expect_match "kdig IXFR: REFUSED" "$(kdig @"$LH_ADDR" zone.meta.test IXFR=1 2>&1)" "REFUSED"
expect_match "AXFR: EDE 21 (Not Supported)" "$(d zone.meta.test AXFR +noall +comments)" "EDE: 21"
for proto in +notcp +tcp; do
    expect_eq "MAILB ($proto): NOTIMP" "$(dstatus mb.meta.test TYPE253 $proto)" "NOTIMP"
    expect_eq "MAILA ($proto): NOTIMP" "$(dstatus ma.meta.test TYPE254 $proto)" "NOTIMP"
    expect_eq "OPT as QTYPE ($proto): FORMERR" "$(dstatus opt.meta.test TYPE41 $proto)" "FORMERR"
    expect_eq "TSIG as QTYPE ($proto): FORMERR" "$(dstatus tsig.meta.test TYPE250 $proto)" "FORMERR"
done
expect_match "kdig MAILA: NOTIMP" "$(kdig @"$LH_ADDR" ma.meta.test TYPE254 +noall +header 2>&1)" "NOTIMP"
expect_match "kdig OPT as QTYPE: FORMERR" "$(kdig @"$LH_ADDR" opt.meta.test TYPE41 +noall +header 2>&1)" "FORMERR"
# Asked twice: still answered here (nothing was cached from an upstream).
expect_eq "MAILB again: NOTIMP" "$(dstatus mb.meta.test TYPE253)" "NOTIMP"

expect_eq "control: an A question after them is forwarded" "$(d after.meta.test +short)" "192.0.2.1"
expect_eq "the fake logged it" "$(lh_fake_count "$FAKE" "after.meta.test")" "1"
expect_eq "the fake saw no meta-type question at all" \
    "$(grep -ciE "(zone|mb|ma|opt|tsig)\.meta\.test" "$LH_TMP/fake-$FAKE.log")" "0"
expect_eq "... nor any of these types" \
    "$(grep -cE " (AXFR|IXFR|MAILA|MAILB|OPT|TSIG|TYPE41|TYPE250|TYPE253|TYPE254) (udp|tcp)$" "$LH_TMP/fake-$FAKE.log")" "0"
expect_match "loophole why explains it" "$("$LOOPHOLE" why zone.meta.test AXFR --no-hosts 2>&1)" "meta-query type"

# Unknown opcodes: a raw query with every flag set.
out=$($LH_PY - "$LH_ADDR" "$LH_SRC/tests/e2e" <<'PY'
import struct, sys
sys.path.insert(0, sys.argv[2])
from dnsclient import *
a = sys.argv[1]
for opcode in (2, 3, 6, 15):
    # AA, TC, RD, RA, Z, AD, CD all set (QR clear: a query).
    flags = (opcode << 11) | 0x0400 | 0x0200 | 0x0100 | 0x0080 | 0x0040 | 0x0020 | 0x0010
    r = udp(a, query("localhost", flags=flags))
    h = header(r) if r else None
    print(f"opcode {opcode}: " + (f"flags={h['flags']:#06x} rcode={h['rcode']} qd={h['qd']}" if h else "silence"))
PY
)
echo "$out"
for opcode in 2 3 6 15; do
    expect_eq "opcode $opcode: NOTIMP with QR and the opcode only (no RA, no echoed flags)" \
        "$(echo "$out" | grep "^opcode $opcode:" | cut -d' ' -f3-)" \
        "$(printf 'flags=%#06x rcode=4 qd=1' $(( 0x8000 | (opcode << 11) | 4 )))"
done
expect_match "dig +opcode=15 +rec +adflag +cdflag: flags qr only" \
    "$(d localhost +opcode=15 +rec +adflag +cdflag +noall +comments)" "status: NOTIMP.*flags: qr;"
check "still serving" lh_alive
lh_done
