/* metrics.h - the Prometheus endpoint (GET /metrics), served by libmicrohttpd driven from the
 * loop: MHD's epoll descriptor is watched with uv_poll and its timeout with a uv_timer, so
 * the counters are read on the thread that writes them. Off unless `metrics` is set. */
#ifndef LH_METRICS_H
#define LH_METRICS_H

#include <stddef.h>

typedef struct lh_admin lh_admin;
typedef struct lh_metrics lh_metrics;

/* Binds cfg->metrics (before privileges are dropped). NULL with err on failure. */
lh_metrics *lh_metrics_start(lh_admin *a, char *err, size_t errlen);
/* Closes the listener and connections; freed once the loop has closed its handles. */
void lh_metrics_stop(lh_metrics *m);

#endif
