/* config.c - settings from defaults, a `key = value` file and flags (see docs/configuration.md). */
#include "loophole/config.h"
#include "loophole/upstream_addr.h"
#include "loophole/wire.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const lh_setting lh_settings[] = {
    {"listen", LH_DEFAULT_LISTEN},
    {"log-level", "info"},
    {"hosts-file", LH_DEFAULT_HOSTS_FILE},
    {"hosts", NULL}, /* hosts = no: the same as hosts-file = none */
    {"local-ttl", "60"},
    {"edns-udp-size", "1232"},
    {"tcp-idle-timeout", "10000"},
    {"tcp-max-connections", "1000"},
    {"threads", "1"},
    {"rate-limit", "200"},
    {"allow-client", NULL},
    {"user", LH_DEFAULT_USER},
    {"allow-root", "no"},
    {"blocklist", NULL},
    {"allowlist", NULL},
    {"list-url", NULL},
    {"default-blocklist", "yes"},
    {"block-mode", "loopback"},
    {"block-ipv4", NULL},
    {"block-ipv6", NULL},
    {"block-ttl", "10"},
    {"canary-names", "yes"},
    {"upstream", NULL}, /* from resolv-conf */
    {"forward-zone", NULL},
    {"tls-ca", NULL}, /* the system CA store */
    {"tls-mode", "strict"},
    {"resolv-conf", LH_DEFAULT_RESOLV_CONF},
    {"fallback-upstream", LH_DEFAULT_FALLBACK},
    {"upstream-timeout", "1500"},
    {"query-budget", "4000"},
    {"upstream-max-inflight", "1024"},
    {"upstream-0x20", "yes"},
    {"rebind-protection", "no"},
    {"rebind-allow", NULL},
    {"cache-size", "16M"},
    {"cache-min-ttl", "0"},
    {"cache-max-ttl", "86400"},
    {"cache-max-negative-ttl", "3600"},
    {"serve-stale", "yes"},
    {"stale-ttl", "30"},
    {"stale-window", "86400"},
    {"control-socket", LH_DEFAULT_CONTROL_SOCKET},
    {"state-dir", LH_DEFAULT_STATE_DIR},
    {"control-group", NULL}, /* root only */
    {"metrics", NULL},       /* off */
    {"query-log", NULL},     /* off */
    {"query-log-clients", "yes"},
    {"http", NULL},           /* off: docs/dashboard.md */
    {"recent-queries", NULL}, /* 1000 with http, else 0 */
    {"probe-zone", NULL},
    {"leak-zone", NULL},
    {"leak-ns-address", NULL},
    {"leak-retention", "600"},
    {"dnssec", "process"},
    {"trust-anchor", NULL}, /* LH_DNSSEC_ROOT_KEY */
    {"domain-insecure", NULL},
};
const unsigned lh_nsettings = sizeof lh_settings / sizeof *lh_settings;
_Static_assert(sizeof lh_settings / sizeof *lh_settings <= LH_SETTINGS_MAX, "LH_SETTINGS_MAX");

int lh_setting_index(const char *key)
{
    for (unsigned i = 0; i < lh_nsettings; i++)
        if (!strcmp(lh_settings[i].key, key)) return (int)i;
    return -1;
}

