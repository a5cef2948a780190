/* daemon.h - the main loop: a resolver loop (server.h) plus what only it does - signals,
 * reload, the runtime rules, the control socket, the metrics endpoint, the dashboard, and the
 * worker loops it starts with threads > 1. The modules it starts see it through admin.h.
 *
 * Lifecycle: lh_daemon_start -> (privileges dropped by the caller) -> uv_run -> SIGTERM or
 * SIGINT: lh_daemon_stop -> the loop ends -> lh_daemon_free (joins the workers). */
#ifndef LH_DAEMON_H
#define LH_DAEMON_H

#include "loophole/admin.h"
#include "loophole/workers.h"

typedef struct lh_control lh_control;
typedef struct lh_metrics lh_metrics;

typedef struct lh_daemon {
    lh_server srv;  /* loop 0 */
    lh_admin admin; /* set argv and explain before the start */
    lh_workers workers;
    lh_control *control; /* NULL: no control socket */
    lh_metrics *metrics; /* NULL: no metrics endpoint */
    uv_signal_t sig_term, sig_int, sig_hup, sig_usr2, sig_usr1;
    bool signals_on;
    uv_work_t reload_req;
    bool reload_again;
    lh_policy *reload_result;
    char reload_err[LH_ERR_MAX];
} lh_daemon;

/* Binds every listen address, opens the control socket, the metrics endpoint and the
 * dashboard, starts the worker loops and installs the signal handlers. On failure returns -1
 * with an explanation in err. Takes ownership of policy (released by lh_daemon_free, also after a
 * failure). */
int lh_daemon_start(lh_daemon *d, uv_loop_t *loop, const lh_config *cfg, lh_policy *policy,
                    char *err, size_t errlen);
/* Starts a graceful stop of every loop. */
void lh_daemon_stop(lh_daemon *d);
/* After the main loop has ended: joins the workers, frees what the daemon owns. */
void lh_daemon_free(lh_daemon *d);

#endif
