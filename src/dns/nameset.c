/* nameset.c - see nameset.h. */
#include "loophole/nameset.h"

#include <stdlib.h>
#include <string.h>

/* One label folded into the hash of the suffix above it, 8 bytes at a time (length byte
 * included, so "ab" + "c" and "a" + "bc" differ). Reading a whole word past the label's end
 * stays inside the lh_name (wire[] is followed by its other fields); those bytes are masked. */
static inline uint64_t label_hash(uint64_t h, const uint8_t *p)
{
    unsigned rem = p[0] + 1u;
    uint64_t x = h;
    for (;;) {
        uint64_t c;
        memcpy(&c, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        c = __builtin_bswap64(c);
#endif
        if (rem < 8) c &= ~0ull >> (64 - rem * 8);
        x = (x ^ c) * 0x9e3779b97f4a7c15ull;
        x ^= x >> 32;
        if (rem <= 8) break;
        p += 8;
        rem -= 8;
    }
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 32);
}

uint64_t lh_label_hash(uint64_t above, const uint8_t *label)
{
    return label_hash(above, label);
}

void lh_name_hashes(const lh_name *n, uint64_t out[LH_LABELS_MAX])
{
    uint64_t h = LH_NAME_HASH_SEED;
    out[n->nlabels] = h;
    for (int i = (int)n->nlabels - 1; i >= 0; i--)
        out[i] = h = label_hash(h, n->wire + n->label_off[i]);
}

#define slot_of lh_nameset_slot_of

static inline const uint8_t *record(const lh_nameset *s, uint32_t ref)
{
    return s->arena + (size_t)(ref - 1) * 4;
}

int lh_nameset_init(lh_nameset *s, size_t expected)
{
    memset(s, 0, sizeof *s);
    size_t n = 16;
    while (n < expected + expected / 3 + 1) /* keep the load under 3/4 */
        n <<= 1;
    s->slots = calloc(n, sizeof *s->slots);
    if (!s->slots) return -1;
    s->mask = n - 1;
    s->arena_cap = expected * 24 + 64;
    s->arena = malloc(s->arena_cap);
    if (!s->arena) {
        free(s->slots);
        s->slots = NULL;
        return -1;
    }
    return 0;
}

void lh_nameset_free(lh_nameset *s)
{
    free(s->slots);
    free(s->arena);
    memset(s, 0, sizeof *s);
}

static inline bool same_name(const uint8_t *rec, const uint8_t *wire, uint16_t len)
{
    return rec[4] == len - 1 && memcmp(rec + 5, wire, len) == 0;
}

const uint32_t *lh_nameset_find_slow(const lh_nameset *s, const lh_name *n, unsigned label,
                                     uint64_t hash, size_t slot)
{
    const uint8_t *wire = n->wire + n->label_off[label];
    uint16_t len = lh_name_suffix_len(n, label);
    uint32_t tag = (uint32_t)(hash >> 32);
    for (size_t i = slot;; i = (i + 1) & s->mask) {
        const lh_nameset_slot *sl = &s->slots[i];
        if (!sl->ref) return NULL;
        if (sl->tag == tag) {
            const uint8_t *rec = record(s, sl->ref);
            if (same_name(rec, wire, len)) return (const uint32_t *)rec;
        }
    }
}

/* Re-hashes one record to place it in a grown table. */
static uint64_t record_hash(const uint8_t *rec)
{
    lh_name n;
    n.len = 0;
    n.nlabels = 0;
    const uint8_t *w = rec + 5;
    while (w[n.len]) {
        n.label_off[n.nlabels++] = (uint8_t)n.len;
        n.len = (uint16_t)(n.len + 1 + w[n.len]);
    }
    n.label_off[n.nlabels] = (uint8_t)n.len;
    memcpy(n.wire, w, n.len + 1u);
    n.len++;
    uint64_t h[LH_LABELS_MAX];
    lh_name_hashes(&n, h);
    return h[0];
}

static int grow_table(lh_nameset *s)
{
    size_t n = (s->mask + 1) * 2;
    lh_nameset_slot *slots = calloc(n, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i <= s->mask; i++) {
        if (!s->slots[i].ref) continue;
        uint64_t h = record_hash(record(s, s->slots[i].ref));
        size_t j = slot_of(h, n - 1);
        while (slots[j].ref)
            j = (j + 1) & (n - 1);
        slots[j] = s->slots[i];
    }
    free(s->slots);
    s->slots = slots;
    s->mask = n - 1;
    return 0;
}

uint32_t *lh_nameset_upsert(lh_nameset *s, const lh_name *n, unsigned label, uint64_t hash,
                            bool *created)
{
    const uint8_t *wire = n->wire + n->label_off[label];
    uint16_t len = lh_name_suffix_len(n, label);
    uint32_t tag = (uint32_t)(hash >> 32);
    *created = false;
    size_t i = slot_of(hash, s->mask);
    for (;; i = (i + 1) & s->mask) {
        lh_nameset_slot *sl = &s->slots[i];
        if (!sl->ref) break;
        if (sl->tag == tag) {
            uint8_t *rec = s->arena + (size_t)(sl->ref - 1) * 4;
            if (same_name(rec, wire, len)) return (uint32_t *)rec;
        }
    }
    size_t need = (5u + len + 3u) & ~3u;
    if (s->arena_len + need > s->arena_cap) {
        size_t cap = s->arena_cap * 2 + need;
        if (cap / 4 >= UINT32_MAX) return NULL;
        uint8_t *a = realloc(s->arena, cap);
        if (!a) return NULL;
        s->arena = a;
        s->arena_cap = cap;
    }
    uint8_t *rec = s->arena + s->arena_len;
    memset(rec, 0, need);
    rec[4] = (uint8_t)(len - 1); /* wire length without the root byte fits in a byte */
    memcpy(rec + 5, wire, len);
    uint32_t ref = (uint32_t)(s->arena_len / 4 + 1);
    s->arena_len += need;
    s->slots[i].tag = tag;
    s->slots[i].ref = ref;
    s->count++;
    *created = true;
    if (s->count * 4 >= (s->mask + 1) * 3 && grow_table(s) != 0) return NULL;
    return (uint32_t *)(s->arena + (size_t)(ref - 1) * 4);
}

size_t lh_nameset_bytes(const lh_nameset *s)
{
    return s->arena_cap + (s->mask + 1) * sizeof *s->slots;
}

void lh_nameset_each(const lh_nameset *s,
                     void (*fn)(void *ctx, const uint8_t *wire, uint32_t value), void *ctx)
{
    for (size_t off = 0; off < s->arena_len;) {
        const uint8_t *rec = s->arena + off;
        uint32_t v;
        memcpy(&v, rec, 4);
        fn(ctx, rec + 5, v);
        off += (5u + rec[4] + 1u + 3u) & ~3u;
    }
}
