/* ttl.h - the TTLs loophole relays: clamped on every forwarded answer (not only on cached
 * copies), a TTL with the top bit set read as 0 (RFC 2181 section 8), every RRset's records
 * given one TTL, the lowest among them (RFC 2181 section 5.2), and no record of a negative
 * answer living longer than its negative TTL, min(SOA TTL, SOA MINIMUM) (RFC 2308 section 5).
 * Works in place on the answer's wire form; no allocation. */
#ifndef LH_TTL_H
#define LH_TTL_H

#include "loophole/wire.h"

typedef struct lh_ttl_limits {
    uint32_t min_ttl, max_ttl; /* positive answers: every record's TTL within [min, max] */
    uint32_t max_negative_ttl; /* NXDOMAIN / NODATA: every record's TTL at most this */
} lh_ttl_limits;

/* Rewrites the TTL of every record of `pkt` (len bytes, OPT already removed or left alone: its
 * "TTL" holds flags and is never touched) and updates ai->min_answer_ttl and ai->negative_ttl
 * to match. `ai` must come from lh_answer_scan of the same bytes. Returns 0, or -1 when the
 * message is malformed (it then is left partly rewritten and must not be used). */
int lh_ttl_normalise(uint8_t *pkt, size_t len, lh_answer_info *ai, const lh_ttl_limits *lim);

#endif
