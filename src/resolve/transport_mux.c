/* transport_mux.c - plain DNS, DNS over TLS and DNS over HTTPS side by side behind one ops
 * table: each try goes to the transport its server asks for (server->tls.on, tls.https), so a mixed
 * upstream list or a forward zone can name servers of either kind and failover, health and the
 * answer checks in upstream.c stay the same for all. */
#include "loophole/upstream.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct mux_transport {
    lh_transport base;
    lh_transport *plain, *tls, *https; /* tls, https: NULL when no upstream needs it */
} mux_transport;

static lh_try *mux_start(lh_transport *base, lh_upstream_server *s, const uint8_t *query,
                         size_t len, lh_try_done_cb done, void *arg)
{
    mux_transport *m = (mux_transport *)base;
    lh_transport *t = s->tls.https ? m->https : s->tls.on ? m->tls : m->plain;
    return t ? t->ops->start(t, s, query, len, done, arg) : NULL;
}

static void mux_cancel(lh_transport *base, lh_try *try_)
{
    mux_transport *m = (mux_transport *)base;
    lh_transport *t = m->tls && lh_transport_tls_owns(m->tls, try_)         ? m->tls
                      : m->https && lh_transport_https_owns(m->https, try_) ? m->https
                                                                            : m->plain;
    t->ops->cancel(t, try_);
}

/* The HTTPS transport's statuses are -3000 and below, the TLS transport's -2000 to -2999,
 * c-ares' small negatives. */
static const char *mux_strerror(int status)
{
    return status <= -3000   ? lh_transport_https_ops()->strerror(status)
           : status <= -2000 ? lh_transport_tls_ops()->strerror(status)
                             : ares_strerror(-status);
}

/* The same ranges: each encrypted transport's status is -(its base + lh_tls_reason). */
static int mux_ede(int status)
{
    if (status <= -3000) return lh_tls_reason_ede((enum lh_tls_reason)(-status - 3000));
    if (status <= -2000) return lh_tls_reason_ede((enum lh_tls_reason)(-status - 2000));
    return 22;
}

static void mux_shutdown(lh_transport *base)
{
    mux_transport *m = (mux_transport *)base;
    m->plain->ops->shutdown(m->plain);
    if (m->tls) m->tls->ops->shutdown(m->tls);
    if (m->https) m->https->ops->shutdown(m->https);
}

static void mux_free(lh_transport *base)
{
    mux_transport *m = (mux_transport *)base;
    m->plain->ops->free(m->plain);
    if (m->tls) m->tls->ops->free(m->tls);
    if (m->https) m->https->ops->free(m->https);
    free(m);
}

static const lh_transport_ops mux_ops = {
    .name = "dns, dns over tls and dns over https",
    .start = mux_start,
    .cancel = mux_cancel,
    .strerror = mux_strerror,
    .shutdown = mux_shutdown,
    .free = mux_free,
    .ede = mux_ede,
};

/* Does any upstream use DNS over TLS (https false) or DNS over HTTPS (https true)? */
static bool config_has(const lh_config *cfg, bool https)
{
    for (unsigned i = 0; i < cfg->nupstreams; i++)
        if (cfg->upstream_tls[i].on && cfg->upstream_tls[i].https == https) return true;
    for (unsigned z = 0; z < cfg->nforward_zones; z++)
        for (unsigned i = 0; i < cfg->forward_zones[z].nservers; i++)
            if (cfg->forward_zones[z].tls[i].on && cfg->forward_zones[z].tls[i].https == https)
                return true;
    return false;
}

lh_transport *lh_transport_for_config(uv_loop_t *loop, const lh_config *cfg, unsigned max_inflight,
                                      char *err, size_t errlen)
{
    lh_transport *plain = lh_transport_ares_new(loop, cfg->upstream_timeout_ms);
    bool tls = config_has(cfg, false), https = config_has(cfg, true);
    if (!plain || (!tls && !https)) {
        if (!plain) snprintf(err, errlen, "out of memory");
        return plain;
    }
    mux_transport *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        plain->ops->free(plain);
        return NULL;
    }
    m->base.ops = &mux_ops;
    m->plain = plain;
    if (tls && !(m->tls = lh_transport_tls_new(loop, cfg->upstream_timeout_ms, cfg->tls_ca,
                                               max_inflight, err, errlen)))
        goto fail;
    if (https && !(m->https = lh_transport_https_new(loop, cfg->upstream_timeout_ms,
                                                     cfg->doh_idle_timeout_ms, cfg->tls_ca,
                                                     max_inflight, err, errlen)))
        goto fail;
    return &m->base;
fail:
    mux_free(&m->base);
    return NULL;
}
