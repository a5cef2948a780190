/* dnssec.c - see dnssec.h. The crypto, the canonical forms and the record parsing are ldns's; this
 * file decides what has to be proven and in which order.
 *
 * How a validation runs. The answer is split into pieces: each RRset of the answer section along
 * the CNAME chain, and, when the chain ends without the asked type, the negative answer in the
 * authority section. A piece is checked in the zone that signed it; that zone's keys come from a
 * walk down from the closest trust anchor, one label at a time: a DS lookup at every name between
 * the anchor and the signer (or, for unsigned data, the owner) tells whether the name is a
 * secure zone cut (a signed DS: then its DNSKEY RRset must match the DS and be self-signed), an
 * insecure one (a signed proof that there is no DS at a delegation), or no cut at all. Zone cuts
 * are thus found from the signatures, never from unsigned NS records.
 *
 * Resuming. Whenever a DS or DNSKEY response is missing, the walk stops with a NEED; the caller
 * provides the response and run() replays the evaluation from the start. Replaying is cheap:
 * the responses are kept for the validation, and every fact the walk proved (a zone's validated
 * keys, "not a cut", "insecure delegation") is in the shared cache, so only the answer's own
 * signatures are checked again. The replay keeps the state machine to a single function and
 * makes a resumed validation behave exactly like a blocking one.
 */
#include "dnssec_private.h"
#include "loophole/sbuf.h"

#include <stdarg.h>
#include <strings.h>

#define MAX_FETCHES 64 /* DS + DNSKEY responses per validation: 127 labels would need more */
#define MAX_CHAIN 16   /* CNAMEs followed in one answer */
/* The bounds on signature checking (KeyTrap, CVE-2023-50387): a message can carry hundreds of
 * RRSIGs and a zone hundreds of DNSKEYs sharing one key tag, and ldns tries every key for every
 * signature. A real RRset has a few signatures, a real zone a few keys, and no two of them share
 * a tag and an algorithm.
 *
 * MAX_VERIFICATIONS counts public-key operations over the whole validation. A signature that
 * verified is remembered (dnssec_crypto.c), so a replay costs none and the count is that of the
 * distinct signatures checked. The most an honest answer needs: its pieces (the 16 CNAMEs and
 * the final RRset), each possibly in a zone of its own whose DS and DNSKEY sets are checked
 * once (3 x 17 = 51), a denial (an SOA and up to three NSEC3s) and the no-DS proofs of names
 * on the way down that are not zone cuts (up to 4 each, proven once per name and cached): 128
 * leaves room for that and caps what one hostile answer costs at 128 checks (~0.1 G
 * instructions, ~40 ms of one core for ECDSA P-256 here) instead of the 1024 of the first
 * version. Unbound bounds the same thing differently (at most 8 RRSIGs per RRset, and it
 * suspends a validation that keeps failing); the per-RRset and per-signature bounds below are
 * the same idea. MAX_CHECKS also counts the checks a remembered signature answered (each costs
 * a canonical form and a SHA-256 digest). */
#define MAX_SIGS_PER_RRSET 8 /* RRSIGs checked against keys for one RRset */
#define MAX_KEYS_PER_SIG 4   /* keys with a signature's tag and algorithm tried for it */
#define MAX_DS 16            /* DS records of a zone considered */
#define MAX_VERIFICATIONS 128
#define MAX_CHECKS 1024

/* ---------------------------------------------------------------- reasons */

int lh_dnssec_reason_ede(enum lh_dnssec_reason r)
{
    switch (r) {
    case LH_DR_UNSUPPORTED_ALGORITHM:
        return 1;
    case LH_DR_UNSUPPORTED_DIGEST:
        return 2;
    case LH_DR_BOGUS_SIGNATURE:
    case LH_DR_BAD_DENIAL:
    case LH_DR_BAD_ANSWER:
        return 6;
    case LH_DR_SIGNATURE_EXPIRED:
        return 7;
    case LH_DR_SIGNATURE_NOT_YET_VALID:
        return 8;
    case LH_DR_DNSKEY_MISSING:
        return 9;
    case LH_DR_RRSIGS_MISSING:
        return 10;
    case LH_DR_NO_ZONE_KEY:
        return 11;
    case LH_DR_NSEC_MISSING:
        return 12;
    case LH_DR_NSEC3_ITERATIONS:
        return 27;
    case LH_DR_FETCH_FAILED:
    case LH_DR_MALFORMED:
        return 5;
    default:
        return -1;
    }
}

const char *lh_dnssec_reason_key(enum lh_dnssec_reason r)
{
    static const char *const keys[] = {"none",
                                       "no_anchor",
                                       "negative_anchor",
                                       "insecure_delegation",
                                       "unsupported_algorithm",
                                       "unsupported_digest",
                                       "nsec3_iterations",
                                       "nsec3_optout",
                                       "bogus_signature",
                                       "signature_expired",
                                       "signature_not_yet_valid",
                                       "dnskey_missing",
                                       "rrsigs_missing",
                                       "no_zone_key",
                                       "nsec_missing",
                                       "bad_denial",
                                       "bad_answer",
                                       "fetch_failed",
                                       "malformed"};
    _Static_assert(sizeof keys / sizeof *keys == LH_DR_MALFORMED + 1, "one key per reason");
    return (unsigned)r < sizeof keys / sizeof *keys ? keys[r] : "unknown";
}

const char *lh_dnssec_reason_text(enum lh_dnssec_reason r)
{
    switch (r) {
    case LH_DR_NONE:
        return "signatures verified from the trust anchor";
    case LH_DR_NO_ANCHOR:
        return "no trust anchor covers the name";
    case LH_DR_NEGATIVE_ANCHOR:
        return "negative trust anchor (domain-insecure)";
    case LH_DR_INSECURE_DELEGATION:
        return "insecure delegation (signed proof of no DS)";
    case LH_DR_UNSUPPORTED_ALGORITHM:
        return "unsupported DNSKEY algorithm";
    case LH_DR_UNSUPPORTED_DIGEST:
        return "unsupported DS digest type";
    case LH_DR_NSEC3_ITERATIONS:
        return "NSEC3 iterations above the limit";
    case LH_DR_NSEC3_OPTOUT:
        return "NSEC3 opt-out span";
    case LH_DR_BOGUS_SIGNATURE:
        return "signature does not verify";
    case LH_DR_SIGNATURE_EXPIRED:
        return "signature expired";
    case LH_DR_SIGNATURE_NOT_YET_VALID:
        return "signature not yet valid";
    case LH_DR_DNSKEY_MISSING:
        return "DNSKEY missing";
    case LH_DR_RRSIGS_MISSING:
        return "RRSIGs missing";
    case LH_DR_NO_ZONE_KEY:
        return "no zone key bit set";
    case LH_DR_NSEC_MISSING:
        return "NSEC/NSEC3 missing";
    case LH_DR_BAD_DENIAL:
        return "NSEC/NSEC3 do not prove the denial";
    case LH_DR_BAD_ANSWER:
        return "answer inconsistent with its signatures";
    case LH_DR_FETCH_FAILED:
        return "DS/DNSKEY lookup failed";
    case LH_DR_MALFORMED:
        return "malformed message";
    }
    return "?";
}

const char *lh_dnssec_verdict_name(enum lh_dnssec_verdict v)
{
    static const char *const names[] = {"secure", "insecure", "bogus", "indeterminate"};
    return (unsigned)v < 4 ? names[v] : "?";
}

/* ---------------------------------------------------------------- validation state */

typedef struct fetched {
    ldns_rdf *name;
    uint16_t type;
    ldns_pkt *pkt; /* NULL: the lookup failed */
} fetched;

