/* ratelimit.h - per-source rate limits in fixed memory: a count per one-second window for each
 * source network, in a table where a colliding source simply takes the slot over (a limit,
 * not an accounting: a collision can only make it more lenient for a moment). Used against
 * amplification on non-loopback listeners, and by the leak server. */
#ifndef LH_RATELIMIT_H
#define LH_RATELIMIT_H

#include "loophole/clock.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct lh_ratelimit_slot lh_ratelimit_slot;

typedef struct lh_ratelimit {
    lh_ratelimit_slot *slots;
    size_t mask;
    uint32_t per_second;
    uint8_t prefix4, prefix6; /* sources are grouped into networks of these prefixes */
    uint64_t seed;
    const lh_clock *clock; /* whose seconds the windows are (NULL: callers pass the time) */
} lh_ratelimit;

/* `slots` is rounded up to a power of two. The windows are seconds of `clock` (the loop's in
 * the daemon, a manual one in tests), or of the times given to lh_ratelimit_allow_at when
 * `clock` is NULL. Returns 0, or -1 out of memory. */
int lh_ratelimit_init(lh_ratelimit *r, const lh_clock *clock, size_t slots, uint32_t per_second,
                      uint8_t prefix4, uint8_t prefix6);
void lh_ratelimit_free(lh_ratelimit *r);
/* Counts one answer to `sa` now, by the limiter's clock; false when its network is over the
 * limit. The count of this window is returned in `count` (for slipping every Nth). */
bool lh_ratelimit_allow(lh_ratelimit *r, const struct sockaddr *sa, uint32_t *count);
/* The same at `now_ms` (milliseconds of the caller's clock). */
bool lh_ratelimit_allow_at(lh_ratelimit *r, const struct sockaddr *sa, uint64_t now_ms,
                           uint32_t *count);

#endif
