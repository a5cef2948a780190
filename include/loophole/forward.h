/* forward.h - everything between "this name is not ours" and the client's answer: the cache,
 * coalescing of identical questions, the upstream query (0x20 case, the client's DO/CD/RD,
 * no client EDNS options such as Client Subnet), answer checks, CNAME and HTTPS/SVCB
 * uncloaking against the blocklists, serve-stale, and the time budget.
 *
 * Lifecycle: a cache miss creates a pending question (the leader) with the client as its first
 * waiter; identical questions join as waiters; the pending ends exactly once - answered,
 * failed, or out of time - and every waiter is answered then. */
#ifndef LH_FORWARD_H
#define LH_FORWARD_H

#include "loophole/cache.h"
#include "loophole/policy.h"
#include "loophole/random.h"
#include "loophole/ttl.h"
#include "loophole/upstream.h"

typedef struct lh_server lh_server;
typedef struct lh_pending lh_pending;
typedef struct lh_udp_listener lh_udp_listener;
typedef struct lh_tcp_conn lh_tcp_conn;

typedef struct lh_client lh_client;

/* A reply handle for clients that are neither a UDP peer nor a TCP connection (the scenario
 * tests' in-process client): the forwarder answers through it, later, with `len` 0 when the
 * query ends without an answer. */
typedef struct lh_reply_ops {
    void (*send)(const lh_client *c, const uint8_t *answer, size_t len);
} lh_reply_ops;

/* Who asked and where the answer goes: a UDP peer through a listener, a TCP connection, or a
 * reply handle. */
struct lh_client {
    lh_udp_listener *udp;
    lh_sockaddr peer;
    lh_tcp_conn *tcp;
    const lh_reply_ops *reply; /* set: answers go here (udp and tcp NULL) */
    void *reply_ctx;
    uint64_t start_ns; /* uv_hrtime() on arrival when the query log wants latencies, else 0 */
};

/* What the forwarder runs on, for tests to replace: NULL members (or a NULL struct) mean the
 * daemon's - the loop clock and plain DNS through c-ares. */
typedef struct lh_forward_seams {
    lh_clock *clock;
    lh_transport *transport; /* owned by the forwarder from lh_forward_init on */
} lh_forward_seams;

typedef struct lh_forward_stats {
    uint64_t cache_hits, stale_served, sent, coalesced, answered, failed, uncloaked, loops,
        rejected, bad_answers, rebind_refused, waiters_refused;
} lh_forward_stats;

typedef struct lh_forwarder {
    lh_server *srv;
    lh_upstream upstream;
    lh_cache cache;
    bool cache_on;
    lh_pending **table; /* in-flight questions by key */
    size_t mask;
    unsigned npending, nwaiters, max_waiters;
    lh_pending *dl_head, *dl_tail; /* by deadline: all share one budget, so FIFO */
    lh_clock own_clock, *clock;    /* every decision's time: TTLs, budget, back-off, stale */
    lh_timer deadline_timer;
    lh_random rng; /* 0x20 bits */
    lh_ttl_limits ttl_limits;
    uint64_t last_loop_log_ms, last_waiters_log_ms;
    lh_forward_stats stats;
    uint8_t work[LH_MSG_MAX]; /* an upstream answer being checked and trimmed */
} lh_forwarder;

int lh_forward_init(lh_forwarder *f, lh_server *s, const lh_forward_seams *seams, char *err,
                    size_t errlen);
/* Answers `m` from the cache into out (returns the length) or sends it upstream and returns 0:
 * the client is answered later. `limit` is the client's size limit. */
size_t lh_forward_query(lh_forwarder *f, const lh_msg *m, uint64_t name_hash, unsigned group,
                        const lh_client *c, uint8_t *out, size_t cap, size_t limit);
/* Questions waiting for upstreams. */
static inline unsigned lh_forward_pending(const lh_forwarder *f)
{
    return f->npending;
}
/* Ends every pending question now (stale answer or SERVFAIL). */
void lh_forward_fail_all(lh_forwarder *f);
void lh_forward_flush_cache(lh_forwarder *f);
/* Closes the timer and the upstream channels; lh_forward_free after the loop has run. */
void lh_forward_shutdown(lh_forwarder *f);
void lh_forward_free(lh_forwarder *f);

#endif
