/* test_dnssec.c - the validator on wire messages signed here, in memory, with ldns: a parent
 * zone t. (the trust anchor, DS form, read by the anchor parser) with a signed child c.t.
 * The clock is injected, so signature windows and cache expiry are tested without waiting. */
#include "unit.h"

#include "loophole/config.h"
#include "loophole/dnssec.h"
#include "loophole/validate.h"
#include "loophole/dnssec_config.h"

#include <ldns/ldns.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdlib.h>
#include <unistd.h>

#define T0 1700000000 /* "now" for these tests */
#define TTL 3600

typedef struct world {
    ldns_key_list *kp, *kc;       /* parent and child signing keys */
    ldns_rr *dnskey_p, *dnskey_c; /* their DNSKEY records */
    ldns_rr_list *resp_rrs[8];    /* answer sections of the DS/DNSKEY responses */
    ldns_rr_list *resp_auth[8];   /* authority sections (NODATA) */
    const char *resp_name[8];
    ldns_rr_type resp_type[8];
    unsigned nresp;
    char anchor[512];
} world;

static ldns_rr *rr(const char *text)
{
    ldns_rr *r = NULL;
    if (ldns_rr_new_frm_str(&r, text, TTL, NULL, NULL) != LDNS_STATUS_OK) return NULL;
    return r;
}

static ldns_signing_algorithm make_key_alg = LDNS_SIGN_ECDSAP256SHA256;

static ldns_key_list *make_key(const char *owner, uint32_t inception, uint32_t expiration,
                               uint16_t flags, ldns_rr **dnskey)
{
    ldns_key *k = ldns_key_new_frm_algorithm(
        make_key_alg, make_key_alg == LDNS_SIGN_ECDSAP256SHA256 ? 256 : 2048);
    ldns_key_set_pubkey_owner(k, ldns_dname_new_frm_str(owner));
    ldns_key_set_flags(k, flags);
    ldns_key_set_inception(k, inception);
    ldns_key_set_expiration(k, expiration);
    *dnskey = ldns_key2rr(k);
    ldns_rr_set_ttl(*dnskey, TTL);
    ldns_key_set_keytag(k, ldns_calc_keytag(*dnskey));
    ldns_key_list *l = ldns_key_list_new();
    ldns_key_list_push_key(l, k);
    return l;
}

/* rrset plus its signatures, appended to out */
static void signed_set(ldns_rr_list *out, ldns_rr_list *set, ldns_key_list *keys, bool sign)
{
    ldns_rr_list *sigs = sign ? ldns_sign_public(set, keys) : NULL;
    for (size_t i = 0; i < ldns_rr_list_rr_count(set); i++)
        ldns_rr_list_push_rr(out, ldns_rr_clone(ldns_rr_list_rr(set, i)));
    for (size_t i = 0; sigs && i < ldns_rr_list_rr_count(sigs); i++)
        ldns_rr_list_push_rr(out, ldns_rr_clone(ldns_rr_list_rr(sigs, i)));
    ldns_rr_list_deep_free(sigs);
}

static ldns_rr_list *one(ldns_rr *r)
{
    ldns_rr_list *l = ldns_rr_list_new();
    ldns_rr_list_push_rr(l, r);
    return l;
}

/* child_flags: the child key's DNSKEY flags (257; 385 adds REVOKE) */
static void world_init(world *w, uint32_t inception, uint32_t expiration, uint16_t child_flags)
{
    memset(w, 0, sizeof *w);
    w->kp = make_key("t.", inception, expiration, 257, &w->dnskey_p);
    w->kc = make_key("c.t.", inception, expiration, child_flags, &w->dnskey_c);
    ldns_rr *ds_p = ldns_key_rr2ds(w->dnskey_p, LDNS_SHA256);
    char *s = ldns_rr2str(ds_p);
    snprintf(w->anchor, sizeof w->anchor, "; the parent's DS\n%s", s);
    free(s);
    ldns_rr_free(ds_p);

    ldns_rr_list *l = ldns_rr_list_new(), *set = one(ldns_rr_clone(w->dnskey_p));
    signed_set(l, set, w->kp, true);
    ldns_rr_list_deep_free(set);
    w->resp_name[w->nresp] = "t.", w->resp_type[w->nresp] = LDNS_RR_TYPE_DNSKEY;
    w->resp_rrs[w->nresp++] = l;

    l = ldns_rr_list_new();
    ldns_rr *ds_c = ldns_key_rr2ds(w->dnskey_c, LDNS_SHA256);
    ldns_rr_set_ttl(ds_c, TTL);
    set = one(ds_c);
    signed_set(l, set, w->kp, true);
    ldns_rr_list_deep_free(set);
    w->resp_name[w->nresp] = "c.t.", w->resp_type[w->nresp] = LDNS_RR_TYPE_DS;
    w->resp_rrs[w->nresp++] = l;

    l = ldns_rr_list_new();
    set = one(ldns_rr_clone(w->dnskey_c));
    signed_set(l, set, w->kc, true);
    ldns_rr_list_deep_free(set);
    w->resp_name[w->nresp] = "c.t.", w->resp_type[w->nresp] = LDNS_RR_TYPE_DNSKEY;
    w->resp_rrs[w->nresp++] = l;

    /* DS www.c.t.: NODATA, proven by the NSEC at www.c.t. (not a zone cut) */
    l = ldns_rr_list_new();
    set = one(rr("c.t. 3600 IN SOA ns.t. admin.t. 1 3600 600 86400 300"));
    signed_set(l, set, w->kc, true);
    ldns_rr_list_deep_free(set);
    set = one(rr("www.c.t. 300 IN NSEC c.t. A RRSIG NSEC"));
    signed_set(l, set, w->kc, true);
    ldns_rr_list_deep_free(set);
    w->resp_name[w->nresp] = "www.c.t.", w->resp_type[w->nresp] = LDNS_RR_TYPE_DS;
    w->resp_auth[w->nresp] = l;
    w->resp_rrs[w->nresp++] = ldns_rr_list_new();
}

static void world_free(world *w)
{
    ldns_key_list_free(w->kp);
    ldns_key_list_free(w->kc);
    ldns_rr_free(w->dnskey_p);
    ldns_rr_free(w->dnskey_c);
    for (unsigned i = 0; i < w->nresp; i++) {
        ldns_rr_list_deep_free(w->resp_rrs[i]);
        ldns_rr_list_deep_free(w->resp_auth[i]);
    }
}

/* The world's trust anchor (the DS of t.), loaded as a file would be. */
static lh_dnssec_anchors *world_anchors(const world *w)
{
    char err[512];
    lh_dnssec_anchors *a = lh_dnssec_anchors_new();
    CHECK_EQ(lh_dnssec_anchors_load_text(a, w->anchor, strlen(w->anchor), "t.ds", err, sizeof err),
             0);
    return a;
}

/* A response to name/type with these sections (lists are copied), as wire. */
static size_t make_msg(uint8_t *out, size_t cap, const char *name, ldns_rr_type type,
                       ldns_pkt_rcode rcode, const ldns_rr_list *an, const ldns_rr_list *ns)
{
    ldns_pkt *p = ldns_pkt_new();
    ldns_pkt_set_id(p, 4711);
    ldns_pkt_set_qr(p, true);
    ldns_pkt_set_rd(p, true);
    ldns_pkt_set_rcode(p, (uint8_t)rcode);
    ldns_rr *q = ldns_rr_new();
    ldns_rr_set_owner(q, ldns_dname_new_frm_str(name));
    ldns_rr_set_type(q, type);
    ldns_rr_set_class(q, LDNS_RR_CLASS_IN);
    ldns_rr_set_question(q, true);
    ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, q);
    for (size_t i = 0; an && i < ldns_rr_list_rr_count(an); i++)
        ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, ldns_rr_clone(ldns_rr_list_rr(an, i)));
    for (size_t i = 0; ns && i < ldns_rr_list_rr_count(ns); i++)
        ldns_pkt_push_rr(p, LDNS_SECTION_AUTHORITY, ldns_rr_clone(ldns_rr_list_rr(ns, i)));
    uint8_t *wire = NULL;
    size_t n = 0;
    if (ldns_pkt2wire(&wire, p, &n) != LDNS_STATUS_OK || n > cap) n = 0;
    if (n) memcpy(out, wire, n);
    free(wire);
    ldns_pkt_free(p);
    return n;
}

static unsigned fetches;
static size_t fetch(void *ctx, const lh_dnssec_need *need, uint8_t *buf, size_t cap)
{
    world *w = ctx;
    fetches++;
    for (unsigned i = 0; i < w->nresp; i++)
        if (w->resp_type[i] == need->type && !strcasecmp(w->resp_name[i], need->text))
            return make_msg(buf, cap, need->text, need->type, LDNS_RCODE_NOERROR, w->resp_rrs[i],
                            w->resp_auth[i]);
    return 0;
}

