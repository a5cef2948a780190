/* dnssec_crypto.c - one RRSIG checked against one DNSKEY, at the lowest cost ldns and OpenSSL
 * allow (see dnssec_private.h).
 *
 * Why not ldns_verify_rrsig_keylist_time alone: for every call it clones and canonicalises the
 * RRset, and for every key it converts the DNSKEY into a fresh OpenSSL key (for ECDSA: a new
 * EC_GROUP, then a second one when OpenSSL 3 exports the legacy key to its provider) before
 * the one operation that matters. Measured under bench/dnssec.sh that was ~0.5 M instructions
 * of set-up around each ECDSA P-256 check. Here the key is built once, when its DNSKEY RRset is
 * validated, as a provider-native EVP_PKEY kept with the cached key set; the signed data
 * (RFC 4034 3.1.8.1 and 6) is built once per signature whatever the number of candidate keys;
 * and a signature that verified is remembered by a SHA-256 digest of (key, signed data,
 * signature), so the same signed data seen again (the same RRset in the next answer, an NSEC
 * that proves many names, a wildcard's expansions, which are signed as the wildcard) costs a
 * digest instead of a public-key operation. The timestamps are checked on every use: only the
 * arithmetic result is remembered.
 *
 * Algorithms OpenSSL offers through EVP (RSA/SHA-1/SHA-256/SHA-512, ECDSA P-256/P-384, Ed25519,
 * Ed448) take this path; any other one ldns supports (DSA, GOST) goes through ldns as before. */
#include "dnssec_private.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

/* ---------------------------------------------------------------- key sets */

keyset *lh_keyset_new(const ldns_rr_list *keys)
{
    keyset *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    k->refs = 1;
    k->keys = ldns_rr_list_new();
    if (!k->keys) {
        free(k);
        return NULL;
    }
    size_t n = keys ? ldns_rr_list_rr_count(keys) : 0;
    for (size_t i = 0; i < n && k->n < MAX_ZONE_KEYS; i++) {
        ldns_rr *c = ldns_rr_clone(ldns_rr_list_rr(keys, i));
        if (!c || !ldns_rr_list_push_rr(k->keys, c)) {
            ldns_rr_free(c);
            lh_keyset_unref(k);
            return NULL;
        }
        k->tag[k->n] = ldns_calc_keytag(c);
        k->alg[k->n] = dnskey_alg(c);
        k->n++;
    }
    return k;
}

keyset *lh_keyset_ref(keyset *k)
{
    if (k) k->refs++;
    return k;
}

void lh_keyset_unref(keyset *k)
{
    if (!k || --k->refs) return;
    for (size_t i = 0; i < k->n; i++)
        EVP_PKEY_free(k->pk[i]);
    ldns_rr_list_deep_free(k->keys);
    free(k);
}

/* ---------------------------------------------------------------- OpenSSL keys */

static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *b)
{
    EVP_PKEY *pk = NULL;
    OSSL_PARAM *params = b ? OSSL_PARAM_BLD_to_param(b) : NULL;
    EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pk = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pk;
}

/* RFC 3110 2: an exponent length (one byte, or 0 and two bytes), the exponent, the modulus. */
static EVP_PKEY *rsa_key(const uint8_t *d, size_t n)
{
    size_t el, o;
    if (n < 1) return NULL;
    if (d[0]) {
        el = d[0];
        o = 1;
    } else {
        if (n < 3) return NULL;
        el = (size_t)d[1] << 8 | d[2];
        o = 3;
    }
    if (el == 0 || el > 16 || n - o <= el || n - o - el > 1024) return NULL;
    BIGNUM *e = BN_bin2bn(d + o, (int)el, NULL),
           *m = BN_bin2bn(d + o + el, (int)(n - o - el), NULL);
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;
    if (e && m && b && OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, m) &&
        OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, e))
        pk = pkey_from_params("RSA", b);
    OSSL_PARAM_BLD_free(b);
    BN_free(e);
    BN_free(m);
    return pk;
}

/* RFC 6605 4: the point's x and y, without the uncompressed-point prefix. */
static EVP_PKEY *ec_key(const uint8_t *d, size_t n, const char *group, size_t want)
{
    uint8_t point[1 + 96];
    if (n != want || n + 1 > sizeof point) return NULL;
    point[0] = 0x04;
    memcpy(point + 1, d, n);
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;
    if (b && OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
        OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, point, n + 1))
        pk = pkey_from_params("EC", b);
    OSSL_PARAM_BLD_free(b);
    return pk;
}

