#!/usr/bin/env bash
# test_dnssec.sh - `loophole dnssec` and the daemon with `dnssec = validate` against a signed
# tree built at test time (dnssec_tree.sh), served by Knot DNS on loopback behind a tampering
# proxy (dnssec_proxy.py), with Unbound as a validating resolver on the same path and the same
# trust anchor: every verdict of the tool and of the daemon (asked with dig +dnssec: AD, rcode,
# EDE) is checked against the expected one and against Unbound's, and the table is printed.
# The daemon forwards to a non-validating Unbound (iterator only) in front of the same proxy,
# as a validating loophole would sit behind an ordinary recursive resolver.
. "$(dirname "$0")/lib.sh"
for t in knotd kdig ldns-keygen ldns-signzone unbound; do
    command -v "$t" >/dev/null || { echo "skip: $t is not installed (scripts/deps.sh)"; exit 77; }
done
"$LH_PY" -c 'import dns.message' 2>/dev/null || { echo "skip: python3-dnspython missing"; exit 77; }

KNOT=$(lh_peer 1)
PROXY=$(lh_peer 2)
UB=$(lh_peer 3)
T=$LH_TMP/tree
if ! bash "$LH_SRC/tests/e2e/dnssec_tree.sh" "$T" >"$LH_TMP/tree.log" 2>&1; then
    not_ok "building the signed tree"; cat "$LH_TMP/tree.log"; lh_done
fi

mkdir -p "$LH_TMP/knot"
{
    cat <<K
server:
    rundir: "$LH_TMP/knot"
    listen: $KNOT@53
log:
  - target: stderr
    any: warning
database:
    storage: "$LH_TMP/knot"
template:
  - id: default
    storage: "$T"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
K
    while read -r z; do echo "  - domain: $z"; done <"$T/zones"
} >"$LH_TMP/knot.conf"
knotd -c "$LH_TMP/knot.conf" >"$LH_TMP/knot.log" 2>&1 &
LH_PIDS+=($!)
up=0
for _ in $(seq 100); do
    kdig @"$KNOT" lhtest. SOA +short +timeout=1 +retry=0 2>/dev/null | grep -q . && { up=1; break; }
    sleep 0.1
done
[ $up = 1 ] || { not_ok "knotd did not start"; cat "$LH_TMP/knot.log"; lh_done; }

"$LH_PY" "$LH_SRC/tests/e2e/dnssec_proxy.py" "$PROXY" "$KNOT" >"$LH_TMP/proxy.out" 2>&1 &
LH_PIDS+=($!)
STRIP=$(lh_peer 4) # a path that strips every RRSIG
"$LH_PY" "$LH_SRC/tests/e2e/dnssec_proxy.py" "$STRIP" "$KNOT" strip >"$LH_TMP/strip.out" 2>&1 &
LH_PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$LH_TMP/proxy.out" && grep -q ready "$LH_TMP/strip.out" && break; sleep 0.1; done
grep -q ready "$LH_TMP/proxy.out" && grep -q ready "$LH_TMP/strip.out" ||
    { not_ok "the proxies did not start"; cat "$LH_TMP/proxy.out" "$LH_TMP/strip.out"; lh_done; }

cat >"$LH_TMP/unbound.conf" <<U
$(lh_unbound_head "$UB" validator | grep -v module-config)
  module-config: "validator iterator"
  trust-anchor-file: "$T/anchor.ds"
  do-not-query-localhost: no
  ede: yes
  val-log-level: 2
  qname-minimisation: no
  aggressive-nsec: no
forward-zone:
  name: "lhtest."
  forward-addr: $PROXY@53
U
lh_unbound_start "$LH_TMP/unbound.conf" "$UB" lhtest. || { not_ok "unbound did not start"; lh_done; }

