/* leak_judge.c - what the observations mean: the canary's answer, the egress through loophole
 * against its upstreams' own, and whether anything answered in the leak server's place. */
#include "leak_check.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>

#define FIX_SYSTEM                                                                                 \
    "make loophole the only nameserver applications use (docs/system-resolver.md), then run the "  \
    "check again"
#define FIX_RUNNING "check that loophole runs: 'loophole health'"
#define FIX_OFFLINE                                                                                \
    "run a leak server you control and pass --probe-zone (docs/leak-check.md), or check that the " \
    "network is reachable"
#define FIX_INTERCEPT                                                                              \
    "find what redirects port 53 (the router, a VPN client, a captive portal, the ISP) and turn "  \
    "it off, or use an encrypted upstream, which cannot be redirected unseen"

static void judge_os_path(leak_report *r)
{
    const leak_observed *o = &r->obs;
    if (!o->os_ran) {
        leak_add(r, SEV_UNKNOWN, HOP_LOOPHOLE, FIX_RUNNING,
                 "the system resolver gave no answer for the canary %s within %d s", o->canary,
                 LEAK_OS_MS / 1000);
        return;
    }
    const leak_os_result *os = &o->os;
    if (os->gai_rc == 0 && !strcmp(os->gai_addr, o->canary_expect))
        leak_add(r, SEV_OK, HOP_APPLICATION, NULL,
                 "applications (getaddrinfo) reach loophole: the canary got loophole's answer %s",
                 os->gai_addr);
    else if (os->gai_rc == 0)
        leak_add(r, SEV_LEAK, HOP_GLIBC, FIX_SYSTEM,
                 "getaddrinfo answered the canary %s with %s, not loophole's %s: another "
                 "resolver answers applications",
                 o->canary, os->gai_addr, o->canary_expect);
    else if (os->gai_rc == EAI_NONAME || os->gai_rc == EAI_NODATA)
        leak_add(r, SEV_LEAK, HOP_GLIBC, FIX_SYSTEM,
                 "getaddrinfo says the canary %s does not exist: a resolver other than loophole "
                 "answered applications",
                 o->canary);
    else
        leak_add(r, SEV_UNKNOWN, HOP_LOOPHOLE, FIX_RUNNING,
                 "getaddrinfo got no answer for the canary %s (%s)", o->canary,
                 gai_strerror(os->gai_rc));
    if (os->rq_len > 0 && strcmp(os->rq_addr, o->canary_expect))
        leak_add(r, SEV_LEAK, HOP_GLIBC, FIX_SYSTEM,
                 "res_query (the path dig-like programs use) got %s for the canary, not "
                 "loophole's %s",
                 os->rq_addr[0] ? os->rq_addr : "no address", o->canary_expect);
    else if (os->rq_len < 0 && os->rq_herrno == HOST_NOT_FOUND)
        leak_add(r, SEV_LEAK, HOP_GLIBC, FIX_SYSTEM,
                 "res_query got NXDOMAIN for the canary: a nameserver in resolv.conf that is not "
                 "loophole answered");
}

/* Why no probe through loophole reported an address: each probe's result, in one line. */
static void loophole_probe_results(const leak_observed *o, char *out, size_t cap)
{
    lh_sbuf b;
    lh_sbuf_init(&b, out, cap);
    for (unsigned i = 0; i < o->nprobes; i++)
        if (o->probes[i].path == 0)
            lh_sbuf_printf(&b, "%s%s: %s", b.len ? "; " : "", o->probes[i].name,
                           o->probes[i].result);
}

static void judge_egress(leak_report *r)
{
    const leak_observed *o = &r->obs;
    const leak_path *lh = &o->paths[0];
    addr_set direct = {0};
    unsigned probed = 0;
    for (unsigned i = 1; i < o->npaths; i++) {
        if (o->paths[i].via != VIA_UPSTREAM) continue;
        probed += o->paths[i].egress.n > 0;
        for (unsigned k = 0; k < o->paths[i].egress.n; k++)
            leak_set_add(&direct, o->paths[i].egress.addr[k]);
    }
    if (!lh->egress.n) {
        char why[400];
        loophole_probe_results(o, why, sizeof why);
        leak_add(r, SEV_UNKNOWN, HOP_LEAK_SERVER, FIX_OFFLINE,
                 "no egress probe through loophole (%s) reported a resolver address (%s)",
                 lh->label, why);
        return;
    }
    leak_add(r, SEV_OK, HOP_LEAK_SERVER, NULL,
             "the authoritative side (%s) answered the probes through loophole",
             r->cfg->probe_zone ? r->cfg->probe_zone : "the public whoami names");
    if (!probed) {
        leak_add(r, SEV_UNKNOWN, HOP_UPSTREAM, FIX_OFFLINE,
                 "queries through loophole egress from %s, but none of loophole's upstreams could "
                 "be probed directly to compare",
                 lh->egress.addr[0]);
        return;
    }
    bool leak = false;
    for (unsigned k = 0; k < lh->egress.n; k++) {
        if (leak_set_has(&direct, lh->egress.addr[k])) continue;
        leak = true;
        leak_add(r, SEV_LEAK, HOP_EGRESS,
                 "check that the running loophole uses this configuration (restart it), and "
                 "look for a VPN route or a transparent DNS proxy that redirects port 53",
                 "queries through loophole reach the authoritative side from %s, which none of "
                 "loophole's upstreams reports when asked directly",
                 lh->egress.addr[k]);
    }
    if (!leak)
        leak_add(r, SEV_OK, HOP_EGRESS, NULL,
                 "queries through loophole egress only where its upstreams do (%u resolver "
                 "address(es))",
                 lh->egress.n);
}

