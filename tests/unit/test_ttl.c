/* test_ttl.c - TTLs of forwarded answers: the clamps, the top bit (RFC 2181 8), one TTL per
 * RRset (RFC 2181 5.2), negative answers, and the figures the cache reads afterwards. */
#include "querybuf.h"
#include "unit.h"

#include "loophole/ttl.h"

/* Appends a record owned by the question name (a pointer to it) to the answer. */
static size_t rr(uint8_t *b, size_t len, uint16_t owner_ptr, uint16_t type, uint32_t ttl,
                 const uint8_t *rdata, uint16_t rdlen)
{
    uint8_t *p = b + len;
    lh_wr16(p, owner_ptr);
    lh_wr16(p + 2, type);
    lh_wr16(p + 4, LH_CLASS_IN);
    lh_wr32(p + 6, ttl);
    lh_wr16(p + 10, rdlen);
    memcpy(p + 12, rdata, rdlen);
    return len + 12 + rdlen;
}

static uint32_t ttl_at(const uint8_t *b, const lh_answer_info *ai, unsigned i)
{
    return lh_rd32(b + ai->ttl_off[i]);
}

static const lh_ttl_limits lim = {.min_ttl = 0, .max_ttl = 86400, .max_negative_ttl = 3600};

static void huge_and_top_bit(void)
{
    uint8_t b[512];
    const uint8_t a[4] = {192, 0, 2, 1};
    size_t len = qb_query(b, "example.com", LH_TYPE_A, 0, false);
    lh_wr16(b + 2, LH_FLAG_QR | LH_FLAG_RD | LH_FLAG_RA);
    lh_wr16(b + 6, 1);
    len = rr(b, len, 0xc00c, LH_TYPE_A, 0x7fffffff, a, 4);
    lh_answer_info ai;
    CHECK_EQ(lh_answer_scan(b, len, &ai), 0);
    CHECK_EQ(lh_ttl_normalise(b, len, &ai, &lim), 0);
    CHECK_EQ(ttl_at(b, &ai, 0), 86400); /* 2^31-1 clamped to cache-max-ttl */
    CHECK_EQ(ai.min_answer_ttl, 86400);
    lh_wr32(b + ai.ttl_off[0], 0x80000000u);
    CHECK_EQ(lh_answer_scan(b, len, &ai), 0);
    CHECK_EQ(lh_ttl_normalise(b, len, &ai, &lim), 0);
    CHECK_EQ(ttl_at(b, &ai, 0), 0); /* top bit: zero */
    CHECK_EQ(ai.min_answer_ttl, 0);
    lh_ttl_limits floor = lim;
    floor.min_ttl = 30;
    lh_wr32(b + ai.ttl_off[0], 0xffffffffu);
    CHECK_EQ(lh_answer_scan(b, len, &ai), 0);
    CHECK_EQ(lh_ttl_normalise(b, len, &ai, &floor), 0);
    CHECK_EQ(ttl_at(b, &ai, 0), 30); /* zero, then raised to cache-min-ttl */
}

