/* clock.h - the time every decision of the forwarder is made by: TTL ageing, the query
 * budget, upstream back-off, serve-stale, the tries of a scripted upstream.
 *
 * In the daemon it is the event loop's clock (uv_now, milliseconds, updated once per loop
 * pass) and its timers are uv timers. In the scenario tests it is a manual clock: time stands
 * still until the test advances it, and lh_clock_advance fires the timers that fell due, in
 * order, on the caller's stack - no sleeps, no wall-clock dependence. */
#ifndef LH_CLOCK_H
#define LH_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

typedef struct lh_clock lh_clock;
typedef struct lh_timer lh_timer;
typedef void (*lh_timer_cb)(lh_timer *t);

struct lh_clock {
    uv_loop_t *loop; /* loop clock: its time and timers */
    bool manual;
    uint64_t manual_now_ms;
    lh_timer *armed; /* manual clock: armed timers, unordered */
};

/* A one-shot timer. Embed it; `data` is the user's. */
struct lh_timer {
    lh_clock *clock;
    lh_timer_cb cb;
    void *data;
    uv_timer_t uv;   /* loop clock */
    uint64_t due_ms; /* manual clock */
    bool armed;
    lh_timer *next;
    void (*closed)(lh_timer *t); /* loop clock: after uv_close */
};

void lh_clock_init_loop(lh_clock *c, uv_loop_t *loop);
/* A manual clock starting at `start_ms` (choose > 0: 0 reads as "never" in places). */
void lh_clock_init_manual(lh_clock *c, uint64_t start_ms);

static inline uint64_t lh_clock_now(const lh_clock *c)
{
    return c->manual ? c->manual_now_ms : uv_now(c->loop);
}

/* Unix time in seconds, for DNSSEC signature windows: the system's with the loop clock; the
 * manual clock's milliseconds read as Unix time, so that a test sets the date by its start. */
static inline int64_t lh_clock_unix(const lh_clock *c)
{
    return c->manual ? (int64_t)(c->manual_now_ms / 1000) : (int64_t)time(NULL);
}

void lh_timer_init(lh_clock *c, lh_timer *t, lh_timer_cb cb, void *data);
/* (Re)arms the timer to fire `delay_ms` from now. */
void lh_timer_start(lh_timer *t, uint64_t delay_ms);
void lh_timer_stop(lh_timer *t);
/* Stops the timer for good; with the loop clock the handle is closed asynchronously, so the
 * memory must stay valid until the loop has run once more (`closed`, if not NULL, then runs). */
void lh_timer_close(lh_timer *t, void (*closed)(lh_timer *t));

/* Manual clock: moves time forward by `ms`, firing every timer due on the way, each at its
 * own due time (the clock reads that time inside the callback). */
void lh_clock_advance(lh_clock *c, uint64_t ms);

#endif
