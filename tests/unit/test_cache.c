/* test_cache.c - the answer scanner and the cache: TTL ageing, negative caching (RFC 2308),
 * clamps, stale serving, LRU bound, case and ID patching. */
#include "querybuf.h"
#include "unit.h"

#include "loophole/cache.h"
#include "loophole/nameset.h"

#include <stdio.h>

/* An upstream answer for `name` A: n records with the given TTL, optionally an SOA in the
 * authority section, rcode as given. */
static size_t make_answer(uint8_t *b, const char *name, unsigned rcode, unsigned n, uint32_t ttl,
                          bool soa, uint32_t soa_ttl, uint32_t soa_min)
{
    size_t len = qb_query(b, name, LH_TYPE_A, 0, false);
    lh_wr16(b + 2, LH_FLAG_QR | LH_FLAG_RD | LH_FLAG_RA | rcode);
    lh_wr16(b + 6, (uint16_t)n);
    for (unsigned i = 0; i < n; i++) {
        uint8_t *p = b + len;
        lh_wr16(p, 0xc00c);
        lh_wr16(p + 2, LH_TYPE_A);
        lh_wr16(p + 4, LH_CLASS_IN);
        lh_wr32(p + 6, ttl + i);
        lh_wr16(p + 10, 4);
        p[12] = 192, p[13] = 0, p[14] = 2, p[15] = (uint8_t)i;
        len += 16;
    }
    if (soa) {
        lh_wr16(b + 8, 1);
        uint8_t *p = b + len;
        lh_wr16(p, 0xc00c);
        lh_wr16(p + 2, LH_TYPE_SOA);
        lh_wr16(p + 4, LH_CLASS_IN);
        lh_wr32(p + 6, soa_ttl);
        lh_wr16(p + 10, 2 + 2 + 20);
        lh_wr16(p + 12, 0xc00c);
        lh_wr16(p + 14, 0xc00c);
        memset(p + 16, 0, 16);
        lh_wr32(p + 32, soa_min);
        len += 36;
    }
    return len;
}

static lh_cache_key key_for(lh_msg *m, uint64_t *hashes)
{
    lh_name_hashes(&m->qname, hashes);
    return (lh_cache_key){.name = &m->qname,
                          .name_hash = hashes[0],
                          .qtype = m->qtype,
                          .qclass = m->qclass,
                          .flags = 0};
}

/* An answer section of raw records after a question for `name` A: each record given as
 * bytes (owner name included) appended as is. */
static size_t answer_of(uint8_t *b, const char *name, const uint8_t *rrs, size_t rrs_len,
                        unsigned an)
{
    size_t len = qb_query(b, name, LH_TYPE_A, 0, false);
    lh_wr16(b + 2, LH_FLAG_QR | LH_FLAG_RD | LH_FLAG_RA);
    lh_wr16(b + 6, (uint16_t)an);
    memcpy(b + len, rrs, rrs_len);
    return len + rrs_len;
}

/* Compression pointers lead only to the start of a label of a name read earlier: never into
 * a TTL, an RDATA length or the middle of a label (tests/fuzz/corpus/fuzz_answer/
 * answer-pointer-into-ttl*), and never into the header. Real compression still scans: against
 * the question, a CNAME target, an MX exchange, the SOA's own MNAME. */
