/* server.h - the daemon: listeners on one libuv loop, the per-query path, signals, reload. */
#ifndef LH_SERVER_H
#define LH_SERVER_H

#include "loophole/config.h"
#include "loophole/policy.h"
#include "loophole/stats.h"

#include <uv.h>

typedef struct lh_udp_listener lh_udp_listener;
typedef struct lh_tcp_listener lh_tcp_listener;
typedef struct lh_tcp_conn lh_tcp_conn;

typedef struct lh_server {
    uv_loop_t *loop;
    const lh_config *cfg;
    lh_policy *policy; /* current snapshot; replaced whole on reload */

    lh_udp_listener *udp[LH_LISTEN_MAX];
    lh_tcp_listener *tcp[LH_LISTEN_MAX];
    unsigned nlisten;

    lh_tcp_conn *conns; /* open TCP connections (intrusive list) */
    unsigned nconns;
    unsigned udp_queued; /* UDP answers waiting in libuv's send queue */

    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t stop_timer;
    uv_work_t reload_req;
    bool reloading, reload_again;
    lh_policy *reload_result;
    char reload_err[LH_ERR_MAX];
    bool started, stopping;

    lh_stats stats;
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

/* The query path shared by UDP and TCP: parse, decide, build the answer into `out`. Returns
 * the answer length, or 0 to send nothing. `udp` selects the client's UDP size limit. */
size_t lh_server_answer(lh_server *s, const uint8_t *pkt, size_t len, bool udp, uint8_t *out,
                        size_t cap);

/* Listener internals (listen_udp.c, listen_tcp.c). */
int lh_udp_listen(lh_server *s, lh_udp_listener **out, const lh_sockaddr *addr, char *err,
                  size_t errlen);
void lh_udp_close(lh_udp_listener *l);
int lh_tcp_listen(lh_server *s, lh_tcp_listener **out, const lh_sockaddr *addr, char *err,
                  size_t errlen);
void lh_tcp_close(lh_tcp_listener *l);
/* Closes idle connections now; busy ones close when their writes finish. */
void lh_tcp_conns_shutdown(lh_server *s);
/* Closes every connection immediately. */
void lh_tcp_conns_abort(lh_server *s);

/* Turns a bind/listen error into an explanation a user can act on. */
void lh_explain_bind_error(int uv_err, const lh_sockaddr *addr, const char *proto, char *err,
                           size_t errlen);

#endif
