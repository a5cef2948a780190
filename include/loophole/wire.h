/* wire.h - DNS wire format: a bounds-checked reader for queries and a builder for the answers
 * loophole synthesizes itself. No allocation: everything works on caller-owned buffers. */
#ifndef LH_WIRE_H
#define LH_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define LH_DNS_HEADER_LEN 12
#define LH_NAME_MAX 255 /* wire length of a name, root label included */
#define LH_LABELS_MAX 128
#define LH_UDP_MIN 512 /* RFC 1035 floor for UDP answers */
#define LH_MSG_MAX 65535

enum lh_rcode {
    LH_RCODE_NOERROR = 0,
    LH_RCODE_FORMERR = 1,
    LH_RCODE_SERVFAIL = 2,
    LH_RCODE_NXDOMAIN = 3,
    LH_RCODE_NOTIMP = 4,
    LH_RCODE_REFUSED = 5,
    LH_RCODE_BADVERS = 16, /* extended: needs OPT */
};

enum lh_rrtype {
    LH_TYPE_A = 1,
    LH_TYPE_NS = 2,
    LH_TYPE_CNAME = 5,
    LH_TYPE_SOA = 6,
    LH_TYPE_PTR = 12,
    LH_TYPE_MX = 15,
    LH_TYPE_TXT = 16,
    LH_TYPE_AAAA = 28,
    LH_TYPE_OPT = 41,
    LH_TYPE_SVCB = 64,
    LH_TYPE_HTTPS = 65,
    LH_TYPE_TSIG = 250,
    LH_TYPE_IXFR = 251,
    LH_TYPE_AXFR = 252,
    LH_TYPE_MAILB = 253,
    LH_TYPE_MAILA = 254,
    LH_TYPE_ANY = 255,
};

enum lh_class { LH_CLASS_IN = 1, LH_CLASS_CH = 3, LH_CLASS_ANY = 255 };

/* Header flag bits (second 16-bit word). */
#define LH_FLAG_QR 0x8000u
#define LH_FLAG_AA 0x0400u
#define LH_FLAG_TC 0x0200u
#define LH_FLAG_RD 0x0100u
#define LH_FLAG_RA 0x0080u
#define LH_FLAG_AD 0x0020u
#define LH_FLAG_CD 0x0010u
#define LH_OPCODE(flags) (((flags) >> 11) & 0xfu)

/* EDNS option codes. */
#define LH_EDNS_OPT_ECS 8
#define LH_EDNS_OPT_EDE 15
/* Extended DNS Error info codes (RFC 8914). */
#define LH_EDE_BLOCKED 15
#define LH_EDE_PROHIBITED 18
#define LH_EDE_NOT_SUPPORTED 21

/* A question name in canonical form: lowercased wire labels ending in the root label, plus the
 * offset of each label so that every suffix ("b.c.", "c.") is a pointer into `name`. */
typedef struct lh_name {
    uint8_t wire[LH_NAME_MAX];
    uint16_t len;    /* bytes in wire, root label included */
    uint8_t nlabels; /* labels excluding the root */
    uint8_t label_off[LH_LABELS_MAX];
} lh_name;

/* A parsed client query. Points into the caller's packet, which must outlive it. */
typedef struct lh_msg {
    const uint8_t *pkt;
    size_t pkt_len;
    uint16_t id;
    uint16_t flags;
    uint16_t qtype;
    uint16_t qclass;
    size_t question_end; /* offset just past the question section */
    lh_name qname;
    bool has_edns;
    bool edns_do;
    uint8_t edns_version;
    uint16_t edns_udp_size;
} lh_msg;

typedef enum lh_parse_result {
    LH_PARSE_OK = 0,
    LH_PARSE_DROP,    /* too short for a header, or a response: send nothing */
    LH_PARSE_FORMERR, /* header fine, the rest is not */
    LH_PARSE_NOTIMP,  /* opcode is not QUERY */
    LH_PARSE_BADVERS, /* EDNS version > 0 */
} lh_parse_result;

/* Parses a client query. On any result but DROP the header fields (id, flags) are set so an
 * error answer can be built; qname is valid only for OK and BADVERS. */
lh_parse_result lh_msg_parse_query(const uint8_t *pkt, size_t len, lh_msg *m);

/* Converts a text name ("Example.COM." or "example.com") to canonical wire form. Returns 0, or
 * -1 for an empty label, a label over 63 bytes or a name over 255 bytes. */
int lh_name_from_text(const char *text, size_t len, lh_name *out);
/* Writes the dotted text form of a wire name (no trailing dot, "." for the root); returns the
 * text length. `cap` must be at least LH_NAME_MAX + 1 to never truncate. */
