/* stats.c - counting answered queries; a bounded top-N; latency buckets. */
#include "loophole/stats.h"
#include "loophole/nameset.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

const char *const lh_outcome_names[LH_OUTCOME_COUNT] = {
    "local", "blocked", "cached", "forwarded", "stale", "failed", "refused", "error", "rebind"};

const char *const lh_dnssec_v_names[LH_DNSSEC_V_COUNT] = {"none", "secure", "insecure", "bogus",
                                                          "indeterminate"};

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

static lh_top_entry *top_bucket(lh_top *t, uint64_t key)
{
    return &t->e[((key ^ (key >> 29)) % LH_TOP_BUCKETS) * LH_TOP_WAYS];
}

/* Puts `key` into its bucket with `count` more hits: added to its entry, or replacing the
 * bucket's smallest, whose count it inherits as possible over-count. */
static lh_top_entry *top_add(lh_top *t, uint64_t key, uint64_t count, uint64_t error)
{
    lh_top_entry *b = top_bucket(t, key), *min = b;
    for (unsigned w = 0; w < LH_TOP_WAYS; w++) {
        if (b[w].count && b[w].key == key) {
            b[w].count += count;
            b[w].error += error;
            return NULL;
        }
        if (b[w].count < min->count) min = &b[w];
    }
    min->key = key;
    min->error = min->count + error;
    min->count += count;
    return min;
}

lh_top_entry *lh_top_find(lh_top *t, uint64_t key)
{
    lh_top_entry *b = top_bucket(t, key);
    for (unsigned w = 0; w < LH_TOP_WAYS; w++)
        if (b[w].count && b[w].key == key) return &b[w];
    return NULL;
}

void lh_top_hit(lh_top *t, uint64_t key, const uint8_t *raw, size_t len)
{
    lh_top_entry *e = top_add(t, key, 1, 0);
    if (!e) return;
    e->len = (uint8_t)(len < LH_TOP_RAW ? len : LH_TOP_RAW);
    memcpy(e->raw, raw, e->len);
}

void lh_top_name_text(const lh_top_entry *e, char *out, size_t cap)
{
    uint8_t wire[LH_TOP_RAW + 1];
    memcpy(wire, e->raw, e->len);
    wire[e->len] = 0; /* a name cut at LH_TOP_RAW still ends */
    char text[LH_NAME_MAX * 4 + 1];
    lh_name_to_text(wire, text, sizeof text);
    snprintf(out, cap, "%s", text);
}

void lh_top_address_text(const lh_top_entry *e, char *out, size_t cap)
{
    char text[INET6_ADDRSTRLEN] = "?";
    if (e->len >= 5) inet_ntop(e->raw[0] == 6 ? AF_INET6 : AF_INET, e->raw + 1, text, sizeof text);
    snprintf(out, cap, "%s", text);
}

void lh_top_merge(lh_top *a, const lh_top *b)
{
    for (unsigned i = 0; i < LH_TOP_ENTRIES; i++) {
        const lh_top_entry *in = &b->e[i];
        if (!in->count) continue;
        lh_top_entry *e = top_add(a, in->key, in->count, in->error);
        if (e) {
            e->len = in->len;
            memcpy(e->raw, in->raw, in->len);
        }
    }
}

unsigned lh_top_sorted(const lh_top *t, unsigned *order, unsigned max)
{
    unsigned n = 0;
    for (unsigned i = 0; i < LH_TOP_ENTRIES; i++) { /* insertion into the best `max` */
        if (!t->e[i].count) continue;
        unsigned j = n < max ? n++ : max;
        if (j == max && t->e[order[max - 1]].count >= t->e[i].count) continue;
        if (j == max) j = max - 1;
        while (j > 0 && t->e[order[j - 1]].count < t->e[i].count) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    return n;
}

/* The key and the bytes of a client address in top_clients: a family byte (4 or 6), then
 * the address. */
static uint64_t client_raw(const lh_sockaddr *a, uint8_t raw[17], size_t *len)
{
    const uint8_t *addr;
    size_t n = lh_addr_bytes(&a->sa, &addr);
    raw[0] = n == 16 ? 6 : 4;
    memcpy(raw + 1, addr, n);
    *len = n + 1;
    return lh_hash_bytes(0, raw, *len);
}

void lh_stats_record(lh_counters *s, const lh_query_end *q)
{
    s->outcomes[q->outcome]++;
    if (q->answer && q->answer_len >= 4) s->rcodes[q->answer[3] & 0xf]++;
    if (q->dnssec && q->dnssec < LH_DNSSEC_V_COUNT) {
        s->dnssec[q->dnssec]++;
        if (q->dnssec == LH_DNSSEC_V_BOGUS && q->dnssec_reason < LH_STATS_DNSSEC_REASONS)
            s->dnssec_bogus[q->dnssec_reason]++;
    }
    if (q->outcome != LH_OUTCOME_ERROR) s->qtypes[lh_stats_qtype_index(q->msg->qtype)]++;
    if (q->outcome == LH_OUTCOME_BLOCKED) {
        if (q->list >= 0 && q->list < LH_STATS_LISTS_MAX) s->blocked_by_list[q->list]++;
        lh_top_hit(&s->top_blocked, q->name_hash, q->msg->qname.wire, q->msg->qname.len);
    }
    const lh_sockaddr *c = q->client;
    if (!c || !c->sa.sa_family) return;
    lh_top_entry *last = s->last_client_entry;
    if (last && last->key == s->last_client_key && c->sa.sa_family == AF_INET &&
        s->last_client.sa.sa_family == AF_INET &&
        c->v4.sin_addr.s_addr == s->last_client.v4.sin_addr.s_addr) {
        last->count++;
        return;
    }
    uint8_t raw[17];
    size_t len;
    uint64_t key = client_raw(c, raw, &len);
    lh_top_hit(&s->top_clients, key, raw, len);
    s->last_client = *c;
    s->last_client_key = key;
    s->last_client_entry = lh_top_find(&s->top_clients, key);
}
