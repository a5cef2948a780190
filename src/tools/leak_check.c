/* leak_check.c - `loophole leak-check`: what the machine is configured to use for DNS, what is
 * observed answering it, and the difference (see leak_check.h for the modules).
 *
 * A short-lived client: blocking I/O, c-ares driven by select, bounded by deadlines so that
 * the whole check ends within about 8 seconds. */
#include "leak_check.h"

#include "loophole/sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

const char *const leak_sev_names[SEV_COUNT] = {"ok",      "info", "warn",
                                               "unknown", "leak", "not-observable"};
const char *const leak_sev_tags[SEV_COUNT] = {"OK", "INFO", "WARN", "UNKNOWN", "LEAK", "NOT SEEN"};
const char *const leak_hop_names[HOP_COUNT] = {"application", "glibc",  "loophole",
                                               "upstream",    "egress", "leak-server"};

void leak_add(leak_report *r, enum leak_sev sev, enum leak_hop hop, const char *fix,
              const char *fmt, ...)
{
    if (r->nf >= LEAK_FINDINGS_MAX) return;
    leak_finding *f = &r->f[r->nf++];
    f->sev = sev;
    f->hop = hop;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->text, sizeof f->text, fmt, ap);
    va_end(ap);
    snprintf(f->fix, sizeof f->fix, "%s", fix ? fix : "");
}

bool leak_hop_flagged(const leak_report *r, enum leak_hop hop, enum leak_sev sev)
{
    for (unsigned i = 0; i < r->nf; i++)
        if (r->f[i].hop == hop && r->f[i].sev >= sev && r->f[i].sev != SEV_UNOBSERVABLE)
            return true;
    return false;
}

void leak_set_add(addr_set *s, const char *a)
{
    if (leak_set_has(s, a) || s->n == LEAK_ADDRS_MAX) return;
    size_t n = strnlen(a, sizeof s->addr[0] - 1);
    memcpy(s->addr[s->n], a, n);
    s->addr[s->n++][n] = 0;
}

bool leak_set_has(const addr_set *s, const char *a)
{
    for (unsigned i = 0; i < s->n; i++)
        if (!strcmp(s->addr[i], a)) return true;
    return false;
}

void leak_random_label(char *out, size_t cap)
{
    uint8_t r[8];
    if (getrandom(r, sizeof r, 0) != sizeof r) {
        uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
        memcpy(r, &t, sizeof r);
    }
    snprintf(out, cap, "lh%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5],
             r[6], r[7]);
}

uint64_t leak_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Things no DNS probe can see, listed every time with how to close them. */
static void judge_unobservable(leak_report *r)
{
    leak_add(r, SEV_UNOBSERVABLE, HOP_APPLICATION,
             r->cfg->canary_names
                 ? "loophole answers Firefox's canary use-application-dns.net with NXDOMAIN; "
                   "turn DoH off in other browsers' settings or block their DoH endpoints with "
                   "a DoH blocklist"
                 : "turn canary-names back on (it switches Firefox's automatic DoH off) and "
                   "block DoH endpoints with a DoH blocklist",
             "browsers' own DNS over HTTPS cannot be seen at the DNS level");
    leak_add(r, SEV_UNOBSERVABLE, HOP_APPLICATION,
             "allow outbound port 53 and 853 only for loophole's user in the firewall",
             "applications with hard-coded resolvers (e.g. 8.8.8.8) or DNS over TLS bypass "
             "resolv.conf and cannot be seen from here");
    leak_add(r, SEV_UNOBSERVABLE, HOP_APPLICATION,
             "disable WebRTC or limit its IP handling in the browser",
             "WebRTC reveals addresses without DNS: not a DNS leak, but the same privacy goal");
}

static void verdict(leak_report *r)
{
    bool leak = false, unknown = false;
    for (unsigned i = 0; i < r->nf; i++) {
        leak_hop_view *h = &r->hops[r->f[i].hop];
        enum leak_sev s = r->f[i].sev;
        leak = leak || s == SEV_LEAK;
        unknown = unknown || s == SEV_UNKNOWN;
        if (s == SEV_UNOBSERVABLE) continue; /* outside the path the diagram draws */
        if (!h->marked || s > h->mark) h->mark = s;
        h->marked = true;
    }
    r->verdict = leak ? "leak" : unknown ? "unknown" : "clean";
    r->exit_code = leak ? 1 : unknown ? 2 : 0;
}

