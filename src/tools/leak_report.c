/* leak_report.c - the two renderings of one leak_report: text for people (a verdict banner, the
 * path as seen with the leaking hop marked, then the facts and findings) and JSON for programs
 * (docs/leak-check.schema.json). Both walk the same fields in the same order; nothing is
 * computed here that the other rendering would not show. */
#include "leak_check.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>

/* ---- shared ---------------------------------------------------------------------------- */

static const char *probe_type(uint16_t t)
{
    return t == LH_TYPE_A ? "A" : t == LH_TYPE_AAAA ? "AAAA" : "TXT";
}

static const char *canary_gai(const leak_observed *o)
{
    return !o->os_ran ? "" : o->os.gai_rc == 0 ? o->os.gai_addr : gai_strerror(o->os.gai_rc);
}

static unsigned count_sev(const leak_report *r, enum leak_sev s)
{
    unsigned n = 0;
    for (unsigned i = 0; i < r->nf; i++)
        n += r->f[i].sev == s;
    return n;
}

/* ---- text -------------------------------------------------------------------------------- */

/* A tag such as "[LEAK]", in colour on a terminal (the brackets keep it readable without). */
static void tag(lh_sbuf *b, bool colour, enum leak_sev s, bool marked)
{
    static const char *const colours[SEV_COUNT] = {"32", "36", "33", "35", "1;31", "2"};
    static const char *const short_tags[SEV_COUNT] = {" ok ", "info", "WARN", " ?? ", "LEAK", ""};
    const char *t = marked ? short_tags[s] : " -- ";
    if (colour && marked)
        lh_sbuf_printf(b, "[\033[%sm%s\033[0m]", colours[s], t);
    else
        lh_sbuf_printf(b, "[%s]", t);
}

static void text_banner(const leak_report *r, bool colour, lh_sbuf *b)
{
    const char *v = r->exit_code == 1   ? "LEAK"
                    : r->exit_code == 2 ? "COULD NOT TELL"
                                        : "NO LEAK SEEN";
    lh_sbuf_printf(b, "loophole leak check\n\n");
    if (colour)
        lh_sbuf_printf(b, "\033[1;%sm", r->exit_code == 1 ? "31" : r->exit_code ? "35" : "32");
    lh_sbuf_printf(b, "VERDICT: %s (exit %d)", v, r->exit_code);
    if (colour) lh_sbuf_printf(b, "\033[0m");
    lh_sbuf_printf(b, " - %u leak(s), %u unknown, %u warning(s)\n\n", count_sev(r, SEV_LEAK),
                   count_sev(r, SEV_UNKNOWN), count_sev(r, SEV_WARN));
}

/* The path drawn top to bottom, one hop a line, the worst finding's mark in front of it. */
static void text_path(const leak_report *r, bool colour, lh_sbuf *b)
{
    static const char *const titles[HOP_COUNT] = {"application", "glibc",  "loophole",
                                                  "upstream(s)", "egress", "leak server"};
    lh_sbuf_printf(b, "Path as seen\n");
    for (unsigned h = 0; h < HOP_COUNT; h++) {
        const leak_hop_view *v = &r->hops[h];
        if (h) lh_sbuf_printf(b, "           |\n");
        lh_sbuf_printf(b, "  ");
        tag(b, colour, v->mark, v->marked);
        lh_sbuf_printf(b, " %-12s %s%s\n", titles[h], v->detail,
                       v->marked && v->mark == SEV_LEAK ? "   <-- leaks here" : "");
    }
    lh_sbuf_printf(b, "\n");
}

