/* dnssec_cache.c - validated DNSKEY RRsets and proven zone-cut facts, keyed by owner name, in
 * a fixed table of 4-way buckets; entries expire with their TTLs (see dnssec.h). */
#include "dnssec_private.h"

#include <openssl/evp.h>

/* ---------------------------------------------------------------- cache */

lh_dnssec_cache *lh_dnssec_cache_new(unsigned entries)
{
    lh_dnssec_cache *c = calloc(1, sizeof *c);
    if (!c || entries == 0) return c;
    unsigned cap = 8;
    while (cap < entries && cap < (1u << 20))
        cap <<= 1;
    c->slots = calloc(cap, sizeof *c->slots);
    c->sigs = calloc(LH_SIGSEEN, sizeof *c->sigs);
    if (!c->slots || !c->sigs) {
        free(c->slots);
        free(c->sigs);
        free(c);
        return NULL;
    }
    c->cap = cap;
    return c;
}

static void centry_clear(centry *e)
{
    ldns_rdf_deep_free(e->name);
    lh_keyset_unref(e->keys);
    memset(e, 0, sizeof *e);
}

void lh_dnssec_cache_free(lh_dnssec_cache *c)
{
    if (!c) return;
    for (unsigned i = 0; i < c->cap; i++)
        centry_clear(&c->slots[i]);
    free(c->slots);
    free(c->sigs);
    for (unsigned i = 0; i < LH_MDS; i++)
        EVP_MD_free(c->md[i]);
    EVP_MD_CTX_free(c->mdctx);
    if (c->buf) ldns_buffer_free(c->buf);
    free(c);
}

void lh_dnssec_cache_stats_get(const lh_dnssec_cache *c, time_t now, lh_dnssec_cache_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!c) return;
    out->hits = c->hits;
    out->misses = c->misses;
    out->inserts = c->inserts;
    out->evictions = c->evictions;
    out->capacity = c->cap;
    for (unsigned i = 0; i < c->cap; i++)
        out->used += c->slots[i].fact && c->slots[i].expires > now;
}

static uint64_t name_hash(const ldns_rdf *d) /* over the lower-cased wire form */
{
    uint64_t h = 14695981039346656037ull;
    const uint8_t *p = ldns_rdf_data(d);
    for (size_t i = 0; i < ldns_rdf_size(d); i++) {
        uint8_t b = p[i];
        if (b >= 'A' && b <= 'Z') b += 32;
        h = (h ^ b) * 1099511628211ull;
    }
    return h;
}

const centry *lh_dnssec_cache_get(lh_dnssec_cache *c, const ldns_rdf *name, time_t now)
{
    if (!c || !c->cap) return NULL;
    uint64_t h = name_hash(name);
    centry *b = &c->slots[h & (c->cap - 1) & ~3u];
    for (int i = 0; i < 4; i++)
        if (b[i].fact && b[i].hash == h && b[i].expires > now && name_eq(b[i].name, name)) {
            c->hits++;
            return &b[i];
        }
    c->misses++;
    return NULL;
}

/* Stores a fact with a reference to keys. Replaces the same name, else a free or expired slot, else
 * the entry of the bucket that expires first. */
void lh_dnssec_cache_put(lh_dnssec_cache *c, const ldns_rdf *name, enum fact f, uint8_t reason,
                         keyset *keys, uint32_t ttl, time_t now, const char *desc)
{
    if (!c || !c->cap || ttl == 0) return;
    uint64_t h = name_hash(name);
    centry *b = &c->slots[h & (c->cap - 1) & ~3u], *slot = NULL;
    for (int i = 0; i < 4 && !slot; i++)
        if (b[i].fact && b[i].hash == h && name_eq(b[i].name, name)) slot = &b[i];
    for (int i = 0; i < 4 && !slot; i++)
        if (!b[i].fact || b[i].expires <= now) slot = &b[i];
    if (!slot) {
        slot = &b[0];
        for (int i = 1; i < 4; i++)
            if (b[i].expires < slot->expires) slot = &b[i];
        c->evictions++;
    }
    centry_clear(slot);
    slot->name = ldns_rdf_clone(name);
    slot->keys = lh_keyset_ref(keys);
    if (!slot->name) {
        centry_clear(slot);
        return;
    }
    ldns_dname2canonical(slot->name);
    slot->hash = h;
    slot->fact = (uint8_t)f;
    slot->reason = reason;
    slot->expires = now + ttl;
    snprintf(slot->desc, sizeof slot->desc, "%s", desc);
    c->inserts++;
}
