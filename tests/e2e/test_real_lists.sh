#!/usr/bin/env bash
# Excerpts of the real public lists (tests/fixtures/blocklists, their sources and licences in
# SOURCES.md there) load with the counts that file gives (and the same names in every format of
# the same list), and sample names from each are answered as expected.
. "$(dirname "$0")/lib.sh"
L="$LH_SRC/tests/fixtures/blocklists"
UP=$(lh_peer 1)
lh_fake "$UP" answer

args=()
for f in "$L"/*.hosts "$L"/*.adblock "$L"/*.wildcard "$L"/*.dnsmasq "$L"/*.regex "$L"/*.sample \
         "$L"/stevenblack.domains "$L"/hagezi-personal.domains; do
    args+=(--blocklist "$f")
done
lh_start --no-hosts --no-default-blocklist --upstream "$UP" "${args[@]}" --allowlist "$L/mmotti-allow.domains"
log=$(cat "$LH_TMP/loophole.log")
count() { # FILE RULES IGNORED (from SOURCES.md: rules there minus ignored)
    expect_match "$1: $2 rules, $3 ignored, 0 malformed" "$log" "$1: $2 rules \([0-9]+ names, [0-9]+ patterns\), $3 ignored, 0 malformed"
}
count adaway.hosts 55 2                  # the two localhost header lines are not blocks
count easylist.hosts 88 0
count stevenblack.domains 108 0
count hagezi-personal.domains 116 0
count hagezi-personal.adblock 115 0
count hagezi-light.adblock 115 0
count hagezi-light.wildcard 115 0        # same list, same names
count 1hosts-lite.adblock 103 0
count 1hosts-lite.wildcard 103 0
count 1hosts-lite.dnsmasq 103 0
count ublock.dnsmasq 100 0
count adguarddns.adblock 107 0
count adguarddns-2017.adblock 102 27     # IP rules, URL paths, a port, a modifier
count doh-vpn-proxy-bypass.adblock 109 0
count hagezi-referral-allow.adblock 120 0
count adblock-exceptions.sample 16 2     # one cosmetic rule, one URL path
count mmotti.regex 14 0
count mmotti-allow.domains 10 0

for n in static.accesstrade.vn answers.teradata.com sp.qf.56.com gamd.hit.gemius.pl \
         060cde74e8.natrasiekorzysci.pl x.snapcheat.app uszpxpcoflkl.com adfstat.yandex.ru \
         defencevpn.com www.076lvz.xyz img.happymail.co.jp sub.airairgu.com gj7.ru \
         x.anet1.tradedoubler.com adserver.example.org analytics.example.org; do
    expect_answer "blocked: $n" "127.0.0.1" "$n"
done
expect_eq "localhost from adaway's header is not a block" "$(dflags localhost)" "qr aa rd ra"
# Not blocked means forwarded: the fake upstream answers 192.0.2.1 and logs the name.
expect_answer "mmotti allowlist beats the mmotti regex" "192.0.2.1" stats.stackexchange.com
expect_answer "hagezi referral exception is honoured" "192.0.2.1" adservice.google.com.ph
expect_answer "a skipped URL-path rule blocks nothing" "192.0.2.1" covertarget.com
expect_answer "a skipped port rule blocks nothing" "192.0.2.1" xxuhter.ru
expect_eq "... and each of them reached the upstream once" \
    "$(for n in stats.stackexchange.com adservice.google.com.ph covertarget.com xxuhter.ru; do lh_fake_count "$UP" " $n\. "; done | paste -sd' ')" "1 1 1 1"
expect_eq "no blocked name reached the upstream" "$(lh_fake_count "$UP" "tradedoubler|accesstrade|snapcheat")" "0"
out=$("$LOOPHOLE" why adservice.google.com.ph --no-hosts "${args[@]}")
expect_match "why shows the referral exception" "$out" "allow .*hagezi-referral-allow.adblock:[0-9]+: @@\|\|adservice.google.com.ph\^"
lh_done
