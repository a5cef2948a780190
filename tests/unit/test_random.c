/* test_random.c - the 0x20 case bits: 10,000 questions of 64 letters each (exactly one 64-bit
 * draw per question) show no repeated pattern, and the xorshift64* state-recovery attack -
 * recover the state from one pattern, predict the next - predicts none of them. With the
 * xorshift64* generator loophole once used, it predicts every one. */
#include "unit.h"

#include "loophole/random.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define N 10000
#define XS_MUL 0x2545f4914f6cdd1dull

/* The multiplicative inverse of an odd number modulo 2^64 (Newton's iteration). */
static uint64_t inverse(uint64_t a)
{
    uint64_t x = a;
    for (int i = 0; i < 6; i++)
        x *= 2 - a * x;
    return x;
}

static uint64_t xorshift_step(uint64_t x)
{
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return x;
}

/* The attack: output = state * M, so state = output * M^-1, and the next output follows. */
static uint64_t predict_next(uint64_t observed)
{
    return xorshift_step(observed * inverse(XS_MUL)) * XS_MUL;
}

/* The case pattern of a 64-letter name, bit i = letter i is upper case. */
static uint64_t pattern(const uint8_t *wire, size_t len)
{
    uint64_t p = 0;
    unsigned bit = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = wire[i];
        if ((c | 0x20) < 'a' || (c | 0x20) > 'z') continue;
        if (c < 'a') p |= 1ull << bit;
        bit++;
    }
    return p;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static unsigned count_predicted(const uint64_t *seq, size_t n)
{
    uint64_t *sorted = malloc(n * sizeof *sorted);
    memcpy(sorted, seq, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_u64);
    unsigned hits = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t next = predict_next(seq[i]); /* order-independent: anywhere in the sample */
        if (bsearch(&next, sorted, n, sizeof *sorted, cmp_u64)) hits++;
    }
    free(sorted);
    return hits;
}

static unsigned count_repeats(const uint64_t *seq, size_t n)
{
    uint64_t *sorted = malloc(n * sizeof *sorted);
    memcpy(sorted, seq, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_u64);
    unsigned rep = 0;
    for (size_t i = 1; i < n; i++)
        rep += sorted[i] == sorted[i - 1];
    free(sorted);
    return rep;
}

/* The forwarder's upstream spelling never equals the client's: a draw that comes out as the
 * client's spelling (all lower case: zero bits) has one letter flipped, so a second client
 * asking the same name is not taken for the upstream query coming back (a forwarding loop:
 * scenario coalesce_cap_total failed about once in 300 runs before). */
static void test_case_unlike(void)
{
    static const uint8_t asked[] = "\7example\3com";
    lh_random r;
    lh_random_init(&r);
    r.pos = 0; /* a block of zero bits: lh_random_case leaves every letter lower case */
    memset(r.buf, 0, sizeof r.buf);
    uint8_t w[sizeof asked];
    memcpy(w, asked, sizeof asked);
    lh_random_case(&r, w, sizeof asked);
    CHECK(memcmp(w, asked, sizeof asked) == 0); /* the draw alone reproduces it */
    r.pos = 0;
    lh_random_case_unlike(&r, w, sizeof asked, asked);
    CHECK(memcmp(w, asked, sizeof asked) != 0);
    CHECK_EQ(w[1], 'E'); /* the first letter flipped, nothing else */
    CHECK(memcmp(w + 2, asked + 2, sizeof asked - 2) == 0);
    /* a draw that differs is left as drawn */
    memset(r.buf, 0xff, sizeof r.buf);
    r.pos = 0;
    lh_random_case_unlike(&r, w, sizeof asked, asked);
    CHECK_EQ(w[1], 'E');
    CHECK_EQ(w[9], 'C');
}

void test_random(void)
{
    test_case_unlike();
    /* 63 letters, a digit label, one letter: 64 letters, exactly one draw per question. */
    uint8_t name[80];
    size_t len = 0;
    name[len++] = 63;
    for (int i = 0; i < 63; i++)
        name[len++] = (uint8_t)('a' + i % 26);
    name[len++] = 2;
    name[len++] = '4';
    name[len++] = '2';
    name[len++] = 1;
    name[len++] = 'z';
    name[len++] = 0;
    uint64_t *seq = malloc(N * sizeof *seq);
    lh_random r;
    lh_random_init(&r);
    bool letters_kept = true;
    for (unsigned q = 0; q < N; q++) {
        uint8_t w[80];
        memcpy(w, name, len);
        lh_random_case(&r, w, len);
        seq[q] = pattern(w, len);
        for (size_t i = 0; i < len; i++)
            letters_kept = letters_kept && (w[i] | 0x20) == (name[i] | 0x20);
    }
    CHECK(letters_kept); /* only the case changes; lengths and digits untouched */
    CHECK_EQ(count_repeats(seq, N), 0);
    CHECK_EQ(count_predicted(seq, N), 0);
    /* The check itself works: a xorshift64* sequence is predicted every time. */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (unsigned q = 0; q < N; q++) {
        x = xorshift_step(x);
        seq[q] = x * XS_MUL;
    }
    CHECK_EQ(count_predicted(seq, N), N - 1);
    free(seq);
}
