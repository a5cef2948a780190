/* fuzz_config.c - the config file parser on arbitrary text. What it accepts must round-trip:
 * the same settings written back as plain "key = value" lines (comments and spacing gone) load
 * again to the same configuration, and validation of it never crashes. */
#include "loophole/config.h"

#include <stdlib.h>
#include <string.h>

/* The accepted lines, normalised: comment cut, key and value trimmed, written as key=value
 * (no blank before the value: a value that starts with '#', as in "key =#x", stays a value). */
static size_t normalise(const uint8_t *data, size_t size, char *out, size_t cap)
{
    size_t n = 0;
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        /* A comment starts at a '#' that begins the line or follows a blank (a '#' inside a
         * value is part of it: tls://ADDR#NAME). */
        const char *hash = NULL;
        for (const char *h = p; h < le && !hash; h++)
            if (*h == '#' && (h == p || h[-1] == ' ' || h[-1] == '\t')) hash = h;
        const char *e = hash ? hash : le;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        if (eq) {
            const char *ks = p, *ke = eq, *vs = eq + 1, *ve = e;
            while (ks < ke && (*ks == ' ' || *ks == '\t'))
                ks++;
            while (ke > ks && (ke[-1] == ' ' || ke[-1] == '\t'))
                ke--;
            while (vs < ve && (*vs == ' ' || *vs == '\t'))
                vs++;
            while (ve > vs && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r'))
                ve--;
            int w =
                snprintf(out + n, cap - n, "%.*s=%.*s\n", (int)(ke - ks), ks, (int)(ve - vs), vs);
            if (w < 0 || (size_t)w >= cap - n) return 0;
            n += (size_t)w;
        }
        p = le + 1;
    }
    return n;
}

#define SAME(f) (a->f == b->f)
static bool same_config(const lh_config *a, const lh_config *b)
{
    return SAME(nlisten) && !memcmp(a->listen, b->listen, sizeof a->listen) && SAME(log_level) &&
           SAME(edns_udp_size) && SAME(local_ttl) && SAME(tcp_idle_timeout_ms) &&
           SAME(tcp_max_connections) && SAME(threads) && SAME(rate_limit) && SAME(nlists) &&
           SAME(nupstreams) && SAME(nforward_zones) && SAME(block_mode) && SAME(block_ttl) &&
           SAME(upstream_timeout_ms) && SAME(query_budget_ms) && SAME(cache_size) &&
           SAME(cache_max_ttl) && SAME(nallow_clients) && SAME(serve_stale) &&
           (!a->hosts_file) == (!b->hosts_file) &&
           (!a->hosts_file || !strcmp(a->hosts_file, b->hosts_file)) && (!a->user) == (!b->user) &&
           (!a->user || !strcmp(a->user, b->user));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lh_config c, again;
    char err[LH_ERR_MAX];
    lh_config_defaults(&c);
    FILE *f = fmemopen((void *)data, size, "r");
    int rc = -1;
    if (f) {
        rc = lh_config_load_stream(&c, f, "fuzz.conf", err, sizeof err);
        fclose(f);
    }
    /* NUL bytes and over-long lines make the two readings differ by design: only plain text. */
    if (rc == 0 && !memchr(data, 0, size)) {
        lh_config_validate(&c, err, sizeof err);
        static char text[1 << 17];
        size_t n = normalise(data, size, text, sizeof text);
        lh_config_defaults(&again);
        FILE *g = n ? fmemopen(text, n, "r") : NULL;
        if (g) {
            if (lh_config_load_stream(&again, g, "fuzz-again.conf", err, sizeof err) != 0 ||
                !same_config(&c, &again))
                abort();
            fclose(g);
        }
        lh_config_free(&again);
    }
    lh_config_free(&c);
    return 0;
}