struct lh_dnssec_val {
    const lh_dnssec_anchors *anchors;
    lh_dnssec_cache *cache;
    time_t now;
    ldns_pkt *pkt; /* the answer; NULL if it did not parse */
    ldns_rdf *qname;
    uint16_t qtype;
    fetched f[MAX_FETCHES];
    unsigned nf;
    unsigned verifications; /* public-key operations so far (MAX_VERIFICATIONS) */
    unsigned checks;        /* signature checks, remembered ones included (MAX_CHECKS) */
    bool done, waiting;
    lh_dnssec_need need;
    lh_dnssec_result res;
    lh_sbuf chain;
    /* the piece being checked */
    enum lh_dnssec_verdict piece;
    enum lh_dnssec_reason piece_reason;
    char piece_zone[256]; /* where the piece became insecure */
    bool quiet;           /* no chain lines (lh_dnssec_val_quiet) */
    /* the zones whose keys verified a signature, over all the runs (lh_dnssec_val_signer) */
    char signers[LH_DNSSEC_SIGNERS][256];
    unsigned nsigners;
    char last_sig[160];      /* the signature verify_rrset accepted last, for chain lines */
    uint8_t last_sig_labels; /* and its labels field (wildcard expansion) */
};

static void set_insecure(lh_dnssec_val *v, enum lh_dnssec_reason r, const ldns_rdf *where)
{
    v->piece = LH_DNSSEC_INSECURE;
    v->piece_reason = r;
    name_text(where, v->piece_zone, sizeof v->piece_zone);
}

/* What the step functions return. */
enum { GO = 0, STOP = 1, WAIT = 2 };

static void chain_line(lh_dnssec_val *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void chain_line(lh_dnssec_val *v, const char *fmt, ...)
{
    if (v->quiet) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    lh_sbuf_printf(&v->chain, "%s\n", line);
}

/* Sets the final verdict. */
static int finish(lh_dnssec_val *v, enum lh_dnssec_verdict verdict, enum lh_dnssec_reason r,
                  const ldns_rdf *zone, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int finish(lh_dnssec_val *v, enum lh_dnssec_verdict verdict, enum lh_dnssec_reason r,
                  const ldns_rdf *zone, const char *fmt, ...)
{
    v->res.verdict = verdict;
    v->res.reason = r;
    v->res.ede = lh_dnssec_reason_ede(r);
    v->res.zone[0] = 0;
    if (zone) name_text(zone, v->res.zone, sizeof v->res.zone);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->res.detail, sizeof v->res.detail, fmt, ap);
    va_end(ap);
    return STOP;
}

/* The response fetched for (name, type), or WAIT after asking for it. *out is NULL when the
 * lookup failed. */
static int get_fetched(lh_dnssec_val *v, const ldns_rdf *name, uint16_t type, ldns_pkt **out)
{
    for (unsigned i = 0; i < v->nf; i++)
        if (v->f[i].type == type && name_eq(v->f[i].name, name)) {
            *out = v->f[i].pkt;
            return GO;
        }
    if (v->nf == MAX_FETCHES)
        return finish(v, LH_DNSSEC_INDETERMINATE, LH_DR_FETCH_FAILED, name,
                      "more than %d DS/DNSKEY lookups", MAX_FETCHES);
    size_t n = ldns_rdf_size(name);
    if (n > sizeof v->need.name) n = sizeof v->need.name;
    memcpy(v->need.name, ldns_rdf_data(name), n);
    v->need.name_len = n;
    name_text(name, v->need.text, sizeof v->need.text);
    v->need.type = type;
    v->waiting = true;
    return WAIT;
}

static enum lh_dnssec_reason map_status(ldns_status s)
{
    switch (s) {
    case LDNS_STATUS_CRYPTO_SIG_EXPIRED:
        return LH_DR_SIGNATURE_EXPIRED;
    case LDNS_STATUS_CRYPTO_SIG_NOT_INCEPTED:
        return LH_DR_SIGNATURE_NOT_YET_VALID;
    case LDNS_STATUS_CRYPTO_NO_MATCHING_KEYTAG_DNSKEY:
    case LDNS_STATUS_CRYPTO_NO_DNSKEY:
        return LH_DR_DNSKEY_MISSING;
    default:
        return LH_DR_BOGUS_SIGNATURE;
    }
}

/* Time errors say the most about a failure, then a missing key, then a bad signature. */
static int reason_rank(enum lh_dnssec_reason r)
{
    return r == LH_DR_SIGNATURE_EXPIRED || r == LH_DR_SIGNATURE_NOT_YET_VALID ? 3
           : r == LH_DR_DNSKEY_MISSING                                        ? 1
                                                                              : 2;
}

static void time_text(time_t t, char *out, size_t cap)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Remembers that `zone`'s keys verified a signature of the answer itself (its RRsets or its
 * denial): a zone proven signed, as the downgrade protection needs it (validate.h). */
static void note_signer(lh_dnssec_val *v, const ldns_rdf *zone)
{
    char t[256];
    name_text(zone, t, sizeof t);
    for (unsigned i = 0; i < v->nsigners; i++)
        if (!strcmp(v->signers[i], t)) return;
    if (v->nsigners < LH_DNSSEC_SIGNERS) memcpy(v->signers[v->nsigners++], t, sizeof t);
}

/* Verifies an RRset (all records of one owner and type) with the keys of `zone` using the
 * RRSIGs in `sigs_from`. Returns LH_DR_NONE or the reason; *expires gets the signature's
 * expiration. `detail` says which signature failed. */
