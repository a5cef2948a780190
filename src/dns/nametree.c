/* nametree.c - see nametree.h. */
#include "loophole/nametree.h"

#include <stdlib.h>
#include <sys/mman.h>

#define BUILD_HDR 4u /* the suffix hash's top 32 bits, in front of a build record */

static inline uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline void wr32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

/* The build index's slot for a hash's top bits (they are well mixed already). */
static inline size_t build_slot(uint32_t hi, size_t mask)
{
    return (size_t)(hi * 0x9e3779b1u) & mask;
}

static size_t table_size(size_t expected)
{
    size_t n = 16;
    while (n < expected + expected / 3 + 1) /* keep the load under 3/4 */
        n <<= 1;
    return n;
}

/* One build arena. Mapped directly (not malloc'd): unmapping it at the freeze hands its pages
 * back at once, whatever malloc's thresholds have become. */
struct lh_nametree_arena {
    uint8_t *buf;
    size_t len, cap;
};

#define ARENA_SHIFT 24u /* a reference's arena index sits above a 24-bit offset + 1 */
#define ARENA_MAX (((size_t)1 << ARENA_SHIFT) - 1)

static inline uint8_t *build_rec(const lh_nametree *t, uint32_t ref)
{
    return t->arenas[ref >> ARENA_SHIFT].buf + (ref & ARENA_MAX) - 1;
}

static void arenas_free(lh_nametree *t)
{
    if (!t->arenas) return;
    for (unsigned g = 0; g < LH_NT_ARENAS; g++)
        if (t->arenas[g].buf) munmap(t->arenas[g].buf, t->arenas[g].cap);
    free(t->arenas);
    t->arenas = NULL;
}

int lh_nametree_init(lh_nametree *t, size_t expected_names)
{
    memset(t, 0, sizeof *t);
    /* A name adds about one node (its own label) once the lists' zones exist. */
    size_t n = table_size(expected_names + 16);
    t->slots = calloc(n, sizeof *t->slots);
    t->arenas = calloc(LH_NT_ARENAS, sizeof *t->arenas);
    if (!t->slots || !t->arenas) {
        lh_nametree_free(t);
        return -1;
    }
    t->mask = n - 1;
    return 0;
}

void lh_nametree_free(lh_nametree *t)
{
    free(t->slots);
    arenas_free(t);
    free(t->heap);
    memset(t, 0, sizeof *t);
}

static int grow_index(lh_nametree *t)
{
    size_t n = (t->mask + 1) * 2;
    uint32_t *slots = calloc(n, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i <= t->mask; i++) {
        uint32_t ref = t->slots[i];
        if (!ref) continue;
        size_t j = build_slot(rd32(build_rec(t, ref)), n - 1);
        while (slots[j])
            j = (j + 1) & (n - 1);
        slots[j] = ref;
    }
    free(t->slots);
    t->slots = slots;
    t->mask = n - 1;
    return 0;
}

/* Room for `need` more bytes in arena `a`; false when memory (or the 24-bit offset) runs out. */
static bool arena_room(struct lh_nametree_arena *a, size_t need)
{
    if (a->len + need <= a->cap) return true;
    size_t cap = a->cap ? a->cap * 2 : 64 * 1024;
    while (cap < a->len + need)
        cap *= 2;
    if (a->len + need > ARENA_MAX) return false;
    void *m = a->buf ? mremap(a->buf, a->cap, cap, MREMAP_MAYMOVE)
                     : mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return false;
    a->buf = m;
    a->cap = cap;
    return true;
}

/* The build node for the suffix of `n` at `label` under `parent`, created if new. Returns its
 * reference, 0 when memory runs out. */
