/* ratelimit.h - per-source rate limits in fixed memory: a count per one-second window for each
 * source network, in a table where a colliding source simply takes the slot over (a limit,
 * not an accounting: a collision can only make it more lenient for a moment). Used against
 * amplification on non-loopback listeners, and by the leak server. */
#ifndef LH_RATELIMIT_H
#define LH_RATELIMIT_H

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
} lh_ratelimit;

/* `slots` is rounded up to a power of two. Returns 0, or -1 out of memory. */
int lh_ratelimit_init(lh_ratelimit *r, size_t slots, uint32_t per_second, uint8_t prefix4,
                      uint8_t prefix6);
void lh_ratelimit_free(lh_ratelimit *r);
/* Counts one answer to `sa` at `now_ms`; false when its network is over the limit. The
 * count of this window is returned in `count` (for slipping every Nth). */
bool lh_ratelimit_allow(lh_ratelimit *r, const struct sockaddr *sa, uint64_t now_ms,
                        uint32_t *count);

#endif
