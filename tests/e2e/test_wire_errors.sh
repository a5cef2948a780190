#!/usr/bin/env bash
# Malformed and unusual queries: FORMERR, NOTIMP, BADVERS, silent drops.
. "$(dirname "$0")/lib.sh"
lh_start --no-hosts

out=$($LH_PY - "$LH_ADDR" "$LH_SRC/tests/e2e" <<'PY'
import struct, sys
sys.path.insert(0, sys.argv[2])
from dnsclient import *
a = sys.argv[1]

def res(desc, pkt):
    r = udp(a, pkt, timeout=1.0)
    if r is None:
        print(f"{desc}: silence")
    else:
        h = header(r)
        print(f"{desc}: rcode={h['rcode']} qd={h['qd']} id={h['id']:#x} qr={h['flags'] >> 15}")

q = query("localhost")
res("short header", q[:11])
res("a response (QR=1)", struct.pack("!H", 0x4242) + struct.pack("!H", 0x8100) + q[4:])
res("opcode NOTIFY", q[:2] + struct.pack("!H", 4 << 11) + q[4:])
res("opcode UPDATE", q[:2] + struct.pack("!H", 5 << 11) + q[4:])
res("no question", query("localhost", qdcount=0)[:12])
res("two questions", query("localhost", qdcount=2))
res("question cut short", q[:-2])
res("compressed question name", q[:12] + b"\xc0\x0c" + q[-4:])
res("label of 64", q[:12] + b"\x40" + b"a" * 64 + b"\0" + q[-4:])
res("name of 256 bytes", q[:12] + (b"\x3f" + b"a" * 63) * 4 + b"\0" + q[-4:])
res("OPT with junk options", q[:10] + b"\0\1" + q[12:] + b"\0\0\x29\x04\xd0\0\0\0\0\0\x03\0\x08\0")
res("two OPT records", q[:10] + b"\0\2" + q[12:] + (b"\0\0\x29\x04\xd0\0\0\0\0\0\0") * 2)
res("additional count past the end", q[:10] + b"\0\5" + q[12:])
res("trailing garbage after the question", q + b"\xde\xad\xbe\xef")
PY
)
echo "$out"
line() { echo "$out" | grep "^$1:" | cut -d: -f2- | sed 's/^ //'; }
expect_eq "shorter than a header is dropped" "$(line 'short header')" "silence"
expect_eq "QR=1 is dropped" "$(line 'a response (QR=1)')" "silence"
expect_eq "NOTIFY gets NOTIMP, question echoed" "$(line 'opcode NOTIFY')" "rcode=4 qd=1 id=0x4242 qr=1"
expect_eq "UPDATE gets NOTIMP" "$(line 'opcode UPDATE')" "rcode=4 qd=1 id=0x4242 qr=1"
expect_eq "no question: FORMERR" "$(line 'no question')" "rcode=1 qd=0 id=0x4242 qr=1"
expect_eq "two questions: FORMERR" "$(line 'two questions')" "rcode=1 qd=0 id=0x4242 qr=1"
expect_eq "cut question: FORMERR" "$(line 'question cut short')" "rcode=1 qd=0 id=0x4242 qr=1"
expect_eq "compressed question: FORMERR" "$(line 'compressed question name')" "rcode=1 qd=0 id=0x4242 qr=1"
expect_eq "label of 64: FORMERR" "$(line 'label of 64')" "rcode=1 qd=0 id=0x4242 qr=1"
expect_eq "256-byte name: FORMERR" "$(line 'name of 256 bytes')" "rcode=1 qd=0 id=0x4242 qr=1"
expect_eq "junk EDNS options: FORMERR" "$(line 'OPT with junk options')" "rcode=1 qd=1 id=0x4242 qr=1"
expect_eq "two OPT: FORMERR" "$(line 'two OPT records')" "rcode=1 qd=1 id=0x4242 qr=1"
expect_eq "records past the end: FORMERR" "$(line 'additional count past the end')" "rcode=1 qd=1 id=0x4242 qr=1"
expect_eq "trailing bytes are ignored" "$(line 'trailing garbage after the question')" "rcode=0 qd=1 id=0x4242 qr=1"

# Real clients for the same paths.
expect_match "dig +opcode=notify -> NOTIMP" "$(d localhost +opcode=notify +noall +comments)" "status: NOTIMP"
expect_match "dig +edns=1 -> BADVERS" "$(d localhost +edns=1 +noednsneg +noall +comments)" "status: BADVERS"
expect_match "kdig +edns=1 -> BADVERS" "$(kdig @"$LH_ADDR" localhost +edns=1 +noall +header 2>&1)" "BADVERS"
check "still serving" lh_alive
lh_done