/* One line per hop for the diagram, from the facts already collected. */
static void describe_hops(leak_report *r)
{
    const leak_configured *c = &r->conf;
    const leak_observed *o = &r->obs;
    char a[64];
    lh_sbuf b;
    lh_sbuf_init(&b, r->hops[HOP_APPLICATION].detail, sizeof r->hops[0].detail);
    lh_sbuf_printf(&b, "getaddrinfo(canary) -> %s",
                   !o->os_ran          ? "no answer"
                   : o->os.gai_rc == 0 ? o->os.gai_addr
                                       : "error");
    if (o->os_ran && !strcmp(o->os.gai_addr, o->canary_expect)) lh_sbuf_printf(&b, " (loophole)");
    lh_sbuf_init(&b, r->hops[HOP_GLIBC].detail, sizeof r->hops[0].detail);
    lh_sbuf_printf(&b, "%s:", c->resolv_path);
    for (unsigned i = 0; i < c->nresolv_ns; i++)
        lh_sbuf_printf(&b, " %s%s", c->resolv_ns[i],
                       leak_leads_to_loophole(r, c->resolv_ns[i]) ? " (loophole)" : "");
    lh_sbuf_printf(&b, "%s; hosts: %s", c->nresolv_ns ? "" : " none",
                   c->nsswitch_hosts[0] ? c->nsswitch_hosts : "?");
    lh_sbuf_init(&b, r->hops[HOP_LOOPHOLE].detail, sizeof r->hops[0].detail);
    lh_addr_format(&c->listen[0], a, sizeof a);
    if (c->from_daemon)
        lh_sbuf_printf(&b, "%s, the running daemon (pid %ld)", a, c->daemon.pid);
    else
        lh_sbuf_printf(&b, "%s, from the configuration (no daemon asked)", a);
    lh_sbuf_init(&b, r->hops[HOP_UPSTREAM].detail, sizeof r->hops[0].detail);
    for (unsigned i = 0; i < c->nup; i++)
        if (!strcmp(c->up[i].zone, "."))
            lh_sbuf_printf(&b, "%s%s %s", b.len ? ", " : "", c->up[i].label, c->up[i].transport);
    if (!b.len) lh_sbuf_printf(&b, "none");
    lh_sbuf_init(&b, r->hops[HOP_EGRESS].detail, sizeof r->hops[0].detail);
    for (unsigned k = 0; k < o->paths[0].egress.n; k++)
        lh_sbuf_printf(&b, "%s%s", k ? " " : "", o->paths[0].egress.addr[k]);
    if (!b.len) lh_sbuf_printf(&b, "none seen");
    lh_sbuf_init(&b, r->hops[HOP_LEAK_SERVER].detail, sizeof r->hops[0].detail);
    if (r->cfg->probe_zone) {
        lh_sbuf_printf(&b, "%s", r->cfg->probe_zone);
        for (unsigned k = 0; k < o->leak_server.n; k++)
            lh_sbuf_printf(&b, "%s%s", k ? " " : " at ", o->leak_server.addr[k]);
    } else {
        lh_sbuf_printf(&b, "public whoami names (no --probe-zone)");
    }
}

int lh_leak_check(const lh_config *cfg, bool json)
{
    leak_report *r = calloc(1, sizeof *r);
    if (!r || ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
        fprintf(stderr, "loophole leak-check: out of memory\n");
        free(r);
        return 2;
    }
    r->cfg = cfg;
    leak_configured_collect(r);
    leak_observe(r);
    leak_judge_observed(r);
    judge_unobservable(r);
    verdict(r);
    describe_hops(r);
    /* Sized for the worst case: every finding and every path's probes, each at its longest. */
    static char out[384 * 1024];
    lh_sbuf b;
    lh_sbuf_init(&b, out, sizeof out);
    if (json)
        leak_render_json(r, &b);
    else
        leak_render_text(r, isatty(STDOUT_FILENO) && !getenv("NO_COLOR"), &b);
    fwrite(out, 1, b.len, stdout);
    int code = r->exit_code;
    if (b.overflow) {
        fprintf(stderr, "loophole leak-check: the report did not fit its buffer\n");
        code = 2;
    }
    ares_library_cleanup();
    free(r);
    return code;
}