/* Did this answer come from whatever sits at the path's address, or from a resolver answering
 * in its place? The leak server never offers recursion; it REFUSES names outside its zone and
 * answers those inside authoritatively. At an unused address nothing should answer at all. */
static bool answered_in_place(const leak_observed *o, const leak_probe *p)
{
    enum leak_via via = o->paths[p->path].via;
    if (!p->answered || (via != VIA_LEAK_SERVER && via != VIA_UNUSED)) return false;
    if (via == VIA_UNUSED) return true;
    bool outside = strstr(p->name, LEAK_OUTSIDE_LABEL) != NULL;
    return p->ra || (outside ? p->rcode != 5 /* REFUSED */ : !p->aa);
}

static void intercept_finding(leak_report *r, const leak_path *pa, const leak_probe *p)
{
    char egress[200], how[128];
    lh_sbuf b;
    lh_sbuf_init(&b, egress, sizeof egress);
    for (unsigned k = 0; k < r->obs.interceptors.n; k++)
        lh_sbuf_printf(&b, "%s%s", k ? ", " : "", r->obs.interceptors.addr[k]);
    snprintf(how, sizeof how, "%s%s%s%s", p->rcode || p->ra ? " (" : "", p->rcode ? p->result : "",
             p->rcode && p->ra ? ", " : "",
             p->ra      ? "recursion available)"
             : p->rcode ? ")"
                        : "");
    leak_add(r, SEV_LEAK, HOP_UPSTREAM, FIX_INTERCEPT,
             "DNS is intercepted: %s sent to %s%s was answered%s by a resolver%s%s", p->name,
             pa->label,
             pa->via == VIA_UNUSED ? ", where no DNS server runs," : " (the leak server)", how,
             b.len ? " that reaches the authoritative side from " : "", egress);
}

/* Finds what answered in place of the leak server or at the unused addresses; counts the
 * leak server's own answers and the unused-address probes sent. */
static void scan_interception(leak_observed *o, unsigned *genuine, unsigned *unused_sent)
{
    *genuine = *unused_sent = 0;
    for (unsigned i = 0; i < o->nprobes; i++) {
        const leak_probe *p = &o->probes[i];
        enum leak_via via = o->paths[p->path].via;
        if (via == VIA_UNUSED && p->sent) ++*unused_sent;
        if (answered_in_place(o, p)) {
            o->intercepted = true;
            for (unsigned k = 0; k < p->found.n; k++)
                leak_set_add(&o->interceptors, p->found.addr[k]);
        } else if (via == VIA_LEAK_SERVER && p->answered) {
            ++*genuine;
        }
    }
}

static void judge_interception(leak_report *r)
{
    leak_observed *o = &r->obs;
    unsigned genuine, unused_sent;
    scan_interception(o, &genuine, &unused_sent); /* first: every finding names all egresses */
    o->intercept_tested = genuine > 0 || unused_sent > 0 || o->intercepted;
    for (unsigned i = 0; i < o->nprobes; i++)
        if (answered_in_place(o, &o->probes[i]))
            intercept_finding(r, &o->paths[o->probes[i].path], &o->probes[i]);
    if (o->intercepted) return;
    const char *unused = unused_sent ? ", and nothing answered at " LEAK_UNUSED_V4
                                       " or " LEAK_UNUSED_V6 " (no DNS server runs there)"
                                     : "";
    if (genuine)
        leak_add(r, SEV_OK, HOP_UPSTREAM, NULL,
                 "no DNS interception seen: questions sent straight to the leak server were "
                 "answered by the leak server itself%s",
                 unused);
    else if (!r->cfg->probe_zone)
        leak_add(r, SEV_INFO, HOP_UPSTREAM, "pass --probe-zone with a leak server you run",
                 "DNS interception only partly tested: no leak server to ask straight "
                 "(--probe-zone)%s",
                 unused);
    else
        leak_add(r, SEV_INFO, HOP_UPSTREAM,
                 "let the check reach the leak server's address on port 53",
                 "DNS interception only partly tested: %s%s",
                 o->leak_server.n
                     ? "the leak server gave no answer when asked directly (a firewall?)"
                     : "the leak server's address (ns1 of the probe zone) could not be resolved",
                 unused);
}

void leak_judge_observed(leak_report *r)
{
    judge_os_path(r);
    judge_egress(r);
    judge_interception(r);
}
