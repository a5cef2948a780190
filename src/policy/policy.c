/* policy.c - built-in local zones, the hosts file, and the decision for one question.
 *
 * Order of precedence (first match wins):
 *   0. meta-query types (never forwarded)  -> REFUSED (AXFR, IXFR), NOTIMP (MAILA, MAILB),
 *                                             FORMERR (OPT, TSIG)
 *   1. class other than IN/ANY             -> REFUSED
 *   2. localhost. and below                 -> 127.0.0.1 / ::1, NODATA+SOA for other types
 *   3. 1.0.0.127.in-addr.arpa, ::1's name   -> PTR localhost.
 *   4. <nonce>.canary.loophole.test         -> A derived from the name (the leak check's)
 *   5. the hosts file (names and reverse)   -> its addresses / PTR
 *   6. canary names (DoH, Private Relay)    -> NXDOMAIN, or NODATA for resolver.arpa
 *   7. runtime rules, then block/allow lists -> the block mode's answer, EDE 15 (while
 *      blocking is paused, a block is forwarded instead)
 *   8. forward zones (longest wins)         -> forward to the zone's upstreams
 *   9. special-use zones (RFC 6761/6303/7686) -> NXDOMAIN+SOA (apex: SOA/NS, NODATA)
 *   10. everything else                      -> forward to the default upstreams */
#include "loophole/policy.h"
#include "loophole/canary.h"
#include "loophole/log.h"
#include "loophole/overlay.h"
#include "loophole/snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Values stored in the zones set. */
#define ZONE_LOCALHOST 1u   /* answers loopback addresses */
#define ZONE_NXDOMAIN 2u    /* locally served empty zone */
#define ZONE_LEAK_CANARY 3u /* the leak check's canary names */
#define ZONE_KIND_MASK 0xfu
#define ZONE_PTR_LOCALHOST 0x10u   /* this exact name has PTR localhost. */
#define ZONE_CANARY_NXDOMAIN 0x20u /* this exact name: NXDOMAIN (turns a bypass off) */
#define ZONE_CANARY_NODATA 0x40u   /* this exact name: NODATA */

static const uint8_t loopback4[4] = {127, 0, 0, 1};
static const uint8_t loopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

/* Zones answered NXDOMAIN locally so they never leak upstream. Documented in
 * docs/configuration.md ("Names loophole answers itself"). */
static const char *const special_zones[] = {
    "onion",   /* RFC 7686 */
    "invalid", /* RFC 6761 */
    "local",   /* RFC 6762: mDNS belongs on the link */
    /* RFC 6303 4.1-4.6: private, link-local, loopback, "this network", TEST-NETs, broadcast */
    "10.in-addr.arpa",
    "16.172.in-addr.arpa",
    "17.172.in-addr.arpa",
    "18.172.in-addr.arpa",
    "19.172.in-addr.arpa",
    "20.172.in-addr.arpa",
    "21.172.in-addr.arpa",
    "22.172.in-addr.arpa",
    "23.172.in-addr.arpa",
    "24.172.in-addr.arpa",
    "25.172.in-addr.arpa",
    "26.172.in-addr.arpa",
    "27.172.in-addr.arpa",
    "28.172.in-addr.arpa",
    "29.172.in-addr.arpa",
    "30.172.in-addr.arpa",
    "31.172.in-addr.arpa",
    "168.192.in-addr.arpa",
    "0.in-addr.arpa",
    "127.in-addr.arpa",
    "254.169.in-addr.arpa",
    "2.0.192.in-addr.arpa",
    "100.51.198.in-addr.arpa",
    "113.0.203.in-addr.arpa",
    "255.255.255.255.in-addr.arpa",
    /* RFC 6303 4.7-4.8: unspecified and loopback IPv6 addresses */
    "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
    /* RFC 6303 4.9-4.11 (fc00::/7 as a whole), fe80::/10, 2001:db8::/32 */
    "c.f.ip6.arpa",
    "d.f.ip6.arpa",
    "8.e.f.ip6.arpa",
    "9.e.f.ip6.arpa",
    "a.e.f.ip6.arpa",
    "b.e.f.ip6.arpa",
    "8.b.d.0.1.0.0.2.ip6.arpa",
};

static const char *const localhost_ptr_names[] = {
    "1.0.0.127.in-addr.arpa",
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
};

