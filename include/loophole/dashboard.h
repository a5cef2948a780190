/* dashboard.h - the local web dashboard (http = 127.0.0.1:PORT; off by default). Served by
 * libmicrohttpd driven from the main loop (as metrics.c), with the page's HTML, CSS and
 * JavaScript compiled into the binary (web/, embedded by cmake/embed.cmake): no build step,
 * nothing fetched from elsewhere, works offline.
 *
 * Defences (docs/dashboard.md): the Host header must name the listen address or localhost
 * (DNS rebinding); every /api request carries a secret token in the X-Loophole-Token header
 * (the token is in <run dir>/dashboard.token, readable by root and control-group only, and
 * `loophole dashboard` prints it as a URL fragment, which browsers never send); actions are
 * POST only, with the Origin (and Sec-Fetch-Site) checked when a browser sends them; no
 * request may carry a query string; a strict Content-Security-Policy with no inline script
 * and frame-ancestors 'none'. */
#ifndef LH_DASHBOARD_H
#define LH_DASHBOARD_H

#include <stddef.h>

typedef struct lh_admin lh_admin;
typedef struct lh_dashboard lh_dashboard;

/* Binds cfg->http and writes the token file (before privileges are dropped). */
lh_dashboard *lh_dashboard_start(lh_admin *a, char *err, size_t errlen);
/* Closes the listener (waiting requests are dropped), the timers and the leak-check child. */
void lh_dashboard_stop(lh_dashboard *d);
/* The ready URL with the token (`loophole dashboard`); -1 with a reason when it is off. */
int lh_dashboard_url(const lh_dashboard *d, char *out, size_t cap);

/* The dashboard's files, compiled in (generated from web/). */
extern const unsigned char lh_web_index_html[], lh_web_app_js[], lh_web_style_css[],
    lh_web_favicon_svg[];
extern const size_t lh_web_index_html_len, lh_web_app_js_len, lh_web_style_css_len,
    lh_web_favicon_svg_len;

#endif
