#!/usr/bin/python3
"""dashboard_browser.py - drives the dashboard in headless Chromium (Selenium) for
test_dashboard.sh. One phase per run (a restart happens between them):

  dashboard_browser.py first URL ADDR SHOTS LOOPHOLE CTL EXPECT_TOTAL
  dashboard_browser.py after-restart URL ADDR SHOTS LOOPHOLE CTL ATTACKER_URL
  dashboard_browser.py leak URL ADDR SHOTS LOOPHOLE CTL EXPECTED_EXIT

Prints "ok - ..." / "FAIL - ..." lines (counted by the shell script) and exits 0.
Waits are conditions on the page (WebDriverWait), never fixed sleeps."""
import json, os, subprocess, sys

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, JavascriptException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

phase, url, addr, shots, loophole, ctl = sys.argv[1:7]
WAIT = 30  # the page polls every 2 s; a busy machine and an ASan build get 15x that


def ok(cond, what, detail=""):
    print(("ok   - " if cond else "FAIL - ") + what + ("" if cond else ": " + str(detail)), flush=True)


def dig(name):
    out = subprocess.run(["dig", "@" + addr, name, "+short", "+time=2", "+tries=1"],
                         capture_output=True, text=True).stdout.split()
    return next((w for w in out if w[0].isdigit()), "none")


def stats():
    out = subprocess.run([loophole, "stats", "--json", "--control-socket", ctl],
                         capture_output=True, text=True).stdout
    return json.loads(out)


def browser(user_dir):
    o = Options()
    for a in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--user-data-dir=" + user_dir,
              # No name may reach the machine's resolver; one name is made to rebind to the
              # dashboard's address, as an attacker's DNS would.
              "--host-resolver-rules=MAP rebind.dash.test %s, MAP * ~NOTFOUND, EXCLUDE 127.*" % addr]:
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def text(d, css):
    # Read in one script: the page re-renders its tables every poll, so an element found in
    # one call may be gone in the next.
    return (d.execute_script("const e = document.querySelector(arguments[0]);"
                             "return e ? e.innerText : ''", css) or "").strip()


def cells(d, css):
    return d.execute_script("return [...document.querySelectorAll(arguments[0])]"
                            ".map(e => e.innerText.trim())", css)


def count(d, css):
    return d.execute_script("return document.querySelectorAll(arguments[0]).length", css)


def click(d, css):
    return d.execute_script("const e = document.querySelector(arguments[0]);"
                            "if (e) e.click(); return !!e", css)


def wait_text(d, css, pred, what):
    try:
        WebDriverWait(d, WAIT).until(lambda _: pred(text(d, css)))
        return True
    except TimeoutException:
        ok(False, what, "%s shows [%s]" % (css, text(d, css)))
        return False


def console_errors(d):
    return [l for l in d.get_log("browser") if l["level"] in ("SEVERE", "ERROR")]


def shoot(d, name, width, height):
    # The page as it stays: after the last action's message has gone.
    WebDriverWait(d, WAIT).until(lambda _: d.execute_script("return document.getElementById('toast').hidden"))
    d.set_window_size(width, height)
    WebDriverWait(d, WAIT).until(lambda _: d.execute_script("return document.readyState") == "complete")
    d.execute_script("window.scrollTo(0, 0)")
    path = os.path.join(shots, name + ".png")
    d.save_screenshot(path)
    full = d.execute_script("return document.documentElement.scrollHeight")
    d.set_window_size(width, full + 140)  # the window's frame takes some of the height
    d.save_screenshot(os.path.join(shots, name + "-full.png"))
    d.set_window_size(width, height)
    ok(os.path.getsize(path) > 10000, "screenshot " + path)


def top_table(d, table):
    rows = d.execute_script("return [...document.querySelectorAll('#' + arguments[0] + ' tbody tr')]"
                            ".map(r => [...r.cells].map(c => c.innerText.trim()))", table)
    return {r[0]: r[1] for r in rows if len(r) >= 2}


