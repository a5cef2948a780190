/* dnssec_denial.c - NSEC (RFC 4035 5.4) and NSEC3 (RFC 5155 8) proofs of NXDOMAIN, NODATA,
 * empty non-terminals and wildcards, over records whose signatures are already verified. */
#include "dnssec_private.h"

#include <strings.h>

/* ---------------------------------------------------------------- denial of existence */

static bool nsec_covers(const ldns_rr *nsec, const ldns_rdf *name)
{
    const ldns_rdf *owner = ldns_rr_owner(nsec), *next = ldns_rr_rdf(nsec, 0);
    int a = ldns_dname_compare(owner, name), b = ldns_dname_compare(name, next);
    if (ldns_dname_compare(owner, next) < 0) return a < 0 && b < 0;
    return a < 0 || b < 0; /* the last NSEC of the zone wraps to the apex */
}

static const ldns_rr *nsec_matching(const ldns_rr_list *nsecs, const ldns_rdf *name)
{
    for (size_t i = 0; i < ldns_rr_list_rr_count(nsecs); i++)
        if (name_eq(ldns_rr_owner(ldns_rr_list_rr(nsecs, i)), name))
            return ldns_rr_list_rr(nsecs, i);
    return NULL;
}

/* A delegation (NS without SOA) or a DNAME: the names below it are not in this zone, so the
 * record proves nothing about them (RFC 4035 5.4, RFC 6672 5.3.4.1). */
static bool bitmap_cuts_below(const ldns_rdf *bm)
{
    return bm && ((ldns_nsec_bitmap_covers_type(bm, LDNS_RR_TYPE_NS) &&
                   !ldns_nsec_bitmap_covers_type(bm, LDNS_RR_TYPE_SOA)) ||
                  ldns_nsec_bitmap_covers_type(bm, LDNS_RR_TYPE_DNAME));
}

const ldns_rr *lh_dnssec_nsec_covering(const ldns_rr_list *nsecs, const ldns_rdf *name)
{
    for (size_t i = 0; i < ldns_rr_list_rr_count(nsecs); i++) {
        const ldns_rr *n = ldns_rr_list_rr(nsecs, i);
        if (!nsec_covers(n, name)) continue;
        if (ldns_dname_is_subdomain(name, ldns_rr_owner(n)) &&
            bitmap_cuts_below(ldns_nsec_get_bitmap(n)))
            continue;
        return n;
    }
    return NULL;
}

/* An NSEC proving that `name` and everything below it do not exist: it covers the name and its
 * next name is not below it (then the name would be an empty non-terminal, which exists). */
const ldns_rr *lh_dnssec_nsec_absent(const ldns_rr_list *nsecs, const ldns_rdf *name)
{
    for (size_t i = 0; i < ldns_rr_list_rr_count(nsecs); i++) {
        const ldns_rr *n = ldns_rr_list_rr(nsecs, i);
        if (!nsec_covers(n, name) || ldns_dname_is_subdomain(ldns_rr_rdf(n, 0), name)) continue;
        if (ldns_dname_is_subdomain(name, ldns_rr_owner(n)) &&
            bitmap_cuts_below(ldns_nsec_get_bitmap(n)))
            continue;
        return n;
    }
    return NULL;
}

static void bitmap_bits(denial *d, const ldns_rdf *bm)
{
    d->has_ns = bm && ldns_nsec_bitmap_covers_type(bm, LDNS_RR_TYPE_NS);
    d->has_soa = bm && ldns_nsec_bitmap_covers_type(bm, LDNS_RR_TYPE_SOA);
    d->has_ds = bm && ldns_nsec_bitmap_covers_type(bm, LDNS_RR_TYPE_DS);
}

/* A type is denied at a name by its bitmap if neither it nor a CNAME is there; a parent-side
 * NSEC at a delegation (NS without SOA) can only deny DS. */
