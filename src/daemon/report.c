/* report.c - see report.h. */
#include "loophole/report.h"
#include "loophole/dnssec.h"
#include "loophole/querylog.h"
#include "loophole/admin.h"
#include "loophole/runtime.h"

#include <ldns/ldns.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *rcode_name(unsigned rc)
{
    const ldns_lookup_table *t = ldns_lookup_by_id(ldns_rcodes, (int)rc);
    return t && t->name ? t->name : NULL;
}

static const char *qtype_name(unsigned i)
{
    if (i >= LH_STATS_QTYPES) return "other";
    if (lh_stats_qtypes[i] == LH_TYPE_ANY) return "ANY"; /* ldns has no name for 255 (TYPE255) */
    const ldns_rr_descriptor *d = ldns_rr_descript(lh_stats_qtypes[i]);
    return d && d->_name ? d->_name : "?";
}

static void iso_time(uint64_t unix_s, char *out, size_t cap)
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static uint64_t total_queries(const lh_counters *st)
{
    return st->queries_udp + st->queries_tcp;
}

static const lh_list_info *list_at(const lh_server *s, size_t i)
{
    return s->policy && i < s->policy->blocks.nlists ? &s->policy->blocks.lists[i] : NULL;
}

/* Every counter of lh_counters before the top tables is a uint64_t that adds up across loops;
 * the reload and start fields after them are the main loop's alone. */
#define SUMMED_COUNTERS (offsetof(lh_counters, top_blocked) / sizeof(uint64_t))
_Static_assert(offsetof(lh_counters, top_blocked) % sizeof(uint64_t) == 0, "counter layout");

static void add_u64(uint64_t *a, const uint64_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        a[i] += b[i];
}

void lh_snapshot_add(lh_snapshot *a, const lh_snapshot *b)
{
    add_u64((uint64_t *)&a->c, (const uint64_t *)&b->c, SUMMED_COUNTERS);
    lh_top_merge(&a->c.top_blocked, &b->c.top_blocked);
    lh_top_merge(&a->c.top_clients, &b->c.top_clients);
    a->cache_on = a->cache_on || b->cache_on;
    a->cache_entries += b->cache_entries;
    a->cache_bytes += b->cache_bytes;
    a->cache_max += b->cache_max;
    add_u64((uint64_t *)&a->cache, (const uint64_t *)&b->cache, sizeof a->cache / sizeof(uint64_t));
    for (unsigned k = 0; k < b->nupstreams && k < a->nupstreams; k++)
        add_u64((uint64_t *)&a->up[k], (const uint64_t *)&b->up[k],
                sizeof a->up[k] / sizeof(uint64_t));
    a->qlog_dropped += b->qlog_dropped;
    a->tcp_connections += b->tcp_connections;
    /* strips > carries > unknown: one loop that saw stripping is enough to say so */
    if (b->dnssec_path == LH_DNSSEC_PATH_STRIPS || a->dnssec_path == LH_DNSSEC_PATH_UNKNOWN)
        a->dnssec_path = b->dnssec_path;
    a->dnssec_probes += b->dnssec_probes;
    a->dnssec_probes_stripped += b->dnssec_probes_stripped;
    a->dnssec_downgraded += b->dnssec_downgraded;
    a->dnssec_subqueries += b->dnssec_subqueries;
}

static const char *const dnssec_mode_names[] = {"off", "process", "validate", "allow-downgrade"};

/* One line: the mode, the verdicts, bogus by reason, and what the path probe found. */
static void dnssec_text(const lh_server *s, const lh_snapshot *g, lh_sbuf *b)
{
    const lh_counters *st = &g->c;
    lh_sbuf_printf(b, "dnssec      %s; path %s", dnssec_mode_names[s->cfg->dnssec],
                   g->dnssec_path == LH_DNSSEC_PATH_STRIPS ? "STRIPS DNSSEC"
                                                           : lh_dnssec_path_names[g->dnssec_path]);
    for (unsigned i = 1; i < LH_DNSSEC_V_COUNT; i++) {
        lh_sbuf_printf(b, "; %s %llu", lh_dnssec_v_names[i], (unsigned long long)st->dnssec[i]);
        if (i != LH_DNSSEC_V_BOGUS) continue;
        for (unsigned r = 0; r < LH_DNSSEC_REASONS && r < LH_STATS_DNSSEC_REASONS; r++)
            if (st->dnssec_bogus[r])
                lh_sbuf_printf(b, " (%s %llu)", lh_dnssec_reason_key((enum lh_dnssec_reason)r),
                               (unsigned long long)st->dnssec_bogus[r]);
    }
    lh_sbuf_printf(b, "; downgraded %llu; DS/DNSKEY queries %llu; probes %llu, %llu stripped\n",
                   (unsigned long long)g->dnssec_downgraded,
                   (unsigned long long)g->dnssec_subqueries, (unsigned long long)g->dnssec_probes,
                   (unsigned long long)g->dnssec_probes_stripped);
}

static void dnssec_json(const lh_server *s, const lh_snapshot *g, lh_sbuf *b)
{
    const lh_counters *st = &g->c;
    lh_sbuf_printf(b, "\"dnssec\":{\"mode\":\"%s\",\"path\":\"%s\",\"stripping\":%s",
                   dnssec_mode_names[s->cfg->dnssec], lh_dnssec_path_names[g->dnssec_path],
                   g->dnssec_path == LH_DNSSEC_PATH_STRIPS ? "true" : "false");
    for (unsigned i = 1; i < LH_DNSSEC_V_COUNT; i++)
        lh_sbuf_printf(b, ",\"%s\":%llu", lh_dnssec_v_names[i], (unsigned long long)st->dnssec[i]);
    lh_sbuf_printf(b, ",\"bogus_by_reason\":{");
    bool first = true;
    for (unsigned r = 0; r < LH_DNSSEC_REASONS && r < LH_STATS_DNSSEC_REASONS; r++) {
        if (!st->dnssec_bogus[r]) continue;
        lh_sbuf_printf(b, "%s\"%s\":%llu", first ? "" : ",",
                       lh_dnssec_reason_key((enum lh_dnssec_reason)r),
                       (unsigned long long)st->dnssec_bogus[r]);
        first = false;
    }
    lh_sbuf_printf(b,
                   "},\"downgraded\":%llu,\"subqueries\":%llu,\"probes\":%llu,"
                   "\"probes_stripped\":%llu}",
                   (unsigned long long)g->dnssec_downgraded,
                   (unsigned long long)g->dnssec_subqueries, (unsigned long long)g->dnssec_probes,
                   (unsigned long long)g->dnssec_probes_stripped);
}

