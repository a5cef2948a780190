/* report.h - the running daemon's counters and lists, rendered for people (text), programs
 * (JSON) and Prometheus (text exposition format 0.0.4). Read on the loop thread only. */
#ifndef LH_REPORT_H
#define LH_REPORT_H

#include "loophole/sbuf.h"

#include <stdbool.h>

typedef struct lh_admin lh_admin;

/* `loophole stats [--json]` */
void lh_report_stats(const lh_admin *a, lh_sbuf *b, bool json);
/* `loophole lists [--json]`: every loaded list with its counts and first malformed line. */
void lh_report_lists(const lh_admin *a, lh_sbuf *b, bool json);
/* The control socket's `config [json]`: the running daemon's listen addresses, its upstreams
 * with their transport, zone and origin (flag, config file, resolv.conf, fallback), and its
 * config file, so that `leak-check` tests what runs rather than what a file says. */
void lh_report_config(const lh_admin *a, lh_sbuf *b, bool json);
/* GET /metrics */
void lh_report_prometheus(const lh_admin *a, lh_sbuf *b);

#endif
