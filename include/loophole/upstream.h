/* upstream.h - asking upstream resolvers: failover across a group's servers, their health,
 * the in-flight bound, and the answer checks every transport shares (the question echoed byte
 * for byte, 0x20 case included). How one try reaches one server is a transport's business: an
 * ops table (lh_transport_ops) with plain DNS through c-ares as the daemon's transport
 * (transport_ares.c) and a scripted fake in the scenario tests; encrypted transports plug in
 * the same way.
 *
 * Re-entrancy, the rule every transport and user relies on: no user callback ever runs
 * inside lh_upstream_send, lh_upstream_cancel or lh_upstream_shutdown. A transport may report
 * a try's failure from inside its start() (c-ares does, when it cannot open a socket); that
 * report is only queued and handled on the next loop pass. */
#ifndef LH_UPSTREAM_H
#define LH_UPSTREAM_H

#include "loophole/clock.h"
#include "loophole/config.h"
#include "loophole/stats.h"

#include <ares.h>
#include <uv.h>

typedef struct lh_upstream lh_upstream;
typedef struct lh_upstream_req lh_upstream_req;
typedef struct lh_upstream_channel lh_upstream_channel;
typedef struct lh_transport lh_transport;
typedef struct lh_try lh_try; /* one try at one server, as a transport keeps it */

/* The UDP size loophole advertises upstream (DNS flag day 2020) and the largest UDP answer it
 * accepts without asking again over TCP. */
#define LH_UPSTREAM_EDNS_SIZE 1232

/* DNS over TLS, per upstream (transport_tls.c counts; stats shows). Failures by reason. */
enum lh_tls_reason {
    LH_TLS_R_CONNECT = 0, /* TCP connect refused or unreachable */
    LH_TLS_R_CERT,        /* the certificate chain or name did not verify */
    LH_TLS_R_PIN,         /* the key is not the pinned one */
    LH_TLS_R_HANDSHAKE,   /* any other TLS failure */
    LH_TLS_R_TIMEOUT,     /* no answer within upstream-timeout */
    LH_TLS_R_RESET,       /* the connection closed with the query in flight (after its retry) */
    LH_TLS_R_BACKOFF,     /* not tried: the upstream failed moments ago (reconnect back-off) */
    LH_TLS_R_OTHER,       /* out of memory, a query too large, a malformed answer */
    LH_TLS_R_HTTP,        /* DNS over HTTPS: a status other than 200, or not a DNS message */
    LH_TLS_REASONS
};
/* Queries carried by one connection, counted when it closes: 1, 2-10, 11-100, 101-1000,
 * 1001-10000, more. */
#define LH_CONN_QUERIES_BUCKETS 6
extern const unsigned lh_conn_queries_bounds[LH_CONN_QUERIES_BUCKETS - 1];
unsigned lh_conn_queries_bucket(uint64_t queries);
/* An encrypted upstream's connection figures. The names are the transport's business only
 * where they say so (failures by lh_tls_reason); DNS over HTTPS fills the same fields. Every
 * field is a uint64_t that adds up across loops (lh_snapshot_add sums them). */
typedef struct lh_tls_counters {
    uint64_t connections, handshakes, resumed, reused, retried;
    uint64_t http_errors; /* DNS over HTTPS: answers with a status other than 200 */
    uint64_t failures[LH_TLS_REASONS];
    uint64_t fallbacks; /* tls-mode opportunistic: tries repeated in plain DNS */
    uint64_t handshake_latency[LH_LATENCY_BUCKETS]; /* connect + handshake, by time taken */
    uint64_t handshake_latency_sum_ns;
    uint64_t conn_queries[LH_CONN_QUERIES_BUCKETS]; /* closed connections by queries carried */
    uint64_t conn_queries_sum;                      /* queries over the closed connections */
} lh_tls_counters;

typedef struct lh_upstream_server {
    lh_sockaddr addr;
    lh_upstream_tls tls; /* tls.on: DNS over TLS (transport_tls.c), with tls.https DNS over
                            HTTPS (transport_https.c), else plain DNS */
    lh_tls_counters tls_stats;
    void *tls_pool;  /* the TLS transport's connections to it */
    void *doh_host;  /* the HTTPS transport's settings for it (URL, where to connect, pin) */
    char label[128]; /* "192.0.2.1:53", "tls://192.0.2.1:853", "https://dns.example/dns-query" */
    unsigned doh_inflight; /* the HTTPS transport's transfers to it */
    /* tls-mode opportunistic: the plain DNS server (same address, port 53) a failed encrypted
     * try is repeated at; NULL in strict mode and for plain upstreams. Not in the group's list:
     * its own figures are not reported, the encrypted server counts `fallbacks`. */
    struct lh_upstream_server *fallback;
    bool fallback_logged; /* said once until the encrypted transport answers again */
    unsigned index;       /* within its group: the scenario tests name servers by it */
    unsigned consecutive_failures;
    uint64_t down_until_ms; /* tried last until then */
    uint64_t queries, answers, failures;
    uint64_t latency[LH_LATENCY_BUCKETS]; /* answers by time taken (histogram buckets) */
    uint64_t latency_sum_ns;
    /* The c-ares transport's pool of idle channels (FIFO: the longest idle is reused first). */
    lh_upstream_channel *idle_head, *idle_tail;
    unsigned nchannels;
} lh_upstream_server;