size_t lh_name_to_text(const uint8_t *wire, char *out, size_t cap);
/* Length of the wire name at the label index `label` (a suffix of `n`). */
static inline uint16_t lh_name_suffix_len(const lh_name *n, unsigned label)
{
    return (uint16_t)(n->len - n->label_off[label]);
}

/* Builds a query (one question, class IN, RD set, no EDNS) for the dotted `name`. Returns its
 * length, or 0 when the name is invalid or `cap` is too small. */
size_t lh_wire_build_query(uint8_t *buf, size_t cap, const char *name, uint16_t type, uint16_t id);

/* What loophole needs to know of an upstream answer: where its TTLs are (to age them), its
 * OPT record (to strip it), its negative-caching TTL. Everything bounds-checked; compression
 * followed safely. The names the answer leads to (for uncloaking) are not stored here: they
 * are walked with lh_answer_targets_begin/next, all of them, however many there are. */
#define LH_ANSWER_RR_MAX 256 /* answers with more records are relayed but not cached */
/* Targets uncloaking checks. Each costs what a client's question costs (a probe per label and
 * every pattern rule); a hostile 64 KiB answer holds ~4,000, which would make one answer cost
 * ~4,000 questions' work (tens to hundreds of ms on the loop). Real answers hold a handful;
 * an answer with more targets than this is blocked as a whole, unread. */
#define LH_ANSWER_TARGETS_MAX 128

typedef struct lh_answer_info {
    uint16_t flags;
    unsigned rcode;
    uint16_t an, ns, ar;
    size_t question_end;
    size_t opt_off, opt_len; /* opt_len 0: no OPT */
    bool opt_is_last;
    uint16_t opt_ar_index; /* position of the OPT among the additional records */
    uint16_t nttl;         /* TTL fields of every record but OPT */
    uint16_t ttl_off[LH_ANSWER_RR_MAX];
    uint32_t min_answer_ttl; /* over the answer section; UINT32_MAX if empty */
    bool has_soa;
    uint32_t negative_ttl; /* RFC 2308: min(SOA TTL, SOA MINIMUM) of the authority SOA */
    unsigned ntargets;     /* CNAME targets and SVCB/HTTPS target names of the answer section */
    bool too_many_rrs;
    bool private_address; /* an A/AAAA in the answer section is private, loopback or link-local */
} lh_answer_info;

/* Scans an upstream answer. Returns 0, or -1 when it is malformed anywhere (the first
 * LH_ANSWER_TARGETS_MAX target names included; later ones are only counted). */
int lh_answer_scan(const uint8_t *pkt, size_t len, lh_answer_info *ai);

/* Walks the names a scanned answer leads to: every CNAME target and every SVCB/HTTPS target
 * name of its answer section, in message order ("." targets, meaning the owner, included as
 * the root name). No storage besides the iterator. The scan has read the first
 * LH_ANSWER_TARGETS_MAX as names; walk no further than that (uncloaking does not). */
typedef struct lh_target_iter {
    size_t off;    /* the next record of the answer section */
    unsigned left; /* answer records not yet looked at */
} lh_target_iter;
void lh_answer_targets_begin(const lh_answer_info *ai, lh_target_iter *it);
/* Returns 1 with the next target in `out`, 0 when there is none left, -1 if the message is
 * malformed (never, within the first LH_ANSWER_TARGETS_MAX, for a message lh_answer_scan
 * accepted). */
int lh_answer_targets_next(const uint8_t *pkt, size_t len, lh_target_iter *it, lh_name *out);
/* Reads a possibly compressed name at `off` into canonical form. Returns the offset past it
 * in the record (not past the pointer target), or 0 when malformed. */
size_t lh_name_read(const uint8_t *pkt, size_t len, size_t off, lh_name *n);

/* Answer builder: writes into a caller-owned buffer; every append checks space and sets
 * `overflow` instead of writing past the end, so callers test once at the end. */
typedef struct lh_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    bool overflow;
    uint16_t counts[3]; /* answer, authority, additional */
    unsigned rcode;     /* full rcode; bits above 4 go into the OPT record */
} lh_writer;

enum lh_section { LH_SEC_ANSWER = 0, LH_SEC_AUTHORITY = 1, LH_SEC_ADDITIONAL = 2 };

/* Starts an answer to `m`: header (ID, opcode, RD, CD copied; QR, RA set) and, when `m` has a
 * parsed question, the question exactly as the client sent it (its case kept). */
void lh_writer_begin(lh_writer *w, uint8_t *buf, size_t cap, const lh_msg *m, unsigned rcode,
                     bool aa);