static enum lh_dnssec_reason verify_rrset(lh_dnssec_val *v, const ldns_rr_list *rrset,
                                          const ldns_rr_list *sigs_from, const ldns_rdf *zone,
                                          keyset *keys, char *detail, size_t dcap, time_t *expires,
                                          bool show)
{
    ldns_rr *first = ldns_rr_list_rr(rrset, 0);
    ldns_rr_type t = ldns_rr_get_type(first);
    char owner[1025], *ts = ldns_rr_type2str(t);
    name_text(ldns_rr_owner(first), owner, sizeof owner);
    ldns_rr_list *sigs = select_rrs(sigs_from, ldns_rr_owner(first), LDNS_RR_TYPE_RRSIG, t);
    enum lh_dnssec_reason worst = LH_DR_RRSIGS_MISSING;
    snprintf(detail, dcap, "%.200s %s: no RRSIG", owner, ts ? ts : "?");
    /* the key tags and algorithms were computed once, with the key set */
    size_t nkeys = keys ? keys->n : 0, cand[MAX_KEYS_PER_SIG];
    unsigned tried = 0;
    for (size_t i = 0; sigs && i < ldns_rr_list_rr_count(sigs); i++) {
        ldns_rr *sig = ldns_rr_list_rr(sigs, i);
        uint16_t tag = ldns_rdf2native_int16(ldns_rr_rrsig_keytag(sig));
        uint8_t alg = ldns_rdf2native_int8(ldns_rr_rrsig_algorithm(sig));
        enum lh_dnssec_reason r;
        ldns_status s = LDNS_STATUS_OK;
        if (!name_eq(ldns_rr_rrsig_signame(sig), zone)) {
            r = LH_DR_BAD_ANSWER;
        } else {
            size_t nc = 0;
            for (size_t k = 0; k < nkeys && nc < MAX_KEYS_PER_SIG; k++)
                if (keys->tag[k] == tag && keys->alg[k] == alg) cand[nc++] = k;
            if (nc == 0) {
                s = LDNS_STATUS_CRYPTO_NO_MATCHING_KEYTAG_DNSKEY;
            } else if (tried == MAX_SIGS_PER_RRSET || v->verifications + nc > MAX_VERIFICATIONS ||
                       v->checks + nc > MAX_CHECKS) {
                worst = LH_DR_BOGUS_SIGNATURE;
                snprintf(detail, dcap, "RRSIG %.150s %s: more signature checks than allowed (%s)",
                         owner, ts ? ts : "?",
                         tried == MAX_SIGS_PER_RRSET ? "per RRset" : "per validation");
                break;
            } else {
                tried++;
                v->checks += (unsigned)nc;
                unsigned crypto = 0;
                s = lh_dnssec_check_sig(v->cache, rrset, sig, keys, cand, nc, v->now, &crypto);
                v->verifications += crypto;
            }
            r = s == LDNS_STATUS_OK ? LH_DR_NONE : map_status(s);
        }
        if (r == LH_DR_NONE) {
            *expires = ldns_rdf2native_time_t(ldns_rr_rrsig_expiration(sig));
            v->last_sig_labels = ldns_rdf2native_int8(ldns_rr_rrsig_labels(sig));
            worst = LH_DR_NONE;
            /* last_sig describes DS and DNSKEY sets in the cached chain lines (show false) */
            if (v->quiet && show) break;
            char from[32], to[32];
            time_text(ldns_rdf2native_time_t(ldns_rr_rrsig_inception(sig)), from, sizeof from);
            time_text(*expires, to, sizeof to);
            char z[1025];
            name_text(zone, z, sizeof z);
            snprintf(v->last_sig, sizeof v->last_sig, "key %u alg %u, valid %s..%s", tag,
                     ldns_rdf2native_int8(ldns_rr_rrsig_algorithm(sig)), from, to);
            if (show)
                chain_line(v, "  RRSIG %s %s by %s %s: verified", owner, ts ? ts : "?", z,
                           v->last_sig);
            break;
        }
        if (worst == LH_DR_RRSIGS_MISSING || reason_rank(r) > reason_rank(worst)) {
            worst = r;
            if (r == LH_DR_BAD_ANSWER) {
                char sn[1025], z[1025];
                name_text(ldns_rr_rrsig_signame(sig), sn, sizeof sn);
                name_text(zone, z, sizeof z);
                snprintf(detail, dcap, "RRSIG %.80s %s key %u: signer %.60s is not the zone %.60s",
                         owner, ts ? ts : "?", tag, sn, z);
            } else {
                snprintf(detail, dcap, "RRSIG %.150s %s key %u: %s", owner, ts ? ts : "?", tag,
                         ldns_get_errorstr_by_id(s));
            }
        }
    }
    ldns_rr_list_free(sigs);
    free(ts);
    return worst;
}

/* Verifies every RRset of `type` in `l` (one per owner). */
static enum lh_dnssec_reason verify_all(lh_dnssec_val *v, const ldns_rr_list *l, ldns_rr_type type,
                                        const ldns_rr_list *sigs_from, const ldns_rdf *zone,
                                        keyset *keys, char *detail, size_t dcap)
{
    ldns_rr_list *all = select_rrs(l, NULL, type, 0);
    enum lh_dnssec_reason r = LH_DR_NONE;
    for (size_t i = 0; all && r == LH_DR_NONE && i < ldns_rr_list_rr_count(all); i++) {
        ldns_rr *rr = ldns_rr_list_rr(all, i);
        bool seen = false; /* owners already verified */
        for (size_t j = 0; j < i && !seen; j++)
            seen = name_eq(ldns_rr_owner(ldns_rr_list_rr(all, j)), ldns_rr_owner(rr));
        if (seen) continue;
        ldns_rr_list *set = select_rrs(l, ldns_rr_owner(rr), type, 0);
        time_t exp;
        r = set ? verify_rrset(v, set, sigs_from, zone, keys, detail, dcap, &exp, true)
                : LH_DR_MALFORMED;
        ldns_rr_list_free(set);
    }
    ldns_rr_list_free(all);
    return r;
}

/* Checks that the authority section of `p` proves that qname/qtype does not exist (nx: the
 * name does not; else the type does not), with records signed by `zone`. */
static void deny(lh_dnssec_val *v, const ldns_pkt *p, const ldns_rdf *zone, keyset *keys,
                 const ldns_rdf *qname, ldns_rr_type qtype, bool nx, denial *d)
{
    memset(d, 0, sizeof *d);
    d->verdict = LH_DNSSEC_BOGUS;
    d->reason = LH_DR_BAD_DENIAL;
    const ldns_rr_list *auth = ldns_pkt_authority(p);
    ldns_rr_list *nsecs = select_rrs(auth, NULL, LDNS_RR_TYPE_NSEC, 0);
    ldns_rr_list *n3all = select_rrs(auth, NULL, LDNS_RR_TYPE_NSEC3, 0);
    if (!nsecs || !n3all) goto out;
    size_t nn = ldns_rr_list_rr_count(nsecs), n3 = ldns_rr_list_rr_count(n3all);
    if (nn == 0 && n3 == 0) {
        d->reason = LH_DR_NSEC_MISSING;
        snprintf(d->detail, sizeof d->detail, "no NSEC or NSEC3 in the authority section");
        goto out;
    }
    enum lh_dnssec_reason r =
        verify_all(v, auth, LDNS_RR_TYPE_SOA, auth, zone, keys, d->detail, sizeof d->detail);
    if (r == LH_DR_NONE)
        r = verify_all(v, auth, nn ? LDNS_RR_TYPE_NSEC : LDNS_RR_TYPE_NSEC3, auth, zone, keys,
                       d->detail, sizeof d->detail);
    if (r != LH_DR_NONE) {
        d->reason = r;
        goto out;
    }
    if (nn) {
        lh_dnssec_nsec_deny(d, nsecs, qname, qtype, nx);
    } else {
        bool over = false, unknown = false;
        ldns_rr_list *use = lh_dnssec_nsec3_usable(n3all, &over, &unknown);
        if (use && ldns_rr_list_rr_count(use)) {
            lh_dnssec_nsec3_deny(d, use, zone, qname, qtype, nx);
        } else if (over || unknown) {
            d->verdict = LH_DNSSEC_INSECURE;
            d->reason = over ? LH_DR_NSEC3_ITERATIONS : LH_DR_UNSUPPORTED_ALGORITHM;
            snprintf(d->detail, sizeof d->detail,
                     over ? "NSEC3 iterations above %d" : "unknown NSEC3 hash algorithm",
                     LH_DNSSEC_NSEC3_MAX_ITERATIONS);
        }
        ldns_rr_list_free(use);
    }
    if (d->verdict == LH_DNSSEC_SECURE) d->reason = LH_DR_NONE;
out:
    ldns_rr_list_free(nsecs);
    ldns_rr_list_free(n3all);
}

/* ---------------------------------------------------------------- the walk */

/* The zone the walk is in and its keys: copies, never pointers into the cache, whose entries a
 * later insertion in the same walk may evict. */
typedef struct zone_keys {
    ldns_rdf *zone;
    keyset *keys; /* one reference */
} zone_keys;

static void zone_keys_clear(zone_keys *z)
{
    ldns_rdf_deep_free(z->zone);
    lh_keyset_unref(z->keys);
    memset(z, 0, sizeof *z);
}

static void zone_keys_set(zone_keys *z, const ldns_rdf *zone, keyset *keys)
{
    ldns_rdf_deep_free(z->zone);
    lh_keyset_unref(z->keys);
    z->zone = ldns_rdf_clone(zone);
    z->keys = lh_keyset_ref(keys);
}