void lh_config_defaults(lh_config *c)
{
    memset(c, 0, sizeof *c);
    lh_addr_parse(LH_DEFAULT_LISTEN, 53, &c->listen[0]);
    c->nlisten = 1;
    c->listen_src = LH_SRC_DEFAULT;
    c->log_level = LH_LOG_INFO;
    c->hosts_file = strdup(LH_DEFAULT_HOSTS_FILE);
    c->user = strdup(LH_DEFAULT_USER);
    c->edns_udp_size = 1232; /* DNS flag day 2020: avoids IP fragmentation */
    c->local_ttl = 60;
    c->tcp_idle_timeout_ms = 10000;
    c->tcp_max_connections = 1000;
    c->threads = 1;
    c->rate_limit = 200;
    c->default_blocklist = true;
    c->block_mode = LH_BLOCK_LOOPBACK;
    c->block_ttl = 10; /* short: an unblocked name comes back quickly */
    c->canary_names = true;
    c->resolv_conf = strdup(LH_DEFAULT_RESOLV_CONF);
    c->nfallback = 2;
    lh_addr_parse("9.9.9.9", 53, &c->fallback[0]);
    lh_addr_parse("149.112.112.112", 53, &c->fallback[1]);
    c->upstream_timeout_ms = 1500;
    c->query_budget_ms = 4000;
    c->upstream_max_inflight = 1024;
    c->upstream_0x20 = true;
    c->cache_size = 16u << 20;
    c->cache_max_ttl = 86400;
    c->cache_max_negative_ttl = 3600;
    c->serve_stale = true;
    c->stale_ttl = 30;
    c->stale_window = 86400;
    c->control_socket = strdup(LH_DEFAULT_CONTROL_SOCKET);
    c->state_dir = strdup(LH_DEFAULT_STATE_DIR);
    c->leak_retention = 600;
    c->dnssec = LH_DNSSEC_MODE_PROCESS; /* docs/dnssec.md: why not validate by default */
    c->recent_queries = -1;
}

void lh_config_free(lh_config *c)
{
    for (unsigned i = 0; i < c->nlists; i++)
        free(c->lists[i].path);
    free(c->lists);
    c->lists = NULL;
    c->nlists = 0;
    for (unsigned i = 0; i < c->nlist_urls; i++) {
        free(c->list_urls[i].url);
        free(c->list_urls[i].path);
    }
    free(c->list_urls);
    c->list_urls = NULL;
    c->nlist_urls = 0;
    for (unsigned i = 0; i < c->nforward_zones; i++)
        free(c->forward_zones[i].zone);
    free(c->forward_zones);
    c->forward_zones = NULL;
    for (unsigned i = 0; i < c->nrebind_allow; i++)
        free(c->rebind_allow[i]);
    free(c->rebind_allow);
    c->rebind_allow = NULL;
    c->nrebind_allow = 0;
    c->nforward_zones = 0;
    free(c->config_file);
    free(c->tls_ca);
    free(c->probe_zone);
    free(c->control_socket);
    free(c->state_dir);
    c->state_dir = NULL;
    free(c->control_group);
    free(c->query_log);
    free(c->leak_zone);
    lh_config_free_dnssec(c);
    free(c->hosts_file);
    free(c->resolv_conf);
    free(c->user);
    c->config_file = c->hosts_file = c->resolv_conf = c->user = NULL;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
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
    if (*v == '-' || *v == 0) return -1;
    unsigned long x = strtoul(v, &e, 10);
    if (errno || *e || x < min || x > max) return -1;
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
    if (!s) return -1;
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
    if (strlen(v) >= sizeof buf) return fail(err, errlen, "path too long");
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
    if (!l || !(src.path = strdup(path))) return fail(err, errlen, "out of memory");
    c->lists = l;
    c->lists[c->nlists++] = src;
    return 0;
}

/* A repeatable address list: a new source replaces the list it inherited. */
static int add_addr(lh_sockaddr *list, unsigned *n, enum lh_config_source *list_src,
                    enum lh_config_source src, const char *key, const char *v, char *err,
                    size_t errlen)
{
    if (*list_src != src) {
        *n = 0;
        *list_src = src;
    }
    if (*n >= LH_UPSTREAMS_MAX)
        return fail(err, errlen, "%s: at most %d addresses", key, LH_UPSTREAMS_MAX);
    if (lh_addr_parse(v, 53, &list[*n]) != 0)
        return fail(err, errlen, "%s: '%s' is not ADDR[:PORT] (IPv6 as [::1]:53)", key, v);
    (*n)++;
    return 0;
}