# The daemon's upstream: a plain recursive Unbound (no validation) in front of the same proxy.
PLAIN=$(lh_peer 5)
cat >"$LH_TMP/plain.conf" <<U
$(lh_unbound_head "$PLAIN" plain)
  do-not-query-localhost: no
  qname-minimisation: no
  access-control: 127.0.0.0/8 allow
forward-zone:
  name: "lhtest."
  forward-addr: $PROXY@53
U
lh_unbound_start "$LH_TMP/plain.conf" "$PLAIN" lhtest. || { not_ok "plain unbound did not start"; lh_done; }
lh_start --no-hosts --upstream "$PLAIN" --dnssec validate --trust-anchor "$T/anchor.ds" \
    --query-log "$LH_TMP/query.log" || lh_done

TABLE=$LH_TMP/table
printf '%-24s %-5s %-9s %-20s | %-28s | %-28s %s\n' NAME TYPE EXPECTED "TOOL (EDE)" \
    "DAEMON (rcode, EDE)" "UNBOUND (rcode, EDE)" AGREE >"$TABLE"

verdict_of_rc() { case $1 in 0) echo secure ;; 1) echo bogus ;; 3) echo insecure ;; *) echo indeterminate ;; esac; }

# case NAME TYPE VERDICT EDE [COMPARE] [loophole args...]: EDE "-" for none; COMPARE "no" skips
# the Unbound comparison (loophole-only settings).
case_() {
    local name=$1 type=$2 want=$3 want_ede=$4 compare=${5:-yes}
    shift 5 2>/dev/null || shift $#
    local args=("$@")
    [ ${#args[@]} -eq 0 ] && args=(--trust-anchor "$T/anchor.ds")
    local out rc lv le
    out=$("$LOOPHOLE" dnssec "$name" "$type" --upstream "$PROXY" "${args[@]}" 2>&1)
    rc=$?
    if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" <<<"$out"; then
        not_ok "sanitizer findings for $name $type:"; echo "$out" | head -40
    fi
    lv=$(sed -n 's/^verdict: //p' <<<"$out")
    le=$(sed -n 's/^reason: .*(EDE \([0-9]*\)).*/\1/p' <<<"$out")
    expect_eq "$name $type: verdict and EDE" "$lv/${le:--}" "$want/$want_ede"
    expect_eq "$name $type: exit code says $lv" "$(verdict_of_rc $rc)" "${lv:-indeterminate}"
    [ "$lv/${le:--}" == "$want/$want_ede" ] || echo "$out" | sed 's/^/    /'
    local uv="-" utext="-" dtext="-" agree="n/a"
    if [ "$compare" = yes ]; then
        ask "$UB" "$name" "$type"
        uv=$ASK_V ue=$ASK_EDE utext="$ASK_V ($ASK_ST, EDE ${ASK_EDE:--})"
        expect_eq "$name $type: Unbound agrees" "$uv" "$lv"
        # The daemon, asked as a validating client would (DO), and the verdict it implies.
        ask "$LH_ADDR" "$name" "$type"
        dtext="$ASK_V ($ASK_ST, EDE ${ASK_EDE:--})"
        expect_eq "$name $type: the daemon's verdict" "$ASK_V" "$want"
        if [ "$want" = bogus ]; then
            expect_eq "$name $type: the daemon's EDE" "${ASK_EDE:--}" "$want_ede"
        fi
        agree=$([ "$uv" = "$lv" ] && [ "$ASK_V" = "$uv" ] && echo yes || echo NO)
        expect_eq "$name $type: the daemon agrees with Unbound" "$ASK_V" "$uv"
    fi
    printf '%-24s %-5s %-9s %-20s | %-28s | %-28s %s\n' "$name" "$type" "$want" \
        "$lv (EDE ${le:--})" "$dtext" "$utext" "$agree" >>"$TABLE"
}

log_more() { [ "$(lh_log_count "$1")" -gt "$2" ]; }
lh_stat_true() { [ "$(lh_stat "$1")" = True ]; }

# ask SERVER NAME TYPE [dig options]: sets ASK_ST (rcode), ASK_EDE, ASK_AD (1/0), ASK_OUT and
# ASK_V, the verdict a validating resolver's answer implies: SERVFAIL bogus, AD secure, else
# insecure (no answer at all: indeterminate).
ask() {
    local server=$1 name=$2 type=$3
    shift 3
    ASK_OUT=$(dig @"$server" "$name" "$type" +dnssec +time=15 +tries=1 "$@" 2>&1)
    ASK_ST=$(sed -n 's/.*status: \([A-Z]*\).*/\1/p' <<<"$ASK_OUT" | head -1)
    ASK_EDE=$(sed -n 's/^; EDE: \([0-9]*\).*/\1/p' <<<"$ASK_OUT" | head -1)
    ASK_AD=0
    grep -qE '^;; flags:[a-z ]* ad[ ;]' <<<"$ASK_OUT" && ASK_AD=1
    if [ "$ASK_ST" = SERVFAIL ]; then ASK_V=bogus
    elif [ $ASK_AD = 1 ]; then ASK_V=secure
    elif [ -n "$ASK_ST" ]; then ASK_V=insecure
    else ASK_V=indeterminate; fi
}

# secure answers, NSEC parent and NSEC3 child
case_ www.lhtest A secure -
case_ www.lhtest AAAA secure -
case_ txt.lhtest TXT secure -
case_ www.sec.lhtest A secure -
case_ txt.sec.lhtest TXT secure -
case_ cname.lhtest A secure -
# a CNAME synthesised from a signed DNAME (RFC 6672): unsigned itself, vouched for by the DNAME
case_ www.dname.lhtest A secure -
# denial of existence
case_ nx.lhtest A secure -
case_ www.lhtest MX secure -
case_ ent.lhtest A secure -
case_ nx.sec.lhtest A secure -
case_ www.sec.lhtest MX secure -
case_ ent.sec.lhtest A secure -
# wildcards: expansion and wildcard NODATA
case_ x.wild.lhtest A secure -
case_ y.x.wild.lhtest A secure -
case_ x.wild.lhtest MX secure -
case_ x.wild.sec.lhtest TXT secure -
case_ x.wild.sec.lhtest MX secure -
# insecure (an NXDOMAIN through an NSEC3 opt-out span is insecure: RFC 5155 9.2, as Unbound)
case_ www.unsigned.lhtest A insecure -
case_ nx.unsigned.lhtest A insecure -
case_ www.iter.lhtest A secure -
case_ nx.iter.lhtest A insecure 27
case_ www.optout.lhtest A secure -
case_ nx.optout.lhtest A insecure -
case_ www.insec.optout.lhtest A insecure -
case_ to-unsigned.lhtest A insecure -
# bogus
case_ www.expired.lhtest A bogus 7
case_ www.future.lhtest A bogus 8
case_ www.nokey.lhtest A bogus 9
case_ www.badds.lhtest A bogus 9
case_ www.stripped.lhtest A bogus 9
case_ www.tampered.lhtest A bogus 6
case_ to-expired.lhtest A bogus 7
case_ nosig.lhtest A bogus 10
case_ nosig.sec.lhtest A bogus 10
case_ nosig-nx.lhtest A bogus 10
case_ forged.lhtest A bogus 12
case_ forged.sec.lhtest A bogus 12
# loophole-only settings: the anchor in DNSKEY form, a negative trust anchor, the root key
case_ www.sec.lhtest A secure - no --trust-anchor "$T/anchor.key"
case_ www.expired.lhtest A insecure - no --trust-anchor "$T/anchor.ds" --domain-insecure expired.lhtest
case_ www.lhtest A indeterminate 5 no --trust-anchor /usr/share/dns/root.key

# the stripping-path check of docs/dnssec.md: the anchor zone's own DNSKEY RRset
"$LOOPHOLE" dnssec lhtest DNSKEY --upstream "$PROXY" --trust-anchor "$T/anchor.ds" >/dev/null
expect_eq "the anchor's DNSKEY through a clean path: secure" "$?" 0
out=$("$LOOPHOLE" dnssec lhtest DNSKEY --upstream "$STRIP" --trust-anchor "$T/anchor.ds")
expect_match "through a stripping path: bogus, RRSIGs missing" "$out" "reason: RRSIGs missing \(EDE 10\)"

out=$("$LOOPHOLE" dnssec www.sec.lhtest A --upstream "$PROXY" --trust-anchor "$T/anchor.ds")
expect_match "the chain is printed from the anchor to the RRSIG" "$out" \
    "trust anchor lhtest\..*DS sec\.lhtest\..*DNSKEY sec\.lhtest\..*RRSIG www\.sec\.lhtest\. A by sec\.lhtest\."
echo "x" >"$LH_TMP/bad.anchor"
out=$("$LOOPHOLE" dnssec www.lhtest --upstream "$PROXY" --trust-anchor "$LH_TMP/bad.anchor" 2>&1)
expect_match "a broken trust-anchor file is reported with file:line" "$out" "bad.anchor:[0-9]+: "

# ---- the daemon beyond the table ----
# A cache hit keeps the verdict: AD again, no DS/DNSKEY query, and the query log says so.
subq() { lh_stat 's["dnssec"]["subqueries"]'; }
before=$(subq)
ask "$LH_ADDR" www.sec.lhtest A
expect_eq "a cached secure answer keeps AD" "$ASK_AD/$ASK_ST" "1/NOERROR"
expect_eq "a cache hit asks no DS/DNSKEY" "$(subq)" "$before"
lh_wait_for 30 grep -q '"name":"www.sec.lhtest","type":"A","outcome":"cached".*"dnssec":"secure"' "$LH_TMP/query.log"
expect_match "the query log has the verdict of a cache hit" "$(grep -c . "$LH_TMP/query.log") $(cat "$LH_TMP/query.log")" \
    '"name":"www\.sec\.lhtest","type":"A","outcome":"cached".*"dnssec":"secure"'
expect_match "the query log has the verdict of a forwarded answer" "$(cat "$LH_TMP/query.log")" \
    '"name":"www\.unsigned\.lhtest","type":"A","outcome":"forwarded".*"dnssec":"insecure"'
expect_match "the query log names a bogus answer's reason" "$(cat "$LH_TMP/query.log")" \
    '"name":"www\.expired\.lhtest".*"dnssec":"bogus","dnssec_reason":"signature_expired"'
# A bogus answer is kept too: SERVFAIL with its EDE from the cache.
ask "$LH_ADDR" www.expired.lhtest A
expect_eq "a cached bogus answer: SERVFAIL, EDE 7" "$ASK_ST/$ASK_EDE" "SERVFAIL/7"
# AD only for clients that set DO or AD (RFC 6840 5.7); no RRSIG for a client without DO.
out=$(dig @"$LH_ADDR" www.lhtest A +nodnssec +noadflag +time=10 +tries=1)
expect_no_match "no DO, no AD: no AD flag" "$(grep '^;; flags' <<<"$out")" ' ad'
expect_no_match "no DO: no RRSIG" "$out" 'RRSIG'
expect_match "no DO: the address" "$out" '192\.0\.2\.'
out=$(dig @"$LH_ADDR" www.lhtest A +nodnssec +adflag +time=10 +tries=1)
expect_match "AD set by the client without DO: AD" "$(grep '^;; flags' <<<"$out")" ' ad'
ask "$LH_ADDR" www.lhtest A
expect_match "DO: the RRSIG comes along" "$ASK_OUT" 'RRSIG'
# CD: the unvalidated answer, for expired and forged data alike, without AD.
ask "$LH_ADDR" www.expired.lhtest A +cd
expect_eq "CD: a bogus name's answer passes, without AD" "$ASK_ST/$ASK_AD" "NOERROR/0"
expect_match "CD: the record is there" "$ASK_OUT" 'www\.expired\.lhtest\..*IN[[:space:]]+A'
ask "$LH_ADDR" www.expired.lhtest A
expect_eq "without CD again: still SERVFAIL (the CD answer is cached apart)" "$ASK_ST" SERVFAIL
ask "$LH_ADDR" www.tampered.lhtest A +cd
ask "$LH_ADDR" www.tampered.lhtest A +cd
expect_eq "CD twice (the second from the cache): NOERROR" "$ASK_ST" NOERROR
# kdig and drill as clients: the AD bit and the EDE as they print them
if command -v kdig >/dev/null; then
    out=$(kdig @"$LH_ADDR" www.sec.lhtest A +dnssec +timeout=10 +retry=0)
    expect_match "kdig sees AD" "$out" '[Ff]lags:[a-z ]* ad'
    out=$(kdig @"$LH_ADDR" www.future.lhtest A +dnssec +timeout=10 +retry=0)
    expect_match "kdig sees SERVFAIL with EDE 8" "$out" 'SERVFAIL.*|EDE: 8'
fi
if command -v drill >/dev/null; then
    out=$(drill -D www.lhtest A @"$LH_ADDR")
    expect_match "drill sees AD" "$out" 'flags:[a-z ]* ad'
fi
# The counters: stats (text and JSON) and the metrics
st=$("$LOOPHOLE" stats --control-socket "$LH_TMP/control.sock")
expect_match "stats: the dnssec line" "$st" 'dnssec +validate; path [a-z]+; secure [1-9][0-9]*; insecure [1-9][0-9]*; bogus [1-9][0-9]*'
expect_match "stats: bogus by reason" "$st" '\(signature_expired [0-9]+\)'
expect_eq "JSON stats: bogus with an expired signature counted" \
    "$(lh_stat 's["dnssec"]["bogus_by_reason"]["signature_expired"] >= 2')" True
expect_eq "the path carries DNSSEC as far as the probe saw (the tree has no root)" \
    "$(lh_stat 's["dnssec"]["stripping"]')" False
lh_scan_logs
expect_match "a bogus answer's log line names the zone and the reason" \
    "$(cat "$LH_TMP/loophole.log")" 'dnssec: www\.tampered\.lhtest type 1 is bogus in zone tampered\.lhtest\.: signature does not verify \(EDE 6\)'
lh_stop

# ---- a path that strips DNSSEC: detected at start, every signed name bogus ----
strips_before=$(lh_log_count 'the upstream path strips DNSSEC')
# The upstream from a config file, so that the reload below has one to reread.
printf 'upstream = %s\n' "$STRIP" >"$LH_TMP/strip.conf"
lh_start --config "$LH_TMP/strip.conf" --no-hosts --dnssec validate --trust-anchor "$T/anchor.ds" || lh_done
lh_wait_for 30 log_more 'the upstream path strips DNSSEC' "$strips_before"
expect_match "stripping detected at start: the log" "$(cat "$LH_TMP/loophole.log")" \
    "dnssec: the upstream path strips DNSSEC: the root's DNSKEY came from $STRIP:53 without RRSIG"
expect_eq "stripping: the stats flag" "$(lh_stat 's["dnssec"]["stripping"]')" True
st=$("$LOOPHOLE" stats --control-socket "$LH_TMP/control.sock")
expect_match "stripping: the stats line" "$st" 'path STRIPS DNSSEC'
ask "$LH_ADDR" www.lhtest A
expect_eq "validate on a stripping path: a signed name is SERVFAIL, EDE 10" "$ASK_ST/$ASK_EDE" SERVFAIL/10
out=$("$LOOPHOLE" leak-check --control-socket "$LH_TMP/control.sock" 2>&1)
expect_match "the leak check reports the stripping path" "$out" 'strips DNSSEC'
# The probe runs at start (and hourly, and after unsigned answers), not at a reload: a reload
# never changes the upstreams (docs/dnssec.md), so its verdict still holds. Should a reload
# ever take new upstreams, this fails, and the probe must rerun then.
printf 'upstream = %s\n' "$PLAIN" >"$LH_TMP/strip.conf"
"$LOOPHOLE" reload --control-socket "$LH_TMP/control.sock" >/dev/null
expect_eq "after a reload with another upstream in the file: the same upstream, still stripping" \
    "$(lh_stat '"%s %s" % (s["upstreams"][0]["server"], s["dnssec"]["stripping"])')" "$STRIP:53 True"
lh_stop

# ---- allow-downgrade: a path that starts stripping; zones seen signed are not downgraded ----
FLAG=$LH_TMP/strip-now
SOMETIMES=$(lh_peer 6)
"$LH_PY" "$LH_SRC/tests/e2e/dnssec_proxy.py" "$SOMETIMES" "$KNOT" strip-if "$FLAG" >"$LH_TMP/sometimes.out" 2>&1 &
LH_PIDS+=($!)
lh_wait_for 30 grep -q ready "$LH_TMP/sometimes.out"
lh_start --no-hosts --upstream "$SOMETIMES" --dnssec allow-downgrade --trust-anchor "$T/anchor.ds" || lh_done
lh_wait_for 30 lh_stat_true 's["dnssec"]["probes"] >= 1'
expect_eq "allow-downgrade: the path carries DNSSEC at start" "$(lh_stat 's["dnssec"]["path"]')" carries
ask "$LH_ADDR" www.sec.lhtest A
expect_eq "allow-downgrade, clean path: secure" "$ASK_V" secure
# Knot's own answers (no resolver in between), rewritten without DNSSEC records for a client
# without DO: ldns compresses them differently, and the rewrite may be longer than the original.
out=$(dig @"$LH_ADDR" www.sec.lhtest A +nodnssec +time=10 +tries=1)
expect_match "straight from Knot, no DO: the address, no RRSIG" "$(grep -v RRSIG <<<"$out")" 'www\.sec\.lhtest\..*192\.0\.2\.'
expect_no_match "straight from Knot, no DO: no RRSIG" "$out" 'RRSIG'
out=$(dig @"$LH_ADDR" x.wild.sec.lhtest TXT +nodnssec +time=10 +tries=1)
expect_match "straight from Knot, no DO, NSEC3 wildcard: the TXT" "$out" 'x\.wild\.sec\.lhtest\..*TXT'
expect_no_match "straight from Knot, no DO, NSEC3 wildcard: no NSEC3" "$out" 'NSEC3'
touch "$FLAG"
strips_before=$(lh_log_count 'the upstream path strips DNSSEC')
ask "$LH_ADDR" txt.lhtest TXT
expect_eq "the path starts stripping: the first unsigned answer is bogus (EDE 10)" "$ASK_ST/$ASK_EDE" SERVFAIL/10
lh_wait_for 30 log_more 'the upstream path strips DNSSEC' "$strips_before"
expect_eq "the unsigned answer made loophole probe again: strips" "$(lh_stat 's["dnssec"]["path"]')" strips
ask "$LH_ADDR" www.lhtest AAAA
expect_eq "a zone never seen signed is downgraded: insecure, no AD" "$ASK_V/$ASK_ST" insecure/NOERROR
ask "$LH_ADDR" txt.sec.lhtest TXT
expect_eq "a zone seen signed is not downgraded: SERVFAIL, EDE 10" "$ASK_ST/$ASK_EDE" SERVFAIL/10
expect_match "... and the log says why" "$(cat "$LH_TMP/loophole.log")" \
    'txt\.sec\.lhtest type 16: the path strips DNSSEC, but sec\.lhtest\. was seen signed'
expect_eq "downgraded answers are counted" "$(lh_stat 's["dnssec"]["downgraded"] >= 1')" True
lh_stop

echo
cat "$TABLE"
echo
lh_done
