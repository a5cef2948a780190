/* ttl.c - see ttl.h.
 *
 * Two passes over the records: the first finds each RRset's lowest (already clamped) TTL, the
 * second writes it into every record of the set. An RRset is keyed by section, owner (a hash
 * of the canonical name), type, class and, for RRSIG, the type covered. A hash collision can
 * only merge two sets and lower a TTL, never raise one. At most LH_TTL_SETS distinct sets are
 * tracked; records of further sets share one group with the lowest TTL among them, which still
 * keeps each of those sets uniform. The work is linear in the message size times LH_TTL_SETS. */
#include "loophole/ttl.h"
#include "loophole/nameset.h"

#include <string.h>

#define LH_TTL_SETS 64
#define LH_TYPE_RRSIG 46

typedef struct rrset_key {
    uint64_t owner;
    uint16_t type, klass, covered;
    uint8_t section;
} rrset_key;

typedef struct rrset_group {
    rrset_key k;
    uint32_t ttl;
} rrset_group;

typedef struct ttl_state {
    rrset_group sets[LH_TTL_SETS];
    unsigned nsets;
    uint32_t overflow_ttl; /* the shared TTL of every set past LH_TTL_SETS */
    bool overflow;
} ttl_state;

static bool key_eq(const rrset_key *a, const rrset_key *b)
{
    return a->owner == b->owner && a->type == b->type && a->klass == b->klass &&
           a->covered == b->covered && a->section == b->section;
}

/* The group of `k`: its slot, or NULL for the shared overflow group. Creates it on first use
 * (with `ttl`) when `create`. */
static rrset_group *group_of(ttl_state *st, const rrset_key *k, bool create, uint32_t ttl)
{
    for (unsigned i = 0; i < st->nsets; i++)
        if (key_eq(&st->sets[i].k, k)) return &st->sets[i];
    if (!create) return NULL;
    if (st->nsets < LH_TTL_SETS) {
        st->sets[st->nsets].k = *k;
        st->sets[st->nsets].ttl = ttl;
        return &st->sets[st->nsets++];
    }
    if (!st->overflow || ttl < st->overflow_ttl) st->overflow_ttl = ttl;
    st->overflow = true;
    return NULL;
}

static uint32_t clamp_one(uint32_t ttl, uint32_t lo, uint32_t hi)
{
    if (ttl & 0x80000000u) ttl = 0; /* RFC 2181 8: treat as zero */
    if (ttl < lo) ttl = lo;
    if (ttl > hi) ttl = hi;
    return ttl;
}

/* RFC 2308 5: min(SOA TTL as clamped, SOA MINIMUM), the MINIMUM's top bit read as 0 too. */
static uint32_t negative_of(ttl_state *st, const rrset_key *soa, uint32_t minimum, uint32_t hi)
{
    uint32_t n = minimum & 0x80000000u ? 0 : minimum;
    rrset_group *g = group_of(st, soa, false, 0);
    uint32_t t = g ? g->ttl : st->overflow_ttl;
    if (t < n) n = t;
    return n < hi ? n : hi;
}

/* A negative answer is cached for its negative TTL, so no record of it may claim longer:
 * the first answer then says what the cached copies will say (the SOA's TTL becomes the
 * negative TTL, as RFC 2308 5 has an authoritative server send it). */
static uint32_t cap_negative(ttl_state *st, const rrset_key *soa, uint32_t minimum, uint32_t hi)
{
    uint32_t n = negative_of(st, soa, minimum, hi);
    for (unsigned i = 0; i < st->nsets; i++)
        if (st->sets[i].ttl > n) st->sets[i].ttl = n;
    if (st->overflow_ttl > n) st->overflow_ttl = n;
    return n;
}

int lh_ttl_normalise(uint8_t *pkt, size_t len, lh_answer_info *ai, const lh_ttl_limits *lim)
{
    bool negative = ai->rcode == LH_RCODE_NXDOMAIN || (ai->rcode == LH_RCODE_NOERROR && !ai->an);
    uint32_t lo = negative ? 0 : lim->min_ttl;
    uint32_t hi =
        negative && lim->max_negative_ttl < lim->max_ttl ? lim->max_negative_ttl : lim->max_ttl;
    if (lo > hi) lo = hi;
    ttl_state st;
    st.nsets = 0;
    st.overflow = false;
    st.overflow_ttl = 0;
    unsigned total = (unsigned)ai->an + ai->ns + ai->ar;
    rrset_key soa = {0};
    bool has_soa = false;
    uint32_t soa_minimum = 0;
    uint32_t negative_ttl = ai->negative_ttl;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && negative && has_soa)
            negative_ttl = cap_negative(&st, &soa, soa_minimum, hi);
        size_t off = ai->question_end;
        for (unsigned i = 0; i < total; i++) {
            lh_name owner;
            size_t rr = lh_name_read(pkt, len, off, &owner);
            if (!rr || rr + 10 > len) return -1;
            uint16_t rdlen = lh_rd16(pkt + rr + 8);
            size_t next = rr + 10 + rdlen;
            if (next > len) return -1;
            rrset_key k = {.owner = lh_hash_bytes(0, owner.wire, owner.len),
                           .type = lh_rd16(pkt + rr),
                           .klass = lh_rd16(pkt + rr + 2),
                           .covered = 0,
                           .section = (uint8_t)(i < ai->an                      ? 0
                                                : i < (unsigned)ai->an + ai->ns ? 1
                                                                                : 2)};
            off = next;
            if (k.type == LH_TYPE_OPT) continue; /* its TTL field is EDNS flags */
            if (k.type == LH_TYPE_RRSIG && rdlen >= 2) k.covered = lh_rd16(pkt + rr + 10);
            if (pass == 0) {
                if (k.type == LH_TYPE_SOA && k.section == 1 && !has_soa) {
                    soa = k;
                    has_soa = true;
                    if (rdlen >= 22) soa_minimum = lh_rd32(pkt + next - 4);
                }
                uint32_t ttl = clamp_one(lh_rd32(pkt + rr + 4), lo, hi);
                rrset_group *g = group_of(&st, &k, true, ttl);
                if (g && ttl < g->ttl) g->ttl = ttl;
            } else {
                rrset_group *g = group_of(&st, &k, false, 0);
                lh_wr32(pkt + rr + 4, g ? g->ttl : st.overflow_ttl);
            }
        }
    }
    /* The figures the cache keys its lifetime on, recomputed from what was written. */
    ai->min_answer_ttl = UINT32_MAX;
    for (unsigned i = 0; i < st.nsets; i++)
        if (st.sets[i].k.section == 0 && st.sets[i].ttl < ai->min_answer_ttl)
            ai->min_answer_ttl = st.sets[i].ttl;
    if (st.overflow && ai->an && st.overflow_ttl < ai->min_answer_ttl)
        ai->min_answer_ttl = st.overflow_ttl; /* conservative: may be an authority set's */
    if (ai->has_soa) {
        if (!negative && has_soa) /* a positive answer's SOA: its figure, for completeness */
            negative_ttl = negative_of(&st, &soa, soa_minimum, hi);
        ai->negative_ttl = negative_ttl;
    }
    return 0;
}