/* The upstream list: plain or DNS over TLS, each with its transport (upstream_addr.c). */
static int add_upstream(lh_config *c, enum lh_config_source src, const char *v, char *err,
                        size_t errlen)
{
    if (c->upstreams_src != src) {
        c->nupstreams = 0;
        c->upstreams_src = src;
    }
    if (c->nupstreams >= LH_UPSTREAMS_MAX)
        return fail(err, errlen, "upstream: at most %d addresses", LH_UPSTREAMS_MAX);
    char why[LH_ERR_MAX];
    if (lh_upstream_addr_parse(v, &c->upstreams[c->nupstreams], &c->upstream_tls[c->nupstreams],
                               why, sizeof why) != 0)
        return fail(err, errlen, "upstream: %s", why);
    c->nupstreams++;
    return 0;
}

/* ZONE=ADDR[:PORT][,ADDR...] */
static int add_forward_zone(lh_config *c, enum lh_config_source src, const char *v, char *err,
                            size_t errlen)
{
    const char *eq = strchr(v, '=');
    if (!eq || eq == v || !eq[1])
        return fail(err, errlen, "forward-zone: '%s' is not ZONE=ADDR[:PORT][,ADDR...]", v);
    lh_forward_zone z = {.src = src};
    char addrs[1024];
    if (strlen(eq + 1) >= sizeof addrs) return fail(err, errlen, "forward-zone: too long");
    strcpy(addrs, eq + 1);
    char *save = NULL;
    for (char *a = strtok_r(addrs, ", \t", &save); a; a = strtok_r(NULL, ", \t", &save)) {
        if (z.nservers >= LH_ZONE_SERVERS_MAX)
            return fail(err, errlen, "forward-zone: at most %d addresses", LH_ZONE_SERVERS_MAX);
        char why[LH_ERR_MAX];
        if (lh_upstream_addr_parse(a, &z.servers[z.nservers], &z.tls[z.nservers], why,
                                   sizeof why) != 0)
            return fail(err, errlen, "forward-zone: %s", why);
        z.nservers++;
    }
    if (!z.nservers) return fail(err, errlen, "forward-zone: '%s' names no address", v);
    lh_forward_zone *zs = realloc(c->forward_zones, (c->nforward_zones + 1) * sizeof *zs);
    if (!zs || !(z.zone = strndup(v, (size_t)(eq - v)))) return fail(err, errlen, "out of memory");
    c->forward_zones = zs;
    c->forward_zones[c->nforward_zones++] = z;
    return 0;
}

/* "16M", "512K", "1048576" */
static int parse_size(const char *v, size_t *out)
{
    char *e;
    errno = 0;
    if (*v == '-' || !*v) return -1;
    unsigned long long x = strtoull(v, &e, 10);
    if (errno) return -1;
    if (*e == 'K' || *e == 'k')
        x <<= 10, e++;
    else if (*e == 'M' || *e == 'm')
        x <<= 20, e++;
    else if (*e == 'G' || *e == 'g')
        x <<= 30, e++;
    if (*e || x > (1ull << 34)) return -1;
    *out = (size_t)x;
    return 0;
}

static int parse_cidr(const char *v, lh_cidr *out)
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
    if (slash && parse_uint(slash + 1, 0, max, &p) != 0) return -1;
    out->prefix = (uint8_t)p;
    return 0;
}

static bool cidr_match(const lh_cidr *c, const uint8_t *addr)
{
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr, addr, full) != 0) return false;
    return rest == 0 || ((c->addr[full] ^ addr[full]) & (0xff << (8 - rest))) == 0;
}