static void describe_keys(char *out, size_t cap, const keyset *keys)
{
    lh_sbuf b;
    lh_sbuf_init(&b, out, cap);
    for (size_t i = 0; i < keys->n; i++) {
        const ldns_rr *k = ldns_rr_list_rr(keys->keys, i);
        lh_sbuf_printf(&b, "%s%u/%u%s", i ? ", " : "", keys->tag[i], keys->alg[i],
                       dnskey_flags(k) & 1 ? " KSK" : "");
    }
}

/* A zone's DNSKEY response checked against its trust (anchor DS, anchor DNSKEYs, or the DS the
 * parent signed): some trusted key must be in the set and sign it. On success stores the usable
 * keys in the cache and in *z. */
static int establish_keys(lh_dnssec_val *v, const ldns_rdf *name, const ldns_rr_list *ds,
                          const ldns_rr_list *anchor_keys, const char *trust, zone_keys *z)
{
    ldns_pkt *p = NULL;
    int st = get_fetched(v, name, LDNS_RR_TYPE_DNSKEY, &p);
    if (st != GO) return st;
    if (!p || (ldns_pkt_get_rcode(p) != LDNS_RCODE_NOERROR &&
               ldns_pkt_get_rcode(p) != LDNS_RCODE_NXDOMAIN))
        return finish(v, LH_DNSSEC_INDETERMINATE, LH_DR_FETCH_FAILED, name, "DNSKEY lookup failed");
    ldns_rr_list *all = select_rrs(ldns_pkt_answer(p), name, LDNS_RR_TYPE_DNSKEY, 0);
    ldns_rr_list *trusted = ldns_rr_list_new(), *usable = ldns_rr_list_new();
    keyset *tks = NULL, *uks = NULL;
    int rc = STOP;
    char detail[256] = "", keys_text[160], line[sizeof((centry *)0)->desc] = "";
    bool alg_ok = false, digest_ok = false;
    if (!all || !trusted || !usable) {
        finish(v, LH_DNSSEC_INDETERMINATE, LH_DR_MALFORMED, name, "out of memory");
        goto out;
    }
    for (size_t i = 0;
         i < ldns_rr_list_rr_count(all) && ldns_rr_list_rr_count(usable) < MAX_ZONE_KEYS; i++)
        if (dnskey_usable(ldns_rr_list_rr(all, i)))
            ldns_rr_list_push_rr(usable, ldns_rr_list_rr(all, i));
    size_t nds = ds ? ldns_rr_list_rr_count(ds) : 0;
    if (nds > MAX_DS) nds = MAX_DS;
    /* Which DS or anchor keys can we use at all? (RFC 6840 5.2: none → insecure) */
    bool strong = false; /* a usable DS with a SHA-256 or SHA-384 digest */
    for (size_t i = 0; i < nds; i++) {
        const ldns_rr *d = ldns_rr_list_rr(ds, i);
        bool a = ldns_key_algo_supported(ldns_rdf2native_int8(ldns_rr_rdf(d, 1)));
        uint8_t dt = ldns_rdf2native_int8(ldns_rr_rdf(d, 2));
        alg_ok = alg_ok || a;
        digest_ok = digest_ok || (a && digest_supported(dt));
        strong = strong || (a && (dt == LDNS_SHA256 || dt == LDNS_SHA384));
    }
    for (size_t i = 0; anchor_keys && i < ldns_rr_list_rr_count(anchor_keys); i++)
        if (ldns_key_algo_supported(dnskey_alg(ldns_rr_list_rr(anchor_keys, i))))
            alg_ok = digest_ok = true;
    if (!alg_ok || !digest_ok) {
        enum lh_dnssec_reason r = !alg_ok ? LH_DR_UNSUPPORTED_ALGORITHM : LH_DR_UNSUPPORTED_DIGEST;
        snprintf(line, sizeof line, "%s -> %s: insecure", trust, lh_dnssec_reason_text(r));
        lh_dnssec_cache_put(v->cache, name, FACT_INSECURE, (uint8_t)r, NULL, min_ttl(ds, 3600),
                            v->now, line);
        rc = finish(v, LH_DNSSEC_INSECURE, r, name, "%s", lh_dnssec_reason_text(r));
        goto out;
    }
    if (ldns_rr_list_rr_count(all) == 0) {
        finish(v, LH_DNSSEC_BOGUS, LH_DR_DNSKEY_MISSING, name, "no DNSKEY records at the zone");
        goto out;
    }
    for (size_t i = 0; i < ldns_rr_list_rr_count(all) && i < MAX_ZONE_KEYS; i++) {
        const ldns_rr *k = ldns_rr_list_rr(all, i);
        uint16_t ktag = ldns_calc_keytag(k);
        bool match = false;
        for (size_t j = 0; !match && j < nds; j++) {
            const ldns_rr *d = ldns_rr_list_rr(ds, j);
            uint8_t dt = ldns_rdf2native_int8(ldns_rr_rdf(d, 2));
            /* RFC 4509 3: with SHA-256 DS present, SHA-1 ones are ignored, so that a forged
             * SHA-1 digest (weaker) cannot stand in for the zone's real key */
            match = ldns_rdf2native_int16(ldns_rr_rdf(d, 0)) == ktag && digest_supported(dt) &&
                    !(strong && dt == LDNS_SHA1) && ldns_rr_compare_ds(k, d);
        }
        for (size_t j = 0; anchor_keys && !match && j < ldns_rr_list_rr_count(anchor_keys); j++) {
            const ldns_rr *a = ldns_rr_list_rr(anchor_keys, j);
            match = dnskey_alg(a) == dnskey_alg(k) &&
                    ldns_rdf_compare(ldns_rr_rdf(a, 3), ldns_rr_rdf(k, 3)) == 0;
        }
        /* A key with the REVOKE flag (RFC 5011 2.1) is no longer a trust point. */
        if (match && !(dnskey_flags(k) & 0x0080)) ldns_rr_list_push_rr(trusted, k);
    }
    if (ldns_rr_list_rr_count(trusted) == 0) {
        finish(v, LH_DNSSEC_BOGUS, LH_DR_DNSKEY_MISSING, name, "no DNSKEY matches the %s",
               ds ? "DS records" : "trust anchor");
        goto out;
    }
    bool zone_bit = false;
    for (size_t i = 0; i < ldns_rr_list_rr_count(trusted); i++)
        zone_bit = zone_bit || dnskey_usable(ldns_rr_list_rr(trusted, i));
    if (!zone_bit) {
        finish(v, LH_DNSSEC_BOGUS, LH_DR_NO_ZONE_KEY, name, "the trusted key has no zone flag");
        goto out;
    }
    tks = lh_keyset_new(trusted);
    uks = lh_keyset_new(usable);
    if (!tks || !uks) {
        finish(v, LH_DNSSEC_INDETERMINATE, LH_DR_MALFORMED, name, "out of memory");
        goto out;
    }
    time_t exp = 0;
    enum lh_dnssec_reason r =
        verify_rrset(v, all, ldns_pkt_answer(p), name, tks, detail, sizeof detail, &exp, false);
    if (r != LH_DR_NONE) {
        finish(v, LH_DNSSEC_BOGUS, r, name, "DNSKEY set: %s", detail);
        goto out;
    }
    char zt[1025];
    name_text(name, zt, sizeof zt);
    describe_keys(keys_text, sizeof keys_text, uks);
    snprintf(line, sizeof line, "%.250s -> DNSKEY %.60s %.60s (RRSIG by %.80s)", trust, zt,
             keys_text, v->last_sig);
    uint32_t ttl = min_ttl(all, 86400);
    if (exp > v->now && (uint64_t)(exp - v->now) < ttl) ttl = (uint32_t)(exp - v->now);
    lh_dnssec_cache_put(v->cache, name, FACT_KEYS, 0, uks, ttl, v->now, line);
    zone_keys_set(z, name, uks);
    rc = GO;
out:
    if (rc == GO || v->res.verdict == LH_DNSSEC_INSECURE)
        chain_line(v, "%s", line);
    else if (rc == STOP)
        chain_line(v, "%s -> %s: %s", trust, lh_dnssec_reason_text(v->res.reason), v->res.detail);
    ldns_rr_list_free(all);
    ldns_rr_list_free(trusted);
    ldns_rr_list_free(usable);
    lh_keyset_unref(tks);
    lh_keyset_unref(uks);
    return rc;
}

