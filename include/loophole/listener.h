/* listener.h - the listener layer every role that answers DNS is built on (the main loop, a
 * worker loop, the leak server): a UDP and a TCP listener per listen address, the TCP
 * connections with their slots and idle deadlines, the send paths, and the steps of a graceful
 * stop. It knows nothing of DNS beyond TCP framing: each query goes to the role's `answer`
 * function with a reply handle (reply.h) for the client - the datagram's peer through this
 * listener, or the connection - so that an answer made later goes back the same way.
 *
 * Lifecycle: lh_listeners_open binds every address (nothing is left open on failure) ->
 * serving -> lh_listeners_stop_accepting (graceful stop: no new queries; connections drain) ->
 * lh_listeners_close_udp (nothing is pending any more) and, past the grace, lh_listeners_abort
 * (every connection closed). Handles are freed by their close callbacks; the loop then ends. */
#ifndef LH_LISTENER_H
#define LH_LISTENER_H

#include "loophole/config.h"
#include "loophole/reply.h"
#include "loophole/stats.h"
#include "loophole/wire.h"

#include <uv.h>

typedef struct lh_udp_listener lh_udp_listener;
typedef struct lh_tcp_listener lh_tcp_listener;
typedef struct lh_tcp_conn lh_tcp_conn;

/* Answers one query into `out` (returns its length), or returns 0: nothing to send now
 * (dropped, or answered later through `r`, which the callee copies and holds). */
typedef size_t (*lh_answer_fn)(void *ctx, const uint8_t *pkt, size_t len, const lh_reply *r,
                               uint8_t *out, size_t cap);

typedef struct lh_listeners {
    /* Set by the role before lh_listeners_open. */
    uv_loop_t *loop;
    const lh_config *cfg;
    unsigned nloops;     /* loops sharing the addresses (SO_REUSEPORT) and the TCP slots */
    lh_counters *stats;  /* the listener counters: queries, drops, send errors, TCP */
    lh_answer_fn answer; /* the role's query path */
    void *ctx;
    bool timed; /* stamp queries with uv_hrtime() (the query log wants latencies) */
    bool quiet; /* no "listening on" lines (worker loops) */

    lh_udp_listener *udp[LH_LISTEN_MAX];
    lh_tcp_listener *tcp[LH_LISTEN_MAX];
    unsigned nlisten;
    lh_tcp_conn *conns;      /* open TCP connections, the most recently active first */
    lh_tcp_conn *conns_tail; /* ... and the one idle longest */
    unsigned nconns;
    unsigned udp_queued; /* UDP answers waiting in libuv's send queue */
    bool stopping;       /* no new connections */
    /* TCP answers are built here, never allocated: two bytes of room for the length prefix. */
    uint8_t out[2 + LH_MSG_MAX];
} lh_listeners;

/* Binds UDP and TCP on every cfg->listen address. On failure returns -1 with an explanation
 * in err (what holds the port, how to get out of it) and nothing stays open. */
int lh_listeners_open(lh_listeners *l, char *err, size_t errlen);
/* Graceful stop, first half: no new queries or connections; connections close once their
 * answers are written (answers still to come keep them). */
void lh_listeners_stop_accepting(lh_listeners *l);
/* Closes the UDP sockets (after the last answer that could still go out on them). */
void lh_listeners_close_udp(lh_listeners *l);
/* Closes every connection now (the stop's grace is over). */
void lh_listeners_abort(lh_listeners *l);
/* Is any listener from a non-loopback address (ACL and rate limit apply)? */
bool lh_listeners_exposed(const lh_config *cfg);

/* Listener internals (listen_udp.c, listen_tcp.c, listener.c). */
int lh_udp_listen(lh_listeners *ls, lh_udp_listener **out, const lh_sockaddr *addr, char *err,
                  size_t errlen);
void lh_udp_close(lh_udp_listener *l);
void lh_udp_stop_reading(lh_udp_listener *l);
int lh_tcp_listen(lh_listeners *ls, lh_tcp_listener **out, const lh_sockaddr *addr, char *err,
                  size_t errlen);
void lh_tcp_close(lh_tcp_listener *l);
void lh_tcp_conns_shutdown(lh_listeners *ls);
void lh_tcp_conns_abort(lh_listeners *ls);
/* SO_REUSEPORT on a listener's socket, so that every loop binds the same address and the
 * kernel spreads clients over them. Returns 0 or a libuv error. */
int lh_reuseport(uv_handle_t *h);
/* Turns a bind/listen error into an explanation a user can act on. */
void lh_explain_bind_error(int uv_err, const lh_sockaddr *addr, const char *proto, char *err,
                           size_t errlen);

#endif