/* The figures of every loop: the main loop's own, read now, and each worker's last copy. */
static lh_snapshot *gather(const lh_server *s)
{
    lh_snapshot *g = malloc(sizeof *g);
    if (!g) return NULL;
    lh_admin_gather(s->admin, g);
    return g;
}

/* Upstream k, in the order lh_server_collect numbers them, and its group (0: the default
 * upstreams, g: forward zone g - 1). NULL past the end. */
static const lh_upstream_server *upstream_at(const lh_server *s, unsigned k, unsigned *group)
{
    return s->fwd_ready ? lh_upstream_at(&s->fwd.upstream, k, group) : NULL;
}

static const char *upstream_label(const lh_server *s, unsigned k)
{
    unsigned g;
    const lh_upstream_server *u = upstream_at(s, k, &g);
    return u ? u->label : "?";
}

static const char *upstream_transport(const lh_upstream_server *u)
{
    return lh_upstream_transport_name(u);
}

/* "private": nothing asked of it crosses the network in plaintext; "opportunistic": encrypted
 * when that works, plain DNS when not (tls-mode); "plain": never encrypted. */
static const char *upstream_privacy(const lh_upstream_server *u)
{
    return lh_upstream_private(u) ? "private" : u->fallback ? "opportunistic" : "plain";
}

static const char *upstream_origin(const lh_server *s, unsigned group)
{
    return lh_upstream_origin_of(&s->fwd.upstream, group);
}

/* The zone an upstream serves: "." for the default group. */
static const char *upstream_zone(const lh_server *s, unsigned group)
{
    return group ? s->cfg->forward_zones[group - 1].zone : ".";
}

static const char *const listen_origin_names[] = {"default", "config-file", "flag"};

/* ---- config: what the running daemon listens on and forwards to ------------------------ */

/* The config file as an absolute path, so that a client in another directory can read it. */
static void config_file_path(const lh_server *s, char *out, size_t cap)
{
    char *abs = s->cfg->config_file ? realpath(s->cfg->config_file, NULL) : NULL;
    snprintf(out, cap, "%s", abs ? abs : s->cfg->config_file ? s->cfg->config_file : "");
    free(abs);
}

/* One line per fact, "KEY VALUE [name=value ...]": read by people and by `leak-check`. */
static void config_text(const lh_server *s, lh_sbuf *b)
{
    const lh_config *cfg = s->cfg;
    char a[64], path[4096];
    config_file_path(s, path, sizeof path);
    lh_sbuf_printf(b, "version %s\npid %ld\nconfig-file %s\n", LH_VERSION, (long)getpid(),
                   path[0] ? path : "-");
    for (unsigned i = 0; i < cfg->nlisten; i++) {
        lh_addr_format(&cfg->listen[i], a, sizeof a);
        lh_sbuf_printf(b, "listen %s source=%s\n", a, listen_origin_names[cfg->listen_src]);
    }
    unsigned g;
    const lh_upstream_server *u;
    for (unsigned k = 0; (u = upstream_at(s, k, &g)); k++) {
        lh_addr_format(&u->addr, a, sizeof a); /* a DoH label (its URL) does not say it */
        lh_sbuf_printf(b, "upstream %s transport=%s zone=%s source=%s privacy=%s address=%s\n",
                       u->label, upstream_transport(u), upstream_zone(s, g), upstream_origin(s, g),
                       upstream_privacy(u), a);
    }
    if (s->fwd_ready) lh_sbuf_printf(b, "upstreams-from %s\n", s->fwd.upstream.source);
    lh_snapshot *all = gather(s); /* the probe of every loop: one that saw stripping says so */
    lh_sbuf_printf(b, "dnssec %s path=%s\n", dnssec_mode_names[cfg->dnssec],
                   lh_dnssec_path_names[all ? all->dnssec_path : LH_DNSSEC_PATH_UNKNOWN]);
    free(all);
}

/* The same facts as JSON: also part of `stats --json`. */
static void config_json_fields(const lh_server *s, lh_sbuf *b)
{
    const lh_config *cfg = s->cfg;
    char a[64], path[4096];
    config_file_path(s, path, sizeof path);
    lh_sbuf_printf(b, "\"config_file\":");
    if (path[0])
        lh_sbuf_json_str(b, path);
    else
        lh_sbuf_printf(b, "null");
    lh_sbuf_printf(b, ",\"listen\":[");
    for (unsigned i = 0; i < cfg->nlisten; i++) {
        lh_addr_format(&cfg->listen[i], a, sizeof a);
        lh_sbuf_printf(b, "%s{\"address\":", i ? "," : "");
        lh_sbuf_json_str(b, a);
        lh_sbuf_printf(b, ",\"source\":\"%s\"}", listen_origin_names[cfg->listen_src]);
    }
    lh_sbuf_printf(b, "],\"upstreams_from\":");
    lh_sbuf_json_str(b, s->fwd_ready ? s->fwd.upstream.source : "");
}

void lh_report_config(const lh_admin *a, lh_sbuf *b, bool json)
{
    const lh_server *s = a->srv;
    if (!json) {
        config_text(s, b);
        return;
    }
    lh_sbuf_printf(b, "{\"version\":\"%s\",\"pid\":%ld,", LH_VERSION, (long)getpid());
    config_json_fields(s, b);
    lh_sbuf_printf(b, ",\"upstreams\":[");
    unsigned g;
    const lh_upstream_server *u;
    for (unsigned k = 0; (u = upstream_at(s, k, &g)); k++) {
        lh_sbuf_printf(b, "%s{\"server\":\"%s\",\"transport\":\"%s\",\"zone\":", k ? "," : "",
                       u->label, upstream_transport(u));
        lh_sbuf_json_str(b, upstream_zone(s, g));
        lh_sbuf_printf(b, ",\"source\":\"%s\",\"privacy\":\"%s\",\"private\":%s}",
                       upstream_origin(s, g), upstream_privacy(u),
                       lh_upstream_private(u) ? "true" : "false");
    }
    lh_sbuf_printf(b, "]}\n");
}

/* ---- stats: text and JSON ------------------------------------------------------------- */

