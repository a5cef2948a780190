/* stats.c - counting answered queries; a bounded top-N; latency buckets. */
#include "loophole/stats.h"

#include <stdio.h>
#include <string.h>

const char *const lh_outcome_names[LH_OUTCOME_COUNT] = {"local", "blocked", "cached",  "forwarded",
                                                        "stale", "failed",  "refused", "error"};

const uint16_t lh_stats_qtypes[LH_STATS_QTYPES] = {
    LH_TYPE_A,   LH_TYPE_AAAA, LH_TYPE_HTTPS,   LH_TYPE_SVCB,  LH_TYPE_PTR,
    LH_TYPE_TXT, LH_TYPE_MX,   33 /* SRV */,    LH_TYPE_CNAME, LH_TYPE_NS,
    LH_TYPE_SOA, 43 /* DS */,  48 /* DNSKEY */, LH_TYPE_ANY};

const double lh_latency_bounds[LH_LATENCY_BUCKETS - 1] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                          0.05,   0.1,   0.25,   0.5,   1.0};

unsigned lh_latency_bucket(uint64_t ns)
{
    double s = (double)ns / 1e9;
    unsigned i = 0;
    while (i < LH_LATENCY_BUCKETS - 1 && s > lh_latency_bounds[i])
        i++;
    return i;
}

unsigned lh_stats_qtype_index(uint16_t qtype)
{
    unsigned i = 0;
    while (i < LH_STATS_QTYPES && lh_stats_qtypes[i] != qtype)
        i++;
    return i;
}

void lh_top_hit(lh_top *t, uint64_t key, void (*describe)(const void *, char *, size_t),
                const void *arg)
{
    if (t->n && t->e[t->last].key == key) {
        t->e[t->last].count++;
        return;
    }
    unsigned min = 0;
    for (unsigned i = 0; i < t->n; i++) {
        if (t->e[i].key == key) {
            t->e[i].count++;
            t->last = i;
            return;
        }
        if (t->e[i].count < t->e[min].count) min = i;
    }
    uint64_t inherited = 0;
    if (t->n < LH_TOP_MAX) {
        min = t->n++;
    } else {
        inherited = t->e[min].count; /* space-saving: the newcomer may have been it before */
    }
    lh_top_entry *e = &t->e[min];
    e->key = key;
    e->count = inherited + 1;
    e->error = inherited;
    describe(arg, e->text, sizeof e->text);
    t->last = min;
}

void lh_top_merge(lh_top *a, const lh_top *b)
{
    lh_top_entry all[2 * LH_TOP_MAX];
    unsigned n = a->n, order[2 * LH_TOP_MAX];
    memcpy(all, a->e, n * sizeof *all);
    for (unsigned i = 0; i < b->n; i++) {
        unsigned k = 0;
        while (k < n && all[k].key != b->e[i].key)
            k++;
        if (k == n) {
            all[n++] = b->e[i];
        } else {
            all[k].count += b->e[i].count;
            all[k].error += b->e[i].error;
        }
    }
    for (unsigned i = 0; i < n; i++) { /* by count, largest first */
        unsigned j = i;
        while (j > 0 && all[order[j - 1]].count < all[i].count) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    a->n = n < LH_TOP_MAX ? n : LH_TOP_MAX;
    a->last = 0;
    for (unsigned i = 0; i < a->n; i++)
        a->e[i] = all[order[i]];
}

unsigned lh_top_sorted(const lh_top *t, unsigned *order)
{
    for (unsigned i = 0; i < t->n; i++) {
        unsigned j = i;
        while (j > 0 && t->e[order[j - 1]].count < t->e[i].count) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    return t->n;
}

static void describe_name(const void *arg, char *out, size_t cap)
{
    char text[LH_NAME_MAX * 4 + 1];
    lh_name_to_text(((const lh_msg *)arg)->qname.wire, text, sizeof text);
    snprintf(out, cap, "%s", text);
}

static void describe_client(const void *arg, char *out, size_t cap)
{
    const lh_sockaddr *a = arg;
    char text[64];
    lh_addr_format(a, text, sizeof text);
    char *port = strrchr(text, ':'); /* the address only: ports change per query */
    if (port) *port = 0;
    snprintf(out, cap, "%s", text[0] == '[' ? text + 1 : text);
    size_t n = strlen(out);
    if (n && out[n - 1] == ']') out[n - 1] = 0;
}

static uint64_t client_key(const lh_sockaddr *a)
{
    const uint8_t *p;
    size_t n;
    if (a->sa.sa_family == AF_INET6) {
        p = a->v6.sin6_addr.s6_addr;
        n = 16;
    } else {
        p = (const uint8_t *)&a->v4.sin_addr;
        n = 4;
    }
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)a->sa.sa_family;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

void lh_stats_record(lh_counters *s, const lh_query_end *q)
{
    s->outcomes[q->outcome]++;
    if (q->answer && q->answer_len >= 4) s->rcodes[q->answer[3] & 0xf]++;
    if (q->outcome != LH_OUTCOME_ERROR) s->qtypes[lh_stats_qtype_index(q->msg->qtype)]++;
    if (q->outcome == LH_OUTCOME_BLOCKED) {
        if (q->list >= 0 && q->list < LH_STATS_LISTS_MAX) s->blocked_by_list[q->list]++;
        lh_top_hit(&s->top_blocked, q->name_hash, describe_name, q->msg);
    }
    if (q->client && q->client->sa.sa_family)
        lh_top_hit(&s->top_clients, client_key(q->client), describe_client, q->client);
}