static void one_ttl_per_rrset(void)
{
    uint8_t b[1024];
    const uint8_t a[4] = {192, 0, 2, 1}, a2[4] = {192, 0, 2, 2}, a3[4] = {192, 0, 2, 3};
    size_t len = qb_query(b, "www.example.com", LH_TYPE_A, 0, false);
    lh_wr16(b + 2, LH_FLAG_QR | LH_FLAG_RD | LH_FLAG_RA);
    /* answer: CNAME www -> "example.com" (a pointer into the question at offset 16), then
     * three A records of example.com with TTLs 300, 20, 0x80000005; authority: NS of
     * example.com (its own set, TTL 500); additional: an A of www (another owner, TTL 7). */
    const uint8_t target[2] = {0xc0, 16};
    lh_wr16(b + 6, 4);
    lh_wr16(b + 8, 1);
    lh_wr16(b + 10, 1);
    len = rr(b, len, 0xc00c, LH_TYPE_CNAME, 100, target, 2);
    len = rr(b, len, 0xc010, LH_TYPE_A, 300, a, 4);
    len = rr(b, len, 0xc010, LH_TYPE_A, 20, a2, 4);
    len = rr(b, len, 0xc010, LH_TYPE_A, 0x80000005u, a3, 4);
    len = rr(b, len, 0xc010, LH_TYPE_NS, 500, target, 2);
    len = rr(b, len, 0xc00c, LH_TYPE_A, 7, a, 4);
    lh_answer_info ai;
    CHECK_EQ(lh_answer_scan(b, len, &ai), 0);
    CHECK_EQ(ai.nttl, 6);
    CHECK_EQ(lh_ttl_normalise(b, len, &ai, &lim), 0);
    CHECK_EQ(ttl_at(b, &ai, 0), 100); /* the CNAME set, alone */
    CHECK_EQ(ttl_at(b, &ai, 1), 0);   /* the A set: its lowest, the top-bit one read as 0 */
    CHECK_EQ(ttl_at(b, &ai, 2), 0);
    CHECK_EQ(ttl_at(b, &ai, 3), 0);
    CHECK_EQ(ttl_at(b, &ai, 4), 500); /* NS: another type */
    CHECK_EQ(ttl_at(b, &ai, 5), 7);   /* additional: another section and owner */
    CHECK_EQ(ai.min_answer_ttl, 0);
    /* Without the top-bit record the A set is 20 everywhere; a mixed-case owner is the same
     * name. */
    lh_wr32(b + ai.ttl_off[1], 300);
    lh_wr32(b + ai.ttl_off[2], 20);
    lh_wr32(b + ai.ttl_off[3], 3000);
    CHECK_EQ(lh_answer_scan(b, len, &ai), 0);
    CHECK_EQ(lh_ttl_normalise(b, len, &ai, &lim), 0);
    CHECK_EQ(ttl_at(b, &ai, 1), 20);
    CHECK_EQ(ttl_at(b, &ai, 2), 20);
    CHECK_EQ(ttl_at(b, &ai, 3), 20);
    CHECK_EQ(ai.min_answer_ttl, 20);
    /* Many sets (past the tracked 64): each still uniform. */
    uint8_t m[8192];
    size_t ml = qb_query(m, "example.com", LH_TYPE_TXT, 0, false);
    lh_wr16(m + 2, LH_FLAG_QR);
    unsigned n = 0;
    for (unsigned t = 0; t < 100; t++)
        for (unsigned k = 0; k < 2; k++, n++) {
            uint8_t txt[3] = {2, (uint8_t)('a' + k), (uint8_t)('a' + t % 26)};
            ml = rr(m, ml, 0xc00c, (uint16_t)(1000 + t), 1000 + t * 10 + k * 5, txt, 3);
        }
    lh_wr16(m + 6, (uint16_t)n);
    CHECK_EQ(lh_answer_scan(m, ml, &ai), 0);
    CHECK_EQ(lh_ttl_normalise(m, ml, &ai, &lim), 0);
    bool uniform = true, lowest = true;
    for (unsigned i = 0; i < n; i += 2) {
        uniform = uniform && ttl_at(m, &ai, i) == ttl_at(m, &ai, i + 1);
        lowest = lowest && ttl_at(m, &ai, i) <= 1000 + (i / 2) * 10;
    }
    CHECK(uniform);
    CHECK(lowest);
    CHECK_EQ(ttl_at(m, &ai, 0), 1000);
}

static void negative(void)
{
    uint8_t b[512];
    size_t len = qb_query(b, "nx.example.com", LH_TYPE_A, 0, false);
    lh_wr16(b + 2, LH_FLAG_QR | LH_FLAG_RD | LH_FLAG_RA | LH_RCODE_NXDOMAIN);
    lh_wr16(b + 8, 1);
    uint8_t soa[2 + 2 + 20] = {0xc0, 15, 0xc0, 15};
    lh_wr32(soa + 4 + 16, 0x90000000u); /* MINIMUM with the top bit set */
    len = rr(b, len, 0xc00f, LH_TYPE_SOA, 0x7fffffff, soa, sizeof soa);
    lh_answer_info ai;
    lh_ttl_limits floor = lim;
    floor.min_ttl = 60; /* not applied to negative answers */
    CHECK_EQ(lh_answer_scan(b, len, &ai), 0);
    CHECK_EQ(lh_ttl_normalise(b, len, &ai, &floor), 0);
    CHECK_EQ(ai.negative_ttl, 0);   /* MINIMUM's top bit: 0, so not cached */
    CHECK_EQ(ttl_at(b, &ai, 0), 0); /* and no record of it claims longer */
    lh_wr32(b + len - 4, 900);
    lh_wr32(b + ai.ttl_off[0], 0x7fffffff);
    CHECK_EQ(lh_answer_scan(b, len, &ai), 0);
    CHECK_EQ(lh_ttl_normalise(b, len, &ai, &floor), 0);
    CHECK_EQ(ai.negative_ttl, 900);
    CHECK_EQ(ttl_at(b, &ai, 0), 900); /* the SOA's TTL: min(SOA TTL, MINIMUM), RFC 2308 5 */
    lh_wr32(b + len - 4, 7200);
    lh_wr32(b + ai.ttl_off[0], 0x7fffffff);
    CHECK_EQ(lh_answer_scan(b, len, &ai), 0);
    CHECK_EQ(lh_ttl_normalise(b, len, &ai, &floor), 0);
    CHECK_EQ(ai.negative_ttl, 3600); /* cache-max-negative-ttl */
    CHECK_EQ(ttl_at(b, &ai, 0), 3600);
    CHECK_EQ(lh_ttl_normalise(b, len - 1, &ai, &floor), -1); /* truncated: malformed */
}

void test_ttl(void)
{
    huge_and_top_bit();
    one_ttl_per_rrset();
    negative();
}