static void text_configured(const leak_report *r, lh_sbuf *b)
{
    const leak_configured *c = &r->conf;
    char a[64];
    lh_sbuf_printf(b, "Configured\n");
    if (c->from_daemon)
        lh_sbuf_printf(b, "  %-26s the running daemon, pid %ld, through %s%s%s\n",
                       "loophole settings from", c->daemon.pid, c->daemon.socket,
                       c->daemon.config_file[0] ? ", config " : "", c->daemon.config_file);
    else
        lh_sbuf_printf(b, "  %-26s the check's own configuration: %s\n", "loophole settings from",
                       c->daemon.error);
    lh_sbuf_printf(b, "  %-26s", "loophole listens on");
    for (unsigned i = 0; i < c->nlisten; i++) {
        lh_addr_format(&c->listen[i], a, sizeof a);
        lh_sbuf_printf(b, " %s", a);
    }
    lh_sbuf_printf(b, "\n  %-26s %u upstream(s), %s\n", "loophole forwards to", c->nup,
                   c->upstream_source);
    for (unsigned i = 0; i < c->nup; i++) {
        const char *privacy = leak_upstream_privacy(&c->up[i]);
        bool plain = !strcmp(privacy, "plain");
        lh_sbuf_printf(b, "      %-24s %s%s%s%s, zone %s, from %s\n", c->up[i].label,
                       c->up[i].transport, plain ? "" : " (", plain ? "" : privacy,
                       plain                               ? ""
                       : !strcmp(privacy, "opportunistic") ? ": not private)"
                                                           : ")",
                       c->up[i].zone, c->up[i].source);
    }
    lh_sbuf_printf(b, "  %-26s", "system nameservers");
    for (unsigned i = 0; i < c->nresolv_ns; i++)
        lh_sbuf_printf(b, " %s%s", c->resolv_ns[i],
                       leak_leads_to_loophole(r, c->resolv_ns[i]) ? " (loophole)" : "");
    lh_sbuf_printf(b, "%s (%s)\n", c->nresolv_ns ? "" : " none", c->resolv_path);
    lh_sbuf_printf(b, "  %-26s %s\n", "nsswitch hosts",
                   c->nsswitch_hosts[0] ? c->nsswitch_hosts : "(no hosts: line)");
    if (c->has_resolved) {
        lh_sbuf_printf(b, "  %-26s", "systemd-resolved servers");
        for (unsigned i = 0; i < c->nresolved_ns; i++)
            lh_sbuf_printf(b, " %s", c->resolved_ns[i]);
        lh_sbuf_printf(b, "\n");
    }
}

static void text_path_probes(const leak_report *r, unsigned i, lh_sbuf *b)
{
    static const char *const heads[VIA_COUNT] = {"egress through loophole", "egress of upstream",
                                                 "leak server asked at", "unused address"};
    const leak_observed *o = &r->obs;
    const leak_path *pa = &o->paths[i];
    char head[96];
    snprintf(head, sizeof head, "%s %s", heads[pa->via], pa->via == VIA_LOOPHOLE ? "" : pa->label);
    lh_sbuf_printf(b, "  %-26s", head);
    for (unsigned k = 0; k < pa->egress.n; k++)
        lh_sbuf_printf(b, " %s", pa->egress.addr[k]);
    lh_sbuf_printf(b, "%s\n", pa->egress.n ? "" : " (no probe answered)");
    for (unsigned k = 0; k < o->nprobes; k++) {
        const leak_probe *p = &o->probes[k];
        if (p->path != i) continue;
        /* RA and AA matter where an authoritative server or nothing should answer */
        bool direct = pa->via == VIA_LEAK_SERVER || pa->via == VIA_UNUSED;
        lh_sbuf_printf(b, "      %-48s %-4s %s%s%s", p->name, probe_type(p->type), p->result,
                       direct && p->answered && p->ra ? " (recursion available)" : "",
                       direct && p->answered && p->aa ? " (authoritative)" : "");
        for (unsigned j = 0; j < p->found.n; j++)
            lh_sbuf_printf(b, "%s%s", j ? ", " : ": ", p->found.addr[j]);
        lh_sbuf_printf(b, "\n");
    }
}

static void text_observed(const leak_report *r, lh_sbuf *b)
{
    const leak_observed *o = &r->obs;
    lh_sbuf_printf(b, "\nObserved\n  %-26s %s -> %s (loophole answers %s)\n",
                   "OS path (getaddrinfo)", o->canary, o->os_ran ? canary_gai(o) : "no answer",
                   o->canary_expect);
    for (unsigned i = 0; i < o->npaths; i++)
        text_path_probes(r, i, b);
    if (o->intercept_tested)
        lh_sbuf_printf(b, "  %-26s %s\n", "interception", o->intercepted ? "yes" : "none seen");
}

static void text_findings(const leak_report *r, lh_sbuf *b)
{
    lh_sbuf_printf(b, "\nFindings\n");
    for (unsigned i = 0; i < r->nf; i++) {
        lh_sbuf_printf(b, "  %-8s %s\n", leak_sev_tags[r->f[i].sev], r->f[i].text);
        if (r->f[i].fix[0]) lh_sbuf_printf(b, "  %-8s fix: %s\n", "", r->f[i].fix);
    }
    lh_sbuf_printf(b, "\nVerdict: %s (exit %d)%s\n",
                   r->exit_code == 1   ? "LEAK"
                   : r->exit_code == 2 ? "COULD NOT TELL"
                                       : "NO LEAK SEEN",
                   r->exit_code,
                   r->exit_code == 0 ? ": the NOT SEEN items above are outside what DNS can show"
                                     : "");
}

