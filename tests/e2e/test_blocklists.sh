#!/usr/bin/env bash
# Blocklists end to end: answers for every type and mode, EDE 15, exceptions, canary names, the
# built-in default list, folders, forced formats, bad lines, `why`, and SIGHUP reloads.
. "$(dirname "$0")/lib.sh"

cat >"$LH_TMP/block.adblock" <<'L'
! test list
||ads.test^
||tracker.test^
@@||ok.tracker.test^
|exact.test^|
||vip.test^$important
L
printf '0.0.0.0 hosts-style.test\nplain.test\n*.wild.test\n' >"$LH_TMP/more.list"
printf '@@||vip.test^\nallowed.ads.test\n' >"$LH_TMP/allow.list"
# "Not blocked" is proven by the fake upstream: it answers 192.0.2.1 and logs every name it is
# asked; a blocked name must never reach it.
UP=$(lh_peer 1)
lh_fake "$UP" answer
# expect_forwarded DESCRIPTION NAME: answered by the upstream (192.0.2.1), which saw the name.
expect_forwarded() {
    expect_answer "$1" "192.0.2.1" "$2"
    check "... $2 reached the upstream" test "$(lh_fake_count "$UP" " $2\\. ")" -ge 1
}
# expect_not_forwarded DESCRIPTION NAME: the upstream never saw NAME.
expect_not_forwarded() { expect_eq "$1" "$(lh_fake_count "$UP" " $2\\. ")" "0"; }
lh_start --no-hosts --upstream "$UP" --blocklist "$LH_TMP/block.adblock" --blocklist "$LH_TMP/more.list" \
    --allowlist "$LH_TMP/allow.list"

for proto in +notcp +tcp; do
    expect_eq "blocked A ($proto)" "$(d ads.test A +short $proto)" "127.0.0.1"
    expect_eq "blocked AAAA ($proto)" "$(d x.ads.test AAAA +short $proto)" "::1"
    for t in HTTPS MX TXT SVCB; do
        out=$(d ads.test $t $proto +noall +comments +authority)
        expect_match "blocked $t is NOERROR ($proto)" "$out" "status: NOERROR.*ANSWER: 0"
        expect_match "blocked $t carries an SOA ($proto)" "$out" $'ads\.test\.\s+10\s+IN\s+SOA'
    done
    expect_eq "blocked ANY: A and AAAA ($proto)" "$(d ads.test ANY +short $proto | sort | tr '\n' ' ')" "127.0.0.1 ::1 "
done
expect_match "blocked answers carry EDE 15 (Blocked)" "$(d ads.test +noall +comments)" "EDE: 15 \(Blocked\)"
expect_match "kdig sees EDE 15 too" "$(kdig @"$LH_ADDR" ads.test +edns 2>&1)" "EDE: 15 \(Blocked\)"
out=$(d ads.test +noedns +noall +comments)
expect_match "without EDNS a blocked name is still answered" "$out" "status: NOERROR"
expect_no_match "... with no EDE (there is no OPT)" "$out" "EDE"
expect_match "blocked TTL is short (10 s)" "$(d ads.test +noall +answer)" $'ads\.test\.\s+10\s+IN\s+A'
expect_eq "blocked answers are not authoritative" "$(dflags ads.test)" "qr rd ra"
# exceptions and the formats' matching rules
expect_forwarded "@@ exception (subdomain of a block) is not blocked" ok.tracker.test
expect_forwarded "exception covers names below it" a.ok.tracker.test
expect_eq "a sibling stays blocked" "$(d ads.tracker.test +short)" "127.0.0.1"
expect_forwarded "allowlist file (plain domain) beats a block" allowed.ads.test
expect_eq "\$important beats an allowlist" "$(d vip.test +short)" "127.0.0.1"
expect_eq "|name^| blocks the name" "$(d exact.test +short)" "127.0.0.1"
expect_forwarded "|name^| does not block below" www.exact.test
expect_eq "hosts line blocks its name" "$(d hosts-style.test +short)" "127.0.0.1"
expect_forwarded "hosts line: not below it" www.hosts-style.test
expect_eq "plain domain line: the name" "$(d PLAIN.test. +short)" "127.0.0.1"
expect_eq "*.name: the name itself" "$(d wild.test +short)" "127.0.0.1"
expect_eq "*.name: below it" "$(d a.b.wild.test +short)" "127.0.0.1"
expect_forwarded "unlisted names are forwarded" unlisted.test
for n in ads.test x.ads.test ads.tracker.test vip.test exact.test hosts-style.test plain.test wild.test a.b.wild.test ad.doubleclick.net; do
    expect_not_forwarded "blocked $n never reached the upstream" "$n"
