/* policy.c - built-in local zones, the hosts file, and the decision for one question.
 *
 * Order of precedence (first match wins):
 *   1. class other than IN/ANY             -> REFUSED
 *   2. localhost. and below                 -> 127.0.0.1 / ::1, NODATA+SOA for other types
 *   3. 1.0.0.127.in-addr.arpa, ::1's name   -> PTR localhost.
 *   4. the hosts file (names and reverse)   -> its addresses / PTR
 *   5. special-use zones (RFC 6761/6303/7686) -> NXDOMAIN+SOA (apex: SOA/NS, NODATA)
 *   6. everything else                      -> forward */
#include "loophole/policy.h"
#include "loophole/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Values stored in the zones set. */
#define ZONE_LOCALHOST 1u     /* answers loopback addresses */
#define ZONE_NXDOMAIN 2u      /* locally served empty zone */
#define ZONE_KIND_MASK 0xfu
#define ZONE_PTR_LOCALHOST 0x10u /* this exact name has PTR localhost. */

static const uint8_t localhost_wire[] = "\x09localhost"; /* + implicit root byte */
static const uint8_t loopback4[4] = {127, 0, 0, 1};
static const uint8_t loopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

/* Zones answered NXDOMAIN locally so they never leak upstream. Documented in
 * docs/configuration.md ("Names loophole answers itself"). */
static const char *const special_zones[] = {
    "onion",   /* RFC 7686 */
    "invalid", /* RFC 6761 */
    "local",   /* RFC 6762: mDNS belongs on the link */
    /* RFC 6303 4.1-4.6: private, link-local, loopback, "this network", TEST-NETs, broadcast */
    "10.in-addr.arpa", "16.172.in-addr.arpa", "17.172.in-addr.arpa", "18.172.in-addr.arpa",
    "19.172.in-addr.arpa", "20.172.in-addr.arpa", "21.172.in-addr.arpa", "22.172.in-addr.arpa",
    "23.172.in-addr.arpa", "24.172.in-addr.arpa", "25.172.in-addr.arpa", "26.172.in-addr.arpa",
    "27.172.in-addr.arpa", "28.172.in-addr.arpa", "29.172.in-addr.arpa", "30.172.in-addr.arpa",
    "31.172.in-addr.arpa", "168.192.in-addr.arpa", "0.in-addr.arpa", "127.in-addr.arpa",
    "254.169.in-addr.arpa", "2.0.192.in-addr.arpa", "100.51.198.in-addr.arpa",
    "113.0.203.in-addr.arpa", "255.255.255.255.in-addr.arpa",
    /* RFC 6303 4.7-4.8: unspecified and loopback IPv6 addresses */
    "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
    /* RFC 6303 4.9-4.11 (fc00::/7 as a whole), fe80::/10, 2001:db8::/32 */
    "c.f.ip6.arpa", "d.f.ip6.arpa", "8.e.f.ip6.arpa", "9.e.f.ip6.arpa", "a.e.f.ip6.arpa",
    "b.e.f.ip6.arpa", "8.b.d.0.1.0.0.2.ip6.arpa",
};

static const char *const localhost_ptr_names[] = {
    "1.0.0.127.in-addr.arpa",
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
};

static int zone_add(lh_nameset *set, const char *text, uint32_t bits)
{
    lh_name n;
    uint64_t h[LH_LABELS_MAX];
    bool created;
    if (lh_name_from_text(text, strlen(text), &n) != 0)
        return -1;
    lh_name_hashes(&n, h);
    uint32_t *v = lh_nameset_upsert(set, &n, 0, h[0], &created);
    if (!v)
        return -1;
    *v = created ? bits : (*v | bits);
    return 0;
}

lh_policy *lh_policy_build(const lh_config *cfg, char *err, size_t errlen)
{
    lh_policy *p = calloc(1, sizeof *p);
    if (!p || lh_nameset_init(&p->zones, 64) != 0)
        goto oom;
    p->ttl = cfg->local_ttl;
    if (zone_add(&p->zones, "localhost", ZONE_LOCALHOST) != 0)
        goto oom;
    for (size_t i = 0; i < sizeof special_zones / sizeof *special_zones; i++)
        if (zone_add(&p->zones, special_zones[i], ZONE_NXDOMAIN) != 0)
            goto oom;
    for (size_t i = 0; i < sizeof localhost_ptr_names / sizeof *localhost_ptr_names; i++)
        if (zone_add(&p->zones, localhost_ptr_names[i], ZONE_PTR_LOCALHOST) != 0)
            goto oom;
    if (cfg->hosts_file) {
        if (lh_hosts_load(&p->hosts, cfg->hosts_file, err, errlen) != 0) {
            lh_policy_free(p);
            return NULL;
        }
        p->has_hosts = true;
    }
    return p;
oom:
    snprintf(err, errlen, "out of memory building the policy");
    lh_policy_free(p);
    return NULL;
}

void lh_policy_free(lh_policy *p)
{
    if (!p)
        return;
    lh_nameset_free(&p->zones);
    if (p->has_hosts)
        lh_hosts_free(&p->hosts);
    free(p);
}

static void local(lh_verdict *v, enum lh_origin origin, uint8_t rcode, uint8_t soa_label,
                  uint32_t ttl)
{
    v->kind = LH_VERDICT_LOCAL;
    v->origin = origin;
    v->rcode = rcode;
    v->aa = true;
    v->soa_label = soa_label;
    v->ttl = ttl;
}

