/* stats.h - counters of one loop, bumped on the query path without locks: plain integers, a
 * bounded top-N of blocked names and of clients. Read by the control socket and the metrics
 * endpoint on the same thread, so they never see a half-updated value. */
#ifndef LH_STATS_H
#define LH_STATS_H

#include "loophole/config.h"
#include "loophole/wire.h"

#include <stdbool.h>
#include <stdint.h>

/* How a query ended: every answered query has exactly one outcome. */
enum lh_outcome {
    LH_OUTCOME_LOCAL = 0, /* localhost, special-use names, hosts file, canary names */
    LH_OUTCOME_BLOCKED,   /* a block rule (directly, or a CNAME/SVCB target: uncloaked) */
    LH_OUTCOME_CACHED,    /* a fresh cache entry */
    LH_OUTCOME_FORWARDED, /* an upstream's answer */
    LH_OUTCOME_STALE,     /* an expired cache entry, upstreams failing (RFC 8767) */
    LH_OUTCOME_FAILED,    /* SERVFAIL: upstreams failed, a forwarding loop */
    LH_OUTCOME_REFUSED,   /* a client outside allow-client, a class other than IN */
    LH_OUTCOME_ERROR,     /* FORMERR, NOTIMP, BADVERS */
    LH_OUTCOME_REBIND,    /* SERVFAIL: a public name's answer had a private address */
    LH_OUTCOME_COUNT
};
extern const char *const lh_outcome_names[LH_OUTCOME_COUNT];

/* The end of one query, as the stats and the query log see it. */
typedef struct lh_query_end {
    const lh_msg *msg; /* its question (qname valid unless outcome is ERROR) */
    const lh_sockaddr *client;
    enum lh_outcome outcome;
    uint64_t name_hash;        /* lh_name_hashes()[0], for the top blocked names */
    int list;                  /* the block/allow list that decided, or -1 */
    const char *list_path;     /* its path, or NULL */
    int match_label;           /* label of qname where a name rule matched, or -1 */
    const lh_name *match_name; /* the name match_label indexes; NULL: qname (a CNAME or SVCB
                                  target when the block was found by uncloaking) */
    const char *upstream;      /* "192.0.2.1:53" for FORWARDED, or NULL */
    const char *transport;     /* how the upstream answered ("plain", "tls"), or NULL */
    const uint8_t *answer;     /* the answer sent (NULL: none) */
    size_t answer_len;
    uint64_t start_ns; /* uv_hrtime() when the query arrived; 0: not measured */
    /* dnssec = validate: the answer's verdict (LH_DNSSEC_V_*; NONE: not validated) and, for
     * bogus, its reason (enum lh_dnssec_reason of dnssec.h). */
    uint8_t dnssec, dnssec_reason;
} lh_query_end;

/* The verdicts as counted (the order of cache.h's LH_CACHE_DNSSEC_* and the query log). */
enum {
    LH_DNSSEC_V_NONE = 0,
    LH_DNSSEC_V_SECURE,
    LH_DNSSEC_V_INSECURE,
    LH_DNSSEC_V_BOGUS,
    LH_DNSSEC_V_INDETERMINATE,
    LH_DNSSEC_V_COUNT
};
extern const char *const lh_dnssec_v_names[LH_DNSSEC_V_COUNT];
#define LH_STATS_DNSSEC_REASONS 32 /* bogus answers by reason: indexes of enum lh_dnssec_reason */

#define LH_TOP_BUCKETS 64 /* top-N tables: buckets of LH_TOP_WAYS entries */
#define LH_TOP_WAYS 4
#define LH_TOP_ENTRIES (LH_TOP_BUCKETS * LH_TOP_WAYS)
#define LH_TOP_SHOWN 32       /* entries a report shows */
#define LH_STATS_LISTS_MAX 64 /* lists counted individually (the rest are not) */
/* Query types counted one by one; the rest are "other". */
#define LH_STATS_QTYPES 14
extern const uint16_t lh_stats_qtypes[LH_STATS_QTYPES];

