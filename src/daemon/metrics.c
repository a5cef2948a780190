/* metrics.c - see metrics.h. */
#include "loophole/metrics.h"
#include "loophole/log.h"
#include "loophole/report.h"
#include "loophole/admin.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_BUF (512 * 1024)
#define METRICS_CONNECTIONS 32
#define METRICS_TIMEOUT_S 10

struct lh_metrics {
    lh_admin *admin;
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles;
    char *buf;
};

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
                               const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    lh_metrics *m = cls;
    static const char plain[] = "text/plain; charset=utf-8";
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        static const char msg[] = "only GET /metrics\n";
        return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, plain, msg, sizeof msg - 1);
    }
    if (strcmp(url, "/metrics")) {
        static const char msg[] = "not found: the metrics are at /metrics\n";
        return respond(conn, MHD_HTTP_NOT_FOUND, plain, msg, sizeof msg - 1);
    }
    lh_sbuf b;
    lh_sbuf_init(&b, m->buf, METRICS_BUF);
    lh_report_prometheus(m->admin, &b);
    if (b.overflow) {
        static const char msg[] = "metrics larger than the buffer\n";
        return respond(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, plain, msg, sizeof msg - 1);
    }
    return respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
}

/* The same client rule as DNS: loopback, or an allow-client network. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    lh_metrics *m = cls;
    return lh_config_client_allowed(m->admin->srv->cfg, addr) ? MHD_YES : MHD_NO;
}

static void on_timer(uv_timer_t *t)
{
    lh_metrics *m = t->data;
    MHD_run(m->mhd);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(m->mhd, &ms) == MHD_YES) uv_timer_start(&m->timer, on_timer, ms, 0);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    lh_metrics *m = p->data;
    MHD_run(m->mhd);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(m->mhd, &ms) == MHD_YES)
        uv_timer_start(&m->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&m->timer);
}

lh_metrics *lh_metrics_start(lh_admin *a, char *err, size_t errlen)
{
    const lh_server *s = a->srv;
    const lh_config *cfg = s->cfg;
    char where[64];
    lh_addr_format(&cfg->metrics, where, sizeof where);
    lh_metrics *m = calloc(1, sizeof *m);
    if (!m || !(m->buf = malloc(METRICS_BUF))) {
        free(m);
        snprintf(err, errlen, "out of memory for the metrics endpoint");
        return NULL;
    }
    m->admin = a;
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     (cfg->metrics.sa.sa_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    m->mhd = MHD_start_daemon(flags, 0, on_accept, m, on_request, m, MHD_OPTION_SOCK_ADDR,
                              &cfg->metrics.sa, MHD_OPTION_CONNECTION_LIMIT,
                              (unsigned)METRICS_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned)METRICS_TIMEOUT_S, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        m->mhd ? MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (!info) {
        snprintf(err, errlen,
                 "metrics: cannot listen on %s (in use, or not an address of this machine)", where);
        if (m->mhd) MHD_stop_daemon(m->mhd);
        free(m->buf);
        free(m);
        return NULL;
    }
    uv_poll_init(s->loop, &m->poll, info->epoll_fd);
    uv_timer_init(s->loop, &m->timer);
    m->poll.data = m->timer.data = m;
    m->open_handles = 2;
    uv_poll_start(&m->poll, UV_READABLE, on_poll);
    lh_info("metrics on http://%s/metrics", where);
    return m;
}

static void on_closed(uv_handle_t *h)
{
    lh_metrics *m = h->data;
    if (--m->open_handles) return;
    MHD_stop_daemon(m->mhd);
    free(m->buf);
    free(m);
}

void lh_metrics_stop(lh_metrics *m)
{
    if (!m) return;
    uv_close((uv_handle_t *)&m->poll, on_closed);
    uv_close((uv_handle_t *)&m->timer, on_closed);
}
