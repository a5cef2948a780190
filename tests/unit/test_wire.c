/* test_wire.c - the query reader and the answer writer. */
#include "querybuf.h"
#include "unit.h"

#include "loophole/wire.h"

static void parses_a_plain_query(void)
{
    uint8_t q[512];
    lh_msg m;
    size_t n = qb_query(q, "WwW.Example.COM", LH_TYPE_AAAA, 0, false);
    CHECK_EQ(lh_msg_parse_query(q, n, &m), LH_PARSE_OK);
    CHECK_EQ(m.id, 0x1234);
    CHECK_EQ(m.qtype, LH_TYPE_AAAA);
    CHECK_EQ(m.qname.nlabels, 3);
    CHECK_EQ(m.qname.len, 17);
    CHECK(memcmp(m.qname.wire, "\3www\7example\3com", 17) == 0);
    CHECK_EQ(m.qname.label_off[1], 4);
    CHECK_EQ(m.question_end, n);
    CHECK(!m.has_edns);
}

static void parses_edns(void)
{
    uint8_t q[512];
    lh_msg m;
    size_t n = qb_query(q, "a.b", LH_TYPE_A, 4096, true);
    CHECK_EQ(lh_msg_parse_query(q, n, &m), LH_PARSE_OK);
    CHECK(m.has_edns);
    CHECK(m.edns_do);
    CHECK_EQ(m.edns_udp_size, 4096);
    CHECK_EQ(lh_msg_udp_limit(&m, 1232), 1232);
    m.edns_udp_size = 100;
    CHECK_EQ(lh_msg_udp_limit(&m, 1232), 512);
    q[n - 5] = 1; /* version 1 */
    CHECK_EQ(lh_msg_parse_query(q, n, &m), LH_PARSE_BADVERS);
}

static void rejects_malformed(void)
{
    uint8_t q[600];
    lh_msg m;
    size_t n = qb_query(q, "example.com", LH_TYPE_A, 0, false);
    CHECK_EQ(lh_msg_parse_query(q, 11, &m), LH_PARSE_DROP); /* short header */
    q[2] |= 0x80;                                           /* QR: a response */
    CHECK_EQ(lh_msg_parse_query(q, n, &m), LH_PARSE_DROP);
    q[2] &= 0x7f;
    q[2] |= 4 << 3; /* opcode NOTIFY */
    CHECK_EQ(lh_msg_parse_query(q, n, &m), LH_PARSE_NOTIMP);
    CHECK(m.question_end == n); /* the question is still echoed */
    q[2] &= (uint8_t) ~(0xf << 3);
    lh_wr16(q + 4, 0);
    CHECK_EQ(lh_msg_parse_query(q, n, &m), LH_PARSE_FORMERR); /* no question */
    lh_wr16(q + 4, 2);
    CHECK_EQ(lh_msg_parse_query(q, n, &m), LH_PARSE_FORMERR); /* two questions */
    lh_wr16(q + 4, 1);
    CHECK_EQ(lh_msg_parse_query(q, n - 1, &m), LH_PARSE_FORMERR); /* cut in qclass */
    CHECK_EQ(lh_msg_parse_query(q, 15, &m), LH_PARSE_FORMERR);    /* cut in a label */
    q[12] = 0xc0;                                                 /* pointer in qname */
    q[13] = 0x0c;
    CHECK_EQ(lh_msg_parse_query(q, n, &m), LH_PARSE_FORMERR);
    q[12] = 64; /* label type 01: reserved */
    CHECK_EQ(lh_msg_parse_query(q, n, &m), LH_PARSE_FORMERR);

    /* A 256-byte name (4 x 63-byte labels) is over the limit; 253 characters is fine. */
    char big[300];
    memset(big, 'a', sizeof big);
    for (int i = 63; i < 256; i += 64)
        big[i] = '.';
    big[255] = 0; /* 4 labels of 63 = 256 bytes in wire form */
    n = qb_query(q, big, LH_TYPE_A, 0, false);
    CHECK_EQ(lh_msg_parse_query(q, n, &m), LH_PARSE_FORMERR);
    big[253] = 0; /* 63+63+63+61: 255 bytes in wire form */
    n = qb_query(q, big, LH_TYPE_A, 0, false);
    CHECK_EQ(lh_msg_parse_query(q, n, &m), LH_PARSE_OK);
}

