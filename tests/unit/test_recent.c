/* test_recent.c - the ring of recent queries: what a record keeps, wrap-around, reading from a
 * position, no addresses when the privacy setting says so, and one writer racing a reader on
 * another thread: every record read must be whole (never half of two records). */
#include "querybuf.h"
#include "unit.h"

#include "loophole/recent.h"

#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

typedef struct one_query {
    uint8_t q[512];
    lh_msg m;
    lh_sockaddr client;
    uint8_t answer[16];
    lh_query_end e;
} one_query;

static void make(one_query *x, const char *name, const char *client, enum lh_outcome outcome)
{
    size_t n = qb_query(x->q, name, LH_TYPE_AAAA, 0, false);
    lh_msg_parse_query(x->q, n, &x->m);
    lh_addr_parse(client, 53, &x->client);
    memset(x->answer, 0, sizeof x->answer);
    x->answer[3] = LH_RCODE_NXDOMAIN;
    x->e = (lh_query_end){.msg = &x->m,
                          .client = &x->client,
                          .outcome = outcome,
                          .list = 2,
                          .match_label = 1,
                          .answer = x->answer,
                          .answer_len = sizeof x->answer};
}

static void text_of(const lh_recent_rec *r, char *out, size_t cap)
{
    lh_name_to_text(r->name, out, cap);
}

/* The race: the writer's record k has the name "k<k>.race.test", client 10.x.y.z with the
 * low 24 bits of k, latency k; a reader checks that the three agree. */
typedef struct race {
    lh_recent *r;
    atomic_bool done;
    unsigned torn, seen;
} race;

static void reader(void *arg)
{
    race *rc = arg;
    static lh_recent_rec out[64];
    uint64_t pos[64], end;
    while (!atomic_load(&rc->done)) {
        size_t n = lh_recent_read(rc->r, 0, out, pos, 64, &end);
        for (size_t i = 0; i < n; i++) {
            char name[300], want[64];
            text_of(&out[i], name, sizeof name);
            uint32_t k = out[i].time_ms == 0 ? 0 : (uint32_t)(out[i].time_ms - 1000);
            snprintf(want, sizeof want, "k%u.race.test", k);
            uint32_t a =
                (uint32_t)out[i].addr[1] << 16 | (uint32_t)out[i].addr[2] << 8 | out[i].addr[3];
            if (strcmp(name, want) || a != (k & 0xffffff) || pos[i] != k) rc->torn++;
            rc->seen++;
        }
    }
}