/* The EVP_PKEY of key i, built on first use; NULL if the key does not parse. */
static EVP_PKEY *key_pkey(keyset *ks, size_t i)
{
    if (ks->pk_state[i]) return ks->pk[i];
    const ldns_rdf *pub = ldns_rr_rdf(ldns_rr_list_rr(ks->keys, i), 3);
    const uint8_t *d = ldns_rdf_data(pub);
    size_t n = ldns_rdf_size(pub);
    EVP_PKEY *pk = NULL;
    switch (ks->alg[i]) {
    case LDNS_RSASHA1:
    case LDNS_RSASHA1_NSEC3:
    case LDNS_RSASHA256:
    case LDNS_RSASHA512:
        pk = rsa_key(d, n);
        break;
    case LDNS_ECDSAP256SHA256:
        pk = ec_key(d, n, "prime256v1", 64);
        break;
    case LDNS_ECDSAP384SHA384:
        pk = ec_key(d, n, "secp384r1", 96);
        break;
    case LDNS_ED25519:
        pk = n == 32 ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, d, n) : NULL;
        break;
    case LDNS_ED448:
        pk = n == 57 ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED448, NULL, d, n) : NULL;
        break;
    }
    ks->pk[i] = pk;
    ks->pk_state[i] = 1;
    return pk;
}

static bool native_alg(uint8_t alg)
{
    switch (alg) {
    case LDNS_RSASHA1:
    case LDNS_RSASHA1_NSEC3:
    case LDNS_RSASHA256:
    case LDNS_RSASHA512:
    case LDNS_ECDSAP256SHA256:
    case LDNS_ECDSAP384SHA384:
    case LDNS_ED25519:
    case LDNS_ED448:
        return true;
    default:
        return false;
    }
}

/* ---------------------------------------------------------------- digests */

static const char *md_name(uint8_t alg)
{
    switch (alg) {
    case LDNS_RSASHA1:
    case LDNS_RSASHA1_NSEC3:
        return "SHA1";
    case LDNS_RSASHA256:
    case LDNS_ECDSAP256SHA256:
        return "SHA256";
    case LDNS_ECDSAP384SHA384:
        return "SHA384";
    case LDNS_RSASHA512:
        return "SHA512";
    default:
        return NULL; /* EdDSA: no separate digest */
    }
}

/* The digests, fetched once per cache: an implicit fetch by EVP_sha256() and the like costs a
 * provider lookup on every use in OpenSSL 3. */
static EVP_MD *md_get(lh_dnssec_cache *c, const char *name)
{
    static const char *const names[LH_MDS] = {"SHA1", "SHA256", "SHA384", "SHA512"};
    for (unsigned i = 0; i < LH_MDS; i++)
        if (!strcmp(names[i], name)) {
            if (!c->md[i]) c->md[i] = EVP_MD_fetch(NULL, name, NULL);
            return c->md[i];
        }
    return NULL;
}

/* ---------------------------------------------------------------- signed data */

/* RFC 4034 3.1.8.1: the RRSIG's RDATA without the signature, then the RRset in canonical form
 * (6.2: lower-case names, the original TTL, the wildcard as the owner of an expansion) and order
 * (6.3). The same construction ldns_verify_rrsig_keylist_time makes, with ldns's functions. */
static ldns_status signed_data(ldns_buffer *buf, const ldns_rr_list *rrset, const ldns_rr *sig)
{
    ldns_buffer_clear(buf);
    if (ldns_rrsig2buffer_wire(buf, sig) != LDNS_STATUS_OK) return LDNS_STATUS_MEM_ERR;
    uint8_t labels = ldns_rdf2native_int8(ldns_rr_rrsig_labels(sig));
    uint32_t ttl = ldns_rdf2native_int32(ldns_rr_rrsig_origttl(sig));
    ldns_rr_list *c = ldns_rr_list_clone(rrset);
    if (!c) return LDNS_STATUS_MEM_ERR;
    ldns_status s = LDNS_STATUS_OK;
    for (size_t i = 0; i < ldns_rr_list_rr_count(c) && s == LDNS_STATUS_OK; i++) {
        ldns_rr *rr = ldns_rr_list_rr(c, i);
        unsigned ol = ldns_dname_label_count(ldns_rr_owner(rr));
        if (labels < ol) {
            ldns_rdf *w = NULL, *sfx = name_suffix(ldns_rr_owner(rr), labels);
            if (!sfx || !(w = name_wildcard(sfx))) {
                ldns_rdf_deep_free(sfx);
                s = LDNS_STATUS_MEM_ERR;
                break;
            }
            ldns_rdf_deep_free(sfx);
            ldns_rdf_deep_free(ldns_rr_owner(rr));
            ldns_rr_set_owner(rr, w);
        }
        ldns_rr_set_ttl(rr, ttl);
        ldns_rr2canonical(rr);
    }
    if (s == LDNS_STATUS_OK) {
        ldns_rr_list_sort(c);
        if (ldns_rr_list2buffer_wire(buf, c) != LDNS_STATUS_OK) s = LDNS_STATUS_MEM_ERR;
    }
    ldns_rr_list_deep_free(c);
    return s;
}

