/* dnssec_private.h - what the DNSSEC modules share and nothing else includes: the trust-anchor
 * and cache structures, the name and record helpers over ldns, and the denial-of-existence
 * checks. dnssec.c (the validation), dnssec_anchor.c, dnssec_cache.c and dnssec_denial.c. */
#ifndef LH_DNSSEC_PRIVATE_H
#define LH_DNSSEC_PRIVATE_H

#include "loophole/dnssec.h"

#include <ldns/ldns.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- names */

static inline bool name_eq(const ldns_rdf *a, const ldns_rdf *b)
{
    return ldns_dname_compare(a, b) == 0;
}

/* a is b or an ancestor of b */
static inline bool name_at_or_below(const ldns_rdf *b, const ldns_rdf *a)
{
    return name_eq(a, b) || ldns_dname_is_subdomain(b, a);
}

/* The rightmost `n` labels of `d` (n <= label count). */
static inline ldns_rdf *name_suffix(const ldns_rdf *d, unsigned n)
{
    unsigned count = ldns_dname_label_count(d);
    return ldns_dname_clone_from(d, (uint16_t)(count - n));
}

/* The longest common ancestor of a and b. */
static inline ldns_rdf *name_common(const ldns_rdf *a, const ldns_rdf *b)
{
    unsigned ca = ldns_dname_label_count(a), cb = ldns_dname_label_count(b);
    for (unsigned n = ca < cb ? ca : cb;; n--) {
        ldns_rdf *x = name_suffix(a, n), *y = name_suffix(b, n);
        bool eq = x && y && name_eq(x, y);
        ldns_rdf_deep_free(y);
        if (eq || n == 0) return x;
        ldns_rdf_deep_free(x);
    }
}

static inline ldns_rdf *name_wildcard(const ldns_rdf *parent)
{
    ldns_rdf *w = ldns_dname_new_frm_str("*");
    if (w && ldns_dname_cat(w, parent) != LDNS_STATUS_OK) {
        ldns_rdf_deep_free(w);
        return NULL;
    }
    return w;
}

/* The presentation form of a name, as ldns_rdf2str writes it (special characters escaped as
 * \c, the unprintable as \DDD), without its allocations: the validation names every zone and
 * owner it looks at for its chain lines. Truncated to cap. */
static inline void name_text(const ldns_rdf *d, char *out, size_t cap)
{
    if (!cap) return;
    if (!d || ldns_rdf_get_type(d) != LDNS_RDF_TYPE_DNAME) {
        char *s = d ? ldns_rdf2str(d) : NULL;
        snprintf(out, cap, "%s", s ? s : "?");
        free(s);
        return;
    }
    const uint8_t *p = ldns_rdf_data(d);
    size_t n = ldns_rdf_size(d), i = 0, o = 0;
    if (n == 0 || p[0] == 0) {
        snprintf(out, cap, ".");
        return;
    }
    while (i < n && p[i] && o + 6 < cap) {
        size_t len = p[i++];
        for (size_t k = 0; k < len && i < n && o + 6 < cap; k++, i++) {
            uint8_t c = p[i];
            if (c == '.' || c == ';' || c == '(' || c == ')' || c == '\\') {
                out[o++] = '\\';
                out[o++] = (char)c;
            } else if (c <= 0x20 || c >= 0x7f) {
                o += (size_t)snprintf(out + o, cap - o, "\\%03u", c);
            } else {
                out[o++] = (char)c;
            }
        }
        out[o++] = '.';
    }
    out[o] = 0;
}

/* Length of an uncompressed wire name, or 0 if it is not one. */
static inline size_t wire_name_len(const uint8_t *n)
{
    size_t i = 0;
    while (i < 255 && n[i]) {
        if (n[i] > 63) return 0;
        i += (size_t)n[i] + 1;
    }
    return i < 255 ? i + 1 : 0;
}

/* ---------------------------------------------------------------- records */

/* The rdata fields this file reads from each type; shorter records (a truncated or hostile
 * rdata that ldns still parsed) are ignored as if absent. */
static inline size_t min_rdfs(ldns_rr_type t)
{
    switch (t) {
    case LDNS_RR_TYPE_CNAME:
    case LDNS_RR_TYPE_DNAME:
        return 1;
    case LDNS_RR_TYPE_NSEC:
        return 1;
    case LDNS_RR_TYPE_DS:
    case LDNS_RR_TYPE_DNSKEY:
        return 4;
    case LDNS_RR_TYPE_NSEC3:
        return 5; /* an empty non-terminal has no bitmap */
    case LDNS_RR_TYPE_RRSIG:
        return 9;
    default:
        return 0;
    }
}

/* An NSEC/NSEC3 type bitmap as RFC 4034 4.1.2 has it: windows in increasing order, each 1-32
 * bytes long, filling the field exactly. ldns 1.8.3 parses any bytes as a bitmap and
 * ldns_nsec_bitmap_covers_type reads one byte past a field that ends in a lone window number,
 * so records with another bitmap are ignored. NULL (no bitmap) is well formed. */