/* The keys of the zone that `target` is in, walking down from the closest trust anchor.
 * Returns GO with *z set (the zone may be above target when a name on the way does not exist),
 * STOP with an insecure verdict in v->piece (GO is not returned then) or a final verdict, or WAIT.
 */
static int walk(lh_dnssec_val *v, const ldns_rdf *target, zone_keys *z)
{
    bool nta = false;
    const anchor *a = lh_dnssec_anchor_closest(v->anchors, target, &nta);
    char at[1025], nt[1025];
    if (!a) {
        set_insecure(v, nta ? LH_DR_NEGATIVE_ANCHOR : LH_DR_NO_ANCHOR, target);
        name_text(target, at, sizeof at);
        chain_line(v, "%s: %s", at, lh_dnssec_reason_text(v->piece_reason));
        return STOP;
    }
    name_text(a->owner, at, sizeof at);
    const centry *e = lh_dnssec_cache_get(v->cache, a->owner, v->now);
    if (e && e->fact == FACT_KEYS) {
        chain_line(v, "%s", e->desc);
        zone_keys_set(z, a->owner, e->keys);
    } else {
        char trust[1100];
        snprintf(trust, sizeof trust, "trust anchor %s (%zu DS, %zu DNSKEY)", at,
                 ldns_rr_list_rr_count(a->ds), ldns_rr_list_rr_count(a->keys));
        int st = establish_keys(v, a->owner, ldns_rr_list_rr_count(a->ds) ? a->ds : NULL,
                                ldns_rr_list_rr_count(a->keys) ? a->keys : NULL, trust, z);
        if (st != GO) {
            if (st == STOP && v->res.verdict == LH_DNSSEC_INSECURE)
                set_insecure(v, v->res.reason, a->owner);
            return st;
        }
    }
    unsigned tl = ldns_dname_label_count(target);
    for (unsigned n = ldns_dname_label_count(a->owner) + 1; n <= tl; n++) {
        ldns_rdf *name = name_suffix(target, n);
        if (!name)
            return finish(v, LH_DNSSEC_INDETERMINATE, LH_DR_MALFORMED, target, "out of memory");
        name_text(name, nt, sizeof nt);
        int st = GO;
        e = lh_dnssec_cache_get(v->cache, name, v->now);
        if (e) {
            if (e->fact == FACT_KEYS) {
                chain_line(v, "%s", e->desc);
                zone_keys_set(z, name, e->keys);
            } else if (e->fact == FACT_INSECURE) {
                chain_line(v, "%s", e->desc);
                set_insecure(v, e->reason, name);
                st = STOP;
            }
            ldns_rdf_deep_free(name);
            if (st != GO) return st;
            continue;
        }
        ldns_pkt *p = NULL;
        st = get_fetched(v, name, LDNS_RR_TYPE_DS, &p);
        if (st != GO) {
            ldns_rdf_deep_free(name);
            return st;
        }
        char zt[1025], detail[256];
        name_text(z->zone, zt, sizeof zt);
        if (!p || (ldns_pkt_get_rcode(p) != LDNS_RCODE_NOERROR &&
                   ldns_pkt_get_rcode(p) != LDNS_RCODE_NXDOMAIN)) {
            finish(v, LH_DNSSEC_INDETERMINATE, LH_DR_FETCH_FAILED, name, "DS lookup failed");
            ldns_rdf_deep_free(name);
            return STOP;
        }
        ldns_rr_list *ds = select_rrs(ldns_pkt_answer(p), name, LDNS_RR_TYPE_DS, 0);
        if (ds && ldns_rr_list_rr_count(ds)) {
            time_t exp;
            enum lh_dnssec_reason r = verify_rrset(v, ds, ldns_pkt_answer(p), z->zone, z->keys,
                                                   detail, sizeof detail, &exp, false);
            if (r != LH_DR_NONE) {
                finish(v, LH_DNSSEC_BOGUS, r, name, "DS set: %s", detail);
                st = STOP;
            } else {
                lh_sbuf b;
                char trust[1400];
                lh_sbuf_init(&b, trust, sizeof trust);
                lh_sbuf_printf(&b, "DS %s", nt);
                for (size_t i = 0; i < ldns_rr_list_rr_count(ds); i++) {
                    const ldns_rr *d = ldns_rr_list_rr(ds, i);
                    lh_sbuf_printf(&b, "%s %u/%u/%u", i ? "," : "",
                                   ldns_rdf2native_int16(ldns_rr_rdf(d, 0)),
                                   ldns_rdf2native_int8(ldns_rr_rdf(d, 1)),
                                   ldns_rdf2native_int8(ldns_rr_rdf(d, 2)));
                }
                lh_sbuf_printf(&b, " (RRSIG by %s %s)\n ", zt, v->last_sig);
                st = establish_keys(v, name, ds, NULL, trust, z);
                if (st == STOP && v->res.verdict == LH_DNSSEC_INSECURE)
                    set_insecure(v, v->res.reason, name);
            }
            ldns_rr_list_free(ds);
            ldns_rdf_deep_free(name);
            if (st != GO) return st;
            continue;
        }
        ldns_rr_list_free(ds);
        denial d;
        bool nx = ldns_pkt_get_rcode(p) == LDNS_RCODE_NXDOMAIN;
        deny(v, p, z->zone, z->keys, name, LDNS_RR_TYPE_DS, nx, &d);
        char line[1400];
        uint32_t ttl = min_ttl(ldns_pkt_authority(p), 3600);
        if (d.verdict == LH_DNSSEC_BOGUS) {
            finish(v, LH_DNSSEC_BOGUS, d.reason, name, "no DS at %s, but %s", nt, d.detail);
            st = STOP;
        } else if (d.verdict == LH_DNSSEC_INSECURE || (d.nodata && d.has_ns && !d.has_soa)) {
            enum lh_dnssec_reason r =
                d.verdict == LH_DNSSEC_INSECURE ? d.reason : LH_DR_INSECURE_DELEGATION;
            snprintf(line, sizeof line,
                     "DS %.200s: none (%.200s, signed by %.200s) -> %s: insecure", nt, d.detail, zt,
                     lh_dnssec_reason_text(r));
            chain_line(v, "%s", line);
            lh_dnssec_cache_put(v->cache, name, FACT_INSECURE, (uint8_t)r, NULL, ttl, v->now, line);
            set_insecure(v, r, name);
            st = STOP;
        } else if (!d.nodata) {
            /* The name does not exist, nor anything below it: the target is in this zone (and
             * its own denial will have to be proven there). */
            ldns_rdf_deep_free(name);
            return GO;
        } else {
            snprintf(line, sizeof line, "%s: no zone cut (%s)", nt, d.detail);
            lh_dnssec_cache_put(v->cache, name, FACT_NOCUT, 0, NULL, ttl, v->now, line);
        }
        ldns_rdf_deep_free(name);
        if (st != GO) return st;
    }
    return GO;
}