bool lh_config_client_allowed(const lh_config *c, const struct sockaddr *sa)
{
    if (lh_addr_is_loopback(sa) || c->leak_server) return true; /* an authority answers all */
    for (unsigned i = 0; i < c->nallow_clients; i++) {
        const lh_cidr *n = &c->allow_clients[i];
        if (n->family == AF_INET && sa->sa_family == AF_INET &&
            cidr_match(n, (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr))
            return true;
        if (n->family == AF_INET6 && sa->sa_family == AF_INET6 &&
            cidr_match(n, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr))
            return true;
    }
    return false;
}

bool lh_config_is_own_address(const lh_config *c, const lh_sockaddr *a)
{
    for (unsigned i = 0; i < c->nlisten; i++) {
        const lh_sockaddr *l = &c->listen[i];
        if (l->sa.sa_family != a->sa.sa_family) continue;
        if (a->sa.sa_family == AF_INET && l->v4.sin_port == a->v4.sin_port &&
            l->v4.sin_addr.s_addr == a->v4.sin_addr.s_addr)
            return true;
        if (a->sa.sa_family == AF_INET6 && l->v6.sin6_port == a->v6.sin6_port &&
            !memcmp(&l->v6.sin6_addr, &a->v6.sin6_addr, 16))
            return true;
    }
    return false;
}

const char *const lh_upstream_origin_names[LH_ORIGIN_COUNT] = {"flag", "config-file", "resolv.conf",
                                                               "fallback"};

unsigned lh_config_default_upstreams(const lh_config *c, lh_sockaddr *out, unsigned max,
                                     char *source, size_t source_len)
{
    enum lh_upstream_origin origin;
    return lh_config_upstreams(c, out, max, source, source_len, &origin);
}

unsigned lh_config_upstreams(const lh_config *c, lh_sockaddr *out, unsigned max, char *source,
                             size_t source_len, enum lh_upstream_origin *origin)
{
    unsigned n = 0, skipped = 0;
    if (c->nupstreams) {
        for (unsigned i = 0; i < c->nupstreams && n < max; i++)
            out[n++] = c->upstreams[i];
        *origin = lh_origin_of(c->upstreams_src);
        snprintf(source, source_len, "the upstream setting (%s)",
                 c->upstreams_src == LH_SRC_FLAG ? "a flag" : "the config file");
        return n;
    }
    FILE *f = c->resolv_conf ? fopen(c->resolv_conf, "r") : NULL;
    if (!f && c->resolv_conf && c->resolv_conf_explicit) {
        /* Named on purpose: falling back to public resolvers instead would be a silent change
         * of where every question goes. The default path may be missing (minimal roots). */
        *origin = LH_ORIGIN_RESOLV_CONF;
        snprintf(source, source_len, "resolv-conf %s cannot be read: %s", c->resolv_conf,
                 strerror(errno));
        return 0;
    }
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f) && n < max) {
            char word[64], addr[80];
            if (sscanf(line, "%63s %79s", word, addr) != 2 || strcmp(word, "nameserver")) continue;
            char *pct = strchr(addr, '%'); /* fe80::1%eth0: scoped addresses are not supported */
            if (pct) continue;
            lh_sockaddr a;
            if (lh_addr_parse(addr, 53, &a) != 0 || strchr(addr, ']')) continue;
            if (lh_config_is_own_address(c, &a)) { /* never forward to ourselves */
                skipped++;
                continue;
            }
            out[n++] = a;
        }
        fclose(f);
    }
    if (n) {
        *origin = LH_ORIGIN_RESOLV_CONF;
        snprintf(source, source_len, "from %s%s", c->resolv_conf,
                 skipped ? ", minus loophole's own address" : "");
        return n;
    }
    for (unsigned i = 0; i < c->nfallback && n < max; i++)
        out[n++] = c->fallback[i];
    *origin = LH_ORIGIN_FALLBACK;
    snprintf(source, source_len,
             "the fallback: %s has no nameserver but loophole's own address%s; set 'upstream' "
             "or 'fallback-upstream' to choose",
             c->resolv_conf ? c->resolv_conf : "(no resolv.conf)", f ? "" : " (or cannot be read)");
    return n;
}

