/* cache.h - answers from upstream, stored in wire form with the offset of every TTL so that a
 * hit is one memcpy plus patches (ID, the client's question case, aged TTLs). Keyed by name
 * (case-insensitive), type, class, DO and CD. Bounded in bytes, LRU eviction; entries past
 * their TTL can still be served stale (RFC 8767) when every upstream fails. One per loop; not
 * thread-safe. */
#ifndef LH_CACHE_H
#define LH_CACHE_H

#include "loophole/wire.h"

#include <stdint.h>

typedef struct lh_cache_key {
    const lh_name *name;
    uint64_t name_hash; /* lh_name_hashes(name)[0] */
    uint16_t qtype, qclass;
    uint8_t flags; /* LH_CACHE_DO | LH_CACHE_CD */
} lh_cache_key;
#define LH_CACHE_DO 1u
#define LH_CACHE_CD 2u

typedef struct lh_cache_entry lh_cache_entry;

typedef struct lh_cache_limits {
    size_t max_bytes;
    uint32_t min_ttl, max_ttl; /* clamps on positive answers */
    uint32_t max_negative_ttl; /* clamp on NXDOMAIN / NODATA */
    uint32_t stale_window;     /* seconds past expiry an entry may still be served stale */
} lh_cache_limits;

typedef struct lh_cache_stats {
    uint64_t hits, misses, stale_hits, inserts, evictions, expired;
} lh_cache_stats;

typedef struct lh_cache {
    lh_cache_entry **buckets;
    size_t mask;
    lh_cache_entry *lru_head, *lru_tail; /* head = most recently used */
    size_t bytes, count;
    lh_cache_limits limits;
    lh_cache_stats stats;
} lh_cache;

/* What the reports show of a cache. */
typedef struct lh_cache_figures {
    size_t entries, bytes, max_bytes;
    lh_cache_stats stats;
} lh_cache_figures;
void lh_cache_collect(const lh_cache *c, lh_cache_figures *out);

int lh_cache_init(lh_cache *c, const lh_cache_limits *limits);
void lh_cache_free(lh_cache *c);
void lh_cache_flush(lh_cache *c);

/* Stores an upstream answer (its OPT record already removed: `len` ends before it) for `key`,
 * now = `now_ms`. Only NOERROR and NXDOMAIN are stored; negative answers need an SOA
 * (RFC 2308). Returns 0 when stored, 1 when not cacheable, -1 on allocation failure. */
int lh_cache_insert(lh_cache *c, const lh_cache_key *key, const uint8_t *answer, size_t len,
                    const lh_answer_info *ai, uint64_t now_ms);

/* The DNSSEC verdict stored with an answer (dnssec = validate), so that a hit costs no crypto.
 * NONE: not validated (another mode, or the client set CD). */
enum {
    LH_CACHE_DNSSEC_NONE = 0,
    LH_CACHE_DNSSEC_SECURE,
    LH_CACHE_DNSSEC_INSECURE,
    LH_CACHE_DNSSEC_BOGUS,
    LH_CACHE_DNSSEC_INDETERMINATE,
};
#define LH_CACHE_BOGUS_TTL 60 /* seconds a bogus answer is kept (answered SERVFAIL from it) */
/* lh_cache_insert with the answer's verdict and its reason (a byte the cache keeps for the
 * caller). A bogus answer is kept at most LH_CACHE_BOGUS_TTL seconds. */
int lh_cache_insert_dnssec(lh_cache *c, const lh_cache_key *key, const uint8_t *answer, size_t len,
                           const lh_answer_info *ai, uint64_t now_ms, unsigned dnssec,
                           unsigned reason);
/* The verdict stored with an entry (LH_CACHE_DNSSEC_*) and its reason. */
unsigned lh_cache_entry_dnssec(const lh_cache_entry *e, unsigned *reason);

enum lh_cache_result { LH_CACHE_MISS = 0, LH_CACHE_FRESH, LH_CACHE_STALE };
/* Looks up `key`. FRESH and STALE return the entry; STALE only when `want_stale`. */
enum lh_cache_result lh_cache_lookup(lh_cache *c, const lh_cache_key *key, uint64_t now_ms,
                                     bool want_stale, const lh_cache_entry **out);
/* Writes the entry as an answer for client query `m` into out (without OPT: the caller
 * finishes it). TTLs are aged to `now_ms`, or set to `stale_ttl` for a stale answer.
 * Returns its length, 0 if it does not fit in cap. */
size_t lh_cache_write(const lh_cache_entry *e, const lh_msg *m, uint64_t now_ms, bool stale,
                      uint32_t stale_ttl, uint8_t *out, size_t cap);

#endif