static void rejects_bad_records(void)
{
    uint8_t q[512];
    lh_msg m;
    size_t n = qb_query(q, "x.org", LH_TYPE_A, 1232, false);
    size_t opt = n - 11;
    lh_wr16(q + 10, 2); /* claims two additional records, has one */
    CHECK_EQ(lh_msg_parse_query(q, n, &m), LH_PARSE_FORMERR);
    memcpy(q + n, q + opt, 11); /* a second OPT */
    CHECK_EQ(lh_msg_parse_query(q, n + 11, &m), LH_PARSE_FORMERR);
    lh_wr16(q + 10, 1);
    lh_wr16(q + opt + 9, 3); /* rdlen past the end */
    CHECK_EQ(lh_msg_parse_query(q, n, &m), LH_PARSE_FORMERR);
    lh_wr16(q + opt + 9, 5); /* options that do not tile the rdata */
    memset(q + n, 0, 5);
    lh_wr16(q + n, 8);
    lh_wr16(q + n + 2, 9);
    CHECK_EQ(lh_msg_parse_query(q, n + 5, &m), LH_PARSE_FORMERR);

    /* An answer record whose owner is a compression loop. */
    n = qb_query(q, "x.org", LH_TYPE_A, 0, false);
    lh_wr16(q + 6, 1);
    q[n] = 0xc0;
    q[n + 1] = (uint8_t)n; /* points at itself */
    memset(q + n + 2, 0, 10);
    CHECK_EQ(lh_msg_parse_query(q, n + 12, &m), LH_PARSE_FORMERR);
    q[n + 1] = 12; /* a valid backwards pointer to the question name */
    CHECK_EQ(lh_msg_parse_query(q, n + 12, &m), LH_PARSE_OK);
}

static void converts_names(void)
{
    lh_name n;
    char text[LH_NAME_MAX + 1];
    CHECK_EQ(lh_name_from_text("Ads.Example.COM.", 16, &n), 0);
    CHECK_EQ(n.nlabels, 3);
    CHECK_EQ(lh_name_to_text(n.wire, text, sizeof text), 15);
    CHECK_STR(text, "ads.example.com");
    CHECK_EQ(lh_name_from_text(".", 1, &n), 0);
    CHECK_EQ(n.nlabels, 0);
    CHECK_EQ(n.len, 1);
    CHECK_EQ(lh_name_from_text("a..b", 4, &n), -1);
    CHECK_EQ(lh_name_from_text(".a", 2, &n), -1);
    CHECK_EQ(lh_name_from_text("a..", 3, &n), -1);
    char label64[70];
    memset(label64, 'x', 64);
    CHECK_EQ(lh_name_from_text(label64, 64, &n), -1);
    CHECK_EQ(lh_name_from_text(label64, 63, &n), 0);
}

static void writes_answers(void)
{
    uint8_t q[512], out[1024];
    lh_msg m;
    size_t n = qb_query(q, "LocalHost", LH_TYPE_A, 1232, true);
    CHECK_EQ(lh_msg_parse_query(q, n, &m), LH_PARSE_OK);
    lh_writer w;
    static const uint8_t a[4] = {127, 0, 0, 1};
    lh_writer_begin(&w, out, sizeof out, &m, LH_RCODE_NOERROR, true);
    lh_writer_rr(&w, &m, LH_SEC_ANSWER, 0, LH_TYPE_A, 60, a, 4);
    size_t len = lh_writer_finish(&w, &m, 512, 1232, LH_EDE_BLOCKED);
    CHECK_EQ(len, 12 + 15 + 16 + 17);
    CHECK_EQ(lh_rd16(out), 0x1234);
    CHECK_EQ(lh_rd16(out + 2), LH_FLAG_QR | LH_FLAG_AA | LH_FLAG_RD | LH_FLAG_RA);
    CHECK_EQ(lh_rd16(out + 6), 1);
    CHECK_EQ(lh_rd16(out + 10), 1);
    CHECK(memcmp(out + 13, "LocalHost", 9) == 0); /* the client's case is kept */
    CHECK_EQ(lh_rd16(out + 27), 0xc00c);
    CHECK_EQ(lh_rd16(out + len - 6), LH_EDNS_OPT_EDE);
    CHECK_EQ(lh_rd16(out + len - 2), LH_EDE_BLOCKED);
    CHECK_EQ(out[len - 10], 0x80); /* DO echoed */

    /* 40 AAAA records do not fit in 512 bytes: TC, no records, OPT kept. */
    static const uint8_t six[16] = {0};
    lh_writer_begin(&w, out, sizeof out, &m, LH_RCODE_NOERROR, false);
    for (int i = 0; i < 40; i++)
        lh_writer_rr(&w, &m, LH_SEC_ANSWER, 0, LH_TYPE_AAAA, 60, six, 16);
    len = lh_writer_finish(&w, &m, 512, 1232, -1);
    CHECK_EQ(len, 12 + 15 + 11);
    CHECK(lh_rd16(out + 2) & LH_FLAG_TC);
    CHECK_EQ(lh_rd16(out + 6), 0);
    CHECK_EQ(lh_rd16(out + 10), 1);

    /* BADVERS: extended rcode 16 = header 0, OPT upper bits 1. */
    lh_writer_begin(&w, out, sizeof out, &m, LH_RCODE_BADVERS, false);
    len = lh_writer_finish(&w, &m, 512, 1232, -1);
    CHECK_EQ(out[3] & 0xf, 0);
    CHECK_EQ(out[len - 6], 1);
}

void test_wire(void)
{
    parses_a_plain_query();
    parses_edns();
    rejects_malformed();
    rejects_bad_records();
    converts_names();
    writes_answers();
}