void test_recent(void)
{
    one_query x;
    lh_recent *r = lh_recent_new(5, true, 1000); /* rounded up to 8 */
    CHECK(r != NULL);
    CHECK_EQ(r->mask, 7);
    lh_recent_rec out[16];
    uint64_t pos[16], end = 99;
    CHECK_EQ(lh_recent_read(r, 0, out, pos, 16, &end), 0);
    CHECK_EQ(end, 0);
    make(&x, "Ads.Example", "192.0.2.7", LH_OUTCOME_BLOCKED);
    lh_recent_push(r, &x.e, 1500);
    CHECK_EQ(lh_recent_read(r, 0, out, pos, 16, &end), 1);
    CHECK_EQ(end, 1);
    char name[300];
    text_of(&out[0], name, sizeof name);
    CHECK_STR(name, "ads.example");
    CHECK_EQ(out[0].qtype, LH_TYPE_AAAA);
    CHECK_EQ(out[0].outcome, LH_OUTCOME_BLOCKED);
    CHECK_EQ(out[0].rcode, LH_RCODE_NXDOMAIN);
    CHECK(out[0].has_rcode);
    CHECK_EQ(out[0].list, 2);
    CHECK_EQ(out[0].match_label, 1);
    CHECK_EQ(out[0].family, 4);
    CHECK(!memcmp(out[0].addr, "\xc0\x00\x02\x07", 4));
    CHECK_EQ(out[0].time_ms - (uint64_t)r->unix_offset_ms, 1500);
    /* an IPv6 client keeps all 16 bytes */
    make(&x, "v6.example", "[2001:db8::1]", LH_OUTCOME_FORWARDED);
    lh_recent_push(r, &x.e, 1501);
    CHECK_EQ(lh_recent_read(r, 1, out, pos, 16, &end), 1); /* from position 1: the new one */
    CHECK_EQ(pos[0], 1);
    CHECK_EQ(out[0].family, 6);
    CHECK_EQ(out[0].addr[15], 1);
    CHECK_EQ(out[0].addr[0], 0x20);
    /* wrap-around: 8 slots keep the newest 8 of 20, oldest first */
    for (int i = 0; i < 18; i++) {
        char n[32];
        snprintf(n, sizeof n, "n%d.example", i);
        make(&x, n, "127.0.0.1", LH_OUTCOME_LOCAL);
        lh_recent_push(r, &x.e, 2000 + (uint64_t)i);
    }
    CHECK_EQ(lh_recent_read(r, 0, out, pos, 16, &end), 8);
    CHECK_EQ(end, 20);
    CHECK_EQ(pos[0], 12);
    text_of(&out[0], name, sizeof name);
    CHECK_STR(name, "n10.example");
    text_of(&out[7], name, sizeof name);
    CHECK_STR(name, "n17.example");
    CHECK_EQ(lh_recent_read(r, 0, out, pos, 3, &end), 3); /* at most max: the newest */
    CHECK_EQ(pos[0], 17);
    CHECK_EQ(lh_recent_read(r, 20, out, pos, 16, &end), 0); /* nothing new */
    lh_recent_free(r);

    /* names longer than the four words stored inline, up to the longest (255 bytes) */
    r = lh_recent_new(4, true, 0);
    char longest[300] = "";
    for (int i = 0; i < 4; i++) /* 4 labels of 62 + 1: 252 + root = 253 wire bytes */
        strcat(longest, i ? ".aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                          : "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    strcat(longest, ".c");
    const char *names[] = {"thirty-three-bytes-long.example", longest, "x.y"};
    for (int i = 0; i < 3; i++) {
        make(&x, names[i], "127.0.0.1", LH_OUTCOME_LOCAL);
        lh_recent_push(r, &x.e, 5);
    }
    CHECK_EQ(lh_recent_read(r, 0, out, pos, 16, &end), 3);
    for (int i = 0; i < 3; i++) {
        text_of(&out[i], name, sizeof name);
        CHECK_STR(name, names[i]);
    }
    CHECK_EQ(out[1].name_len, 255);
    lh_recent_free(r);

    /* query-log-clients = no: no address is stored at all */
    r = lh_recent_new(4, false, 0);
    make(&x, "private.example", "192.0.2.9", LH_OUTCOME_CACHED);
    lh_recent_push(r, &x.e, 10);
    CHECK_EQ(lh_recent_read(r, 0, out, pos, 16, &end), 1);
    CHECK_EQ(out[0].family, 0);
    static const uint8_t zero[16];
    CHECK(!memcmp(out[0].addr, zero, 16));
    lh_recent_free(r);

    /* one writer, one reader on another thread, a small ring so that slots are overwritten
     * while being read */
    race rc = {.r = lh_recent_new(16, true, 0)};
    atomic_init(&rc.done, false);
    uv_thread_t t;
    CHECK_EQ(uv_thread_create(&t, reader, &rc), 0);
    for (uint32_t k = 0; k < 300000; k++) {
        char n[32], a[32];
        snprintf(n, sizeof n, "k%u.race.test", k);
        snprintf(a, sizeof a, "10.%u.%u.%u", k >> 16 & 0xff, k >> 8 & 0xff, k & 0xff);
        make(&x, n, a, LH_OUTCOME_BLOCKED);
        lh_recent_push(rc.r, &x.e, 1000 + k - (uint64_t)rc.r->unix_offset_ms);
    }
    atomic_store(&rc.done, true);
    uv_thread_join(&t);
    CHECK_EQ(rc.torn, 0);
    CHECK(rc.seen > 0);
    lh_recent_free(rc.r);
}