done
expect_eq "the built-in list blocks doubleclick.net" "$(d ad.doubleclick.net +short)" "127.0.0.1"
expect_match "the built-in list is logged with its count" "$(cat "$LH_TMP/loophole.log")" "blocklist blocklists/default.list \(built in\): 61 rules"

# Canary names
expect_eq "use-application-dns.net is NXDOMAIN" "$(dstatus use-application-dns.net)" "NXDOMAIN"
expect_eq "mask.icloud.com is NXDOMAIN" "$(dstatus mask.icloud.com)" "NXDOMAIN"
expect_eq "mask-h2.icloud.com is NXDOMAIN" "$(dstatus mask-h2.icloud.com AAAA)" "NXDOMAIN"
expect_nodata "resolver.arpa SVCB is NODATA" resolver.arpa SVCB
for n in use-application-dns.net mask.icloud.com mask-h2.icloud.com resolver.arpa; do
    expect_not_forwarded "canary $n answered locally, never forwarded" "$n"
done

# why: offline, same config, file:line and rule text
out=$("$LOOPHOLE" why x.ok.tracker.test --no-hosts --blocklist "$LH_TMP/block.adblock")
expect_match "why: allowed over a block" "$out" "forwarded upstream \(an allow rule overrides"
expect_match "why: names the block rule with file:line" "$out" "block $LH_TMP/block.adblock:3: \|\|tracker.test\^"
expect_match "why: names the exception with file:line" "$out" "allow $LH_TMP/block.adblock:4: @@\|\|ok.tracker.test\^"
out=$("$LOOPHOLE" why ads.test AAAA --no-hosts --blocklist "$LH_TMP/block.adblock")
expect_match "why: blocked, with the answer" "$out" $'ads.test AAAA: blocked\nanswer: NOERROR, 1 answer'
expect_match "why: the record" "$out" $'ads\.test\.\s+10\s+IN\s+AAAA\s+::1'
expect_match "why: localhost" "$("$LOOPHOLE" why foo.localhost --no-hosts)" "the localhost zone"
expect_match "why: unlisted" "$("$LOOPHOLE" why unlisted.test --no-hosts)" "forwarded upstream"
"$LOOPHOLE" why "bad..name" >/dev/null 2>&1
expect_eq "why: an invalid name exits 2" "$?" "2"
out=$("$LOOPHOLE" why vip2.vip.test --no-hosts --no-default-blocklist --allowlist "$LH_TMP/allow.list")
expect_match "why: an allow rule alone does not claim to override anything" "$out" "^vip2.vip.test A: forwarded upstream \(an allow rule matches; no block rule does\)"
mkdir -p "$LH_TMP/lists2"; cp "$LH_TMP/block.adblock" "$LH_TMP/lists2/ads.txt"
out=$("$LOOPHOLE" why ads.test --no-hosts --blocklist "$LH_TMP/lists2/")
expect_match "why: a folder given with a trailing slash names its files with one slash" "$out" "block $LH_TMP/lists2/ads.txt:2: "
expect_no_match "... never two" "$out" "lists2//"
# check-config: a malformed list line (a regex too long or too large among them) is an error
# there, file:line; serve skips it with a warning ("Broken lines" below).
{ echo "^ok[0-9]+\.rx\.test$"; printf '^%01100d$\n' 0; echo '((a{255}){255}){255}'; } >"$LH_TMP/rx.list"
err=$("$LOOPHOLE" check-config --no-hosts --blocklist "$LH_TMP/rx.list format=regex" 2>&1 >/dev/null)
expect_eq "check-config: a bad regex exits 1" "$?" "1"
expect_match "... the first one named file:line, and the rest counted" "$err" "$LH_TMP/rx.list:2: regular expression too long \(and 1 more malformed line\(s\)\)"
err=$("$LOOPHOLE" check-config --no-hosts --blocklist "$LH_TMP/rx.list format=regex" 2>&1)
expect_match "... a regex that compiles too large is reported with its line" "$err" "rx.list:3: invalid regular expression .*too large"
lh_stop