static void test_scan_pointers(void)
{
    uint8_t a[512];
    lh_answer_info ai;
    /* Question "www.example.com" at 12..28 (labels at 12, 16, 24, 28); records from 33, the
     * first one's TTL at 39, RDLENGTH at 43, RDATA at 45. */
    /* CNAME www -> cdn.net (RDATA at 45), then cdn.net A: owner points at the CNAME target. */
    static const uint8_t cname_ok[] = {0xc0, 0x0c, 0,   5, 0,   1,   0,   0,   0,    60, 0, 9, 3,
                                       'c',  'd',  'n', 3, 'n', 'e', 't', 0,   0xc0, 45, 0, 1, 0,
                                       1,    0,    0,   0, 60,  0,   4,   192, 0,    2,  1};
    CHECK_EQ(lh_answer_scan(a, answer_of(a, "www.example.com", cname_ok, sizeof cname_ok, 2), &ai),
             0);
    CHECK_EQ(ai.ntargets, 1);
    /* The same, the A record's owner pointing at "net" inside the target: a label start. */
    uint8_t rr[sizeof cname_ok];
    memcpy(rr, cname_ok, sizeof rr);
    rr[22] = 49;
    CHECK_EQ(lh_answer_scan(a, answer_of(a, "www.example.com", rr, sizeof rr, 2), &ai), 0);
    /* Into the middle of a label ("dn"), into the CNAME's TTL (39), its RDLENGTH (43), its
     * type (35), the header (2), and forward to itself: all refused. */
    static const uint8_t bad[] = {46, 39, 43, 35, 2, 54};
    for (unsigned i = 0; i < sizeof bad; i++) {
        rr[22] = bad[i];
        CHECK_EQ(lh_answer_scan(a, answer_of(a, "www.example.com", rr, sizeof rr, 2), &ai), -1);
    }
    /* The CNAME target itself pointing into the record's own TTL (the fuzzer's find). */
    static const uint8_t target_in_ttl[] = {0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 39};
    CHECK_EQ(lh_answer_scan(
                 a, answer_of(a, "www.example.com", target_in_ttl, sizeof target_in_ttl, 1), &ai),
             -1);
    /* MX with its exchange's A record in the answer: the owner points into the MX RDATA. */
    static const uint8_t mx_ok[] = {0xc0, 0x0c, 0,  15, 0, 1, 0, 0, 0, 60, 0, 7, 0,   10, 2, 'm',
                                    'x',  0xc0, 24, /* mx.com */
                                    0xc0, 47,   0,  1,  0, 1, 0, 0, 0, 60, 0, 4, 192, 0,  2, 1};
    CHECK_EQ(lh_answer_scan(a, answer_of(a, "www.example.com", mx_ok, sizeof mx_ok, 2), &ai), 0);
    /* The question's own name cannot be compressed: nothing earlier is a name. */
    size_t n = qb_query(a, "x", LH_TYPE_A, 0, false);
    a[12] = 0xc0, a[13] = 12;
    CHECK_EQ(lh_answer_scan(a, n, &ai), -1);
}