def first_phase(d, expect_total):
    d.get(url)
    WebDriverWait(d, WAIT).until(lambda _: d.execute_script("return document.body.getAttribute('data-polls')"))
    ok("#token=" not in d.current_url, "the token leaves the address bar", d.current_url)
    errs = console_errors(d)
    ok(not errs, "the page loads with no console error", errs)
    # The known sequence (test_dashboard.sh): exact numbers.
    wait_text(d, "#kpi-blocked", lambda t: t == "5", "blocked counter 5")
    ok(text(d, "#kpi-blocked") == "5", "Blocked: 5")
    total = stats()["queries"]["total"]
    ok(total == int(expect_total) and text(d, "#kpi-total").replace(",", "") == str(total),
       "Queries: the daemon's total (%s), as expected" % expect_total, "%s / %s" % (text(d, "#kpi-total"), total))
    wait_text(d, "#kpi-cache", lambda t: t == "50.0%", "cache hit ratio 50.0%")
    ok(text(d, "#kpi-cache") == "50.0%", "cache hit ratio 50.0% (1 hit, 1 miss)")
    tb = top_table(d, "top-blocked")
    ok(tb.get("a.ads.dash.test") == "3" and tb.get("b.ads.dash.test") == "2" and len(tb) == 2,
       "top blocked names: a 3, b 2", tb)
    tc = top_table(d, "top-clients")
    ok(tc.get("127.0.0.9") == "8", "top clients: 127.0.0.9 asked 8 times", tc)
    lists = text(d, "#lists tbody")
    ok("block.list" in lists and "malformed" in lists, "lists: the list with its first malformed line", lists)
    ok(cells(d, "#lists tbody td.num") == ["1", "1"], "lists: 1 rule, 1 malformed line",
       cells(d, "#lists tbody td.num"))
    ok("healthy" in text(d, "#upstreams tbody"), "upstreams: healthy", text(d, "#upstreams tbody"))

    # Pause from the page: the blocked name goes upstream; resume: blocked again.
    click(d, "#btn-pause-5m")
    if wait_text(d, "#status", lambda t: "paused" in t and "left" in t, "status paused"):
        ok(True, "status: paused, with the time left (%s)" % text(d, "#status"))
    ok(dig("x.ads.dash.test") == "192.0.2.1", "paused from the page: x.ads.dash.test resolves upstream")
    ok(stats()["blocking"]["paused"], "... the daemon says paused")
    click(d, "#btn-resume")
    wait_text(d, "#status", lambda t: t == "Blocking on", "status: Blocking on")
    ok(dig("x.ads.dash.test") == "127.0.0.1", "resumed from the page: blocked again")

    # Recent queries, filtered; allow a blocked name from it with one click.
    click(d, "#filter-blocked")
    a_row = "#recent tbody tr[data-name='a.ads.dash.test']"
    WebDriverWait(d, WAIT).until(lambda _: count(d, a_row) and
                                 set(cells(d, "#recent tbody tr td:nth-child(5)")) == {"blocked"})
    ok(True, "recent queries, blocked only")
    d.find_element(By.ID, "filter-client").send_keys("127.0.0.9")
    WebDriverWait(d, WAIT).until(lambda _: count(d, "#recent tbody tr[data-outcome]") == 5)
    ok(True, "... and from one client: its 5 blocked queries")
    click(d, a_row + " button")
    WebDriverWait(d, WAIT).until(lambda _: count(d, "#rules tbody tr[data-name='a.ads.dash.test']"))
    ok(dig("a.ads.dash.test") == "192.0.2.1", "allowed from the recent list: a.ads.dash.test resolves upstream")
    ok(dig("b.ads.dash.test") == "127.0.0.1", "... b.ads.dash.test still blocked")
    errs = console_errors(d)
    ok(not errs, "no console error after the actions", errs)
    shoot(d, "dashboard-1280x800", 1280, 800)
    shoot(d, "dashboard-390x844", 390, 844)


def why(d, name):
    box = d.find_element(By.ID, "why-name")
    box.clear()
    box.send_keys(name)
    click(d, "#why-go")
    WebDriverWait(d, WAIT).until(lambda _: text(d, "#why-verdict").startswith(name + " "))
    return text(d, "#why-verdict"), text(d, "#why-runtime"), text(d, "#why-rules")


def rebind_chart(d):
    # test_dashboard.sh asked private.dash.test, which rebind-protection refused: the legend
    # names the series, the recent list shows the outcome, and once the sampler (every 10 s)
    # has taken it, the history has it and the chart draws a band of its own (its outline
    # differs from the band below it, "failed", only when it has a height).
    legend = cells(d, "#legend > span")
    ok("rebind" in legend, "the chart's legend has the rebind series", legend)
    row = "#recent tbody tr[data-name='private.dash.test'][data-outcome='rebind'] .o-rebind"
    try:
        WebDriverWait(d, WAIT).until(lambda _: count(d, row))
        ok(True, "recent queries: private.dash.test with the outcome rebind")
    except TimeoutException:
        ok(False, "recent queries: private.dash.test with the outcome rebind",
           cells(d, "#recent tbody tr td:nth-child(5)"))
    token = url.split("#token=")[1]

    def rebind_count(_):
        st = d.execute_async_script("""
            const [token, done] = arguments;
            fetch('/api/state', {headers: {'X-Loophole-Token': token}, cache: 'no-store'})
              .then(r => r.json()).then(j => done(j), e => done(null));""", token)
        return st and sum(st["history"]["series"].get("rebind", [])) or 0
    try:  # the next sample comes within 10 s: 4 times that for a busy machine
        n = WebDriverWait(d, 4 * WAIT).until(rebind_count)
        ok(n == 1, "history: the rebind series counts the refusal", n)
    except TimeoutException:
        ok(False, "history: the rebind series counts the refusal", "none after %d s" % (4 * WAIT))
    try:
        WebDriverWait(d, WAIT).until(lambda _: d.execute_script(
            "const r = document.querySelector('#chart path.s-rebind'),"
            " f = document.querySelector('#chart path.s-failed');"
            "return !!(r && f && r.getAttribute('d') !== f.getAttribute('d'))"))
        ok(True, "the chart draws the rebind band")
    except TimeoutException:
        ok(False, "the chart draws the rebind band", "no band of its own")


