/* nameset.h - a compact set of DNS names with a 32-bit value each, built once and then only
 * read. Names live in one arena (no allocation per name); an open-addressing table of
 * (hash tag, arena offset) indexes them. Lookups of every suffix of a query name use hashes
 * computed once per query (lh_name_hashes), so matching costs one probe per label, flat in
 * the size of the set. */
#ifndef LH_NAMESET_H
#define LH_NAMESET_H

#include "loophole/wire.h"

#include <stdint.h>

typedef struct lh_nameset_slot {
    uint32_t tag; /* upper half of the name's hash */
    uint32_t ref; /* arena offset / 4 + 1; 0 marks an empty slot */
} lh_nameset_slot;

typedef struct lh_nameset {
    uint8_t *arena; /* records: u32 value, u8 wire length, wire name, padded to 4 bytes */
    size_t arena_len, arena_cap;
    lh_nameset_slot *slots;
    size_t mask; /* slot count - 1 (a power of two) */
    size_t count;
} lh_nameset;

#define LH_FNV_OFFSET 0xcbf29ce484222325ull
#define LH_FNV_PRIME 0x100000001b3ull

/* Seeded FNV-1a over raw bytes, its low bits mixed: for the small fixed tables (rate limits,
 * leak labels, top-N keys, hashed log clients). A random seed defeats chosen collisions. */
static inline uint64_t lh_hash_bytes(uint64_t seed, const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = LH_FNV_OFFSET ^ seed;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * LH_FNV_PRIME;
    return h ^ (h >> 29);
}

/* Hashes of every suffix of `n`: out[i] is the hash of the name starting at label i, and
 * out[n->nlabels] that of the root. Computed right to left in one pass over the name, each
 * label folded into the hash of its parent a word at a time. Compiled list snapshots store
 * these hashes' layout: change LH_NAME_HASH_VERSION with the function. */
#define LH_NAME_HASH_SEED 0x6c6f6f70686f6c65ull /* "loophole" */
#define LH_NAME_HASH_VERSION 2
void lh_name_hashes(const lh_name *n, uint64_t out[LH_LABELS_MAX]);
/* One step of it: the hash of `label` (its length byte, then its bytes) below the suffix whose
 * hash is `above`. Reads whole words: up to 7 bytes past the label must be readable. For the
 * build on disk (spill.c), which checks the records it reads back. */
uint64_t lh_label_hash(uint64_t above, const uint8_t *label);

int lh_nameset_init(lh_nameset *s, size_t expected);
void lh_nameset_free(lh_nameset *s);
/* Inserts the suffix of `n` starting at `label` (0 = the whole name) with hash `hash`, or
 * finds it. Returns a pointer to its value, valid until the next insert; *created says which.
 * NULL when memory runs out. */
uint32_t *lh_nameset_upsert(lh_nameset *s, const lh_name *n, unsigned label, uint64_t hash,
                            bool *created);
/* Looks up the suffix of `n` starting at `label`; returns its value or NULL. Inline up to
 * the first slot: most suffixes of most names hit an empty slot of the small sets (special
 * zones, forward zones), and the query path asks them for every label. */
const uint32_t *lh_nameset_find_slow(const lh_nameset *s, const lh_name *n, unsigned label,
                                     uint64_t hash, size_t slot);
/* FNV's low bits are weak; a finalizer spreads them before they pick a slot. */
static inline size_t lh_nameset_slot_of(uint64_t h, size_t mask)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (size_t)h & mask;
}
static inline const uint32_t *lh_nameset_find(const lh_nameset *s, const lh_name *n, unsigned label,
                                              uint64_t hash)
{
    size_t i = lh_nameset_slot_of(hash, s->mask);
    if (!s->slots[i].ref) return NULL;
    return lh_nameset_find_slow(s, n, label, hash, i);
}
/* Bytes of memory held. */
size_t lh_nameset_bytes(const lh_nameset *s);
/* Calls `fn` for every entry (order unspecified). */
void lh_nameset_each(const lh_nameset *s,
                     void (*fn)(void *ctx, const uint8_t *wire, uint32_t value), void *ctx);

#endif