# Block modes
mode_check() { # MODE EXPECTED-A EXPECTED-AAAA EXPECTED-STATUS [ARGS]: "" = no records
    local mode=$1 a=$2 aaaa=$3 st=$4; shift 4
    lh_start --no-hosts --blocklist "$LH_TMP/block.adblock" --block-mode "$mode" "$@"
    for t in A AAAA; do
        local want=$a; [ $t = AAAA ] && want=$aaaa
        local out; out=$(d ads.test $t +noall +comments +answer)
        expect_match "mode $mode: $t status $st" "$out" "status: $st,"
        expect_eq "mode $mode: $t records" "$(grep -v '^;' <<<"$out" | awk 'NF {print $5}' | paste -sd' ')" "$want"
    done
    expect_eq "mode $mode: status" "$(dstatus ads.test MX)" "$st"
    expect_match "mode $mode: EDE 15" "$(d ads.test +noall +comments)" "EDE: 15"
    lh_stop
}
mode_check null "0.0.0.0" "::" NOERROR
mode_check nxdomain "" "" NXDOMAIN
mode_check nodata "" "" NOERROR
mode_check refused "" "" REFUSED
mode_check custom "192.0.2.7" "2001:db8::7" NOERROR --block-ipv4 192.0.2.7 --block-ipv6 2001:db8::7
err=$("$LOOPHOLE" --no-hosts "${LH_NO_UPSTREAM[@]}" --block-mode custom 2>&1)
expect_match "custom without addresses is an error" "$err" "block-mode custom needs block-ipv4"

# --no-default-blocklist, --no-canary-names, folders, forced formats, config keys
mkdir -p "$LH_TMP/lists.d"
echo "folder-one.test" >"$LH_TMP/lists.d/a.list"
echo "||folder-two.test^" >"$LH_TMP/lists.d/b.list"
echo "ignored.test" >"$LH_TMP/lists.d/.hidden"
echo "^rx[0-9]+\.forced\.test$" >"$LH_TMP/forced.txt"
cat >"$LH_TMP/lists.conf" <<C
listen = $LH_ADDR:53
hosts-file = none
default-blocklist = no
canary-names = no
blocklist = $LH_TMP/lists.d
blocklist = $LH_TMP/forced.txt format=regex
blocklist = $LH_TMP/more.list subdomains=yes
block-ttl = 42
C
"$LOOPHOLE" serve --config "$LH_TMP/lists.conf" "${LH_NO_UPSTREAM[@]}" --upstream "$UP" >>"$LH_TMP/loophole.log" 2>&1 &
LH_PID=$!; lh_track "$LH_PID"; lh_wait_ready "$LH_ADDR"
expect_forwarded "no default list: doubleclick.net is not blocked" doubleclick.net
expect_forwarded "no canaries: use-application-dns.net is forwarded" use-application-dns.net
expect_eq "folder: first file" "$(d folder-one.test +short)" "127.0.0.1"
expect_eq "folder: second file" "$(d x.folder-two.test +short)" "127.0.0.1"
expect_forwarded "folder: hidden files are skipped" ignored.test
expect_eq "forced regex format" "$(d rx12.forced.test +short)" "127.0.0.1"
expect_eq "subdomains=yes on a domains list" "$(d www.plain.test +short)" "127.0.0.1"
expect_match "block-ttl from the config" "$(d plain.test +noall +answer)" $'\s42\s+IN\s+A'

# SIGHUP: an edited list takes effect; a broken reload keeps the old lists.
echo "folder-three.test" >>"$LH_TMP/lists.d/a.list"
kill -HUP "$LH_PID"
lh_wait_log 1 "reload: done"
expect_eq "SIGHUP picks up an edited list" "$(d folder-three.test +short)" "127.0.0.1"
chmod 000 "$LH_TMP/forced.txt"; mv "$LH_TMP/forced.txt" "$LH_TMP/forced.gone"
kill -HUP "$LH_PID"
lh_wait_log 1 "reload failed"
expect_match "a failed reload names the list" "$(grep 'reload failed' "$LH_TMP/loophole.log")" "forced.txt: cannot read blocklist"
expect_eq "a failed reload keeps the old lists" "$(d rx12.forced.test +short)" "127.0.0.1"
lh_stop

# Broken lines: file:line: reason for the first five, then a count; the rest loads.
{ echo "good-one.test"; for i in $(seq 8); do echo "bad name $i"; done; echo "good-two.test"; } >"$LH_TMP/broken.list"
lh_start --no-hosts --blocklist "$LH_TMP/broken.list"
log=$(cat "$LH_TMP/loophole.log")
expect_match "first bad line reported with file:line" "$log" "broken.list:2: several fields but the first is not an IP address"
expect_match "fifth bad line reported" "$log" "broken.list:6: "
expect_eq "sixth bad line not reported one by one" "$(lh_log_count 'broken.list:7: ')" "0"
expect_match "the rest are counted" "$log" "broken.list: 3 more malformed line\(s\) skipped"
expect_eq "good lines around bad ones load" "$(d good-two.test +short)" "127.0.0.1"
lh_stop
err=$("$LOOPHOLE" --listen "$LH_ADDR:53" --no-hosts "${LH_NO_UPSTREAM[@]}" --blocklist /nonexistent/list.txt 2>&1)
expect_eq "an unreadable list at start-up exits 1" "$?" "1"
expect_match "and says which" "$err" "/nonexistent/list.txt: cannot read blocklist: No such file"
lh_done
