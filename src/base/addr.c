/* addr.c - see addr.h. */
#include "loophole/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lh_addr_parse(const char *text, uint16_t default_port, lh_sockaddr *out)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port = NULL;
    size_t hl;
    memset(out, 0, sizeof *out);
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (!end) return -1;
        hl = (size_t)(end - text - 1);
        if (hl >= sizeof host) return -1;
        memcpy(host, text + 1, hl);
        host[hl] = 0;
        if (end[1] == ':')
            port = end + 2;
        else if (end[1] != 0)
            return -1;
    } else {
        const char *colon = strchr(text, ':');
        if (colon && strchr(colon + 1, ':')) /* bare IPv6 address */
            colon = NULL;
        hl = colon ? (size_t)(colon - text) : strlen(text);
        if (hl >= sizeof host) return -1;
        memcpy(host, text, hl);
        host[hl] = 0;
        if (colon) port = colon + 1;
    }
    unsigned long p = default_port;
    if (port) {
        char *e;
        errno = 0;
        p = strtoul(port, &e, 10);
        if (errno || *e || e == port || p == 0 || p > 65535) return -1;
    }
    if (inet_pton(AF_INET, host, &out->v4.sin_addr) == 1) {
        out->v4.sin_family = AF_INET;
        out->v4.sin_port = htons((uint16_t)p);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &out->v6.sin6_addr) == 1) {
        out->v6.sin6_family = AF_INET6;
        out->v6.sin6_port = htons((uint16_t)p);
        return 0;
    }
    return -1;
}

void lh_addr_format(const lh_sockaddr *a, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN];
    if (a->sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &a->v6.sin6_addr, host, sizeof host);
        snprintf(out, cap, "[%s]:%u", host, ntohs(a->v6.sin6_port));
    } else if (a->sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &a->v4.sin_addr, host, sizeof host);
        snprintf(out, cap, "%s:%u", host, ntohs(a->v4.sin_port));
    } else {
        snprintf(out, cap, "(unknown address family %d)", a->sa.sa_family);
    }
}

int lh_cidr_parse(const char *v, lh_cidr *out)
{
    char buf[INET6_ADDRSTRLEN + 8];
    if (strlen(v) >= sizeof buf) return -1;
    strcpy(buf, v);
    char *slash = strchr(buf, '/');
    if (slash) *slash = 0;
    memset(out, 0, sizeof *out);
    unsigned long max;
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    unsigned long p = max;
    if (slash) { /* a prefix length: digits only, at most the address's bits */
        char *e;
        errno = 0;
        p = strtoul(slash + 1, &e, 10);
        if (slash[1] == '-' || errno || e == slash + 1 || *e || p > max) return -1;
    }
    out->prefix = (uint8_t)p;
    return 0;
}

static bool cidr_match(const lh_cidr *c, const uint8_t *addr)
{
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr, addr, full) != 0) return false;
    return rest == 0 || ((c->addr[full] ^ addr[full]) & (0xff << (8 - rest))) == 0;
}

bool lh_addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a)) return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

size_t lh_addr_bytes(const struct sockaddr *sa, const uint8_t **bytes)
{
    if (sa->sa_family == AF_INET6) {
        *bytes = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        return 16;
    }
    *bytes = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    return 4;
}

bool lh_acl_allows(const lh_cidr *nets, unsigned n, const struct sockaddr *sa)
{
    if (lh_addr_is_loopback(sa)) return true;
    for (unsigned i = 0; i < n; i++) {
        const lh_cidr *c = &nets[i];
        if (c->family == AF_INET && sa->sa_family == AF_INET &&
            cidr_match(c, (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr))
            return true;
        if (c->family == AF_INET6 && sa->sa_family == AF_INET6 &&
            cidr_match(c, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr))
            return true;
    }
    return false;
}