static const char *const tls_reason_names[LH_TLS_REASONS] = {
    [LH_TLS_R_CONNECT] = "connect",     [LH_TLS_R_CERT] = "cert",       [LH_TLS_R_PIN] = "pin",
    [LH_TLS_R_HANDSHAKE] = "handshake", [LH_TLS_R_TIMEOUT] = "timeout", [LH_TLS_R_RESET] = "reset",
    [LH_TLS_R_BACKOFF] = "backoff",     [LH_TLS_R_OTHER] = "other",     [LH_TLS_R_HTTP] = "http",
};

static uint64_t sum_u64(const uint64_t *v, unsigned n)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < n; i++)
        t += v[i];
    return t;
}

/* An encrypted upstream's connection figures, under its line. */
static void tls_text(lh_sbuf *b, const lh_tls_counters *t)
{
    uint64_t closed = sum_u64(t->conn_queries, LH_CONN_QUERIES_BUCKETS);
    lh_sbuf_printf(b,
                   "  %-24s tls: connections %llu, handshakes %llu, resumed %llu, reused %llu, "
                   "retried %llu, http errors %llu; failures",
                   "", (unsigned long long)t->connections, (unsigned long long)t->handshakes,
                   (unsigned long long)t->resumed, (unsigned long long)t->reused,
                   (unsigned long long)t->retried, (unsigned long long)t->http_errors);
    for (int r = 0; r < LH_TLS_REASONS; r++)
        lh_sbuf_printf(b, " %s %llu", tls_reason_names[r], (unsigned long long)t->failures[r]);
    lh_sbuf_printf(
        b,
        "\n  %-24s      handshake mean %.1f ms; %llu closed connections, %.1f queries "
        "each (1: %llu, 2-10: %llu, 11-100: %llu, 101-1000: %llu, 1001-10000: %llu, "
        "more: %llu); plain fallbacks %llu\n",
        "", t->handshakes ? (double)t->handshake_latency_sum_ns / 1e6 / (double)t->handshakes : 0.0,
        (unsigned long long)closed, closed ? (double)t->conn_queries_sum / (double)closed : 0.0,
        (unsigned long long)t->conn_queries[0], (unsigned long long)t->conn_queries[1],
        (unsigned long long)t->conn_queries[2], (unsigned long long)t->conn_queries[3],
        (unsigned long long)t->conn_queries[4], (unsigned long long)t->conn_queries[5],
        (unsigned long long)t->fallbacks);
}

static void u64_array_json(lh_sbuf *b, const uint64_t *v, unsigned n)
{
    lh_sbuf_putc(b, '[');
    for (unsigned i = 0; i < n; i++)
        lh_sbuf_printf(b, "%s%llu", i ? "," : "", (unsigned long long)v[i]);
    lh_sbuf_putc(b, ']');
}

static void tls_json(lh_sbuf *b, const lh_tls_counters *t)
{
    lh_sbuf_printf(b,
                   ",\"tls\":{\"connections\":%llu,\"handshakes\":%llu,\"resumed\":%llu,"
                   "\"reused\":%llu,\"retried\":%llu,\"http_errors\":%llu,\"failures\":{",
                   (unsigned long long)t->connections, (unsigned long long)t->handshakes,
                   (unsigned long long)t->resumed, (unsigned long long)t->reused,
                   (unsigned long long)t->retried, (unsigned long long)t->http_errors);
    for (int r = 0; r < LH_TLS_REASONS; r++)
        lh_sbuf_printf(b, "%s\"%s\":%llu", r ? "," : "", tls_reason_names[r],
                       (unsigned long long)t->failures[r]);
    lh_sbuf_printf(b,
                   "},\"fallbacks\":%llu,\"handshake_latency_sum_us\":%llu,"
                   "\"handshake_latency_buckets\":",
                   (unsigned long long)t->fallbacks,
                   (unsigned long long)(t->handshake_latency_sum_ns / 1000));
    u64_array_json(b, t->handshake_latency, LH_LATENCY_BUCKETS);
    lh_sbuf_printf(b, ",\"conn_queries_sum\":%llu,\"conn_queries_buckets\":",
                   (unsigned long long)t->conn_queries_sum);
    u64_array_json(b, t->conn_queries, LH_CONN_QUERIES_BUCKETS);
    lh_sbuf_printf(b, "}");
}

static void top_entry_text(const lh_top_entry *e, bool address, char *out, size_t cap)
{
    if (address)
        lh_top_address_text(e, out, cap);
    else
        lh_top_name_text(e, out, cap);
}

static void top_text(lh_sbuf *b, const char *title, const lh_top *t, bool address)
{
    unsigned order[10];
    unsigned n = lh_top_sorted(t, order, 10);
    lh_sbuf_printf(b, "%s\n", title);
    if (!n) lh_sbuf_printf(b, "  (none yet)\n");
    for (unsigned i = 0; i < n; i++) {
        char text[LH_NAME_MAX * 4 + 1];
        top_entry_text(&t->e[order[i]], address, text, sizeof text);
        lh_sbuf_printf(b, "  %10llu  %s\n", (unsigned long long)t->e[order[i]].count, text);
    }
}

static void top_json(lh_sbuf *b, const lh_top *t, bool address)
{
    unsigned order[LH_TOP_SHOWN];
    unsigned n = lh_top_sorted(t, order, LH_TOP_SHOWN);
    lh_sbuf_putc(b, '[');
    for (unsigned i = 0; i < n; i++) {
        const lh_top_entry *e = &t->e[order[i]];
        lh_sbuf_printf(b, "%s{\"key\":", i ? "," : "");
        char text[LH_NAME_MAX * 4 + 1];
        top_entry_text(e, address, text, sizeof text);
        lh_sbuf_json_str(b, text);
        lh_sbuf_printf(b, ",\"count\":%llu,\"max_error\":%llu}", (unsigned long long)e->count,
                       (unsigned long long)e->error);
    }
    lh_sbuf_putc(b, ']');
}

