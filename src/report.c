/* report.c - see report.h. */
#include "loophole/report.h"
#include "loophole/querylog.h"
#include "loophole/server.h"

#include <ldns/ldns.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *rcode_name(unsigned rc)
{
    const ldns_lookup_table *t = ldns_lookup_by_id(ldns_rcodes, (int)rc);
    return t && t->name ? t->name : NULL;
}

static const char *qtype_name(unsigned i)
{
    if (i >= LH_STATS_QTYPES) return "other";
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

/* Every upstream server, across the default group and the forward zones. */
#define EACH_UPSTREAM(s, srv)                                                                      \
    for (unsigned _g = 0; (s)->fwd_ready && _g < (s)->fwd.upstream.ngroups; _g++)                  \
        for (const lh_upstream_server *srv = (s)->fwd.upstream.groups[_g].servers;                 \
             srv < (s)->fwd.upstream.groups[_g].servers + (s)->fwd.upstream.groups[_g].nservers;   \
             srv++)

/* ---- stats: text and JSON ------------------------------------------------------------- */

static void top_text(lh_sbuf *b, const char *title, const lh_top *t)
{
    unsigned order[LH_TOP_MAX];
    unsigned n = lh_top_sorted(t, order);
    lh_sbuf_printf(b, "%s\n", title);
    if (!n) lh_sbuf_printf(b, "  (none yet)\n");
    for (unsigned i = 0; i < n && i < 10; i++)
        lh_sbuf_printf(b, "  %10llu  %s\n", (unsigned long long)t->e[order[i]].count,
                       t->e[order[i]].text);
}

static void top_json(lh_sbuf *b, const lh_top *t)
{
    unsigned order[LH_TOP_MAX];
    unsigned n = lh_top_sorted(t, order);
    lh_sbuf_putc(b, '[');
    for (unsigned i = 0; i < n; i++) {
        const lh_top_entry *e = &t->e[order[i]];
        lh_sbuf_printf(b, "%s{\"key\":", i ? "," : "");
        lh_sbuf_json_str(b, e->text);
        lh_sbuf_printf(b, ",\"count\":%llu,\"max_error\":%llu}", (unsigned long long)e->count,
                       (unsigned long long)e->error);
    }
    lh_sbuf_putc(b, ']');
}

static void stats_text(const lh_server *s, lh_sbuf *b)
{
    const lh_counters *st = &s->stats;
    char when[32];
    iso_time(st->started_unix, when, sizeof when);
    lh_sbuf_printf(b, "loophole %s, running since %s\n\n", LH_VERSION, when);
    lh_sbuf_printf(b,
                   "queries     %llu (udp %llu, tcp %llu); dropped %llu; rate-limited %llu "
                   "dropped, %llu truncated\n",
                   (unsigned long long)total_queries(st), (unsigned long long)st->queries_udp,
                   (unsigned long long)st->queries_tcp, (unsigned long long)st->dropped,
                   (unsigned long long)st->rrl_dropped, (unsigned long long)st->rrl_truncated);
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
    if (s->fwd_ready && s->fwd.cache_on) {
        const lh_cache *c = &s->fwd.cache;
        uint64_t looked = c->stats.hits + c->stats.misses;
        lh_sbuf_printf(b,
                       "cache       %zu entries, %zu of %zu bytes; hit ratio %.1f%% (%llu hits, "
                       "%llu misses); %llu evictions, %llu stale answers\n",
                       c->count, c->bytes, c->limits.max_bytes,
                       looked ? 100.0 * (double)c->stats.hits / (double)looked : 0.0,
                       (unsigned long long)c->stats.hits, (unsigned long long)c->stats.misses,
                       (unsigned long long)c->stats.evictions,
                       (unsigned long long)c->stats.stale_hits);
    } else {
        lh_sbuf_printf(b, "cache       off\n");
    }
    lh_sbuf_printf(b, "upstreams\n");
    EACH_UPSTREAM(s, u)
    {
        lh_sbuf_printf(b, "  %-24s queries %llu, answers %llu, failures %llu, mean %.1f ms\n",
                       u->label, (unsigned long long)u->queries, (unsigned long long)u->answers,
                       (unsigned long long)u->failures,
                       u->answers ? (double)u->latency_sum_ns / 1e6 / (double)u->answers : 0.0);
    }
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
    top_text(b, "top blocked names", &st->top_blocked);
    top_text(b, "top clients", &st->top_clients);
}

static void stats_json(const lh_server *s, lh_sbuf *b)
{
    const lh_counters *st = &s->stats;
    lh_sbuf_printf(b,
                   "{\"version\":\"%s\",\"started\":%llu,\"queries\":{\"total\":%llu,\"udp\":%llu,"
                   "\"tcp\":%llu,\"dropped\":%llu,\"rate_limited_dropped\":%llu,"
                   "\"rate_limited_truncated\":%llu},\"outcomes\":{",
                   LH_VERSION, (unsigned long long)st->started_unix,
                   (unsigned long long)total_queries(st), (unsigned long long)st->queries_udp,
                   (unsigned long long)st->queries_tcp, (unsigned long long)st->dropped,
                   (unsigned long long)st->rrl_dropped, (unsigned long long)st->rrl_truncated);
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
    lh_sbuf_printf(b, "},\"cache\":");
    if (s->fwd_ready && s->fwd.cache_on) {
        const lh_cache *c = &s->fwd.cache;
        lh_sbuf_printf(b,
                       "{\"entries\":%zu,\"bytes\":%zu,\"max_bytes\":%zu,\"hits\":%llu,"
                       "\"misses\":%llu,\"evictions\":%llu,\"stale_hits\":%llu}",
                       c->count, c->bytes, c->limits.max_bytes, (unsigned long long)c->stats.hits,
                       (unsigned long long)c->stats.misses, (unsigned long long)c->stats.evictions,
                       (unsigned long long)c->stats.stale_hits);
    } else {
        lh_sbuf_printf(b, "null");
    }
    lh_sbuf_printf(b, ",\"upstreams\":[");
    first = true;
    EACH_UPSTREAM(s, u)
    {
        lh_sbuf_printf(b,
                       "%s{\"server\":\"%s\",\"queries\":%llu,\"answers\":%llu,\"failures\":%llu,"
                       "\"latency_sum_us\":%llu,\"latency_buckets\":[",
                       first ? "" : ",", u->label, (unsigned long long)u->queries,
                       (unsigned long long)u->answers, (unsigned long long)u->failures,
                       (unsigned long long)(u->latency_sum_ns / 1000));
        for (unsigned k = 0; k < LH_LATENCY_BUCKETS; k++)
            lh_sbuf_printf(b, "%s%llu", k ? "," : "", (unsigned long long)u->latency[k]);
        lh_sbuf_printf(b, "]}");
        first = false;
    }
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
    top_json(b, &st->top_blocked);
    lh_sbuf_printf(b, ",\"top_clients\":");
    top_json(b, &st->top_clients);
    lh_sbuf_printf(b, ",\"query_log_dropped\":%llu}\n",
                   (unsigned long long)(s->qlog ? lh_qlog_dropped(s->qlog) : 0));
}

void lh_report_stats(const lh_server *s, lh_sbuf *b, bool json)
{
    if (json)
        stats_json(s, b);
    else
        stats_text(s, b);
}

/* ---- lists ------------------------------------------------------------------------------- */

void lh_report_lists(const lh_server *s, lh_sbuf *b, bool json)
{
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
        lh_sbuf_printf(b, "],\"hosts_file\":");
        lh_sbuf_json_str(b, s->cfg->hosts_file ? s->cfg->hosts_file : "");
        lh_sbuf_printf(b, ",\"hosts_names\":%zu}\n", hosts);
    } else {
        if (!n) lh_sbuf_printf(b, "no lists loaded\n");
        if (s->cfg->hosts_file)
            lh_sbuf_printf(b, "hosts file %s: %zu names\n", s->cfg->hosts_file, hosts);
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

void lh_report_prometheus(const lh_server *s, lh_sbuf *b)
{
    const lh_counters *st = &s->stats;
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
    if (s->fwd_ready && s->fwd.cache_on) {
        const lh_cache *c = &s->fwd.cache;
        prom_head(b, "loophole_cache_entries", "gauge", "Answers in the cache.");
        prom_value(b, "loophole_cache_entries", NULL, NULL, c->count);
        prom_head(b, "loophole_cache_bytes", "gauge", "Bytes the cache holds.");
        prom_value(b, "loophole_cache_bytes", NULL, NULL, c->bytes);
        prom_head(b, "loophole_cache_max_bytes", "gauge", "The cache's bound (cache-size).");
        prom_value(b, "loophole_cache_max_bytes", NULL, NULL, c->limits.max_bytes);
        prom_head(b, "loophole_cache_hits_total", "counter", "Cache lookups that hit.");
        prom_value(b, "loophole_cache_hits_total", NULL, NULL, c->stats.hits);
        prom_head(b, "loophole_cache_misses_total", "counter", "Cache lookups that missed.");
        prom_value(b, "loophole_cache_misses_total", NULL, NULL, c->stats.misses);
        prom_head(b, "loophole_cache_evictions_total", "counter",
                  "Entries evicted to stay within cache-size.");
        prom_value(b, "loophole_cache_evictions_total", NULL, NULL, c->stats.evictions);
    }
    prom_head(b, "loophole_upstream_queries_total", "counter", "Queries sent, per upstream.");
    EACH_UPSTREAM(s, u)
    prom_value(b, "loophole_upstream_queries_total", "upstream", u->label, u->queries);
    prom_head(b, "loophole_upstream_failures_total", "counter",
              "Queries that failed (timeout, error, bad answer), per upstream.");
    EACH_UPSTREAM(s, u)
    prom_value(b, "loophole_upstream_failures_total", "upstream", u->label, u->failures);
    prom_head(b, "loophole_upstream_latency_seconds", "histogram",
              "Time to an upstream's answer, per upstream.");
    EACH_UPSTREAM(s, u)
    {
        uint64_t cum = 0;
        for (unsigned k = 0; k < LH_LATENCY_BUCKETS; k++) {
            cum += u->latency[k];
            lh_sbuf_printf(b, "loophole_upstream_latency_seconds_bucket{upstream=");
            prom_label(b, u->label);
            if (k < LH_LATENCY_BUCKETS - 1)
                lh_sbuf_printf(b, ",le=\"%g\"} %llu\n", lh_latency_bounds[k],
                               (unsigned long long)cum);
            else
                lh_sbuf_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        lh_sbuf_printf(b, "loophole_upstream_latency_seconds_sum{upstream=");
        prom_label(b, u->label);
        lh_sbuf_printf(b, "} %.6f\nloophole_upstream_latency_seconds_count{upstream=",
                       (double)u->latency_sum_ns / 1e9);
        prom_label(b, u->label);
        lh_sbuf_printf(b, "} %llu\n", (unsigned long long)cum);
    }
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
    prom_head(b, "loophole_tcp_connections", "gauge", "Open TCP connections.");
    prom_value(b, "loophole_tcp_connections", NULL, NULL, s->nconns);
    prom_head(b, "loophole_query_log_dropped_total", "counter",
              "Query log lines dropped because the disk did not keep up.");
    prom_value(b, "loophole_query_log_dropped_total", NULL, NULL,
               s->qlog ? lh_qlog_dropped(s->qlog) : 0);
}