/* Where a setting was given, for messages: "FILE:LINE", "--KEY" (a flag) or "the default". */
static const char *where(const lh_config *c, const char *key, char *buf, size_t cap)
{
    int i = lh_setting_index(key);
    if (i < 0 || c->set_src[i] == LH_SRC_DEFAULT) return "the default";
    if (c->set_src[i] == LH_SRC_FILE && c->config_file)
        snprintf(buf, cap, "%s:%u", c->config_file, c->set_line[i]);
    else if (c->set_src[i] == LH_SRC_FILE)
        snprintf(buf, cap, "line %u", c->set_line[i]);
    else
        snprintf(buf, cap, "--%s", key);
    return buf;
}

/* An error that involves two settings: "WHERE-OF-FIRST: message (SECOND at WHERE)". */
static int fail2(const lh_config *c, const char *key1, const char *key2, char *err, size_t errlen,
                 const char *msg)
{
    char w1[300], w2[300];
    int i = lh_setting_index(key1);
    if (i >= 0 && c->set_src[i] != LH_SRC_DEFAULT)
        return fail(err, errlen, "%s: %s (%s: %s)", where(c, key1, w1, sizeof w1), msg, key2,
                    where(c, key2, w2, sizeof w2));
    return fail(err, errlen, "%s (%s: %s)", msg, key2, where(c, key2, w2, sizeof w2));
}

int lh_config_validate(const lh_config *c, char *err, size_t errlen)
{
    char a[64], msg[LH_ERR_MAX];
    /* 127.0.0.1 versus 0.0.0.0 is a security boundary: crossing it is said explicitly. */
    if (c->leak_server && !c->leak_zone)
        return fail(err, errlen, "leak-server needs the zone it serves: --zone ZONE");
    for (unsigned i = 0; !c->leak_server && i < c->nlisten; i++)
        if (!lh_addr_is_loopback(&c->listen[i].sa) && c->nallow_clients == 0) {
            lh_addr_format(&c->listen[i], a, sizeof a);
            snprintf(msg, sizeof msg,
                     "listening on %s, which is not a loopback address, needs an explicit "
                     "list of client networks (allow-client = 192.168.1.0/24, repeatable): "
                     "without one only loopback clients would be answered",
                     a);
            return fail2(c, "listen", "allow-client", err, errlen, msg);
        }
    if (c->has_metrics && !lh_addr_is_loopback(&c->metrics.sa) && c->nallow_clients == 0) {
        lh_addr_format(&c->metrics, a, sizeof a);
        snprintf(msg, sizeof msg,
                 "metrics on %s, which is not a loopback address, needs allow-client for the "
                 "networks that may scrape it",
                 a);
        return fail2(c, "metrics", "allow-client", err, errlen, msg);
    }
    for (unsigned i = 0; i < c->nupstreams; i++)
        if (lh_config_is_own_address(c, &c->upstreams[i])) {
            lh_addr_format(&c->upstreams[i], a, sizeof a);
            snprintf(msg, sizeof msg,
                     "upstream %s is one of loophole's own listen addresses: it would forward "
                     "to itself",
                     a);
            return fail2(c, "upstream", "listen", err, errlen, msg);
        }
    if (c->query_budget_ms < c->upstream_timeout_ms) {
        snprintf(msg, sizeof msg, "query-budget (%u ms) is shorter than upstream-timeout (%u ms)",
                 c->query_budget_ms, c->upstream_timeout_ms);
        return fail2(c, "query-budget", "upstream-timeout", err, errlen, msg);
    }
    if (c->block_mode == LH_BLOCK_CUSTOM && !c->has_block_ipv4 && !c->has_block_ipv6)
        return fail2(c, "block-mode", "block-ipv4", err, errlen,
                     "block-mode custom needs block-ipv4 and/or block-ipv6");
    return 0;
}

static int config_set(lh_config *c, enum lh_config_source src, const char *key, const char *v,
                      char *err, size_t errlen);

int lh_config_set(lh_config *c, enum lh_config_source src, const char *key, const char *v,
                  char *err, size_t errlen)
{
    int i = lh_setting_index(key); /* the table is the list of settings */
    if (i < 0) return fail(err, errlen, "unknown setting '%s'", key);
    if (config_set(c, src, key, v, err, errlen) != 0) return -1;
    c->set_src[i] = (uint8_t)src;
    c->set_line[i] = 0; /* a file sets its line after this returns */
    return 0;
}

