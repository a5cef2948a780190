/* clock.c - see clock.h. */
#include "loophole/clock.h"

#include <stddef.h>

void lh_clock_init_loop(lh_clock *c, uv_loop_t *loop)
{
    c->loop = loop;
    c->manual = false;
    c->manual_now_ms = 0;
    c->armed = NULL;
}

void lh_clock_init_manual(lh_clock *c, uint64_t start_ms)
{
    c->loop = NULL;
    c->manual = true;
    c->manual_now_ms = start_ms;
    c->armed = NULL;
}

static void on_uv_timer(uv_timer_t *h)
{
    lh_timer *t = h->data;
    t->armed = false;
    t->cb(t);
}

void lh_timer_init(lh_clock *c, lh_timer *t, lh_timer_cb cb, void *data)
{
    t->clock = c;
    t->cb = cb;
    t->data = data;
    t->armed = false;
    t->next = NULL;
    t->due_ms = 0;
    t->closed = NULL;
    if (!c->manual) {
        uv_timer_init(c->loop, &t->uv);
        t->uv.data = t;
    }
}

static void unlink_armed(lh_timer *t)
{
    lh_timer **pp = &t->clock->armed;
    while (*pp && *pp != t)
        pp = &(*pp)->next;
    if (*pp) *pp = t->next;
    t->next = NULL;
}

void lh_timer_start(lh_timer *t, uint64_t delay_ms)
{
    lh_clock *c = t->clock;
    if (!c->manual) {
        t->armed = true;
        uv_timer_start(&t->uv, on_uv_timer, delay_ms, 0);
        return;
    }
    if (t->armed) unlink_armed(t);
    t->due_ms = c->manual_now_ms + delay_ms;
    t->armed = true;
    t->next = c->armed;
    c->armed = t;
}

void lh_timer_stop(lh_timer *t)
{
    if (!t->clock->manual) {
        uv_timer_stop(&t->uv);
    } else if (t->armed) {
        unlink_armed(t);
    }
    t->armed = false;
}

static void on_uv_closed(uv_handle_t *h)
{
    lh_timer *t = h->data;
    if (t->closed) t->closed(t);
}

void lh_timer_close(lh_timer *t, void (*closed)(lh_timer *t))
{
    lh_timer_stop(t);
    if (t->clock->manual) {
        if (closed) closed(t);
        return;
    }
    if (uv_is_closing((uv_handle_t *)&t->uv)) return;
    t->closed = closed;
    uv_close((uv_handle_t *)&t->uv, on_uv_closed);
}

void lh_clock_advance(lh_clock *c, uint64_t ms)
{
    uint64_t end = c->manual_now_ms + ms;
    for (;;) {
        lh_timer *first = NULL;
        for (lh_timer *t = c->armed; t; t = t->next)
            if (t->due_ms <= end && (!first || t->due_ms < first->due_ms)) first = t;
        if (!first) break;
        unlink_armed(first);
        first->armed = false;
        if (first->due_ms > c->manual_now_ms) c->manual_now_ms = first->due_ms;
        first->cb(first);
    }
    c->manual_now_ms = end;
}
