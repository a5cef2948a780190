/* validate.c - see validate.h. */
#include "loophole/validate.h"
#include "loophole/dnssec_config.h"

#include <ctype.h>
#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_CACHE_ENTRIES 4096 /* DNSKEY RRsets and zone-cut facts per loop */

const char *const lh_dnssec_path_names[3] = {"unknown", "carries", "strips"};

int lh_validator_init(lh_validator *v, const lh_config *cfg, char *err, size_t errlen)
{
    memset(v, 0, sizeof *v);
    v->mode = cfg->dnssec;
    if (cfg->dnssec < LH_DNSSEC_MODE_VALIDATE) return 0;
    v->anchors = lh_dnssec_anchors_from_config(cfg, err, errlen);
    if (!v->anchors) return -1;
    v->keys = lh_dnssec_cache_new(KEY_CACHE_ENTRIES);
    if (!v->keys) {
        lh_dnssec_anchors_free(v->anchors);
        v->anchors = NULL;
        snprintf(err, errlen, "out of memory for the DNSSEC key cache");
        return -1;
    }
    return 0;
}

void lh_validator_free(lh_validator *v)
{
    if (v->keys) lh_dnssec_cache_free(v->keys);
    if (v->anchors) lh_dnssec_anchors_free(v->anchors);
    v->keys = NULL;
    v->anchors = NULL;
}

/* FNV-1a over the name in lower case, without its final dot; never 0 (0 marks a free slot). */
static uint64_t zone_hash(const char *text, size_t len)
{
    while (len && text[len - 1] == '.')
        len--;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)tolower((unsigned char)text[i]);
        h *= 0x100000001b3ull;
    }
    return h ? h : 1;
}

#define WAYS 4
static bool signed_has(const lh_validator *v, uint64_t h)
{
    const uint64_t *b = &v->signed_zones[(h % (LH_SIGNED_ZONES / WAYS)) * WAYS];
    for (unsigned i = 0; i < WAYS; i++)
        if (b[i] == h) return true;
    return false;
}

void lh_validator_note_signed(lh_validator *v, const char *zone)
{
    if (!zone[0]) return;
    uint64_t h = zone_hash(zone, strlen(zone));
    if (signed_has(v, h)) return;
    uint64_t *b = &v->signed_zones[(h % (LH_SIGNED_ZONES / WAYS)) * WAYS];
    for (unsigned i = 0; i < WAYS; i++)
        if (!b[i]) {
            b[i] = h;
            return;
        }
    b[v->signed_next++ % WAYS] = h; /* a full bucket: replace in turn */
}

void lh_validator_note_validated(lh_validator *v, const lh_dnssec_val *val)
{
    const char *zone;
    for (unsigned i = 0; (zone = lh_dnssec_val_signer(val, i)) != NULL; i++)
        lh_validator_note_signed(v, zone);
}

bool lh_validator_under_signed(const lh_validator *v, const uint8_t *qname, char *zone, size_t cap)
{
    char text[LDNS_MAX_DOMAINLEN * 4 + 2];
    size_t n = 0;
    /* Labels joined with dots (no escaping: a dot inside a label makes a name nobody signs). */
    for (const uint8_t *p = qname; *p && n + *p + 2 < sizeof text; p += *p + 1) {
        memcpy(text + n, p + 1, *p);
        n += *p;
        text[n++] = '.';
    }
    text[n] = 0;
    for (size_t i = 0; i < n; i++)
        if ((i == 0 || text[i - 1] == '.') && signed_has(v, zone_hash(text + i, n - i))) {
            snprintf(zone, cap, "%s", text + i);
            return true;
        }
    snprintf(zone, cap, ".");
    return signed_has(v, zone_hash(".", 1)); /* the root */
}

static bool dnssec_type(ldns_rr_type t)
{
    return t == LDNS_RR_TYPE_RRSIG || t == LDNS_RR_TYPE_NSEC || t == LDNS_RR_TYPE_NSEC3;
}

static void strip_list(ldns_rr_list *l, uint16_t qtype)
{
    size_t k = 0, n = ldns_rr_list_rr_count(l);
    for (size_t i = 0; i < n; i++) {
        ldns_rr *rr = ldns_rr_list_rr(l, i);
        if (dnssec_type(ldns_rr_get_type(rr)) && ldns_rr_get_type(rr) != qtype)
            ldns_rr_free(rr);
        else
            ldns_rr_list_set_rr(l, rr, k++);
    }
    ldns_rr_list_set_rr_count(l, k);
}

/* Sets the section counts from p's lists and, when records were removed (fewer than
 * `before`), writes p back over msg. ldns writes the question as it parsed it (0x20 case
 * kept) and compresses names its own way: the result may even be a little longer than the
 * original. Returns the message's length, or 0 when it does not fit in cap. */