typedef struct lh_upstream_group {
    lh_upstream_server *servers;
    unsigned nservers;
    enum lh_upstream_origin origin; /* where these servers came from, for the reports */
} lh_upstream_group;

/* A try's end as a transport reports it: status 0 with the answer (valid during the call
 * only), or a negative, transport-specific status (ops->strerror explains it). */
typedef void (*lh_try_done_cb)(void *arg, int status, const uint8_t *answer, size_t len);

typedef struct lh_transport_ops {
    const char *name;
    /* Starts one try of `query` at server `s`; its own timeout included. NULL when it cannot
     * even start (then `done` is never called). Otherwise `done` runs exactly once unless the
     * try is cancelled first; inside start() only with a failure. */
    lh_try *(*start)(lh_transport *t, lh_upstream_server *s, const uint8_t *query, size_t len,
                     lh_try_done_cb done, void *arg);
    /* `done` will not be called for this try; the transport cleans up in its own time. */
    void (*cancel)(lh_transport *t, lh_try *try_);
    const char *(*strerror)(int status);
    /* Ends every try (no `done` calls) and closes handles, asynchronously; may be called from
     * inside a `done` callback. */
    void (*shutdown)(lh_transport *t);
    /* After the loop has run the close callbacks. */
    void (*free)(lh_transport *t);
    /* The Extended DNS Error (RFC 8914) for a failed try's status: 22 (No Reachable Authority)
     * when the server could not be reached (refused, timed out), 23 (Network Error) when
     * talking to it went wrong (certificate, reset). NULL: always 22. */
    int (*ede)(int status);
} lh_transport_ops;

struct lh_transport {
    const lh_transport_ops *ops;
};

struct lh_upstream {
    uv_loop_t *loop;
    lh_clock *clock;
    lh_transport *transport;
    lh_upstream_group *groups; /* 0: default; 1..: the forward zones, in config order */
    unsigned ngroups;
    unsigned max_inflight, inflight;
    bool shutting_down;
    uint64_t rejected;       /* over max_inflight */
    lh_upstream_req *live;   /* every request not finished yet (for shutdown) */
    char source[LH_ERR_MAX]; /* how the default group was chosen, in words */
    /* Tries that failed inside the transport's start(), handled on the next loop pass. */
    uv_idle_t idle;
    bool idle_ready;
    lh_upstream_req *deferred_head, *deferred_tail;
    bool in_start;
};

/* status: 0 with the answer, or a negative value when every server tried failed. The answer
 * buffer is valid during the call only. `server` is the one that answered (or last failed). */
typedef void (*lh_upstream_cb)(void *arg, int status, const uint8_t *answer, size_t len,
                               const lh_upstream_server *server);

/* One server's figures, for the reports (summed across loops). */
typedef struct lh_upstream_figures {
    uint64_t queries, answers, failures, latency_sum_ns;
    uint64_t latency[LH_LATENCY_BUCKETS];
    lh_tls_counters tls; /* DNS over TLS upstreams only (all zero for plain ones) */
} lh_upstream_figures;
/* The figures of every server, the default group's first, then each forward zone's, at most
 * `max`. Returns how many. */
unsigned lh_upstream_collect(const lh_upstream *u, lh_upstream_figures *out, unsigned max);
/* Server k in that order, and its group (0: the default upstreams, g: forward zone g - 1);
 * NULL past the end. */
const lh_upstream_server *lh_upstream_at(const lh_upstream *u, unsigned k, unsigned *group);
/* Where group g's servers came from (flag, config file, resolv.conf, fallback). */
const char *lh_upstream_origin_of(const lh_upstream *u, unsigned group);

/* Sets up the groups from the config: the default upstreams and one group per forward zone.
 * `max_inflight` is this loop's share of upstream-max-inflight. `clock` gives the time of the
 * health decisions; `transport` NULL means plain DNS through c-ares (owned by the upstream
 * either way: freed by lh_upstream_free). */
int lh_upstream_init(lh_upstream *u, uv_loop_t *loop, lh_clock *clock, const lh_config *cfg,
                     unsigned max_inflight, lh_transport *transport, char *err, size_t errlen);
/* Sends `query` to the group's servers, healthiest first, failing over on timeouts, errors,
 * SERVFAIL and REFUSED. NULL when max_inflight queries are already out (or no server could be
 * tried); the callback then never runs. Otherwise the callback runs exactly once unless the
 * request is cancelled first, and never before lh_upstream_send has returned: a try that fails
 * at once (no route, no file descriptor) is handled on the next loop pass. */
