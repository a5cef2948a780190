/* test_upstream_addr.c - the upstream syntax of every transport (plain, tls://, Unbound's
 * ADDR@PORT#NAME, the pin, https:// with its bootstrap address and options) and the EDNS padding of
 * DNS over TLS queries (RFC 7830/8467). */
#include "querybuf.h"
#include "unit.h"

#include "loophole/config.h"
#include "loophole/upstream.h"
#include "loophole/upstream_addr.h"

#include <arpa/inet.h>
#include <string.h>

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
    CHECK(parse("https://dns.example/dns-query", &a, &t) != 0); /* no bootstrap address */
    CHECK(parse("ftp://192.0.2.1", &a, &t) != 0);
    CHECK(parse("tls://dns.example#dns.example", &a, &t) != 0); /* an address, not a name */
    CHECK(parse("tls://192.0.2.1#bad_name!", &a, &t) != 0);
    CHECK(parse("tls://192.0.2.1#n.example?pin-sha256=abc", &a, &t) != 0);
    CHECK(parse("192.0.2.1?pin-sha256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", &a, &t) != 0);
    CHECK(parse("192.0.2.1:53@853#n.example", &a, &t) != 0);
}

/* DNS over HTTPS: https://HOST[:PORT][/PATH][@ADDR][?OPTIONS] */
static void https_forms(void)
{
    lh_sockaddr a;
    lh_upstream_tls t;
    char label[160], ip[64];
    CHECK_EQ(parse("https://dns.example/dns-query@192.0.2.1", &a, &t), 0);
    CHECK(t.on && t.https && !t.doh_get && !t.has_pin);
    CHECK_STR(t.auth_name, "dns.example");
    CHECK_STR(t.doh_path, "/dns-query");
    CHECK_EQ(a.sa.sa_family, AF_INET);
    CHECK_EQ(ntohs(a.v4.sin_port), 443);
    inet_ntop(AF_INET, &a.v4.sin_addr, ip, sizeof ip);
    CHECK_STR(ip, "192.0.2.1");
    lh_upstream_addr_format(&a, &t, label, sizeof label);
    CHECK_STR(label, "https://dns.example/dns-query");
    /* A port, another path, IPv6 bootstrap with and without brackets, GET and a pin. */
    CHECK_EQ(parse("https://dns.example:8443/resolve@[2001:db8::1]?method=get&pin-sha256="
                   "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
                   &a, &t),
             0);
    CHECK(t.doh_get && t.has_pin);
    CHECK_EQ(t.pin[0], 0xe3);
    CHECK_STR(t.doh_path, "/resolve");
    CHECK_EQ(a.sa.sa_family, AF_INET6);
    CHECK_EQ(ntohs(a.v6.sin6_port), 8443);
    lh_upstream_addr_format(&a, &t, label, sizeof label);
    CHECK_STR(label, "https://dns.example:8443/resolve");
    CHECK_EQ(parse("https://dns.example/dns-query@2001:db8::2?method=POST", &a, &t), 0);
    CHECK(!t.doh_get);
    CHECK_EQ(a.sa.sa_family, AF_INET6);
    /* No path: /dns-query (RFC 8484's example, what the big resolvers use). */
    CHECK_EQ(parse("https://dns.example@192.0.2.1", &a, &t), 0);
    CHECK_STR(t.doh_path, "/dns-query");
    CHECK_STR(t.auth_name, "dns.example");
    /* The host an IP literal: no bootstrap needed; the certificate is checked for the IP. */
    CHECK_EQ(parse("https://192.0.2.9/dns-query", &a, &t), 0);
    CHECK_STR(t.auth_name, "192.0.2.9");
    inet_ntop(AF_INET, &a.v4.sin_addr, ip, sizeof ip);
    CHECK_STR(ip, "192.0.2.9");
    CHECK_EQ(parse("https://[2001:db8::53]:444/q", &a, &t), 0);
    CHECK_STR(t.auth_name, "2001:db8::53");
    CHECK_EQ(ntohs(a.v6.sin6_port), 444);
    lh_upstream_addr_format(&a, &t, label, sizeof label);
    CHECK_STR(label, "https://[2001:db8::53]:444/q");
    /* The bootstrap wins over the literal when both are given. */
    CHECK_EQ(parse("https://192.0.2.9/dns-query@192.0.2.10", &a, &t), 0);
    inet_ntop(AF_INET, &a.v4.sin_addr, ip, sizeof ip);
    CHECK_STR(ip, "192.0.2.10");
    /* An IPv6 host in another spelling is kept as libcurl writes it (canonical): the
     * CURLOPT_CONNECT_TO pattern must match libcurl's form of the host, or it connects to the
     * URL's literal instead of @ADDR. */
    CHECK_EQ(parse("https://[2001:DB8:0::53]/q@[2001:db8::99]", &a, &t), 0);
    CHECK_STR(t.auth_name, "2001:db8::53");
    inet_ntop(AF_INET6, &a.v6.sin6_addr, ip, sizeof ip);
    CHECK_STR(ip, "2001:db8::99");
}