static inline bool bitmap_wellformed(const ldns_rdf *bm)
{
    if (!bm) return true;
    const uint8_t *p = ldns_rdf_data(bm);
    size_t n = ldns_rdf_size(bm), i = 0;
    int prev = -1;
    if (n == 0) return false;
    while (i < n) {
        if (n - i < 2 || p[i] <= prev || p[i + 1] < 1 || p[i + 1] > 32 ||
            (size_t)p[i + 1] > n - i - 2)
            return false;
        prev = p[i];
        i += 2 + (size_t)p[i + 1];
    }
    return true;
}

/* The records of `l` with this owner (NULL: any) and type; for RRSIGs `covered` selects the type
 * they cover (0: any). A shallow list: free with ldns_rr_list_free. */
static inline ldns_rr_list *select_rrs(const ldns_rr_list *l, const ldns_rdf *owner,
                                       ldns_rr_type type, ldns_rr_type covered)
{
    ldns_rr_list *out = ldns_rr_list_new();
    if (!out) return NULL;
    for (size_t i = 0; l && i < ldns_rr_list_rr_count(l); i++) {
        ldns_rr *rr = ldns_rr_list_rr(l, i);
        if (ldns_rr_get_type(rr) != type || ldns_rr_rd_count(rr) < min_rdfs(type)) continue;
        if ((type == LDNS_RR_TYPE_NSEC || type == LDNS_RR_TYPE_NSEC3) &&
            !bitmap_wellformed(ldns_rr_rdf(rr, type == LDNS_RR_TYPE_NSEC ? 1 : 5)))
            continue;
        if (owner && !name_eq(ldns_rr_owner(rr), owner)) continue;
        if (type == LDNS_RR_TYPE_RRSIG && covered &&
            ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(rr)) != covered)
            continue;
        ldns_rr_list_push_rr(out, rr);
    }
    return out;
}

static inline uint16_t dnskey_flags(const ldns_rr *k)
{
    return ldns_rr_rd_count(k) >= 4 ? ldns_rdf2native_int16(ldns_rr_rdf(k, 0)) : 0;
}
static inline uint8_t dnskey_alg(const ldns_rr *k)
{
    return ldns_rr_rd_count(k) >= 4 ? ldns_rdf2native_int8(ldns_rr_rdf(k, 2)) : 0;
}
static inline bool dnskey_usable(const ldns_rr *k) /* zone key, protocol 3 (RFC 4034 2.1) */
{
    return ldns_rr_rd_count(k) >= 4 && (dnskey_flags(k) & 0x0100) &&
           ldns_rdf2native_int8(ldns_rr_rdf(k, 1)) == 3;
}

static inline bool digest_supported(uint8_t d)
{
    return d == LDNS_SHA1 || d == LDNS_SHA256 || d == LDNS_SHA384;
}

static inline uint32_t min_ttl(const ldns_rr_list *l, uint32_t cap)
{
    for (size_t i = 0; l && i < ldns_rr_list_rr_count(l); i++)
        if (ldns_rr_ttl(ldns_rr_list_rr(l, i)) < cap) cap = ldns_rr_ttl(ldns_rr_list_rr(l, i));
    return cap;
}

/* ---------------------------------------------------------------- anchors (dnssec_anchor.c) */

typedef struct anchor {
    ldns_rdf *owner;
    ldns_rr_list *ds, *keys; /* deep lists */
} anchor;

struct lh_dnssec_anchors {
    anchor *v;
    size_t n, nrecords;
    ldns_rdf **insecure;
    size_t ninsecure;
};

/* The closest trust anchor at or above `name`; NULL if none, or if a negative trust anchor is
 * closer (then *nta is set). */
const anchor *lh_dnssec_anchor_closest(const lh_dnssec_anchors *a, const ldns_rdf *name, bool *nta);

/* ---------------------------------------------------------------- key sets (dnssec_crypto.c) */

#define MAX_ZONE_KEYS 64 /* DNSKEYs of a zone considered at all */

/* A zone's validated DNSKEYs with what checking a signature needs of each, computed once: the
 * key tag, the algorithm and the OpenSSL key (built on first use). Shared by the cache entry
 * and the validations that use it, so that an eviction during a walk frees nothing in use. */
typedef struct keyset {
    unsigned refs;
    size_t n;
    ldns_rr_list *keys; /* deep, n records */
    uint16_t tag[MAX_ZONE_KEYS];
    uint8_t alg[MAX_ZONE_KEYS];
    uint8_t pk_state[MAX_ZONE_KEYS]; /* 1: pk[i] was built (NULL: the key does not parse) */
    struct evp_pkey_st *pk[MAX_ZONE_KEYS];
} keyset;