/* Where the daemon listens and forwards, with each upstream's transport, origin and figures. */
static void stats_text_paths(const lh_server *s, const lh_snapshot *g, lh_sbuf *b)
{
    const lh_config *cfg = s->cfg;
    char a[64];
    lh_sbuf_printf(b, "listening  ");
    for (unsigned i = 0; i < cfg->nlisten; i++) {
        lh_addr_format(&cfg->listen[i], a, sizeof a);
        lh_sbuf_printf(b, " %s", a);
    }
    lh_sbuf_printf(b, " (%s)\n", listen_origin_names[cfg->listen_src]);
    lh_sbuf_printf(b, "upstreams   %s\n", s->fwd_ready ? s->fwd.upstream.source : "none");
    for (unsigned k = 0; k < g->nupstreams; k++) {
        const lh_upstream_figures *f = &g->up[k];
        unsigned grp;
        const lh_upstream_server *u = upstream_at(s, k, &grp);
        if (!u) break;
        char where[96];
        snprintf(where, sizeof where, "%s%s%s%s, %s", upstream_transport(u),
                 u->fallback ? " (opportunistic: not private)" : "", grp ? " for " : "",
                 grp ? upstream_zone(s, grp) : "", upstream_origin(s, grp));
        lh_sbuf_printf(b, "  %-24s %s; queries %llu, answers %llu, failures %llu, mean %.1f ms\n",
                       u->label, where, (unsigned long long)f->queries,
                       (unsigned long long)f->answers, (unsigned long long)f->failures,
                       f->answers ? (double)f->latency_sum_ns / 1e6 / (double)f->answers : 0.0);
        if (u->tls.on) tls_text(b, &f->tls);
    }
}

static void stats_text(const lh_server *s, const lh_snapshot *g, lh_sbuf *b)
{
    const lh_counters *st = &g->c;
    char when[32];
    iso_time(st->started_unix, when, sizeof when);
    lh_sbuf_printf(b, "loophole %s, running since %s\n\n", LH_VERSION, when);
    lh_runtime_report(s->admin->rt, b, false);
    lh_sbuf_printf(b,
                   "queries     %llu (udp %llu, tcp %llu); dropped %llu; rate-limited %llu "
                   "dropped, %llu truncated\n",
                   (unsigned long long)total_queries(st), (unsigned long long)st->queries_udp,
                   (unsigned long long)st->queries_tcp, (unsigned long long)st->dropped,
                   (unsigned long long)st->rrl_dropped, (unsigned long long)st->rrl_truncated);
    lh_sbuf_printf(b,
                   "tcp         %llu open; %llu accepted, %llu refused, %llu closed to make room, "
                   "%llu closed idle, %llu empty frames\n",
                   (unsigned long long)g->tcp_connections, (unsigned long long)st->tcp_accepted,
                   (unsigned long long)st->tcp_rejected, (unsigned long long)st->tcp_evicted,
                   (unsigned long long)st->tcp_idle_closed,
                   (unsigned long long)st->tcp_empty_frames);
    lh_sbuf_printf(b, "outcomes   ");
    for (int i = 0; i < LH_OUTCOME_COUNT; i++)
        lh_sbuf_printf(b, " %s %llu", lh_outcome_names[i], (unsigned long long)st->outcomes[i]);
    lh_sbuf_printf(b, "\ntypes      ");
    for (unsigned i = 0; i <= LH_STATS_QTYPES; i++)
        if (st->qtypes[i])
            lh_sbuf_printf(b, " %s %llu", qtype_name(i), (unsigned long long)st->qtypes[i]);
    lh_sbuf_printf(b, "\nrcodes     ");
    for (unsigned i = 0; i < 16; i++)
        if (st->rcodes[i])
            lh_sbuf_printf(b, " %s %llu", rcode_name(i) ? rcode_name(i) : "?",
                           (unsigned long long)st->rcodes[i]);
    lh_sbuf_printf(b, "\n");
    if (g->cache_on) {
        uint64_t looked = g->cache.hits + g->cache.misses;
        lh_sbuf_printf(b,
                       "cache       %zu entries, %zu of %zu bytes; hit ratio %.1f%% (%llu hits, "
                       "%llu misses); %llu evictions, %llu stale answers\n",
                       g->cache_entries, g->cache_bytes, g->cache_max,
                       looked ? 100.0 * (double)g->cache.hits / (double)looked : 0.0,
                       (unsigned long long)g->cache.hits, (unsigned long long)g->cache.misses,
                       (unsigned long long)g->cache.evictions,
                       (unsigned long long)g->cache.stale_hits);
    } else {
        lh_sbuf_printf(b, "cache       off\n");
    }
    dnssec_text(s, g, b);
    stats_text_paths(s, g, b);
    lh_sbuf_printf(b, "blocked by list (since the last reload)\n");
    for (size_t i = 0; s->policy && i < s->policy->blocks.nlists && i < LH_STATS_LISTS_MAX; i++)
        if (!list_at(s, i)->allow)
            lh_sbuf_printf(b, "  %10llu  %s\n", (unsigned long long)st->blocked_by_list[i],
                           list_at(s, i)->path);
    if (st->last_reload_unix) {
        iso_time(st->last_reload_unix, when, sizeof when);
        lh_sbuf_printf(b, "last reload %s, %s%s\n", when, st->last_reload_ok ? "ok" : "failed: ",
                       st->last_reload_ok ? "" : st->last_reload_error);
    } else {
        lh_sbuf_printf(b, "last reload none since start\n");
    }
    top_text(b, "top blocked names", &st->top_blocked, false);
    top_text(b, "top clients", &st->top_clients, true);
}

/* The "upstreams" array of `stats json`: each upstream's figures, summed over the loops. */
static void upstreams_json(const lh_server *s, const lh_snapshot *g, lh_sbuf *b)
{
    bool first = true;
    for (unsigned k = 0; k < g->nupstreams; k++) {
        const lh_upstream_figures *u = &g->up[k];
        unsigned grp = 0;
        const lh_upstream_server *up = upstream_at(s, k, &grp);
        if (!up) break;
        lh_sbuf_printf(b, "%s{\"server\":\"%s\",\"transport\":\"%s\",\"zone\":", first ? "" : ",",
                       up->label, upstream_transport(up));
        lh_sbuf_json_str(b, upstream_zone(s, grp));
        lh_sbuf_printf(b, ",\"privacy\":\"%s\",\"private\":%s", upstream_privacy(up),
                       lh_upstream_private(up) ? "true" : "false");
        lh_sbuf_printf(b,
                       ",\"source\":\"%s\",\"queries\":%llu,\"answers\":%llu,\"failures\":%llu,"
                       "\"latency_sum_us\":%llu,\"latency_buckets\":[",
                       upstream_origin(s, grp), (unsigned long long)u->queries,
                       (unsigned long long)u->answers, (unsigned long long)u->failures,
                       (unsigned long long)(u->latency_sum_ns / 1000));
        for (unsigned j = 0; j < LH_LATENCY_BUCKETS; j++)
            lh_sbuf_printf(b, "%s%llu", j ? "," : "", (unsigned long long)u->latency[j]);
        lh_sbuf_printf(b, "]");
        if (up->tls.on) tls_json(b, &u->tls);
        lh_sbuf_printf(b, "}");
        first = false;
    }
}

