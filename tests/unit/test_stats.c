/* test_stats.c - counting answered queries, the space-saving top-N, latency buckets, and the
 * bounded text builder with its JSON escaping. */
#include "querybuf.h"
#include "unit.h"

#include "loophole/nameset.h"
#include "loophole/sbuf.h"
#include "loophole/stats.h"

void test_stats(void)
{
    static lh_counters st;
    uint8_t q[512], ans[64] = {0};
    lh_msg m;
    size_t n = qb_query(q, "ads.example", LH_TYPE_HTTPS, 0, false);
    lh_msg_parse_query(q, n, &m);
    uint64_t h[LH_LABELS_MAX];
    lh_name_hashes(&m.qname, h);
    lh_sockaddr client;
    lh_addr_parse("[2001:db8::7]:5353", 53, &client);
    ans[3] = LH_RCODE_NXDOMAIN;
    lh_query_end e = {.msg = &m,
                      .client = &client,
                      .outcome = LH_OUTCOME_BLOCKED,
                      .name_hash = h[0],
                      .list = 3,
                      .match_label = 0,
                      .answer = ans,
                      .answer_len = sizeof ans};
    lh_stats_record(&st, &e);
    lh_stats_record(&st, &e);
    CHECK_EQ(st.outcomes[LH_OUTCOME_BLOCKED], 2);
    CHECK_EQ(st.rcodes[LH_RCODE_NXDOMAIN], 2);
    CHECK_EQ(st.qtypes[lh_stats_qtype_index(LH_TYPE_HTTPS)], 2);
    CHECK_EQ(st.qtypes[LH_STATS_QTYPES], 0);
    CHECK_EQ(st.blocked_by_list[3], 2);
    unsigned top[LH_TOP_SHOWN];
    CHECK_EQ(lh_top_sorted(&st.top_blocked, top, LH_TOP_SHOWN), 1);
    char text[300];
    lh_top_name_text(&st.top_blocked.e[top[0]], text, sizeof text);
    CHECK_STR(text, "ads.example");
    CHECK_EQ(lh_top_sorted(&st.top_clients, top, LH_TOP_SHOWN), 1);
    lh_top_address_text(&st.top_clients.e[top[0]], text, sizeof text);
    CHECK_STR(text, "2001:db8::7");
    CHECK_EQ(st.top_clients.e[top[0]].count, 2);
    e.outcome = LH_OUTCOME_ERROR; /* no question: no type counted */
    e.list = 99;                  /* beyond the counted lists: ignored */
    lh_stats_record(&st, &e);
    CHECK_EQ(st.outcomes[LH_OUTCOME_ERROR], 1);
    CHECK_EQ(st.qtypes[lh_stats_qtype_index(LH_TYPE_HTTPS)], 2);
    CHECK_EQ(lh_stats_qtype_index(999), LH_STATS_QTYPES);

    /* top-N: heavy hitters survive a stream of one-off keys; the table never grows */
    static lh_top t, t2;
    for (uint64_t round = 0; round < 3000; round++) {
        uint64_t heavy = (round % 3) * 0x9e3779b97f4a7c15ull; /* three keys, 1/2 of the traffic */
        lh_top_hit(&t, heavy, (const uint8_t *)&heavy, sizeof heavy);
        uint64_t once = (1000 + round) * 0x2545f4914f6cdd1dull;
        lh_top_hit(&t, once, (const uint8_t *)&once, sizeof once);
    }
    unsigned order[LH_TOP_SHOWN];
    CHECK_EQ(lh_top_sorted(&t, order, LH_TOP_SHOWN), LH_TOP_SHOWN);
    for (unsigned i = 0; i < 3; i++) {
        uint64_t k = t.e[order[i]].key; /* the heavy ones lead */
        CHECK(k == 0 || k == 0x9e3779b97f4a7c15ull || k == 2 * 0x9e3779b97f4a7c15ull);
        CHECK(t.e[order[i]].count - t.e[order[i]].error <= 1000); /* error bounds the truth */
        CHECK(t.e[order[i]].count >= 1000);
    }
    for (unsigned i = 1; i < LH_TOP_SHOWN; i++)
        CHECK(t.e[order[i - 1]].count >= t.e[order[i]].count);
    lh_top_merge(&t2, &t); /* merging into an empty table keeps the leaders */
    lh_top_merge(&t2, &t);
    CHECK_EQ(lh_top_sorted(&t2, order, 1), 1);
    CHECK(t2.e[order[0]].count >= 2000);

    CHECK_EQ(lh_latency_bucket(100000), 0);         /* 0.1 ms */
    CHECK_EQ(lh_latency_bucket(3000000), 3);        /* 3 ms: le 5 ms */
    CHECK_EQ(lh_latency_bucket(5000000000ull), 11); /* 5 s: +Inf */

    char buf[32];
    lh_sbuf b;
    lh_sbuf_init(&b, buf, sizeof buf);
    lh_sbuf_json_str(&b, "a\"b\\c\n\x01");
    CHECK_STR(buf, "\"a\\\"b\\\\c\\u000a\\u0001\"");
    lh_sbuf_printf(&b, "%s", "this does not fit in what is left");
    CHECK(b.overflow);
    CHECK_STR(buf, "\"a\\\"b\\\\c\\u000a\\u0001\""); /* the partial piece is dropped */
}
