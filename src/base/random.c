/* random.c - see random.h. */
#include "loophole/random.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

void lh_random_init(lh_random *r)
{
    r->pos = LH_RANDOM_BLOCK;
}

/* getrandom(2) needs no file descriptor, so it works when the process has run out of them
 * (EMFILE) - the moment an attacker flooding us would choose. /dev/urandom is only a fallback
 * for a kernel without the call. */
static void refill(lh_random *r)
{
    size_t got = 0;
    while (got < sizeof r->buf) {
        ssize_t n = getrandom(r->buf + got, sizeof r->buf - got, 0);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        ssize_t k = fd >= 0 ? read(fd, r->buf + got, sizeof r->buf - got) : -1;
        if (fd >= 0) close(fd);
        if (k <= 0) {
            fprintf(stderr,
                    "loophole: no random bytes from the kernel (getrandom: %s); "
                    "refusing to continue with predictable query randomisation\n",
                    strerror(errno));
            abort();
        }
        got += (size_t)k;
    }
    r->pos = 0;
}

uint64_t lh_random_u64(lh_random *r)
{
    if (r->pos > LH_RANDOM_BLOCK - sizeof(uint64_t)) refill(r);
    uint64_t v;
    memcpy(&v, r->buf + r->pos, sizeof v);
    r->pos += sizeof v;
    return v;
}

void lh_random_case_unlike(lh_random *r, uint8_t *name, size_t len, const uint8_t *unlike)
{
    lh_random_case(r, name, len);
    if (memcmp(name, unlike, len) != 0) return;
    for (size_t i = 0; i < len; i++) /* length bytes are below 64: never letters */
        if ((name[i] | 0x20) >= 'a' && (name[i] | 0x20) <= 'z') {
            name[i] ^= 0x20;
            return;
        }
}

void lh_random_case(lh_random *r, uint8_t *name, size_t len)
{
    uint64_t bits = 0;
    unsigned left = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = name[i] | 0x20;
        if (c < 'a' || c > 'z') continue;
        if (!left) {
            bits = lh_random_u64(r);
            left = 64;
        }
        name[i] = (uint8_t)((bits & 1) ? (c - 32) : c);
        bits >>= 1;
        left--;
    }
}