static int config_set(lh_config *c, enum lh_config_source src, const char *key, const char *v,
                      char *err, size_t errlen)
{
    bool b;
    if (lh_config_is_dnssec_key(key)) return lh_config_set_dnssec(c, src, key, v, err, errlen);
    if (!strcmp(key, "blocklist") || !strcmp(key, "allowlist"))
        return add_list(c, key[0] == 'a', v, err, errlen);
    if (!strcmp(key, "default-blocklist") || !strcmp(key, "canary-names") ||
        !strcmp(key, "allow-root")) {
        if (parse_bool(v, &b) != 0) return fail(err, errlen, "%s: '%s' is not yes or no", key, v);
        *(key[0] == 'd'   ? &c->default_blocklist
          : key[0] == 'c' ? &c->canary_names
                          : &c->allow_root) = b;
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
            return fail(err, errlen, "listen: '%s' is not ADDR[:PORT] (IPv6 as [::1]:53)", v);
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
            c->hosts_file_explicit = false;
            return 0;
        }
        if (!*v) return fail(err, errlen, "hosts-file: needs a path or 'none'");
        c->hosts_file_explicit = true;
        return set_string(&c->hosts_file, v) ? fail(err, errlen, "out of memory") : 0;
    }
    if (!strcmp(key, "hosts")) { /* boolean shorthand: hosts = no */
        if (parse_bool(v, &b) != 0) return fail(err, errlen, "hosts: '%s' is not yes or no", v);
        if (!b) {
            free(c->hosts_file);
            c->hosts_file = NULL;
            c->hosts_file_explicit = false;
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
    if (!strcmp(key, "list-url")) {
        char url[2048], path[2048], extra[2];
        if (sscanf(v, "%2047s %2047s %1s", url, path, extra) != 2 ||
            (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))
            return fail(err, errlen, "list-url: '%s' is not 'http(s)://URL PATH'", v);
        lh_list_url *l = realloc(c->list_urls, (c->nlist_urls + 1) * sizeof *l);
        if (!l) return fail(err, errlen, "out of memory");
        c->list_urls = l;
        if (!(l[c->nlist_urls].url = strdup(url)) || !(l[c->nlist_urls].path = strdup(path)))
            return fail(err, errlen, "out of memory");
        c->nlist_urls++;
        return 0;
    }
    if (!strcmp(key, "user")) {
        if (!*v) return fail(err, errlen, "user: needs a user name");
        return set_string(&c->user, v) ? fail(err, errlen, "out of memory") : 0;
    }
    if (!strcmp(key, "allow-client")) {
        if (c->nallow_clients >= LH_ACL_MAX)
            return fail(err, errlen, "allow-client: at most %d networks", LH_ACL_MAX);
        if (parse_cidr(v, &c->allow_clients[c->nallow_clients]) != 0)
            return fail(err, errlen, "allow-client: '%s' is not ADDR[/PREFIX]", v);
        c->nallow_clients++;
        return 0;
    }
    if (!strcmp(key, "upstream")) return add_upstream(c, src, v, err, errlen);
    if (!strcmp(key, "tls-ca")) {
        if (!*v) return fail(err, errlen, "tls-ca: needs a file of PEM certificates");
        return set_string(&c->tls_ca, v) ? fail(err, errlen, "out of memory") : 0;
    }
    if (!strcmp(key, "tls-mode")) {
        if (strcmp(v, "strict") && strcmp(v, "opportunistic"))
            return fail(err, errlen,
                        "tls-mode: '%s' is not strict (encrypted and authenticated, or SERVFAIL) "
                        "or opportunistic (plain DNS when the encrypted try fails)",
                        v);
        c->tls_opportunistic = !strcmp(v, "opportunistic");
        return 0;
    }
    if (!strcmp(key, "fallback-upstream"))
        return add_addr(c->fallback, &c->nfallback, &c->fallback_src, src, key, v, err, errlen);
    if (!strcmp(key, "forward-zone")) return add_forward_zone(c, src, v, err, errlen);
    if (!strcmp(key, "resolv-conf")) {
        c->resolv_conf_explicit = true;
        return set_string(&c->resolv_conf, v) ? fail(err, errlen, "out of memory") : 0;
    }
    if (!strcmp(key, "control-socket") || !strcmp(key, "query-log")) {
        char **dst = key[0] == 'c' ? &c->control_socket : &c->query_log;
        if (!strcmp(v, "none")) {
            free(*dst);
            *dst = NULL;
            return 0;
        }
        if (!*v) return fail(err, errlen, "%s: needs a path or 'none'", key);
        if (key[0] == 'c' && v[0] != '/')
            return fail(err, errlen, "control-socket: '%s' is not an absolute path", v);
        return set_string(dst, v) ? fail(err, errlen, "out of memory") : 0;
    }
    if (!strcmp(key, "state-dir")) {
        if (!strcmp(v, "none")) {
            free(c->state_dir);
            c->state_dir = NULL;
            return 0;
        }
        if (v[0] != '/') return fail(err, errlen, "state-dir: '%s' is not an absolute path", v);
        return set_string(&c->state_dir, v) ? fail(err, errlen, "out of memory") : 0;
    }
    if (!strcmp(key, "control-group"))
        return set_string(&c->control_group, v) ? fail(err, errlen, "out of memory") : 0;
    if (!strcmp(key, "query-log-clients")) {
        static const char *const modes[] = {"yes", "no", "hash"}; /* enum lh_qlog_clients */
        for (int i = 0; i < 3; i++)
            if (!strcmp(v, modes[i])) {
                c->query_log_clients = i;
                return 0;
            }
        return fail(err, errlen, "query-log-clients: '%s' is not yes, no or hash", v);
    }
    if (!strcmp(key, "metrics")) {
        if (!strcmp(v, "none")) {
            c->has_metrics = false;
            return 0;
        }
        if (lh_addr_parse(v, 9153, &c->metrics) != 0)
            return fail(err, errlen, "metrics: '%s' is not ADDR[:PORT] (e.g. 127.0.0.1:9153)", v);
        c->has_metrics = true;
        return 0;
    }
    if (!strcmp(key, "probe-zone") || !strcmp(key, "leak-zone")) {
        lh_name zn;
        if (lh_name_from_text(v, strlen(v), &zn) != 0 || zn.nlabels == 0)
            return fail(err, errlen, "%s: '%s' is not a domain name", key, v);
        return set_string(key[0] == 'p' ? &c->probe_zone : &c->leak_zone, v)
                   ? fail(err, errlen, "out of memory")
                   : 0;
    }
    if (!strcmp(key, "leak-ns-address")) {
        if (c->leak_ns_src != src) {
            c->nleak_ns = 0;
            c->leak_ns_src = src;
        }
        if (c->nleak_ns >= 2) return fail(err, errlen, "leak-ns-address: at most two addresses");
        if (lh_addr_parse(v, 53, &c->leak_ns[c->nleak_ns]) != 0)
            return fail(err, errlen, "leak-ns-address: '%s' is not an IP address", v);
        c->nleak_ns++;
        return 0;
    }
    if (!strcmp(key, "upstream-0x20") || !strcmp(key, "serve-stale") ||
        !strcmp(key, "rebind-protection")) {
        if (parse_bool(v, &b) != 0) return fail(err, errlen, "%s: '%s' is not yes or no", key, v);
        *(key[0] == 'u'   ? &c->upstream_0x20
          : key[0] == 's' ? &c->serve_stale
                          : &c->rebind_protection) = b;
        return 0;
    }
    if (!strcmp(key, "rebind-allow")) {
        char **l = realloc(c->rebind_allow, (c->nrebind_allow + 1) * sizeof *l);
        if (!l || !(l[c->nrebind_allow] = strdup(v))) return fail(err, errlen, "out of memory");
        c->rebind_allow = l;
        c->nrebind_allow++;
        return 0;
    }
    if (!strcmp(key, "cache-size")) {
        if (parse_size(v, &c->cache_size))
            return fail(err, errlen, "cache-size: '%s' is not a size like 16M, 512K or 0", v);
        return 0;
    }
    static const struct {
        const char *key;
        size_t off;
        unsigned long min, max;
        const char *unit;
    } nums[] = {
        {"upstream-timeout", offsetof(lh_config, upstream_timeout_ms), 50, 30000, "milliseconds"},
        {"query-budget", offsetof(lh_config, query_budget_ms), 100, 60000, "milliseconds"},
        {"upstream-max-inflight", offsetof(lh_config, upstream_max_inflight), 1, 65536, "queries"},
        {"cache-min-ttl", offsetof(lh_config, cache_min_ttl), 0, 86400, "seconds"},
        {"cache-max-ttl", offsetof(lh_config, cache_max_ttl), 1, 604800, "seconds"},
        {"cache-max-negative-ttl", offsetof(lh_config, cache_max_negative_ttl), 0, 86400,
         "seconds"},
        {"stale-ttl", offsetof(lh_config, stale_ttl), 1, 3600, "seconds"},
        {"stale-window", offsetof(lh_config, stale_window), 0, 604800, "seconds"},
        {"rate-limit", offsetof(lh_config, rate_limit), 0, 1000000, "answers"},
        {"threads", offsetof(lh_config, threads), 1, 64, "event loops"},
        {"leak-retention", offsetof(lh_config, leak_retention), 10, 86400, "seconds"},
    };
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
        if (strcmp(key, nums[i].key)) continue;
        if (parse_uint(v, nums[i].min, nums[i].max, &n))
            return fail(err, errlen, "%s: '%s' is not a number of %s from %lu to %lu", key, v,
                        nums[i].unit, nums[i].min, nums[i].max);
        *(uint32_t *)((char *)c + nums[i].off) = (uint32_t)n;
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
    if (!strcmp(key, "http")) {
        if (!strcmp(v, "none")) {
            c->has_http = false;
            return 0;
        }
        if (lh_addr_parse(v, LH_DEFAULT_HTTP_PORT, &c->http) != 0)
            return fail(err, errlen, "http: '%s' is not ADDR[:PORT] (e.g. 127.0.0.1:%d)", v,
                        LH_DEFAULT_HTTP_PORT);
        if (!lh_addr_is_loopback(&c->http.sa))
            return fail(err, errlen,
                        "http: '%s' is not a loopback address: the dashboard is for this machine "
                        "only (reach it from elsewhere through an SSH tunnel)",
                        v);
        c->has_http = true;
        return 0;
    }
    if (!strcmp(key, "recent-queries")) {
        if (parse_uint(v, 0, 1000000, &n))
            return fail(err, errlen, "recent-queries: '%s' is not a number from 0 to 1000000", v);
        c->recent_queries = (int)n;
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
    if (!f) {
        fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -2;
    }
    int rc = lh_config_load_stream(c, f, path, err, errlen);
    fclose(f);
    if (rc == 0 && set_string(&c->config_file, path) != 0) rc = fail(err, errlen, "out of memory");
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
        /* A comment starts with '#' at the line's start or after a blank: "tls://ADDR#NAME"
         * and "ADDR@853#NAME" keep their '#'. */
        for (char *hash = line; (hash = strchr(hash, '#')); hash++)
            if (hash == line || hash[-1] == ' ' || hash[-1] == '\t') {
                *hash = 0;
                break;
            }
        char *s = trim(line);
        if (!*s) continue;
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
        c->set_line[lh_setting_index(key)] = (uint16_t)(lineno > UINT16_MAX ? UINT16_MAX : lineno);
    }
    if (rc == 0 && ferror(f)) rc = fail(err, errlen, "%s: read error: %s", path, strerror(errno));
    return rc;
}
