/* upstream_addr.c - the upstream syntax of every transport (see upstream_addr.h). */
#include "loophole/upstream_addr.h"
#include "loophole/config.h"

#include <arpa/inet.h>
#include <stdlib.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* A host name as certificates carry it: letters, digits, '-', '.', a leading "*." never (the
 * name we check is the server's, not a pattern). */
static bool auth_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len >= LH_AUTH_NAME_MAX || n[0] == '.' || n[0] == '-') return false;
    for (const char *p = n; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.') return false;
    return true;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Exactly 32 bytes of standard base64 (44 characters, one '=' of padding). */
static int pin_parse(const char *text, uint8_t out[32])
{
    if (strlen(text) != 44 || text[43] != '=') return -1;
    uint32_t acc = 0;
    unsigned bits = 0, n = 0;
    for (int i = 0; i < 43; i++) {
        int v = b64_value(text[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n < 32) out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return n == 32 ? 0 : -1;
}

int lh_upstream_addr_parse(const char *text, lh_sockaddr *addr, lh_upstream_tls *tls, char *err,
                           size_t errlen)
{
    memset(tls, 0, sizeof *tls);
    char buf[512];
    if (strlen(text) >= sizeof buf) return fail(err, errlen, "'%.40s...' is too long", text);
    strcpy(buf, text);
    char *a = buf;
    bool scheme = !strncmp(a, "tls://", 6);
    if (scheme) a += 6;
    if (strstr(text, "://") && !scheme)
        return fail(err, errlen,
                    "'%s': unknown scheme (tls://ADDR[:PORT]#NAME for DNS over TLS, or plain "
                    "ADDR[:PORT])",
                    text);
    char *query = strchr(a, '?');
    if (query) *query++ = 0;
    char *hash = strchr(a, '#');
    if (hash) *hash++ = 0;
    char *at = strchr(a, '@');
    if (at) *at++ = 0;
    tls->on = scheme || hash;
    if (!tls->on && query) return fail(err, errlen, "'%s': a pin needs a TLS upstream", text);
    if (!tls->on && at)
        return fail(err, errlen, "'%s': ADDR@PORT is DNS over TLS and needs #AUTH-NAME", text);
    if (tls->on && (!hash || !*hash))
        return fail(err, errlen,
                    "'%s': DNS over TLS needs the name to check the certificate against: "
                    "tls://ADDR[:PORT]#AUTH-NAME (strict: no unauthenticated TLS)",
                    text);
    if (tls->on) {
        if (!auth_name_ok(hash))
            return fail(err, errlen, "'%s': '%s' is not a host name", text, hash);
        strcpy(tls->auth_name, hash);
    }
    uint16_t port = tls->on ? LH_DOT_PORT : 53;
    if (at) { /* Unbound's ADDR@PORT: the port after '@', the address bare (IPv6 unbracketed) */
        char host[INET6_ADDRSTRLEN + 3];
        char *e;
        unsigned long p = strtoul(at, &e, 10);
        if (!*at || *e || p == 0 || p > 65535)
            return fail(err, errlen, "'%s': '%s' is not a port", text, at);
        /* A bracket or a single ':' would be a second port: only a bare address here. */
        if (snprintf(host, sizeof host, "%s", a) >= (int)sizeof host || strchr(host, '[') ||
            (strchr(host, ':') && strchr(host, ':') == strrchr(host, ':')) ||
            lh_addr_parse(host, (uint16_t)p, addr) != 0)
            return fail(err, errlen, "'%s': '%s' is not an IP address", text, a);
    } else if (lh_addr_parse(a, port, addr) != 0) {
        return fail(err, errlen, "'%s' is not %sADDR[:PORT]%s (IPv6 as [::1]:%u)", text,
                    tls->on ? "tls://" : "", tls->on ? "#AUTH-NAME" : "", port);
    }
    if (query) {
        if (strncmp(query, "pin-sha256=", 11) != 0 || pin_parse(query + 11, tls->pin) != 0)
            return fail(err, errlen,
                        "'%s': expected ?pin-sha256=BASE64 (the SHA-256 of the server's "
                        "SubjectPublicKeyInfo, 44 base64 characters)",
                        text);
        tls->has_pin = true;
    }
    return 0;
}

void lh_upstream_addr_format(const lh_sockaddr *addr, const lh_upstream_tls *tls, char *out,
                             size_t cap)
{
    char a[64];
    lh_addr_format(addr, a, sizeof a);
    snprintf(out, cap, "%s%s", tls && tls->on ? "tls://" : "", a);
}