/* Canary names that keep browsers and phones on the local resolver. NXDOMAIN, not 0.0.0.0:
 * Firefox keeps DoH on when its canary resolves at all. */
static const char *const canary_nxdomain[] = {
    "use-application-dns.net", /* Firefox: disable automatic DoH */
    "mask.icloud.com",         /* iCloud Private Relay */
    "mask-h2.icloud.com",
};
/* RFC 9462: a device asks resolver.arpa SVCB to discover and switch to an encrypted
 * resolver; NODATA keeps it here. */
static const char *const canary_nodata[] = {"resolver.arpa"};

/* Adds a name with a value: merged into an existing entry's bits (`merge`), or only when new
 * (the first occurrence wins). Returns 0, -1 for an invalid name, -2 out of memory. */
static int name_add(lh_nameset *set, const char *text, uint32_t value, bool merge)
{
    lh_name n;
    uint64_t h[LH_LABELS_MAX];
    bool created;
    if (lh_name_from_text(text, strlen(text), &n) != 0 || n.nlabels == 0) return -1;
    lh_name_hashes(&n, h);
    uint32_t *v = lh_nameset_upsert(set, &n, 0, h[0], &created);
    if (!v) return -2;
    if (created)
        *v = value;
    else if (merge)
        *v |= value;
    return 0;
}

static int zone_add(lh_nameset *set, const char *text, uint32_t bits)
{
    return name_add(set, text, bits, true) ? -1 : 0;
}

static int block_settings(lh_policy *p, const lh_config *cfg, char *err, size_t errlen)
{
    if (lh_config_validate(cfg, err, errlen) != 0) return -1;
    p->block_mode = cfg->block_mode;
    p->block_ttl = cfg->block_ttl;
    switch (cfg->block_mode) {
    case LH_BLOCK_LOOPBACK:
        memcpy(p->block_v4, loopback4, 4);
        memcpy(p->block_v6, loopback6, 16);
        p->block_n4 = p->block_n6 = 1;
        break;
    case LH_BLOCK_NULL: /* zeroed already */
        p->block_n4 = p->block_n6 = 1;
        break;
    case LH_BLOCK_CUSTOM:
        memcpy(p->block_v4, cfg->block_ipv4, 4);
        memcpy(p->block_v6, cfg->block_ipv6, 16);
        p->block_n4 = cfg->has_block_ipv4;
        p->block_n6 = cfg->has_block_ipv6;
        break;
    default:
        break;
    }
    return 0;
}

static int load_one_list(void *ctx, const lh_list_info *info, FILE *f, char *err, size_t errlen)
{
    lh_policy *p = ctx;
    if (lh_blockset_add_file(&p->blocks, info, f, err, errlen) != 0) return -1;
    const lh_list_info *li = &p->blocks.lists[p->blocks.nlists - 1];
    lh_info("%s %s: %u rules (%u names, %u patterns), %u ignored, %u malformed",
            li->allow ? "allowlist" : "blocklist", li->path, li->counts.rules, li->counts.names,
            li->counts.globs + li->counts.regexes, li->counts.ignored, li->counts.errors);
    return 0;
}

/* Sizes the name table from the lists' bytes (about 24 bytes a line) to avoid rehashing. */
static size_t expected_names(const lh_config *cfg)
{
    size_t bytes = lh_default_list_len;
    struct stat st;
    for (unsigned i = 0; i < cfg->nlists; i++) {
        if (stat(cfg->lists[i].path, &st) != 0) continue;
        if (S_ISREG(st.st_mode)) bytes += (size_t)st.st_size;
        if (!S_ISDIR(st.st_mode)) continue;
        /* A folder of lists: its regular files (it also decides whether the lists are built
         * on disk, snapshot.h). */
        DIR *d = opendir(cfg->lists[i].path);
        for (struct dirent *e; d && (e = readdir(d));)
            if (e->d_name[0] != '.' && fstatat(dirfd(d), e->d_name, &st, 0) == 0 &&
                S_ISREG(st.st_mode))
                bytes += (size_t)st.st_size;
        if (d) closedir(d);
    }
    return bytes / 24 + 64;
}

typedef struct parse_ctx {
    lh_policy *p;
    const lh_config *cfg;
} parse_ctx;

