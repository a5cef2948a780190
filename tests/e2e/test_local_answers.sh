#!/usr/bin/env bash
# Names loophole answers itself, asked with dig, kdig and drill over UDP and TCP.
. "$(dirname "$0")/lib.sh"

cat >"$LH_TMP/hosts" <<'H'
127.0.0.1 localhost
192.168.7.10 nas.home.test nas
fd00::7:10 nas.home.test
10.9.9.9 printer.lan.test
H
# A fake upstream proves what is never forwarded: it logs every name it is asked.
UP=$(lh_peer 1)
lh_fake "$UP" answer
lh_start --hosts-file "$LH_TMP/hosts" --upstream "$UP"

for proto in +notcp +tcp; do
    expect_eq "dig $proto localhost A" "$(d localhost A +short $proto)" "127.0.0.1"
    expect_eq "dig $proto localhost AAAA" "$(d localhost AAAA +short $proto)" "::1"
    expect_eq "dig $proto LocalHost. (any case)" "$(d LocalHost. A +short $proto)" "127.0.0.1"
    expect_eq "dig $proto name under localhost" "$(d app.dev.localhost AAAA +short $proto)" "::1"
done
expect_eq "kdig localhost A (udp)" "$(kdig @"$LH_ADDR" localhost A +short)" "127.0.0.1"
expect_eq "kdig localhost AAAA (tcp)" "$(kdig @"$LH_ADDR" localhost AAAA +tcp +short)" "::1"
expect_match "drill localhost AAAA" "$(drill @"$LH_ADDR" localhost AAAA)" $'localhost\.\s+[0-9]+\s+IN\s+AAAA\s+::1'
expect_match "drill -t localhost A (tcp)" "$(drill -t @"$LH_ADDR" localhost A)" $'IN\s+A\s+127\.0\.0\.1'

# Other types: NOERROR, no data, the zone's SOA in the authority section.
out=$(d localhost MX +noall +comments +authority)
expect_match "localhost MX is NOERROR" "$out" "status: NOERROR"
expect_match "localhost MX has no answer" "$out" "ANSWER: 0"
expect_match "localhost MX carries the SOA" "$out" $'localhost\.\s+[0-9]+\s+IN\s+SOA\s+localhost\. hostmaster\.localhost\.'
expect_nodata "localhost HTTPS is NODATA" localhost HTTPS
expect_eq "ANY below localhost: A and AAAA" "$(d a.localhost ANY +short | sort | tr '\n' ' ')" "127.0.0.1 ::1 "
expect_match "ANY at the apex adds SOA and NS" "$(d localhost ANY +short | tr '\n' ' ')" "^127.0.0.1 ::1 .*hostmaster.*localhost\. $"
expect_eq "localhost SOA at the apex" "$(d localhost SOA +short | cut -d' ' -f1,2)" "localhost. hostmaster.localhost."
expect_eq "localhost NS at the apex" "$(d localhost NS +short)" "localhost."

# Flags: AA for our own zones, RA always, RD copied.
expect_eq "flags for localhost (RD set)" "$(dflags localhost)" "qr aa rd ra"
expect_eq "flags for localhost (RD clear)" "$(dflags localhost +nordflag)" "qr aa ra"

# PTR for the loopback addresses.
expect_eq "PTR 127.0.0.1" "$(d -x 127.0.0.1 +short)" "localhost."
expect_eq "PTR ::1" "$(d -x ::1 +short)" "localhost."
expect_eq "PTR ::1 over TCP (kdig)" "$(kdig @"$LH_ADDR" -x ::1 +tcp +short)" "localhost."

# Special-use names never leak upstream: NXDOMAIN with the zone's SOA.
for n in hidden.onion facebookcorewwwi.onion x.invalid printer.local; do
    out=$(d "$n" A +noall +comments +authority)
    expect_match "$n is NXDOMAIN" "$out" "status: NXDOMAIN"
    expect_match "$n carries an SOA" "$out" "IN"$'\t'"SOA"
done
for ip in 10.1.2.3 172.16.0.1 172.31.255.1 192.168.1.1 169.254.1.1 127.0.0.2 100.64.0.1; do
    [ "$ip" = 100.64.0.1 ] && continue # RFC 6598 space is not in RFC 6303's list
    expect_eq "PTR $ip is NXDOMAIN" "$(dstatus -x "$ip")" "NXDOMAIN"
done
for ip in fd12::1 fc00::1 fe80::1 2001:db8::1; do
    expect_eq "PTR $ip is NXDOMAIN" "$(dstatus -x "$ip")" "NXDOMAIN"
done
expect_eq "the 10.in-addr.arpa apex is NOERROR" "$(dstatus 10.in-addr.arpa SOA)" "NOERROR"
expect_eq "the apex answers its SOA" "$(d 10.in-addr.arpa SOA +short | cut -d' ' -f1)" "10.in-addr.arpa."

# The hosts file, as systemd-resolved answers it.
expect_eq "hosts: A" "$(d nas.home.test A +short)" "192.168.7.10"
expect_eq "hosts: AAAA from a second line" "$(d NAS.home.test AAAA +short)" "fd00::7:10"
expect_eq "hosts: PTR of a private address wins over RFC 6303" "$(d -x 192.168.7.10 +short)" "nas.home.test."
expect_nodata "hosts: MX is NODATA" nas.home.test MX
expect_eq "hosts: short alias" "$(d nas A +short)" "192.168.7.10"

# Not ours: forwarded (the fake answers 192.0.2.1 for A).
expect_answer "a forwarded name reaches the upstream" "192.0.2.1" example.com A
expect_status "a public reverse name is forwarded" NOERROR -x 8.8.8.8
expect_status "class CH is REFUSED" REFUSED version.bind TXT CH
# Nothing answered locally ever reached the upstream; what is not local did.
expect_eq "the upstream saw example.com and 8.8.8.8's PTR" \
    "$(lh_fake_count "$UP" " example\.com\. A (udp|tcp)$") $(lh_fake_count "$UP" " 8\.8\.8\.8\.in-addr\.arpa\. PTR (udp|tcp)$")" "1 1"
expect_eq "... and nothing else: no local, special-use or private name leaked" \
    "$(grep -viE ' (example\.com|8\.8\.8\.8\.in-addr\.arpa)\. ' "$LH_TMP/fake-$UP.log" | head -3)" ""

lh_done
