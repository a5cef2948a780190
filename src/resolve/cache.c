/* cache.c - see cache.h.
 *
 * Entry layout: the struct, then the key name (wire), the TTL offsets (u16 each) and the
 * answer bytes with TTLs as the upstream sent them. The served TTL is max(0, ttl - age),
 * where age counts from insertion; the entry expires when its clamped minimum TTL runs out. */
#include "loophole/cache.h"

#include <stdlib.h>
#include <string.h>

struct lh_cache_entry {
    lh_cache_entry *hnext;
    lh_cache_entry *prev, *next; /* LRU */
    uint64_t hash;
    uint64_t stored_ms, expires_ms;
    uint16_t qtype, qclass;
    uint8_t flags;
    uint8_t name_len;
    uint16_t nttl;
    uint16_t len;
    uint8_t dnssec;   /* LH_CACHE_DNSSEC_*: the verdict stored with the answer */
    uint8_t reason;   /* the verdict's reason (the forwarder's numbering) */
    uint32_t ttl_cap; /* a served TTL never exceeds the clamped TTL */
    uint8_t data[];   /* name | ttl offsets | answer */
};

static inline const uint8_t *entry_name(const lh_cache_entry *e)
{
    return e->data;
}
static inline const uint16_t *entry_ttl_offs(const lh_cache_entry *e)
{
    return (const uint16_t *)(e->data + ((e->name_len + 1u) & ~1u));
}
static inline const uint8_t *entry_answer(const lh_cache_entry *e)
{
    return (const uint8_t *)(entry_ttl_offs(e) + e->nttl);
}
static inline size_t entry_size(const lh_cache_entry *e)
{
    return sizeof *e + ((e->name_len + 1u) & ~1u) + e->nttl * 2u + e->len;
}