static int parse_lists(void *ctx, lh_spill *spill, char *err, size_t errlen)
{
    parse_ctx *c = ctx;
    if (spill)
        lh_blockset_init_spill(&c->p->blocks, spill);
    else if (lh_blockset_init(&c->p->blocks, expected_names(c->cfg)) != 0) {
        snprintf(err, errlen, "out of memory for the blocklists");
        return -1;
    }
    if (lh_blockset_each_file(c->cfg, load_one_list, c->p, err, errlen)) return -1;
    return lh_blockset_finish(&c->p->blocks, err, errlen);
}

/* From the compiled snapshot in the state directory when the lists have not changed. */
static int load_lists(lh_policy *p, const lh_config *cfg, bool lean, char *err, size_t errlen)
{
    parse_ctx c = {.p = p, .cfg = cfg};
    return lh_snapshot_load_lists(&p->blocks, cfg, expected_names(cfg), lean, parse_lists, &c, err,
                                  errlen);
}

static lh_policy *build(const lh_config *cfg, bool lean, char *err, size_t errlen);

lh_policy *lh_policy_build(const lh_config *cfg, char *err, size_t errlen)
{
    return build(cfg, false, err, errlen);
}

lh_policy *lh_policy_rebuild(const lh_config *cfg, char *err, size_t errlen)
{
    return build(cfg, true, err, errlen);
}

static lh_policy *build(const lh_config *cfg, bool lean, char *err, size_t errlen)
{
    lh_policy *p = calloc(1, sizeof *p);
    if (p) atomic_init(&p->refs, 1);
    if (!p || lh_nameset_init(&p->zones, 64) != 0) goto oom;
    p->ttl = cfg->local_ttl;
    p->rebind_protection = cfg->rebind_protection;
    if (zone_add(&p->zones, "localhost", ZONE_LOCALHOST) != 0 ||
        zone_add(&p->zones, LH_LEAK_CANARY_ZONE, ZONE_LEAK_CANARY) != 0)
        goto oom;
    for (size_t i = 0; i < sizeof special_zones / sizeof *special_zones; i++)
        if (zone_add(&p->zones, special_zones[i], ZONE_NXDOMAIN) != 0) goto oom;
    for (size_t i = 0; i < sizeof localhost_ptr_names / sizeof *localhost_ptr_names; i++)
        if (zone_add(&p->zones, localhost_ptr_names[i], ZONE_PTR_LOCALHOST) != 0) goto oom;
    if (lh_nameset_init(&p->forward_zones, cfg->nforward_zones + 1) != 0 ||
        lh_nameset_init(&p->rebind_allow, cfg->nrebind_allow + 1) != 0)
        goto oom;
    for (unsigned i = 0; i < cfg->nforward_zones; i++) {
        int r = name_add(&p->forward_zones, cfg->forward_zones[i].zone, i + 1, false);
        if (r == -2) goto oom;
        if (r == -1) {
            snprintf(err, errlen, "forward-zone: '%s' is not a valid zone name",
                     cfg->forward_zones[i].zone);
            lh_policy_free(p);
            return NULL;
        }
    }
    for (unsigned i = 0; i < cfg->nrebind_allow; i++) {
        int r = name_add(&p->rebind_allow, cfg->rebind_allow[i], 1, false);
        if (r == -2) goto oom;
        if (r == -1) {
            snprintf(err, errlen, "rebind-allow: '%s' is not a valid domain", cfg->rebind_allow[i]);
            lh_policy_free(p);
            return NULL;
        }
    }
    if (cfg->canary_names) {
        for (size_t i = 0; i < sizeof canary_nxdomain / sizeof *canary_nxdomain; i++)
            if (zone_add(&p->zones, canary_nxdomain[i], ZONE_CANARY_NXDOMAIN) != 0) goto oom;
        if (zone_add(&p->zones, canary_nodata[0], ZONE_CANARY_NODATA) != 0) goto oom;
    }
    if (block_settings(p, cfg, err, errlen) != 0 || load_lists(p, cfg, lean, err, errlen) != 0) {
        lh_policy_free(p);
        return NULL;
    }
    if (cfg->hosts_file) {
        int r = lh_hosts_load(&p->hosts, cfg->hosts_file, err, errlen);
        if (r == -ENOENT && !cfg->hosts_file_explicit) {
            /* The default file is optional: a minimal root (debootstrap minbase) has none;
             * installers and container runtimes create it. The caller says so, once. */
            p->hosts_missing = true;
            err[0] = 0;
        } else if (r != 0) {
            lh_policy_free(p);
            return NULL;
        } else {
            p->has_hosts = true;
        }
    }
    return p;
oom:
    snprintf(err, errlen, "out of memory building the policy");
    lh_policy_free(p);
    return NULL;
}

