/* upstream_addr.c - the upstream syntax of every transport (see upstream_addr.h). */
#include "loophole/upstream_addr.h"
#include "loophole/addr.h"

#include <arpa/inet.h>
#include <stdlib.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

bool lh_auth_name_is_ip(const char *n)
{
    uint8_t a[16];
    return inet_pton(AF_INET, n, a) == 1 || inet_pton(AF_INET6, n, a) == 1;
}

/* A host name as certificates carry it: letters, digits, '-', '.', a leading "*." never (the
 * name we check is the server's, not a pattern); or an IP address, checked against the
 * certificate's IP address entries (tls://1.1.1.1#1.1.1.1). */
static bool auth_name_ok(const char *n)
{
    if (lh_auth_name_is_ip(n)) return true;
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

/* A bare IP address (IPv6 with or without brackets) into `addr` with `port`; -1 otherwise. */
static int ip_literal(const char *text, uint16_t port, lh_sockaddr *addr)
{
    char ip[INET6_ADDRSTRLEN];
    size_t n = strlen(text);
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        text++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof ip) return -1;
    memcpy(ip, text, n);
    ip[n] = 0;
    struct in6_addr a6;
    struct in_addr a4;
    memset(addr, 0, sizeof *addr);
    if (inet_pton(AF_INET, ip, &a4) == 1) {
        addr->v4.sin_family = AF_INET;
        addr->v4.sin_port = htons(port);
        addr->v4.sin_addr = a4;
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &a6) == 1) {
        addr->v6.sin6_family = AF_INET6;
        addr->v6.sin6_port = htons(port);
        addr->v6.sin6_addr = a6;
        return 0;
    }
    return -1;
}

/* Does the host end in a number, as the URL standard and libcurl read it (the last label, a
 * trailing dot aside, all digits or 0x and hex digits)? Such a host is taken as an IPv4 address
 * ("127.1", "2130706433", "0x7f.1"): libcurl would connect to that number instead of @ADDR,
 * since CURLOPT_CONNECT_TO matches the host only as it was written. */
static bool ends_in_number(const char *host)
{
    size_t n = strlen(host);
    if (n && host[n - 1] == '.') n--;
    size_t start = n;
    while (start > 0 && host[start - 1] != '.')
        start--;
    if (start == n) return false;
    const char *l = host + start;
    size_t len = n - start, i = 0;
    bool hex = len >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X');
    if (hex) i = 2;
    for (; i < len; i++)
        if (hex ? !isxdigit((unsigned char)l[i]) : !isdigit((unsigned char)l[i])) return false;
    return true;
}

/* A URL path as a DoH server takes it: printable ASCII without spaces, quotes or '#'. */
static bool doh_path_ok(const char *p)
{
    if (p[0] != '/' || strlen(p) >= LH_DOH_PATH_MAX) return false;
    for (; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '#' || *p == '\\') return false;
    return true;
}

/* https://HOST[:PORT][/PATH][@ADDR][?OPTIONS] (see upstream_addr.h). */
/* "HOST[:PORT]", HOST an IPv6 literal in brackets: split in place. */
static int split_host_port(char *a, const char *text, char **host, uint16_t *port, char *err,
                           size_t errlen)
{
    char *port_text = NULL;
    *host = a;
    if (*a == '[') {
        char *close = strchr(a, ']');
        if (!close) return fail(err, errlen, "'%s': unclosed '[' in the host", text);
        *host = a + 1;
        *close = 0;
        if (close[1] == ':')
            port_text = close + 2;
        else if (close[1])
            return fail(err, errlen, "'%s': junk after the host's ']'", text);
    } else if ((port_text = strchr(a, ':'))) {
        *port_text++ = 0;
    }
    *port = LH_DOH_PORT;
    if (port_text) {
        char *e;
        unsigned long p = strtoul(port_text, &e, 10);
        if (!*port_text || *e || p == 0 || p > 65535)
            return fail(err, errlen, "'%s': '%s' is not a port", text, port_text);
        *port = (uint16_t)p;
    }
    if (!**host) return fail(err, errlen, "'%s': no host", text);
    if (strlen(*host) >= LH_AUTH_NAME_MAX)
        return fail(err, errlen, "'%s': the host name is too long", text);
    return 0;
}

/* "pin-sha256=BASE64&method=get|post", split in place. */
static int parse_doh_options(char *opts, const char *text, lh_upstream_tls *tls, char *err,
                             size_t errlen)
{
    for (char *o = opts, *next; o && *o; o = next) {
        next = strchr(o, '&');
        if (next) *next++ = 0;
        if (!strncmp(o, "pin-sha256=", 11)) {
            if (pin_parse(o + 11, tls->pin) != 0)
                return fail(err, errlen,
                            "'%s': expected pin-sha256=BASE64 (the SHA-256 of the server's "
                            "SubjectPublicKeyInfo, 44 base64 characters)",
                            text);
            tls->has_pin = true;
        } else if (!strcasecmp(o, "method=get")) {
            tls->doh_get = true;
        } else if (!strcasecmp(o, "method=post")) {
            tls->doh_get = false;
        } else {
            return fail(err, errlen,
                        "'%s': unknown option '%s' (pin-sha256=BASE64, method=get, method=post)",
                        text, o);
        }
    }
    return 0;
}

