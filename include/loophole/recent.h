/* recent.h - the last N answered queries of one event loop, in memory, for `loophole tail`
 * and the dashboard. Kept only when recent-queries (or the dashboard) is on; with it off
 * the query path pays one pointer test.
 *
 * One writer (the loop's thread) and any number of readers on other threads, without locks:
 * every slot is a seqlock. The writer marks the slot odd, stores the record's words with
 * relaxed atomic stores (plain moves on x86-64 and arm64), then publishes the slot's even
 * sequence with a release store; a reader loads the sequence (acquire), copies the words
 * (relaxed), fences (acquire) and reloads the sequence: a record torn by a concurrent write
 * is seen as such and skipped. The writer never waits and never writes outside its ring.
 * Cost: under 100 instructions a query (bench/recent.sh measures it). */
#ifndef LH_RECENT_H
#define LH_RECENT_H

#include "loophole/stats.h"

#include <stdatomic.h>

#define LH_RECENT_DEFAULT 1000 /* recent queries kept per loop when the dashboard is on */

/* One query as a reader gets it. Addresses are stored as received; the privacy setting
 * (query-log-clients) is applied when they are shown (`no` stores none at all). */
typedef struct lh_recent_rec {
    uint64_t time_ms; /* Unix time in milliseconds */
    uint32_t latency_us;
    uint16_t qtype;
    uint8_t outcome, rcode;
    int16_t list;       /* the deciding list, -1 none, LH_LIST_RUNTIME a runtime rule */
    int8_t match_label; /* label where a name rule matched, -1 none */
    uint8_t family;     /* 0 (no address), 4 or 6 */
    uint8_t name_len;   /* wire bytes of name, root label included; 0: no question */
    uint8_t has_rcode;
    uint8_t addr[16];
    uint8_t name[256]; /* wire form */
} lh_recent_rec;

/* A slot: the record packed into words (recent.c says how), written by relaxed atomic stores
 * between two stores of its sequence number. */
#define LH_RECENT_NAME_WORDS 32 /* 256 bytes */
typedef struct lh_recent_slot {
    atomic_uint_fast64_t seq; /* 2*pos+1 while being written, 2*pos+2 when done */
    _Atomic uint64_t w[5 + LH_RECENT_NAME_WORDS];
} lh_recent_slot;

typedef struct lh_recent {
    size_t mask;                    /* slots - 1 (a power of two) */
    atomic_uint_fast64_t published; /* head, for readers */
    int64_t unix_offset_ms;         /* Unix time = uv_now + this */
    bool keep_address;
    lh_recent_slot *slots;
} lh_recent;

/* A ring of at least `n` records (rounded up to a power of two). NULL: no memory. */
lh_recent *lh_recent_new(size_t n, bool keep_address, uint64_t now_ms);
void lh_recent_free(lh_recent *r);
/* Records one answered query; `now_ms` is the loop's uv_now. Writer thread only. */
void lh_recent_push(lh_recent *r, const lh_query_end *q, uint64_t now_ms);
/* Copies the ring's readable records written at or after position `from` into out (at most
 * max, oldest first) with their positions in pos (may be NULL). Any thread. Returns how
 * many; *end gets the position after the newest. */
size_t lh_recent_read(const lh_recent *r, uint64_t from, lh_recent_rec *out, uint64_t *pos,
                      size_t max, uint64_t *end);

#endif
