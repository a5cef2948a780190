/* dnssec.h - DNSSEC validation of forwarded answers (RFC 4033-4035, 5155, 6840, 9276), built on
 * ldns for the crypto and the record handling.
 *
 * The validator is a resumable state machine so that the daemon can drive it asynchronously:
 * lh_dnssec_val_run() either finishes with a verdict or says which DS or DNSKEY RRset it needs
 * (LH_DNSSEC_NEED with a name and a type). The caller fetches that RRset however it likes
 * (DO+CD, through its upstreams) and hands the whole response back with
 * lh_dnssec_val_provide(), then calls run again. A blocking caller (the `loophole dnssec` tool,
 * the tests) simply loops; lh_dnssec_validate() is that loop around a fetch callback.
 *
 * Time is passed in (the injectable clock): signature windows and cache expiry use it, never
 * time(). Validated DNSKEY RRsets and proven zone-cut facts are kept in a bounded cache shared
 * between validations (one per event loop; not thread-safe), expiring with their TTLs.
 */
#ifndef LH_DNSSEC_H
#define LH_DNSSEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define LH_DNSSEC_ROOT_KEY "/usr/share/dns/root.key" /* Debian's dns-root-data */
/* RFC 9276 §3.2: validators may treat NSEC3 with more iterations as insecure. 150 is what BIND,
 * Unbound and Knot Resolver used when it was published; lower would break some signed zones. */
#define LH_DNSSEC_NSEC3_MAX_ITERATIONS 150

enum lh_dnssec_verdict {
    LH_DNSSEC_SECURE = 0,
    LH_DNSSEC_INSECURE,
    LH_DNSSEC_BOGUS,
    LH_DNSSEC_INDETERMINATE,
};

/* Why a verdict is what it is. Each bogus reason maps to an RFC 8914 Extended DNS Error. */
enum lh_dnssec_reason {
    LH_DR_NONE = 0,              /* secure */
    LH_DR_NO_ANCHOR,             /* insecure: no trust anchor above the name */
    LH_DR_NEGATIVE_ANCHOR,       /* insecure: domain-insecure */
    LH_DR_INSECURE_DELEGATION,   /* insecure: a signed parent proves there is no DS */
    LH_DR_UNSUPPORTED_ALGORITHM, /* insecure (RFC 6840 5.2): no DS/DNSKEY algorithm we support */
    LH_DR_UNSUPPORTED_DIGEST,    /* insecure: no DS digest type we support */
    LH_DR_NSEC3_ITERATIONS,      /* insecure (RFC 9276): NSEC3 iterations above the cap */
    LH_DR_NSEC3_OPTOUT,          /* insecure: the name is covered by an opt-out span */
    LH_DR_BOGUS_SIGNATURE,       /* bogus: a signature does not verify */
    LH_DR_SIGNATURE_EXPIRED,
    LH_DR_SIGNATURE_NOT_YET_VALID,
    LH_DR_DNSKEY_MISSING, /* bogus: no DNSKEY matches the DS, or none signs the RRSIG */
    LH_DR_RRSIGS_MISSING, /* bogus: an RRset from a secure zone came without signatures */
    LH_DR_NO_ZONE_KEY,    /* bogus: the DNSKEY RRset has no key with the zone flag */
    LH_DR_NSEC_MISSING,   /* bogus: a negative answer or wildcard without NSEC/NSEC3 */
    LH_DR_BAD_DENIAL,     /* bogus: NSEC/NSEC3 present but they do not prove the answer */
    LH_DR_BAD_ANSWER,     /* bogus: e.g. the question does not match, signer outside the zone */
    LH_DR_FETCH_FAILED,   /* indeterminate: a DS or DNSKEY lookup failed */
    LH_DR_MALFORMED,      /* indeterminate: the answer is not a DNS message */
};

/* The EDE INFO-CODE for a reason (RFC 8914 §4, 27 from RFC 9276), or -1 if none fits. */
int lh_dnssec_reason_ede(enum lh_dnssec_reason r);
const char *lh_dnssec_reason_text(enum lh_dnssec_reason r);
/* A short key for counters and metrics labels: "signature_expired". */
const char *lh_dnssec_reason_key(enum lh_dnssec_reason r);
#define LH_DNSSEC_REASONS (LH_DR_MALFORMED + 1)
const char *lh_dnssec_verdict_name(enum lh_dnssec_verdict v);

/* ---- Trust anchors: DS or DNSKEY records from files, and negative trust anchors ---- */
typedef struct lh_dnssec_anchors lh_dnssec_anchors;

lh_dnssec_anchors *lh_dnssec_anchors_new(void);
void lh_dnssec_anchors_free(lh_dnssec_anchors *a);
/* Reads DS and DNSKEY records in zone-file syntax (as /usr/share/dns/root.key, or `dig DS`
 * output); other record types are an error. On error returns -1 with "path:line: message". */
int lh_dnssec_anchors_load_file(lh_dnssec_anchors *a, const char *path, char *err, size_t errlen);
/* The same from memory; `path` names it in messages. */
int lh_dnssec_anchors_load_text(lh_dnssec_anchors *a, const char *text, size_t len,
                                const char *path, char *err, size_t errlen);