/* The same check as ldns_rrsig_check_timestamps, in serial-number arithmetic (RFC 4034 3.1.5). */
static ldns_status check_time(const ldns_rr *sig, time_t now)
{
    int32_t inc = (int32_t)ldns_rdf2native_int32(ldns_rr_rrsig_inception(sig));
    int32_t exp = (int32_t)ldns_rdf2native_int32(ldns_rr_rrsig_expiration(sig));
    int32_t n = (int32_t)(uint32_t)now;
    if ((int32_t)((uint32_t)exp - (uint32_t)inc) < 0)
        return LDNS_STATUS_CRYPTO_EXPIRATION_BEFORE_INCEPTION;
    if ((int32_t)((uint32_t)n - (uint32_t)inc) < 0) return LDNS_STATUS_CRYPTO_SIG_NOT_INCEPTED;
    if ((int32_t)((uint32_t)exp - (uint32_t)n) < 0) return LDNS_STATUS_CRYPTO_SIG_EXPIRED;
    return LDNS_STATUS_OK;
}

/* ---------------------------------------------------------------- verified signatures */

static void sig_digest(lh_dnssec_cache *c, const ldns_rr *key, const ldns_buffer *data,
                       const ldns_rdf *sig, uint8_t out[32], bool *ok)
{
    EVP_MD *md = md_get(c, "SHA256");
    EVP_MD_CTX *ctx = c->mdctx ? c->mdctx : (c->mdctx = EVP_MD_CTX_new());
    unsigned len = 0;
    /* Each variable-length field is preceded by its length, so that no two different
     * (key, signed data, signature) triples are hashed as the same bytes. */
    uint8_t lens[12];
    size_t kl = ldns_rdf_size(ldns_rr_rdf(key, 3)), dl = ldns_buffer_position(data),
           sl = ldns_rdf_size(sig);
    for (int i = 0; i < 4; i++) {
        lens[i] = (uint8_t)(kl >> (24 - 8 * i));
        lens[4 + i] = (uint8_t)(dl >> (24 - 8 * i));
        lens[8 + i] = (uint8_t)(sl >> (24 - 8 * i));
    }
    *ok = md && ctx && EVP_DigestInit_ex(ctx, md, NULL) == 1 &&
          EVP_DigestUpdate(ctx, lens, sizeof lens) == 1;
    for (size_t i = 0; *ok && i < 4; i++) /* the whole DNSKEY RDATA: flags, protocol, alg, key */
        *ok = EVP_DigestUpdate(ctx, ldns_rdf_data(ldns_rr_rdf(key, i)),
                               ldns_rdf_size(ldns_rr_rdf(key, i))) == 1;
    *ok = *ok && EVP_DigestUpdate(ctx, ldns_buffer_begin(data), ldns_buffer_position(data)) == 1 &&
          EVP_DigestUpdate(ctx, ldns_rdf_data(sig), ldns_rdf_size(sig)) == 1 &&
          EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == 32;
}

static lh_sigseen *sig_bucket(lh_dnssec_cache *c, const uint8_t d[32])
{
    uint64_t h;
    memcpy(&h, d, sizeof h);
    return &c->sigs[(h & (LH_SIGSEEN - 1)) & ~3ull];
}

static bool sig_seen(lh_dnssec_cache *c, const uint8_t d[32], time_t now)
{
    if (!c->sigs) return false;
    lh_sigseen *b = sig_bucket(c, d);
    for (int i = 0; i < 4; i++)
        if (b[i].expires > now && !memcmp(b[i].digest, d, 32)) return true;
    return false;
}

