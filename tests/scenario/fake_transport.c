/* fake_transport.c - see fake_transport.h. */
#include "fake_transport.h"

#include <stdlib.h>
#include <string.h>

static void unlink_try(fake_try *ft)
{
    fake_try **pp = &ft->t->head;
    while (*pp && *pp != ft)
        pp = &(*pp)->next;
    if (*pp) *pp = ft->next;
}

static void on_timeout(lh_timer *tm)
{
    fake_try *ft = tm->data;
    unlink_try(ft);
    ft->t->timed_out++;
    lh_try_done_cb done = ft->done;
    void *arg = ft->arg;
    free(ft);
    done(arg, FAKE_TIMEOUT, NULL, 0);
}

static lh_try *fake_start(lh_transport *base, lh_upstream_server *s, const uint8_t *query,
                          size_t len, lh_try_done_cb done, void *arg)
{
    fake_transport *t = (fake_transport *)base;
    if (len > sizeof((fake_try *)0)->query) return NULL;
    fake_try *ft = calloc(1, sizeof *ft);
    if (!ft) return NULL;
    ft->t = t;
    ft->server = s;
    ft->done = done;
    ft->arg = arg;
    ft->len = len;
    memcpy(ft->query, query, len);
    lh_timer_init(t->clock, &ft->timeout, on_timeout, ft);
    lh_timer_start(&ft->timeout, t->timeout_ms);
    fake_try **pp = &t->head;
    while (*pp)
        pp = &(*pp)->next;
    *pp = ft;
    t->started++;
    return (lh_try *)ft;
}

static void fake_cancel(lh_transport *base, lh_try *try_)
{
    fake_try *ft = (fake_try *)try_;
    unlink_try(ft);
    lh_timer_stop(&ft->timeout);
    ((fake_transport *)base)->cancelled++;
    free(ft);
}

static const char *fake_strerror(int status)
{
    return status == FAKE_TIMEOUT ? "timeout (scripted)" : "SERVFAIL, REFUSED or NOTIMP (scripted)";
}

static void fake_shutdown(lh_transport *base)
{
    fake_transport *t = (fake_transport *)base;
    while (t->head) {
        fake_try *ft = t->head;
        t->head = ft->next;
        lh_timer_stop(&ft->timeout);
        free(ft);
    }
}

static void fake_free(lh_transport *base)
{
    fake_shutdown(base);
    free(base);
}

static const lh_transport_ops fake_ops = {
    .name = "scripted fake",
    .start = fake_start,
    .cancel = fake_cancel,
    .strerror = fake_strerror,
    .shutdown = fake_shutdown,
    .free = fake_free,
};

fake_transport *fake_transport_new(lh_clock *clock, unsigned timeout_ms)
{
    fake_transport *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->base.ops = &fake_ops;
    t->clock = clock;
    t->timeout_ms = timeout_ms;
    return t;
}

fake_try *fake_oldest(fake_transport *t)
{
    return t->head;
}

void fake_reply(fake_try *ft, const uint8_t *answer, size_t len)
{
    unlink_try(ft);
    lh_timer_stop(&ft->timeout);
    lh_try_done_cb done = ft->done;
    void *arg = ft->arg;
    free(ft);
    unsigned rcode = len >= 4 ? (answer[3] & 0xfu) : 0;
    if (rcode == 2 || rcode == 4 || rcode == 5) /* as c-ares without ARES_FLAG_NOCHECKRESP */
        done(arg, FAKE_RCODE_FAILURE, NULL, 0);
    else
        done(arg, 0, answer, len);
}