static bool bitmap_denies(const ldns_rdf *bm, ldns_rr_type qtype)
{
    if (!bm) return true; /* no bitmap: no types (an NSEC3 for an empty non-terminal) */
    if (ldns_nsec_bitmap_covers_type(bm, qtype) ||
        ldns_nsec_bitmap_covers_type(bm, LDNS_RR_TYPE_CNAME))
        return false;
    if (qtype != LDNS_RR_TYPE_DS && ldns_nsec_bitmap_covers_type(bm, LDNS_RR_TYPE_NS) &&
        !ldns_nsec_bitmap_covers_type(bm, LDNS_RR_TYPE_SOA))
        return false;
    return true;
}

void lh_dnssec_nsec_deny(denial *d, const ldns_rr_list *nsecs, const ldns_rdf *qname,
                         ldns_rr_type qtype, bool nx)
{
    const ldns_rr *m = nx ? NULL : nsec_matching(nsecs, qname);
    if (m) {
        const ldns_rdf *bm = ldns_nsec_get_bitmap(m);
        if (bitmap_denies(bm, qtype)) {
            d->verdict = LH_DNSSEC_SECURE;
            d->nodata = true;
            bitmap_bits(d, bm);
            snprintf(d->detail, sizeof d->detail, "NSEC at the name denies the type");
        } else {
            snprintf(d->detail, sizeof d->detail, "the NSEC at the name lists the type");
        }
        return;
    }
    /* NXDOMAIN needs an NSEC whose next name is not below qname: an empty non-terminal exists */
    const ldns_rr *c =
        nx ? lh_dnssec_nsec_absent(nsecs, qname) : lh_dnssec_nsec_covering(nsecs, qname);
    if (!c) {
        snprintf(d->detail, sizeof d->detail, "%s",
                 nx && lh_dnssec_nsec_covering(nsecs, qname)
                     ? "the NSEC covering the name shows names below it (an empty non-terminal)"
                     : "no NSEC covers the name");
        return;
    }
    /* An empty non-terminal: the name sorts just before names below it. */
    if (!nx && ldns_dname_is_subdomain(ldns_rr_rdf(c, 0), qname)) {
        d->verdict = LH_DNSSEC_SECURE;
        d->nodata = true;
        snprintf(d->detail, sizeof d->detail, "NSEC proves an empty non-terminal");
        return;
    }
    ldns_rdf *c1 = name_common(qname, ldns_rr_owner(c)),
             *c2 = name_common(qname, ldns_rr_rdf(c, 0));
    ldns_rdf *ce = c1 && c2 && ldns_dname_label_count(c2) > ldns_dname_label_count(c1) ? c2 : c1;
    ldns_rdf *w = ce ? name_wildcard(ce) : NULL;
    if (w) {
        const ldns_rr *wm = nx ? NULL : nsec_matching(nsecs, w);
        if (wm && bitmap_denies(ldns_nsec_get_bitmap(wm), qtype)) {
            d->verdict = LH_DNSSEC_SECURE;
            d->nodata = true;
            snprintf(d->detail, sizeof d->detail, "NSEC proves the wildcard lacks the type");
        } else if (nx && lh_dnssec_nsec_covering(nsecs, w)) {
            d->verdict = LH_DNSSEC_SECURE;
            snprintf(d->detail, sizeof d->detail, "NSEC covers the name and the wildcard");
        } else {
            snprintf(d->detail, sizeof d->detail, "no NSEC denies the wildcard");
        }
    }
    ldns_rdf_deep_free(c1);
    ldns_rdf_deep_free(c2);
    ldns_rdf_deep_free(w);
}

/* NSEC3 owner labels and next hashes compared as base32hex text, which keeps the byte order. */
static bool nsec3_hash_text(const ldns_rr *n3, const ldns_rdf *name, char *out, size_t cap)
{
    ldns_rdf *h = ldns_nsec3_hash_name_frm_nsec3(n3, name);
    if (!h) return false;
    char *s = ldns_rdf2str(h);
    ldns_rdf_deep_free(h);
    if (!s) return false;
    snprintf(out, cap, "%.*s", (int)strcspn(s, "."), s);
    free(s);
    return true;
}

