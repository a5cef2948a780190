// loophole dashboard. Plain JavaScript, no framework, no build step; served from the daemon
// with a Content-Security-Policy that forbids inline script. Every value shown goes through
// textContent, never innerHTML: names in DNS queries are attacker-chosen text.
"use strict";

(function () {
  const POLL_MS = 2000;
  const SERIES = ["local", "blocked", "cached", "forwarded", "failed", "rebind"];
  let token = "";
  let last = null;          // the last /api/state answer
  let prevUp = null;        // upstream figures at the previous poll, for health
  let polling = null;

  const $ = (id) => document.getElementById(id);
  const fmt = (n) => Number(n).toLocaleString("en-US");
  const pct = (a, b) => (b ? (100 * a / b).toFixed(1) + "%" : "–");

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    if (props) for (const [k, v] of Object.entries(props)) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) if (c != null) e.append(c);
    return e;
  }

  // ---- token: from the URL fragment (never sent to the server), kept for this tab only ----
  function takeToken() {
    const m = /(?:^#|&)token=([0-9a-f]{64})/.exec(location.hash);
    if (m) {
      sessionStorage.setItem("loophole-token", m[1]);
      history.replaceState(null, "", location.pathname); // out of the address bar and history
    }
    token = sessionStorage.getItem("loophole-token") || "";
  }

  async function api(path, body) {
    const opts = { headers: { "X-Loophole-Token": token }, cache: "no-store" };
    if (body !== undefined) {
      opts.method = "POST";
      opts.body = new URLSearchParams(body);
    }
    const r = await fetch("/api/" + path, opts);
    let data = null;
    try { data = await r.json(); } catch (e) { data = { error: "unreadable answer (" + r.status + ")" }; }
    if (r.status === 401) { showLogin(); throw new Error(data.error); }
    if (!r.ok) throw new Error(data && data.error ? data.error : "HTTP " + r.status);
    return data;
  }

  let toastTimer = null;
  function toast(text) {
    const t = $("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  async function act(path, body, button) {
    if (button) button.disabled = true;
    try {
      const r = await api(path, body || {});
      if (r.message) toast(r.message.replace(/ \(runtime rule, [^)]*\)$/, " (runtime rule)"));
      await refresh();
      return r;
    } catch (e) {
      toast(e.message);
      return null;
    } finally {
      if (button) button.disabled = false;
    }
  }

  function showLogin() {
    $("main").hidden = true;
    $("login").hidden = false;
    $("status").textContent = "token needed";
    $("status").className = "pill down";
    if (polling) { clearInterval(polling); polling = null; }
  }

  // ---- rendering --------------------------------------------------------------------------
  function fill(tbody, rows, cols) {
    tbody.replaceChildren();
    if (!rows.length) {
      tbody.append(el("tr", null, el("td", { class: "empty", colSpan: cols, text: "none yet" })));
      return;
    }
    for (const r of rows) tbody.append(r);
  }

  function duration(s) {
    if (s >= 3600) return Math.floor(s / 3600) + " h " + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + " min";
    if (s >= 60) return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0") + " min";
    return s + " s";
  }

  function renderStatus(st) {
    const b = st.stats.blocking || {};
    const pill = $("status");
    if (b.paused) {
      pill.textContent = b.until_resumed ? "Blocking paused until resumed" : "Blocking paused · " + duration(b.remaining_s) + " left";
      pill.className = "pill paused";
    } else {
      pill.textContent = "Blocking on";
      pill.className = "pill";
    }
    $("btn-resume").hidden = !b.paused;
  }

  function renderKpis(st) {
    const s = st.stats, o = s.outcomes;
    const total = s.queries.total;
    const answered = Object.values(o).reduce((a, b) => a + b, 0);
    $("kpi-total").textContent = fmt(total);
    $("kpi-blocked").textContent = fmt(o.blocked);
    $("kpi-blocked-share").textContent = pct(o.blocked, answered) + " of answers";
    if (s.cache) {
      const looked = s.cache.hits + s.cache.misses;
      $("kpi-cache").textContent = pct(s.cache.hits, looked);
      $("kpi-cache-sub").textContent = fmt(s.cache.entries) + (s.cache.entries === 1 ? " entry" : " entries");
    } else {
      $("kpi-cache").textContent = "off";
      $("kpi-cache-sub").textContent = "";
    }
    const h = st.history.series;
    const n = h.local.length;
    if (n) {
      const q = SERIES.reduce((a, k) => a + h[k][n - 1], 0) / st.history.interval_s;
      $("kpi-rate").textContent = q.toFixed(q < 10 ? 1 : 0) + " per second lately";
    } else {
      $("kpi-rate").textContent = "since " + new Date(s.started * 1000).toLocaleString();
    }
    const ups = s.upstreams || [];
    let answers = 0, sum = 0, failing = 0;
    for (const u of ups) {
      answers += u.answers; sum += u.latency_sum_us;
    }
    for (const u of ups) if (health(u) === "failing") failing++;
    $("kpi-upstream").textContent = answers ? (sum / answers / 1000).toFixed(1) + " ms" : "–";
    $("kpi-upstream-sub").textContent = !ups.length ? "none configured"
      : failing ? failing + " of " + ups.length + " failing"
      : answers ? ups.length + " of " + ups.length + " healthy" : ups.length + " · no answers yet";
  }

  // Health: what changed since the last poll when there was traffic, else the totals.
  function health(u) {
    const p = prevUp && prevUp[u.server];
    const da = p ? u.answers - p.answers : 0, df = p ? u.failures - p.failures : 0;
    if (da + df > 0) return df === 0 ? "healthy" : da === 0 ? "failing" : "some failures";
    if (u.queries === 0) return "idle";
    if (u.answers === 0 && u.failures > 0) return "failing";
    if (u.failures > 0.2 * (u.answers + u.failures)) return "some failures";
    return "healthy";
  }

  function renderChart(hist) {
    const box = $("chart");
    // Drawn at the box's own size (no stretching), again when the window changes.
    const W = Math.max(box.clientWidth, 240), H = Math.max(box.clientHeight, 120), L = 38, B = 18, T = 8;
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("role", "img");
    const n = hist.series.local.length, slots = 360, iv = hist.interval_s;
    const stack = [];
    let max = 0;
    for (let i = 0; i < n; i++) {
      let acc = 0;
      const col = [];
      for (const k of SERIES) { acc += hist.series[k][i] / iv; col.push(acc); }
      stack.push(col);
      max = Math.max(max, acc);
    }
    const top = max > 0 ? niceMax(max) : 1;
    const x = (i) => L + (W - L - 4) * (slots - n + i) / (slots - 1);
    const y = (v) => T + (H - T - B) * (1 - v / top);
    for (const f of [0, 0.5, 1]) {
      const line = document.createElementNS(ns, "line");
      line.setAttribute("x1", L); line.setAttribute("x2", W - 4);
      line.setAttribute("y1", y(top * f)); line.setAttribute("y2", y(top * f));
      line.setAttribute("class", "axis");
      svg.append(line);
      const t = document.createElementNS(ns, "text");
      t.setAttribute("x", L - 6); t.setAttribute("y", y(top * f) + 4); t.setAttribute("text-anchor", "end");
      t.textContent = (top * f).toFixed(top < 5 ? 1 : 0);
      svg.append(t);
    }
    for (const [i, label] of [[0, "−60 min"], [180, "−30 min"], [359, "now"]]) {
      const t = document.createElementNS(ns, "text");
      t.setAttribute("x", L + (W - L - 4) * i / (slots - 1)); t.setAttribute("y", H - 4);
      t.setAttribute("text-anchor", i === 0 ? "start" : i === 359 ? "end" : "middle");
      t.textContent = label;
      svg.append(t);
    }
    if (n >= 1) {
      for (let k = SERIES.length - 1; k >= 0; k--) { // top band first, lower ones drawn over it
        let d = "M" + x(0) + "," + y(0);
        for (let i = 0; i < n; i++) d += " L" + x(i) + "," + y(stack[i][k]);
        if (n === 1) d += " L" + (x(0) + 3) + "," + y(stack[0][k]);
        d += " L" + (n === 1 ? x(0) + 3 : x(n - 1)) + "," + y(0) + " Z";
        const p = document.createElementNS(ns, "path");
        p.setAttribute("d", d);
        p.setAttribute("class", "s-" + SERIES[k]);
        svg.append(p);
      }
    } else {
      const t = document.createElementNS(ns, "text");
      t.setAttribute("x", W / 2); t.setAttribute("y", H / 2); t.setAttribute("text-anchor", "middle");
      t.textContent = "the first point appears after " + iv + " seconds";
      svg.append(t);
    }
    box.replaceChildren(svg);
  }

  function niceMax(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  // A DNS name that may wrap after its dots on a narrow screen (text nodes and <wbr>).
  function nameNode(name) {
    const span = el("span");
    const parts = String(name).split(".");
    parts.forEach((p, i) => {
      span.append(document.createTextNode(p + (i < parts.length - 1 ? "." : "")));
      if (i < parts.length - 1) span.append(el("wbr"));
    });
    return span;
  }

  function pathNode(path) {
    const span = el("span");
    const parts = String(path).split("/");
    parts.forEach((p, i) => {
      span.append(document.createTextNode((i ? "/" : "") + p));
      span.append(el("wbr"));
    });
    return span;
  }

  // A name a runtime rule allows gets a mark instead of a button.
  function allowButton(name, text) {
    const rules = (last && last.runtime && last.runtime.rules) || [];
    if (rules.some((r) => r.name === name && r.action === "allow"))
      return el("span", { class: "allowed-mark", text: "allowed" });
    return el("button", { type: "button", class: "small", text: text || "Allow",
      onclick: (e) => act("allow", { name }, e.target) });
  }

  function renderTops(st) {
    const s = st.stats;
    fill($("top-blocked").tBodies[0], s.top_blocked.slice(0, 10).map((e) =>
      el("tr", { "data-name": e.key },
        el("td", { class: "name" }, nameNode(e.key)),
        el("td", { class: "num", text: fmt(e.count) }),
        el("td", { class: "num" }, allowButton(e.key)))), 3);
    fill($("top-clients").tBodies[0], s.top_clients.slice(0, 10).map((e) =>
      el("tr", { "data-client": e.key },
        el("td", { class: "name mono", text: e.key }),
        el("td", { class: "num", text: fmt(e.count) }))), 2);
  }

  function renderLists(st) {
    fill($("lists").tBodies[0], st.lists.map((l) => el("tr", null,
      el("td", { class: "name" }, el("span", { class: "mono" }, pathNode(l.path)),
        l.kind === "allow" ? el("span", { class: "muted", text: " (allowlist)" }) : null,
        el("div", { class: "muted", text: l.modified ? "updated " + new Date(l.modified * 1000).toLocaleString() : "built into loophole" }),
        l.first_error ? el("div", { class: "muted", text: "first malformed: " + l.first_error }) : null),
      el("td", { class: "num", text: fmt(l.rules) }),
      el("td", { class: "num", text: fmt(l.malformed) }))), 3);
    const r = st.stats.reloads;
    $("reload-info").textContent = r.last ? "Last reload " + new Date(r.last * 1000).toLocaleString() +
      (r.last_ok ? ", ok" : ", failed: " + r.last_error) : "Loaded at start; no reload since.";
  }

  function renderUpstreams(st) {
    const ups = st.stats.upstreams || [];
    fill($("upstreams").tBodies[0], ups.map((u) => {
      const h = health(u);
      return el("tr", null,
        el("td", { class: "name" }, el("span", { class: "mono", text: u.server }),
          el("div", { class: "health h-" + h.replace(" ", "-"), text: h })),
        el("td", { class: "num", text: fmt(u.answers) }),
        el("td", { class: "num", text: fmt(u.failures) }),
        el("td", { class: "num", text: u.answers ? (u.latency_sum_us / u.answers / 1000).toFixed(1) + " ms" : "–" }));
    }), 4);
    prevUp = {};
    for (const u of ups) prevUp[u.server] = u;
  }

  function renderRules(st) {
    const rules = (st.runtime && st.runtime.rules) || [];
    fill($("rules").tBodies[0], rules.map((r) => el("tr", { "data-name": r.name },
      el("td", { class: "name" }, nameNode(r.name)),
      el("td", { text: (r.action === "allow" ? "allow" : "block") + (r.subdomains ? " + below" : "") + " · line " + r.line }),
      el("td", { class: "num" }, el("button", { type: "button", class: "small", text: "Remove",
        onclick: (e) => act("unlist", { name: r.name }, e.target) })))), 3);
  }

  function clock(ms) {
    const d = new Date(ms);
    return d.toLocaleTimeString([], { hour12: false });
  }

  async function refreshRecent() {
    if (!last || !last.recent_kept) {
      $("recent-off").hidden = !last || last.recent_kept;
      fill($("recent").tBodies[0], [], 7);
      return;
    }
    const body = {};
    if ($("filter-blocked").checked) body.blocked = "1";
    if ($("filter-client").value.trim()) body.client = $("filter-client").value.trim();
    if ($("filter-name").value.trim()) body.name = $("filter-name").value.trim();
    const r = await api("recent", body);
    const rows = r.queries.slice(-100).reverse().map((q) => {
      const blocked = q.outcome === "blocked";
      const by = q.list ? (q.rule ? q.rule + " · " : "") + q.list.replace(/^.*\//, "") : "";
      return el("tr", { "data-name": q.name, "data-outcome": q.outcome },
        el("td", { class: "mono", text: clock(q.time_ms) }),
        el("td", { class: "mono", text: q.client || "–" }),
        el("td", { class: "name" }, q.name ? nameNode(q.name) : "–"),
        el("td", { text: q.type }),
        el("td", null, el("span", { class: "outcome o-" + q.outcome, text: q.outcome })),
        el("td", { class: "name muted", text: by, title: q.list || "" }),
        // Local answers (localhost, hosts file, special names) come before any rule.
        el("td", { class: "num" }, q.name && !["local", "refused", "error"].includes(q.outcome) ? (blocked ? allowButton(q.name)
          : el("button", { type: "button", class: "small", text: "Block",
              onclick: (e) => act("block", { name: q.name }, e.target) })) : null));
    });
    fill($("recent").tBodies[0], rows, 7);
  }

  async function refresh() {
    try {
      const st = await api("state");
      last = st;
      $("problem").hidden = true;
      $("main").hidden = false;
      $("login").hidden = true;
      renderStatus(st);
      renderKpis(st);
      renderChart(st.history);
      renderTops(st);
      renderLists(st);
      renderUpstreams(st);
      renderRules(st);
      $("version").textContent = "loophole " + st.version;
      $("updated").textContent = "updated " + new Date(st.now * 1000).toLocaleTimeString([], { hour12: false });
      await refreshRecent();
      document.body.setAttribute("data-polls", String(Number(document.body.getAttribute("data-polls") || 0) + 1));
    } catch (e) {
      if ($("login").hidden) {
        $("problem").textContent = "Cannot reach loophole: " + e.message;
        $("problem").hidden = false;
        $("status").textContent = "not reachable";
        $("status").className = "pill down";
      }
    }
  }

  // ---- why -------------------------------------------------------------------------------
  async function why(ev) {
    ev.preventDefault();
    const name = $("why-name").value.trim();
    if (!name) return;
    const btn = $("why-go");
    btn.disabled = true;
    try {
      const r = await api("why", { name, type: $("why-type").value });
      $("why-out").hidden = false;
      const v = $("why-verdict");
      v.textContent = r.name + " " + r.type + ": " + r.verdict;
      v.className = "verdict " + (r.blocked ? "blocked" : "allowed");
      const rt = $("why-runtime");
      rt.hidden = !r.runtime_rule;
      rt.replaceChildren();
      if (r.runtime_rule) rt.append(el("strong", { text: "Runtime rule (decides): " }), el("span", { class: "where", text: r.runtime_rule }));
      const items = r.rules.map((x) => el("li", null,
        el("strong", { text: x.action + " " }),
        el("span", { class: "where", text: x.file + ":" + x.line + ": " + x.text }),
        el("div", { class: "muted", text: x.kind + " rule, " + x.format + " format, matches " + x.scope + (x.important ? ", $important" : "") })));
      if (!items.length) items.push(el("li", { class: "muted", text: "no list rule matches " + r.name }));
      if (r.more) items.push(el("li", { class: "muted", text: "… and " + r.more + " more" }));
      if (r.error) items.push(el("li", { class: "muted", text: r.error }));
      $("why-rules").replaceChildren(...items);
      $("why-allow").onclick = (e) => act("allow", { name: r.name }, e.target).then(() => why(ev));
      $("why-block").onclick = (e) => act("block", { name: r.name }, e.target).then(() => why(ev));
    } catch (e) {
      toast(e.message);
    } finally {
      btn.disabled = false;
    }
  }

  // ---- leak check --------------------------------------------------------------------------
  async function leak(ev) {
    const btn = ev.target;
    btn.disabled = true;
    btn.textContent = "Checking…";
    try {
      const r = await api("leak-check", {});
      $("leak-out").hidden = false;
      const rep = r.report;
      const verdicts = { 0: "No leak found", 1: "Leak: some DNS questions bypass loophole", 2: "Could not tell" };
      const v = $("leak-verdict");
      v.textContent = verdicts[r.exit] || ("The check ended with code " + r.exit);
      v.className = "verdict " + (r.exit === 0 ? "allowed" : "blocked");
      const items = [];
      if (rep && typeof rep === "object" && Array.isArray(rep.findings)) {
        for (const f of rep.findings) items.push(el("li", null,
          el("span", { class: "sev sev-" + f.severity, text: f.severity }), " ",
          el("span", { text: f.finding || "" }),
          f.fix ? el("div", { class: "muted", text: "Fix: " + f.fix }) : null));
      }
      $("leak-findings").replaceChildren(...items);
      $("leak-raw").textContent = typeof rep === "string" ? rep : JSON.stringify(rep, null, 2);
    } catch (e) {
      toast(e.message);
    } finally {
      btn.disabled = false;
      btn.textContent = "Run the leak check";
    }
  }

  // ---- wiring --------------------------------------------------------------------------------
  function legend() {
    $("legend").replaceChildren(...SERIES.map((k) => el("span", null, el("span", { class: "sw sw-" + k }), k)));
  }

  document.addEventListener("DOMContentLoaded", () => {
    takeToken();
    legend();
    window.addEventListener("resize", () => { if (last) renderChart(last.history); });
    $("btn-pause-5m").onclick = (e) => act("pause", { seconds: "300" }, e.target);
    $("btn-pause-1h").onclick = (e) => act("pause", { seconds: "3600" }, e.target);
    $("btn-pause-forever").onclick = (e) => act("pause", { seconds: "0" }, e.target);
    $("btn-resume").onclick = (e) => act("resume", {}, e.target);
    $("btn-reload").onclick = (e) => act("reload", {}, e.target);
    $("btn-flush").onclick = (e) => act("flush", {}, e.target);
    $("btn-leak").onclick = leak;
    $("why-form").onsubmit = why;
    $("rule-form").onsubmit = (ev) => {
      ev.preventDefault();
      const name = $("rule-name").value.trim();
      const kind = ev.submitter && ev.submitter.value === "block" ? "block" : "allow";
      if (!name) return;
      const body = { name };
      if ($("rule-subs").checked) body.subdomains = "1";
      act(kind, body, ev.submitter).then((r) => { if (r) $("rule-name").value = ""; });
    };
    $("filters").onsubmit = (ev) => ev.preventDefault();
    for (const id of ["filter-blocked", "filter-client", "filter-name"])
      $(id).addEventListener("input", () => refreshRecent().catch((e) => toast(e.message)));
    $("login-form").onsubmit = (ev) => {
      ev.preventDefault();
      const t = $("token").value.trim();
      if (!/^[0-9a-f]{64}$/.test(t)) { toast("a token is 64 hexadecimal digits"); return; }
      sessionStorage.setItem("loophole-token", t);
      token = t;
      start();
    };
    if (!token) { showLogin(); return; }
    start();
  });

  function start() {
    refresh();
    if (!polling) polling = setInterval(refresh, POLL_MS);
  }
})();
