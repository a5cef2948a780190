/* ratelimit.c - see ratelimit.h. */
#include "loophole/ratelimit.h"
#include "loophole/addr.h"
#include "loophole/nameset.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct lh_ratelimit_slot {
    uint8_t family;
    uint8_t net[16];
    uint32_t count;
    uint64_t second;
};

int lh_ratelimit_init(lh_ratelimit *r, const lh_clock *clock, size_t slots, uint32_t per_second,
                      uint8_t prefix4, uint8_t prefix6)
{
    size_t n = 64;
    while (n < slots)
        n <<= 1;
    memset(r, 0, sizeof *r);
    r->slots = calloc(n, sizeof *r->slots);
    if (!r->slots) return -1;
    r->mask = n - 1;
    r->clock = clock;
    r->per_second = per_second;
    r->prefix4 = prefix4 > 32 ? 32 : prefix4;
    r->prefix6 = prefix6 > 128 ? 128 : prefix6;
    if (getrandom(&r->seed, sizeof r->seed, 0) != sizeof r->seed) r->seed = (uintptr_t)r->slots;
    return 0;
}

void lh_ratelimit_free(lh_ratelimit *r)
{
    free(r->slots);
    r->slots = NULL;
}

bool lh_ratelimit_allow(lh_ratelimit *r, const struct sockaddr *sa, uint32_t *count)
{
    return lh_ratelimit_allow_at(r, sa, lh_clock_now(r->clock), count);
}

bool lh_ratelimit_allow_at(lh_ratelimit *r, const struct sockaddr *sa, uint64_t now_ms,
                           uint32_t *count)
{
    uint8_t net[16] = {0};
    const uint8_t *addr;
    size_t len = lh_addr_bytes(sa, &addr);
    unsigned bits = len == 16 ? r->prefix6 : r->prefix4;
    memcpy(net, addr, len);
    for (unsigned i = bits / 8; i < len; i++) /* keep the network part only */
        net[i] = i == bits / 8 ? (uint8_t)(net[i] & (0xff00u >> (bits % 8))) : 0;
    uint64_t h = lh_hash_bytes(r->seed ^ sa->sa_family, net, len);
    lh_ratelimit_slot *s = &r->slots[h & r->mask];
    uint64_t second = now_ms / 1000;
    if (s->family != sa->sa_family || s->second != second || memcmp(s->net, net, 16)) {
        s->family = (uint8_t)sa->sa_family;
        memcpy(s->net, net, 16);
        s->second = second;
        s->count = 0;
    }
    *count = ++s->count;
    return s->count <= r->per_second;
}
