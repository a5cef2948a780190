#!/usr/bin/env bash
# Every real public list in ../shared/data/blocklists loads with the counts SOURCES.md gives
# (and the same names in every format of the same list), and sample names from each are
# answered as expected.
. "$(dirname "$0")/lib.sh"
L="$LH_SRC/../shared/data/blocklists"
if [ ! -d "$L" ]; then echo "SKIP: $L not found (the shared data beside the checkout)"; exit 77; fi

args=()
for f in "$L"/*.hosts "$L"/*.adblock "$L"/*.wildcard "$L"/*.dnsmasq "$L"/*.regex "$L"/*.sample \
         "$L"/stevenblack.domains "$L"/hagezi-personal.domains; do
    args+=(--blocklist "$f")
done
lh_start --no-hosts "${args[@]}" --allowlist "$L/mmotti-allow.domains"
log=$(cat "$LH_TMP/loophole.log")
count() { # FILE RULES IGNORED
    expect_match "$1: $2 rules, $3 ignored, 0 malformed" "$log" "$1: $2 rules \([0-9]+ names, [0-9]+ patterns\), $3 ignored, 0 malformed"
}
count adaway.hosts 6540 2                # the two localhost header lines are not blocks
count easylist.hosts 86674 0
count someonewhocares.hosts 12974 0
count stevenblack.domains 140626 0
count hagezi-personal.domains 12305 0
count hagezi-personal.adblock 9671 0
count hagezi-light.adblock 122680 0
count hagezi-light.wildcard 122680 0     # same list, same names
count 1hosts-lite.adblock 52577 0
count 1hosts-lite.wildcard 52577 0
count 1hosts-lite.dnsmasq 52577 0
count ublock.dnsmasq 1341 0
count adguarddns.adblock 82473 0
count adguarddns-2017.adblock 12553 195  # URL paths, ports, IP rules, browser modifiers
count doh-vpn-proxy-bypass.adblock 714 0
count hagezi-referral-allow.adblock 482 0
count adblock-exceptions.sample 16 2     # one cosmetic rule, one URL path
count mmotti.regex 14 0
count mmotti-allow.domains 10 0

for n in static.accesstrade.vn answers.teradata.com 56.com gamd.hit.gemius.pl \
         060cde74e8.natrasiekorzysci.pl x.snapcheat.app uszpxpcoflkl.com adfstat.yandex.ru \
         defencevpn.com www.076lvz.xyz img.happymail.co.jp sub.airairgu.com \
         adserver.example.org analytics.example.org; do
    expect_eq "blocked: $n" "$(d "$n" +short)" "127.0.0.1"
done
expect_eq "localhost from adaway's header is not a block" "$(dflags localhost)" "qr aa rd ra"
expect_eq "mmotti allowlist beats the mmotti regex" "$(dstatus stats.stackexchange.com)" "SERVFAIL"
expect_eq "hagezi referral exception is honoured" "$(dstatus adservice.google.com.ph)" "SERVFAIL"
out=$("$LOOPHOLE" why adservice.google.com.ph --no-hosts "${args[@]}")
expect_match "why shows the referral exception" "$out" "allow .*hagezi-referral-allow.adblock:[0-9]+: @@\|\|adservice.google.com.ph\^"
lh_done