static void stats_json(const lh_server *s, const lh_snapshot *g, lh_sbuf *b)
{
    const lh_counters *st = &g->c;
    lh_sbuf_printf(b,
                   "{\"version\":\"%s\",\"started\":%llu,\"queries\":{\"total\":%llu,\"udp\":%llu,"
                   "\"tcp\":%llu,\"dropped\":%llu,\"rate_limited_dropped\":%llu,"
                   "\"rate_limited_truncated\":%llu},\"tcp\":{\"open\":%llu,\"accepted\":%llu,"
                   "\"refused\":%llu,\"evicted\":%llu,\"idle_closed\":%llu,"
                   "\"empty_frames\":%llu},\"outcomes\":{",
                   LH_VERSION, (unsigned long long)st->started_unix,
                   (unsigned long long)total_queries(st), (unsigned long long)st->queries_udp,
                   (unsigned long long)st->queries_tcp, (unsigned long long)st->dropped,
                   (unsigned long long)st->rrl_dropped, (unsigned long long)st->rrl_truncated,
                   (unsigned long long)g->tcp_connections, (unsigned long long)st->tcp_accepted,
                   (unsigned long long)st->tcp_rejected, (unsigned long long)st->tcp_evicted,
                   (unsigned long long)st->tcp_idle_closed,
                   (unsigned long long)st->tcp_empty_frames);
    for (int i = 0; i < LH_OUTCOME_COUNT; i++)
        lh_sbuf_printf(b, "%s\"%s\":%llu", i ? "," : "", lh_outcome_names[i],
                       (unsigned long long)st->outcomes[i]);
    lh_sbuf_printf(b, "},\"types\":{");
    for (unsigned i = 0; i <= LH_STATS_QTYPES; i++)
        lh_sbuf_printf(b, "%s\"%s\":%llu", i ? "," : "", qtype_name(i),
                       (unsigned long long)st->qtypes[i]);
    lh_sbuf_printf(b, "},\"rcodes\":{");
    bool first = true;
    for (unsigned i = 0; i < 16; i++) {
        if (!rcode_name(i)) continue;
        lh_sbuf_printf(b, "%s\"%s\":%llu", first ? "" : ",", rcode_name(i),
                       (unsigned long long)st->rcodes[i]);
        first = false;
    }
    lh_sbuf_printf(b, "},");
    dnssec_json(s, g, b);
    lh_sbuf_printf(b, ",");
    config_json_fields(s, b);
    lh_sbuf_printf(b, ",\"cache\":");
    if (g->cache_on) {
        lh_sbuf_printf(b,
                       "{\"entries\":%zu,\"bytes\":%zu,\"max_bytes\":%zu,\"hits\":%llu,"
                       "\"misses\":%llu,\"evictions\":%llu,\"stale_hits\":%llu}",
                       g->cache_entries, g->cache_bytes, g->cache_max,
                       (unsigned long long)g->cache.hits, (unsigned long long)g->cache.misses,
                       (unsigned long long)g->cache.evictions,
                       (unsigned long long)g->cache.stale_hits);
    } else {
        lh_sbuf_printf(b, "null");
    }
    lh_sbuf_printf(b, ",\"upstreams\":[");
    upstreams_json(s, g, b);
    lh_sbuf_printf(b, "],\"blocked_by_list\":{");
    first = true;
    for (size_t i = 0; s->policy && i < s->policy->blocks.nlists && i < LH_STATS_LISTS_MAX; i++) {
        if (list_at(s, i)->allow) continue;
        lh_sbuf_printf(b, "%s", first ? "" : ",");
        lh_sbuf_json_str(b, list_at(s, i)->path);
        lh_sbuf_printf(b, ":%llu", (unsigned long long)st->blocked_by_list[i]);
        first = false;
    }
    lh_sbuf_printf(b,
                   "},\"reloads\":{\"ok\":%llu,\"failed\":%llu,\"last\":%llu,\"last_ok\":%s,"
                   "\"last_error\":",
                   (unsigned long long)st->reloads_ok, (unsigned long long)st->reloads_failed,
                   (unsigned long long)st->last_reload_unix, st->last_reload_ok ? "true" : "false");
    lh_sbuf_json_str(b, st->last_reload_error);
    lh_sbuf_printf(b, "},\"top_blocked\":");
    top_json(b, &st->top_blocked, false);
    lh_sbuf_printf(b, ",\"top_clients\":");
    top_json(b, &st->top_clients, true);
    lh_sbuf_printf(b, ",\"query_log_dropped\":%llu,", (unsigned long long)g->qlog_dropped);
    lh_runtime_report(s->admin->rt, b, true);
    lh_sbuf_printf(b, "}\n");
}

void lh_report_stats(const lh_admin *a, lh_sbuf *b, bool json)
{
    const lh_server *s = a->srv;
    lh_snapshot *g = gather(s);
    if (!g) {
        lh_sbuf_printf(b, "out of memory\n");
        return;
    }
    if (json)
        stats_json(s, g, b);
    else
        stats_text(s, g, b);
    free(g);
}

/* ---- lists ------------------------------------------------------------------------------- */