/* A copy of the first MAX_ZONE_KEYS records of `keys`, one reference. */
keyset *lh_keyset_new(const ldns_rr_list *keys);
keyset *lh_keyset_ref(keyset *k);
void lh_keyset_unref(keyset *k);

/* Checks `sig` over `rrset` with the keys cand[0..ncand) of ks (the caller matched their tag and
 * algorithm), as ldns_verify_rrsig_keylist_time does: LDNS_STATUS_OK, or why not (a bad
 * signature, or the validity window once a key verified it). *crypto counts the public-key
 * operations made; a signature verified before over the same data with the same key costs none.
 * c may be NULL (no memory of verified signatures). */
typedef struct lh_dnssec_cache lh_dnssec_cache;
ldns_status lh_dnssec_check_sig(lh_dnssec_cache *c, const ldns_rr_list *rrset, const ldns_rr *sig,
                                keyset *ks, const size_t *cand, size_t ncand, time_t now,
                                unsigned *crypto);

/* ---------------------------------------------------------------- cache (dnssec_cache.c) */

enum fact { FACT_KEYS = 1, FACT_NOCUT, FACT_INSECURE };

/* A signature that verified: SHA-256 of (DNSKEY RDATA, signed data, signature), until the
 * signature's expiration. */
typedef struct lh_sigseen {
    uint8_t digest[32];
    time_t expires;
} lh_sigseen;
#define LH_SIGSEEN 8192 /* per cache (per loop): 320 KiB */
#define LH_MDS 4        /* SHA1, SHA256, SHA384, SHA512 */

typedef struct centry {
    uint64_t hash;
    time_t expires;
    ldns_rdf *name; /* canonical */
    keyset *keys;   /* FACT_KEYS: the zone's usable DNSKEYs (one reference) */
    uint8_t fact;
    uint8_t reason; /* FACT_INSECURE: why */
    char desc[480]; /* the chain line, shown again when the fact is reused */
} centry;

struct lh_dnssec_cache {
    centry *slots;
    unsigned cap; /* power of two; looked up in 4-way buckets */
    uint64_t hits, misses, inserts, evictions;
    uint64_t sig_checks, sig_hits; /* public-key operations made; ones a remembered result saved */
    lh_sigseen *sigs;              /* LH_SIGSEEN, 4-way buckets */
    struct evp_md_st *md[LH_MDS];  /* fetched on first use */
    struct evp_md_ctx_st *mdctx;   /* for the digests of sigs */
    ldns_buffer *buf;              /* the signed data being checked */
};

/* The live entry for `name`, or NULL. The pointer is valid until the next lh_dnssec_cache_put. */
const centry *lh_dnssec_cache_get(lh_dnssec_cache *c, const ldns_rdf *name, time_t now);
/* Stores a fact with a reference to keys. Replaces the same name, else a free or expired slot, else
 * the entry of the bucket that expires first. */
void lh_dnssec_cache_put(lh_dnssec_cache *c, const ldns_rdf *name, enum fact f, uint8_t reason,
                         keyset *keys, uint32_t ttl, time_t now, const char *desc);

/* ---------------------------------------------------------------- denial (dnssec_denial.c) */

typedef struct denial {
    enum lh_dnssec_verdict verdict; /* secure: proven; insecure: opt-out / iterations; bogus */
    enum lh_dnssec_reason reason;
    bool nodata; /* proven: the name exists without the type (else: the name does not exist) */
    bool has_ns, has_soa, has_ds; /* the matching NSEC/NSEC3's bitmap, when nodata */
    char detail[256];
} denial;

/* The proofs, over records whose signatures the caller has verified. They fill d->verdict
 * (secure: proven), d->nodata and the bitmap bits, or leave d->verdict bogus with a detail. */
void lh_dnssec_nsec_deny(denial *d, const ldns_rr_list *nsecs, const ldns_rdf *qname,
                         ldns_rr_type qtype, bool nx);
void lh_dnssec_nsec3_deny(denial *d, const ldns_rr_list *n3s, const ldns_rdf *zone,
                          const ldns_rdf *qname, ldns_rr_type qtype, bool nx);
/* An NSEC covering `name` that may speak for it (not a delegation's or DNAME's above it). */
const ldns_rr *lh_dnssec_nsec_covering(const ldns_rr_list *nsecs, const ldns_rdf *name);
/* An NSEC covering `name` that also proves nothing exists below it (not an empty non-terminal). */
const ldns_rr *lh_dnssec_nsec_absent(const ldns_rr_list *nsecs, const ldns_rdf *name);
/* The NSEC3 matching (cover false) or covering `name` in a list from lh_dnssec_nsec3_usable. */
const ldns_rr *lh_dnssec_nsec3_find(const ldns_rr_list *n3s, const ldns_rdf *name, bool cover);
ldns_rr_list *lh_dnssec_nsec3_usable(const ldns_rr_list *all, bool *over, bool *unknown);

#endif
