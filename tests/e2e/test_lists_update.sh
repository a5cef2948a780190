#!/usr/bin/env bash
# `loophole lists update` against a local HTTP server the test starts: first download, 304 on
# the next run, a changed list, a 404 and a non-list download (old file kept), and a host name
# resolved through loophole's upstreams (a test Unbound), never the system resolver.
. "$(dirname "$0")/lib.sh"
WEB=$(lh_peer 1) UB=$(lh_peer 2) PORT=8053
mkdir -p "$LH_TMP/www" "$LH_TMP/lists"
printf '||one.update.test^\n||two.update.test^\n' >"$LH_TMP/www/ads.txt"
printf '<html><body>Not here</body></html>\n' >"$LH_TMP/www/page.html"
touch -d '2026-01-01 00:00:00' "$LH_TMP/www/ads.txt"
"$LH_PY" -m http.server --bind "$WEB" --directory "$LH_TMP/www" "$PORT" >"$LH_TMP/http.log" 2>&1 &
LH_PIDS+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://$WEB:$PORT/" 2>/dev/null && break; sleep 0.1; done
printf '$ORIGIN update.test.\n$TTL 60\n@ SOA ns h 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\nlists A %s\n' "$WEB" >"$LH_TMP/update.zone"
lh_unbound "$UB" "$LH_TMP/update.zone" update.test.

L="$LH_TMP/lists/ads.txt"
upd() { "$LOOPHOLE" lists update --resolv-conf /dev/null --fallback-upstream 127.0.0.1:1 "$@"; }
out=$(upd --list-url "http://$WEB:$PORT/ads.txt $L")
expect_eq "first update exits 0" "$?" "0"
expect_match "first update downloads" "$out" "ads.txt: updated \(2 rules"
check "the list is in place" grep -q one.update.test "$L"
expect_eq "it keeps the server's time" "$(stat -c %Y "$L")" "$(stat -c %Y "$LH_TMP/www/ads.txt")"
out=$(upd --list-url "http://$WEB:$PORT/ads.txt $L")
expect_match "second update: not modified (conditional request)" "$out" "ads.txt: unchanged"
check "the server answered 304" grep -q '"GET /ads.txt HTTP/1.1" 304' "$LH_TMP/http.log"
printf '||one.update.test^\n||two.update.test^\n||three.update.test^\n' >"$LH_TMP/www/ads.txt"
out=$(upd --list-url "http://$WEB:$PORT/ads.txt $L")
expect_match "a changed list is downloaded" "$out" "ads.txt: updated \(3 rules"
out=$(upd --list-url "http://$WEB:$PORT/missing.txt $L")
expect_eq "a 404 exits 1" "$?" "1"
expect_match "... says why and keeps the old file" "$out" "FAILED, download failed: HTTP 404; the old file is kept"
check "the old list is intact" grep -q three.update.test "$L"
out=$(upd --list-url "http://$WEB:$PORT/page.html $L")
expect_match "a download that is not a list is refused" "$out" "FAILED, the download holds no list rules"
check "the old list is still intact" grep -q three.update.test "$L"
check "no temporary file is left" test ! -e "$LH_TMP/lists/.ads.txt.download"
check "the URL and ETag are kept in a hidden file" test -s "$LH_TMP/lists/.ads.txt.meta"
# A host name, resolved through the configured upstream (the test Unbound).
out=$("$LOOPHOLE" lists update --upstream "$UB" --list-url "http://lists.update.test:$PORT/ads.txt $LH_TMP/lists/by-name.txt")
expect_match "a host name resolves through loophole's upstreams" "$out" "by-name.txt: updated \(3 rules"
out=$(upd --list-url "http://nowhere.update.test:$PORT/ads.txt $LH_TMP/lists/x.txt")
expect_match "an unresolvable host fails clearly" "$out" "cannot resolve nowhere.update.test through the upstreams"
# The daemon loads what was downloaded.
lh_start --no-hosts --blocklist "$LH_TMP/lists"
expect_eq "the downloaded list blocks" "$(d three.update.test +short)" "127.0.0.1"
lh_done