/* ---------------------------------------------------------------- pieces of the answer */

/* A signer above the trust anchor that covers `owner`: the walk to it would start from no
 * anchor (or a farther one) and call the data insecure. Under an anchor, every zone that can
 * sign is the anchor's zone or below it, so such a signature is a forgery. */
static bool signer_above_anchor(const lh_dnssec_val *v, const ldns_rdf *owner,
                                const ldns_rdf *signer)
{
    bool nta = false;
    const anchor *a = lh_dnssec_anchor_closest(v->anchors, owner, &nta);
    return a && !name_at_or_below(signer, a->owner);
}

/* Marks the current piece insecure (kept if already) and lets the evaluation go on. */
static int piece_result(lh_dnssec_val *v, int st)
{
    if (st == STOP && v->piece == LH_DNSSEC_INSECURE && v->res.verdict != LH_DNSSEC_BOGUS &&
        v->res.verdict != LH_DNSSEC_INDETERMINATE)
        return GO; /* an insecure piece: the next one may still be bogus */
    return st;
}

static int check_positive(lh_dnssec_val *v, const ldns_rr_list *rrset)
{
    const ldns_pkt *p = v->pkt;
    ldns_rr *first = ldns_rr_list_rr(rrset, 0);
    const ldns_rdf *owner = ldns_rr_owner(first);
    ldns_rr_list *sigs =
        select_rrs(ldns_pkt_answer(p), owner, LDNS_RR_TYPE_RRSIG, ldns_rr_get_type(first));
    if (!sigs) return finish(v, LH_DNSSEC_INDETERMINATE, LH_DR_MALFORMED, NULL, "out of memory");
    const ldns_rdf *signer =
        ldns_rr_list_rr_count(sigs) ? ldns_rr_rrsig_signame(ldns_rr_list_rr(sigs, 0)) : owner;
    zone_keys z = {0};
    int st = GO;
    char on[1025], detail[256];
    name_text(owner, on, sizeof on);
    if (!name_at_or_below(owner, signer)) {
        st = finish(v, LH_DNSSEC_BOGUS, LH_DR_BAD_ANSWER, signer, "%s signed by a zone above it",
                    on);
        goto out;
    }
    if (signer_above_anchor(v, owner, signer)) {
        st = finish(v, LH_DNSSEC_BOGUS, LH_DR_BAD_ANSWER, signer,
                    "%s signed by a zone above its trust anchor", on);
        goto out;
    }
    v->piece = LH_DNSSEC_SECURE;
    st = walk(v, signer, &z);
    if (st != GO) goto out;
    char zt[1025];
    name_text(z.zone, zt, sizeof zt);
    time_t exp;
    enum lh_dnssec_reason r = verify_rrset(v, rrset, ldns_pkt_answer(p), z.zone, z.keys, detail,
                                           sizeof detail, &exp, true);
    if (r != LH_DR_NONE) {
        st = finish(v, LH_DNSSEC_BOGUS, r, z.zone, "%s", detail);
        goto out;
    }
    note_signer(v, z.zone);
    /* Wildcard expansion (RFC 4035 5.3.4): the RRSIG has fewer labels than the owner, so the
     * answer must prove that the name itself does not exist. */
    unsigned ol = ldns_dname_label_count(owner);
    if (ldns_dname_is_wildcard(owner)) ol--;
    /* The labels of the signature that verified: another RRSIG in the message could claim more
     * labels and so hide the expansion (and the proof it requires). */
    uint8_t labels = v->last_sig_labels;
    if (labels < ol) {
        const ldns_rr_list *auth = ldns_pkt_authority(p);
        ldns_rr_list *nsecs = select_rrs(auth, NULL, LDNS_RR_TYPE_NSEC, 0);
        ldns_rr_list *n3all = select_rrs(auth, NULL, LDNS_RR_TYPE_NSEC3, 0);
        bool over = false, unknown = false;
        ldns_rr_list *n3 = n3all ? lh_dnssec_nsec3_usable(n3all, &over, &unknown) : NULL;
        ldns_rdf *nc = name_suffix(owner, labels + 1u);
        if (!nsecs || !n3all || !n3 || !nc) {
            st = finish(v, LH_DNSSEC_INDETERMINATE, LH_DR_MALFORMED, NULL, "out of memory");
        } else if (ldns_rr_list_rr_count(nsecs) == 0 && ldns_rr_list_rr_count(n3all) == 0) {
            st = finish(v, LH_DNSSEC_BOGUS, LH_DR_NSEC_MISSING, z.zone,
                        "%s expanded from a wildcard without NSEC/NSEC3 proof", on);
        } else if ((r = verify_all(v, auth,
                                   ldns_rr_list_rr_count(nsecs) ? LDNS_RR_TYPE_NSEC
                                                                : LDNS_RR_TYPE_NSEC3,
                                   auth, z.zone, z.keys, detail, sizeof detail)) != LH_DR_NONE) {
            st = finish(v, LH_DNSSEC_BOGUS, r, z.zone, "wildcard proof: %s", detail);
        } else if (ldns_rr_list_rr_count(nsecs)) {
            /* RFC 4035 5.3.4: no closer match, i.e. the next closer name (one label below the
             * wildcard's parent) does not exist, nor anything below it. Covering the owner
             * alone is not enough: the owner's parent may exist and hide the wildcard. */
            if (lh_dnssec_nsec_absent(nsecs, nc))
                chain_line(v, "  %s: wildcard expansion, NSEC proves no closer match", on);
            else
                st = finish(v, LH_DNSSEC_BOGUS, LH_DR_BAD_DENIAL, z.zone,
                            "%s expanded from a wildcard, but no NSEC proves that no closer "
                            "name exists",
                            on);
        } else if (ldns_rr_list_rr_count(n3) == 0) {
            set_insecure(v, over ? LH_DR_NSEC3_ITERATIONS : LH_DR_UNSUPPORTED_ALGORITHM, z.zone);
        } else {
            const ldns_rr *c = lh_dnssec_nsec3_find(n3, nc, true);
            if (!c)
                st = finish(v, LH_DNSSEC_BOGUS, LH_DR_BAD_DENIAL, z.zone,
                            "%s expanded from a wildcard, but no NSEC3 covers the next closer name",
                            on);
            else if (ldns_nsec3_optout(c))
                set_insecure(v, LH_DR_NSEC3_OPTOUT, z.zone);
            else
                chain_line(v, "  %s: wildcard expansion, NSEC3 covers the next closer name", on);
        }
        ldns_rdf_deep_free(nc);
        ldns_rr_list_free(nsecs);
        ldns_rr_list_free(n3all);
        ldns_rr_list_free(n3);
    }
out:
    zone_keys_clear(&z);
    ldns_rr_list_free(sigs);
    return st;
}

