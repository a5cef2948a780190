/* test_upstream_addr.c - the upstream syntax of every transport (plain, tls://, Unbound's
 * ADDR@PORT#NAME, the pin) and the EDNS padding of DNS over TLS queries (RFC 7830/8467). */
#include "querybuf.h"
#include "unit.h"

#include "loophole/config.h"
#include "loophole/upstream.h"
#include "loophole/upstream_addr.h"

#include <arpa/inet.h>

static int parse(const char *text, lh_sockaddr *a, lh_upstream_tls *t)
{
    char err[LH_ERR_MAX];
    return lh_upstream_addr_parse(text, a, t, err, sizeof err);
}

static void forms(void)
{
    lh_sockaddr a;
    lh_upstream_tls t;
    char label[80];
    CHECK_EQ(parse("192.0.2.1", &a, &t), 0);
    CHECK(!t.on);
    CHECK_EQ(ntohs(a.v4.sin_port), 53);
    CHECK_EQ(parse("tls://192.0.2.1#dns.example", &a, &t), 0);
    CHECK(t.on && !t.has_pin);
    CHECK_STR(t.auth_name, "dns.example");
    CHECK_EQ(ntohs(a.v4.sin_port), 853);
    lh_upstream_addr_format(&a, &t, label, sizeof label);
    CHECK_STR(label, "tls://192.0.2.1:853");
    CHECK_EQ(parse("tls://[2001:db8::1]:8853#dns.example", &a, &t), 0);
    CHECK_EQ(a.sa.sa_family, AF_INET6);
    CHECK_EQ(ntohs(a.v6.sin6_port), 8853);
    CHECK_EQ(parse("192.0.2.1@853#dns.example", &a, &t), 0); /* Unbound, systemd-resolved */
    CHECK(t.on);
    CHECK_EQ(ntohs(a.v4.sin_port), 853);
    CHECK_EQ(parse("2001:db8::1@853#dns.example", &a, &t), 0);
    CHECK_EQ(ntohs(a.v6.sin6_port), 853);
    CHECK_EQ(parse("tls://192.0.2.1#dns.example?pin-sha256="
                   "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
                   &a, &t),
             0);
    CHECK(t.has_pin);
    CHECK_EQ(t.pin[0], 0xe3); /* SHA-256("") starts e3 b0 c4 42 */
    CHECK_EQ(t.pin[3], 0x42);
    CHECK_EQ(t.pin[31], 0x55);
}

static void refused(void)
{
    lh_sockaddr a;
    lh_upstream_tls t;
    CHECK(parse("tls://192.0.2.1", &a, &t) != 0); /* no name: not authenticated */
    CHECK(parse("tls://192.0.2.1#", &a, &t) != 0);
    CHECK(parse("192.0.2.1@853", &a, &t) != 0);                 /* Unbound's form needs the name */
    CHECK(parse("https://dns.example/dns-query", &a, &t) != 0); /* not (yet) a scheme we know */
    CHECK(parse("tls://dns.example#dns.example", &a, &t) != 0); /* an address, not a name */
    CHECK(parse("tls://192.0.2.1#bad_name!", &a, &t) != 0);
    CHECK(parse("tls://192.0.2.1#n.example?pin-sha256=abc", &a, &t) != 0);
    CHECK(parse("192.0.2.1?pin-sha256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", &a, &t) != 0);
    CHECK(parse("192.0.2.1:53@853#n.example", &a, &t) != 0);
}

static void padding(void)
{
    uint8_t b[1024];
    size_t len = qb_query(b, "www.example.com", LH_TYPE_A, 1232, false);
    size_t padded = lh_edns_pad(b, len, sizeof b, 128);
    CHECK_EQ(padded, 128);
    CHECK_EQ(lh_rd16(b + 10), 1); /* still one OPT */
    lh_msg m;
    CHECK_EQ(lh_msg_parse_query(b, padded, &m), LH_PARSE_OK);
    /* No OPT yet: one is added. */
    len = qb_query(b, "www.example.com", LH_TYPE_A, 0, false);
    padded = lh_edns_pad(b, len, sizeof b, 128);
    CHECK_EQ(padded, 128);
    CHECK_EQ(lh_rd16(b + 10), 1);
    CHECK_EQ(lh_msg_parse_query(b, padded, &m), LH_PARSE_OK);
    /* A long name: the next block. */
    len = qb_query(b,
                   "a-rather-long-label-of-sixty-characters-to-cross-a-block-edge.and-another-"
                   "label-that-makes-it-longer.example.com",
                   LH_TYPE_A, 1232, false);
    padded = lh_edns_pad(b, len, sizeof b, 128);
    CHECK_EQ(padded, 256);
    CHECK_EQ(lh_edns_pad(b, len, 200, 128), 0); /* no room */
    CHECK_EQ(lh_edns_pad(b, 5, sizeof b, 128), 0);
}

void test_upstream_addr(void);
void test_upstream_addr(void)
{
    forms();
    refused();
    padding();
}
