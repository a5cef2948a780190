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
#include "loophole/overlay.h"
#include "loophole/policy.h"
#include "loophole/random.h"
#include "loophole/reply.h"
#include "loophole/ttl.h"
#include "loophole/upstream.h"
#include "loophole/validate.h"

typedef struct lh_pending lh_pending;
typedef struct lh_subquery lh_subquery;

/* What the forwarder reads and reports to: the daemon's server (server.c) or the scenario
 * runner. Answers go to each query's own reply handle (reply.h); the forwarder owns no
 * listener and no server state. */
typedef struct lh_forward_env {
    uv_loop_t *loop;
    const lh_config *cfg;
    lh_policy *const *policy; /* the current policy, replaced whole on reload */
    /* runtime rules and pause (owned by runtime.c); NULL, or *live NULL: none */
    const lh_overlay_live *const *live;
    unsigned loops; /* event loops sharing the bounds */
    void *ctx;
    /* Every query the forwarder answers ends here once: counters, the query log. */
    void (*query_done)(void *ctx, lh_query_end *q);
    /* No question is pending any more (a graceful stop waits for this). */
    void (*idle)(void *ctx);
} lh_forward_env;

/* What the forwarder runs on, for tests to replace: NULL members (or a NULL struct) mean the
 * daemon's - the loop clock and plain DNS through c-ares. */
typedef struct lh_forward_seams {
    lh_clock *clock;
    lh_transport *transport; /* owned by the forwarder from lh_forward_init on */
    bool no_dnssec_probe;    /* no stripping probe (a scenario scripts every upstream try) */
} lh_forward_seams;

typedef struct lh_forward_stats {
    uint64_t cache_hits, stale_served, sent, coalesced, answered, failed, uncloaked, loops,
        rejected, bad_answers, rebind_refused, waiters_refused;
} lh_forward_stats;

typedef struct lh_forwarder {
    lh_forward_env env;
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
    /* DNSSEC: the validator's state, and the stripping probe (". DNSKEY" with DO+CD at start
     * and every LH_DNSSEC_PROBE_S; one at a time) in the validating modes. */
    lh_validator val;
    lh_timer probe_timer;
    lh_upstream_req *probe_req;
    bool probe_on;
    lh_subquery *subqueries;     /* DS/DNSKEY sub-queries in flight, each shared by its waiters */
    uint8_t work[LH_MSG_MAX];    /* an upstream answer being checked and trimmed */
    uint8_t out[2 + LH_MSG_MAX]; /* answers to waiters are built here (2: a TCP prefix) */
} lh_forwarder;

int lh_forward_init(lh_forwarder *f, const lh_forward_env *env, const lh_forward_seams *seams,
                    char *err, size_t errlen);
/* Answers `m` from the cache into out (returns the length) or sends it upstream and returns 0:
 * the client is answered later through its reply handle `r` (copied; held until then).
 * `limit` is the client's size limit. */
size_t lh_forward_query(lh_forwarder *f, const lh_msg *m, uint64_t name_hash, unsigned group,
                        const lh_reply *r, uint8_t *out, size_t cap, size_t limit);
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