def after_restart(d, attacker):
    d.get(url)  # a new token after the restart
    WebDriverWait(d, WAIT).until(lambda _: d.execute_script("return document.body.getAttribute('data-polls')"))
    ok(dig("a.ads.dash.test") == "192.0.2.1", "after a restart the allowed name still resolves upstream")
    rules = top_table(d, "rules")
    ok("a.ads.dash.test" in rules, "... and the runtime rule is listed", rules)
    verdict, runtime, lrules = why(d, "a.ads.dash.test")
    ok("allowed by a runtime rule" in verdict, "why: the verdict", verdict)
    line = [i + 1 for i, l in enumerate(open(os.environ["LH_RUNTIME_LIST"])) if "a.ads.dash.test" in l]
    want = "%s:%d: @@|a.ads.dash.test^" % (os.environ["LH_RUNTIME_LIST"], line[0] if line else 0)
    ok(want in runtime, "why: the runtime rule as file:line", runtime)
    ok("%s:1: ||ads.dash.test^" % os.environ["LH_BLOCK_LIST"] in lrules, "why: the list rule as file:line", lrules)
    verdict, runtime, lrules = why(d, "b.ads.dash.test")
    ok(verdict.endswith(": blocked"), "why b.ads.dash.test: blocked", verdict)
    rebind_chart(d)
    errs = console_errors(d)
    ok(not errs, "no console error", errs)

    # Refusals, as a browser meets them. A rebound name (the attacker's DNS answers with the
    # dashboard's address): the Host is refused, so the attacker's page gets no data.
    d.get("http://rebind.dash.test:%s/" % url.split(":")[2].split("/")[0])
    body = text(d, "body")
    ok("DNS rebinding" in body and "<html" not in body, "a rebound Host gets no page", body[:120])
    d.get_log("browser")
    # A page of another origin that knows the token still cannot act or read: the token header
    # needs a CORS preflight loophole never grants, and a plain form post carries its Origin.
    d.get(attacker)
    token = url.split("#token=")[1]
    base = url.split("#")[0].rstrip("/")
    res = d.execute_async_script("""
        const [base, token, done] = arguments;
        const out = {};
        fetch(base + '/api/pause', {method: 'POST', headers: {'X-Loophole-Token': token},
              body: new URLSearchParams({seconds: '300'})})
          .then(r => { out.with_token = 'status ' + r.status; }, e => { out.with_token = 'blocked'; })
          .then(() => fetch(base + '/api/pause', {method: 'POST', mode: 'no-cors',
              body: new URLSearchParams({seconds: '300'})}))
          .then(r => { out.simple = r.type; }, e => { out.simple = 'blocked'; })
          .then(() => fetch(base + '/api/state', {headers: {'X-Loophole-Token': token}}))
          .then(r => r.text().then(t => { out.read = t.slice(0, 40); }), e => { out.read = 'blocked'; })
          .then(() => done(out));
    """, base, token)
    ok(res.get("with_token") == "blocked", "another origin with the token: the browser blocks it (preflight)", res)
    ok(res.get("read") == "blocked", "another origin cannot read the state", res)
    ok(not stats()["blocking"]["paused"], "... and nothing was paused (a form-like post: Origin refused)", res)


def leak(d, expected_exit):
    d.get(url)
    WebDriverWait(d, WAIT).until(lambda _: d.execute_script("return document.body.getAttribute('data-polls')"))
    click(d, "#btn-leak")
    WebDriverWait(d, WAIT).until(lambda _: text(d, "#leak-verdict"))
    verdicts = {"0": "No leak found", "1": "Leak: some DNS questions bypass loophole", "2": "Could not tell"}
    ok(text(d, "#leak-verdict") == verdicts.get(expected_exit),
       "leak check from the page: the verdict of 'loophole leak-check' (exit %s)" % expected_exit,
       text(d, "#leak-verdict"))
    raw = json.loads(d.execute_script("return document.getElementById('leak-raw').textContent"))
    ok(raw.get("exit_code") == int(expected_exit) and "configured" in raw,
       "... and its whole report", str(raw)[:200])
    ok(count(d, "#leak-findings li") == len(raw.get("findings", [])) > 0, "... its findings listed")
    errs = console_errors(d)
    ok(not errs, "no console error", errs)
    shoot(d, "dashboard-leak-check-1280x800", 1280, 800)


d = browser(os.path.join(shots, "chrome-" + phase))
d.set_window_size(1280, 800)
try:
    if phase == "first":
        first_phase(d, sys.argv[7])
    elif phase == "leak":
        leak(d, sys.argv[7])
    else:
        after_restart(d, sys.argv[7])
except Exception as e:  # a broken page must fail the test, with what went wrong
    ok(False, "the browser run finished", str(e).splitlines()[0] if str(e) else repr(e))
finally:
    d.quit()
