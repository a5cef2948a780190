/* random.h - unpredictable bits for the spoofing defences (0x20 case, anything an off-path
 * attacker must not guess), straight from the kernel's CSPRNG.
 *
 * A generator whose output reveals its state (xorshift, an LCG) lets one observed question -
 * at an attacker's own authoritative server, say - predict every later one. getrandom(2) has no
 * such weakness; it is called for 256 bytes at a time so that the hot path costs one memcpy per
 * 8 bytes and one system call per 32 questions. One per event loop; not thread-safe. */
#ifndef LH_RANDOM_H
#define LH_RANDOM_H

#include <stddef.h>
#include <stdint.h>

#define LH_RANDOM_BLOCK 256

typedef struct lh_random {
    unsigned pos; /* next unused byte of buf; LH_RANDOM_BLOCK when empty */
    uint8_t buf[LH_RANDOM_BLOCK];
} lh_random;

/* Starts empty: the first draw fills the block. */
void lh_random_init(lh_random *r);
/* 64 bits from the kernel's CSPRNG. Aborts the process if the kernel cannot provide them:
 * predictable "random" bits would silently disable a defence. */
uint64_t lh_random_u64(lh_random *r);
/* Randomises the case of every ASCII letter of a wire-format name (0x20 bits, RFC draft
 * vixie-dnsext-dns0x20); other bytes are left alone. */
void lh_random_case(lh_random *r, uint8_t *name, size_t len);
/* The same, but never spelt as `unlike` (len bytes): when the draw reproduces it, the first
 * letter's case is flipped. The forwarder takes a client question equal byte for byte to one
 * of its own pending upstream questions for that question coming back (a forwarding loop), so
 * its random case must never be the client's own spelling (all lower case, for most clients);
 * one pattern in 2^letters is given up. */
void lh_random_case_unlike(lh_random *r, uint8_t *name, size_t len, const uint8_t *unlike);

#endif
