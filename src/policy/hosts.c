/* hosts.c - hosts file loading. Runs at start-up and on reload (off the event loop). */
#include "loophole/hosts.h"
#include "loophole/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One (entry, address) pair read from the file, before grouping. */
typedef struct pair {
    uint32_t entry;
    uint32_t seq; /* keeps file order among equal entries */
    uint8_t family;
    uint8_t addr[16];
} pair;

static int cmp_pair(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->entry != y->entry) return x->entry < y->entry ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int lh_reverse_name(int family, const uint8_t *addr, lh_name *out)
{
    char text[80];
    size_t o = 0;
    static const char hex[] = "0123456789abcdef";
    if (family == AF_INET) {
        o = (size_t)snprintf(text, sizeof text, "%u.%u.%u.%u.in-addr.arpa", addr[3], addr[2],
                             addr[1], addr[0]);
    } else {
        for (int i = 15; i >= 0; i--) {
            text[o++] = hex[addr[i] & 0xf];
            text[o++] = '.';
            text[o++] = hex[addr[i] >> 4];
            text[o++] = '.';
        }
        memcpy(text + o, "ip6.arpa", 8);
        o += 8;
    }
    return lh_name_from_text(text, o, out);
}

static bool in_localhost_zone(const lh_name *n)
{
    static const uint8_t lh[] = "\x09localhost";
    const uint8_t *last = n->wire + n->label_off[n->nlabels - 1];
    return memcmp(last, lh, sizeof lh) == 0; /* includes the root byte */
}

int lh_hosts_load(lh_hosts *h, const char *path, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open hosts file: %s", path, strerror(e));
        return e == ENOENT ? -ENOENT : -1;
    }
    int rc = lh_hosts_load_stream(h, f, path, err, errlen);
    fclose(f);
    return rc;
}

/* The entry of name `n`, made on first sight (its wire name appended to h->names). Returns
 * its index, or -1 when out of memory. */
static int64_t entry_for(lh_hosts *h, const lh_name *n, size_t *cap_entries, size_t *cap_names)
{
    uint64_t hashes[LH_LABELS_MAX];
    lh_name_hashes(n, hashes);
    bool created;
    uint32_t *v = lh_nameset_upsert(&h->by_name, n, 0, hashes[0], &created);
    if (!v) return -1;
    if (!created) return *v;
    if (h->nentries == *cap_entries) {
        *cap_entries = *cap_entries ? *cap_entries * 2 : 16;
        void *e = realloc(h->entries, *cap_entries * sizeof *h->entries);
        if (!e) return -1;
        h->entries = e;
    }
    if (h->names_len + n->len > *cap_names) {
        *cap_names = (*cap_names + n->len) * 2;
        void *nm = realloc(h->names, *cap_names);
        if (!nm) return -1;
        h->names = nm;
    }
    *v = (uint32_t)h->nentries;
    h->entries[h->nentries] = (lh_hosts_entry){.name_off = (uint32_t)h->names_len};
    memcpy(h->names + h->names_len, n->wire, n->len);
    h->names_len += n->len;
    return (int64_t)h->nentries++;
}

/* Groups the (entry, address) pairs into each entry's address runs, in file order, without
 * duplicates. -1 when out of memory. */
static int group_addresses(lh_hosts *h, pair *pairs, size_t npairs)
{
    if (npairs) qsort(pairs, npairs, sizeof *pairs, cmp_pair);
    h->addrs4 = malloc(npairs * 4 + 1);
    h->addrs6 = malloc(npairs * 16 + 1);
    if (!h->addrs4 || !h->addrs6) return -1;
    size_t n4 = 0, n6 = 0;
    for (size_t i = 0; i < npairs; i++) {
        lh_hosts_entry *e = &h->entries[pairs[i].entry];
        if (i == 0 || pairs[i - 1].entry != pairs[i].entry) {
            e->v4_off = (uint32_t)n4;
            e->v6_off = (uint32_t)n6;
        }
        bool v4 = pairs[i].family == AF_INET;
        size_t alen = v4 ? 4 : 16;
        uint8_t *base = v4 ? h->addrs4 + (size_t)e->v4_off * 4 : h->addrs6 + (size_t)e->v6_off * 16;
        unsigned have = v4 ? e->n4 : e->n6, k;
        for (k = 0; k < have && memcmp(base + k * alen, pairs[i].addr, alen); k++)
            ;
        if (k < have || have == UINT16_MAX) continue;
        memcpy(base + have * alen, pairs[i].addr, alen);
        if (v4) {
            e->n4++;
            n4++;
        } else {
            e->n6++;
            n6++;
        }
    }
    return 0;
}

int lh_hosts_load_stream(lh_hosts *h, FILE *f, const char *path, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    pair *pairs = NULL;
    size_t npairs = 0, cap_pairs = 0, cap_entries = 0, cap_names = 0;
    int rc = -1;
    if (lh_nameset_init(&h->by_name, 64) || lh_nameset_init(&h->by_address, 64)) goto oom;

    char line[4096];
    unsigned lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
        if (!tok) continue;
        pair p = {0};
        char *zone = strchr(tok, '%'); /* fe80::1%eth0: the scope does not matter here */
        if (zone) *zone = 0;
        if (inet_pton(AF_INET, tok, p.addr) == 1) {
            p.family = AF_INET;
        } else if (inet_pton(AF_INET6, tok, p.addr) == 1) {
            p.family = AF_INET6;
        } else {
            lh_warn("%s:%u: '%s' is not an IPv4 or IPv6 address; line skipped", path, lineno, tok);
            h->skipped++;
            continue;
        }
        lh_name rev;
        lh_reverse_name(p.family, p.addr, &rev);
        uint64_t rev_hash[LH_LABELS_MAX];
        lh_name_hashes(&rev, rev_hash);
        while ((tok = strtok_r(NULL, " \t\r\n", &save))) {
            lh_name n;
            if (lh_name_from_text(tok, strlen(tok), &n) != 0 || n.nlabels == 0) {
                lh_warn("%s:%u: '%s' is not a valid host name; skipped", path, lineno, tok);
                h->skipped++;
                continue;
            }
            if (in_localhost_zone(&n)) continue;
            int64_t entry = entry_for(h, &n, &cap_entries, &cap_names);
            if (entry < 0) goto oom;
            p.entry = (uint32_t)entry;
            bool created;
            uint32_t *r = lh_nameset_upsert(&h->by_address, &rev, 0, rev_hash[0], &created);
            if (!r) goto oom;
            if (created) /* the first name listed for an address is its canonical name */
                *r = p.entry;
            if (npairs == cap_pairs) {
                cap_pairs = cap_pairs ? cap_pairs * 2 : 32;
                void *np = realloc(pairs, cap_pairs * sizeof *pairs);
                if (!np) goto oom;
                pairs = np;
            }
            p.seq = (uint32_t)npairs;
            pairs[npairs++] = p;
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        goto out;
    }
    if (group_addresses(h, pairs, npairs) != 0) goto oom;
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "%s: out of memory", path);
out:
    free(pairs);
    if (rc != 0) lh_hosts_free(h);
    return rc;
}

void lh_hosts_free(lh_hosts *h)
{
    lh_nameset_free(&h->by_name);
    lh_nameset_free(&h->by_address);
    free(h->entries);
    free(h->addrs4);
    free(h->addrs6);
    free(h->names);
    memset(h, 0, sizeof *h);
}