static const uint8_t *wire_name(const char *text, uint8_t *buf)
{
    ldns_rdf *d = ldns_dname_new_frm_str(text);
    memcpy(buf, ldns_rdf_data(d), ldns_rdf_size(d));
    ldns_rdf_deep_free(d);
    return buf;
}

/* www.c.t. A, signed by the child (sign=false: no RRSIG; tamper: one signature byte flipped) */
static size_t answer_www(world *w, uint8_t *out, size_t cap, bool sign, bool tamper)
{
    ldns_rr_list *an = ldns_rr_list_new(), *set = one(rr("www.c.t. 3600 IN A 192.0.2.1"));
    signed_set(an, set, w->kc, sign);
    if (tamper) {
        ldns_rr *sig = ldns_rr_list_rr(an, 1);
        ldns_rdf *sd = ldns_rr_rdf(sig, 8);
        ldns_rdf_data(sd)[5] ^= 0x40;
    }
    size_t n = make_msg(out, cap, "www.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, NULL);
    ldns_rr_list_deep_free(set);
    ldns_rr_list_deep_free(an);
    return n;
}

static enum lh_dnssec_verdict run(world *w, lh_dnssec_anchors *a, lh_dnssec_cache *c,
                                  const uint8_t *msg, size_t n, const char *qname, uint16_t qtype,
                                  time_t now, lh_dnssec_result *res)
{
    uint8_t q[256];
    return lh_dnssec_validate(a, c, msg, n, wire_name(qname, q), qtype, now, fetch, w, res);
}

/* An RRSIG present in the answer but never verified (another signer's, in the authority
 * section) does not make its zone "seen signed": only a signature that verified does. */
static void test_signers_verified(world *w, lh_dnssec_anchors *a, lh_dnssec_cache *cache)
{
    ldns_rr_list *an = ldns_rr_list_new(), *set = one(rr("www.c.t. 3600 IN A 192.0.2.1"));
    signed_set(an, set, w->kc, true);
    ldns_rr *forged = ldns_rr_clone(ldns_rr_list_rr(an, 1));
    ldns_rdf_deep_free(ldns_rr_set_rdf(forged, ldns_dname_new_frm_str("victim.t."), 7));
    ldns_rdf_deep_free(ldns_rr_owner(forged));
    ldns_rr_set_owner(forged, ldns_dname_new_frm_str("victim.t."));
    ldns_rr_list *ns = one(forged);
    uint8_t msg[4096], q[256];
    size_t n = make_msg(msg, sizeof msg, "www.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, ns);
    CHECK(n > 0);
    lh_dnssec_val *v =
        lh_dnssec_val_new(a, cache, msg, n, wire_name("www.c.t.", q), LDNS_RR_TYPE_A, T0);
    lh_dnssec_need need;
    uint8_t buf[4096];
    for (int i = 0; i < 8 && lh_dnssec_val_run(v, &need) == LH_DNSSEC_NEED; i++)
        lh_dnssec_val_provide(v, buf, fetch(w, &need, buf, sizeof buf));
    CHECK_EQ(lh_dnssec_val_result(v)->verdict, LH_DNSSEC_SECURE);
    CHECK_STR(lh_dnssec_val_signer(v, 0), "c.t.");
    CHECK(lh_dnssec_val_signer(v, 1) == NULL);
    lh_dnssec_val_free(v);
    ldns_rr_list_deep_free(set);
    ldns_rr_list_deep_free(an);
    ldns_rr_list_deep_free(ns);
}

static void set_owner(ldns_rr_list *l, const char *owner)
{
    for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
        ldns_rdf *old = ldns_rr_owner(ldns_rr_list_rr(l, i));
        ldns_rr_set_owner(ldns_rr_list_rr(l, i), ldns_dname_new_frm_str(owner));
        ldns_rdf_deep_free(old);
    }
}

/* The signed SOA of c.t. and these NSEC records (each signed by the child), as an authority
 * section. */
static ldns_rr_list *child_denial(world *w, const char *const *nsecs, size_t n)
{
    ldns_rr_list *ns = ldns_rr_list_new(),
                 *set = one(rr("c.t. 3600 IN SOA ns.t. admin.t. 1 3600 600 86400 300"));
    signed_set(ns, set, w->kc, true);
    ldns_rr_list_deep_free(set);
    for (size_t i = 0; i < n; i++) {
        set = one(rr(nsecs[i]));
        signed_set(ns, set, w->kc, true);
        ldns_rr_list_deep_free(set);
    }
    return ns;
}

/* Proofs that look right but are not (found in review). */
static void test_forged_proofs(world *w, lh_dnssec_anchors *a, lh_dnssec_cache *cache,
                               lh_dnssec_result *res)
{
    uint8_t msg[4096];
    /* *.c.t. A, signed (RRSIG labels 2), replayed as the answer for `owner` */
    ldns_rr_list *an = ldns_rr_list_new(), *set = one(rr("*.c.t. 3600 IN A 192.0.2.9"));
    signed_set(an, set, w->kc, true);
    ldns_rr_list_deep_free(set);

    /* The genuine case: the NSEC c.t. -> x.c.t. covers www.c.t., the next closer name. */
    static const char *const apex_nsec[] = {"c.t. 300 IN NSEC x.c.t. SOA NS RRSIG NSEC DNSKEY"};
    ldns_rr_list *ns = child_denial(w, apex_nsec, 1);
    set_owner(an, "www.c.t.");
    size_t n = make_msg(msg, sizeof msg, "www.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, ns);
    CHECK_EQ(run(w, a, cache, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_SECURE);
    ldns_rr_list_deep_free(ns);

    /* b.c.t. exists, so *.c.t. cannot answer a.b.c.t. (the closest encloser is b.c.t.). The
     * NSEC b.c.t. -> d.c.t. covers a.b.c.t. but not b.c.t., the next closer name of the
     * wildcard: RFC 4035 5.3.4 requires the proof that no closer match exists. */
    static const char *const b_nsec[] = {"b.c.t. 300 IN NSEC d.c.t. A RRSIG NSEC"};
    ns = child_denial(w, b_nsec, 1);
    set_owner(an, "a.b.c.t.");
    n = make_msg(msg, sizeof msg, "a.b.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, ns);
    CHECK_EQ(run(w, a, cache, msg, n, "a.b.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    CHECK_EQ(res->reason, LH_DR_BAD_DENIAL);
    ldns_rr_list_deep_free(ns);

    /* ...nor when the next closer name b.c.t. is an empty non-terminal (x.b.c.t. exists): the
     * NSEC aa.c.t. -> x.b.c.t. covers b.c.t. by the order but b.c.t. exists. */
    static const char *const ent_nsec[] = {"aa.c.t. 300 IN NSEC x.b.c.t. A RRSIG NSEC"};
    ns = child_denial(w, ent_nsec, 1);
    n = make_msg(msg, sizeof msg, "a.b.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, ns);
    CHECK_EQ(run(w, a, cache, msg, n, "a.b.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    CHECK_EQ(res->reason, LH_DR_BAD_DENIAL);

    /* NXDOMAIN for the empty non-terminal b.c.t. with the same NSEC: the name exists (x.b.c.t.
     * is below it), so this is a forged NXDOMAIN; NODATA is the true answer. */
    n = make_msg(msg, sizeof msg, "b.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN, NULL, ns);
    CHECK_EQ(run(w, a, cache, msg, n, "b.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    CHECK_EQ(res->reason, LH_DR_BAD_DENIAL);
    n = make_msg(msg, sizeof msg, "b.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, NULL, ns);
    CHECK_EQ(run(w, a, cache, msg, n, "b.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_SECURE);
    ldns_rr_list_deep_free(ns);
    ldns_rr_list_deep_free(an);

    /* A signed NSEC whose bitmap is one lone window byte: ldns reads past it (valgrind shows
     * it); such a record proves nothing, here not that c.t. has no MX. */
    ns = child_denial(w, NULL, 0);
    ldns_rr *bad = rr("c.t. 300 IN NSEC www.c.t. SOA");
    static const uint8_t lone[] = {0};
    ldns_rdf_deep_free(
        ldns_rr_set_rdf(bad, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_BITMAP, 1, lone), 1));
    set = one(bad);
    signed_set(ns, set, w->kc, true);
    ldns_rr_list_deep_free(set);
    n = make_msg(msg, sizeof msg, "c.t.", LDNS_RR_TYPE_MX, LDNS_RCODE_NOERROR, NULL, ns);
    CHECK_EQ(run(w, a, cache, msg, n, "c.t.", LDNS_RR_TYPE_MX, T0, res), LH_DNSSEC_BOGUS);
    ldns_rr_list_deep_free(ns);
}

/* The child's DNSKEY response becomes its key and nkeys - 1 others sharing its key tag
 * (different key bytes, same checksum), signed by the child's key. */
static void same_tag_keys(world *w, int nkeys)
{
    ldns_rr_list *keyset = one(ldns_rr_clone(w->dnskey_c));
    uint16_t tag = ldns_calc_keytag(w->dnskey_c);
    for (int j = 1; j < nkeys; j++) {
        ldns_rr *k = ldns_rr_clone(w->dnskey_c);
        uint8_t *kd = ldns_rdf_data(ldns_rr_rdf(k, 3));
        kd[2] = (uint8_t)(kd[2] + j);
        /* bytes 4 and 5 of the key (the high and low halves of a checksum word) restore it */
        for (unsigned x = 0; x < 65536 && ldns_calc_keytag(k) != tag; x++) {
            kd[4] = (uint8_t)(x >> 8);
            kd[5] = (uint8_t)x;
        }
        CHECK_EQ(ldns_calc_keytag(k), tag);
        ldns_rr_list_push_rr(keyset, k);
    }
    ldns_rr_list_deep_free(w->resp_rrs[2]);
    w->resp_rrs[2] = ldns_rr_list_new();
    signed_set(w->resp_rrs[2], keyset, w->kc, true);
    ldns_rr_list_deep_free(keyset);
}

/* KeyTrap (CVE-2023-50387): a zone publishing many keys with one key tag and an answer with many
 * signatures of that tag must not make the validator try every key with every signature. */
static void test_keytrap(void)
{
    world w;
    world_init(&w, T0 - 3600, T0 + 10 * 86400, 257);
    lh_dnssec_anchors *a = world_anchors(&w);
    enum { NKEYS = 40, NSIGS = 60 };
    same_tag_keys(&w, NKEYS);
    /* the answer with NSIGS copies of its RRSIG, each with one byte of the signature changed */
    ldns_rr_list *an = ldns_rr_list_new(), *set = one(rr("www.c.t. 3600 IN A 192.0.2.1"));
    signed_set(an, set, w.kc, true);
    ldns_rr *sig = ldns_rr_list_pop_rr(an);
    for (int i = 0; i < NSIGS; i++) {
        ldns_rr *s = ldns_rr_clone(sig);
        ldns_rdf_data(ldns_rr_rdf(s, 8))[10] ^= (uint8_t)(i + 1);
        ldns_rr_list_push_rr(an, s);
    }
    ldns_rr_free(sig);
    uint8_t msg[16384];
    size_t n = make_msg(msg, sizeof msg, "www.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, NULL);
    CHECK(n > 0);
    lh_dnssec_result *res = malloc(sizeof *res);
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    /* without bounds: 40 keys x 60 signatures = 2400 checks for the answer alone */
    CHECK(res->verifications <= 8 * 4 + 16);
    CHECK(res->verifications > 0);
    ldns_rr_list_deep_free(set);
    ldns_rr_list_deep_free(an);
    free(res);
    lh_dnssec_anchors_free(a);
    world_free(&w);
}

/* The budget of public-key operations per validation (128): an answer whose every RRset stays
 * within the per-RRset bounds (7 bad signatures before the good one, 4 keys of the tag: up to
 * 32 operations each) but that has five of them needs ~150 in all. Under the budget of the
 * first version (1024 checks) it was secure after ~150 ECDSA checks; now it is bogus. A chain
 * of two such RRsets still validates. */
static void test_verification_cap(void)
{
    world w;
    world_init(&w, T0 - 3600, T0 + 10 * 86400, 257);
    lh_dnssec_anchors *a = world_anchors(&w);
    same_tag_keys(&w, 4);
    static const char *const links[] = {
        "www.c.t. 3600 IN CNAME a.c.t.", "a.c.t. 3600 IN CNAME b.c.t.",
        "b.c.t. 3600 IN CNAME d.c.t.", "d.c.t. 3600 IN CNAME e.c.t.", "e.c.t. 3600 IN A 192.0.2.9"};
    lh_dnssec_result *res = malloc(sizeof *res);
    for (int pass = 0; pass < 2; pass++) {
        /* pass 0: www -> a -> b -> d -> e A (5 RRsets); pass 1: d -> e A (2 RRsets) */
        int first = pass ? 3 : 0;
        ldns_rr_list *an = ldns_rr_list_new();
        for (int i = first; i < 5; i++) {
            ldns_rr_list *set = one(rr(links[i])), *signed_l = ldns_rr_list_new();
            signed_set(signed_l, set, w.kc, true);
            ldns_rr *good = ldns_rr_list_pop_rr(signed_l);
            ldns_rr_list_cat(an, signed_l);
            for (int j = 0; j < 7; j++) { /* bad copies first: each is tried with all 4 keys */
                ldns_rr *bad = ldns_rr_clone(good);
                ldns_rdf_data(ldns_rr_rdf(bad, 8))[10] ^= (uint8_t)(j + 1);
                ldns_rr_list_push_rr(an, bad);
            }
            ldns_rr_list_push_rr(an, good);
            ldns_rr_list_free(signed_l);
            ldns_rr_list_deep_free(set);
        }
        uint8_t msg[16384];
        const char *qn = pass ? "d.c.t." : "www.c.t.";
        size_t n = make_msg(msg, sizeof msg, qn, LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, NULL);
        CHECK(n > 0);
        enum lh_dnssec_verdict got = run(&w, a, NULL, msg, n, qn, LDNS_RR_TYPE_A, T0, res);
        if (pass == 0) {
            CHECK_EQ(got, LH_DNSSEC_BOGUS);
            CHECK(strstr(res->detail, "per validation") != NULL);
            CHECK(res->verifications <= 128);
        } else {
            CHECK_EQ(got, LH_DNSSEC_SECURE);
            CHECK(res->verifications >= 2 * 29);
        }
        ldns_rr_list_deep_free(an);
    }
    free(res);
    lh_dnssec_anchors_free(a);
    world_free(&w);
}

/* DNAME (RFC 6672): the synthesised CNAME is unsigned; the signed DNAME vouches for it when the
 * CNAME is the one it synthesises. */
static void test_dname(void)
{
    world w;
    world_init(&w, T0 - 3600, T0 + 10 * 86400, 257);
    lh_dnssec_anchors *a = world_anchors(&w);
    /* DS d.c.t.: NODATA, proven by the NSEC at d.c.t. (not a zone cut: its data is c.t.'s) */
    ldns_rr_list *l = ldns_rr_list_new(),
                 *set = one(rr("c.t. 3600 IN SOA ns.t. admin.t. 1 3600 600 86400 300"));
    signed_set(l, set, w.kc, true);
    ldns_rr_list_deep_free(set);
    set = one(rr("d.c.t. 300 IN NSEC www.c.t. DNAME RRSIG NSEC"));
    signed_set(l, set, w.kc, true);
    ldns_rr_list_deep_free(set);
    w.resp_name[w.nresp] = "d.c.t.", w.resp_type[w.nresp] = LDNS_RR_TYPE_DS;
    w.resp_auth[w.nresp] = l;
    w.resp_rrs[w.nresp++] = ldns_rr_list_new();
    lh_dnssec_result *res = malloc(sizeof *res);
    static const struct {
        const char *cname;
        bool sign_dname;
        enum lh_dnssec_verdict want;
    } cases[] = {
        {"www.d.c.t. 3600 IN CNAME www.e.c.t.", true, LH_DNSSEC_SECURE},
        {"www.d.c.t. 3600 IN CNAME www.e.c.t.", false, LH_DNSSEC_BOGUS},   /* DNAME unsigned */
        {"www.d.c.t. 3600 IN CNAME www.evil.c.t.", true, LH_DNSSEC_BOGUS}, /* not synthesised */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ldns_rr_list *an = ldns_rr_list_new();
        set = one(rr("d.c.t. 3600 IN DNAME e.c.t."));
        signed_set(an, set, w.kc, cases[i].sign_dname);
        ldns_rr_list_deep_free(set);
        ldns_rr_list_push_rr(an, rr(cases[i].cname));
        set = one(rr("www.e.c.t. 3600 IN A 192.0.2.1"));
        signed_set(an, set, w.kc, true);
        ldns_rr_list_deep_free(set);
        set = one(rr("www.evil.c.t. 3600 IN A 192.0.2.1"));
        signed_set(an, set, w.kc, true);
        ldns_rr_list_deep_free(set);
        uint8_t msg[4096];
        size_t n =
            make_msg(msg, sizeof msg, "www.d.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, NULL);
        CHECK(n > 0);
        CHECK_EQ(run(&w, a, NULL, msg, n, "www.d.c.t.", LDNS_RR_TYPE_A, T0, res), cases[i].want);
        if (i == 0) {
            CHECK(strstr(res->chain, "synthesised from the DNAME at d.c.t.") != NULL);
            /* the secure answer keeps the DNAME and its RRSIG, the CNAME and the A */
            uint8_t copy[4096];
            memcpy(copy, msg, n);
            size_t kept = lh_dnssec_keep_validated(copy, n, sizeof copy, LDNS_RR_TYPE_A);
            ldns_pkt *p = NULL;
            CHECK(kept > 0 && ldns_wire2pkt(&p, copy, kept) == LDNS_STATUS_OK);
            CHECK_EQ(p ? ldns_pkt_ancount(p) : 0, 5); /* DNAME, RRSIG, CNAME, A, RRSIG */
            ldns_pkt_free(p);
        }
        ldns_rr_list_deep_free(an);
    }
    free(res);
    lh_dnssec_anchors_free(a);
    world_free(&w);
}

/* Review: the memo of verified signatures digests (DNSKEY RDATA, signed data, signature) as a
 * plain concatenation, so the boundary between the signed data and the signature is not bound.
 * An RRset of two records signed by the zone, seen once, lets an attacker present the RRset
 * without its canonically-last record, with an RRSIG whose "signature" is that record's
 * canonical wire form followed by the real signature: same digest, memo hit, secure. */
static void test_memo_truncation(void)
{
    world w;
    world_init(&w, T0 - 3600, T0 + 10 * 86400, 257);
    lh_dnssec_anchors *a = world_anchors(&w);
    lh_dnssec_cache *cache = lh_dnssec_cache_new(16);
    lh_dnssec_result *res = malloc(sizeof *res);
    uint8_t msg[4096];

    /* 1. the honest answer: two A records, signed; validated once (the memo learns it) */
    ldns_rr_list *set = ldns_rr_list_new(), *an = ldns_rr_list_new();
    ldns_rr_list_push_rr(set, rr("www.c.t. 3600 IN A 192.0.2.1"));
    ldns_rr_list_push_rr(set, rr("www.c.t. 3600 IN A 192.0.2.2"));
    signed_set(an, set, w.kc, true);
    size_t n = make_msg(msg, sizeof msg, "www.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, NULL);
    CHECK_EQ(run(&w, a, cache, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_SECURE);

    /* 2. the forgery: only 192.0.2.1; signature = wire(www.c.t. 3600 IN A 192.0.2.2) || sig */
    ldns_rr *sig = ldns_rr_clone(ldns_rr_list_rr(an, 2));
    CHECK_EQ(ldns_rr_get_type(sig), LDNS_RR_TYPE_RRSIG);
    ldns_rr *last = rr("www.c.t. 3600 IN A 192.0.2.2");
    ldns_buffer *b = ldns_buffer_new(512);
    CHECK(ldns_rr2buffer_wire(b, last, LDNS_SECTION_ANSWER) == LDNS_STATUS_OK);
    ldns_rdf *old = ldns_rr_rdf(sig, 8);
    size_t rl = ldns_buffer_position(b), sl = ldns_rdf_size(old);
    uint8_t *nd = malloc(rl + sl);
    memcpy(nd, ldns_buffer_begin(b), rl);
    memcpy(nd + rl, ldns_rdf_data(old), sl);
    ldns_rdf_deep_free(ldns_rr_set_rdf(sig, ldns_rdf_new(LDNS_RDF_TYPE_B64, rl + sl, nd), 8));
    ldns_rr_list *forged = ldns_rr_list_new();
    ldns_rr_list_push_rr(forged, rr("www.c.t. 3600 IN A 192.0.2.1"));
    ldns_rr_list_push_rr(forged, sig);
    n = make_msg(msg, sizeof msg, "www.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, forged, NULL);
    CHECK(n > 0);
    /* without the memo it is bogus ... */
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    /* ... and with it it must be too (fails: secure) */
    CHECK_EQ(run(&w, a, cache, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);

    ldns_buffer_free(b);
    ldns_rr_free(last);
    ldns_rr_list_deep_free(forged);
    ldns_rr_list_deep_free(set);
    ldns_rr_list_deep_free(an);
    free(res);
    lh_dnssec_cache_free(cache);
    lh_dnssec_anchors_free(a);
    world_free(&w);
}

/* The signed data of RFC 4034 3.1.8.1 for (rrset, sig), as the validator builds it. */
static size_t review_signed_data(const ldns_rr_list *rrset, const ldns_rr *sig, uint8_t *out,
                                 size_t cap)
{
    ldns_buffer *b = ldns_buffer_new(4096);
    ldns_rrsig2buffer_wire(b, sig);
    ldns_rr_list *c = ldns_rr_list_clone(rrset);
    for (size_t i = 0; i < ldns_rr_list_rr_count(c); i++) {
        ldns_rr_set_ttl(ldns_rr_list_rr(c, i), ldns_rdf2native_int32(ldns_rr_rrsig_origttl(sig)));
        ldns_rr2canonical(ldns_rr_list_rr(c, i));
    }
    ldns_rr_list_sort(c);
    ldns_rr_list2buffer_wire(b, c);
    size_t n = ldns_buffer_position(b);
    if (n <= cap) memcpy(out, ldns_buffer_begin(b), n);
    ldns_rr_list_deep_free(c);
    ldns_buffer_free(b);
    return n <= cap ? n : 0;
}

/* Review: the memo digest does not bind the boundary between the DNSKEY's public key and the
 * signed data either. For an RSA victim key K2, an attacker who controls any signed zone (here
 * e.t.) publishes K1 = K2 || X, an RSA key whose modulus N2 || X is a prime (X chosen so), so
 * the attacker knows d. A record of e.t. signed by K1 over D1 is validated (the memo learns
 * SHA-256(F | K2 | X | D1 | S)); then a forged RRset of the victim zone c.t. whose signed data
 * is D2 = X || D1, with S as its "signature" and the victim's key tag, has the same digest:
 * any content the attacker likes in c.t. (a TXT here) validates as secure. */
static void test_memo_key_boundary(void)
{
    make_key_alg = LDNS_SIGN_RSASHA256;
    world w;
    world_init(&w, T0 - 3600, T0 + 10 * 86400, 257);
    make_key_alg = LDNS_SIGN_ECDSAP256SHA256;
    lh_dnssec_anchors *a = world_anchors(&w);
    lh_dnssec_cache *cache = lh_dnssec_cache_new(16);
    lh_dnssec_result *res = malloc(sizeof *res);

    /* the victim's RRSIG header (public fields only; the signature is replaced below) */
    ldns_rr_list *tmp = one(rr("www.c.t. 3600 IN TXT \"x\""));
    ldns_rr_list *vs = ldns_sign_public(tmp, w.kc);
    ldns_rr *vsig = ldns_rr_clone(ldns_rr_list_rr(vs, 0));
    ldns_rr_list_deep_free(vs);
    ldns_rr_list_deep_free(tmp);

    /* D1: the attacker's signed data (a.e.t. A), 44 bytes; TXT rdata = [L][p (8)][D1] */
    enum { D1LEN = 44, PLEN = 8 };
    uint8_t txt[1 + PLEN + D1LEN];
    memset(txt, 0, sizeof txt);
    txt[0] = PLEN + D1LEN;
    ldns_rr *vtxt = ldns_rr_new();
    ldns_rr_set_owner(vtxt, ldns_dname_new_frm_str("www.c.t."));
    ldns_rr_set_type(vtxt, LDNS_RR_TYPE_TXT);
    ldns_rr_set_class(vtxt, LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(vtxt, 3600);
    uint8_t d2[1024];
    ldns_rr_push_rdf(vtxt, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_STR, sizeof txt, txt));
    ldns_rr_list *vset = one(vtxt);
    size_t d2n = review_signed_data(vset, vsig, d2, sizeof d2), k = d2n - D1LEN;
    CHECK(d2n > D1LEN);

    /* K1 = K2 || X with X = D2[0..k): search p for a prime modulus */
    const ldns_rdf *k2 = ldns_rr_rdf(w.dnskey_c, 3);
    size_t k2n = ldns_rdf_size(k2), k1n = k2n + k;
    uint8_t *k1 = malloc(k1n);
    memcpy(k1, ldns_rdf_data(k2), k2n);
    CHECK(k1[0] == 3); /* e = 65537 in 3 bytes */
    BN_CTX *bctx = BN_CTX_new();
    BIGNUM *n1 = BN_new(), *e = BN_new(), *nm1 = BN_new(), *d = NULL;
    BN_set_word(e, 65537);
    bool found = false;
    for (uint32_t ctr = 1; ctr < 2000000 && !found; ctr += 2) {
        memcpy(d2 + k - 4,
               &(uint8_t[4]){(uint8_t)(ctr >> 24), (uint8_t)(ctr >> 16), (uint8_t)(ctr >> 8),
                             (uint8_t)ctr},
               4);
        memcpy(k1 + k2n, d2, k);
        BN_bin2bn(k1 + 4, (int)(k1n - 4), n1);
        if (BN_check_prime(n1, bctx, NULL) != 1) continue;
        BN_sub(nm1, n1, BN_value_one());
        d = BN_mod_inverse(NULL, e, nm1, bctx);
        found = d != NULL;
    }
    CHECK(found);
    memcpy(txt + 1, d2 + k - PLEN, PLEN); /* p as chosen */

    /* the attacker's zone e.t.: DNSKEY K1 (flags, protocol, algorithm as K2), DS in t. */
    ldns_rr *dnskey_e = ldns_rr_clone(w.dnskey_c);
    ldns_rdf_deep_free(ldns_rr_owner(dnskey_e));
    ldns_rr_set_owner(dnskey_e, ldns_dname_new_frm_str("e.t."));
    ldns_rdf_deep_free(ldns_rr_set_rdf(dnskey_e, ldns_rdf_new(LDNS_RDF_TYPE_B64, k1n, k1), 3));
    OSSL_PARAM_BLD *pb = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_BN(pb, OSSL_PKEY_PARAM_RSA_N, n1);
    OSSL_PARAM_BLD_push_BN(pb, OSSL_PKEY_PARAM_RSA_E, e);
    OSSL_PARAM_BLD_push_BN(pb, OSSL_PKEY_PARAM_RSA_D, d);
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(pb);
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *pk = NULL;
    CHECK(EVP_PKEY_fromdata_init(pctx) == 1 &&
          EVP_PKEY_fromdata(pctx, &pk, EVP_PKEY_KEYPAIR, params) == 1);
    ldns_key *ek = ldns_key_new();
    ldns_key_set_algorithm(ek, LDNS_SIGN_RSASHA256);
    ldns_key_set_evp_key(ek, pk);
    ldns_key_set_pubkey_owner(ek, ldns_dname_new_frm_str("e.t."));
    ldns_key_set_flags(ek, 257);
    ldns_key_set_inception(ek, T0 - 3600);
    ldns_key_set_expiration(ek, T0 + 10 * 86400);
    ldns_key_set_keytag(ek, ldns_calc_keytag(dnskey_e));
    ldns_key_list *ke = ldns_key_list_new();
    ldns_key_list_push_key(ke, ek);

    ldns_rr_list *l = ldns_rr_list_new(), *set = one(ldns_rr_clone(dnskey_e));
    signed_set(l, set, ke, true);
    ldns_rr_list_deep_free(set);
    w.resp_name[w.nresp] = "e.t.", w.resp_type[w.nresp] = LDNS_RR_TYPE_DNSKEY;
    w.resp_rrs[w.nresp++] = l;
    l = ldns_rr_list_new();
    ldns_rr *ds_e = ldns_key_rr2ds(dnskey_e, LDNS_SHA256);
    ldns_rr_set_ttl(ds_e, TTL);
    set = one(ds_e);
    signed_set(l, set, w.kp, true);
    ldns_rr_list_deep_free(set);
    w.resp_name[w.nresp] = "e.t.", w.resp_type[w.nresp] = LDNS_RR_TYPE_DS;
    w.resp_rrs[w.nresp++] = l;
    l = ldns_rr_list_new();
    set = one(rr("e.t. 3600 IN SOA ns.t. admin.t. 1 3600 600 86400 300"));
    signed_set(l, set, ke, true);
    ldns_rr_list_deep_free(set);
    set = one(rr("a.e.t. 300 IN NSEC e.t. A RRSIG NSEC"));
    signed_set(l, set, ke, true);
    ldns_rr_list_deep_free(set);
    w.resp_name[w.nresp] = "a.e.t.", w.resp_type[w.nresp] = LDNS_RR_TYPE_DS;
    w.resp_auth[w.nresp] = l;
    w.resp_rrs[w.nresp++] = ldns_rr_list_new();

    /* 1. the attacker's own, honestly signed record: secure, and remembered */
    uint8_t msg[4096];
    ldns_rr_list *an = ldns_rr_list_new();
    set = one(rr("a.e.t. 3600 IN A 192.0.2.66"));
    signed_set(an, set, ke, true);
    size_t n = make_msg(msg, sizeof msg, "a.e.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, NULL);
    CHECK_EQ(run(&w, a, cache, msg, n, "a.e.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_SECURE);
    ldns_rr *esig = ldns_rr_list_rr(an, 1);
    uint8_t d1[256];
    CHECK_EQ(review_signed_data(set, esig, d1, sizeof d1), D1LEN);
    ldns_rr_list_deep_free(set);

    /* 2. the forgery in c.t.: TXT [L][p][D1], the victim's RRSIG header, S as the signature */
    memcpy(txt + 1 + PLEN, d1, D1LEN);
    ldns_rdf_deep_free(
        ldns_rr_set_rdf(vtxt, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_STR, sizeof txt, txt), 0));
    const ldns_rdf *s = ldns_rr_rdf(esig, 8);
    ldns_rdf_deep_free(ldns_rr_set_rdf(vsig, ldns_rdf_clone(s), 8));
    uint8_t d2b[1024];
    size_t d2bn = review_signed_data(vset, vsig, d2b, sizeof d2b);
    CHECK(d2bn == k + D1LEN && !memcmp(d2b, k1 + k2n, k) && !memcmp(d2b + k, d1, D1LEN));
    ldns_rr_list *forged = ldns_rr_list_new();
    ldns_rr_list_push_rr(forged, ldns_rr_clone(vtxt));
    ldns_rr_list_push_rr(forged, ldns_rr_clone(vsig));
    n = make_msg(msg, sizeof msg, "www.c.t.", LDNS_RR_TYPE_TXT, LDNS_RCODE_NOERROR, forged, NULL);
    CHECK(n > 0);
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_TXT, T0, res), LH_DNSSEC_BOGUS);
    /* fails: secure (the forged TXT of c.t. is accepted) */
    CHECK_EQ(run(&w, a, cache, msg, n, "www.c.t.", LDNS_RR_TYPE_TXT, T0, res), LH_DNSSEC_BOGUS);

    ldns_rr_list_deep_free(forged);
    ldns_rr_list_deep_free(an);
    ldns_rr_list_deep_free(vset);
    ldns_rr_free(vsig);
    ldns_rr_free(dnskey_e);
    ldns_key_list_free(ke);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(pb);
    EVP_PKEY_CTX_free(pctx);
    BN_free(n1);
    BN_free(e);
    BN_free(nm1);
    BN_free(d);
    BN_CTX_free(bctx);
    free(res);
    lh_dnssec_cache_free(cache);
    lh_dnssec_anchors_free(a);
    world_free(&w);
}

/* Review: the DNAME that vouches for a synthesised CNAME may be an unsigned one from an insecure
 * zone above the name's trust anchor (a private tree with its own anchor, under an unsigned
 * public parent): the forged CNAME of a name under the anchor then passes as insecure. */
static void test_dname_island(void)
{
    world w;
    world_init(&w, T0 - 3600, T0 + 10 * 86400, 257);
    /* the only anchor: the child c.t. (t. has none: insecure) */
    ldns_rr *ds_c = ldns_key_rr2ds(w.dnskey_c, LDNS_SHA256);
    char *txt = ldns_rr2str(ds_c), anchor[512];
    snprintf(anchor, sizeof anchor, "%s", txt);
    free(txt);
    ldns_rr_free(ds_c);
    char err[512];
    lh_dnssec_anchors *a = lh_dnssec_anchors_new();
    CHECK_EQ(lh_dnssec_anchors_load_text(a, anchor, strlen(anchor), "c.t.ds", err, sizeof err), 0);
    lh_dnssec_result *res = malloc(sizeof *res);
    uint8_t msg[4096];
    /* the honest answer is secure under the island's anchor */
    size_t n = answer_www(&w, msg, sizeof msg, true, false);
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_SECURE);
    for (int with_dname = 0; with_dname < 2; with_dname++) {
        ldns_rr_list *an = ldns_rr_list_new();
        if (with_dname) ldns_rr_list_push_rr(an, rr("t. 3600 IN DNAME evil."));
        ldns_rr_list_push_rr(an, rr("www.c.t. 3600 IN CNAME www.c.evil."));
        ldns_rr_list_push_rr(an, rr("www.c.evil. 3600 IN A 192.0.2.66"));
        n = make_msg(msg, sizeof msg, "www.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, NULL);
        CHECK(n > 0);
        enum lh_dnssec_verdict got = run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res);
        if (got != LH_DNSSEC_BOGUS)
            fprintf(stderr, "dname island (%s DNAME): %s: %s\n", with_dname ? "with" : "without",
                    lh_dnssec_verdict_name(got), res->detail);
        /* without the DNAME: bogus (unsigned CNAME under the anchor); with it: must be too */
        CHECK_EQ(got, LH_DNSSEC_BOGUS);
        ldns_rr_list_deep_free(an);
    }
    free(res);
    lh_dnssec_anchors_free(a);
    world_free(&w);
}

/* Review: a secure answer's scrubbing (lh_dnssec_keep_validated) keeps every DNAME above a
 * name of the chain, verified or not: an unsigned DNAME added to a secure A answer, which the
 * validator never looked at, reaches the client with AD. */
static void test_dname_scrub(void)
{
    world w;
    world_init(&w, T0 - 3600, T0 + 10 * 86400, 257);
    lh_dnssec_anchors *a = world_anchors(&w);
    lh_dnssec_result *res = malloc(sizeof *res);
    ldns_rr_list *an = ldns_rr_list_new(), *set = one(rr("www.c.t. 3600 IN A 192.0.2.1"));
    signed_set(an, set, w.kc, true);
    ldns_rr_list_push_rr(an, rr("t. 3600 IN DNAME evil.")); /* forged, unsigned */
    uint8_t msg[4096];
    size_t n = make_msg(msg, sizeof msg, "www.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, NULL);
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_SECURE);
    size_t kept = lh_dnssec_keep_validated(msg, n, sizeof msg, LDNS_RR_TYPE_A);
    ldns_pkt *p = NULL;
    CHECK(kept > 0 && ldns_wire2pkt(&p, msg, kept) == LDNS_STATUS_OK);
    /* fails: 3 (the forged DNAME is kept beside the A and its RRSIG) */
    CHECK_EQ(p ? ldns_pkt_ancount(p) : 0, 2);
    ldns_pkt_free(p);
    ldns_rr_list_deep_free(set);
    ldns_rr_list_deep_free(an);
    free(res);
    lh_dnssec_anchors_free(a);
    world_free(&w);
}

/* Replaces the DS c.t. response (index 1 of world_init) with these sections. */
static void set_ds_response(world *w, ldns_rr_list *an, ldns_rr_list *auth)
{
    ldns_rr_list_deep_free(w->resp_rrs[1]);
    ldns_rr_list_deep_free(w->resp_auth[1]);
    w->resp_rrs[1] = an ? an : ldns_rr_list_new();
    w->resp_auth[1] = auth;
}

/* Attempts that the validator already refused (review): kept as regressions. */
static void test_downgrades(void)
{
    world w;
    world_init(&w, T0 - 3600, T0 + 10 * 86400, 257);
    lh_dnssec_anchors *a = world_anchors(&w);
    lh_dnssec_result *res = malloc(sizeof *res);
    uint8_t msg[4096];
    size_t n = answer_www(&w, msg, sizeof msg, true, false);
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_SECURE);

    /* The child's DS signed by the child's own key: not the parent's word. */
    ldns_rr_list *l = ldns_rr_list_new(), *set = one(ldns_key_rr2ds(w.dnskey_c, LDNS_SHA256));
    signed_set(l, set, w.kc, true);
    ldns_rr_list_deep_free(set);
    set_ds_response(&w, l, NULL);
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);

    /* RFC 4509: a DS set with a SHA-256 digest (here of another key) and a SHA-1 digest of the
     * child's key: the SHA-1 one is ignored, no trusted key is left: bogus (DNSKEY missing).
     * The same SHA-1 DS alone is still used. */
    ldns_rr *other = ldns_rr_clone(w.dnskey_c);
    ldns_rdf_data(ldns_rr_rdf(other, 3))[7] ^= 1;
    l = ldns_rr_list_new();
    set = ldns_rr_list_new();
    ldns_rr_list_push_rr(set, ldns_key_rr2ds(other, LDNS_SHA256));
    ldns_rr_list_push_rr(set, ldns_key_rr2ds(w.dnskey_c, LDNS_SHA1));
    for (size_t i = 0; i < ldns_rr_list_rr_count(set); i++)
        ldns_rr_set_ttl(ldns_rr_list_rr(set, i), TTL);
    signed_set(l, set, w.kp, true);
    ldns_rr_list_deep_free(set);
    set_ds_response(&w, l, NULL);
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    CHECK_EQ(res->reason, LH_DR_DNSKEY_MISSING);
    l = ldns_rr_list_new();
    set = one(ldns_key_rr2ds(w.dnskey_c, LDNS_SHA1));
    ldns_rr_set_ttl(ldns_rr_list_rr(set, 0), TTL);
    signed_set(l, set, w.kp, true);
    ldns_rr_list_deep_free(set);
    set_ds_response(&w, l, NULL);
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_SECURE);
    ldns_rr_free(other);

    /* The DS stripped, with the parent's NSEC at the delegation: its bitmap lists DS, so it
     * proves the DS exists, not that it does not (no downgrade to insecure). */
    ldns_rr_list *auth = ldns_rr_list_new();
    set = one(rr("t. 3600 IN SOA ns.t. admin.t. 1 3600 600 86400 300"));
    signed_set(auth, set, w.kp, true);
    ldns_rr_list_deep_free(set);
    set = one(rr("c.t. 300 IN NSEC d.t. NS DS RRSIG NSEC"));
    signed_set(auth, set, w.kp, true);
    ldns_rr_list_deep_free(set);
    set_ds_response(&w, NULL, auth);
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    /* ...and the same NSEC unsigned, or signed by the child, proves nothing either */
    auth = ldns_rr_list_new();
    set = one(rr("c.t. 300 IN NSEC d.t. NS RRSIG NSEC"));
    signed_set(auth, set, w.kc, true);
    ldns_rr_list_deep_free(set);
    set_ds_response(&w, NULL, auth);
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    /* The genuine insecure delegation: the parent's signed NSEC without DS */
    auth = ldns_rr_list_new();
    set = one(rr("c.t. 300 IN NSEC d.t. NS RRSIG NSEC"));
    signed_set(auth, set, w.kp, true);
    ldns_rr_list_deep_free(set);
    set_ds_response(&w, NULL, auth);
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_INSECURE);
    CHECK_EQ(res->reason, LH_DR_INSECURE_DELEGATION);

    /* The RRSIG replaced by one naming a signer above the trust anchor t. (here the root,
     * which no anchor covers): the answer is in t.'s tree, so this is bogus, not insecure. */
    world_free(&w);
    world_init(&w, T0 - 3600, T0 + 10 * 86400, 257);
    ldns_rr_list *an = ldns_rr_list_new();
    set = one(rr("www.c.t. 3600 IN A 192.0.2.1"));
    signed_set(an, set, w.kc, true);
    ldns_rr_list_deep_free(set);
    ldns_rdf_deep_free(ldns_rr_set_rdf(ldns_rr_list_rr(an, 1), ldns_dname_new_frm_str("."), 7));
    n = make_msg(msg, sizeof msg, "www.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, NULL);
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    ldns_rr_list_deep_free(an);
    /* ...and the same for a denial: an NXDOMAIN whose SOA signature names the root */
    ldns_rr_list *ns = ldns_rr_list_new();
    set = one(rr("c.t. 3600 IN SOA ns.t. admin.t. 1 3600 600 86400 300"));
    signed_set(ns, set, w.kc, true);
    ldns_rr_list_deep_free(set);
    ldns_rdf_deep_free(ldns_rr_set_rdf(ldns_rr_list_rr(ns, 1), ldns_dname_new_frm_str("."), 7));
    n = make_msg(msg, sizeof msg, "nx.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN, NULL, ns);
    CHECK_EQ(run(&w, a, NULL, msg, n, "nx.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    ldns_rr_list_deep_free(ns);

    /* A signed RRset moved to another owner: the signature covers the owner */
    an = ldns_rr_list_new();
    set = one(rr("www.c.t. 3600 IN A 192.0.2.1"));
    signed_set(an, set, w.kc, true);
    ldns_rr_list_deep_free(set);
    set_owner(an, "mail.c.t.");
    n = make_msg(msg, sizeof msg, "mail.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, NULL);
    CHECK_EQ(run(&w, a, NULL, msg, n, "mail.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    ldns_rr_list_deep_free(an);
    free(res);
    lh_dnssec_anchors_free(a);
    world_free(&w);
}

static void test_anchor_parser(void)
{
    char err[512];
    lh_dnssec_anchors *a = lh_dnssec_anchors_new();
    CHECK(lh_dnssec_anchors_load_text(a, "x", 1, "bad.key", err, sizeof err) != 0);
    CHECK(strstr(err, "bad.key:") == err);
    static const char a_rec[] = "; comment\nexample. 3600 IN A 192.0.2.1\n";
    CHECK(lh_dnssec_anchors_load_text(a, a_rec, strlen(a_rec), "a.key", err, sizeof err) != 0);
    CHECK(strstr(err, "a.key:2: a trust anchor is a DS or DNSKEY record, not A") != NULL);
    /* rejected before ldns reads it: ldns 1.8.3 leaks on a bad IPSECKEY (fuzz_trust_anchor);
     * the type is found past a TTL and class, on an owner-less line, inside parentheses */
    static const char ipseckey[] = "a. IN DS 1 8 2 ( AB ; c\n CD )\n"
                                   "   3600 in ( IPSECKEY 10 1 2 192.0.2.38 !!! )\n";
    CHECK(lh_dnssec_anchors_load_text(a, ipseckey, strlen(ipseckey), "i.key", err, sizeof err) !=
          0);
    CHECK(strstr(err, "i.key:3: a trust anchor is a DS or DNSKEY record, not IPSECKEY") != NULL);
    static const char quoted[] = "\"a\\\" DS\" IN TXT \"DS\"\n";
    CHECK(lh_dnssec_anchors_load_text(a, quoted, strlen(quoted), "q.key", err, sizeof err) != 0);
    CHECK(strstr(err, "q.key:1: a trust anchor is a DS or DNSKEY record, not TXT") != NULL);
    CHECK(lh_dnssec_anchors_load_text(a, "", 0, "empty", err, sizeof err) != 0);
    static const char comments[] = "; nothing but a comment\n\n";
    CHECK(lh_dnssec_anchors_load_text(a, comments, strlen(comments), "c", err, sizeof err) != 0);
    CHECK(strstr(err, "no DS or DNSKEY") != NULL);
    CHECK(lh_dnssec_anchors_load_file(a, "/nonexistent/x.key", err, sizeof err) != 0);
    CHECK(lh_dnssec_anchors_add_insecure(a, "bad..name", err, sizeof err) != 0);
    CHECK_EQ(lh_dnssec_anchors_count(a), 0);
    /* Debian's root key, when dns-root-data is installed */
    FILE *f = fopen(LH_DNSSEC_ROOT_KEY, "r");
    if (f) {
        fclose(f);
        CHECK_EQ(lh_dnssec_anchors_load_file(a, LH_DNSSEC_ROOT_KEY, err, sizeof err), 0);
        CHECK(lh_dnssec_anchors_count(a) >= 1);
    }
    lh_dnssec_anchors_free(a);
}

/* dnssec, trust-anchor, domain-insecure: parsed, a flag's anchors replace the file's, loaded */
static void test_settings(const char *anchor_text)
{
    lh_config c;
    char err[512], path[] = "/tmp/lh-unit-anchor-XXXXXX";
    lh_config_defaults(&c);
    CHECK_EQ(c.dnssec, LH_DNSSEC_MODE_PROCESS);
    CHECK_EQ(lh_config_set(&c, LH_SRC_FILE, "dnssec", "validate", err, sizeof err), 0);
    CHECK_EQ(c.dnssec, LH_DNSSEC_MODE_VALIDATE);
    CHECK_EQ(lh_config_set(&c, LH_SRC_FILE, "dnssec", "allow-downgrade", err, sizeof err), 0);
    CHECK_EQ(c.dnssec, LH_DNSSEC_MODE_DOWNGRADE);
    CHECK(lh_config_set(&c, LH_SRC_FILE, "dnssec", "yes", err, sizeof err) != 0);
    CHECK(strstr(err, "off, process, validate or allow-downgrade") != NULL);
    CHECK(lh_config_set(&c, LH_SRC_FILE, "domain-insecure", "a..b", err, sizeof err) != 0);
    CHECK_EQ(lh_config_set(&c, LH_SRC_FILE, "domain-insecure", "corp.example", err, sizeof err), 0);
    CHECK_EQ(lh_config_set(&c, LH_SRC_FILE, "trust-anchor", "/nonexistent", err, sizeof err), 0);
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(anchor_text, f);
    fclose(f);
    /* the flag replaces the file's anchor, so the missing file is not read */
    CHECK_EQ(lh_config_set(&c, LH_SRC_FLAG, "trust-anchor", path, err, sizeof err), 0);
    CHECK_EQ(c.ntrust_anchors, 1);
    lh_dnssec_anchors *a = lh_dnssec_anchors_from_config(&c, err, sizeof err);
    CHECK(a != NULL);
    CHECK_EQ(lh_dnssec_anchors_count(a), 1);
    lh_dnssec_anchors_free(a);
    CHECK_EQ(lh_config_set(&c, LH_SRC_FLAG, "trust-anchor", "/nonexistent", err, sizeof err), 0);
    a = lh_dnssec_anchors_from_config(&c, err, sizeof err);
    CHECK(a == NULL);
    CHECK(strstr(err, "/nonexistent: ") == err);
    unlink(path);
    lh_config_free(&c);
}

void test_dnssec(void);
void test_dnssec(void)
{
    test_anchor_parser();

    world w;
    world_init(&w, T0 - 3600, T0 + 10 * 86400, 257);
    char err[512];
    lh_dnssec_anchors *a = world_anchors(&w);
    CHECK_EQ(lh_dnssec_anchors_count(a), 1);
    test_settings(w.anchor);
    lh_dnssec_cache *cache = lh_dnssec_cache_new(16);
    lh_dnssec_result *res = malloc(sizeof *res);
    uint8_t msg[4096], q[256];
    size_t n = answer_www(&w, msg, sizeof msg, true, false);
    CHECK(n > 0);

    /* Step by step: the resumable interface asks for DNSKEY t., DS c.t., DNSKEY c.t. */
    lh_dnssec_val *v =
        lh_dnssec_val_new(a, cache, msg, n, wire_name("www.c.t.", q), LDNS_RR_TYPE_A, T0);
    lh_dnssec_need need;
    static const char *const want_name[] = {"t.", "c.t.", "c.t."};
    static const uint16_t want_type[] = {LDNS_RR_TYPE_DNSKEY, LDNS_RR_TYPE_DS, LDNS_RR_TYPE_DNSKEY};
    uint8_t buf[4096];
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(lh_dnssec_val_run(v, &need), LH_DNSSEC_NEED);
        CHECK_STR(need.text, want_name[i]);
        CHECK_EQ(need.type, want_type[i]);
        CHECK_EQ(lh_dnssec_val_provide(v, buf, fetch(&w, &need, buf, sizeof buf)), 0);
    }
    CHECK_EQ(lh_dnssec_val_run(v, &need), LH_DNSSEC_DONE);
    CHECK_EQ(lh_dnssec_val_result(v)->verdict, LH_DNSSEC_SECURE);
    CHECK(strstr(lh_dnssec_val_result(v)->chain, "RRSIG www.c.t. A by c.t.") != NULL);
    CHECK_EQ(lh_dnssec_val_provide(v, buf, 1), -1); /* nothing was asked */
    /* the zone whose keys verified the answer: the downgrade protection's "seen signed" */
    CHECK_STR(lh_dnssec_val_signer(v, 0), "c.t.");
    CHECK(lh_dnssec_val_signer(v, 1) == NULL);
    lh_dnssec_val_free(v);
    test_signers_verified(&w, a, cache);

    /* The same answer again: both zones' keys come from the cache, no lookup. */
    lh_dnssec_cache_stats st;
    lh_dnssec_cache_stats_get(cache, T0, &st);
    CHECK_EQ(st.used, 2);
    fetches = 0;
    CHECK_EQ(run(&w, a, cache, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0 + 10, res), LH_DNSSEC_SECURE);
    CHECK_EQ(fetches, 0);
    /* ...until the DNSKEY TTL runs out */
    fetches = 0;
    CHECK_EQ(run(&w, a, cache, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0 + TTL + 1, res),
             LH_DNSSEC_SECURE);
    CHECK_EQ(fetches, 3);

    /* The injected clock against the signature window (no cache: the keys are checked too). */
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0 + 11 * 86400, res),
             LH_DNSSEC_BOGUS);
    CHECK_EQ(res->ede, 7);
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0 - 7200, res), LH_DNSSEC_BOGUS);
    CHECK_EQ(res->ede, 8);

    /* A flipped signature byte; no signature at all */
    size_t nt = answer_www(&w, msg, sizeof msg, true, true);
    CHECK_EQ(run(&w, a, cache, msg, nt, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    CHECK_EQ(res->ede, 6);
    CHECK_STR(res->zone, "c.t.");
    nt = answer_www(&w, msg, sizeof msg, false, false);
    CHECK_EQ(run(&w, a, cache, msg, nt, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    CHECK_EQ(res->ede, 10);

    /* NXDOMAIN: a signed SOA but no NSEC (forged) -> 12; with the NSEC -> secure */
    ldns_rr_list *ns = ldns_rr_list_new(), *set;
    set = one(rr("c.t. 3600 IN SOA ns.t. admin.t. 1 3600 600 86400 300"));
    signed_set(ns, set, w.kc, true);
    ldns_rr_list_deep_free(set);
    nt = make_msg(msg, sizeof msg, "a.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN, NULL, ns);
    CHECK_EQ(run(&w, a, cache, msg, nt, "a.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    CHECK_EQ(res->ede, 12);
    set = one(rr("c.t. 300 IN NSEC www.c.t. SOA NS RRSIG NSEC DNSKEY"));
    signed_set(ns, set, w.kc, true);
    ldns_rr_list_deep_free(set);
    nt = make_msg(msg, sizeof msg, "a.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN, NULL, ns);
    CHECK_EQ(run(&w, a, cache, msg, nt, "a.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_SECURE);
    /* ...but it does not prove that www.c.t. does not exist (it is the NSEC's next name) */
    nt = make_msg(msg, sizeof msg, "zzz.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN, NULL, ns);
    CHECK_EQ(run(&w, a, cache, msg, nt, "zzz.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    CHECK_EQ(res->ede, 6);
    /* NODATA at the apex for a type in the bitmap is a lie */
    nt = make_msg(msg, sizeof msg, "c.t.", LDNS_RR_TYPE_DNSKEY, LDNS_RCODE_NOERROR, NULL, ns);
    CHECK_EQ(run(&w, a, cache, msg, nt, "c.t.", LDNS_RR_TYPE_DNSKEY, T0, res), LH_DNSSEC_BOGUS);
    nt = make_msg(msg, sizeof msg, "c.t.", LDNS_RR_TYPE_MX, LDNS_RCODE_NOERROR, NULL, ns);
    CHECK_EQ(run(&w, a, cache, msg, nt, "c.t.", LDNS_RR_TYPE_MX, T0, res), LH_DNSSEC_SECURE);
    ldns_rr_list_deep_free(ns);

    /* The parent's NSEC at the delegation c.t. (NS, no SOA) says nothing about names below it:
     * it must not prove that x.c.t. does not exist. */
    ns = ldns_rr_list_new();
    set = one(rr("t. 3600 IN SOA ns.t. admin.t. 1 3600 600 86400 300"));
    signed_set(ns, set, w.kp, true);
    ldns_rr_list_deep_free(set);
    set = one(rr("c.t. 300 IN NSEC d.t. NS DS RRSIG NSEC"));
    signed_set(ns, set, w.kp, true);
    ldns_rr_list_deep_free(set);
    nt = make_msg(msg, sizeof msg, "x.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN, NULL, ns);
    CHECK_EQ(run(&w, a, cache, msg, nt, "x.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    ldns_rr_list_deep_free(ns);

    /* A wildcard expansion (RRSIG labels 2 for www.c.t.) needs the proof that www.c.t. does not
     * exist; a second RRSIG claiming 3 labels must not hide the expansion. */
    ldns_rr_list *an = ldns_rr_list_new();
    set = one(rr("*.c.t. 3600 IN A 192.0.2.9"));
    signed_set(an, set, w.kc, true);
    ldns_rr_list_deep_free(set);
    for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
        ldns_rdf *old = ldns_rr_owner(ldns_rr_list_rr(an, i));
        ldns_rr_set_owner(ldns_rr_list_rr(an, i), ldns_dname_new_frm_str("www.c.t."));
        ldns_rdf_deep_free(old);
    }
    nt = make_msg(msg, sizeof msg, "www.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, NULL);
    CHECK_EQ(run(&w, a, cache, msg, nt, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    CHECK_EQ(res->ede, 12);
    ldns_rr *fake = ldns_rr_clone(ldns_rr_list_rr(an, 1));
    ldns_rdf_deep_free(ldns_rr_set_rdf(fake, ldns_native2rdf_int8(LDNS_RDF_TYPE_INT8, 3), 2));
    ldns_rr_list_push_rr(an, fake);
    nt = make_msg(msg, sizeof msg, "www.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, NULL);
    CHECK_EQ(run(&w, a, cache, msg, nt, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    CHECK_EQ(res->ede, 12);
    ldns_rr_list_deep_free(an);

    test_forged_proofs(&w, a, cache, res);

    /* A signed CNAME whose target the message does not answer (no SOA): the verdict covers the
     * CNAME and names the target; with an unsigned SOA it would be a denial without proof. */
    an = ldns_rr_list_new();
    set = one(rr("alias.c.t. 3600 IN CNAME www.c.t."));
    signed_set(an, set, w.kc, true);
    ldns_rr_list_deep_free(set);
    nt = make_msg(msg, sizeof msg, "alias.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, NULL);
    CHECK_EQ(run(&w, a, cache, msg, nt, "alias.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_SECURE);
    CHECK_STR(res->cname_target, "www.c.t.");
    ns = one(rr("c.t. 3600 IN SOA ns.t. admin.t. 1 3600 600 86400 300"));
    nt = make_msg(msg, sizeof msg, "alias.c.t.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, ns);
    CHECK_EQ(run(&w, a, cache, msg, nt, "alias.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    CHECK_STR(res->cname_target, "");
    ldns_rr_list_deep_free(ns);
    ldns_rr_list_deep_free(an);

    /* The question must be the one asked; garbage is indeterminate */
    n = answer_www(&w, msg, sizeof msg, true, false);
    CHECK_EQ(run(&w, a, cache, msg, n, "other.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    CHECK_EQ(run(&w, a, cache, (const uint8_t *)"\1\2\3", 3, "www.c.t.", LDNS_RR_TYPE_A, T0, res),
             LH_DNSSEC_INDETERMINATE);
    CHECK_EQ(res->ede, 5);

    /* A lookup that fails: indeterminate */
    v = lh_dnssec_val_new(a, NULL, msg, n, wire_name("www.c.t.", q), LDNS_RR_TYPE_A, T0);
    CHECK_EQ(lh_dnssec_val_run(v, &need), LH_DNSSEC_NEED);
    CHECK_EQ(lh_dnssec_val_provide(v, NULL, 0), 0);
    CHECK_EQ(lh_dnssec_val_run(v, &need), LH_DNSSEC_DONE);
    CHECK_EQ(lh_dnssec_val_result(v)->verdict, LH_DNSSEC_INDETERMINATE);
    CHECK_EQ(lh_dnssec_val_result(v)->reason, LH_DR_FETCH_FAILED);
    lh_dnssec_val_free(v);

    /* Outside every anchor: insecure without a lookup; a negative trust anchor likewise */
    fetches = 0;
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_SECURE);
    CHECK_EQ(lh_dnssec_anchors_add_insecure(a, "C.T", err, sizeof err), 0);
    fetches = 0;
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_INSECURE);
    CHECK_EQ(res->reason, LH_DR_NEGATIVE_ANCHOR);
    CHECK_EQ(fetches, 0);
    lh_dnssec_anchors *none = lh_dnssec_anchors_new();
    CHECK_EQ(run(&w, none, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_INSECURE);
    CHECK_EQ(res->reason, LH_DR_NO_ANCHOR);
    lh_dnssec_anchors_free(none);
    lh_dnssec_anchors_free(a);

    /* A DS whose algorithm nobody implements: insecure (RFC 6840 5.2) */
    a = lh_dnssec_anchors_new();
    lh_dnssec_anchors_load_text(a, w.anchor, strlen(w.anchor), "t.ds", err, sizeof err);
    ldns_rr_list_deep_free(w.resp_rrs[1]);
    w.resp_rrs[1] = ldns_rr_list_new();
    set = one(rr("c.t. 3600 IN DS 4711 200 2 "
                 "0000000000000000000000000000000000000000000000000000000000000000"));
    signed_set(w.resp_rrs[1], set, w.kp, true);
    ldns_rr_list_deep_free(set);
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_INSECURE);
    CHECK_EQ(res->reason, LH_DR_UNSUPPORTED_ALGORITHM);
    lh_dnssec_anchors_free(a);

    /* The cache stays within its slots */
    lh_dnssec_cache_stats_get(cache, T0, &st);
    CHECK(st.used <= st.capacity);
    CHECK_EQ(st.capacity, 16);
    lh_dnssec_cache_free(cache);
    world_free(&w);

    /* The child's only key is revoked (RFC 5011): its DS matches, but it is no trust point. */
    world_init(&w, T0 - 3600, T0 + 10 * 86400, 257 | 0x80);
    a = lh_dnssec_anchors_new();
    lh_dnssec_anchors_load_text(a, w.anchor, strlen(w.anchor), "t.ds", err, sizeof err);
    n = answer_www(&w, msg, sizeof msg, true, false);
    CHECK_EQ(run(&w, a, NULL, msg, n, "www.c.t.", LDNS_RR_TYPE_A, T0, res), LH_DNSSEC_BOGUS);
    CHECK_EQ(res->ede, 9);
    lh_dnssec_anchors_free(a);
    world_free(&w);
    free(res);
    test_keytrap();
    test_downgrades();
    test_verification_cap();
    test_dname();
    test_memo_truncation();
    test_memo_key_boundary();
    test_dname_island();
    test_dname_scrub();
    CHECK_EQ(lh_dnssec_reason_ede(LH_DR_NSEC_MISSING), 12);
    CHECK_STR(lh_dnssec_verdict_name(LH_DNSSEC_BOGUS), "bogus");
}