static void policy_destroy(lh_policy *p);

void lh_policy_populate(const lh_policy *p)
{
    lh_snapshot_populate(&p->blocks);
}

void lh_policy_handover(lh_policy *old, lh_policy *p)
{
    if (!old || old->successor || !p->blocks.map) return;
    lh_policy_ref(p);
    old->successor = p;
}

/* The successor's mapped tree is brought in off every event loop (a big list takes tens of
 * milliseconds, longer when the page cache lost it), at a low priority; a policy that nobody
 * but this thread holds any more (replaced again meanwhile) is not brought in. */
static void *populate_main(void *arg)
{
    lh_policy *p = arg;
    setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
    if (atomic_load_explicit(&p->refs, memory_order_acquire) > 1) {
        lh_policy_populate(p);
        lh_info("lists: the new name tree is resident (%.1f MiB)",
                (double)p->blocks.map_len / (1024 * 1024));
    }
    lh_policy_free(p);
    return NULL;
}

static void populate_later(lh_policy *p)
{
    pthread_attr_t a;
    pthread_t t;
    bool started = pthread_attr_init(&a) == 0 &&
                   pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED) == 0 &&
                   pthread_create(&t, &a, populate_main, p) == 0;
    pthread_attr_destroy(&a);
    if (!started) lh_policy_free(p); /* its pages then come in as lookups touch them */
}

