/* test_leak.c - the leak server's zone (answers, the label table's bound and expiry) and the
 * canary answer loophole gives the leak check. */
#include "querybuf.h"
#include "unit.h"

#include "loophole/leak.h"
#include "loophole/nameset.h"
#include "loophole/policy.h"

#include <arpa/inet.h>
#include <stdlib.h>

static size_t ask(lh_leak_zone *z, const char *name, uint16_t type, const char *from, uint64_t now,
                  uint8_t *out)
{
    uint8_t q[512];
    lh_msg m;
    size_t n = qb_query(q, name, type, 0, false);
    lh_msg_parse_query(q, n, &m);
    lh_sockaddr peer;
    lh_addr_parse(from, 53, &peer);
    return lh_leak_zone_answer(z, &m, &peer, now, out, LH_MSG_MAX, 512, 1232);
}

void test_leak(void)
{
    lh_config c;
    char err[LH_ERR_MAX];
    lh_config_defaults(&c);
    c.leak_server = true;
    CHECK_EQ(lh_config_set(&c, LH_SRC_FLAG, "leak-zone", "Leak.Example", err, sizeof err), 0);
    CHECK_EQ(lh_config_set(&c, LH_SRC_FLAG, "rate-limit", "0", err, sizeof err), 0);
    CHECK_EQ(lh_config_set(&c, LH_SRC_FLAG, "leak-retention", "10", err, sizeof err), 0);
    CHECK(lh_config_set(&c, LH_SRC_FLAG, "leak-zone", "a..b", err, sizeof err) != 0);
    lh_leak_zone *z = lh_leak_zone_new(&c, err, sizeof err);
    CHECK(z != NULL);
    static uint8_t out[LH_MSG_MAX];

    size_t n = ask(z, "x1.leak.example", LH_TYPE_A, "192.0.2.7", 1000, out);
    CHECK(n > 12);
    CHECK_EQ(out[3] & 0xf, LH_RCODE_NOERROR);
    CHECK(out[2] & 0x04);    /* AA */
    CHECK(!(out[3] & 0x80)); /* no RA */
    CHECK_EQ(lh_rd16(out + 6), 1);
    CHECK(!memcmp(out + n - 4, "\xc0\x00\x02\x07", 4));
    /* Every answer below is checked for having been written (n > 12, NOERROR or the rcode
     * wanted): `out` still holds the previous reply when a call writes nothing. */
    n = ask(z, "deeper.x1.leak.example", LH_TYPE_TXT, "[2001:db8::5]", 2000, out);
    CHECK(n > 12);
    CHECK_EQ(out[3] & 0xf, LH_RCODE_NOERROR);
    CHECK_EQ(lh_rd16(out + 6), 1);
    n = ask(z, "results.x1.leak.example", LH_TYPE_TXT, "198.51.100.1", 3000, out);
    CHECK(n > 12);
    CHECK_EQ(lh_rd16(out + 6), 2); /* both resolvers of label x1, not the results asker */
    CHECK(memmem(out, n, "192.0.2.7", 9) != NULL);
    CHECK(memmem(out, n, "2001:db8::5", 11) != NULL);
    /* expired after leak-retention (10 s) */
    memset(out, 0xee, 64); /* nothing of the last reply survives */
    n = ask(z, "results.x1.leak.example", LH_TYPE_TXT, "198.51.100.1", 12000, out);
    CHECK(n > 12);
    CHECK_EQ(out[3] & 0xf, LH_RCODE_NOERROR);
    CHECK_EQ(lh_rd16(out + 6), 0);
    CHECK_EQ(lh_rd16(out + 8), 1); /* NODATA carries the SOA */
    /* outside the zone, and a name that only ends like it */
    memset(out, 0xee, 64);
    CHECK(ask(z, "example.com", LH_TYPE_A, "192.0.2.7", 13000, out) > 12);
    CHECK_EQ(out[3] & 0xf, LH_RCODE_REFUSED);
    memset(out, 0xee, 64);
    CHECK(ask(z, "xleak.example", LH_TYPE_A, "192.0.2.7", 13000, out) > 12);
    CHECK_EQ(out[3] & 0xf, LH_RCODE_REFUSED);
    /* the table is bounded: far more labels than slots evict, never grow */
    char name[64];
    unsigned written = 0;
    for (unsigned i = 0; i < 20000; i++) {
        snprintf(name, sizeof name, "l%u.leak.example", i);
        written += ask(z, name, LH_TYPE_A, "192.0.2.9", 14000, out) > 12;
    }
    CHECK_EQ(written, 20000);
    CHECK(lh_leak_zone_stats(z)->labels_evicted >= 20000 - 8192);
    lh_leak_zone_free(z);

    /* the rate limit: per source and per second */
    CHECK_EQ(lh_config_set(&c, LH_SRC_FLAG, "rate-limit", "3", err, sizeof err), 0);
    z = lh_leak_zone_new(&c, err, sizeof err);
    unsigned answered = 0;
    for (int i = 0; i < 10; i++)
        answered += ask(z, "r.leak.example", LH_TYPE_A, "192.0.2.1", 5000, out) > 0;
    CHECK_EQ(answered, 3);
    CHECK(ask(z, "r.leak.example", LH_TYPE_A, "192.0.2.2", 5000, out) > 0);
    CHECK(ask(z, "r.leak.example", LH_TYPE_A, "192.0.2.1", 6000, out) > 0);
    lh_leak_zone_free(z);
    lh_config_free(&c);

    /* loophole answers the canary with the address the check expects */
    lh_config_defaults(&c);
    free(c.hosts_file);
    c.hosts_file = NULL;
    lh_policy *p = lh_policy_build(&c, err, sizeof err);
    uint8_t q[512];
    lh_msg m;
    size_t qn = qb_query(q, "lh0123456789abcdef." LH_LEAK_CANARY_ZONE, LH_TYPE_A, 0, false);
    lh_msg_parse_query(q, qn, &m);
    uint64_t h[LH_LABELS_MAX];
    lh_name_hashes(&m.qname, h);
    lh_verdict v;
    lh_policy_decide(p, &m, h, &v);
    /* The expected address is computed independently of lh_leak_canary_v4 and lh_name_hashes:
     * nameset.c's label hash (each label with its length byte folded in 8 bytes at a time,
     * from the root down, from the seed "loophole") re-implemented in Python for this name,
     * then bytes 1..3 of the hash, the second with its top bit set:
     * 0x114930a2fc86e85f -> 127.232.134.252. */
    static const uint8_t want[4] = {127, 232, 134, 252};
    CHECK_EQ(h[0], 0x114930a2fc86e85full);
    uint8_t got[4];
    lh_leak_canary_v4(h[0], got);
    CHECK(!memcmp(got, want, 4));
    CHECK_EQ(v.origin, LH_ORIGIN_LEAK_CANARY);
    CHECK(v.ans.n4 == 1 && !memcmp(v.ans.v4, want, 4));
    CHECK_EQ(v.ans.ttl, 0);
    lh_policy_free(p);
    lh_config_free(&c);
}
