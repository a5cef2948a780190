#!/usr/bin/env bash
# The dashboard in a real browser (headless Chromium driven by Selenium, dashboard_browser.py):
# no console error; after a known query sequence the counters and top tables show the exact
# numbers; pausing from the page lets a blocked name resolve upstream and resuming blocks it
# again (dig); allowing a name from the recent-queries list unblocks it and survives a
# restart; the why box shows the rule as file:line; a rebound Host and another origin are
# refused. Screenshots (1280x800, 390 wide) are kept in the build folder,
# dashboard-screenshots/, for CI to keep as artifacts.
. "$(dirname "$0")/lib.sh"
for t in chromium /usr/bin/chromedriver; do
    command -v "$t" >/dev/null || { echo "skip: $t missing (scripts/deps.sh installs it)"; exit 77; }
done
"$LH_PY" -c 'import selenium' 2>/dev/null || { echo "skip: python3-selenium missing"; exit 77; }
UP=$(lh_peer 1)
ATTACKER=$(lh_peer 2)
CTL="$LH_TMP/control.sock"
SHOTS="$(dirname "$LOOPHOLE")/dashboard-screenshots"
mkdir -p "$SHOTS"
printf '||ads.dash.test^\nthis line is not a rule\n' >"$LH_TMP/block.list"
# cloak mode: 192.0.2.1 for most names, a LAN address (10.1.2.3) for "private.*" names, which
# rebind-protection refuses (the chart's "rebind" series).
lh_fake "$UP" cloak
ARGS=(--upstream "$UP" --no-default-blocklist --no-hosts --blocklist "$LH_TMP/block.list" --rebind-protection
      --http "$LH_ADDR:5380")
lh_start "${ARGS[@]}" || { not_ok "loophole did not start"; lh_done; }
url() { "$LOOPHOLE" dashboard --control-socket "$CTL" | head -1; }
q() { dig @"$LH_ADDR" -b 127.0.0.9 +time=2 +tries=1 "$@" >/dev/null; }
before=$("$LOOPHOLE" stats --json --control-socket "$CTL" | "$LH_PY" -c 'import json,sys; print(json.load(sys.stdin)["queries"]["total"])')
for _ in 1 2 3; do q a.ads.dash.test; done
for _ in 1 2; do q b.ads.dash.test; done
q www.dash.example; q www.dash.example # forwarded, then cached
q localhost
export LH_RUNTIME_LIST="$LH_TMP/state/runtime.list" LH_BLOCK_LIST="$LH_TMP/block.list"
browse() { "$LH_PY" "$LH_SRC/tests/e2e/dashboard_browser.py" "$@" 2>"$LH_TMP/browser-$1.err" | tee "$LH_TMP/browser-$1.out"; }
browse first "$(url)" "$LH_ADDR" "$SHOTS" "$LOOPHOLE" "$CTL" "$((before + 8))"
lh_stop
lh_start "${ARGS[@]}"
# The other origin: a page on another loopback address, as any web site the person visits.
mkdir -p "$LH_TMP/attacker"
echo '<!doctype html><title>elsewhere</title><p>another site' >"$LH_TMP/attacker/index.html"
"$LH_PY" -m http.server --bind "$ATTACKER" 8080 --directory "$LH_TMP/attacker" >/dev/null 2>&1 &
LH_PIDS+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://$ATTACKER:8080/" && break; sleep 0.1; done
q private.dash.test # refused by rebind-protection: the chart's "rebind" series
browse after-restart "$(url)" "$LH_ADDR" "$SHOTS" "$LOOPHOLE" "$CTL" "http://$ATTACKER:8080/"
lh_stop

# The leak check from the page runs `loophole leak-check --json` as a child of the daemon. Its
# glibc probe must not reach the machine's resolver: the daemon runs in a mount namespace
# whose resolv.conf names loophole itself (as on a machine that uses it).
echo "nameserver $LH_ADDR" >"$LH_TMP/resolv.conf"
echo "hosts: files dns" >"$LH_TMP/nsswitch.conf"
PRIVATE=(unshare -m bash -c "mount --bind '$LH_TMP/resolv.conf' /etc/resolv.conf &&
    mount --bind '$LH_TMP/nsswitch.conf' /etc/nsswitch.conf && exec \"\$@\"" bash)
# Started by unshare itself, never through a function: $! of a backgrounded function is a
# subshell, and killing it would leave the daemon running. unshare and bash exec, so $! is
# the daemon.
"${PRIVATE[@]}" "$LOOPHOLE" serve --listen "$LH_ADDR:53" --control-socket "$CTL" \
    --state-dir "$LH_TMP/state" --log-level debug "${ARGS[@]}" >>"$LH_TMP/loophole.log" 2>&1 &
LH_PID=$!
LH_PIDS+=("$LH_PID")
lh_wait_ready "$LH_ADDR"
"${PRIVATE[@]}" "$LOOPHOLE" leak-check --json --listen "$LH_ADDR:53" --control-socket "$CTL" \
    "${ARGS[@]}" >"$LH_TMP/leak.json"
expected=$?
browse leak "$(url)" "$LH_ADDR" "$SHOTS" "$LOOPHOLE" "$CTL" "$expected"
LH_PASS=$((LH_PASS + $(cat "$LH_TMP"/browser-*.out | grep -c '^ok ')))
LH_FAIL=$((LH_FAIL + $(cat "$LH_TMP"/browser-*.out | grep -c '^FAIL ')))
if [ "$(cat "$LH_TMP"/browser-*.out | grep -c '^ok ')" -lt 40 ]; then
    not_ok "the browser runs did not get through (stderr below)"
    tail -n 20 "$LH_TMP"/browser-*.err
fi
lh_done
