/* upstream.h - sending queries to upstream resolvers through c-ares on the libuv loop.
 *
 * c-ares 1.18 keeps one UDP socket per server while a channel has queries in flight, so all
 * concurrent queries would leave from one source port. loophole therefore keeps a pool of
 * single-server channels and gives each query a channel of its own: an idle channel has
 * closed its sockets, so every query opens a fresh socket on a kernel-randomised port. c-ares
 * still does what it does well: a random ID, matching answers by ID, question and source
 * address, and the TCP retry of truncated answers. Failover across servers, their health,
 * and the time budget are loophole's. */
#ifndef LH_UPSTREAM_H
#define LH_UPSTREAM_H

#include "loophole/config.h"
#include "loophole/stats.h"

#include <ares.h>
#include <uv.h>

typedef struct lh_upstream_channel lh_upstream_channel;
typedef struct lh_upstream_req lh_upstream_req;

typedef struct lh_upstream_server {
    lh_sockaddr addr;
    char label[64]; /* "192.0.2.1:53" */
    unsigned consecutive_failures;
    uint64_t down_until_ms; /* tried last until then */
    uint64_t queries, answers, failures;
    uint64_t latency[LH_LATENCY_BUCKETS]; /* answers by time taken (histogram buckets) */
    uint64_t latency_sum_ns;
    lh_upstream_channel *idle_head, *idle_tail; /* FIFO: the longest idle is reused first */
    unsigned nchannels;
} lh_upstream_server;

typedef struct lh_upstream_group {
    lh_upstream_server *servers;
    unsigned nservers;
    enum lh_upstream_origin origin; /* where these servers came from, for the reports */
} lh_upstream_group;

/* The UDP size loophole advertises upstream (DNS flag day 2020) and the largest UDP answer it
 * accepts without asking again over TCP. */
#define LH_UPSTREAM_EDNS_SIZE 1232

typedef struct lh_upstream {
    uv_loop_t *loop;
    lh_upstream_group *groups; /* 0: default; 1..: the forward zones, in config order */
    unsigned ngroups;
    unsigned timeout_ms;
    unsigned max_inflight, inflight;
    bool shutting_down;
    uint64_t rejected;             /* over max_inflight */
    uint64_t last_channel_err_ms;  /* the last "cannot create a channel" logged (rate limit) */
    lh_upstream_channel *channels; /* every channel, for shutdown */
    char source[LH_ERR_MAX];       /* how the default group was chosen, in words */
    /* Re-entrancy guards (see upstream.c): tries that failed inside ares_send wait here for
     * the next loop pass; a shutdown asked for inside ares_process_fd waits until it returns. */
    uv_idle_t idle;
    lh_upstream_req *deferred_head, *deferred_tail;
    bool in_send;
    unsigned dispatching;
    bool shutdown_deferred;
} lh_upstream;

/* status: 0 with the answer, or a negative value when every server tried failed. The answer
 * buffer is valid during the call only. `server` is the one that answered (or last failed). */
typedef void (*lh_upstream_cb)(void *arg, int status, const uint8_t *answer, size_t len,
                               const lh_upstream_server *server);

/* Sets up the groups from the config: the default upstreams and one group per forward zone.
 * `max_inflight` is this loop's share of upstream-max-inflight. */
int lh_upstream_init(lh_upstream *u, uv_loop_t *loop, const lh_config *cfg, unsigned max_inflight,
                     char *err, size_t errlen);
/* Sends `query` to the group's servers, healthiest first, failing over on timeouts, errors,
 * SERVFAIL and REFUSED. NULL when max_inflight queries are already out (or no server could be
 * tried); the callback then never runs. Otherwise the callback runs exactly once unless the
 * request is cancelled first, and never before lh_upstream_send has returned: a try that fails
 * at once (no route, no file descriptor) is handled on the next loop pass. */
lh_upstream_req *lh_upstream_send(lh_upstream *u, unsigned group, const uint8_t *query, size_t len,
                                  lh_upstream_cb cb, void *arg);
/* The callback will not be called; the request finishes quietly in the background. */
void lh_upstream_cancel(lh_upstream_req *r);
/* Cancels everything and closes every channel and handle (asynchronously). No callback runs
 * from here on: end the requests you care about first. Safe to call from a callback. */
void lh_upstream_shutdown(lh_upstream *u);
/* Frees what remains after the loop has run the close callbacks. */
void lh_upstream_free(lh_upstream *u);

/* A c-ares channel asking exactly `servers`, reading no resolv.conf; `flags` are extra
 * ARES_FLAG_* bits. `cb` may be NULL (a blocking user that drives the channel with
 * ares_fds/ares_process). */
int lh_ares_channel_new(ares_channel *out, int flags, const lh_sockaddr *servers, unsigned nservers,
                        unsigned timeout_ms, unsigned tries, ares_sock_state_cb cb, void *cb_data);

/* Milliseconds on the loop clock, the clock of every deadline and TTL in loophole. */
static inline uint64_t lh_now_ms(uv_loop_t *loop)
{
    return uv_now(loop);
}

#endif