/* A negative trust anchor: NAME and below are treated as insecure. */
int lh_dnssec_anchors_add_insecure(lh_dnssec_anchors *a, const char *name, char *err,
                                   size_t errlen);
size_t lh_dnssec_anchors_count(const lh_dnssec_anchors *a); /* DS + DNSKEY records */
/* The owner (wire form) of the highest trust anchor - the root with Debian's root.key - into
 * out; its length, 0 when there is none or it does not fit. */
size_t lh_dnssec_anchors_zone(const lh_dnssec_anchors *a, uint8_t *out, size_t cap);

/* ---- Cache of validated DNSKEY RRsets and proven zone-cut facts ---- */
typedef struct lh_dnssec_cache lh_dnssec_cache;

/* `entries` slots (rounded up to a power of two, at least 8); 0 gives no cache at all. */
lh_dnssec_cache *lh_dnssec_cache_new(unsigned entries);
void lh_dnssec_cache_free(lh_dnssec_cache *c);
typedef struct lh_dnssec_cache_stats {
    uint64_t hits, misses, inserts, evictions;
    unsigned used, capacity;
} lh_dnssec_cache_stats;
void lh_dnssec_cache_stats_get(const lh_dnssec_cache *c, time_t now, lh_dnssec_cache_stats *out);

/* ---- One validation ---- */
typedef struct lh_dnssec_val lh_dnssec_val;

#define LH_DNSSEC_CHAIN_MAX 4096
typedef struct lh_dnssec_result {
    enum lh_dnssec_verdict verdict;
    enum lh_dnssec_reason reason;
    int ede;                         /* lh_dnssec_reason_ede(reason) */
    char zone[256];                  /* the zone the verdict was reached in (text), "" if none */
    char detail[256];                /* e.g. "RRSIG A www.example. key 4711: signature expired" */
    char chain[LH_DNSSEC_CHAIN_MAX]; /* trust anchor -> DS -> DNSKEY -> RRSIG, one per line */
    unsigned fetches;                /* DS/DNSKEY responses used */
    unsigned verifications;          /* public-key operations made (bounded: KeyTrap) */
    /* Set when the answer's CNAME chain stops at a target it neither answers nor denies (no
     * SOA): the verdict covers the records present; the target's answer is validated apart. */
    char cname_target[1025];
} lh_dnssec_result;

typedef struct lh_dnssec_need {
    uint8_t name[256]; /* uncompressed wire form */
    size_t name_len;
    char text[1025]; /* presentation form, for logs and blocking resolvers */
    uint16_t type;   /* LDNS_RR_TYPE_DS or LDNS_RR_TYPE_DNSKEY */
} lh_dnssec_need;

enum { LH_DNSSEC_DONE = 0, LH_DNSSEC_NEED = 1 };

/* Starts validating `msg` (a complete response, as received with DO set) as the answer to
 * qname/qtype (qname in uncompressed wire form). The anchors and the cache must outlive the
 * validation; the message is copied. Returns NULL only when out of memory. */
lh_dnssec_val *lh_dnssec_val_new(const lh_dnssec_anchors *a, lh_dnssec_cache *c, const uint8_t *msg,
                                 size_t len, const uint8_t *qname, uint16_t qtype, time_t now);
void lh_dnssec_val_free(lh_dnssec_val *v);
/* The caller will not read result.chain (the daemon): the chain lines are not written, which
 * saves formatting every name and signature of every validation. */
void lh_dnssec_val_quiet(lh_dnssec_val *v);
/* The i-th zone (presentation form) whose keys verified a signature over the answer's own
 * records (an RRset of its chain, its denial), whatever the verdict: a zone proven signed. NULL
 * past the last (at most LH_DNSSEC_SIGNERS). */
#define LH_DNSSEC_SIGNERS 8
const char *lh_dnssec_val_signer(const lh_dnssec_val *v, unsigned i);
/* Advances the validation: LH_DNSSEC_DONE (the result is ready) or LH_DNSSEC_NEED (`need` says
 * what to fetch; answer it with lh_dnssec_val_provide, then call run again). */
int lh_dnssec_val_run(lh_dnssec_val *v, lh_dnssec_need *need);
/* The response to the last NEED (copied), or len 0 when the lookup failed (the verdict becomes
 * indeterminate). Returns -1 if nothing was needed. */
int lh_dnssec_val_provide(lh_dnssec_val *v, const uint8_t *msg, size_t len);
const lh_dnssec_result *lh_dnssec_val_result(const lh_dnssec_val *v);

/* Blocking convenience: fetch(name, type) writes a response into buf (at most cap bytes) and
 * returns its length, or 0 when it failed. */
typedef size_t (*lh_dnssec_fetch_fn)(void *ctx, const lh_dnssec_need *need, uint8_t *buf,
                                     size_t cap);
/* Runs a whole validation; returns the verdict and fills *out (if not NULL). */
enum lh_dnssec_verdict lh_dnssec_validate(const lh_dnssec_anchors *a, lh_dnssec_cache *c,
                                          const uint8_t *msg, size_t len, const uint8_t *qname,
                                          uint16_t qtype, time_t now, lh_dnssec_fetch_fn fetch,
                                          void *ctx, lh_dnssec_result *out);

#endif