static int check_negative(lh_dnssec_val *v, const ldns_rdf *sname, bool nx)
{
    const ldns_pkt *p = v->pkt;
    ldns_rr_list *sigs = select_rrs(ldns_pkt_authority(p), NULL, LDNS_RR_TYPE_RRSIG, 0);
    if (!sigs) return finish(v, LH_DNSSEC_INDETERMINATE, LH_DR_MALFORMED, NULL, "out of memory");
    const ldns_rdf *signer = NULL;
    for (size_t i = 0; i < ldns_rr_list_rr_count(sigs) && !signer; i++) {
        ldns_rr_type t = ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(ldns_rr_list_rr(sigs, i)));
        if (t == LDNS_RR_TYPE_SOA || t == LDNS_RR_TYPE_NSEC || t == LDNS_RR_TYPE_NSEC3)
            signer = ldns_rr_rrsig_signame(ldns_rr_list_rr(sigs, i));
    }
    char sn[1025];
    name_text(sname, sn, sizeof sn);
    zone_keys z = {0};
    int st = GO;
    if (signer && !name_at_or_below(sname, signer)) {
        st = finish(v, LH_DNSSEC_BOGUS, LH_DR_BAD_ANSWER, signer,
                    "denial for %s signed by an unrelated zone", sn);
        goto out;
    }
    if (signer && signer_above_anchor(v, sname, signer)) {
        st = finish(v, LH_DNSSEC_BOGUS, LH_DR_BAD_ANSWER, signer,
                    "denial for %s signed by a zone above its trust anchor", sn);
        goto out;
    }
    v->piece = LH_DNSSEC_SECURE;
    st = walk(v, signer ? signer : sname, &z);
    if (st != GO) goto out;
    if (signer && !name_eq(signer, z.zone)) {
        st = finish(v, LH_DNSSEC_BOGUS, LH_DR_BAD_ANSWER, signer, "the signer is not a zone apex");
        goto out;
    }
    denial d;
    deny(v, p, z.zone, z.keys, sname, v->qtype, nx, &d);
    char *ts = ldns_rr_type2str(v->qtype);
    if (d.verdict != LH_DNSSEC_BOGUS) note_signer(v, z.zone); /* its SOA and NSEC(3)s verified */
    if (d.verdict == LH_DNSSEC_BOGUS) {
        /* Unsigned NSEC/SOA, or none at all, from a secure zone: stripped or forged. */
        st = finish(v, LH_DNSSEC_BOGUS, d.reason, z.zone, "%s %s %s: %s",
                    nx ? "NXDOMAIN" : "NODATA", sn, ts ? ts : "?", d.detail);
    } else if (d.verdict == LH_DNSSEC_INSECURE) {
        set_insecure(v, d.reason, z.zone);
        chain_line(v, "  %s %s %s: %s -> insecure", nx ? "NXDOMAIN" : "NODATA", sn, ts ? ts : "?",
                   d.detail);
    } else {
        chain_line(v, "  %s %s %s: %s", nx ? "NXDOMAIN" : "NODATA", sn, ts ? ts : "?", d.detail);
    }
    free(ts);
out:
    zone_keys_clear(&z);
    ldns_rr_list_free(sigs);
    return st;
}

/* The DNAME of the answer at the closest proper ancestor of `name` (RFC 6672), as a one-record
 * RRset, and in *synth the name it makes of `name` (NULL: too long, or the RRset is not one
 * record, which no honest server sends). NULL when no DNAME covers the name. */
static ldns_rr_list *covering_dname(lh_dnssec_val *v, const ldns_rdf *name, ldns_rdf **synth)
{
    const ldns_rr_list *an = ldns_pkt_answer(v->pkt);
    const ldns_rr *best = NULL;
    *synth = NULL;
    for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
        const ldns_rr *rr = ldns_rr_list_rr(an, i);
        if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_DNAME || ldns_rr_rd_count(rr) != 1 ||
            !ldns_dname_is_subdomain(name, ldns_rr_owner(rr)))
            continue;
        if (!best ||
            ldns_dname_label_count(ldns_rr_owner(rr)) > ldns_dname_label_count(ldns_rr_owner(best)))
            best = rr;
    }
    if (!best) return NULL;
    ldns_rr_list *set = select_rrs(an, ldns_rr_owner(best), LDNS_RR_TYPE_DNAME, 0);
    if (!set || ldns_rr_list_rr_count(set) != 1) return set;
    /* the labels of `name` below the owner (its wire form ends with the owner's), then the
     * DNAME's target */
    const ldns_rdf *t = ldns_rr_rdf(best, 0);
    size_t prefix = ldns_rdf_size(name) - ldns_rdf_size(ldns_rr_owner(best));
    uint8_t buf[LDNS_MAX_DOMAINLEN * 2 + 2];
    if (ldns_rdf_get_type(t) == LDNS_RDF_TYPE_DNAME && prefix + ldns_rdf_size(t) <= 255) {
        memcpy(buf, ldns_rdf_data(name), prefix);
        memcpy(buf + prefix, ldns_rdf_data(t), ldns_rdf_size(t));
        *synth = ldns_dname_new_frm_data((uint16_t)(prefix + ldns_rdf_size(t)), buf);
    }
    return set;
}

