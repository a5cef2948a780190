/* server.h - one event loop's server: listeners, the per-query path, its forwarder and cache,
 * its counters. Loop 0 (the "main" server) also owns signals, reload, the control socket and
 * the metrics endpoint; with threads > 1 it starts worker loops (workers.c) that share its
 * read-only policy and bind the same addresses with SO_REUSEPORT. */
#ifndef LH_SERVER_H
#define LH_SERVER_H

#include "loophole/config.h"
#include "loophole/forward.h"
#include "loophole/leak.h"
#include "loophole/policy.h"
#include "loophole/querylog.h"
#include "loophole/ratelimit.h"
#include "loophole/stats.h"

#include <uv.h>

typedef struct lh_tcp_listener lh_tcp_listener;
typedef struct lh_control lh_control;
typedef struct lh_metrics lh_metrics;
typedef struct lh_worker lh_worker;
typedef struct lh_runtime lh_runtime;
typedef struct lh_recent lh_recent;
typedef struct lh_dashboard lh_dashboard;

/* A copy of one loop's counters (and cache and upstream figures), for the reports: workers
 * publish theirs every LH_SNAPSHOT_MS under a lock; the main loop adds them to its own. */
#define LH_SNAPSHOT_MS 250
#define LH_SNAPSHOT_UPSTREAMS 64
typedef struct lh_upstream_figures {
    uint64_t queries, answers, failures, latency_sum_ns;
    uint64_t latency[LH_LATENCY_BUCKETS];
    lh_tls_counters tls; /* DNS over TLS upstreams only (all zero for plain ones) */
} lh_upstream_figures;
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
    lh_policy *policy;  /* current snapshot; replaced whole on reload */
    lh_leak_zone *leak; /* set before start: the leak server, no policy and no forwarding */
    unsigned nloops;    /* event loops in this process (threads); each has its own share */
    bool is_worker;     /* a worker loop: no signals, control socket or metrics */
    lh_worker *workers; /* main loop: nloops - 1 of them */

    lh_udp_listener *udp[LH_LISTEN_MAX];
    lh_tcp_listener *tcp[LH_LISTEN_MAX];
    unsigned nlisten;

    lh_tcp_conn *conns;      /* open TCP connections, the most recently active first */
    lh_tcp_conn *conns_tail; /* ... and the one idle longest */
    unsigned nconns;
    unsigned udp_queued; /* UDP answers waiting in libuv's send queue */

    lh_forwarder fwd;
    bool fwd_ready;

    uv_signal_t sig_term, sig_int, sig_hup, sig_usr2;
    uv_timer_t stop_timer;
    uv_work_t reload_req;
    bool reloading, reload_again;
    lh_policy *reload_result;
    char reload_err[LH_ERR_MAX];
    bool started, stopping, finished;

    lh_counters stats;
    bool exposed;     /* a listener non-loopback clients can reach: ACL and RRL apply */
    lh_ratelimit rrl; /* answer rate limit for non-loopback UDP clients */
    bool rrl_on;
    lh_qlog *qlog;           /* NULL: no query log */
    lh_control *control;     /* NULL: no control socket */
    lh_metrics *metrics;     /* NULL: no metrics endpoint */
    lh_runtime *rt;          /* runtime rules and pause: the main loop's, shared by every loop */
    lh_recent *recent;       /* this loop's recent queries; NULL: not kept */
    lh_dashboard *dashboard; /* NULL: no dashboard (main loop only) */
    unsigned loop_index;     /* 0: the main loop; workers 1.. */
    char *const *argv;       /* main loop: the command line's options (the dashboard runs
                                `loophole leak-check` with them); may be NULL */
    uv_signal_t sig_usr1;
    /* Answers are built here, never allocated: two bytes of room for the TCP length prefix. */
    uint8_t out[2 + LH_MSG_MAX];
} lh_server;

/* Binds every listen address and installs signal handlers. On failure returns -1 with an
 * explanation in err (what holds the port, how to get out of it). Takes ownership of policy. */
int lh_server_start(lh_server *s, uv_loop_t *loop, const lh_config *cfg, lh_policy *policy,
                    char *err, size_t errlen);
