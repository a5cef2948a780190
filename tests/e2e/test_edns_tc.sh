#!/usr/bin/env bash
# EDNS0: UDP size honoured (floor 512, our cap), OPT echoed, DO kept; TC=1 then TCP retry.
. "$(dirname "$0")/lib.sh"

# A hosts name with 40 IPv6 addresses: 40 x 28 bytes of answers, over 512, under 1232.
{ for i in $(seq 1 40); do echo "2001:db8::$i big.test"; done
  for i in $(seq 1 80); do echo "2001:db8::1:$i huge.test"; done; } >"$LH_TMP/hosts"
lh_start --hosts-file "$LH_TMP/hosts"

out=$(d big.test AAAA +noedns +ignore +noall +comments)
expect_match "no EDNS: truncated at 512 bytes" "$out" "flags: qr tc rd ra;"
expect_match "truncated answer has no records" "$out" "ANSWER: 0"
expect_eq "dig retries over TCP and gets all 40" "$(d big.test AAAA +noedns +short | wc -l)" "40"
expect_match "dig says it retried" "$(d big.test AAAA +noedns 2>&1)" "Truncated, retrying in TCP mode"
expect_eq "EDNS 1232: all 40 over UDP" "$(d big.test AAAA +bufsize=1232 +ignore +short | wc -l)" "40"
expect_match "EDNS 4096 is capped at our 1232: 80 do not fit" "$(d huge.test AAAA +bufsize=4096 +ignore +noall +comments)" "flags: qr tc rd ra;"
expect_match "EDNS below 512 is floored at 512" "$(d localhost +bufsize=100 +ignore +noall +comments)" "flags: qr aa rd ra;"
expect_eq "kdig falls back to TCP too" "$(kdig @"$LH_ADDR" huge.test AAAA +bufsize=4096 +short 2>/dev/null | grep -c "^2001:")" "80"
out=$(d localhost +bufsize=1400 +dnssec +noall +comments)
expect_match "OPT echoed with our size" "$out" "udp: 1232"
expect_match "DO bit echoed" "$out" "flags: do;"
expect_match "no OPT when the client sent none" "$(d localhost +noedns +noall +comments)" "ADDITIONAL: 0"
lh_stop

# A smaller cap from the config applies.
lh_start --hosts-file "$LH_TMP/hosts" --edns-udp-size 600
expect_match "--edns-udp-size 600 truncates 40 AAAA" "$(d big.test AAAA +bufsize=4096 +ignore +noall +comments)" "flags: qr tc rd ra;"
lh_done