static bool hosts_decide(const lh_hosts *h, const lh_msg *m, const uint64_t *hashes, uint32_t ttl,
                         lh_verdict *v)
{
    const uint32_t *idx = lh_nameset_find(&h->by_name, &m->qname, 0, hashes[0]);
    if (idx) {
        const lh_hosts_entry *e = &h->entries[*idx];
        local(v, LH_ORIGIN_HOSTS, LH_RCODE_NOERROR, 0, ttl);
        v->aa = false; /* not a zone we are authoritative for */
        v->n4 = e->n4;
        v->v4 = h->addrs4 + (size_t)e->v4_off * 4;
        v->n6 = e->n6;
        v->v6 = h->addrs6 + (size_t)e->v6_off * 16;
        return true;
    }
    idx = lh_nameset_find(&h->by_address, &m->qname, 0, hashes[0]);
    if (idx) {
        const lh_hosts_entry *e = &h->entries[*idx];
        const uint8_t *name = h->names + e->name_off;
        local(v, LH_ORIGIN_HOSTS, LH_RCODE_NOERROR, 0, ttl);
        v->aa = false;
        v->ptr = name;
        v->ptr_len = (uint16_t)(strlen((const char *)name) + 1);
        return true;
    }
    return false;
}

void lh_policy_decide(const lh_policy *p, const lh_msg *m, const uint64_t *hashes, lh_verdict *v)
{
    memset(v, 0, sizeof *v);
    v->ede = -1;
    if (m->qclass != LH_CLASS_IN && m->qclass != LH_CLASS_ANY) {
        v->kind = LH_VERDICT_REFUSED;
        v->origin = LH_ORIGIN_CLASS;
        v->rcode = LH_RCODE_REFUSED;
        v->ede = LH_EDE_PROHIBITED;
        return;
    }
    /* Longest matching zone, and whether the full name is a localhost reverse name. */
    uint32_t zone = 0, exact = 0;
    unsigned zone_label = 0;
    for (unsigned i = 0; i < m->qname.nlabels; i++) {
        const uint32_t *z = lh_nameset_find(&p->zones, &m->qname, i, hashes[i]);
        if (!z)
            continue;
        if (i == 0)
            exact = *z;
        if (*z & ZONE_KIND_MASK) {
            zone = *z & ZONE_KIND_MASK;
            zone_label = i;
            break;
        }
    }
    if (zone == ZONE_LOCALHOST) {
        local(v, LH_ORIGIN_LOCALHOST, LH_RCODE_NOERROR, (uint8_t)zone_label, p->ttl);
        v->at_apex = zone_label == 0;
        v->n4 = 1;
        v->v4 = loopback4;
        v->n6 = 1;
        v->v6 = loopback6;
        return;
    }
    if (exact & ZONE_PTR_LOCALHOST) {
        local(v, LH_ORIGIN_LOCALHOST, LH_RCODE_NOERROR, (uint8_t)zone_label, p->ttl);
        v->at_apex = zone_label == 0;
        v->ptr = localhost_wire;
        v->ptr_len = sizeof localhost_wire;
        return;
    }
    if (p->has_hosts && hosts_decide(&p->hosts, m, hashes, p->ttl, v))
        return;
    if (zone == ZONE_NXDOMAIN) {
        bool apex = zone_label == 0;
        local(v, LH_ORIGIN_SPECIAL_USE, apex ? LH_RCODE_NOERROR : LH_RCODE_NXDOMAIN,
              (uint8_t)zone_label, p->ttl);
        v->at_apex = apex;
        return;
    }
    v->kind = LH_VERDICT_FORWARD;
}

size_t lh_answer_build(const lh_msg *m, const lh_verdict *v, uint8_t *out, size_t cap,
                       size_t limit, uint16_t our_udp_size)
{
    lh_writer w;
    lh_writer_begin(&w, out, cap, m, v->rcode, v->aa);
    if (v->kind == LH_VERDICT_LOCAL && v->rcode == LH_RCODE_NOERROR) {
        uint16_t t = m->qtype;
        bool any = t == LH_TYPE_ANY;
        if (t == LH_TYPE_A || any)
            for (unsigned i = 0; i < v->n4; i++)
                lh_writer_rr(&w, m, LH_SEC_ANSWER, 0, LH_TYPE_A, v->ttl, v->v4 + i * 4, 4);
        if (t == LH_TYPE_AAAA || any)
            for (unsigned i = 0; i < v->n6; i++)
                lh_writer_rr(&w, m, LH_SEC_ANSWER, 0, LH_TYPE_AAAA, v->ttl, v->v6 + i * 16, 16);
        if ((t == LH_TYPE_PTR || any) && v->ptr)
            lh_writer_rr(&w, m, LH_SEC_ANSWER, 0, LH_TYPE_PTR, v->ttl, v->ptr, v->ptr_len);
        if (v->at_apex && (t == LH_TYPE_SOA || any))
            lh_writer_soa(&w, m, LH_SEC_ANSWER, 0, v->ttl, v->ttl);
        if (v->at_apex && (t == LH_TYPE_NS || any))
            lh_writer_rr(&w, m, LH_SEC_ANSWER, 0, LH_TYPE_NS, v->ttl, localhost_wire,
                         sizeof localhost_wire);
    }
    /* Negative answers (NXDOMAIN, NODATA) carry the zone's SOA for negative caching. */
    if (v->kind == LH_VERDICT_LOCAL && w.counts[LH_SEC_ANSWER] == 0 && !w.overflow)
        lh_writer_soa(&w, m, LH_SEC_AUTHORITY, v->soa_label, v->ttl, v->ttl);
    return lh_writer_finish(&w, m, limit, our_udp_size, v->ede);
}

size_t lh_answer_error(const lh_msg *m, unsigned rcode, uint8_t *out, size_t cap, size_t limit,
                       uint16_t our_udp_size)
{
    lh_writer w;
    lh_writer_begin(&w, out, cap, m, rcode, false);
    return lh_writer_finish(&w, m, limit, our_udp_size, -1);
}