static void nsec3_owner_text(const ldns_rr *n3, char *out, size_t cap)
{
    ldns_rdf *l = ldns_dname_label(ldns_rr_owner(n3), 0);
    char *s = l ? ldns_rdf2str(l) : NULL;
    snprintf(out, cap, "%.*s", s ? (int)strcspn(s, ".") : 0, s ? s : "");
    free(s);
    ldns_rdf_deep_free(l);
}

static void nsec3_next_text(const ldns_rr *n3, char *out, size_t cap)
{
    const ldns_rdf *nx = ldns_nsec3_next_owner(n3);
    out[0] = 0;
    if (!nx || ldns_rdf_size(nx) < 1) return;
    const uint8_t *p = ldns_rdf_data(nx);
    size_t n = p[0] < ldns_rdf_size(nx) ? p[0] : ldns_rdf_size(nx) - 1;
    if (ldns_b32_ntop_calculate_size(n) + 1 > cap) return;
    int k = ldns_b32_ntop_extended_hex(p + 1, n, out, cap);
    out[k > 0 ? k : 0] = 0;
}

/* The list holds records of one parameter set (lh_dnssec_nsec3_usable), so the name is hashed once.
 */
const ldns_rr *lh_dnssec_nsec3_find(const ldns_rr_list *n3s, const ldns_rdf *name, bool cover)
{
    char h[128];
    if (ldns_rr_list_rr_count(n3s) == 0 ||
        !nsec3_hash_text(ldns_rr_list_rr(n3s, 0), name, h, sizeof h))
        return NULL;
    for (size_t i = 0; i < ldns_rr_list_rr_count(n3s); i++) {
        const ldns_rr *r = ldns_rr_list_rr(n3s, i);
        char o[128], nx[128];
        nsec3_owner_text(r, o, sizeof o);
        if (!cover) {
            if (!strcasecmp(h, o)) return r;
            continue;
        }
        nsec3_next_text(r, nx, sizeof nx);
        int a = strcasecmp(o, h), b = strcasecmp(h, nx);
        if (strcasecmp(o, nx) < 0 ? (a < 0 && b < 0) : (a < 0 || b < 0)) return r;
    }
    return NULL;
}

/* RFC 5155 8.3: the closest encloser of qname (a matching NSEC3) whose next closer name is
 * covered. Returns the closest encloser (caller frees) and the covering record. */
static ldns_rdf *nsec3_closest_encloser(const ldns_rr_list *n3s, const ldns_rdf *qname,
                                        const ldns_rdf *zone, const ldns_rr **cover)
{
    unsigned ql = ldns_dname_label_count(qname), zl = ldns_dname_label_count(zone);
    for (unsigned n = ql; n-- > zl;) { /* candidates strictly above qname, down to the apex */
        ldns_rdf *ce = name_suffix(qname, n);
        const ldns_rr *m = ce ? lh_dnssec_nsec3_find(n3s, ce, false) : NULL;
        if (m && bitmap_cuts_below(ldns_nsec3_bitmap(m))) { /* RFC 5155 8.3 */
            ldns_rdf_deep_free(ce);
            return NULL;
        }
        if (m) {
            ldns_rdf *nc = name_suffix(qname, n + 1);
            *cover = nc ? lh_dnssec_nsec3_find(n3s, nc, true) : NULL;
            ldns_rdf_deep_free(nc);
            if (*cover) return ce;
            ldns_rdf_deep_free(ce);
            return NULL;
        }
        ldns_rdf_deep_free(ce);
    }
    return NULL;
}