void lh_report_lists(const lh_admin *a, lh_sbuf *b, bool json)
{
    const lh_server *s = a->srv;
    const lh_policy *p = s->policy;
    size_t n = p ? p->blocks.nlists : 0;
    if (json) lh_sbuf_printf(b, "{\"lists\":[");
    for (size_t i = 0; i < n; i++) {
        const lh_list_info *li = &p->blocks.lists[i];
        const lh_list_counts *c = &li->counts;
        if (json) {
            lh_sbuf_printf(b, "%s{\"path\":", i ? "," : "");
            lh_sbuf_json_str(b, li->path);
            lh_sbuf_printf(b,
                           ",\"kind\":\"%s\",\"format\":\"%s\",\"lines\":%u,\"rules\":%u,"
                           "\"names\":%u,\"patterns\":%u,\"ignored\":%u,\"malformed\":%u,"
                           "\"first_error\":",
                           li->allow ? "allow" : "block", lh_list_format_name(li->format), c->lines,
                           c->rules, c->names, c->globs + c->regexes, c->ignored, c->errors);
            lh_sbuf_json_str(b, c->first_error);
            lh_sbuf_putc(b, '}');
            continue;
        }
        lh_sbuf_printf(b,
                       "%s %s\n  %s format, %u lines: %u rules (%u names, %u patterns), "
                       "%u ignored, %u malformed%s%s%s\n",
                       li->allow ? "allowlist" : "blocklist", li->path,
                       lh_list_format_name(li->format), c->lines, c->rules, c->names,
                       c->globs + c->regexes, c->ignored, c->errors, c->errors ? " (first: " : "",
                       c->first_error, c->errors ? ")" : "");
    }
    size_t hosts = p && p->has_hosts ? p->hosts.nentries : 0;
    if (json) {
        lh_sbuf_printf(b, "],\"runtime\":");
        lh_runtime_report_rules(s->admin->rt, b, true);
        lh_sbuf_printf(b, ",\"hosts_file\":");
        lh_sbuf_json_str(b, s->cfg->hosts_file ? s->cfg->hosts_file : "");
        lh_sbuf_printf(b, ",\"hosts_names\":%zu}\n", hosts);
    } else {
        if (!n) lh_sbuf_printf(b, "no lists loaded\n");
        if (s->cfg->hosts_file)
            lh_sbuf_printf(b, "hosts file %s: %zu names\n", s->cfg->hosts_file, hosts);
        if (s->admin->rt) lh_runtime_report_rules(s->admin->rt, b, false);
    }
}

/* ---- Prometheus ------------------------------------------------------------------------ */

/* A label value: backslash, double quote and newline escaped (exposition format 0.0.4). */
static void prom_label(lh_sbuf *b, const char *v)
{
    lh_sbuf_putc(b, '"');
    for (; *v; v++) {
        if (*v == '\\' || *v == '"') lh_sbuf_putc(b, '\\');
        if (*v == '\n') {
            lh_sbuf_printf(b, "\\n");
            continue;
        }
        lh_sbuf_putc(b, *v);
    }
    lh_sbuf_putc(b, '"');
}

static void prom_head(lh_sbuf *b, const char *name, const char *type, const char *help)
{
    lh_sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_value(lh_sbuf *b, const char *name, const char *label, const char *value,
                       unsigned long long v)
{
    lh_sbuf_printf(b, "%s", name);
    if (label) {
        lh_sbuf_printf(b, "{%s=", label);
        prom_label(b, value);
        lh_sbuf_putc(b, '}');
    }
    lh_sbuf_printf(b, " %llu\n", v);
}

static bool upstream_encrypted(const lh_server *s, unsigned k)
{
    unsigned grp;
    const lh_upstream_server *u = upstream_at(s, k, &grp);
    return u && u->tls.on;
}

/* One upstream's histogram lines: `n` buckets, the last +Inf, bounds[] in the metric's unit. */
static void prom_histogram(lh_sbuf *b, const char *name, const char *label, const uint64_t *v,
                           unsigned n, const double *bounds, double sum)
{
    uint64_t cum = 0;
    for (unsigned j = 0; j < n; j++) {
        cum += v[j];
        lh_sbuf_printf(b, "%s_bucket{upstream=", name);
        prom_label(b, label);
        if (j < n - 1)
            lh_sbuf_printf(b, ",le=\"%g\"} %llu\n", bounds[j], (unsigned long long)cum);
        else
            lh_sbuf_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    lh_sbuf_printf(b, "%s_sum{upstream=", name);
    prom_label(b, label);
    lh_sbuf_printf(b, "} %.6f\n%s_count{upstream=", sum, name);
    prom_label(b, label);
    lh_sbuf_printf(b, "} %llu\n", (unsigned long long)cum);
}

/* Encrypted upstreams' connection counters; nothing when there is none. */
static void prom_tls(const lh_server *s, const lh_snapshot *g, lh_sbuf *b)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } m[] = {
        {"loophole_upstream_tls_connections_total", "TLS connections opened, per upstream.",
         offsetof(lh_tls_counters, connections)},
        {"loophole_upstream_tls_handshakes_total", "TLS handshakes completed, per upstream.",
         offsetof(lh_tls_counters, handshakes)},
        {"loophole_upstream_tls_resumed_total", "TLS handshakes that resumed a session.",
         offsetof(lh_tls_counters, resumed)},
        {"loophole_upstream_tls_reused_total", "Queries sent on an already open connection.",
         offsetof(lh_tls_counters, reused)},
        {"loophole_upstream_tls_retried_total",
         "Queries retried after their connection closed under them.",
         offsetof(lh_tls_counters, retried)},
        {"loophole_upstream_http_errors_total",
         "DNS over HTTPS answers with an HTTP status other than 200.",
         offsetof(lh_tls_counters, http_errors)},
        {"loophole_upstream_fallbacks_total",
         "tls-mode opportunistic: failed encrypted tries repeated in plain DNS.",
         offsetof(lh_tls_counters, fallbacks)},
    };
    bool any = false;
    for (unsigned k = 0; k < g->nupstreams; k++)
        any = any || upstream_encrypted(s, k);
    if (!any) return;
    for (size_t i = 0; i < sizeof m / sizeof *m; i++) {
        prom_head(b, m[i].name, "counter", m[i].help);
        for (unsigned k = 0; k < g->nupstreams; k++)
            if (upstream_encrypted(s, k))
                prom_value(b, m[i].name, "upstream", upstream_label(s, k),
                           *(const uint64_t *)((const char *)&g->up[k].tls + m[i].off));
    }
    prom_head(b, "loophole_upstream_tls_failures_total", "counter",
              "DNS over TLS queries that failed, per upstream and reason.");
    for (unsigned k = 0; k < g->nupstreams; k++) {
        if (!upstream_encrypted(s, k)) continue;
        for (int r = 0; r < LH_TLS_REASONS; r++) {
            lh_sbuf_printf(b, "loophole_upstream_tls_failures_total{upstream=");
            prom_label(b, upstream_label(s, k));
            lh_sbuf_printf(b, ",reason=\"%s\"} %llu\n", tls_reason_names[r],
                           (unsigned long long)g->up[k].tls.failures[r]);
        }
    }
    prom_head(b, "loophole_upstream_handshake_seconds", "histogram",
              "Time from connect to a completed TLS handshake, per encrypted upstream.");
    for (unsigned k = 0; k < g->nupstreams; k++)
        if (upstream_encrypted(s, k))
            prom_histogram(b, "loophole_upstream_handshake_seconds", upstream_label(s, k),
                           g->up[k].tls.handshake_latency, LH_LATENCY_BUCKETS, lh_latency_bounds,
                           (double)g->up[k].tls.handshake_latency_sum_ns / 1e9);
    double qb[LH_CONN_QUERIES_BUCKETS - 1];
    for (unsigned j = 0; j < LH_CONN_QUERIES_BUCKETS - 1; j++)
        qb[j] = lh_conn_queries_bounds[j];
    prom_head(b, "loophole_upstream_connection_queries", "histogram",
              "Queries carried by each closed connection, per encrypted upstream.");
    for (unsigned k = 0; k < g->nupstreams; k++)
        if (upstream_encrypted(s, k))
            prom_histogram(b, "loophole_upstream_connection_queries", upstream_label(s, k),
                           g->up[k].tls.conn_queries, LH_CONN_QUERIES_BUCKETS, qb,
                           (double)g->up[k].tls.conn_queries_sum);
}

