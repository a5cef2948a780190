/* transport_mux.c - plain DNS and DNS over TLS side by side behind one ops table: each try
 * goes to the transport its server asks for (server->tls.on), so a mixed upstream list or a
 * forward zone can name servers of either kind and failover, health and the answer checks in
 * upstream.c stay the same for all. */
#include "loophole/upstream.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct mux_transport {
    lh_transport base;
    lh_transport *plain, *tls;
} mux_transport;

static lh_try *mux_start(lh_transport *base, lh_upstream_server *s, const uint8_t *query,
                         size_t len, lh_try_done_cb done, void *arg)
{
    mux_transport *m = (mux_transport *)base;
    lh_transport *t = s->tls.on ? m->tls : m->plain;
    return t->ops->start(t, s, query, len, done, arg);
}

static void mux_cancel(lh_transport *base, lh_try *try_)
{
    mux_transport *m = (mux_transport *)base;
    lh_transport *t = lh_transport_tls_owns(m->tls, try_) ? m->tls : m->plain;
    t->ops->cancel(t, try_);
}

/* The TLS transport's statuses are -2000 and below; c-ares' are small negatives. */
static const char *mux_strerror(int status)
{
    return status <= -2000 ? lh_transport_tls_ops()->strerror(status) : ares_strerror(-status);
}

static void mux_shutdown(lh_transport *base)
{
    mux_transport *m = (mux_transport *)base;
    m->plain->ops->shutdown(m->plain);
    m->tls->ops->shutdown(m->tls);
}

static void mux_free(lh_transport *base)
{
    mux_transport *m = (mux_transport *)base;
    m->plain->ops->free(m->plain);
    m->tls->ops->free(m->tls);
    free(m);
}

static const lh_transport_ops mux_ops = {
    .name = "dns and dns over tls",
    .start = mux_start,
    .cancel = mux_cancel,
    .strerror = mux_strerror,
    .shutdown = mux_shutdown,
    .free = mux_free,
};

static bool config_has_tls(const lh_config *cfg)
{
    for (unsigned i = 0; i < cfg->nupstreams; i++)
        if (cfg->upstream_tls[i].on) return true;
    for (unsigned z = 0; z < cfg->nforward_zones; z++)
        for (unsigned i = 0; i < cfg->forward_zones[z].nservers; i++)
            if (cfg->forward_zones[z].tls[i].on) return true;
    return false;
}

lh_transport *lh_transport_for_config(uv_loop_t *loop, const lh_config *cfg, unsigned max_inflight,
                                      char *err, size_t errlen)
{
    lh_transport *plain = lh_transport_ares_new(loop, cfg->upstream_timeout_ms);
    if (!plain || !config_has_tls(cfg)) {
        if (!plain) snprintf(err, errlen, "out of memory");
        return plain;
    }
    mux_transport *m = calloc(1, sizeof *m);
    lh_transport *tls = m ? lh_transport_tls_new(loop, cfg->upstream_timeout_ms, cfg->tls_ca,
                                                 max_inflight, err, errlen)
                          : NULL;
    if (!tls) {
        if (!m) snprintf(err, errlen, "out of memory");
        free(m);
        plain->ops->free(plain);
        return NULL;
    }
    m->base.ops = &mux_ops;
    m->plain = plain;
    m->tls = tls;
    return &m->base;
}
