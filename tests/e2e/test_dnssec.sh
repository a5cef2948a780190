#!/usr/bin/env bash
# test_dnssec.sh - `loophole dnssec` against a signed tree built at test time (dnssec_tree.sh),
# served by Knot DNS on loopback behind a tampering proxy (dnssec_proxy.py), with Unbound as a
# validating resolver on the same path and the same trust anchor: every verdict is checked
# against the expected one and against Unbound's, and the table is printed.
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

TABLE=$LH_TMP/table
printf '%-24s %-5s %-9s %-34s | %-24s %s\n' NAME TYPE EXPECTED "LOOPHOLE (EDE)" "UNBOUND (rcode, EDE)" AGREE >"$TABLE"

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
    local uv="-" utext="-" agree="n/a"
    if [ "$compare" = yes ]; then
        local dg st ue
        dg=$(dig @"$UB" "$name" "$type" +dnssec +time=15 +tries=1 2>&1)
        st=$(sed -n 's/.*status: \([A-Z]*\).*/\1/p' <<<"$dg" | head -1)
        ue=$(sed -n 's/^; EDE: \([0-9]*\).*/\1/p' <<<"$dg" | head -1)
        if [ "$st" = SERVFAIL ]; then uv=bogus
        elif grep -qE '^;; flags:[a-z ]* ad[ ;]' <<<"$dg"; then uv=secure
        elif [ -n "$st" ]; then uv=insecure
        else uv=indeterminate; fi
        utext="$uv ($st, EDE ${ue:--})"
        agree=$([ "$uv" = "$lv" ] && echo yes || echo NO)
        expect_eq "$name $type: Unbound agrees" "$uv" "$lv"
    fi
    printf '%-24s %-5s %-9s %-34s | %-24s %s\n' "$name" "$type" "$want" "$lv (EDE ${le:--})" \
        "$utext" "$agree" >>"$TABLE"
}

# secure answers, NSEC parent and NSEC3 child
case_ www.lhtest A secure -
case_ www.lhtest AAAA secure -
case_ txt.lhtest TXT secure -
case_ www.sec.lhtest A secure -
case_ txt.sec.lhtest TXT secure -
case_ cname.lhtest A secure -
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

echo
cat "$TABLE"
echo
lh_done