void lh_dnssec_nsec3_deny(denial *d, const ldns_rr_list *n3s, const ldns_rdf *zone,
                          const ldns_rdf *qname, ldns_rr_type qtype, bool nx)
{
    const ldns_rr *m = nx ? NULL : lh_dnssec_nsec3_find(n3s, qname, false);
    if (m) {
        const ldns_rdf *bm = ldns_nsec3_bitmap(m);
        if (bitmap_denies(bm, qtype)) {
            d->verdict = LH_DNSSEC_SECURE;
            d->nodata = true;
            bitmap_bits(d, bm);
            snprintf(d->detail, sizeof d->detail, "NSEC3 matching the name denies the type");
        } else {
            snprintf(d->detail, sizeof d->detail, "the NSEC3 matching the name lists the type");
        }
        return;
    }
    const ldns_rr *cover = NULL;
    ldns_rdf *ce = nsec3_closest_encloser(n3s, qname, zone, &cover);
    if (!ce) {
        snprintf(d->detail, sizeof d->detail, "no NSEC3 closest-encloser proof");
        return;
    }
    bool optout = ldns_nsec3_optout(cover);
    ldns_rdf *w = name_wildcard(ce);
    if (!nx && qtype == LDNS_RR_TYPE_DS && optout) {
        d->verdict = LH_DNSSEC_INSECURE;
        d->reason = LH_DR_NSEC3_OPTOUT;
        snprintf(d->detail, sizeof d->detail, "NSEC3 opt-out covers the delegation");
    } else if (!nx) {
        const ldns_rr *wm = w ? lh_dnssec_nsec3_find(n3s, w, false) : NULL;
        if (wm && bitmap_denies(ldns_nsec3_bitmap(wm), qtype)) {
            d->verdict = LH_DNSSEC_SECURE;
            d->nodata = true;
            snprintf(d->detail, sizeof d->detail, "NSEC3 proves the wildcard lacks the type");
        } else {
            snprintf(d->detail, sizeof d->detail, "no NSEC3 matches the name");
        }
    } else if (w && lh_dnssec_nsec3_find(n3s, w, true)) {
        d->verdict = optout ? LH_DNSSEC_INSECURE : LH_DNSSEC_SECURE;
        d->reason = optout ? LH_DR_NSEC3_OPTOUT : LH_DR_NONE;
        snprintf(d->detail, sizeof d->detail, "NSEC3 closest-encloser proof%s",
                 optout ? " through an opt-out span" : "");
    } else {
        snprintf(d->detail, sizeof d->detail,
                 "no NSEC3 covers the wildcard at the closest encloser");
    }
    ldns_rdf_deep_free(w);
    ldns_rdf_deep_free(ce);
}

/* Usable NSEC3 records: SHA-1, at most the iteration cap (RFC 9276), and the parameters of the
 * first such record (RFC 5155 8.2: one set per zone; others are ignored), at most
 * MAX_NSEC3 of them. The bounds keep the hashing a message can demand small: each proof hashes
 * a name at most once per label. Sets *over when records were left out for their iterations,
 * *unknown for their hash. */
#define MAX_NSEC3 32
static bool nsec3_same_params(const ldns_rr *a, const ldns_rr *b)
{
    return ldns_nsec3_iterations(a) == ldns_nsec3_iterations(b) &&
           ldns_nsec3_salt_length(a) == ldns_nsec3_salt_length(b) &&
           ldns_rdf_compare(ldns_rr_rdf(a, 3), ldns_rr_rdf(b, 3)) == 0;
}

ldns_rr_list *lh_dnssec_nsec3_usable(const ldns_rr_list *all, bool *over, bool *unknown)
{
    ldns_rr_list *out = ldns_rr_list_new();
    for (size_t i = 0; out && i < ldns_rr_list_rr_count(all); i++) {
        ldns_rr *r = ldns_rr_list_rr(all, i);
        if (ldns_nsec3_algorithm(r) != 1)
            *unknown = true;
        else if (ldns_nsec3_iterations(r) > LH_DNSSEC_NSEC3_MAX_ITERATIONS)
            *over = true;
        else if (ldns_rr_list_rr_count(out) < MAX_NSEC3 &&
                 (ldns_rr_list_rr_count(out) == 0 || nsec3_same_params(ldns_rr_list_rr(out, 0), r)))
            ldns_rr_list_push_rr(out, r);
    }
    return out;
}
