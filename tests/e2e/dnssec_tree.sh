#!/usr/bin/env bash
# dnssec_tree.sh DIR: builds a small signed tree under the made-up TLD "lhtest." with ldns-keygen
# and ldns-signzone, for the DNSSEC tests. Writes DIR/<zone>.zone (what the authoritative server
# loads), DIR/zones (their names, one a line) and the trust anchors DIR/anchor.ds (DS form) and
# DIR/anchor.key (DNSKEY form). Signatures are made relative to now, so each run is fresh.
#
#   lhtest.            NSEC; www A/AAAA, txt TXT, *.wild A, cname -> www, dname DNAME
#                      sec.lhtest., to-unsigned and
#                      to-expired (CNAMEs into those children), forged A, nosig A, a.ent A; DS
#                      for the signed children below, no DS for unsigned.
#   sec.lhtest.        NSEC3 (0 iterations, a salt), www A, txt TXT, *.wild TXT
#   unsigned.lhtest.   not signed, no DS: an insecure delegation
#   iter.lhtest.       NSEC3 with 200 iterations (above RFC 9276's cap of 150): insecure
#   expired.lhtest.    signed with a window that ended yesterday
#   future.lhtest.     signed with a window that starts in 30 days
#   nokey.lhtest.      signed, but served without its DNSKEY RRset
#   badds.lhtest.      the parent's DS is for another key
#   stripped.lhtest.   the parent has a DS, the child is served without any DNSSEC records
#   tampered.lhtest.   the RRSIG of www A has a flipped byte
#   optout.lhtest.     NSEC3 with opt-out, delegating insec.optout.lhtest. (unsigned, no DS)
set -euo pipefail
D=$1
mkdir -p "$D"
cd "$D"
NOW=$(date +%s)
DAY=86400
SOA='@ 300 IN SOA ns.lhtest. admin.lhtest. 1 3600 600 86400 300'

keygen() { ldns-keygen -a ECDSAP256SHA256 -k "$1" 2>/dev/null; }

# child ZONE: the unsigned zone file of a child (same records everywhere)
child() {
    cat <<Z
\$ORIGIN $1.
\$TTL 300
$SOA
@ NS ns.lhtest.
www A 192.0.2.10
www AAAA 2001:db8::10
txt TXT "child $1"
*.wild TXT "wildcard in $1"
a.ent A 192.0.2.11
nosig A 192.0.2.12
Z
}

# sign ZONE FILE KEY [ldns-signzone options]: FILE.signed
sign() {
    local zone=$1 file=$2 key=$3
    shift 3
    ldns-signzone "$@" -o "$zone." -f "$file.signed" "$file" "$key" >/dev/null
}

: >zones
: >parent-ds
for c in sec unsigned iter expired future nokey badds stripped tampered optout; do
    z=$c.lhtest
    child "$z" >"$z.plain"
    [ "$c" = optout ] && echo "insec NS ns.lhtest." >>"$z.plain"
    echo "$z." >>zones
    if [ "$c" = unsigned ]; then
        cp "$z.plain" "$z.zone"
        continue
    fi
    k=$(keygen "$z.")
    case $c in
    sec) sign "$z" "$z.plain" "$k" -n -t 0 -s 4c48 -e $((NOW + 30 * DAY)) ;;
    iter) sign "$z" "$z.plain" "$k" -n -t 200 -s 4c48 -e $((NOW + 30 * DAY)) ;;
    optout) sign "$z" "$z.plain" "$k" -n -p -t 0 -e $((NOW + 30 * DAY)) ;;
    expired) sign "$z" "$z.plain" "$k" -i $((NOW - 20 * DAY)) -e $((NOW - DAY)) ;;
    future) sign "$z" "$z.plain" "$k" -i $((NOW + 30 * DAY)) -e $((NOW + 60 * DAY)) ;;
    *) sign "$z" "$z.plain" "$k" -e $((NOW + 30 * DAY)) ;;
    esac
    case $c in
    nokey) grep -vE '\s(DNSKEY|RRSIG\s+DNSKEY)\s' "$z.plain.signed" >"$z.zone" ;;
    stripped) cp "$z.plain" "$z.zone" ;;
    tampered)
        # flip one base64 character of the signature over www A (the last field of that line)
        awk '$1 ~ /^www\./ && $4 == "RRSIG" && $5 == "A" {
                 s = $NF; c = substr(s, 10, 1); c = (c == "A") ? "B" : "A"
                 $NF = substr(s, 1, 9) c substr(s, 11) }
             { print }' "$z.plain.signed" >"$z.zone" ;;
    *) cp "$z.plain.signed" "$z.zone" ;;
    esac
    if [ "$c" = badds ]; then
        other=$(keygen "$z.") # a key the child never uses
        cat "$other.ds" >>parent-ds
    else
        cat "$k.ds" >>parent-ds
    fi
done

{
    echo "\$ORIGIN lhtest."
    echo "\$TTL 300"
    echo "$SOA"
    echo "@ NS ns"
    echo "ns A 127.0.0.1"
    echo "www A 192.0.2.1"
    echo "www AAAA 2001:db8::1"
    echo 'txt TXT "hello from lhtest"'
    echo "*.wild A 192.0.2.7"
    echo "cname CNAME www"
    echo "dname DNAME sec.lhtest."
    echo "to-unsigned CNAME www.unsigned.lhtest."
    echo "to-expired CNAME www.expired.lhtest."
    echo "forged A 192.0.2.99"
    echo "nosig A 192.0.2.98"
    echo "a.ent A 192.0.2.2"
    for c in sec unsigned iter expired future nokey badds stripped tampered optout; do
        echo "$c NS ns.lhtest."
    done
    cat parent-ds
} >lhtest.plain
child insec.optout.lhtest >insec.optout.lhtest.zone
echo insec.optout.lhtest. >>zones

k=$(keygen lhtest.)
sign lhtest lhtest.plain "$k" -e $((NOW + 30 * DAY))
cp lhtest.plain.signed lhtest.zone
echo "lhtest." >>zones
cp "$k.ds" anchor.ds
cp "$k.key" anchor.key
