/* config.c - settings from defaults, a `key = value` file and flags (see docs/configuration.md). */
#include "loophole/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lh_config_defaults(lh_config *c)
{
    memset(c, 0, sizeof *c);
    lh_addr_parse(LH_DEFAULT_LISTEN, 53, &c->listen[0]);
    c->nlisten = 1;
    c->listen_src = LH_SRC_DEFAULT;
    c->log_level = LH_LOG_INFO;
    c->hosts_file = strdup(LH_DEFAULT_HOSTS_FILE);
    c->edns_udp_size = 1232; /* DNS flag day 2020: avoids IP fragmentation */
    c->local_ttl = 60;
    c->tcp_idle_timeout_ms = 10000;
    c->tcp_max_connections = 1000;
    c->default_blocklist = true;
    c->block_mode = LH_BLOCK_LOOPBACK;
    c->block_ttl = 10; /* short: an unblocked name comes back quickly */
    c->canary_names = true;
}

void lh_config_free(lh_config *c)
{
    for (unsigned i = 0; i < c->nlists; i++)
        free(c->lists[i].path);
    free(c->lists);
    c->lists = NULL;
    c->nlists = 0;
    free(c->config_file);
    free(c->hosts_file);
    c->config_file = c->hosts_file = NULL;
}

int lh_addr_parse(const char *text, uint16_t default_port, lh_sockaddr *out)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port = NULL;
    size_t hl;
    memset(out, 0, sizeof *out);
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (!end)
            return -1;
        hl = (size_t)(end - text - 1);
        if (hl >= sizeof host)
            return -1;
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
        if (hl >= sizeof host)
            return -1;
        memcpy(host, text, hl);
        host[hl] = 0;
        if (colon)
            port = colon + 1;
    }
    unsigned long p = default_port;
    if (port) {
        char *e;
        errno = 0;
        p = strtoul(port, &e, 10);
        if (errno || *e || e == port || p == 0 || p > 65535)
            return -1;
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

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int parse_uint(const char *v, unsigned long min, unsigned long max, unsigned long *out)
{
    char *e;
    errno = 0;
    if (*v == '-' || *v == 0)
        return -1;
    unsigned long x = strtoul(v, &e, 10);
    if (errno || *e || x < min || x > max)
        return -1;
    *out = x;
    return 0;
}

static int parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on")) {
        *out = true;
        return 0;
    }
    if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off")) {
        *out = false;
        return 0;
    }
    return -1;
}

static int set_string(char **slot, const char *v)
{
    char *s = strdup(v);
    if (!s)
        return -1;
    free(*slot);
    *slot = s;
    return 0;
}

static const char *const block_modes[] = {"loopback", "null",    "nxdomain",
                                          "nodata",   "refused", "custom"};
static const char *const list_formats[] = {"auto",     "hosts",   "domains", "adblock",
                                           "wildcard", "dnsmasq", "regex"};

/* "PATH [format=F] [subdomains=yes|no]" */
static int add_list(lh_config *c, bool allow, const char *v, char *err, size_t errlen)
{
    char buf[4096];
    if (strlen(v) >= sizeof buf)
        return fail(err, errlen, "path too long");
    strcpy(buf, v);
    char *save = NULL, *path = strtok_r(buf, " \t", &save), *opt;
    if (!path)
        return fail(err, errlen, "%s: needs a file or folder", allow ? "allowlist" : "blocklist");
    lh_list_source src = {.allow = allow, .format = 0, .subdomains = -1};
    while ((opt = strtok_r(NULL, " \t", &save))) {
        bool b, found = false;
        if (!strncmp(opt, "format=", 7)) {
            for (unsigned i = 0; i < sizeof list_formats / sizeof *list_formats; i++)
                if (!strcmp(opt + 7, list_formats[i])) {
                    src.format = (int)i;
                    found = true;
                }
            if (!found)
                return fail(err, errlen,
                            "'%s': format is one of auto, hosts, domains, adblock, wildcard, "
                            "dnsmasq, regex",
                            opt);
        } else if (!strncmp(opt, "subdomains=", 11) && parse_bool(opt + 11, &b) == 0) {
            src.subdomains = b;
        } else {
            return fail(err, errlen, "'%s': expected format=FORMAT or subdomains=yes|no", opt);
        }
    }
    lh_list_source *l = realloc(c->lists, (c->nlists + 1) * sizeof *l);
    if (!l || !(src.path = strdup(path)))
        return fail(err, errlen, "out of memory");
    c->lists = l;
    c->lists[c->nlists++] = src;
    return 0;
}

int lh_config_validate(const lh_config *c, char *err, size_t errlen)
{
    if (c->block_mode == LH_BLOCK_CUSTOM && !c->has_block_ipv4 && !c->has_block_ipv6)
        return fail(err, errlen, "block-mode custom needs block-ipv4 and/or block-ipv6");
    return 0;
}

