/* workers.h - `threads = N`: N-1 worker loops beside the main one. A worker is a resolver loop
 * (server.h) on its own thread, with its own listeners (SO_REUSEPORT), forwarder, cache and
 * counters, sharing the main loop's read-only policy and runtime rules. The main loop drives
 * them through these calls; each is answered on the worker's own thread. */
#ifndef LH_WORKERS_H
#define LH_WORKERS_H

#include "loophole/server.h"

typedef struct lh_worker lh_worker;
typedef struct lh_runtime lh_runtime;

/* Publishes a copy of its figures this often, for the reports. */
#define LH_SNAPSHOT_MS 250

typedef struct lh_workers {
    lh_worker *w;
    unsigned n;
    const lh_server *main; /* the main loop: its config, policy and loop count */
    lh_runtime *rt;        /* the runtime rules every loop reads; may be NULL */
} lh_workers;

/* Starts main->nloops - 1 workers; each has bound its listeners when this returns 0. */
int lh_workers_start(lh_workers *ws, const lh_server *main, lh_runtime *rt, char *err,
                     size_t errlen);
void lh_workers_set_policy(lh_workers *ws, lh_policy *p); /* each takes a reference */
void lh_workers_flush_cache(lh_workers *ws);
void lh_workers_reopen_log(lh_workers *ws);
void lh_workers_wake(lh_workers *ws); /* each passes a quiescent point (runtime.h) */
void lh_workers_stop(lh_workers *ws);
void lh_workers_join(lh_workers *ws); /* after the main loop has ended */
/* Adds every worker's last published figures to `out`. */
void lh_workers_add_snapshots(const lh_workers *ws, lh_snapshot *out);

#endif