void lh_policy_ref(lh_policy *p)
{
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

void lh_policy_free(lh_policy *p)
{
    if (!p || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1) return;
    policy_destroy(p);
    /* A replaced policy is tens of megabytes for a big list, freed on whichever thread let
     * go last: hand the pages back, or every reload would leave its arena behind in RSS. */
    malloc_trim(0);
}

static void policy_destroy(lh_policy *p)
{
    lh_policy *next = p->successor;
    lh_nameset_free(&p->zones);
    lh_nameset_free(&p->forward_zones);
    lh_nameset_free(&p->rebind_allow);
    lh_blockset_free(&p->blocks);
    if (p->has_hosts) lh_hosts_free(&p->hosts);
    free(p);
    /* The replaced policy is gone (its mapping unmapped, its heap freed): the one that
     * replaced it can be made resident now without the two ever being resident together. */
    if (next) populate_later(next);
}

static void local(lh_verdict *v, enum lh_origin origin, uint8_t rcode, uint8_t soa_label,
                  uint32_t ttl)
{
    v->kind = LH_VERDICT_LOCAL;
    v->ans.records = true;
    v->origin = origin;
    v->ans.rcode = rcode;
    v->ans.aa = true;
    v->ans.soa_label = soa_label;
    v->ans.ttl = ttl;
}

static bool hosts_decide(const lh_hosts *h, const lh_msg *m, const uint64_t *hashes, uint32_t ttl,
                         lh_verdict *v)
{
    const uint32_t *idx = lh_nameset_find(&h->by_name, &m->qname, 0, hashes[0]);
    if (idx) {
        const lh_hosts_entry *e = &h->entries[*idx];
        local(v, LH_ORIGIN_HOSTS, LH_RCODE_NOERROR, 0, ttl);
        v->ans.aa = false; /* not a zone we are authoritative for */
        v->ans.n4 = e->n4;
        v->ans.v4 = h->addrs4 + (size_t)e->v4_off * 4;
        v->ans.n6 = e->n6;
        v->ans.v6 = h->addrs6 + (size_t)e->v6_off * 16;
        return true;
    }
    idx = lh_nameset_find(&h->by_address, &m->qname, 0, hashes[0]);
    if (idx) {
        const lh_hosts_entry *e = &h->entries[*idx];
        const uint8_t *name = h->names + e->name_off;
        local(v, LH_ORIGIN_HOSTS, LH_RCODE_NOERROR, 0, ttl);
        v->ans.aa = false;
        v->ans.ptr = name;
        v->ans.ptr_len = (uint16_t)(strlen((const char *)name) + 1);
        return true;
    }
    return false;
}

/* A verdict before any decision: nothing matched, no EDE. Cleared once per query: the
 * blocked verdict is filled on it (clearing its 96 bytes again cost ~20 instructions). */
static inline void verdict_init(lh_verdict *v)
{
    *v = (lh_verdict){.ans.ede = -1, .list = -1, .match_label = -1};
}

/* The answer for a blocked name, per block mode. Not authoritative; EDE 15 (Blocked) so tools
 * can tell a block from a real NODATA or NXDOMAIN. Fills a verdict fresh from verdict_init. */
static inline void block_verdict(const lh_policy *p, lh_verdict *v, const lh_block_match *bm)
{
    static const uint8_t rcodes[] = {
        [LH_BLOCK_LOOPBACK] = LH_RCODE_NOERROR,  [LH_BLOCK_NULL] = LH_RCODE_NOERROR,
        [LH_BLOCK_NXDOMAIN] = LH_RCODE_NXDOMAIN, [LH_BLOCK_NODATA] = LH_RCODE_NOERROR,
        [LH_BLOCK_REFUSED] = LH_RCODE_REFUSED,   [LH_BLOCK_CUSTOM] = LH_RCODE_NOERROR,
    };
    local(v, LH_ORIGIN_BLOCKLIST, rcodes[p->block_mode], 0, p->block_ttl);
    v->ans.aa = false;
    v->ans.ede = LH_EDE_BLOCKED;
    v->list = bm->list;
    v->match_label = bm->label;
    if (p->block_mode == LH_BLOCK_REFUSED) {
        v->kind = LH_VERDICT_REFUSED;
        v->ans.records = false;
    }
    v->ans.n4 = p->block_n4;
    v->ans.v4 = p->block_v4;
    v->ans.n6 = p->block_n6;
    v->ans.v6 = p->block_v6;
}

void lh_policy_block_verdict(const lh_policy *p, lh_verdict *v, const lh_block_match *bm)
{
    verdict_init(v);
    block_verdict(p, v, bm);
}

enum lh_uncloak_result lh_policy_uncloak(const lh_policy *p, const uint8_t *pkt, size_t len,
                                         const lh_answer_info *ai, lh_name *target,
                                         lh_block_match *bm)
{
    return lh_policy_uncloak_at(p, NULL, pkt, len, ai, target, bm);
}

enum lh_uncloak_result lh_policy_uncloak_at(const lh_policy *p, const lh_overlay *ov,
                                            const uint8_t *pkt, size_t len,
                                            const lh_answer_info *ai, lh_name *target,
                                            lh_block_match *bm)
{
    if (ai->ntargets > LH_ANSWER_TARGETS_MAX) return LH_UNCLOAK_TOO_MANY;
    lh_target_iter it;
    lh_answer_targets_begin(ai, &it);
    while (lh_answer_targets_next(pkt, len, &it, target) > 0) {
        if (target->nlabels == 0) continue; /* "." in SVCB: the owner itself */
        uint64_t h[LH_LABELS_MAX];
        lh_name_hashes(target, h);
        lh_policy_block_match(p, ov, target, h, bm); /* runtime rules first */
        if (bm->blocked) return LH_UNCLOAK_BLOCKED;
    }
    return LH_UNCLOAK_CLEAN;
}

/* A public name answered with a private address: SERVFAIL, EDE 18 (Prohibited). */
static void rebind_verdict(lh_verdict *v)
{
    memset(v, 0, sizeof *v);
    v->kind = LH_VERDICT_REFUSED;
    v->origin = LH_ORIGIN_REBIND;
    v->ans.rcode = LH_RCODE_SERVFAIL;
    v->ans.ede = LH_EDE_PROHIBITED;
    v->list = -1;
    v->match_label = -1;
}

enum lh_answer_check lh_policy_check_answer(const lh_policy *p, const lh_answer_ctx *c,
                                            const uint8_t *pkt, size_t len,
                                            const lh_answer_info *ai, lh_verdict *v,
                                            lh_name *target)
{
    /* Forward zones (group > 0) are the operator's own servers: private answers are theirs. */
    if (ai->private_address && p->rebind_protection && c->group == 0 &&
        !lh_policy_rebind_allowed(p, c->qname)) {
        rebind_verdict(v);
        return LH_CHECK_REBIND;
    }
    if (c->paused) return LH_CHECK_PASS; /* blocking is off */
    lh_block_match bm = {.list = -1, .label = -1};
    enum lh_uncloak_result r = lh_policy_uncloak_at(p, c->ov, pkt, len, ai, target, &bm);
    if (r == LH_UNCLOAK_CLEAN) return LH_CHECK_PASS;
    lh_policy_block_verdict(p, v, &bm);
    if (r == LH_UNCLOAK_TOO_MANY) return LH_CHECK_TOO_MANY;
    v->match_name = target;
    return LH_CHECK_UNCLOAKED;
}

const char *lh_answer_check_name(enum lh_answer_check r)
{
    static const char *const names[] = {
        [LH_CHECK_PASS] = "pass",
        [LH_CHECK_REBIND] = "rebind",
        [LH_CHECK_UNCLOAKED] = "uncloaked",
        [LH_CHECK_TOO_MANY] = "uncloaked",
    };
    return (unsigned)r < sizeof names / sizeof *names ? names[r] : "?";
}

bool lh_policy_rebind_allowed(const lh_policy *p, const lh_name *name)
{
    if (!p->rebind_allow.count) return false;
    uint64_t h[LH_LABELS_MAX];
    lh_name_hashes(name, h);
    for (unsigned i = 0; i <= name->nlabels; i++)
        if (lh_nameset_find(&p->rebind_allow, name, i, h[i])) return true;
    return false;
}

/* Question types that are not questions about data a stub resolver could relay: zone
 * transfers are a matter between a zone's servers (RFC 5936 4.2: REFUSED when the server
 * will not transfer; loophole serves no zone); MAILA and MAILB are obsolete (RFC 883's mail
 * agents, RFC 2505/6895), a kind of query not implemented (NOTIMP); OPT and TSIG are
 * meta-records that only belong in the additional section (RFC 6891 6.1.1, RFC 8945 5.1), so
 * asking for them is a malformed question (FORMERR, as Unbound answers). Returns the rcode,
 * or -1 for an ordinary type. */
static int meta_type_rcode(uint16_t qtype)
{
    switch (qtype) {
    case LH_TYPE_AXFR:
    case LH_TYPE_IXFR:
        return LH_RCODE_REFUSED;
    case LH_TYPE_MAILA:
    case LH_TYPE_MAILB:
        return LH_RCODE_NOTIMP;
    case LH_TYPE_OPT:
    case LH_TYPE_TSIG:
        return LH_RCODE_FORMERR;
    default:
        return -1;
    }
}

void lh_policy_decide(const lh_policy *p, const lh_msg *m, const uint64_t *hashes, lh_verdict *v)
{
    lh_policy_decide_at(p, NULL, false, m, hashes, v);
}

/* Runtime rules first, then the lists (inlined into the decision: it is on every query). */
static inline void block_match(const lh_policy *p, const lh_overlay *ov, const lh_name *n,
                               const uint64_t *hashes, lh_block_match *bm)
{
    if (!ov || !lh_overlay_match(ov, n, hashes, bm, NULL))
        lh_blockset_match(&p->blocks, n, hashes, bm);
}

void lh_policy_block_match(const lh_policy *p, const lh_overlay *ov, const lh_name *n,
                           const uint64_t *hashes, lh_block_match *bm)
{
    block_match(p, ov, n, hashes, bm);
}

void lh_policy_decide_at(const lh_policy *p, const lh_overlay *ov, bool paused, const lh_msg *m,
                         const uint64_t *hashes, lh_verdict *v)
{
    verdict_init(v);
    int meta = meta_type_rcode(m->qtype);
    if (meta >= 0) { /* answered here, never forwarded; local answers are never cached */
        v->kind = LH_VERDICT_REFUSED;
        v->origin = LH_ORIGIN_META_TYPE;
        v->ans.rcode = (uint8_t)meta;
        v->ans.ede = meta == LH_RCODE_FORMERR ? -1 : LH_EDE_NOT_SUPPORTED;
        return;
    }
    if (m->qclass != LH_CLASS_IN && m->qclass != LH_CLASS_ANY) {
        v->kind = LH_VERDICT_REFUSED;
        v->origin = LH_ORIGIN_CLASS;
        v->ans.rcode = LH_RCODE_REFUSED;
        v->ans.ede = LH_EDE_PROHIBITED;
        return;
    }
    /* Longest matching zone, and whether the full name is a localhost reverse name. */
    uint32_t zone = 0, exact = 0;
    unsigned zone_label = 0;
    for (unsigned i = 0; i < m->qname.nlabels; i++) {
        const uint32_t *z = lh_nameset_find(&p->zones, &m->qname, i, hashes[i]);
        if (!z) continue;
        if (i == 0) exact = *z;
        if (*z & ZONE_KIND_MASK) {
            zone = *z & ZONE_KIND_MASK;
            zone_label = i;
            break;
        }
    }
    if (zone == ZONE_LOCALHOST) {
        local(v, LH_ORIGIN_LOCALHOST, LH_RCODE_NOERROR, (uint8_t)zone_label, p->ttl);
        v->ans.at_apex = zone_label == 0;
        v->ans.n4 = 1;
        v->ans.v4 = loopback4;
        v->ans.n6 = 1;
        v->ans.v6 = loopback6;
        return;
    }
    if (exact & ZONE_PTR_LOCALHOST) {
        local(v, LH_ORIGIN_LOCALHOST, LH_RCODE_NOERROR, (uint8_t)zone_label, p->ttl);
        v->ans.at_apex = zone_label == 0;
        v->ans.ptr = lh_localhost_wire;
        v->ans.ptr_len = sizeof lh_localhost_wire;
        return;
    }
    if (zone == ZONE_LEAK_CANARY) { /* TTL 0: every check must reach loophole itself */
        bool nonce = zone_label == 1;
        local(v, LH_ORIGIN_LEAK_CANARY,
              nonce || zone_label == 0 ? LH_RCODE_NOERROR : LH_RCODE_NXDOMAIN, (uint8_t)zone_label,
              0);
        if (nonce) {
            lh_leak_canary_v4(hashes[0], v->canary_v4);
            v->ans.n4 = 1;
            v->ans.v4 = v->canary_v4;
        }
        return;
    }
    if (p->has_hosts && hosts_decide(&p->hosts, m, hashes, p->ttl, v)) return;
    if (exact & (ZONE_CANARY_NXDOMAIN | ZONE_CANARY_NODATA)) {
        local(v, LH_ORIGIN_CANARY,
              (exact & ZONE_CANARY_NXDOMAIN) ? LH_RCODE_NXDOMAIN : LH_RCODE_NOERROR, 0, p->ttl);
        v->ans.aa = false;
        return;
    }
    lh_block_match bm;
    block_match(p, ov, &m->qname, hashes, &bm);
    if (bm.blocked && paused) { /* blocking is off for now; everything else stays */
        v->paused = true;
        bm.blocked = bm.allowed = false;
    }
    if (bm.blocked) {
        block_verdict(p, v, &bm);
        return;
    }
    if (bm.allowed) { /* an exception also opts a name out of the special zones below */
        v->allowed = true;
        v->list = bm.list;
        v->match_label = bm.label;
        v->kind = LH_VERDICT_FORWARD;
        return;
    }
    for (unsigned i = 0; p->forward_zones.count && i < m->qname.nlabels; i++) {
        const uint32_t *g = lh_nameset_find(&p->forward_zones, &m->qname, i, hashes[i]);
        if (g) {
            v->kind = LH_VERDICT_FORWARD;
            v->group = *g;
            return;
        }
    }
    if (zone == ZONE_NXDOMAIN) {
        bool apex = zone_label == 0;
        local(v, LH_ORIGIN_SPECIAL_USE, apex ? LH_RCODE_NOERROR : LH_RCODE_NXDOMAIN,
              (uint8_t)zone_label, p->ttl);
        v->ans.at_apex = apex;
        return;
    }
    v->kind = LH_VERDICT_FORWARD;
}

lh_parse_result lh_decide(const lh_policy *p, const lh_overlay *ov, bool paused, const uint8_t *pkt,
                          size_t len, lh_decision *d)
{
    if (lh_decide_parse(pkt, len, d) == LH_PARSE_OK) lh_decide_verdict(p, ov, paused, d);
    return d->parse;
}