lh_upstream_req *lh_upstream_send(lh_upstream *u, unsigned group, const uint8_t *query, size_t len,
                                  lh_upstream_cb cb, void *arg);
/* The EDE code (RFC 8914) for a failed request's status: 22 or 23, see lh_transport_ops. */
int lh_upstream_ede(const lh_upstream *u, int status);
/* The EDE for an encrypted transport's failure reason: 22 for connect, timeout and back-off,
 * 23 for the rest (both transports' statuses are -(BASE + reason)). */
int lh_tls_reason_ede(enum lh_tls_reason r);
/* An encrypted transport's try status for a failure reason: -(base + reason), each transport
 * with its own base so that its strerror and ede tell its statuses apart. */
int lh_tls_reason_status(int base, enum lh_tls_reason r);
/* What a failure reason says in log lines and status texts. DoT and DoH say the same but for the
 * back-off and "other" reasons, which fail differently in each (`doh` picks). */
const char *lh_tls_reason_text(enum lh_tls_reason r, bool doh);
/* The text of a status made by lh_tls_reason_status with `base`; `fallback` for any other. */
const char *lh_tls_status_text(int status, int base, bool doh, const char *fallback);
/* How a server is reached, as every report names it: "plain" (UDP, TCP), "tls", "https". */
const char *lh_upstream_transport_name(const lh_upstream_server *s);
/* Does nothing this server is asked cross the network in plaintext? False for plain servers
 * and for encrypted ones in tls-mode opportunistic. */
bool lh_upstream_private(const lh_upstream_server *s);
/* The callback will not be called; the request is gone when this returns. */
void lh_upstream_cancel(lh_upstream_req *r);
/* Cancels everything and closes every channel and handle (asynchronously). No callback runs
 * from here on: end the requests you care about first. Safe to call from a callback. */
void lh_upstream_shutdown(lh_upstream *u);
/* Frees what remains after the loop has run the close callbacks. */
void lh_upstream_free(lh_upstream *u);

/* The daemon's transport: plain DNS over UDP (TCP after TC=1) through c-ares on the loop,
 * one query per channel, each try `timeout_ms`. NULL when out of memory. */
lh_transport *lh_transport_ares_new(uv_loop_t *loop, unsigned timeout_ms);

/* DNS over TLS (RFC 7858) on the loop with OpenSSL memory BIOs: pooled, pipelined connections
 * per server (server->tls says the name and pin; `ca_file` NULL: the system store). Tries are
 * bounded by `max_tries` (this loop's in-flight share). NULL with `err` set on failure. */
lh_transport *lh_transport_tls_new(uv_loop_t *loop, unsigned timeout_ms, const char *ca_file,
                                   unsigned max_tries, char *err, size_t errlen);
/* The TLS transport's ops (its strerror serves the mux). */
const lh_transport_ops *lh_transport_tls_ops(void);
/* Is this try one of the TLS transport's (the mux asks, to cancel it at the right one)? */
bool lh_transport_tls_owns(const lh_transport *t, const lh_try *try_);
/* Pads a DNS message in place with an EDNS(0) Padding option (RFC 7830) to a multiple of
 * `block` bytes, adding an OPT record when it has none. Returns the new length, or 0 when the
 * message is malformed, has its OPT record before another, or would not fit in `cap`. */
size_t lh_edns_pad(uint8_t *msg, size_t len, size_t cap, unsigned block);
/* DNS over HTTPS (RFC 8484) through libcurl's multi interface on the loop: HTTP/2 streams on
 * reused connections to server->tls.auth_name at server->addr (never looked up), POST or GET
 * of application/dns-message, `ca_file` NULL: the system store; every connection closed when
 * nothing has been in flight for `idle_ms`. NULL with `err` set. */
lh_transport *lh_transport_https_new(uv_loop_t *loop, unsigned timeout_ms, unsigned idle_ms,
                                     const char *ca_file, unsigned max_tries, char *err,
                                     size_t errlen);
const lh_transport_ops *lh_transport_https_ops(void);
bool lh_transport_https_owns(const lh_transport *t, const lh_try *try_);
/* The transport for a config: c-ares alone, or c-ares with TLS and/or HTTPS side by side (each
 * server goes to the one its tls.on and tls.https say) when any upstream is encrypted. */
lh_transport *lh_transport_for_config(uv_loop_t *loop, const lh_config *cfg, unsigned max_inflight,
                                      char *err, size_t errlen);

/* A c-ares channel asking exactly `servers`, reading no resolv.conf; `flags` are extra
 * ARES_FLAG_* bits (with ARES_FLAG_EDNS, the EDNS size is LH_UPSTREAM_EDNS_SIZE). `cb` may be
 * NULL (a blocking user that drives the channel with ares_fds/ares_process). */
int lh_ares_channel_new(ares_channel *out, int flags, const lh_sockaddr *servers, unsigned nservers,
                        unsigned timeout_ms, unsigned tries, ares_sock_state_cb cb, void *cb_data);

#endif