void test_cache(void)
{
    uint8_t a[1024], q[512], out[1024];
    lh_answer_info ai;
    lh_msg m;
    uint64_t h[LH_LABELS_MAX];

    /* Scanner */
    size_t alen = make_answer(a, "www.example.com", 0, 3, 300, false, 0, 0);
    CHECK_EQ(lh_answer_scan(a, alen, &ai), 0);
    CHECK_EQ(ai.an, 3);
    CHECK_EQ(ai.nttl, 3);
    CHECK_EQ(ai.min_answer_ttl, 300);
    CHECK(!ai.has_soa && ai.opt_len == 0);
    CHECK_EQ(lh_answer_scan(a, alen - 1, &ai), -1); /* truncated record */
    alen = make_answer(a, "nx.example.com", LH_RCODE_NXDOMAIN, 0, 0, true, 3600, 900);
    CHECK_EQ(lh_answer_scan(a, alen, &ai), 0);
    CHECK(ai.has_soa && ai.negative_ttl == 900);
    test_scan_pointers();

    lh_cache c;
    lh_cache_limits lim = {.max_bytes = 1 << 20,
                           .min_ttl = 0,
                           .max_ttl = 86400,
                           .max_negative_ttl = 3600,
                           .stale_window = 3600};
    CHECK_EQ(lh_cache_init(&c, &lim), 0);

    /* Positive answer: stored, served with aged TTLs, the client's ID and case. */
    alen = make_answer(a, "www.example.com", 0, 2, 300, false, 0, 0);
    lh_answer_scan(a, alen, &ai);
    size_t qlen = qb_query(q, "WWW.Example.com", LH_TYPE_A, 0, false);
    lh_msg_parse_query(q, qlen, &m);
    lh_cache_key k = key_for(&m, h);
    CHECK_EQ(lh_cache_insert(&c, &k, a, alen, &ai, 1000), 0);
    const lh_cache_entry *e = NULL;
    CHECK_EQ(lh_cache_lookup(&c, &k, 1000 + 100500, false, &e), LH_CACHE_FRESH);
    lh_wr16(q, 0x7777);
    lh_msg_parse_query(q, qlen, &m);
    size_t n = lh_cache_write(e, &m, 1000 + 100500, false, 30, out, sizeof out);
    CHECK_EQ(n, alen);
    CHECK_EQ(lh_rd16(out), 0x7777);
    CHECK(memcmp(out + 13, "WWW", 3) == 0);
    CHECK_EQ(lh_rd32(out + m.question_end + 6), 200);      /* 300 - 100 s */
    CHECK_EQ(lh_rd32(out + m.question_end + 16 + 6), 200); /* 301 capped to the minimum 300 */
    /* Expired: a miss, unless stale is wanted - then served with the stale TTL. */
    CHECK_EQ(lh_cache_lookup(&c, &k, 1000 + 301000, false, &e), LH_CACHE_MISS);
    CHECK_EQ(lh_cache_lookup(&c, &k, 1000 + 301000, true, &e), LH_CACHE_STALE);
    n = lh_cache_write(e, &m, 1000 + 301000, true, 30, out, sizeof out);
    CHECK_EQ(lh_rd32(out + m.question_end + 6), 30);
    /* Past the stale window it is gone. */
    CHECK_EQ(lh_cache_lookup(&c, &k, 1000 + 301000 + 3600000, true, &e), LH_CACHE_MISS);
    CHECK_EQ(c.count, 0);

    /* Keys: type and DO separate entries. */
    CHECK_EQ(lh_cache_insert(&c, &k, a, alen, &ai, 0), 0);
    lh_cache_key k2 = k;
    k2.flags = LH_CACHE_DO;
    CHECK_EQ(lh_cache_lookup(&c, &k2, 0, false, &e), LH_CACHE_MISS);
    k2 = k;
    k2.qtype = LH_TYPE_AAAA;
    CHECK_EQ(lh_cache_lookup(&c, &k2, 0, false, &e), LH_CACHE_MISS);

    /* Negative answers need an SOA; the TTL is min(SOA TTL, MINIMUM), clamped. */
    alen = make_answer(a, "nx.example.com", LH_RCODE_NXDOMAIN, 0, 0, false, 0, 0);
    lh_answer_scan(a, alen, &ai);
    qlen = qb_query(q, "nx.example.com", LH_TYPE_A, 0, false);
    lh_msg_parse_query(q, qlen, &m);
    k = key_for(&m, h);
    CHECK_EQ(lh_cache_insert(&c, &k, a, alen, &ai, 0), 1);
    alen = make_answer(a, "nx.example.com", LH_RCODE_NXDOMAIN, 0, 0, true, 7200, 5400);
    lh_answer_scan(a, alen, &ai);
    CHECK_EQ(lh_cache_insert(&c, &k, a, alen, &ai, 0), 0);
    CHECK_EQ(lh_cache_lookup(&c, &k, 3599000, false, &e), LH_CACHE_FRESH); /* clamped to 3600 */
    CHECK_EQ(lh_cache_lookup(&c, &k, 3600000, false, &e), LH_CACHE_MISS);
    /* SERVFAIL is never cached. */
    alen = make_answer(a, "nx.example.com", LH_RCODE_SERVFAIL, 0, 0, true, 60, 60);
    lh_answer_scan(a, alen, &ai);
    CHECK_EQ(lh_cache_insert(&c, &k, a, alen, &ai, 0), 1);
    lh_cache_free(&c);

    /* The byte bound evicts the least recently used. */
    lim.max_bytes = 16 * 1024;
    lh_cache_init(&c, &lim);
    char name[64];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "host%d.example.com", i);
        alen = make_answer(a, name, 0, 1, 60, false, 0, 0);
        lh_answer_scan(a, alen, &ai);
        qlen = qb_query(q, name, LH_TYPE_A, 0, false);
        lh_msg_parse_query(q, qlen, &m);
        k = key_for(&m, h);
        lh_cache_insert(&c, &k, a, alen, &ai, 0);
    }
    CHECK(c.bytes <= lim.max_bytes);
    CHECK(c.stats.evictions > 0);
    qlen = qb_query(q, "host199.example.com", LH_TYPE_A, 0, false);
    lh_msg_parse_query(q, qlen, &m);
    k = key_for(&m, h);
    CHECK_EQ(lh_cache_lookup(&c, &k, 0, false, &e), LH_CACHE_FRESH);
    qlen = qb_query(q, "host1.example.com", LH_TYPE_A, 0, false);
    lh_msg_parse_query(q, qlen, &m);
    k = key_for(&m, h);
    CHECK_EQ(lh_cache_lookup(&c, &k, 0, false, &e), LH_CACHE_MISS);
    lh_cache_flush(&c);
    CHECK_EQ(c.count, 0);
    CHECK_EQ(c.bytes, 0);
    lh_cache_free(&c);
}