void leak_render_text(const leak_report *r, bool colour, lh_sbuf *b)
{
    text_banner(r, colour, b);
    text_path(r, colour, b);
    text_configured(r, b);
    text_observed(r, b);
    text_findings(r, b);
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static void json_addrs(lh_sbuf *b, const addr_set *s)
{
    lh_sbuf_putc(b, '[');
    for (unsigned i = 0; i < s->n; i++) {
        if (i) lh_sbuf_putc(b, ',');
        lh_sbuf_json_str(b, s->addr[i]);
    }
    lh_sbuf_putc(b, ']');
}

static void json_strs(lh_sbuf *b, const char (*list)[INET6_ADDRSTRLEN], unsigned n)
{
    lh_sbuf_putc(b, '[');
    for (unsigned i = 0; i < n; i++) {
        if (i) lh_sbuf_putc(b, ',');
        lh_sbuf_json_str(b, list[i]);
    }
    lh_sbuf_putc(b, ']');
}

static void json_path(const leak_report *r, lh_sbuf *b)
{
    lh_sbuf_printf(b, "\"path\":[");
    for (unsigned h = 0; h < HOP_COUNT; h++) {
        const leak_hop_view *v = &r->hops[h];
        lh_sbuf_printf(b, "%s{\"hop\":\"%s\",\"detail\":", h ? "," : "", leak_hop_names[h]);
        lh_sbuf_json_str(b, v->detail);
        lh_sbuf_printf(b, ",\"status\":\"%s\"}", v->marked ? leak_sev_names[v->mark] : "none");
    }
    lh_sbuf_printf(b, "]");
}

static void json_daemon(const leak_configured *c, lh_sbuf *b)
{
    lh_sbuf_printf(
        b, "\"daemon\":{\"reached\":%s,\"control_socket\":", c->daemon.reached ? "true" : "false");
    lh_sbuf_json_str(b, c->daemon.socket);
    lh_sbuf_printf(b, ",\"pid\":%ld,\"config_file\":", c->daemon.reached ? c->daemon.pid : 0L);
    lh_sbuf_json_str(b, c->daemon.config_file);
    lh_sbuf_printf(b, ",\"error\":");
    lh_sbuf_json_str(b, c->daemon.error);
    lh_sbuf_printf(b, "}");
}

static void json_configured(const leak_report *r, lh_sbuf *b)
{
    const leak_configured *c = &r->conf;
    char a[64];
    lh_sbuf_printf(b, "\"configured\":{\"source\":\"%s\",", c->from_daemon ? "daemon" : "config");
    json_daemon(c, b);
    lh_sbuf_printf(b, ",\"loophole_listen\":[");
    for (unsigned i = 0; i < c->nlisten; i++) {
        lh_addr_format(&c->listen[i], a, sizeof a);
        if (i) lh_sbuf_putc(b, ',');
        lh_sbuf_json_str(b, a);
    }
    lh_sbuf_printf(b, "],\"loophole_upstreams\":[");
    for (unsigned i = 0, n = 0; i < c->nup; i++) {
        if (strcmp(c->up[i].zone, ".")) continue;
        if (n++) lh_sbuf_putc(b, ',');
        lh_sbuf_json_str(b, c->up[i].label);
    }
    lh_sbuf_printf(b, "],\"upstreams\":[");
    for (unsigned i = 0; i < c->nup; i++) {
        const leak_upstream *u = &c->up[i];
        lh_sbuf_printf(b, "%s{\"server\":\"%s\",\"transport\":\"%s\",\"privacy\":\"%s\",\"zone\":",
                       i ? "," : "", u->label, u->transport, leak_upstream_privacy(u));
        lh_sbuf_json_str(b, u->zone);
        lh_sbuf_printf(b, ",\"source\":\"%s\"}", u->source);
    }
    lh_sbuf_printf(b, "],\"upstreams_from\":");
    lh_sbuf_json_str(b, c->upstream_source);
    lh_sbuf_printf(b, ",\"resolv_conf\":");
    lh_sbuf_json_str(b, c->resolv_path);
    lh_sbuf_printf(b, ",\"system_nameservers\":");
    json_strs(b, c->resolv_ns, c->nresolv_ns);
    lh_sbuf_printf(b, ",\"nsswitch_hosts\":");
    lh_sbuf_json_str(b, c->nsswitch_hosts);
    lh_sbuf_printf(b, ",\"systemd_resolved_servers\":");
    json_strs(b, c->resolved_ns, c->nresolved_ns);
    lh_sbuf_printf(b, "}");
}

static void json_probes(const leak_observed *o, unsigned path, lh_sbuf *b)
{
    bool first = true;
    for (unsigned k = 0; k < o->nprobes; k++) {
        const leak_probe *p = &o->probes[k];
        if (p->path != path) continue;
        lh_sbuf_printf(b, "%s{\"name\":", first ? "" : ",");
        first = false;
        lh_sbuf_json_str(b, p->name);
        lh_sbuf_printf(b, ",\"type\":\"%s\",\"result\":", probe_type(p->type));
        lh_sbuf_json_str(b, p->result);
        lh_sbuf_printf(b, ",\"answered\":%s,\"recursion_available\":%s,\"authoritative\":%s",
                       p->answered ? "true" : "false", p->answered && p->ra ? "true" : "false",
                       p->answered && p->aa ? "true" : "false");
        lh_sbuf_printf(b, ",\"addresses\":");
        json_addrs(b, &p->found);
        lh_sbuf_putc(b, '}');
    }
}

static void json_observed(const leak_report *r, lh_sbuf *b)
{
    const leak_observed *o = &r->obs;
    lh_sbuf_printf(b, "\"observed\":{\"canary\":{\"name\":");
    lh_sbuf_json_str(b, o->canary);
    lh_sbuf_printf(b, ",\"expected\":\"%s\",\"answered\":%s,\"getaddrinfo\":", o->canary_expect,
                   o->os_ran ? "true" : "false");
    lh_sbuf_json_str(b, canary_gai(o));
    lh_sbuf_printf(b, ",\"res_query\":");
    lh_sbuf_json_str(b, o->os_ran && o->os.rq_len > 0 ? o->os.rq_addr : "");
    lh_sbuf_printf(b, "},\"paths\":[");
    for (unsigned i = 0; i < o->npaths; i++) {
        const leak_path *pa = &o->paths[i];
        lh_sbuf_printf(b, "%s{\"via\":\"%s\",\"server\":", i ? "," : "", leak_via_names[pa->via]);
        lh_sbuf_json_str(b, pa->label);
        lh_sbuf_printf(b, ",\"egress\":");
        json_addrs(b, &pa->egress);
        lh_sbuf_printf(b, ",\"probes\":[");
        json_probes(o, i, b);
        lh_sbuf_printf(b, "]}");
    }
    lh_sbuf_printf(b, "],\"interception\":{\"tested\":%s,\"intercepted\":%s,\"leak_server\":",
                   o->intercept_tested ? "true" : "false", o->intercepted ? "true" : "false");
    json_addrs(b, &o->leak_server);
    lh_sbuf_printf(b, ",\"answered_by\":");
    json_addrs(b, &o->interceptors);
    lh_sbuf_printf(b, "}}");
}

static void json_findings(const leak_report *r, lh_sbuf *b)
{
    lh_sbuf_printf(b, "\"findings\":[");
    for (unsigned i = 0; i < r->nf; i++) {
        lh_sbuf_printf(b, "%s{\"severity\":\"%s\",\"hop\":\"%s\",\"finding\":", i ? "," : "",
                       leak_sev_names[r->f[i].sev], leak_hop_names[r->f[i].hop]);
        lh_sbuf_json_str(b, r->f[i].text);
        lh_sbuf_printf(b, ",\"fix\":");
        lh_sbuf_json_str(b, r->f[i].fix);
        lh_sbuf_putc(b, '}');
    }
    lh_sbuf_printf(b, "]");
}

void leak_render_json(const leak_report *r, lh_sbuf *b)
{
    lh_sbuf_printf(b, "{\"report_version\":2,\"verdict\":\"%s\",\"exit_code\":%d,", r->verdict,
                   r->exit_code);
    json_path(r, b);
    lh_sbuf_putc(b, ',');
    json_configured(r, b);
    lh_sbuf_putc(b, ',');
    json_observed(r, b);
    lh_sbuf_putc(b, ',');
    json_findings(r, b);
    lh_sbuf_printf(b, "}\n");
}
