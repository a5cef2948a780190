/* nametree.h - the block/allow name rules of every list, stored as a tree of labels in a
 * compact, position-independent form that can live in a read-only mapping (the compiled list
 * snapshot) as well as on the heap.
 *
 * Every suffix of every rule name is a node: "ads.example.com" makes the nodes "com",
 * "example" (under "com") and "ads" (under "example"). A node stores its label once and a
 * reference to its parent, so the labels that names share (the zone and the registered
 * domain of a list's million names) are stored once. Nodes are keyed by the hash of the
 * whole suffix they stand for (lh_name_hashes), grouped into 2^k buckets by the hash's top
 * bits; a bucket holds about one node on average, contiguous in memory. A lookup walks
 * the query name from the root: one bucket per label, and it stops at the first suffix no
 * rule has, so most names that are not blocked cost one or two probes, whatever the size.
 *
 * Frozen node record (byte-packed, no padding):
 *   u32 parent   offset + 1 of the parent node, 0 under the root
 *   u8  tag      low byte of the suffix hash (rejects most bucket mates without a compare)
 *   u8  bits     LH_BS_* bits of the rules for this exact name, 0 for an interior node
 *   u16 list     index of the first list that had a rule for this name
 *   u8  len      label length
 *   label bytes
 * A build appends records in insertion order with the suffix hash's top 32 bits in front,
 * into one of 256 arenas chosen by the hash's top 8 bits, indexed by a growable
 * open-addressing table; lh_nametree_freeze regroups them by bucket, rewrites the parent
 * references and frees the build state. The arenas are what keeps a reload's peak down: a
 * bucket's records all come from one arena, so the freeze fills the frozen block arena by
 * arena, front to back, and unmaps each arena as soon as it is copied; the build records and
 * the frozen copy are never both whole in memory. */
#ifndef LH_NAMETREE_H
#define LH_NAMETREE_H

#include "loophole/wire.h"

#include <stdint.h>
#include <string.h>

#define LH_NT_HDR 9u          /* frozen record bytes before the label */
#define LH_NT_LISTS_MAX 65535 /* lists a tree can tell apart (u16) */
#define LH_NT_ARENAS 256u     /* build arenas, by the suffix hash's top 8 bits */

typedef struct lh_nametree {
    /* Frozen form: valid once frozen; may point into a read-only mapping. */
    const uint8_t *recs; /* node records, grouped by bucket */
    size_t recs_len;
    const uint32_t *dir; /* 2^bits + 1 record offsets: bucket b is [dir[b], dir[b + 1]) */
    unsigned bits;
    unsigned shift;      /* 64 - bits: a hash's bucket is hash >> shift */
    size_t nodes, names; /* all nodes; nodes with rule bits */
    bool frozen;
    void *heap; /* the block recs and dir live in when not mapped */
    /* Build state (NULL once frozen). A build reference is (arena << 24) | (offset + 1). */
    struct lh_nametree_arena *arenas; /* LH_NT_ARENAS of them: u32 hash top bits, then a
                                         frozen-layout record */
    size_t arena_len;                 /* bytes in all of them */
    uint32_t *slots;                  /* arena offset + 1, 0 empty */
    size_t mask;
} lh_nametree;

int lh_nametree_init(lh_nametree *t, size_t expected_names);
void lh_nametree_free(lh_nametree *t);
/* Adds the rule bits for name `n` (whose suffix hashes are `h`), creating the nodes it needs.
 * A name that already has rules keeps its first list and gains the bits. Returns 0, -1 when
 * memory runs out. Only before freezing. */
int lh_nametree_add(lh_nametree *t, const lh_name *n, const uint64_t *h, uint8_t bits,
                    uint16_t list);
/* Turns the build into the compact lookup form. Returns 0, -1 when memory runs out (the tree
 * is then empty but valid). */
int lh_nametree_freeze(lh_nametree *t);
/* Adopts frozen arrays (e.g. from a mapped snapshot; not copied, not freed). The caller has
 * checked them with lh_nametree_check. */
void lh_nametree_adopt(lh_nametree *t, const uint8_t *recs, size_t recs_len, const uint32_t *dir,
                       unsigned bits, size_t nodes, size_t names);
/* Checks frozen arrays from an untrusted source (dir holds 2^bits + 1 entries): the buckets
 * tile the records exactly, no record crosses its bucket's end, labels are at most 63 bytes,
 * rule bits are known ones, list indices are below `nlists`, and the counts match. What a
 * lookup reads is then inside the arrays. Returns NULL or the reason they are unusable. */
const char *lh_nametree_check(const uint8_t *recs, size_t recs_len, const uint32_t *dir,
                              unsigned bits, size_t nodes, size_t names, size_t nlists);
/* The same check in parts, for a caller that reads a big mapped tree a stretch at a time:
 * the frame (bucket count, size, the directory's ends), then buckets [from, to), adding the
 * nodes and the named nodes seen to *seen and *named; the counts are the caller's to compare. */
const char *lh_nametree_check_frame(const uint8_t *recs, size_t recs_len, const uint32_t *dir,
                                    unsigned bits);
const char *lh_nametree_check_buckets(const uint8_t *recs, size_t recs_len, const uint32_t *dir,
                                      size_t from, size_t to, size_t nlists, size_t *seen,
                                      size_t *named);
/* Bytes held (heap or mapped). */
size_t lh_nametree_bytes(const lh_nametree *t);

/* Are the `n` bytes at a (a record's length byte and label) and b (a query name's) the same?
 * Whole words: records are followed by LH_NT_PAD bytes and names by their other fields, so
 * the reads stay inside both; the last word's bytes past `n` are shifted out. Starting at the
 * length byte folds the length check into the first word. */
#define LH_NT_PAD 8u
static inline bool lh_nametree_same(const uint8_t *a, const uint8_t *b, unsigned n)
{
    uint64_t x, y;
    for (; n > 8; n -= 8, a += 8, b += 8) {
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) return false;
    }
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    uint64_t d = x ^ y;
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    d = __builtin_bswap64(d);
#endif
    return (d << (64 - 8 * n)) == 0; /* 1 <= n <= 8: the shift is 0..56 */
}

/* The child of node `parent` (0: the root) for the suffix of `n` starting at `label`, whose
 * hash is `hash`. Returns its reference (offset + 1), or 0. Frozen trees only. */
static inline uint32_t lh_nametree_child(const lh_nametree *t, uint32_t parent, const lh_name *n,
                                         unsigned label, uint64_t hash)
{
    size_t b = (size_t)(hash >> t->shift);
    const uint8_t *lab = n->wire + n->label_off[label];
    const uint8_t *p = t->recs + t->dir[b], *end = t->recs + t->dir[b + 1];
    uint8_t tag = (uint8_t)hash;
    while (p < end) {
        uint32_t par;
        memcpy(&par, p, 4);
        if (p[4] == tag && par == parent && lh_nametree_same(p + 8, lab, lab[0] + 1u))
            return (uint32_t)(p - t->recs) + 1;
        p += LH_NT_HDR + p[8];
    }
    return 0;
}

static inline uint8_t lh_nametree_bits(const lh_nametree *t, uint32_t ref)
{
    return t->recs[ref - 1 + 5];
}

static inline uint16_t lh_nametree_list(const lh_nametree *t, uint32_t ref)
{
    uint16_t l;
    memcpy(&l, t->recs + ref - 1 + 6, 2);
    return l;
}

#endif