int lh_config_set(lh_config *c, enum lh_config_source src, const char *key, const char *v,
                  char *err, size_t errlen)
{
    bool b;
    if (!strcmp(key, "blocklist") || !strcmp(key, "allowlist"))
        return add_list(c, key[0] == 'a', v, err, errlen);
    if (!strcmp(key, "default-blocklist") || !strcmp(key, "canary-names")) {
        if (parse_bool(v, &b) != 0)
            return fail(err, errlen, "%s: '%s' is not yes or no", key, v);
        *(key[0] == 'd' ? &c->default_blocklist : &c->canary_names) = b;
        return 0;
    }
    if (!strcmp(key, "block-mode")) {
        for (unsigned i = 0; i < sizeof block_modes / sizeof *block_modes; i++)
            if (!strcmp(v, block_modes[i])) {
                c->block_mode = (enum lh_block_mode)i;
                return 0;
            }
        return fail(err, errlen,
                    "block-mode: '%s' is not one of loopback, null, nxdomain, nodata, refused, "
                    "custom",
                    v);
    }
    if (!strcmp(key, "block-ipv4")) {
        if (inet_pton(AF_INET, v, c->block_ipv4) != 1)
            return fail(err, errlen, "block-ipv4: '%s' is not an IPv4 address", v);
        c->has_block_ipv4 = true;
        return 0;
    }
    if (!strcmp(key, "block-ipv6")) {
        if (inet_pton(AF_INET6, v, c->block_ipv6) != 1)
            return fail(err, errlen, "block-ipv6: '%s' is not an IPv6 address", v);
        c->has_block_ipv6 = true;
        return 0;
    }
    unsigned long n;
    if (!strcmp(key, "listen")) {
        if (c->listen_src != src) { /* a new source replaces the list it inherited */
            c->nlisten = 0;
            c->listen_src = src;
        }
        if (c->nlisten >= LH_LISTEN_MAX)
            return fail(err, errlen, "too many listen addresses (at most %d)", LH_LISTEN_MAX);
        if (lh_addr_parse(v, 53, &c->listen[c->nlisten]) != 0)
            return fail(err, errlen,
                        "listen: '%s' is not ADDR[:PORT] (IPv6 as [::1]:53)", v);
        c->nlisten++;
        return 0;
    }
    if (!strcmp(key, "log-level")) {
        if (lh_log_level_parse(v, &c->log_level) != 0)
            return fail(err, errlen, "log-level: '%s' is not one of error, warn, info, debug", v);
        return 0;
    }
    if (!strcmp(key, "hosts-file")) {
        if (!strcmp(v, "none")) {
            free(c->hosts_file);
            c->hosts_file = NULL;
            return 0;
        }
        if (!*v)
            return fail(err, errlen, "hosts-file: needs a path or 'none'");
        return set_string(&c->hosts_file, v) ? fail(err, errlen, "out of memory") : 0;
    }
    if (!strcmp(key, "hosts")) { /* boolean shorthand: hosts = no */
        if (parse_bool(v, &b) != 0)
            return fail(err, errlen, "hosts: '%s' is not yes or no", v);
        if (!b) {
            free(c->hosts_file);
            c->hosts_file = NULL;
        } else if (!c->hosts_file && set_string(&c->hosts_file, LH_DEFAULT_HOSTS_FILE)) {
            return fail(err, errlen, "out of memory");
        }
        return 0;
    }
    if (!strcmp(key, "edns-udp-size")) {
        if (parse_uint(v, 512, 4096, &n))
            return fail(err, errlen, "edns-udp-size: '%s' is not a number from 512 to 4096", v);
        c->edns_udp_size = (uint16_t)n;
        return 0;
    }
    if (!strcmp(key, "block-ttl")) {
        if (parse_uint(v, 0, 86400, &n))
            return fail(err, errlen, "block-ttl: '%s' is not a number of seconds up to 86400", v);
        c->block_ttl = (uint32_t)n;
        return 0;
    }
    if (!strcmp(key, "local-ttl")) {
        if (parse_uint(v, 0, 86400, &n))
            return fail(err, errlen, "local-ttl: '%s' is not a number of seconds up to 86400", v);
        c->local_ttl = (uint32_t)n;
        return 0;
    }
    if (!strcmp(key, "tcp-idle-timeout")) {
        if (parse_uint(v, 100, 600000, &n))
            return fail(err, errlen,
                        "tcp-idle-timeout: '%s' is not a number of milliseconds from 100 to 600000",
                        v);
        c->tcp_idle_timeout_ms = (uint32_t)n;
        return 0;
    }
    if (!strcmp(key, "tcp-max-connections")) {
        if (parse_uint(v, 1, 100000, &n))
            return fail(err, errlen, "tcp-max-connections: '%s' is not a number from 1 to 100000",
                        v);
        c->tcp_max_connections = (uint32_t)n;
        return 0;
    }
    return fail(err, errlen, "unknown setting '%s'", key);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = 0;
    return s;
}

int lh_config_load_file(lh_config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    int rc = lh_config_load_stream(c, f, path, err, errlen);
    fclose(f);
    if (rc == 0 && set_string(&c->config_file, path) != 0)
        rc = fail(err, errlen, "out of memory");
    return rc;
}

int lh_config_load_stream(lh_config *c, FILE *f, const char *path, char *err, size_t errlen)
{
    char line[4096], msg[LH_ERR_MAX];
    unsigned lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = fail(err, errlen, "%s:%u: line longer than %zu bytes", path, lineno,
                      sizeof line - 1);
            break;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = fail(err, errlen, "%s:%u: expected 'key = value', got '%s'", path, lineno, s);
            break;
        }
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1);
        if (lh_config_set(c, LH_SRC_FILE, key, val, msg, sizeof msg) != 0) {
            rc = fail(err, errlen, "%s:%u: %s", path, lineno, msg);
            break;
        }
    }
    if (rc == 0 && ferror(f))
        rc = fail(err, errlen, "%s: read error: %s", path, strerror(errno));
    return rc;
}