static size_t rewrite_if_changed(ldns_pkt *p, size_t before, uint8_t *msg, size_t len, size_t cap)
{
    ldns_pkt_set_ancount(p, ldns_rr_list_rr_count(ldns_pkt_answer(p)));
    ldns_pkt_set_nscount(p, ldns_rr_list_rr_count(ldns_pkt_authority(p)));
    ldns_pkt_set_arcount(p, ldns_rr_list_rr_count(ldns_pkt_additional(p)));
    if ((size_t)ldns_pkt_ancount(p) + ldns_pkt_nscount(p) + ldns_pkt_arcount(p) == before)
        return len;
    uint8_t *w = NULL;
    size_t wlen = 0, out = 0;
    if (ldns_pkt2wire(&w, p, &wlen) == LDNS_STATUS_OK && wlen <= cap) {
        memcpy(msg, w, wlen);
        out = wlen;
    }
    free(w);
    return out;
}

size_t lh_dnssec_strip_records(uint8_t *msg, size_t len, size_t cap, uint16_t qtype)
{
    ldns_pkt *p = NULL;
    if (ldns_wire2pkt(&p, msg, len) != LDNS_STATUS_OK) return 0;
    size_t before = (size_t)ldns_pkt_ancount(p) + ldns_pkt_nscount(p) + ldns_pkt_arcount(p);
    strip_list(ldns_pkt_answer(p), qtype);
    strip_list(ldns_pkt_authority(p), qtype);
    strip_list(ldns_pkt_additional(p), qtype);
    size_t out = rewrite_if_changed(p, before, msg, len, cap);
    ldns_pkt_free(p);
    return out;
}

static bool covers(const ldns_rr *rr, ldns_rr_type a, ldns_rr_type b, ldns_rr_type c)
{
    ldns_rr_type t = ldns_rr_get_type(rr);
    if (t == LDNS_RR_TYPE_RRSIG) {
        const ldns_rdf *tc = ldns_rr_rrsig_typecovered(rr);
        if (!tc) return false;
        t = ldns_rdf2rr_type(tc);
    }
    return t == a || t == b || t == c;
}

/* Keeps the records of `l` that `keep` says yes to (the others are freed). */
static void keep_list(ldns_rr_list *l, bool (*keep)(const ldns_rr *, void *), void *ctx)
{
    size_t k = 0, n = ldns_rr_list_rr_count(l);
    for (size_t i = 0; i < n; i++) {
        ldns_rr *rr = ldns_rr_list_rr(l, i);
        if (keep(rr, ctx))
            ldns_rr_list_set_rr(l, rr, k++);
        else
            ldns_rr_free(rr);
    }
    ldns_rr_list_set_rr_count(l, k);
}

#define CHAIN_MAX 17 /* the question and the validator's 16 CNAMEs */
typedef struct {
    const ldns_rdf *names[CHAIN_MAX];
    unsigned n;
    ldns_rr_type qtype;
    const ldns_rr_list *an; /* the answer section (its DNAMEs) */
} chain;

static bool on_chain(const ldns_rr *rr, void *ctx)
{
    const chain *c = ctx;
    /* a DNAME above a link synthesised its CNAME, and the validator checked it instead */
    if (covers(rr, LDNS_RR_TYPE_DNAME, LDNS_RR_TYPE_DNAME, LDNS_RR_TYPE_DNAME)) {
        /* only a DNAME that synthesises a link of the chain (its RRSIG: of an owner that has
         * such a DNAME) */
        for (size_t j = 0; j < ldns_rr_list_rr_count(c->an); j++) {
            const ldns_rr *d = ldns_rr_list_rr(c->an, j);
            if (ldns_rr_get_type(d) != LDNS_RR_TYPE_DNAME || ldns_rr_rd_count(d) != 1 ||
                ldns_dname_compare(ldns_rr_owner(d), ldns_rr_owner(rr)) != 0)
                continue;
            for (unsigned i = 0; i + 1 < c->n; i++) {
                const ldns_rdf *nm = c->names[i], *t = ldns_rr_rdf(d, 0);
                if (!ldns_dname_is_subdomain(nm, ldns_rr_owner(d))) continue;
                size_t pre = ldns_rdf_size(nm) - ldns_rdf_size(ldns_rr_owner(d));
                const ldns_rdf *next = c->names[i + 1];
                if (ldns_rdf_size(next) == pre + ldns_rdf_size(t)) {
                    ldns_rdf *syn = NULL;
                    uint8_t buf[LDNS_MAX_DOMAINLEN * 2 + 2];
                    memcpy(buf, ldns_rdf_data(nm), pre);
                    memcpy(buf + pre, ldns_rdf_data(t), ldns_rdf_size(t));
                    syn = ldns_dname_new_frm_data((uint16_t)(pre + ldns_rdf_size(t)), buf);
                    bool same = syn && ldns_dname_compare(syn, next) == 0;
                    ldns_rdf_deep_free(syn);
                    if (same) return true;
                }
            }
        }
        return false;
    }
    if (!covers(rr, c->qtype, LDNS_RR_TYPE_CNAME, c->qtype)) return false;
    for (unsigned i = 0; i < c->n; i++)
        if (ldns_dname_compare(ldns_rr_owner(rr), c->names[i]) == 0) return true;
    return false;
}

