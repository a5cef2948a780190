/* test_wire.c - the query reader and the answer writer. */
#include "querybuf.h"
#include "unit.h"

#include "loophole/wire.h"

#include <stdlib.h>

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

/* A query whose question name is `nlabels` labels of `len` bytes each, in mixed case, cut to
 * `cut` bytes of the name (0: whole). Returns the message length. */
static size_t raw_query(uint8_t *q, unsigned nlabels, unsigned len, size_t cut)
{
    static const uint8_t head[12] = {0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    memcpy(q, head, sizeof head);
    size_t o = sizeof head;
    for (unsigned l = 0; l < nlabels; l++) {
        q[o++] = (uint8_t)len;
        for (unsigned i = 0; i < len; i++)
            q[o++] = (uint8_t)((i + l) % 2 ? 'A' + (i + l) % 26 : 'a' + (i * 3 + l) % 26);
    }
    q[o++] = 0;
    if (cut) return sizeof head + cut;
    lh_wr16(q + o, LH_TYPE_A);
    lh_wr16(q + o + 2, LH_CLASS_IN);
    return o + 4;
}

/* The question reader at its bounds: every name length (the copy works a word at a time),
 * the longest name and the most labels, and names cut at the end of the packet. */
static void reads_names_at_their_bounds(void)
{
    uint8_t q[600];
    lh_msg m;
    unsigned bad = 0;
    for (unsigned nlabels = 1; nlabels <= 4; nlabels++) {
        for (unsigned len = 1; len <= 20; len++) {
            size_t n = raw_query(q, nlabels, len, 0);
            size_t wire = (size_t)nlabels * (len + 1) + 1;
            if (lh_msg_parse_query(q, n, &m) != LH_PARSE_OK || m.qname.len != wire ||
                m.qname.nlabels != nlabels || m.question_end != n) {
                bad++;
                continue;
            }
            for (size_t i = 0; i < wire; i++) {
                uint8_t c = q[12 + i];
                bad += m.qname.wire[i] != (c >= 'A' && c <= 'Z' ? c + 32 : c);
            }
            for (unsigned l = 0; l <= nlabels; l++)
                bad += m.qname.label_off[l] != l * (len + 1);
        }
    }
    CHECK_EQ(bad, 0);
    /* 127 one-byte labels: 254 bytes and the root, the longest name and the most labels. */
    size_t n = raw_query(q, 127, 1, 0);
    CHECK_EQ(lh_msg_parse_query(q, n, &m), LH_PARSE_OK);
    CHECK_EQ(m.qname.len, 255);
    CHECK_EQ(m.qname.nlabels, 127);
    CHECK_EQ(m.qname.label_off[127], 254);
    n = raw_query(q, 4, 63, 0); /* 4 x 64 + 1 = 257 bytes: too long */
    CHECK_EQ(lh_msg_parse_query(q, n, &m), LH_PARSE_FORMERR);
    n = raw_query(q, 3, 63, 0); /* 193 bytes */
    CHECK_EQ(lh_msg_parse_query(q, n, &m), LH_PARSE_OK);
    CHECK_EQ(m.qname.len, 193);
    /* Cut: before the root byte, inside the last label, right after the first length byte,
     * after the root byte. Each in a buffer of exactly its length, so a read past the end
     * is a heap overflow under ASan (the later qtype check would hide it otherwise). */
    static const size_t cuts[] = {33, 30, 1, 34};
    for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
        n = raw_query(q, 3, 10, cuts[c]);
        uint8_t *exact = malloc(n);
        CHECK(exact != NULL);
        if (!exact) continue;
        memcpy(exact, q, n);
        CHECK_EQ(lh_msg_parse_query(exact, n, &m), LH_PARSE_FORMERR);
        free(exact);
    }
}

void test_wire(void)
{
    reads_names_at_their_bounds();
    parses_a_plain_query();
    parses_edns();
    rejects_malformed();
    rejects_bad_records();
    converts_names();
    writes_answers();
}