/* Top-N in fixed memory: space-saving (Metwally et al.) within small buckets. A key goes to
 * one bucket of LH_TOP_WAYS entries by its hash; a new key replaces the bucket's smallest
 * entry and inherits its count, so heavy hitters stay, with a bounded over-count (`error`).
 * O(LH_TOP_WAYS) per hit, found or not. The key's bytes (a wire name, or the family and
 * address) are copied as they are: text is made only when a report asks. */
#define LH_TOP_RAW 255
typedef struct lh_top_entry {
    uint64_t key;
    uint64_t count, error; /* count 0: empty */
    uint8_t len;
    uint8_t raw[LH_TOP_RAW];
} lh_top_entry;
typedef struct lh_top {
    lh_top_entry e[LH_TOP_ENTRIES];
} lh_top;

/* Not "lh_stats": OpenSSL's lhash.h (pulled in by ldns.h) defines lh_stats, lh_new, lh_free,
 * lh_insert... as macros, so loophole avoids those names. */
typedef struct lh_counters {
    uint64_t queries_udp, queries_tcp;
    uint64_t dropped; /* too short, responses, oversized datagrams */
    uint64_t formerr, notimp, badvers;
    uint64_t refused_acl;                /* clients outside loopback and allow-client */
    uint64_t rrl_dropped, rrl_truncated; /* over rate-limit: dropped, or TC (every 2nd) */
    uint64_t send_errors;                /* answers the kernel would not take */
    uint64_t tcp_accepted, tcp_rejected, tcp_idle_closed, tcp_oversize;
    uint64_t tcp_evicted;      /* closed, idle longest, to make room (table full, or share) */
    uint64_t tcp_empty_frames; /* 2-byte frames of length 0: no query, no activity */
    uint64_t outcomes[LH_OUTCOME_COUNT];
    uint64_t qtypes[LH_STATS_QTYPES + 1];           /* last: other */
    uint64_t rcodes[16];                            /* of answers sent (the header's 4 bits) */
    uint64_t blocked_by_list[LH_STATS_LISTS_MAX];   /* since the last reload */
    uint64_t dnssec[LH_DNSSEC_V_COUNT];             /* answers by verdict ([0]: not validated) */
    uint64_t dnssec_bogus[LH_STATS_DNSSEC_REASONS]; /* bogus answers by reason */
    lh_top top_blocked, top_clients;
    /* Most queries come from the client before: its entry is counted without hashing. */
    lh_sockaddr last_client;
    uint64_t last_client_key;
    lh_top_entry *last_client_entry;
    /* reloads */
    uint64_t reloads_ok, reloads_failed;
    uint64_t last_reload_unix; /* 0: none since start */
    bool last_reload_ok;
    char last_reload_error[LH_ERR_MAX];
    uint64_t started_unix;
} lh_counters;

/* Counts one answered query (outcome, type, rcode, list, top tables). */
void lh_stats_record(lh_counters *s, const lh_query_end *q);
/* The index of a query type in qtypes[] (LH_STATS_QTYPES for "other"). */
unsigned lh_stats_qtype_index(uint16_t qtype);
/* Adds one hit for `key`, whose bytes are raw[0..len) (at most LH_TOP_RAW are kept). */
void lh_top_hit(lh_top *t, uint64_t key, const uint8_t *raw, size_t len);
/* The entry of `key`, or NULL. */
lh_top_entry *lh_top_find(lh_top *t, uint64_t key);
/* The text of an entry of top_blocked (a name) or of top_clients (an address). */
void lh_top_name_text(const lh_top_entry *e, char *out, size_t cap);
void lh_top_address_text(const lh_top_entry *e, char *out, size_t cap);
/* Adds the entries of `b` to `a` (counts of equal keys summed; the largest kept). */
void lh_top_merge(lh_top *a, const lh_top *b);
/* The non-empty entries ordered by count, largest first: up to `max` indices into t->e.
 * Returns how many. */
unsigned lh_top_sorted(const lh_top *t, unsigned *order, unsigned max);

/* Upstream answer latency buckets (seconds) for the histogram; the last is +Inf. */
#define LH_LATENCY_BUCKETS 12
extern const double lh_latency_bounds[LH_LATENCY_BUCKETS - 1];
/* The bucket of a latency in nanoseconds. */
unsigned lh_latency_bucket(uint64_t ns);

#endif