static void sig_remember(lh_dnssec_cache *c, const uint8_t d[32], time_t expires)
{
    if (!c->sigs) return;
    lh_sigseen *b = sig_bucket(c, d), *slot = &b[0];
    for (int i = 1; i < 4; i++)
        if (b[i].expires < slot->expires) slot = &b[i];
    memcpy(slot->digest, d, 32);
    slot->expires = expires;
}

/* ---------------------------------------------------------------- the check */

static bool evp_verify(lh_dnssec_cache *c, EVP_PKEY *pk, uint8_t alg, const ldns_rdf *sigrdf,
                       const ldns_buffer *data)
{
    const uint8_t *sig = ldns_rdf_data(sigrdf);
    size_t siglen = ldns_rdf_size(sigrdf);
    uint8_t der[2 * 49 + 8];
    if (alg == LDNS_ECDSAP256SHA256 || alg == LDNS_ECDSAP384SHA384) {
        /* RFC 6605 4: r and s side by side; OpenSSL wants the DER of ECDSA-Sig-Value */
        size_t half = alg == LDNS_ECDSAP256SHA256 ? 32 : 48;
        if (siglen != 2 * half) return false;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, (int)half, NULL), *s = BN_bin2bn(sig + half, (int)half, NULL);
        if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(es);
            return false;
        }
        uint8_t *p = der;
        int n = i2d_ECDSA_SIG(es, NULL) <= (int)sizeof der ? i2d_ECDSA_SIG(es, &p) : -1;
        ECDSA_SIG_free(es);
        if (n <= 0) return false;
        sig = der;
        siglen = (size_t)n;
    }
    const char *mdn = md_name(alg);
    EVP_MD *md = mdn ? md_get(c, mdn) : NULL;
    if (mdn && !md) return false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, pk) == 1 &&
              EVP_DigestVerify(ctx, sig, siglen, ldns_buffer_begin(data),
                               ldns_buffer_position(data)) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

ldns_status lh_dnssec_check_sig(lh_dnssec_cache *c, const ldns_rr_list *rrset, const ldns_rr *sig,
                                keyset *ks, const size_t *cand, size_t ncand, time_t now,
                                unsigned *crypto)
{
    uint8_t alg = ldns_rdf2native_int8(ldns_rr_rrsig_algorithm(sig));
    if (!c || !native_alg(alg)) {
        /* ldns's own path, key by key as ldns_verify_rrsig_keylist_time would */
        ldns_rr_list *one = ldns_rr_list_new();
        if (!one) return LDNS_STATUS_MEM_ERR;
        for (size_t i = 0; i < ncand; i++)
            ldns_rr_list_push_rr(one, ldns_rr_list_rr(ks->keys, cand[i]));
        ldns_rr_list *good = ldns_rr_list_new();
        ldns_status s = ldns_verify_rrsig_keylist_time(rrset, sig, one, now, good);
        ldns_rr_list_free(good);
        ldns_rr_list_free(one);
        *crypto += (unsigned)ncand;
        return s;
    }
    if (ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(sig)) !=
        ldns_rr_get_type(ldns_rr_list_rr(rrset, 0)))
        return LDNS_STATUS_CRYPTO_TYPE_COVERED_ERR;
    if (!c->buf && !(c->buf = ldns_buffer_new(LDNS_MAX_PACKETLEN))) return LDNS_STATUS_MEM_ERR;
    ldns_status s = signed_data(c->buf, rrset, sig);
    if (s != LDNS_STATUS_OK) return s;
    const ldns_rdf *sigrdf = ldns_rr_rdf(sig, 8);
    bool ok = false;
    for (size_t i = 0; i < ncand && !ok; i++) {
        const ldns_rr *key = ldns_rr_list_rr(ks->keys, cand[i]);
        uint8_t d[32];
        bool have_digest;
        sig_digest(c, key, c->buf, sigrdf, d, &have_digest);
        if (have_digest && sig_seen(c, d, now)) {
            c->sig_hits++;
            ok = true;
            break;
        }
        EVP_PKEY *pk = key_pkey(ks, cand[i]);
        if (!pk) continue; /* a key that does not parse verifies nothing */
        (*crypto)++;
        c->sig_checks++;
        ok = evp_verify(c, pk, alg, sigrdf, c->buf);
        if (ok && have_digest)
            sig_remember(c, d, ldns_rdf2native_time_t(ldns_rr_rrsig_expiration(sig)));
    }
    /* as ldns: the timestamps are looked at once a key has verified the signature */
    return ok ? check_time(sig, now) : LDNS_STATUS_CRYPTO_BOGUS;
}