static int parse_https(const char *text, lh_sockaddr *addr, lh_upstream_tls *tls, char *err,
                       size_t errlen)
{
    char buf[512];
    strcpy(buf, text); /* the caller checked the length */
    char *a = buf + 8;
    tls->on = tls->https = true;
    char *opts = strchr(a, '?');
    if (opts) *opts++ = 0;
    char *at = strrchr(a, '@');
    if (at) *at++ = 0;
    char *slash = strchr(a, '/');
    if (slash && strlen(slash) >= LH_DOH_PATH_MAX)
        return fail(err, errlen, "'%.60s...': the path is longer than %d characters", text,
                    LH_DOH_PATH_MAX - 1);
    snprintf(tls->doh_path, sizeof tls->doh_path, "%s", slash ? slash : "/dns-query");
    if (slash) *slash = 0;
    if (!doh_path_ok(tls->doh_path))
        return fail(err, errlen, "'%s': '%s' is not a URL path", text, slash ? slash : "");
    char *host = NULL;
    uint16_t port = LH_DOH_PORT;
    if (split_host_port(a, text, &host, &port, err, errlen) != 0) return -1;
    bool host_is_ip = ip_literal(host, port, addr) == 0;
    if (!host_is_ip && (!auth_name_ok(host) || strchr(host, ':')))
        return fail(err, errlen, "'%s': '%s' is not a host name or an IP address", text, host);
    if (!host_is_ip && ends_in_number(host))
        return fail(err, errlen,
                    "'%s': '%s' would be read as an IPv4 address; write the address in dotted "
                    "form (a.b.c.d) or use a host name",
                    text, host);
    if (host_is_ip) /* as libcurl writes it (2001:DB8:0::1 -> 2001:db8::1): CURLOPT_CONNECT_TO
                       matches that form only, and a mismatch would skip @ADDR */
        inet_ntop(addr->sa.sa_family,
                  addr->sa.sa_family == AF_INET6 ? (void *)&addr->v6.sin6_addr
                                                 : (void *)&addr->v4.sin_addr,
                  tls->auth_name, LH_AUTH_NAME_MAX);
    else
        strcpy(tls->auth_name, host);
    if (at) {
        if (ip_literal(at, port, addr) != 0)
            return fail(err, errlen,
                        "'%s': '%s' is not an IP address (the address to reach %s at; its port "
                        "is the URL's)",
                        text, at, host);
    } else if (!host_is_ip) {
        return fail(err, errlen,
                    "'%s': DNS over HTTPS needs the address to reach %s at, so that finding it "
                    "never takes a plaintext lookup: https://%s%s@ADDR",
                    text, host, host, tls->doh_path);
    }
    return parse_doh_options(opts, text, tls, err, errlen);
}

int lh_upstream_addr_parse(const char *text, lh_sockaddr *addr, lh_upstream_tls *tls, char *err,
                           size_t errlen)
{
    memset(tls, 0, sizeof *tls);
    char buf[512];
    if (strlen(text) >= sizeof buf) return fail(err, errlen, "'%.40s...' is too long", text);
    if (!strncmp(text, "https://", 8)) return parse_https(text, addr, tls, err, errlen);
    strcpy(buf, text);
    char *a = buf;
    bool scheme = !strncmp(a, "tls://", 6);
    if (scheme) a += 6;
    if (strstr(text, "://") && !scheme)
        return fail(err, errlen,
                    "'%s': unknown scheme (tls://ADDR[:PORT]#NAME for DNS over TLS, "
                    "https://HOST/PATH@ADDR for DNS over HTTPS, or plain ADDR[:PORT])",
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
            return fail(err, errlen, "'%s': '%s' is not a host name or an IP address", text, hash);
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
    if (tls && tls->https) {
        uint16_t port =
            ntohs(addr->sa.sa_family == AF_INET6 ? addr->v6.sin6_port : addr->v4.sin_port);
        bool v6 = strchr(tls->auth_name, ':') != NULL;
        snprintf(a, sizeof a, ":%u", port);
        snprintf(out, cap, "https://%s%s%s%s%s", v6 ? "[" : "", tls->auth_name, v6 ? "]" : "",
                 port == LH_DOH_PORT ? "" : a, tls->doh_path);
        return;
    }
    lh_addr_format(addr, a, sizeof a);
    snprintf(out, cap, "%s%s", tls && tls->on ? "tls://" : "", a);
}