static void https_refused(void)
{
    lh_sockaddr a;
    lh_upstream_tls t;
    char err[LH_ERR_MAX];
    CHECK(lh_upstream_addr_parse("https://dns.example/dns-query", &a, &t, err, sizeof err) != 0);
    CHECK(strstr(err, "needs the address to reach dns.example") != NULL);
    CHECK(parse("https://dns.example/dns-query@dns.other", &a, &t) != 0);    /* not an address */
    CHECK(parse("https://dns.example/dns-query@192.0.2.1:53", &a, &t) != 0); /* port: URL's */
    CHECK(parse("https://dns.example/dns-query@[2001:db8::1]:53", &a, &t) != 0);
    CHECK(parse("https://dns.example:0/q@192.0.2.1", &a, &t) != 0);
    CHECK(parse("https://dns.example:99999/q@192.0.2.1", &a, &t) != 0);
    CHECK(parse("https://dns.example:/q@192.0.2.1", &a, &t) != 0);
    CHECK(parse("https:///q@192.0.2.1", &a, &t) != 0);          /* no host */
    CHECK(parse("https://bad_host!/q@192.0.2.1", &a, &t) != 0); /* not a host name */
    CHECK(parse("https://[2001:db8::1/q", &a, &t) != 0);        /* unclosed bracket */
    CHECK(parse("https://[2001:db8::1]x/q", &a, &t) != 0);
    CHECK(parse("https://dns.example/a b@192.0.2.1", &a, &t) != 0); /* a space in the path */
    CHECK(parse("https://dns.example/q@192.0.2.1?pin-sha256=abc", &a, &t) != 0);
    CHECK(parse("https://dns.example/q@192.0.2.1?method=put", &a, &t) != 0);
    CHECK(parse("https://dns.example/q@192.0.2.1?dns=AAAB", &a, &t) != 0); /* not ours */
    CHECK(parse("https://dns.example/q@", &a, &t) != 0);
    char longpath[400] = "https://dns.example/";
    memset(longpath + strlen(longpath), 'p', 300);
    strcat(longpath, "@192.0.2.1");
    CHECK(parse(longpath, &a, &t) != 0); /* never cut short */
    /* A host that URL parsers (libcurl's among them) read as an IPv4 number: libcurl connects
     * to that number, not to @ADDR (CURLOPT_CONNECT_TO no longer matches the normalised host). */
    CHECK(lh_upstream_addr_parse("https://2130706433/q@192.0.2.1", &a, &t, err, sizeof err) != 0);
    CHECK(strstr(err, "IPv4 address") != NULL);
    CHECK(parse("https://127.1/q@192.0.2.1", &a, &t) != 0);
    CHECK(parse("https://0x7f.1/q@192.0.2.1", &a, &t) != 0);
    CHECK(parse("https://dns.0X1F/q@192.0.2.1", &a, &t) != 0);
    CHECK(parse("https://dns.example.53./q@192.0.2.1", &a, &t) != 0);
    CHECK(parse("https://192.0.2.9./q", &a, &t) != 0);
    CHECK_EQ(parse("https://dns.example.0xz/q@192.0.2.1", &a, &t), 0); /* not a number */
    CHECK_EQ(parse("https://1.dns.example/q@192.0.2.1", &a, &t), 0);   /* only the last label */
    /* Odd forms: no host, port 0, a scoped IPv6 literal, spaces; an '@' in the path. */
    CHECK(parse("https://@192.0.2.1", &a, &t) != 0);
    CHECK(parse("https://h:0/", &a, &t) != 0);
    CHECK(parse("https://[fe80::1%25eth0]/q", &a, &t) != 0);
    CHECK(parse("https://dns example/q@192.0.2.1", &a, &t) != 0);
    CHECK(parse("https://dns.example/q @192.0.2.1", &a, &t) != 0);
    CHECK_EQ(parse("https://[::1]:443/p@::1", &a, &t), 0);
    CHECK_STR(t.auth_name, "::1");
    CHECK_STR(t.doh_path, "/p");
    CHECK_EQ(parse("https://dns.example/a@b/q@192.0.2.1", &a, &t), 0); /* the last '@' */
    CHECK_STR(t.doh_path, "/a@b/q");
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

/* An IP address as the authentication name (the certificate's IP address SAN is checked). */
static void ip_auth_names(void)
{
    lh_sockaddr a;
    lh_upstream_tls t;
    CHECK_EQ(parse("tls://1.1.1.1#1.1.1.1", &a, &t), 0);
    CHECK(t.on);
    CHECK_STR(t.auth_name, "1.1.1.1");
    CHECK(lh_auth_name_is_ip(t.auth_name));
    CHECK_EQ(parse("tls://[2606:4700::1111]:853#2606:4700::1111", &a, &t), 0);
    CHECK_STR(t.auth_name, "2606:4700::1111");
    CHECK(lh_auth_name_is_ip(t.auth_name));
    CHECK_EQ(parse("2606:4700::1111@853#2606:4700::1111", &a, &t), 0);
    CHECK_EQ(ntohs(a.v6.sin6_port), 853);
    CHECK(!lh_auth_name_is_ip("dns.example"));
    CHECK(!lh_auth_name_is_ip("1.1.1"));
    CHECK(parse("tls://1.1.1.1#1.1.1.1.1:", &a, &t) != 0); /* neither a name nor an address */
}

/* Closed connections by the queries they carried: 1, 2-10, 11-100, 101-1000, 1001-10000, more. */
static void conn_queries_buckets(void)
{
    CHECK_EQ(lh_conn_queries_bucket(0), 0);
    CHECK_EQ(lh_conn_queries_bucket(1), 0);
    CHECK_EQ(lh_conn_queries_bucket(2), 1);
    CHECK_EQ(lh_conn_queries_bucket(10), 1);
    CHECK_EQ(lh_conn_queries_bucket(11), 2);
    CHECK_EQ(lh_conn_queries_bucket(1000), 3);
    CHECK_EQ(lh_conn_queries_bucket(10000), 4);
    CHECK_EQ(lh_conn_queries_bucket(10001), 5);
}

void test_upstream_addr(void);
void test_upstream_addr(void)
{
    forms();
    ip_auth_names();
    conn_queries_buckets();
    refused();
    https_forms();
    https_refused();
    padding();
}
