/* validate.h - what the forwarder keeps for DNSSEC (dnssec = validate / allow-downgrade): the
 * trust anchors and the key cache of its loop, the zones seen signed, what the stripping probe
 * found, and the message surgery validation needs (stripping DNSSEC records for clients that did
 * not ask for them, reading the probe's answer). The asynchronous driving of a validation (its
 * DS/DNSKEY sub-queries) is the forwarder's, since it owns the pending question and its budget.
 * One per loop; not thread-safe. */
#ifndef LH_VALIDATE_H
#define LH_VALIDATE_H

#include "loophole/config.h"
#include "loophole/dnssec.h"

#include <stdbool.h>
#include <stdint.h>

#define LH_SIGNED_ZONES 1024   /* zones remembered as signed (4-way buckets, oldest replaced) */
#define LH_DNSSEC_PROBE_S 3600 /* the stripping probe runs at start and then this often */
/* ... and again, at most this often, when an answer comes without its signatures */
#define LH_DNSSEC_REPROBE_S 60

/* What the last probe found: the DNSKEY RRset of the root (or, validating with other trust
 * anchors, of the highest anchor's zone), asked with DO+CD through the default upstreams. */
enum lh_dnssec_path {
    LH_DNSSEC_PATH_UNKNOWN = 0, /* not asked yet, or no usable answer */
    LH_DNSSEC_PATH_CARRIES,     /* DNSKEY and RRSIG came back */
    LH_DNSSEC_PATH_STRIPS,      /* DNSKEY without RRSIG: the path strips DNSSEC */
};
extern const char *const lh_dnssec_path_names[3];

typedef struct lh_validator {
    enum lh_dnssec_mode mode;
    lh_dnssec_anchors *anchors; /* validate modes only */
    lh_dnssec_cache *keys;      /* validated DNSKEYs and zone-cut facts, with their TTLs */
    uint64_t signed_zones[LH_SIGNED_ZONES]; /* hashes of zone names (lower case); 0: empty */
    unsigned signed_next;                   /* round robin within a bucket */
    enum lh_dnssec_path path;
    uint64_t reprobe_at_ms; /* when an unsigned answer last caused a probe (forwarder's clock) */
    uint64_t probes, probes_stripped, downgraded, subqueries;
    uint64_t subqueries_joined; /* DS/DNSKEY needs met by a sub-query already in flight */
} lh_validator;

/* Loads the trust anchors when cfg->dnssec validates (reads files: start-up only). 0, or -1
 * with err. */
int lh_validator_init(lh_validator *v, const lh_config *cfg, char *err, size_t errlen);
void lh_validator_free(lh_validator *v);
static inline bool lh_validator_on(const lh_validator *v)
{
    return v->anchors != NULL;
}

/* Remembers `zone` (presentation form, as in lh_dnssec_result.zone) as signed. */
void lh_validator_note_signed(lh_validator *v, const char *zone);
/* Remembers every zone whose keys verified a signature in `val` (lh_dnssec_val_signer): only
 * signatures that verified count, never an RRSIG record merely present in an answer, so that
 * forged RRSIGs cannot mark a zone as signed and block its downgrade. */
void lh_validator_note_validated(lh_validator *v, const lh_dnssec_val *val);
/* Is `qname` (wire form) at or below a zone remembered as signed? That zone (the closest) goes
 * to `zone`. */
bool lh_validator_under_signed(const lh_validator *v, const uint8_t *qname, char *zone, size_t cap);

/* Removes the RRSIG, NSEC and NSEC3 records a client that did not set DO must not get
 * (RFC 4035 3.2.1), except of the type asked for. `msg` (len bytes in a buffer of cap) has no
 * OPT record. Returns the new length, or 0 when the message cannot be parsed or the rewrite
 * does not fit. Allocates (ldns): cache misses only. */
size_t lh_dnssec_strip_records(uint8_t *msg, size_t len, size_t cap, uint16_t qtype);

/* A secure answer keeps only what the validator checked, since AD vouches for the whole
 * message (RFC 4035 4.9.3; Unbound's scrubbing and val-clean-additional do the same): in the
 * answer section the records of the question's CNAME chain (its CNAMEs and the RRset of
 * `qtype` at each link, with their RRSIGs, and the DNAMEs above its links that synthesised
 * CNAMEs), in the authority section SOA, NSEC and NSEC3 (the
 * denial and wildcard proofs) with their RRSIGs, nothing in the additional section. `msg` has
 * no OPT record. Returns the new length, or 0 when the message cannot be parsed or the
 * rewrite does not fit. Allocates (ldns): cache misses only. */
size_t lh_dnssec_keep_validated(uint8_t *msg, size_t len, size_t cap, uint16_t qtype);

/* Reads the answer to the probe (ZONE DNSKEY with DO+CD). */
enum lh_dnssec_path lh_dnssec_probe_read(const uint8_t *msg, size_t len);

#endif