static bool proof(const ldns_rr *rr, void *ctx)
{
    (void)ctx;
    return covers(rr, LDNS_RR_TYPE_SOA, LDNS_RR_TYPE_NSEC, LDNS_RR_TYPE_NSEC3);
}

static bool nothing(const ldns_rr *rr, void *ctx)
{
    (void)rr;
    (void)ctx;
    return false;
}

size_t lh_dnssec_keep_validated(uint8_t *msg, size_t len, size_t cap, uint16_t qtype)
{
    ldns_pkt *p = NULL;
    if (ldns_wire2pkt(&p, msg, len) != LDNS_STATUS_OK) return 0;
    ldns_rr_list *q = ldns_pkt_question(p), *an = ldns_pkt_answer(p);
    if (ldns_rr_list_rr_count(q) != 1) {
        ldns_pkt_free(p);
        return 0;
    }
    chain c = {.names = {ldns_rr_owner(ldns_rr_list_rr(q, 0))}, .n = 1, .qtype = qtype, .an = an};
    /* The chain as the validator walked it: from the question, one CNAME per link. */
    for (bool more = qtype != LDNS_RR_TYPE_CNAME; more && c.n < CHAIN_MAX;) {
        more = false;
        for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
            ldns_rr *rr = ldns_rr_list_rr(an, i);
            if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME && ldns_rr_rd_count(rr) == 1 &&
                ldns_dname_compare(ldns_rr_owner(rr), c.names[c.n - 1]) == 0) {
                c.names[c.n++] = ldns_rr_rdf(rr, 0);
                more = true;
                break;
            }
        }
    }
    size_t before = (size_t)ldns_pkt_ancount(p) + ldns_pkt_nscount(p) + ldns_pkt_arcount(p);
    /* The chain's names point into answer records: filter a copy of the list's order first. */
    ldns_rr_list *keep = ldns_rr_list_new(), *drop = ldns_rr_list_new();
    for (size_t i = 0; keep && drop && i < ldns_rr_list_rr_count(an); i++) {
        ldns_rr *rr = ldns_rr_list_rr(an, i);
        ldns_rr_list_push_rr(on_chain(rr, &c) ? keep : drop, rr);
    }
    size_t out = 0;
    if (keep && drop) {
        ldns_rr_list_set_rr_count(an, 0);
        for (size_t i = 0; i < ldns_rr_list_rr_count(keep); i++)
            ldns_rr_list_push_rr(an, ldns_rr_list_rr(keep, i));
        ldns_rr_list_deep_free(drop);
        drop = NULL;
        keep_list(ldns_pkt_authority(p), proof, NULL);
        keep_list(ldns_pkt_additional(p), nothing, NULL);
        out = rewrite_if_changed(p, before, msg, len, cap);
    }
    ldns_rr_list_free(keep);
    if (drop) ldns_rr_list_free(drop);
    ldns_pkt_free(p);
    return out;
}

enum lh_dnssec_path lh_dnssec_probe_read(const uint8_t *msg, size_t len)
{
    ldns_pkt *p = NULL;
    if (ldns_wire2pkt(&p, msg, len) != LDNS_STATUS_OK) return LH_DNSSEC_PATH_UNKNOWN;
    bool key = false, sig = false;
    ldns_rr_list *an = ldns_pkt_answer(p);
    ldns_rr_list *q = ldns_pkt_question(p);
    ldns_rdf *zone = ldns_rr_list_rr_count(q) ? ldns_rr_owner(ldns_rr_list_rr(q, 0)) : NULL;
    for (size_t i = 0; zone && i < ldns_rr_list_rr_count(an); i++) {
        ldns_rr *rr = ldns_rr_list_rr(an, i);
        if (ldns_dname_compare(ldns_rr_owner(rr), zone) != 0) continue;
        if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_DNSKEY) key = true;
        if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_RRSIG && ldns_rr_rrsig_typecovered(rr) &&
            ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(rr)) == LDNS_RR_TYPE_DNSKEY)
            sig = true;
    }
    enum lh_dnssec_path r = ldns_pkt_get_rcode(p) != LDNS_RCODE_NOERROR || !key
                                ? LH_DNSSEC_PATH_UNKNOWN
                            : sig ? LH_DNSSEC_PATH_CARRIES
                                  : LH_DNSSEC_PATH_STRIPS;
    ldns_pkt_free(p);
    return r;
}