static uint32_t build_node(lh_nametree *t, uint32_t parent, const lh_name *n, unsigned label,
                           uint64_t hash)
{
    const uint8_t *lab = n->wire + n->label_off[label];
    uint32_t hi = (uint32_t)(hash >> 32);
    size_t i = build_slot(hi, t->mask);
    for (;; i = (i + 1) & t->mask) {
        uint32_t ref = t->slots[i];
        if (!ref) break;
        const uint8_t *r = build_rec(t, ref);
        if (rd32(r) == hi && rd32(r + 4) == parent && r[4 + 8] == lab[0] &&
            !memcmp(r + 4 + 9, lab + 1, lab[0]))
            return ref;
    }
    size_t need = BUILD_HDR + LH_NT_HDR + lab[0];
    unsigned g = hi >> (32 - 8);
    struct lh_nametree_arena *a = &t->arenas[g];
    if (!arena_room(a, need)) return 0;
    uint8_t *r = a->buf + a->len;
    wr32(r, hi);
    wr32(r + 4, parent);
    r[4 + 4] = (uint8_t)hash;
    r[4 + 5] = 0;
    r[4 + 6] = r[4 + 7] = 0;
    memcpy(r + 4 + 8, lab, 1u + lab[0]);
    uint32_t ref = (uint32_t)g << ARENA_SHIFT | (uint32_t)(a->len + 1);
    a->len += need;
    t->arena_len += need;
    t->slots[i] = ref;
    t->nodes++;
    if (t->nodes * 4 >= (t->mask + 1) * 3 && grow_index(t) != 0) return 0;
    return ref;
}

int lh_nametree_add(lh_nametree *t, const lh_name *n, const uint64_t *h, uint8_t bits,
                    uint16_t list)
{
    uint32_t ref = 0;
    for (int i = (int)n->nlabels - 1; i >= 0; i--)
        if (!(ref = build_node(t, ref, n, (unsigned)i, h[i]))) return -1;
    if (!ref) return 0; /* the root: no rule can name it */
    uint8_t *r = build_rec(t, ref) + BUILD_HDR;
    if (!r[5]) {
        memcpy(r + 6, &list, 2);
        t->names++;
    }
    r[5] |= bits;
    return 0;
}

/* Every build record in arena order: `body` runs with the record, its size without the build
 * header bound to `sz`. */
#define EACH_REC(t, r, sz, body)                                                                   \
    for (unsigned g_ = 0; g_ < LH_NT_ARENAS; g_++)                                                 \
        for (size_t o_ = 0; o_ < (t)->arenas[g_].len;) {                                           \
            uint8_t *r = (t)->arenas[g_].buf + o_;                                                 \
            size_t sz = LH_NT_HDR + r[4 + 8];                                                      \
            body;                                                                                  \
            o_ += BUILD_HDR + sz;                                                                  \
        }

int lh_nametree_freeze(lh_nametree *t)
{
    free(t->slots);
    t->slots = NULL;
    if (t->arena_len >= UINT32_MAX) { /* frozen offsets are 32 bits */
        lh_nametree_free(t);
        return -1;
    }
    /* 2^bits buckets, at least 2/3 of the nodes: 0.67 to 1.33 nodes a bucket, so a lookup
     * costs the same at 1,000 names as at 5 million (a directory entry is 4 bytes: 3 to 6 a
     * node). */
    unsigned bits = 1;
    while (bits < 31 && ((size_t)1 << bits) * 3 < t->nodes * 2)
        bits++;
    size_t nb = (size_t)1 << bits;
    size_t recs_len = t->arena_len - t->nodes * BUILD_HDR;
    /* One block for the directory and the records, so a snapshot can be written as is. */
    size_t dir_bytes = (nb + 1) * sizeof(uint32_t);
    uint8_t *heap = malloc(dir_bytes + recs_len + LH_NT_PAD);
    if (!heap) {
        lh_nametree_free(t);
        return -1;
    }
    uint32_t *dir = (uint32_t *)heap;
    uint8_t *recs = heap + dir_bytes;
    memset(dir, 0, dir_bytes);
    unsigned shift = 32 - bits;
    /* Bytes per bucket, then each bucket's start. */
    EACH_REC(t, r, sz, dir[(rd32(r) >> shift) + 1] += (uint32_t)sz);
    for (size_t b = 0; b < nb; b++)
        dir[b + 1] += dir[b];
    /* Every record's place; its build header now remembers it. dir[b] advances to the end of
     * bucket b (the start of b + 1) and is shifted back afterwards. */
    EACH_REC(t, r, sz, {
        uint32_t b = rd32(r) >> shift;
        wr32(r, dir[b]);
        dir[b] += (uint32_t)sz;
    });
    memmove(dir + 1, dir, nb * sizeof *dir);
    dir[0] = 0;
    /* Parents: build references into frozen ones, while every arena is still there. */
    EACH_REC(t, r, sz, {
        uint32_t p = rd32(r + 4);
        if (p) wr32(r + 4, rd32(build_rec(t, p)) + 1);
    });
    /* Copy, arena by arena: an arena's records fill the next stretch of the frozen block (the
     * arenas are ordered as the buckets are), and the arena goes as soon as it is copied. */
    for (unsigned g = 0; g < LH_NT_ARENAS; g++) {
        struct lh_nametree_arena *a = &t->arenas[g];
        for (size_t off = 0; off < a->len;) {
            const uint8_t *r = a->buf + off;
            size_t sz = LH_NT_HDR + r[4 + 8];
            memcpy(recs + rd32(r), r + BUILD_HDR, sz);
            off += BUILD_HDR + sz;
        }
        if (a->buf) munmap(a->buf, a->cap);
        a->buf = NULL;
        a->len = a->cap = 0;
    }
    memset(recs + recs_len, 0, LH_NT_PAD);
    arenas_free(t);
    t->arena_len = 0;
    t->heap = heap;
    t->recs = recs;
    t->recs_len = recs_len;
    t->dir = dir;
    t->bits = bits;
    t->shift = 64 - bits;
    t->frozen = true;
    return 0;
}