/* Prometheus: queries, answers and the lists. */
static void prom_queries(const lh_server *s, const lh_snapshot *g, lh_sbuf *b)
{
    const lh_counters *st = &g->c;
    prom_head(b, "loophole_queries_total", "counter", "Queries received, by transport.");
    prom_value(b, "loophole_queries_total", "transport", "udp", st->queries_udp);
    prom_value(b, "loophole_queries_total", "transport", "tcp", st->queries_tcp);
    prom_head(b, "loophole_dropped_total", "counter",
              "Datagrams dropped unanswered (too short, responses).");
    prom_value(b, "loophole_dropped_total", NULL, NULL, st->dropped);
    prom_head(b, "loophole_rate_limited_total", "counter",
              "UDP answers over rate-limit for a client network: dropped, or sent truncated.");
    prom_value(b, "loophole_rate_limited_total", "action", "dropped", st->rrl_dropped);
    prom_value(b, "loophole_rate_limited_total", "action", "truncated", st->rrl_truncated);
    prom_head(b, "loophole_answers_total", "counter", "Answered queries, by outcome.");
    for (int i = 0; i < LH_OUTCOME_COUNT; i++)
        prom_value(b, "loophole_answers_total", "outcome", lh_outcome_names[i], st->outcomes[i]);
    prom_head(b, "loophole_queries_by_type_total", "counter",
              "Answered queries with a question, by query type.");
    for (unsigned i = 0; i <= LH_STATS_QTYPES; i++)
        prom_value(b, "loophole_queries_by_type_total", "type", qtype_name(i), st->qtypes[i]);
    prom_head(b, "loophole_responses_total", "counter", "Answers sent, by response code.");
    for (unsigned i = 0; i < 16; i++)
        if (rcode_name(i))
            prom_value(b, "loophole_responses_total", "rcode", rcode_name(i), st->rcodes[i]);
    prom_head(b, "loophole_dnssec_answers_total", "counter",
              "Answers validated (dnssec = validate), by verdict.");
    for (unsigned i = 1; i < LH_DNSSEC_V_COUNT; i++)
        prom_value(b, "loophole_dnssec_answers_total", "verdict", lh_dnssec_v_names[i],
                   st->dnssec[i]);
    prom_head(b, "loophole_dnssec_bogus_total", "counter", "Bogus answers, by reason.");
    for (unsigned r = LH_DR_BOGUS_SIGNATURE; r < LH_DNSSEC_REASONS && r < LH_STATS_DNSSEC_REASONS;
         r++)
        prom_value(b, "loophole_dnssec_bogus_total", "reason",
                   lh_dnssec_reason_key((enum lh_dnssec_reason)r), st->dnssec_bogus[r]);
    prom_head(b, "loophole_dnssec_stripping", "gauge",
              "1 when the last probe found the upstream path stripping DNSSEC.");
    prom_value(b, "loophole_dnssec_stripping", NULL, NULL, g->dnssec_path == LH_DNSSEC_PATH_STRIPS);
    prom_head(b, "loophole_dnssec_subqueries_total", "counter",
              "DS and DNSKEY queries sent upstream for validation.");
    prom_value(b, "loophole_dnssec_subqueries_total", NULL, NULL, g->dnssec_subqueries);
    prom_head(b, "loophole_blocked_total", "counter",
              "Blocked answers by the list that blocked them, since the last reload.");
    for (size_t i = 0; s->policy && i < s->policy->blocks.nlists && i < LH_STATS_LISTS_MAX; i++)
        if (!list_at(s, i)->allow)
            prom_value(b, "loophole_blocked_total", "list", list_at(s, i)->path,
                       st->blocked_by_list[i]);
    prom_head(b, "loophole_list_rules", "gauge", "Rules loaded per list.");
    for (size_t i = 0; s->policy && i < s->policy->blocks.nlists; i++)
        prom_value(b, "loophole_list_rules", "list", list_at(s, i)->path,
                   list_at(s, i)->counts.rules);
}

static void prom_cache(const lh_snapshot *g, lh_sbuf *b)
{
    if (!g->cache_on) return;
    prom_head(b, "loophole_cache_entries", "gauge", "Answers in the cache.");
    prom_value(b, "loophole_cache_entries", NULL, NULL, g->cache_entries);
    prom_head(b, "loophole_cache_bytes", "gauge", "Bytes the cache holds.");
    prom_value(b, "loophole_cache_bytes", NULL, NULL, g->cache_bytes);
    prom_head(b, "loophole_cache_max_bytes", "gauge", "The cache's bound (cache-size).");
    prom_value(b, "loophole_cache_max_bytes", NULL, NULL, g->cache_max);
    prom_head(b, "loophole_cache_hits_total", "counter", "Cache lookups that hit.");
    prom_value(b, "loophole_cache_hits_total", NULL, NULL, g->cache.hits);
    prom_head(b, "loophole_cache_misses_total", "counter", "Cache lookups that missed.");
    prom_value(b, "loophole_cache_misses_total", NULL, NULL, g->cache.misses);
    prom_head(b, "loophole_cache_evictions_total", "counter",
              "Entries evicted to stay within cache-size.");
    prom_value(b, "loophole_cache_evictions_total", NULL, NULL, g->cache.evictions);
}

