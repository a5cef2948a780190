/* canary.h - the leak check's canary zone, which the resolver answers itself: what the policy
 * (which answers it) and the leak check (which asks it) share. Header only. */
#ifndef LH_CANARY_H
#define LH_CANARY_H

#include <stdint.h>

/* `<nonce>.canary.loophole.test A` is answered by loophole itself with an address derived from
 * the name, so the check can tell loophole's answer from anybody else's. */
#define LH_LEAK_CANARY_ZONE "canary.loophole.test"

/* The canary's A record for a name whose full-name hash (lh_name_hashes()[0]) is `h`. */
static inline void lh_leak_canary_v4(uint64_t h, uint8_t out[4])
{
    out[0] = 127;
    out[1] = (uint8_t)(h >> 8) | 0x80; /* 127.128.0.0/9: never 127.0.0.1 */
    out[2] = (uint8_t)(h >> 16);
    out[3] = (uint8_t)(h >> 24);
}

#endif