/* Appends a record whose owner is the question name's suffix at label `owner_label` (0 = the
 * whole name), written as a compression pointer into the question. */
void lh_writer_rr(lh_writer *w, const lh_msg *m, enum lh_section sec, unsigned owner_label,
                  uint16_t type, uint32_t ttl, const uint8_t *rdata, uint16_t rdlen);
/* Appends an SOA for the zone whose apex is the question's suffix at `apex_label`. */
void lh_writer_soa(lh_writer *w, const lh_msg *m, enum lh_section sec, unsigned apex_label,
                   uint32_t ttl, uint32_t negative_ttl);
/* Finishes the answer: appends an OPT record when the client sent EDNS (our UDP size, DO
 * echoed, the extended rcode bits, and an Extended DNS Error option unless `ede_code` < 0).
 * If the answer exceeds `limit` bytes, its records are dropped and TC is set so the client
 * retries over TCP; the OPT is kept. Returns the length, or 0 if nothing fits. */
size_t lh_writer_finish(lh_writer *w, const lh_msg *m, size_t limit, uint16_t our_udp_size,
                        int ede_code);
/* Continues a writer over a complete message already in buf (its counts and rcode read from
 * the header), typically to finish a relayed answer with lh_writer_finish. */
void lh_writer_resume(lh_writer *w, uint8_t *buf, size_t cap, size_t len);
/* Makes an answer in buf the client's: its ID, its RD bit, and its question bytes exactly as
 * sent (0x20 case included). The answer's question must have the same length. */
void lh_answer_patch_for_client(uint8_t *buf, const lh_msg *m);

/* "localhost." in wire form: the PTR target of the loopback addresses, the NS of local zones. */
extern const uint8_t lh_localhost_wire[11];

/* An answer synthesised here (localhost, special-use zones, the hosts file, a block, a
 * refusal): what the policy decided, in wire terms. The address and PTR bytes belong to the
 * caller (the policy) and must outlive the call. */
typedef struct lh_local_answer {
    bool records; /* a local answer: its records, or the zone's SOA when there are none;
                     false: a refusal, the header (and EDE) only */
    uint8_t rcode;
    bool aa;
    bool at_apex;      /* the name is the zone apex: SOA and NS are answered */
    uint8_t soa_label; /* label index of the SOA owner for negative answers */
    uint16_t n4, n6;
    const uint8_t *v4, *v6; /* n4 x 4 and n6 x 16 address bytes */
    const uint8_t *ptr;     /* PTR target, wire form, or NULL */
    uint16_t ptr_len;
    uint32_t ttl;
    int ede; /* Extended DNS Error code, or -1 */
} lh_local_answer;

/* Writes the answer `a` to `m`: the records of its type (A, AAAA, PTR; SOA and NS at the
 * apex; all of them for ANY), else an SOA in the authority section for negative caching.
 * Returns its length, 0 if nothing fits. No allocation. */
size_t lh_answer_local(const lh_msg *m, const lh_local_answer *a, uint8_t *out, size_t cap,
                       size_t limit, uint16_t our_udp_size);
/* Writes a header-only error answer (FORMERR, NOTIMP, SERVFAIL, BADVERS...). */
size_t lh_answer_error(const lh_msg *m, unsigned rcode, uint8_t *out, size_t cap, size_t limit,
                       uint16_t our_udp_size);
/* Writes the NOTIMP answer to an opcode other than QUERY: QR, the opcode and the rcode, every
 * other flag clear (no RA, none of the query's flags echoed); the question echoed if parsed. */
size_t lh_answer_notimp_opcode(const lh_msg *m, uint8_t *out, size_t cap, size_t limit,
                               uint16_t our_udp_size);

/* The UDP answer size the client allows: its EDNS size capped at ours, floored at 512. */
static inline size_t lh_msg_udp_limit(const lh_msg *m, uint16_t our_cap)
{
    if (!m->has_edns) return LH_UDP_MIN;
    size_t s = m->edns_udp_size < our_cap ? m->edns_udp_size : our_cap;
    return s < LH_UDP_MIN ? LH_UDP_MIN : s;
}

/* Network byte order, as one load or store each (byte-wise shifts and ors are what the
 * compiler kept of the per-byte form: ~10 instructions a header field on the answer path). */
static inline uint16_t lh_rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap16(v);
#endif
    return v;
}
static inline uint32_t lh_rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}
static inline void lh_wr16(uint8_t *p, uint16_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap16(v);
#endif
    memcpy(p, &v, 2);
}
static inline void lh_wr32(uint8_t *p, uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    memcpy(p, &v, 4);
}

#endif
