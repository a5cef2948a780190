/* config.c - settings from defaults, a `key = value` file and flags (see docs/configuration.md). */
#include "loophole/config.h"
#include "loophole/sbuf.h"
#include "loophole/upstream_addr.h"
#include "loophole/wire.h"

#include <arpa/inet.h>
#include <stddef.h>
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
    c->doh_idle_timeout_ms = 30000;
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

bool lh_config_client_allowed(const lh_config *c, const struct sockaddr *sa)
{
    return c->leak_server /* an authority answers all */ ||
           lh_acl_allows(c->allow_clients, c->nallow_clients, sa);
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

/* --- one setter per setting that is not a plain number or yes/no ------------------------- */

#define SETTER(name)                                                                               \
    static int name(lh_config *c, const lh_setting *s, enum lh_config_source src, const char *v,   \
                    char *err, size_t errlen)

SETTER(set_list)
{
    (void)src;
    return add_list(c, s->key[0] == 'a', v, err, errlen);
}

SETTER(set_block_mode)
{
    (void)s, (void)src;
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

SETTER(set_block_ip)
{
    (void)src;
    bool v6 = s->key[9] == '6';
    if (inet_pton(v6 ? AF_INET6 : AF_INET, v, v6 ? c->block_ipv6 : c->block_ipv4) != 1)
        return fail(err, errlen, "%s: '%s' is not an IPv%c address", s->key, v, v6 ? '6' : '4');
    *(v6 ? &c->has_block_ipv6 : &c->has_block_ipv4) = true;
    return 0;
}

SETTER(set_listen)
{
    (void)s;
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

SETTER(set_log_level)
{
    (void)s, (void)src;
    if (lh_log_level_parse(v, &c->log_level) != 0)
        return fail(err, errlen, "log-level: '%s' is not one of error, warn, info, debug", v);
    return 0;
}

static void no_hosts_file(lh_config *c)
{
    free(c->hosts_file);
    c->hosts_file = NULL;
    c->hosts_file_explicit = false;
}

SETTER(set_hosts_file)
{
    (void)s, (void)src;
    if (!strcmp(v, "none")) {
        no_hosts_file(c);
        return 0;
    }
    if (!*v) return fail(err, errlen, "hosts-file: needs a path or 'none'");
    c->hosts_file_explicit = true;
    return set_string(&c->hosts_file, v) ? fail(err, errlen, "out of memory") : 0;
}

SETTER(set_hosts) /* boolean shorthand: hosts = no */
{
    (void)s, (void)src;
    bool b;
    if (parse_bool(v, &b) != 0) return fail(err, errlen, "hosts: '%s' is not yes or no", v);
    if (!b)
        no_hosts_file(c);
    else if (!c->hosts_file && set_string(&c->hosts_file, LH_DEFAULT_HOSTS_FILE))
        return fail(err, errlen, "out of memory");
    return 0;
}

SETTER(set_list_url)
{
    (void)s, (void)src;
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

/* A string setting that must not be empty: user, tls-ca. */
SETTER(set_nonempty)
{
    (void)src;
    char **slot = (char **)((char *)c + s->off);
    if (!*v) return fail(err, errlen, "%s: needs %s", s->key, s->what);
    return set_string(slot, v) ? fail(err, errlen, "out of memory") : 0;
}

/* A string setting taken as it is: resolv-conf (then named on purpose), control-group. */
SETTER(set_plain)
{
    (void)src;
    if (!strcmp(s->key, "resolv-conf")) c->resolv_conf_explicit = true;
    return set_string((char **)((char *)c + s->off), v) ? fail(err, errlen, "out of memory") : 0;
}

SETTER(set_allow_client)
{
    (void)s, (void)src;
    if (c->nallow_clients >= LH_ACL_MAX)
        return fail(err, errlen, "allow-client: at most %d networks", LH_ACL_MAX);
    if (lh_cidr_parse(v, &c->allow_clients[c->nallow_clients]) != 0)
        return fail(err, errlen, "allow-client: '%s' is not ADDR[/PREFIX]", v);
    c->nallow_clients++;
    return 0;
}

SETTER(set_upstream)
{
    (void)s;
    return add_upstream(c, src, v, err, errlen);
}

SETTER(set_fallback)
{
    return add_addr(c->fallback, &c->nfallback, &c->fallback_src, src, s->key, v, err, errlen);
}

SETTER(set_forward_zone)
{
    (void)s;
    return add_forward_zone(c, src, v, err, errlen);
}

/* A path or 'none': control-socket (absolute), query-log, state-dir (absolute). */
SETTER(set_path_or_none)
{
    (void)src;
    char **dst = (char **)((char *)c + s->off);
    if (!strcmp(v, "none")) {
        free(*dst);
        *dst = NULL;
        return 0;
    }
    bool state = !strcmp(s->key, "state-dir");
    if (!*v && !state) return fail(err, errlen, "%s: needs a path or 'none'", s->key);
    if ((state || s->key[0] == 'c') && v[0] != '/')
        return fail(err, errlen, "%s: '%s' is not an absolute path", s->key, v);
    return set_string(dst, v) ? fail(err, errlen, "out of memory") : 0;
}

SETTER(set_query_log_clients)
{
    (void)s, (void)src;
    static const char *const modes[] = {"yes", "no", "hash"}; /* enum lh_qlog_clients */
    for (int i = 0; i < 3; i++)
        if (!strcmp(v, modes[i])) {
            c->query_log_clients = i;
            return 0;
        }
    return fail(err, errlen, "query-log-clients: '%s' is not yes, no or hash", v);
}

SETTER(set_metrics)
{
    (void)s, (void)src;
    if (!strcmp(v, "none")) {
        c->has_metrics = false;
        return 0;
    }
    if (lh_addr_parse(v, 9153, &c->metrics) != 0)
        return fail(err, errlen, "metrics: '%s' is not ADDR[:PORT] (e.g. 127.0.0.1:9153)", v);
    c->has_metrics = true;
    return 0;
}

SETTER(set_zone)
{
    (void)src;
    lh_name zn;
    if (lh_name_from_text(v, strlen(v), &zn) != 0 || zn.nlabels == 0)
        return fail(err, errlen, "%s: '%s' is not a domain name", s->key, v);
    return set_string((char **)((char *)c + s->off), v) ? fail(err, errlen, "out of memory") : 0;
}

SETTER(set_leak_ns)
{
    (void)s;
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

SETTER(set_rebind_allow)
{
    (void)s, (void)src;
    char **l = realloc(c->rebind_allow, (c->nrebind_allow + 1) * sizeof *l);
    if (!l || !(l[c->nrebind_allow] = strdup(v))) return fail(err, errlen, "out of memory");
    c->rebind_allow = l;
    c->nrebind_allow++;
    return 0;
}

SETTER(set_cache_size)
{
    (void)s, (void)src;
    if (parse_size(v, &c->cache_size))
        return fail(err, errlen, "cache-size: '%s' is not a size like 16M, 512K or 0", v);
    return 0;
}

SETTER(set_http)
{
    (void)s, (void)src;
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

SETTER(set_tls_mode)
{
    (void)s, (void)src;
    if (strcmp(v, "strict") && strcmp(v, "opportunistic"))
        return fail(err, errlen,
                    "tls-mode: '%s' is not strict (encrypted and authenticated, or SERVFAIL) "
                    "or opportunistic (plain DNS when the encrypted try fails)",
                    v);
    c->tls_opportunistic = !strcmp(v, "opportunistic");
    return 0;
}

SETTER(set_dnssec)
{
    return lh_config_set_dnssec(c, src, s->key, v, err, errlen);
}

/* --- the table --------------------------------------------------------------------------- */

#define FIELD(f) .off = offsetof(lh_config, f), .size = sizeof(((lh_config *)0)->f)
#define UINT(f, lo, hi, phrase)                                                                    \
    .type = LH_SETTING_UINT, FIELD(f), .min = lo, .max = hi, .what = phrase
#define BOOL(f) .type = LH_SETTING_BOOL, FIELD(f)
#define FN(fn) .type = LH_SETTING_FN, .set = fn
#define DOC(anchor) .doc = "docs/" anchor

const lh_setting lh_settings[] = {
    {"listen", LH_DEFAULT_LISTEN, FN(set_listen), .flag = "listen", .arg = "ADDR[:PORT]",
     .help = "listen on UDP and TCP; repeatable; IPv6 as [::1]:53 (default " LH_DEFAULT_LISTEN ")",
     DOC("configuration.md#settings")},
    {"log-level", "info", FN(set_log_level), .flag = "log-level", .arg = "LEVEL",
     .help = "error, warn, info (default) or debug", DOC("configuration.md#settings")},
    {"hosts-file", LH_DEFAULT_HOSTS_FILE, FN(set_hosts_file), .flag = "hosts-file", .arg = "FILE",
     .help = "answer names from a hosts file (default " LH_DEFAULT_HOSTS_FILE
             ", which may be missing; a named FILE must exist)",
     DOC("configuration.md#settings")},
    {"hosts", NULL, FN(set_hosts), .flag = "no-hosts", .flag_value = "no",
     .help = "do not read a hosts file", DOC("configuration.md#settings")},
    {"local-ttl", "60", UINT(local_ttl, 0, 86400, "a number of seconds up to 86400"),
     .flag = "local-ttl", .arg = "SECONDS", .help = "TTL of locally answered records (default 60)",
     DOC("configuration.md#settings")},
    {"edns-udp-size", "1232", UINT(edns_udp_size, 512, 4096, "a number from 512 to 4096"),
     .flag = "edns-udp-size", .arg = "BYTES",
     .help = "largest UDP answer sent, 512-4096 (default 1232)", DOC("configuration.md#settings")},
    {"tcp-idle-timeout", "10000",
     UINT(tcp_idle_timeout_ms, 100, 600000, "a number of milliseconds from 100 to 600000"),
     .flag = "tcp-idle-timeout", .arg = "MS",
     .help = "close TCP connections without a complete query for MS milliseconds (default "
             "10000); empty frames do not count",
     DOC("configuration.md#settings")},
    {"tcp-max-connections", "1000",
     UINT(tcp_max_connections, 1, 100000, "a number from 1 to 100000"),
     .flag = "tcp-max-connections", .arg = "N",
     .help = "concurrent TCP connections (default 1000); one client address holds at most a "
             "quarter; when full, the one idle longest is closed for a new one",
     DOC("configuration.md#settings")},
    {"threads", "1", UINT(threads, 1, 64, "a number of event loops from 1 to 64"),
     .flag = "threads", .arg = "N",
     .help = "event loops, one thread each, sharing the listen addresses (SO_REUSEPORT) and the "
             "lists; e.g. the number of cores (default 1)",
     DOC("configuration.md#settings")},
    {"rate-limit", "200", UINT(rate_limit, 0, 1000000, "a number of answers from 0 to 1000000"),
     .flag = "rate-limit", .arg = "N",
     .help = "UDP answers a second per client network (/24, /56) for non-loopback clients; "
             "beyond: dropped, every 2nd sent truncated (default 200; 0 turns it off). "
             "leak-server: queries a second per source address",
     DOC("configuration.md#settings")},
    {"allow-client", NULL, FN(set_allow_client), .flag = "allow-client", .arg = "ADDR[/PREFIX]",
     .help = "answer this client network too (loopback always); required to listen on a "
             "non-loopback address; repeatable",
     DOC("configuration.md#settings")},
    {"user", LH_DEFAULT_USER, FN(set_nonempty), FIELD(user), .what = "a user name", .flag = "user",
     .arg = "NAME", .help = "started as root: bind, then run as NAME (default " LH_DEFAULT_USER ")",
     DOC("configuration.md#settings")},
    {"allow-root", "no", BOOL(allow_root), .flag = "allow-root", .flag_value = "yes",
     .help = "keep running as root (not recommended)", DOC("configuration.md#settings")},
    {"blocklist", NULL, FN(set_list), .flag = "blocklist", .arg = "PATH",
     .help = "block the names in a list file or a folder of them; repeatable; format detected "
             "per line",
     DOC("blocklists.md")},
    {"allowlist", NULL, FN(set_list), .flag = "allowlist", .arg = "PATH",
     .help = "never block these names (exceptions); repeatable", DOC("blocklists.md")},
    {"list-url", NULL, FN(set_list_url), .flag = "list-url", .arg = "\"URL PATH\"",
     .help = "for 'lists update': download URL to PATH; repeatable",
     DOC("blocklists.md#keeping-lists-up-to-date-loophole-lists-update")},
    {"default-blocklist", "yes", BOOL(default_blocklist), .flag = "no-default-blocklist",
     .flag_value = "no", .help = "do not use the built-in list (blocklists/default.list)",
     DOC("configuration.md#settings")},
    {"block-mode", "loopback", FN(set_block_mode), .flag = "block-mode", .arg = "MODE",
     .help = "loopback (default: A 127.0.0.1, AAAA ::1), null, nxdomain, nodata, refused or "
             "custom",
     DOC("configuration.md#settings")},
    {"block-ipv4", NULL, FN(set_block_ip), .flag = "block-ipv4", .arg = "ADDR",
     .help = "the A answer for block-mode custom", DOC("configuration.md#settings")},
    {"block-ipv6", NULL, FN(set_block_ip), .flag = "block-ipv6", .arg = "ADDR",
     .help = "the AAAA answer for block-mode custom", DOC("configuration.md#settings")},
    {"block-ttl", "10", UINT(block_ttl, 0, 86400, "a number of seconds up to 86400"),
     .flag = "block-ttl", .arg = "SECONDS", .help = "TTL of blocked answers (default 10)",
     DOC("configuration.md#settings")},
    {"canary-names", "yes", BOOL(canary_names), .flag = "no-canary-names", .flag_value = "no",
     .help = "do not answer the DoH / Private Relay canary names",
     DOC("configuration.md#names-loophole-answers-itself")},
    {"upstream", NULL, FN(set_upstream), .flag = "upstream", .arg = "ADDR[:PORT]",
     .section = "Forwarding and cache",
     .help = "forward to this resolver; repeatable; default: the nameservers of --resolv-conf "
             "minus loophole's own address. tls://ADDR[:PORT]#NAME[?pin-sha256=BASE64] is DNS "
             "over TLS (port 853), the certificate checked against NAME; also ADDR@PORT#NAME. "
             "Strict: never plaintext. https://HOST[:PORT][/PATH]@ADDR[?pin-sha256=BASE64&"
             "method=get] is DNS over HTTPS (RFC 8484, HTTP/2, POST by default) to HOST at "
             "ADDR, never looked up (ADDR may be left out only when HOST is an IP); e.g. "
             "https://dns.google/dns-query@8.8.8.8",
     DOC("forwarding.md")},
    {"forward-zone", NULL, FN(set_forward_zone), .flag = "forward-zone",
     .arg = "ZONE=ADDR[:PORT][,ADDR...]",
     .help = "send ZONE and below to its own upstreams; repeatable", DOC("forwarding.md")},
    {"tls-ca", NULL, FN(set_nonempty), FIELD(tls_ca), .what = "a file of PEM certificates",
     .flag = "tls-ca", .arg = "FILE",
     .help = "trust this CA file for DNS over TLS/HTTPS instead of the system store "
             "(/etc/ssl/certs)",
     DOC("forwarding.md#dns-over-tls")},
    {"tls-mode", "strict", FN(set_tls_mode), .flag = "tls-mode", .arg = "strict|opportunistic",
     .help = "strict (default): a failed encrypted upstream gives SERVFAIL; opportunistic: plain "
             "DNS to the same address instead (not private: stats and leak-check say so)",
     DOC("forwarding.md")},
    {"resolv-conf", LH_DEFAULT_RESOLV_CONF, FN(set_plain), FIELD(resolv_conf),
     .flag = "resolv-conf", .arg = "FILE",
     .help = "where default upstreams come from (" LH_DEFAULT_RESOLV_CONF ")",
     DOC("forwarding.md")},
    {"fallback-upstream", LH_DEFAULT_FALLBACK, FN(set_fallback), .flag = "fallback-upstream",
     .arg = "ADDR",
     .help =
         "used when resolv.conf names none but loophole; repeatable (default " LH_DEFAULT_FALLBACK
         ")",
     DOC("forwarding.md")},
    {"upstream-timeout", "1500",
     UINT(upstream_timeout_ms, 50, 30000, "a number of milliseconds from 50 to 30000"),
     .flag = "upstream-timeout", .arg = "MS", .help = "one try at one upstream (default 1500)",
     DOC("forwarding.md")},
    {"doh-idle-timeout", "30000",
     UINT(doh_idle_timeout_ms, 100, 600000, "a number of milliseconds from 100 to 600000"),
     .flag = "doh-idle-timeout", .arg = "MS",
     .help = "close every DNS over HTTPS connection when nothing has been in flight for MS "
             "milliseconds (default 30000)",
     DOC("forwarding.md#dns-over-https")},
    {"query-budget", "4000",
     UINT(query_budget_ms, 100, 60000, "a number of milliseconds from 100 to 60000"),
     .flag = "query-budget", .arg = "MS",
     .help = "all tries; then a stale answer or SERVFAIL (default 4000)", DOC("forwarding.md")},
    {"upstream-max-inflight", "1024",
     UINT(upstream_max_inflight, 1, 65536, "a number of queries from 1 to 65536"),
     .flag = "upstream-max-inflight", .arg = "N",
     .help = "upstream queries at once; beyond: SERVFAIL (default 1024)", DOC("forwarding.md")},
    {"upstream-0x20", "yes", BOOL(upstream_0x20), .flag = "no-upstream-0x20", .flag_value = "no",
     .help = "do not randomise the case of upstream questions", DOC("forwarding.md")},
    {"rebind-protection", "no", BOOL(rebind_protection), .flag = "rebind-protection",
     .flag_value = "yes",
     .help = "refuse answers with private or loopback addresses for names outside forward zones "
             "(off by default)",
     DOC("forwarding.md#dns-rebinding-protection")},
    {"rebind-allow", NULL, FN(set_rebind_allow), .flag = "rebind-allow", .arg = "DOMAIN",
     .help = "a domain (and below) that may resolve privately; repeatable",
     DOC("forwarding.md#dns-rebinding-protection")},
    {"cache-size", "16M", FN(set_cache_size), .flag = "cache-size", .arg = "BYTES",
     .help = "cache memory, e.g. 16M (default); 0 turns it off", DOC("forwarding.md#the-cache")},
    {"cache-min-ttl", "0", UINT(cache_min_ttl, 0, 86400, "a number of seconds from 0 to 86400"),
     .flag = "cache-min-ttl", .arg = "SECONDS", .help = "TTLs at least (default 0)",
     DOC("forwarding.md#the-cache")},
    {"cache-max-ttl", "86400",
     UINT(cache_max_ttl, 1, 604800, "a number of seconds from 1 to 604800"),
     .flag = "cache-max-ttl", .arg = "SECONDS", .help = "TTLs at most (default 86400)",
     DOC("forwarding.md#the-cache")},
    {"cache-max-negative-ttl", "3600",
     UINT(cache_max_negative_ttl, 0, 86400, "a number of seconds from 0 to 86400"),
     .flag = "cache-max-negative-ttl", .arg = "SECONDS",
     .help = "NXDOMAIN/NODATA at most (default 3600)", DOC("forwarding.md#the-cache")},
    {"serve-stale", "yes", BOOL(serve_stale), .flag = "no-serve-stale", .flag_value = "no",
     .help = "never answer from expired entries when upstreams fail",
     DOC("forwarding.md#the-cache")},
    {"stale-ttl", "30", UINT(stale_ttl, 1, 3600, "a number of seconds from 1 to 3600"),
     .flag = "stale-ttl", .arg = "SECONDS", .help = "TTL of stale answers (default 30)",
     DOC("forwarding.md#the-cache")},
    {"stale-window", "86400", UINT(stale_window, 0, 604800, "a number of seconds from 0 to 604800"),
     .flag = "stale-window", .arg = "SECONDS",
     .help = "how long past expiry entries may be served (default 86400)",
     DOC("forwarding.md#the-cache")},
    {"control-socket", LH_DEFAULT_CONTROL_SOCKET, FN(set_path_or_none), FIELD(control_socket),
     .flag = "control-socket", .arg = "PATH", .section = "Observability",
     .help = "unix socket for stats/reload/cache flush/lists/leak-check; 'none' turns it off "
             "(default " LH_DEFAULT_CONTROL_SOCKET ")",
     DOC("observability.md")},
    {"state-dir", LH_DEFAULT_STATE_DIR, FN(set_path_or_none), FIELD(state_dir), .flag = "state-dir",
     .arg = "DIR",
     .help = "where the compiled list snapshot is kept (big lists are built into it on disk), "
             "so that a restart maps big lists instead of parsing them, and the runtime rules "
             "(loophole allow/block) (default " LH_DEFAULT_STATE_DIR "; 'none' turns both off, "
             "and big lists are built in $TMPDIR)",
     DOC("configuration.md#settings")},
    {"control-group", NULL, FN(set_plain), FIELD(control_group), .flag = "control-group",
     .arg = "GROUP", .help = "this group may use the control socket too (default: root only)",
     DOC("observability.md")},
    {"metrics", NULL, FN(set_metrics), .flag = "metrics", .arg = "ADDR[:PORT]",
     .help = "serve Prometheus metrics at http://ADDR:PORT/metrics (off)", DOC("observability.md")},
    {"query-log", NULL, FN(set_path_or_none), FIELD(query_log), .flag = "query-log", .arg = "PATH",
     .help = "JSON lines, one per answered query, to PATH or 'stdout' (off); SIGUSR1 reopens "
             "the file",
     DOC("observability.md")},
    {"query-log-clients", "yes", FN(set_query_log_clients), .flag = "query-log-clients",
     .arg = "MODE",
     .help = "yes (the client address, default), no, or hash; also how 'tail' and the "
             "dashboard show clients",
     DOC("observability.md")},
    {"http", NULL, FN(set_http), .flag = "http", .arg = "ADDR[:PORT]",
     .help = "serve the dashboard at http://ADDR:PORT/ (loopback only; port 5380 if none; off by "
             "default: docs/dashboard.md)",
     DOC("dashboard.md")},
    {"recent-queries", NULL, UINT(recent_queries, 0, 1000000, "a number from 0 to 1000000"),
     .flag = "recent-queries", .arg = "N",
     .help = "keep the last N queries of each loop in memory for 'tail' and the dashboard "
             "(default 1000 with --http, else 0: off)",
     DOC("dashboard.md")},
    {"probe-zone", NULL, FN(set_zone), FIELD(probe_zone), .flag = "probe-zone", .arg = "ZONE",
     .section = "Leak check and leak server",
     .help = "leak-check: also probe the zone of a leak server, and test whether something on "
             "the path intercepts port 53",
     DOC("leak-check.md")},
    {"leak-zone", NULL, FN(set_zone), FIELD(leak_zone), .flag = "zone", .arg = "ZONE",
     .help = "leak-server: the zone to serve", DOC("leak-check.md")},
    {"leak-ns-address", NULL, FN(set_leak_ns), .flag = "ns-address", .arg = "ADDR",
     .help = "leak-server: address of ns1.ZONE; repeatable (v4, v6)", DOC("leak-check.md")},
    {"leak-retention", "600",
     UINT(leak_retention, 10, 86400, "a number of seconds from 10 to 86400"), .flag = "retention",
     .arg = "SECONDS",
     .help = "leak-server: how long resolvers are remembered per label (default 600)",
     DOC("leak-check.md")},
    {"dnssec", "process", FN(set_dnssec), .flag = "dnssec", .arg = "MODE",
     .section = "DNSSEC (docs/dnssec.md)",
     .help = "off (clear AD), process (default: keep AD only from a loopback, DoT or DoH "
             "upstream), validate (loophole validates: SERVFAIL + EDE for bogus answers) or "
             "allow-downgrade (validate; on a path that strips DNSSEC, unsigned answers pass as "
             "insecure except in zones seen signed)",
     DOC("dnssec.md")},
    {"trust-anchor", NULL, FN(set_dnssec), .flag = "trust-anchor", .arg = "FILE",
     .help = "DS or DNSKEY records to trust; repeatable (default /usr/share/dns/root.key, from "
             "dns-root-data)",
     DOC("dnssec.md")},
    {"domain-insecure", NULL, FN(set_dnssec), .flag = "domain-insecure", .arg = "NAME",
     .help = "a negative trust anchor: NAME and below are not validated; repeatable",
     DOC("dnssec.md")},
};
const unsigned lh_nsettings = sizeof lh_settings / sizeof *lh_settings;
_Static_assert(sizeof lh_settings / sizeof *lh_settings <= LH_SETTINGS_MAX, "LH_SETTINGS_MAX");

int lh_setting_index(const char *key)
{
    for (unsigned i = 0; i < lh_nsettings; i++)
        if (!strcmp(lh_settings[i].key, key)) return (int)i;
    return -1;
}

int lh_setting_flag_index(const char *flag)
{
    for (unsigned i = 0; i < lh_nsettings; i++)
        if (lh_settings[i].flag && !strcmp(lh_settings[i].flag, flag)) return (int)i;
    return -1;
}

/* Applies `v` to setting `s` by its type. */
static int setting_apply(lh_config *c, const lh_setting *s, enum lh_config_source src,
                         const char *v, char *err, size_t errlen)
{
    unsigned long n;
    bool b;
    switch (s->type) {
    case LH_SETTING_UINT:
        if (parse_uint(v, s->min, s->max, &n))
            return fail(err, errlen, "%s: '%s' is not %s", s->key, v, s->what);
        if (s->size == sizeof(uint16_t)) {
            uint16_t x = (uint16_t)n;
            memcpy((char *)c + s->off, &x, sizeof x);
        } else {
            uint32_t x = (uint32_t)n; /* also the int recent-queries: n is at most its max */
            memcpy((char *)c + s->off, &x, sizeof x);
        }
        return 0;
    case LH_SETTING_BOOL:
        if (parse_bool(v, &b) != 0)
            return fail(err, errlen, "%s: '%s' is not yes or no", s->key, v);
        *(bool *)((char *)c + s->off) = b;
        return 0;
    case LH_SETTING_FN:
        return s->set(c, s, src, v, err, errlen);
    }
    return fail(err, errlen, "unknown setting '%s'", s->key);
}

int lh_config_set(lh_config *c, enum lh_config_source src, const char *key, const char *v,
                  char *err, size_t errlen)
{
    int i = lh_setting_index(key); /* the table is the list of settings */
    if (i < 0) return fail(err, errlen, "unknown setting '%s'", key);
    if (setting_apply(c, &lh_settings[i], src, v, err, errlen) != 0) return -1;
    c->set_src[i] = (uint8_t)src;
    c->set_line[i] = 0; /* a file sets its line after this returns */
    return 0;
}

/* Appends `text` word-wrapped to lines of at most `width` columns (a longer word stands
 * alone), continuation lines indented by `indent`; the text starts after a space at `col`. */
static void wrap(lh_sbuf *b, const char *text, unsigned col, unsigned indent, unsigned width)
{
    bool fresh = false; /* at the indent of a new line: no space before the word */
    for (const char *p = text; *p;) {
        const char *e = strchr(p, ' ');
        if (!e) e = p + strlen(p);
        unsigned wl = (unsigned)(e - p);
        if (!fresh && col + 1 + wl > width) {
            lh_sbuf_printf(b, "\n%*s", (int)indent, "");
            col = indent;
            fresh = true;
        }
        if (!fresh) {
            lh_sbuf_putc(b, ' ');
            col++;
        }
        lh_sbuf_printf(b, "%.*s", (int)wl, p);
        col += wl;
        fresh = false;
        p = *e ? e + 1 : e;
    }
    lh_sbuf_putc(b, '\n');
}

void lh_settings_help(lh_sbuf *b)
{
    enum { INDENT = 31, WIDTH = 92 };
    for (unsigned i = 0; i < lh_nsettings; i++) {
        const lh_setting *s = &lh_settings[i];
        if (!s->flag) continue;
        if (s->section) lh_sbuf_printf(b, "\n%s:\n", s->section);
        char head[96];
        int n =
            snprintf(head, sizeof head, "  %s --%s%s%s", strcmp(s->flag, "listen") ? "   " : "-l,",
                     s->flag, s->arg ? " " : "", s->arg ? s->arg : "");
        if (n < 0) continue;
        if (n < INDENT - 1)
            lh_sbuf_printf(b, "%-*s", INDENT - 1, head);
        else /* a long flag: its help starts on the next line */
            lh_sbuf_printf(b, "%s\n%*s", head, INDENT - 1, "");
        wrap(b, s->help, INDENT - 1, INDENT, WIDTH);
    }
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