/* Starts a graceful stop: stop accepting, finish what is in flight, close everything. */
void lh_server_stop(lh_server *s);
/* Frees what the server owns once the loop has finished (uv_run returned). */
void lh_server_free(lh_server *s);
/* Rebuilds the policy on a worker thread and swaps it in; a failure keeps the old one. */
void lh_server_reload(lh_server *s);

/* The query path shared by UDP and TCP: parse, decide, answer into `out` (returns the length),
 * or return 0: nothing to send now (dropped, or forwarded and answered later to `client`). */
size_t lh_server_answer(lh_server *s, const uint8_t *pkt, size_t len, const lh_client *client,
                        uint8_t *out, size_t cap);
/* Every answered query ends here exactly once: counters and the query log. */
void lh_server_query_done(lh_server *s, lh_query_end *q);
/* Flushes the cache of every loop (SIGUSR2, `loophole cache flush`). */
void lh_server_flush_cache(lh_server *s);
/* Called when the last forwarded question ends during a stop. */
void lh_server_maybe_finish_stop(lh_server *s);

/* Listener internals (listen_udp.c, listen_tcp.c). */
int lh_udp_listen(lh_server *s, lh_udp_listener **out, const lh_sockaddr *addr, char *err,
                  size_t errlen);
void lh_udp_close(lh_udp_listener *l);
int lh_tcp_listen(lh_server *s, lh_tcp_listener **out, const lh_sockaddr *addr, char *err,
                  size_t errlen);
void lh_tcp_close(lh_tcp_listener *l);
/* Sends an answer to a UDP peer (no allocation unless the socket is full). */
void lh_udp_send(lh_udp_listener *l, const uint8_t *ans, size_t len, const struct sockaddr *to);
void lh_udp_stop_reading(lh_udp_listener *l);
/* A connection with answers still to come is held; it is freed only when released. */
void lh_tcp_hold(lh_tcp_conn *c);
void lh_tcp_release(lh_tcp_conn *c);
bool lh_tcp_is_open(const lh_tcp_conn *c);
/* Sends a framed answer (2-byte length prefix included). */
void lh_tcp_send(lh_tcp_conn *c, const uint8_t *frame, size_t len);
/* Closes idle connections now; busy ones close when their writes finish. */
void lh_tcp_conns_shutdown(lh_server *s);
/* Closes every connection immediately. */
void lh_tcp_conns_abort(lh_server *s);

/* Loops in the process: bounds (cache, in-flight, TCP connections, rate limit) are shared. */
static inline unsigned lh_server_loops(const lh_server *s)
{
    return s->nloops ? s->nloops : 1;
}

/* Worker loops (workers.c), driven by the main loop. */
int lh_workers_start(lh_server *main_srv, char *err, size_t errlen);
void lh_workers_set_policy(lh_server *main_srv, lh_policy *p); /* each takes a reference */
void lh_workers_flush_cache(lh_server *main_srv);
void lh_workers_reopen_log(lh_server *main_srv);
void lh_workers_wake(lh_server *main_srv); /* each passes a quiescent point (runtime.h) */
void lh_workers_stop(lh_server *main_srv);
void lh_workers_join(lh_server *main_srv); /* after the main loop has ended */
/* Adds every worker's last published figures to `out` (the main loop's own, collected with
 * lh_server_collect). */
void lh_workers_add_snapshots(const lh_server *main_srv, lh_snapshot *out);
/* One loop's figures, read on its own thread. */
void lh_server_collect(const lh_server *s, lh_snapshot *out);
/* Adds `b` to `a` (counters summed, top tables merged). */
void lh_snapshot_add(lh_snapshot *a, const lh_snapshot *b);

/* SO_REUSEPORT on a listener's socket, so that every loop binds the same address and the
 * kernel spreads clients over them. Returns 0 or a libuv error. */
int lh_reuseport(uv_handle_t *h);

/* Turns a bind/listen error into an explanation a user can act on. */
void lh_explain_bind_error(int uv_err, const lh_sockaddr *addr, const char *proto, char *err,
                           size_t errlen);

#endif