void lh_nametree_adopt(lh_nametree *t, const uint8_t *recs, size_t recs_len, const uint32_t *dir,
                       unsigned bits, size_t nodes, size_t names)
{
    memset(t, 0, sizeof *t);
    t->recs = recs;
    t->recs_len = recs_len;
    t->dir = dir;
    t->bits = bits;
    t->shift = 64 - bits;
    t->nodes = nodes;
    t->names = names;
    t->frozen = true;
}

const char *lh_nametree_check_buckets(const uint8_t *recs, size_t recs_len, const uint32_t *dir,
                                      size_t from, size_t to, size_t nlists, size_t *seen,
                                      size_t *named)
{
    for (size_t b = from; b < to; b++) {
        size_t off = dir[b], end = dir[b + 1];
        if (end < off || end > recs_len) return "directory out of order";
        while (off < end) {
            if (end - off < LH_NT_HDR || recs[off + 8] > 63 ||
                end - off < LH_NT_HDR + recs[off + 8])
                return "record crosses its bucket's end";
            uint32_t p = rd32(recs + off);
            if (p > recs_len) return "parent out of range";
            uint8_t rb = recs[off + 5];
            uint16_t list;
            memcpy(&list, recs + off + 6, 2);
            if (rb & ~0x1fu) return "unknown rule bits";
            if (rb && list >= nlists) return "list index out of range";
            (*seen)++;
            *named += rb != 0;
            off += LH_NT_HDR + recs[off + 8];
        }
    }
    return NULL;
}

const char *lh_nametree_check_frame(const uint8_t *recs, size_t recs_len, const uint32_t *dir,
                                    unsigned bits)
{
    if (bits < 1 || bits > 31) return "bucket count out of range";
    if (recs_len >= UINT32_MAX) return "records too large";
    if (dir[0] != 0 || dir[(size_t)1 << bits] != recs_len)
        return "directory does not cover the records";
    (void)recs;
    return NULL;
}

const char *lh_nametree_check(const uint8_t *recs, size_t recs_len, const uint32_t *dir,
                              unsigned bits, size_t nodes, size_t names, size_t nlists)
{
    const char *why = lh_nametree_check_frame(recs, recs_len, dir, bits);
    size_t seen = 0, named = 0;
    if (!why)
        why = lh_nametree_check_buckets(recs, recs_len, dir, 0, (size_t)1 << bits, nlists, &seen,
                                        &named);
    if (!why && (seen != nodes || named != names)) why = "node counts do not match";
    return why;
}

size_t lh_nametree_bytes(const lh_nametree *t)
{
    if (!t->frozen) {
        size_t n = t->slots ? (t->mask + 1) * sizeof *t->slots : 0;
        for (unsigned g = 0; t->arenas && g < LH_NT_ARENAS; g++)
            n += t->arenas[g].cap;
        return n;
    }
    return t->recs_len + (((size_t)1 << t->bits) + 1) * sizeof(uint32_t);
}