static uint64_t key_hash(const lh_cache_key *k)
{
    uint64_t h = k->name_hash ^ ((uint64_t)k->qtype << 32 | (uint64_t)k->qclass << 8 | k->flags);
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

int lh_cache_init(lh_cache *c, const lh_cache_limits *limits)
{
    memset(c, 0, sizeof *c);
    c->limits = *limits;
    /* About one bucket per 256 bytes of budget: short chains at typical answer sizes. */
    size_t n = 1024;
    while (n < limits->max_bytes / 256 && n < (1u << 24))
        n <<= 1;
    c->buckets = calloc(n, sizeof *c->buckets);
    if (!c->buckets) return -1;
    c->mask = n - 1;
    return 0;
}

static void lru_unlink(lh_cache *c, lh_cache_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->lru_tail = e->prev;
}

static void lru_push_front(lh_cache *c, lh_cache_entry *e)
{
    e->prev = NULL;
    e->next = c->lru_head;
    if (c->lru_head) c->lru_head->prev = e;
    c->lru_head = e;
    if (!c->lru_tail) c->lru_tail = e;
}

static void entry_remove(lh_cache *c, lh_cache_entry *e)
{
    lh_cache_entry **pp = &c->buckets[e->hash & c->mask];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->bytes -= entry_size(e);
    c->count--;
    free(e);
}

void lh_cache_flush(lh_cache *c)
{
    while (c->lru_head)
        entry_remove(c, c->lru_head);
}

void lh_cache_free(lh_cache *c)
{
    if (!c->buckets) return;
    lh_cache_flush(c);
    free(c->buckets);
    c->buckets = NULL;
}

static lh_cache_entry *find(const lh_cache *c, const lh_cache_key *k, uint64_t h)
{
    for (lh_cache_entry *e = c->buckets[h & c->mask]; e; e = e->hnext)
        if (e->hash == h && e->qtype == k->qtype && e->qclass == k->qclass &&
            e->flags == k->flags && e->name_len == k->name->len &&
            memcmp(entry_name(e), k->name->wire, k->name->len) == 0)
            return e;
    return NULL;
}

static uint32_t clamp(uint32_t v, uint32_t lo, uint32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

int lh_cache_insert(lh_cache *c, const lh_cache_key *key, const uint8_t *answer, size_t len,
                    const lh_answer_info *ai, uint64_t now_ms)
{
    return lh_cache_insert_dnssec(c, key, answer, len, ai, now_ms, LH_CACHE_DNSSEC_NONE, 0);
}

int lh_cache_insert_dnssec(lh_cache *c, const lh_cache_key *key, const uint8_t *answer, size_t len,
                           const lh_answer_info *ai, uint64_t now_ms, unsigned dnssec,
                           unsigned reason)
{
    uint32_t ttl;
    if (ai->too_many_rrs || ai->flags & LH_FLAG_TC || len > UINT16_MAX) return 1;
    if (ai->rcode == LH_RCODE_NOERROR && ai->an > 0) {
        ttl = clamp(ai->min_answer_ttl, c->limits.min_ttl, c->limits.max_ttl);
    } else if (ai->rcode == LH_RCODE_NXDOMAIN || ai->rcode == LH_RCODE_NOERROR) {
        if (!ai->has_soa) /* RFC 2308 5: no SOA, no negative caching */
            return 1;
        ttl = ai->negative_ttl < c->limits.max_negative_ttl ? ai->negative_ttl
                                                            : c->limits.max_negative_ttl;
    } else {
        return 1; /* SERVFAIL, REFUSED, ...: never cached */
    }
    /* A bogus answer is kept briefly (Unbound's val-bogus-ttl): long enough that a flood of
     * the same name costs no crypto, short enough that a repaired zone is seen soon. */
    if (dnssec == LH_CACHE_DNSSEC_BOGUS && ttl > LH_CACHE_BOGUS_TTL) ttl = LH_CACHE_BOGUS_TTL;
    if (ttl == 0) return 1;
    size_t name_pad = (key->name->len + 1u) & ~1u;
    size_t size = sizeof(lh_cache_entry) + name_pad + ai->nttl * 2u + len;
    if (size > c->limits.max_bytes / 4) /* one answer may not push out most of the cache */
        return 1;
    uint64_t h = key_hash(key);
    lh_cache_entry *old = find(c, key, h);
    if (old) entry_remove(c, old);
    while (c->bytes + size > c->limits.max_bytes && c->lru_tail) {
        entry_remove(c, c->lru_tail);
        c->stats.evictions++;
    }
    lh_cache_entry *e = malloc(size);
    if (!e) return -1;
    e->hash = h;
    e->qtype = key->qtype;
    e->qclass = key->qclass;
    e->flags = key->flags;
    e->name_len = (uint8_t)key->name->len;
    e->nttl = ai->nttl;
    e->len = (uint16_t)len;
    e->dnssec = (uint8_t)dnssec;
    e->reason = (uint8_t)reason;
    e->stored_ms = now_ms;
    e->expires_ms = now_ms + (uint64_t)ttl * 1000;
    e->ttl_cap = ttl;
    memcpy(e->data, key->name->wire, key->name->len);
    memcpy((uint8_t *)entry_ttl_offs(e), ai->ttl_off, ai->nttl * 2u);
    memcpy((uint8_t *)entry_answer(e), answer, len);
    e->hnext = c->buckets[h & c->mask];
    c->buckets[h & c->mask] = e;
    lru_push_front(c, e);
    c->bytes += size;
    c->count++;
    c->stats.inserts++;
    return 0;
}

enum lh_cache_result lh_cache_lookup(lh_cache *c, const lh_cache_key *key, uint64_t now_ms,
                                     bool want_stale, const lh_cache_entry **out)
{
    lh_cache_entry *e = find(c, key, key_hash(key));
    if (!e) {
        c->stats.misses++;
        return LH_CACHE_MISS;
    }
    if (now_ms < e->expires_ms) {
        lru_unlink(c, e);
        lru_push_front(c, e);
        c->stats.hits++;
        *out = e;
        return LH_CACHE_FRESH;
    }
    if (now_ms >= e->expires_ms + (uint64_t)c->limits.stale_window * 1000) {
        entry_remove(c, e); /* too old even to serve stale */
        c->stats.expired++;
        c->stats.misses++;
        return LH_CACHE_MISS;
    }
    if (!want_stale) {
        c->stats.misses++;
        return LH_CACHE_MISS;
    }
    c->stats.stale_hits++;
    *out = e;
    return LH_CACHE_STALE;
}

size_t lh_cache_write(const lh_cache_entry *e, const lh_msg *m, uint64_t now_ms, bool stale,
                      uint32_t stale_ttl, uint8_t *out, size_t cap)
{
    if (e->len > cap || m->question_end > e->len) return 0;
    const uint8_t *a = entry_answer(e);
    memcpy(out, a, e->len);
    lh_answer_patch_for_client(out, m);
    uint64_t age = now_ms > e->stored_ms ? (now_ms - e->stored_ms) / 1000 : 0;
    const uint16_t *offs = entry_ttl_offs(e);
    for (unsigned i = 0; i < e->nttl; i++) {
        uint32_t ttl = lh_rd32(out + offs[i]);
        if (stale)
            ttl = stale_ttl;
        else {
            if (ttl > e->ttl_cap) ttl = e->ttl_cap;
            ttl = ttl > age ? (uint32_t)(ttl - age) : 0;
        }
        lh_wr32(out + offs[i], ttl);
    }
    return e->len;
}

unsigned lh_cache_entry_dnssec(const lh_cache_entry *e, unsigned *reason)
{
    *reason = e->reason;
    return e->dnssec;
}

void lh_cache_collect(const lh_cache *c, lh_cache_figures *out)
{
    out->entries = c->count;
    out->bytes = c->bytes;
    out->max_bytes = c->limits.max_bytes;
    out->stats = c->stats;
}