/* One pass over the answer; see the file comment. */
static int evaluate(lh_dnssec_val *v)
{
    if (!v->pkt)
        return finish(v, LH_DNSSEC_INDETERMINATE, LH_DR_MALFORMED, NULL, "not a DNS message");
    const ldns_rr_list *qs = ldns_pkt_question(v->pkt);
    if (ldns_rr_list_rr_count(qs) != 1 || ldns_rr_get_type(ldns_rr_list_rr(qs, 0)) != v->qtype ||
        !name_eq(ldns_rr_owner(ldns_rr_list_rr(qs, 0)), v->qname))
        return finish(v, LH_DNSSEC_BOGUS, LH_DR_BAD_ANSWER, NULL,
                      "the message does not answer the question");
    ldns_pkt_rcode rc = ldns_pkt_get_rcode(v->pkt);
    if (rc != LDNS_RCODE_NOERROR && rc != LDNS_RCODE_NXDOMAIN) {
        char *s = ldns_pkt_rcode2str(rc);
        finish(v, LH_DNSSEC_INDETERMINATE, LH_DR_FETCH_FAILED, NULL, "the answer is %s",
               s ? s : "?");
        free(s);
        return STOP;
    }
    enum lh_dnssec_verdict overall = LH_DNSSEC_SECURE;
    enum lh_dnssec_reason why = LH_DR_NONE;
    ldns_rdf *sname = ldns_rdf_clone(v->qname);
    char insecure_zone[256] = "";
    int st = GO;
    bool answered = false;
    for (int hop = 0; hop < MAX_CHAIN && st == GO && !answered; hop++) {
        ldns_rr_list *set = select_rrs(ldns_pkt_answer(v->pkt), sname, v->qtype, 0);
        ldns_rr_list *cname = select_rrs(ldns_pkt_answer(v->pkt), sname, LDNS_RR_TYPE_CNAME, 0);
        ldns_rr_list *piece = NULL;
        if (set && ldns_rr_list_rr_count(set)) {
            piece = set;
            answered = true;
        } else if (cname && ldns_rr_list_rr_count(cname) == 1 && v->qtype != LDNS_RR_TYPE_CNAME) {
            piece = cname;
        }
        /* A CNAME synthesised from a DNAME (RFC 6672) is unsigned: the DNAME is checked instead,
         * and the CNAME must be the one it synthesises. */
        ldns_rdf *synth = NULL;
        ldns_rr_list *dname = NULL;
        if (piece && ldns_rr_get_type(ldns_rr_list_rr(piece, 0)) == LDNS_RR_TYPE_CNAME)
            dname = covering_dname(v, sname, &synth);
        /* a DNAME above the name's closest trust anchor vouches for nothing under it (an
         * insecure parent of a private tree would otherwise make any CNAME there insecure) */
        if (dname && ldns_rr_list_rr_count(dname) &&
            signer_above_anchor(v, sname, ldns_rr_owner(ldns_rr_list_rr(dname, 0)))) {
            ldns_rr_list_free(dname);
            dname = NULL;
            ldns_rdf_deep_free(synth);
            synth = NULL;
        }
        if (dname) {
            char sn[1025], dn[1025];
            name_text(sname, sn, sizeof sn);
            name_text(ldns_rr_owner(ldns_rr_list_rr(dname, 0)), dn, sizeof dn);
            v->piece = LH_DNSSEC_SECURE;
            if (!synth || !name_eq(synth, ldns_rr_rdf(ldns_rr_list_rr(piece, 0), 0)))
                st = finish(v, LH_DNSSEC_BOGUS, LH_DR_BAD_ANSWER, NULL,
                            "the CNAME of %s is not the one the DNAME at %s synthesises", sn, dn);
            else
                st = piece_result(v, check_positive(v, dname));
            if (st == GO) chain_line(v, "  %s: CNAME synthesised from the DNAME at %s", sn, dn);
        } else if (piece) {
            v->piece = LH_DNSSEC_SECURE;
            st = piece_result(v, check_positive(v, piece));
        }
        ldns_rdf_deep_free(synth);
        ldns_rr_list_free(dname);
        if (piece) {
            if (st == GO && v->piece == LH_DNSSEC_INSECURE && overall == LH_DNSSEC_SECURE) {
                overall = LH_DNSSEC_INSECURE;
                why = v->piece_reason;
                memcpy(insecure_zone, v->piece_zone, sizeof insecure_zone);
            }
            if (piece == cname && st == GO) {
                ldns_rdf *next = ldns_rdf_clone(ldns_rr_rdf(ldns_rr_list_rr(cname, 0), 0));
                ldns_rdf_deep_free(sname);
                sname = next;
            }
        }
        ldns_rr_list_free(set);
        ldns_rr_list_free(cname);
        if (!piece) break;
        if (!sname) st = finish(v, LH_DNSSEC_INDETERMINATE, LH_DR_MALFORMED, NULL, "out of memory");
    }
    /* A chain that stops at a CNAME target the message neither answers nor denies (no SOA:
     * an authoritative server's referral, say) claims nothing about the target: the verdict
     * covers what is there, and the caller may validate the target's own answer. */
    bool tail_missing = false;
    if (st == GO && !answered && rc == LDNS_RCODE_NOERROR && !name_eq(sname, v->qname)) {
        ldns_rr_list *soa = select_rrs(ldns_pkt_authority(v->pkt), NULL, LDNS_RR_TYPE_SOA, 0);
        tail_missing = soa && ldns_rr_list_rr_count(soa) == 0;
        ldns_rr_list_free(soa);
    }
    if (tail_missing) {
        name_text(sname, v->res.cname_target, sizeof v->res.cname_target);
        chain_line(v, "  the answer stops at the CNAME target %s", v->res.cname_target);
    } else if (st == GO && !answered) {
        v->piece = LH_DNSSEC_SECURE;
        st = piece_result(v, check_negative(v, sname, rc == LDNS_RCODE_NXDOMAIN));
        if (st == GO && v->piece == LH_DNSSEC_INSECURE && overall == LH_DNSSEC_SECURE) {
            overall = LH_DNSSEC_INSECURE;
            why = v->piece_reason;
            memcpy(insecure_zone, v->piece_zone, sizeof insecure_zone);
        }
    }
    if (st == GO) {
        st = finish(v, overall, why, NULL, "%s", lh_dnssec_reason_text(why));
        memcpy(v->res.zone, insecure_zone, sizeof v->res.zone);
    }
    ldns_rdf_deep_free(sname);
    return st;
}

/* ---------------------------------------------------------------- public */

lh_dnssec_val *lh_dnssec_val_new(const lh_dnssec_anchors *a, lh_dnssec_cache *c, const uint8_t *msg,
                                 size_t len, const uint8_t *qname, uint16_t qtype, time_t now)
{
    lh_dnssec_val *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->anchors = a;
    v->cache = c;
    v->now = now;
    v->qtype = qtype;
    size_t ql = wire_name_len(qname);
    v->qname = ql ? ldns_dname_new_frm_data((uint16_t)ql, qname) : NULL;
    if (v->qname && ldns_wire2pkt(&v->pkt, msg, len) != LDNS_STATUS_OK) v->pkt = NULL;
    return v;
}

const char *lh_dnssec_val_signer(const lh_dnssec_val *v, unsigned i)
{
    return i < v->nsigners ? v->signers[i] : NULL;
}

void lh_dnssec_val_quiet(lh_dnssec_val *v)
{
    v->quiet = true;
}

void lh_dnssec_val_free(lh_dnssec_val *v)
{
    if (!v) return;
    for (unsigned i = 0; i < v->nf; i++) {
        ldns_rdf_deep_free(v->f[i].name);
        ldns_pkt_free(v->f[i].pkt);
    }
    ldns_rdf_deep_free(v->qname);
    ldns_pkt_free(v->pkt);
    free(v);
}

int lh_dnssec_val_run(lh_dnssec_val *v, lh_dnssec_need *need)
{
    if (v->done) return LH_DNSSEC_DONE;
    if (v->waiting) { /* asked again without an answer: the lookup failed */
        lh_dnssec_val_provide(v, NULL, 0);
    }
    lh_sbuf_init(&v->chain, v->res.chain, sizeof v->res.chain);
    memset(&v->res.zone, 0, sizeof v->res.zone);
    v->res.cname_target[0] = 0;
    v->res.fetches = v->nf;
    int st = evaluate(v);
    v->res.verifications = v->verifications;
    if (st == WAIT) {
        if (need) *need = v->need;
        return LH_DNSSEC_NEED;
    }
    v->done = true;
    return LH_DNSSEC_DONE;
}

int lh_dnssec_val_provide(lh_dnssec_val *v, const uint8_t *msg, size_t len)
{
    if (!v->waiting || v->nf == MAX_FETCHES) return -1;
    fetched *f = &v->f[v->nf];
    f->name = ldns_dname_new_frm_data((uint16_t)v->need.name_len, v->need.name);
    f->type = v->need.type;
    f->pkt = NULL;
    if (!f->name) return -1;
    if (len && ldns_wire2pkt(&f->pkt, msg, len) != LDNS_STATUS_OK) f->pkt = NULL;
    v->nf++;
    v->waiting = false;
    return 0;
}

const lh_dnssec_result *lh_dnssec_val_result(const lh_dnssec_val *v)
{
    return &v->res;
}

enum lh_dnssec_verdict lh_dnssec_validate(const lh_dnssec_anchors *a, lh_dnssec_cache *c,
                                          const uint8_t *msg, size_t len, const uint8_t *qname,
                                          uint16_t qtype, time_t now, lh_dnssec_fetch_fn fetch,
                                          void *ctx, lh_dnssec_result *out)
{
    lh_dnssec_val *v = lh_dnssec_val_new(a, c, msg, len, qname, qtype, now);
    if (!v) {
        if (out) {
            memset(out, 0, sizeof *out);
            out->verdict = LH_DNSSEC_INDETERMINATE;
            out->reason = LH_DR_MALFORMED;
            out->ede = lh_dnssec_reason_ede(LH_DR_MALFORMED);
        }
        return LH_DNSSEC_INDETERMINATE;
    }
    uint8_t *buf = malloc(65535);
    lh_dnssec_need need;
    while (lh_dnssec_val_run(v, &need) == LH_DNSSEC_NEED) {
        size_t n = buf ? fetch(ctx, &need, buf, 65535) : 0;
        if (n > 65535) n = 0; /* a callback that claims more than it may write has failed */
        lh_dnssec_val_provide(v, buf, n);
    }
    free(buf);
    enum lh_dnssec_verdict verdict = v->res.verdict;
    if (out) *out = v->res;
    lh_dnssec_val_free(v);
    return verdict;
}
