/* server.h - one resolver loop: listeners (listener.h), the query path, its forwarder and
 * cache, its counters, its query log and recent queries. The main loop (daemon.h) and each
 * worker loop (workers.h) are one of these plus what their role adds; neither the loop nor
 * its query path knows which role it plays.
 *
 * Lifecycle: lh_server_start (forwarder, listeners, rate limit, query log) -> serving ->
 * lh_server_stop (no new queries; what is in flight is answered or, after the grace, failed)
 * -> the loop ends -> lh_server_free. */
#ifndef LH_SERVER_H
#define LH_SERVER_H

#include "loophole/clock.h"
#include "loophole/config.h"
#include "loophole/forward.h"
#include "loophole/listener.h"
#include "loophole/policy.h"
#include "loophole/querylog.h"
#include "loophole/ratelimit.h"
#include "loophole/recent.h"
#include "loophole/stats.h"

#include <uv.h>

typedef struct lh_admin lh_admin;

/* A copy of one loop's counters (and cache and upstream figures), for the reports: workers
 * publish theirs every LH_SNAPSHOT_MS (workers.h) under a lock; the main loop adds them to its
 * own. */
#define LH_SNAPSHOT_UPSTREAMS 64
typedef struct lh_snapshot {
    lh_counters c;
    bool cache_on;
    size_t cache_entries, cache_bytes, cache_max;
    lh_cache_stats cache;
    unsigned nupstreams; /* in the order of the groups and their servers */
    lh_upstream_figures up[LH_SNAPSHOT_UPSTREAMS];
    uint64_t qlog_dropped;
    unsigned tcp_connections;
    /* DNSSEC (forward.h's lh_validator): the worst path any loop's probe found, its figures */
    unsigned dnssec_path; /* enum lh_dnssec_path */
    uint64_t dnssec_probes, dnssec_probes_stripped, dnssec_downgraded, dnssec_subqueries;
} lh_snapshot;

typedef struct lh_server {
    uv_loop_t *loop;
    lh_clock clock; /* the loop's: the rate limit's seconds */
    const lh_config *cfg;
    lh_policy *policy;   /* current snapshot; replaced whole on reload */
    unsigned nloops;     /* event loops in this process (threads); each has its own share */
    unsigned loop_index; /* 0: the main loop; workers 1.. */

    lh_listeners net;
    lh_forwarder fwd;
    bool fwd_ready;

    uv_timer_t stop_timer;
    bool started, stopping, finished;

    lh_counters stats;
    bool exposed;     /* a listener non-loopback clients can reach: ACL and RRL apply */
    lh_ratelimit rrl; /* answer rate limit for non-loopback UDP clients */
    bool rrl_on;
    lh_qlog *qlog;     /* NULL: no query log */
    lh_recent *recent; /* this loop's recent queries; NULL: not kept */
    /* The runtime rules and the pause (the main loop's runtime.c writes them); NULL: none.
     * `live` is read by the query path of every loop; rules_path names them in the log. */
    const lh_overlay_live *live;
    const char *rules_path;
    lh_admin *admin; /* main loop: what its control socket, dashboard and reports use */
} lh_server;

/* Starts the loop's forwarder, listeners, rate limit, query log and recent queries. On failure
 * returns -1 with an explanation in err (what holds the port, how to get out of it) and
 * nothing stays open. Takes a reference to policy. `quiet`: no "listening on" lines. */
int lh_server_start(lh_server *s, uv_loop_t *loop, const lh_config *cfg, lh_policy *policy,
                    bool quiet, char *err, size_t errlen);
/* Starts a graceful stop: stop accepting, finish what is in flight, close everything. */
void lh_server_stop(lh_server *s);
/* Frees what the loop owns once it has finished (uv_run returned; the caller runs it). */
void lh_server_free(lh_server *s);
/* Swaps in a new policy (the loop's own thread; the old one is released). */
void lh_server_set_policy(lh_server *s, lh_policy *p);
/* Flushes this loop's cache. */
void lh_server_flush_cache(lh_server *s);

/* The query path (lh_answer_fn): parse, decide, answer into `out` (returns the length), or
 * return 0: nothing to send now (dropped, or forwarded and answered later through `r`). */
size_t lh_server_answer(void *server, const uint8_t *pkt, size_t len, const lh_reply *r,
                        uint8_t *out, size_t cap);

/* Loops in the process: bounds (cache, in-flight, TCP connections, rate limit) are shared. */
static inline unsigned lh_server_loops(const lh_server *s)
{
    return s->nloops ? s->nloops : 1;
}

/* One loop's figures, read on its own thread: every module's own counters, each through that
 * module's function. */
void lh_server_collect(const lh_server *s, lh_snapshot *out);
/* Adds `b` to `a` (counters summed, top tables merged). */
void lh_snapshot_add(lh_snapshot *a, const lh_snapshot *b);

#endif
