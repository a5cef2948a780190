/* admin.h - what the main loop offers the modules that inspect and steer the running daemon:
 * the control socket, the dashboard, the metrics endpoint, the reports and the runtime rules.
 * They see the main loop's resolver loop (server.h), its runtime state, and its operations as
 * an ops table that daemon.c registers. The main loop creates all of them, so it sits above
 * them; they depend on this table, never on the main loop itself. */
#ifndef LH_ADMIN_H
#define LH_ADMIN_H

#include "loophole/sbuf.h"
#include "loophole/server.h"

typedef struct lh_dashboard lh_dashboard;
typedef struct lh_runtime lh_runtime;

/* `loophole why` as JSON, for the dashboard (tools/why.c; main.c registers it). */
typedef void (*lh_explain_fn)(const lh_config *cfg, const lh_policy *p, const char *runtime_rule,
                              bool paused, const char *name, const char *type, lh_sbuf *out);

typedef struct lh_admin_ops {
    /* Rebuilds the policy off the loop and swaps it into every loop; a failure keeps the old
     * one. Completion is reported to the control socket's waiting `reload` requests. */
    void (*reload)(lh_admin *a);
    void (*flush_cache)(lh_admin *a); /* every loop's */
    void (*wake_loops)(lh_admin *a);  /* every worker loop passes a quiescent point */
    /* Adds every worker loop's last published figures to `out`. */
    void (*add_workers)(const lh_admin *a, lh_snapshot *out);
} lh_admin_ops;

struct lh_admin {
    lh_server *srv; /* the main loop's resolver loop */
    const lh_admin_ops *ops;
    lh_runtime *rt;          /* runtime rules and pause; NULL until started */
    lh_dashboard *dashboard; /* NULL: no dashboard */
    char *const *argv;       /* the command line's options (the dashboard runs `loophole
                                leak-check` with them); may be NULL */
    lh_explain_fn explain;   /* NULL: the dashboard cannot explain names */
    bool reloading;          /* a policy build is running */
};

void lh_admin_reload(lh_admin *a);
void lh_admin_flush_cache(lh_admin *a);
void lh_admin_wake_loops(lh_admin *a);
/* Every loop's figures: the main loop's own and the workers' last published ones. */
void lh_admin_gather(const lh_admin *a, lh_snapshot *out);

#endif