static void prom_upstreams(const lh_server *s, const lh_snapshot *g, lh_sbuf *b)
{
    prom_head(b, "loophole_upstream_queries_total", "counter", "Queries sent, per upstream.");
    for (unsigned k = 0; k < g->nupstreams; k++)
        prom_value(b, "loophole_upstream_queries_total", "upstream", upstream_label(s, k),
                   g->up[k].queries);
    prom_head(b, "loophole_upstream_failures_total", "counter",
              "Queries that failed (timeout, error, bad answer), per upstream.");
    for (unsigned k = 0; k < g->nupstreams; k++)
        prom_value(b, "loophole_upstream_failures_total", "upstream", upstream_label(s, k),
                   g->up[k].failures);
    prom_head(b, "loophole_upstream_private", "gauge",
              "1: nothing sent to this upstream crosses the network in plaintext (strict "
              "DNS over TLS or HTTPS); 0: plain DNS, or tls-mode opportunistic.");
    for (unsigned k = 0; k < g->nupstreams; k++) {
        unsigned grp;
        const lh_upstream_server *u = upstream_at(s, k, &grp);
        prom_value(b, "loophole_upstream_private", "upstream", upstream_label(s, k),
                   u && lh_upstream_private(u));
    }
    prom_head(b, "loophole_upstream_latency_seconds", "histogram",
              "Time to an upstream's answer, per upstream.");
    for (unsigned k = 0; k < g->nupstreams; k++) {
        const lh_upstream_figures *u = &g->up[k];
        const char *label = upstream_label(s, k);
        uint64_t cum = 0;
        for (unsigned j = 0; j < LH_LATENCY_BUCKETS; j++) {
            cum += u->latency[j];
            lh_sbuf_printf(b, "loophole_upstream_latency_seconds_bucket{upstream=");
            prom_label(b, label);
            if (j < LH_LATENCY_BUCKETS - 1)
                lh_sbuf_printf(b, ",le=\"%g\"} %llu\n", lh_latency_bounds[j],
                               (unsigned long long)cum);
            else
                lh_sbuf_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        lh_sbuf_printf(b, "loophole_upstream_latency_seconds_sum{upstream=");
        prom_label(b, label);
        lh_sbuf_printf(b, "} %.6f\nloophole_upstream_latency_seconds_count{upstream=",
                       (double)u->latency_sum_ns / 1e9);
        prom_label(b, label);
        lh_sbuf_printf(b, "} %llu\n", (unsigned long long)cum);
    }
    prom_tls(s, g, b);
}

/* Reloads, the start, the pause and runtime rules, TCP and the query log. */
static void prom_daemon(const lh_server *s, const lh_snapshot *g, lh_sbuf *b)
{
    const lh_counters *st = &g->c;
    prom_head(b, "loophole_reloads_total", "counter", "Reloads, by result.");
    prom_value(b, "loophole_reloads_total", "result", "ok", st->reloads_ok);
    prom_value(b, "loophole_reloads_total", "result", "failed", st->reloads_failed);
    prom_head(b, "loophole_last_reload_timestamp_seconds", "gauge",
              "When the last reload finished (0: none since start).");
    prom_value(b, "loophole_last_reload_timestamp_seconds", NULL, NULL, st->last_reload_unix);
    prom_head(b, "loophole_last_reload_success", "gauge", "1 if the last reload succeeded.");
    prom_value(b, "loophole_last_reload_success", NULL, NULL,
               st->last_reload_unix ? st->last_reload_ok : 1);
    prom_head(b, "loophole_start_timestamp_seconds", "gauge", "When loophole started.");
    prom_value(b, "loophole_start_timestamp_seconds", NULL, NULL, st->started_unix);
    if (s->admin->rt) {
        uint64_t left = lh_runtime_pause_left(s->admin->rt);
        prom_head(b, "loophole_blocking_paused", "gauge",
                  "1 while blocking is paused (loophole pause), else 0.");
        prom_value(b, "loophole_blocking_paused", NULL, NULL, left != 0);
        prom_head(b, "loophole_blocking_pause_remaining_seconds", "gauge",
                  "Seconds of pause left (-1: until resumed; 0: not paused).");
        if (left == LH_PAUSE_FOREVER)
            lh_sbuf_printf(b, "loophole_blocking_pause_remaining_seconds -1\n");
        else
            prom_value(b, "loophole_blocking_pause_remaining_seconds", NULL, NULL,
                       (left + 999) / 1000);
        prom_head(b, "loophole_runtime_rules", "gauge",
                  "Runtime rules (loophole allow/block), checked before the lists.");
        prom_value(b, "loophole_runtime_rules", NULL, NULL,
                   s->admin->rt->rules ? s->admin->rt->rules->nrules : 0);
    }
    prom_head(b, "loophole_tcp_connections", "gauge", "Open TCP connections.");
    prom_value(b, "loophole_tcp_connections", NULL, NULL, g->tcp_connections);
    prom_head(b, "loophole_tcp_accepted_total", "counter", "TCP connections accepted.");
    prom_value(b, "loophole_tcp_accepted_total", NULL, NULL, st->tcp_accepted);
    prom_head(b, "loophole_tcp_refused_total", "counter",
              "TCP connections closed at once: the table full and every connection busy, or "
              "stopping.");
    prom_value(b, "loophole_tcp_refused_total", NULL, NULL, st->tcp_rejected);
    prom_head(b, "loophole_tcp_closed_total", "counter",
              "TCP connections the daemon closed, by reason: evicted (idle longest, to make "
              "room for a client within its share), idle (tcp-idle-timeout), oversize (a frame "
              "longer than a query can be).");
    prom_value(b, "loophole_tcp_closed_total", "reason", "evicted", st->tcp_evicted);
    prom_value(b, "loophole_tcp_closed_total", "reason", "idle", st->tcp_idle_closed);
    prom_value(b, "loophole_tcp_closed_total", "reason", "oversize", st->tcp_oversize);
    prom_head(b, "loophole_tcp_empty_frames_total", "counter",
              "TCP frames of length 0 (no query; not counted as activity).");
    prom_value(b, "loophole_tcp_empty_frames_total", NULL, NULL, st->tcp_empty_frames);
    prom_head(b, "loophole_query_log_dropped_total", "counter",
              "Query log lines dropped because the disk did not keep up.");
    prom_value(b, "loophole_query_log_dropped_total", NULL, NULL, g->qlog_dropped);
}

void lh_report_prometheus(const lh_admin *a, lh_sbuf *b)
{
    const lh_server *s = a->srv;
    lh_snapshot *g = gather(s);
    if (!g) {
        b->overflow = true;
        return;
    }
    prom_queries(s, g, b);
    prom_cache(g, b);
    prom_upstreams(s, g, b);
    prom_daemon(s, g, b);
    free(g);
}
