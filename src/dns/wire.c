/* wire.c - bounds-checked reading of client queries and building of synthesized answers.
 *
 * Every read is checked against the packet length before it happens; nothing here trusts a
 * count, a length or a pointer from the packet. The question name must not be compressed (it is
 * the first name in the message, so a pointer could only point into the header). */
#include "loophole/wire.h"

#include <string.h>

#define LH_PTR_HOPS_MAX 64 /* compression pointers followed in one name before giving up */

static inline uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* lower() on 8 bytes at once: the high bit of each byte says "A..Z", shifted onto 0x20. */
static inline uint64_t lower8(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t low7 = x & ~high;
    uint64_t above_z = low7 + (0x7f - 'Z') * ones; /* high bit set where byte > 'Z' */
    uint64_t from_a = low7 + (0x80 - 'A') * ones;  /* high bit set where byte >= 'A' */
    uint64_t upper = ~x & (from_a ^ above_z) & high;
    return x | (upper >> 2);
}

/* Reads the name at `off` into canonical form (lowercase, label offsets). Compression pointers
 * are followed only when `pointers` is set (never in a question: the first name of a message
 * has nothing earlier to point to), only backwards, and a bounded number of times. Returns the
 * offset just past the name where it starts, or 0 on any malformation. */
/* The name at `off` when it has no compression pointer (every question a client sends):
 * the labels are checked first, then the whole name is copied and lowercased a word at a
 * time; its length bytes (0..63) are below 'A', so lowercasing leaves them alone. Returns the
 * offset past it, 0 for a malformed name, or 1 (never a valid end) to let the general reader
 * decide about a pointer or an invalid length byte. */
static size_t name_read_flat(const uint8_t *pkt, size_t len, size_t off, lh_name *n)
{
    if (off >= len) return 0;
    /* One bound for both limits: a label must end before the packet does (its next length
     * byte is read) and leave room for the root byte in LH_NAME_MAX. The label count needs no
     * check of its own: labels are at least 2 bytes, so LH_NAME_MAX bounds it. */
    _Static_assert(2 * (LH_LABELS_MAX - 1) >= LH_NAME_MAX - 1, "labels bounded by the length");
    size_t avail = len - off;
    unsigned lim = avail < LH_NAME_MAX ? (unsigned)avail : LH_NAME_MAX;
    const uint8_t *src = pkt + off;
    unsigned nlen = 0, nlabels = 0;
    for (;;) {
        uint8_t l = src[nlen];
        if (l == 0) break;
        if (l > 63) return 1;
        n->label_off[nlabels++] = (uint8_t)nlen;
        nlen += 1u + l;
        if (nlen >= lim) return 0;
    }
    uint8_t *dst = n->wire;
    unsigned i = 0;
    for (; i + 8 <= nlen; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        /* Opaque to the compiler: names are a few words long, and a vectorised loop's set-up
         * and overlap checks cost more than the words themselves. */
        __asm__("" : "+r"(w));
        w = lower8(w);
        memcpy(dst + i, &w, 8);
    }
    if (i < nlen && nlen >= 8) {
        /* The last 1..7 bytes as the name's last word, overlapping bytes already done
         * (lowercasing them again changes nothing). */
        uint64_t w;
        memcpy(&w, src + nlen - 8, 8);
        w = lower8(w);
        memcpy(dst + nlen - 8, &w, 8);
    } else if (i < nlen) {
        /* A name shorter than a word, in at most three steps (a byte loop here gets
         * vectorized, with a set-up that costs more than the name). */
        if (nlen - i >= 4) {
            uint32_t w;
            memcpy(&w, src + i, 4);
            w = (uint32_t)lower8(w);
            memcpy(dst + i, &w, 4);
            i += 4;
        }
        if (nlen - i >= 2) {
            uint16_t w;
            memcpy(&w, src + i, 2);
            w = (uint16_t)lower8(w);
            memcpy(dst + i, &w, 2);
            i += 2;
        }
        if (i < nlen) dst[i] = lower(src[i]);
    }
    n->label_off[nlabels] = (uint8_t)nlen;
    dst[nlen] = 0;
    n->len = (uint16_t)(nlen + 1);
    n->nlabels = (uint8_t)nlabels;
    return off + nlen + 1;
}

static size_t name_read(const uint8_t *pkt, size_t len, size_t off, lh_name *n, bool pointers)
{
    size_t flat = name_read_flat(pkt, len, off, n);
    if (flat != 1) return flat;
    size_t end = 0;
    unsigned hops = 0;
    /* Locals, not n->len and n->nlabels: byte stores into n->wire may alias them, which
     * would make the compiler reload them for every byte copied. */
    unsigned nlen = 0, nlabels = 0;
    uint8_t *wire = n->wire;
    for (;;) {
        if (off >= len) return 0;
        uint8_t l = pkt[off];
        if (l == 0) break;
        if ((l & 0xc0) == 0xc0 && pointers) {
            if (off + 1 >= len || ++hops > LH_PTR_HOPS_MAX) return 0;
            size_t target = (size_t)(l & 0x3f) << 8 | pkt[off + 1];
            if (target >= off) return 0;
            if (!end) end = off + 2;
            off = target;
            continue;
        }
        if (l > 63 || off + 1 + l > len || nlen + 1u + l + 1u > LH_NAME_MAX ||
            nlabels >= LH_LABELS_MAX - 1)
            return 0;
        n->label_off[nlabels++] = (uint8_t)nlen;
        wire[nlen] = l;
        const uint8_t *src = pkt + off + 1;
        uint8_t *dst = wire + nlen + 1;
        for (unsigned i = 0; i < l; i++)
            dst[i] = lower(src[i]);
        nlen += 1u + l;
        off += 1u + l;
    }
    n->label_off[nlabels] = (uint8_t)nlen;
    wire[nlen++] = 0;
    n->len = (uint16_t)nlen;
    n->nlabels = (uint8_t)nlabels;
    return end ? end : off + 1;
}

/* Skips a possibly compressed name at `off`. Returns the offset just past it or 0. Pointers
 * must point strictly backwards, and the expanded length is bounded, so loops terminate. */
static size_t skip_name(const uint8_t *pkt, size_t len, size_t off)
{
    size_t end = 0, total = 0;
    unsigned hops = 0;
    for (;;) {
        if (off >= len) return 0;
        uint8_t l = pkt[off];
        if (l == 0) return end ? end : off + 1;
        if ((l & 0xc0) == 0xc0) {
            if (off + 1 >= len || ++hops > LH_PTR_HOPS_MAX) return 0;
            size_t target = (size_t)(l & 0x3f) << 8 | pkt[off + 1];
            if (target >= off) return 0;
            if (!end) end = off + 2;
            off = target;
            continue;
        }
        if (l > 63) return 0;
        total += 1u + l;
        if (total > LH_NAME_MAX - 1 || off + 1 + l > len) return 0;
        off += 1u + l;
    }
}

/* Parses the OPT record whose fixed part starts at `p` (type already known to be OPT). */
static lh_parse_result read_opt(lh_msg *m, const uint8_t *p, const uint8_t *rdata, uint16_t rdlen)
{
    if (m->has_edns) /* RFC 6891 6.1.1: more than one OPT is FORMERR */
        return LH_PARSE_FORMERR;
    m->has_edns = true;
    m->edns_udp_size = lh_rd16(p + 2);
    m->edns_version = p[5];
    m->edns_do = (p[6] & 0x80) != 0;
    /* Options must tile the rdata exactly. */
    size_t o = 0;
    while (o < rdlen) {
        if (rdlen - o < 4) return LH_PARSE_FORMERR;
        uint16_t olen = lh_rd16(rdata + o + 2);
        if (olen > rdlen - o - 4) return LH_PARSE_FORMERR;
        o += 4u + olen;
    }
    return LH_PARSE_OK;
}

lh_parse_result lh_msg_parse_query(const uint8_t *pkt, size_t len, lh_msg *m)
{
    m->pkt = pkt;
    m->pkt_len = len;
    m->question_end = 0;
    m->qname.len = 0;
    m->qname.nlabels = 0;
    m->has_edns = false;
    m->edns_do = false;
    m->edns_version = 0;
    m->edns_udp_size = 0;
    m->qtype = m->qclass = 0;
    if (len < LH_DNS_HEADER_LEN) return LH_PARSE_DROP;
    m->id = lh_rd16(pkt);
    m->flags = lh_rd16(pkt + 2);
    if (m->flags & LH_FLAG_QR) return LH_PARSE_DROP;
    uint16_t qd = lh_rd16(pkt + 4), an = lh_rd16(pkt + 6), ns = lh_rd16(pkt + 8),
             ar = lh_rd16(pkt + 10);

    size_t off = 0;
    if (qd == 1 && (off = name_read(pkt, len, LH_DNS_HEADER_LEN, &m->qname, false)) &&
        off + 4 <= len) {
        m->qtype = lh_rd16(pkt + off);
        m->qclass = lh_rd16(pkt + off + 2);
        m->question_end = off + 4;
    }
    if (LH_OPCODE(m->flags) != 0) return LH_PARSE_NOTIMP;
    if (!m->question_end) return LH_PARSE_FORMERR;

    off = m->question_end;
    unsigned nrr = (unsigned)an + ns + ar;
    for (unsigned i = 0; i < nrr; i++) {
        size_t rr = skip_name(pkt, len, off);
        if (!rr || rr + 10 > len) return LH_PARSE_FORMERR;
        uint16_t type = lh_rd16(pkt + rr), rdlen = lh_rd16(pkt + rr + 8);
        if (rr + 10 + rdlen > len) return LH_PARSE_FORMERR;
        if (type == LH_TYPE_OPT) {
            /* OPT lives only in the additional section and is owned by the root. */
            if (i < (unsigned)an + ns || rr != off + 1) return LH_PARSE_FORMERR;
            lh_parse_result r = read_opt(m, pkt + rr, pkt + rr + 10, rdlen);
            if (r != LH_PARSE_OK) return r;
        }
        off = rr + 10 + rdlen;
    }
    if (m->has_edns && m->edns_version > 0) return LH_PARSE_BADVERS;
    return LH_PARSE_OK;
}

int lh_name_from_text(const char *text, size_t len, lh_name *n)
{
    n->len = 0;
    n->nlabels = 0;
    if (len == 1 && text[0] == '.')
        len = 0;
    else if (len > 0 && text[len - 1] == '.')
        len--;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && text[j] != '.')
            j++;
        size_t l = j - i;
        if (l == 0 || l > 63 || n->len + 1 + l + 1 > LH_NAME_MAX || n->nlabels >= LH_LABELS_MAX - 1)
            return -1;
        n->label_off[n->nlabels++] = (uint8_t)n->len;
        n->wire[n->len] = (uint8_t)l;
        for (size_t k = 0; k < l; k++)
            n->wire[n->len + 1 + k] = lower((uint8_t)text[i + k]);
        n->len = (uint16_t)(n->len + 1 + l);
        i = j + 1;
        if (j < len && j + 1 == len) /* "a..": trailing empty label after the stripped dot */
            return -1;
    }
    n->label_off[n->nlabels] = (uint8_t)n->len;
    n->wire[n->len++] = 0;
    return 0;
}

size_t lh_name_to_text(const uint8_t *wire, char *out, size_t cap)
{
    size_t o = 0, i = 0;
    if (cap == 0) return 0;
    if (wire[0] == 0) {
        if (cap > 1) out[o++] = '.';
        out[o] = 0;
        return o;
    }
    while (wire[i] != 0) {
        uint8_t l = wire[i++];
        if (o && o + 1 < cap) out[o++] = '.';
        for (uint8_t k = 0; k < l; k++, i++) {
            uint8_t c = wire[i];
            if (c > 32 && c < 127 && c != '.' && c != '\\') {
                if (o + 1 < cap) out[o++] = (char)c;
            } else if (o + 4 < cap) { /* RFC 1035 5.1 \DDD escape */
                out[o++] = '\\';
                out[o++] = (char)('0' + c / 100);
                out[o++] = (char)('0' + c / 10 % 10);
                out[o++] = (char)('0' + c % 10);
            }
        }
    }
    out[o] = 0;
    return o;
}

static inline bool reserve(lh_writer *w, size_t n)
{
    if (w->overflow || w->cap - w->len < n) {
        w->overflow = true;
        return false;
    }
    return true;
}

void lh_writer_begin(lh_writer *w, uint8_t *buf, size_t cap, const lh_msg *m, unsigned rcode,
                     bool aa)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->overflow = false;
    w->rcode = rcode;
    memset(w->counts, 0, sizeof w->counts);
    size_t qlen = m->question_end ? m->question_end - LH_DNS_HEADER_LEN : 0;
    if (!reserve(w, LH_DNS_HEADER_LEN + qlen)) return;
    uint16_t flags = (uint16_t)(LH_FLAG_QR | (m->flags & (0x7800u | LH_FLAG_RD | LH_FLAG_CD)) |
                                LH_FLAG_RA | (aa ? LH_FLAG_AA : 0) | (rcode & 0xfu));
    lh_wr16(buf, m->id);
    lh_wr16(buf + 2, flags);
    lh_wr16(buf + 4, m->question_end ? 1 : 0);
    memset(buf + 6, 0, 6);
    memcpy(buf + LH_DNS_HEADER_LEN, m->pkt + LH_DNS_HEADER_LEN, qlen);
    w->len = LH_DNS_HEADER_LEN + qlen;
}

/* Compression pointer to the question name's suffix at label index `label`. */
static inline void put_name_ptr(uint8_t *p, const lh_msg *m, unsigned label)
{
    lh_wr16(p, (uint16_t)(0xc000u | (LH_DNS_HEADER_LEN + m->qname.label_off[label])));
}

static void rr_header(lh_writer *w, const lh_msg *m, enum lh_section sec, unsigned owner_label,
                      uint16_t type, uint32_t ttl, uint16_t rdlen)
{
    uint8_t *p = w->buf + w->len;
    put_name_ptr(p, m, owner_label);
    lh_wr16(p + 2, type);
    lh_wr16(p + 4, LH_CLASS_IN);
    lh_wr32(p + 6, ttl);
    lh_wr16(p + 10, rdlen);
    w->len += 12;
    w->counts[sec]++;
}

void lh_writer_rr(lh_writer *w, const lh_msg *m, enum lh_section sec, unsigned owner_label,
                  uint16_t type, uint32_t ttl, const uint8_t *rdata, uint16_t rdlen)
{
    if (!reserve(w, 12u + rdlen)) return;
    rr_header(w, m, sec, owner_label, type, ttl, rdlen);
    memcpy(w->buf + w->len, rdata, rdlen);
    w->len += rdlen;
}

void lh_writer_soa(lh_writer *w, const lh_msg *m, enum lh_section sec, unsigned apex_label,
                   uint32_t ttl, uint32_t negative_ttl)
{
    /* MNAME = the apex, RNAME = hostmaster.<apex>: both compressed against the question. */
    static const uint8_t hostmaster[] = {10, 'h', 'o', 's', 't', 'm', 'a', 's', 't', 'e', 'r'};
    const uint16_t rdlen = 2 + sizeof hostmaster + 2 + 20;
    if (!reserve(w, 12u + rdlen)) return;
    rr_header(w, m, sec, apex_label, LH_TYPE_SOA, ttl, rdlen);
    uint8_t *p = w->buf + w->len;
    put_name_ptr(p, m, apex_label);
    memcpy(p + 2, hostmaster, sizeof hostmaster);
    put_name_ptr(p + 2 + sizeof hostmaster, m, apex_label);
    p += 4 + sizeof hostmaster;
    lh_wr32(p, 1);                 /* serial */
    lh_wr32(p + 4, 3600);          /* refresh */
    lh_wr32(p + 8, 600);           /* retry */
    lh_wr32(p + 12, 86400);        /* expire */
    lh_wr32(p + 16, negative_ttl); /* minimum: the negative-caching TTL (RFC 2308) */
    w->len += rdlen;
}

static void put_opt(lh_writer *w, uint16_t udp_size, bool do_bit, int ede_code)
{
    size_t n = 11 + (ede_code >= 0 ? 6 : 0);
    if (!reserve(w, n)) return;
    uint8_t *p = w->buf + w->len;
    p[0] = 0; /* root owner */
    lh_wr16(p + 1, LH_TYPE_OPT);
    lh_wr16(p + 3, udp_size);
    p[5] = (uint8_t)(w->rcode >> 4); /* extended rcode, upper 8 bits */
    p[6] = 0;                        /* version */
    p[7] = do_bit ? 0x80 : 0;
    p[8] = 0;
    lh_wr16(p + 9, (uint16_t)(n - 11));
    if (ede_code >= 0) {
        lh_wr16(p + 11, LH_EDNS_OPT_EDE);
        lh_wr16(p + 13, 2);
        lh_wr16(p + 15, (uint16_t)ede_code);
    }
    w->len += n;
    w->counts[LH_SEC_ADDITIONAL]++;
}

size_t lh_writer_finish(lh_writer *w, const lh_msg *m, size_t limit, uint16_t our_udp_size,
                        int ede_code)
{
    size_t head = LH_DNS_HEADER_LEN + (m->question_end ? m->question_end - LH_DNS_HEADER_LEN : 0);
    if (w->len < head) /* not even the header fitted */
        return 0;
    if (limit > w->cap) limit = w->cap;
    size_t opt_len = m->has_edns ? 11 + (ede_code >= 0 ? 6 : 0) : 0;
    if (w->overflow || w->len + opt_len > limit) {
        w->len = head;
        w->overflow = false;
        memset(w->counts, 0, sizeof w->counts);
        w->buf[2] |= LH_FLAG_TC >> 8;
        if (w->len + opt_len > limit) return 0;
    }
    if (m->has_edns) put_opt(w, our_udp_size, m->edns_do, ede_code);
    lh_wr16(w->buf + 6, w->counts[LH_SEC_ANSWER]);
    lh_wr16(w->buf + 8, w->counts[LH_SEC_AUTHORITY]);
    lh_wr16(w->buf + 10, w->counts[LH_SEC_ADDITIONAL]);
    return w->len;
}

size_t lh_wire_build_query(uint8_t *buf, size_t cap, const char *name, uint16_t type, uint16_t id)
{
    lh_name n;
    if (lh_name_from_text(name, strlen(name), &n) != 0 || cap < LH_DNS_HEADER_LEN + n.len + 4u)
        return 0;
    memset(buf, 0, LH_DNS_HEADER_LEN);
    lh_wr16(buf, id);
    lh_wr16(buf + 2, LH_FLAG_RD);
    lh_wr16(buf + 4, 1);
    memcpy(buf + LH_DNS_HEADER_LEN, n.wire, n.len);
    lh_wr16(buf + LH_DNS_HEADER_LEN + n.len, type);
    lh_wr16(buf + LH_DNS_HEADER_LEN + n.len + 2, LH_CLASS_IN);
    return LH_DNS_HEADER_LEN + n.len + 4u;
}

size_t lh_name_read(const uint8_t *pkt, size_t len, size_t off, lh_name *n)
{
    return name_read(pkt, len, off, n, true);
}

/* Addresses a public name has no business resolving to (DNS rebinding): RFC 1918, loopback,
 * link-local, "this network", CGNAT; ::1, ::, fc00::/7, fe80::/10 and v4-mapped forms. */
static bool is_private_v4(const uint8_t *a)
{
    return a[0] == 10 || a[0] == 127 || a[0] == 0 || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
           (a[0] == 192 && a[1] == 168) || (a[0] == 169 && a[1] == 254) ||
           (a[0] == 100 && (a[1] & 0xc0) == 64);
}

static bool is_private_v6(const uint8_t *a)
{
    static const uint8_t zero[15] = {0};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(a, zero, 15) && (a[15] == 0 || a[15] == 1)) return true;
    if ((a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)) return true;
    return !memcmp(a, mapped, 12) && is_private_v4(a + 12);
}

/* The name record `type` leads to, if any: a CNAME's target, or an SVCB/HTTPS target name
 * (after the 2-byte priority). Returns the rdata offset of that name, or 0. */
static size_t target_offset(uint16_t type, size_t rdata, uint16_t rdlen)
{
    if (type == LH_TYPE_CNAME) return rdata;
    if ((type == LH_TYPE_SVCB || type == LH_TYPE_HTTPS) && rdlen > 2) return rdata + 2;
    return 0;
}

/* Where a compression pointer may lead: the start of a label of a name read earlier in the
 * message (question, owner names, and the names inside the RDATA of the types that carry one).
 * A pointer anywhere else - into a TTL, an RDATA length, the middle of a label - makes a name
 * out of bytes that are not a name; rewriting those bytes (TTL aging does) would then change
 * a name after it was checked. Pointers carry 14 bits, so only the first 16 KiB can be a
 * target. A bitmap on the stack: no allocation, cleared only as far as the message reaches. */
#define LH_PTR_TARGETS (1u << 14)
typedef struct name_marks {
    uint8_t bits[LH_PTR_TARGETS / 8];
} name_marks;

static inline bool is_marked(const name_marks *nm, size_t off)
{
    return off < LH_PTR_TARGETS && (nm->bits[off >> 3] >> (off & 7) & 1);
}

/* Checks the name at `off` (within `limit`) and, when `keep`, marks its labels as targets for
 * later names. Every pointer in it must lead to a marked label start before the name itself;
 * then the rest of the chain was checked when that earlier name was read. Returns the offset
 * past the name, or 0. */
static size_t scan_name(const uint8_t *pkt, size_t limit, size_t off, name_marks *nm, bool keep)
{
    uint16_t starts[LH_NAME_MAX];
    unsigned n = 0;
    const size_t begin = off;
    size_t end;
    for (;;) {
        if (off >= limit) return 0;
        uint8_t l = pkt[off];
        if ((l & 0xc0) == 0xc0) {
            if (off + 1 >= limit) return 0;
            size_t target = (size_t)(l & 0x3f) << 8 | pkt[off + 1];
            if (target >= begin || !is_marked(nm, target)) return 0;
            end = off + 2;
            break;
        }
        if (l > 63) return 0;
        starts[n++] = (uint16_t)(off < LH_PTR_TARGETS ? off : 0);
        if (l == 0) {
            end = off + 1;
            break;
        }
        off += 1u + l;
        if (off - begin > LH_NAME_MAX - 1) return 0;
    }
    /* The whole name, pointers followed, must still fit LH_NAME_MAX. */
    if (skip_name(pkt, limit, begin) != end) return 0;
    if (keep)
        for (unsigned i = 0; i < n; i++)
            if (starts[i]) nm->bits[starts[i] >> 3] |= (uint8_t)(1u << (starts[i] & 7));
    return end;
}

/* The names inside a record's RDATA that other names may be compressed against (RFC 1035's
 * types, and the targets loophole reads): marked when they read as names; others ignored. */
static void mark_rdata_names(const uint8_t *pkt, uint16_t type, size_t rdata, size_t next,
                             name_marks *nm)
{
    size_t p = 0;
    unsigned count = 1;
    switch (type) {
    case LH_TYPE_NS:
    case LH_TYPE_CNAME:
    case LH_TYPE_PTR:
    case 39: /* DNAME */
        p = rdata;
        break;
    case LH_TYPE_SOA:
    case 14: /* MINFO */
    case 17: /* RP */
        p = rdata;
        count = 2;
        break;
    case LH_TYPE_MX:
    case 18: /* AFSDB */
    case 21: /* RT */
    case 36: /* KX */
    case LH_TYPE_SVCB:
    case LH_TYPE_HTTPS:
        p = rdata + 2;
        break;
    case 33: /* SRV */
        p = rdata + 6;
        break;
    default:
        return;
    }
    while (count-- && p && p < next)
        p = scan_name(pkt, next, p, nm, true);
}

int lh_answer_scan(const uint8_t *pkt, size_t len, lh_answer_info *ai)
{
    name_marks nm;
    memset(nm.bits, 0, ((len < LH_PTR_TARGETS ? len : LH_PTR_TARGETS) + 7) / 8);
    memset(ai, 0, offsetof(lh_answer_info, ttl_off));
    ai->ntargets = 0;
    ai->too_many_rrs = false;
    ai->has_soa = false;
    ai->private_address = false;
    ai->negative_ttl = 0;
    ai->min_answer_ttl = UINT32_MAX;
    if (len < LH_DNS_HEADER_LEN) return -1;
    ai->flags = lh_rd16(pkt + 2);
    ai->rcode = ai->flags & 0xfu;
    uint16_t qd = lh_rd16(pkt + 4);
    ai->an = lh_rd16(pkt + 6);
    ai->ns = lh_rd16(pkt + 8);
    ai->ar = lh_rd16(pkt + 10);
    size_t off = LH_DNS_HEADER_LEN;
    for (unsigned i = 0; i < qd; i++) {
        off = scan_name(pkt, len, off, &nm, true);
        if (!off || off + 4 > len) return -1;
        off += 4;
    }
    ai->question_end = off;
    unsigned total = (unsigned)ai->an + ai->ns + ai->ar;
    for (unsigned i = 0; i < total; i++) {
        /* Not an OPT's owner as a target: the forwarder may strip the OPT record. */
        size_t rr = scan_name(pkt, len, off, &nm, false);
        if (!rr || rr + 10 > len) return -1;
        uint16_t type = lh_rd16(pkt + rr), rdlen = lh_rd16(pkt + rr + 8);
        if (type != LH_TYPE_OPT) scan_name(pkt, len, off, &nm, true);
        uint32_t ttl = lh_rd32(pkt + rr + 4);
        size_t rdata = rr + 10, next = rdata + rdlen;
        if (next > len) return -1;
        bool answer = i < ai->an, authority = !answer && i < (unsigned)ai->an + ai->ns;
        if (type == LH_TYPE_OPT) {
            if (answer || authority || ai->opt_len) return -1;
            ai->opt_off = off;
            ai->opt_len = next - off;
            ai->opt_is_last = i == total - 1;
            ai->opt_ar_index = (uint16_t)(i - ai->an - ai->ns);
        } else {
            if (ai->nttl < LH_ANSWER_RR_MAX && rr + 4 <= UINT16_MAX)
                ai->ttl_off[ai->nttl++] = (uint16_t)(rr + 4);
            else
                ai->too_many_rrs = true;
            if (answer && ttl < ai->min_answer_ttl) ai->min_answer_ttl = ttl;
            if (answer && ((type == LH_TYPE_A && rdlen == 4 && is_private_v4(pkt + rdata)) ||
                           (type == LH_TYPE_AAAA && rdlen == 16 && is_private_v6(pkt + rdata))))
                ai->private_address = true;
            /* The targets uncloaking reads must read as names, so that walking them later
             * cannot fail. Past LH_ANSWER_TARGETS_MAX the answer is blocked unread: those
             * are only counted, so they cost the scan nothing either. */
            size_t t = answer ? target_offset(type, rdata, rdlen) : 0;
            if (t) {
                lh_name scratch;
                if (ai->ntargets < LH_ANSWER_TARGETS_MAX &&
                    (!scan_name(pkt, next, t, &nm, true) || !lh_name_read(pkt, next, t, &scratch)))
                    return -1;
                ai->ntargets++;
            }
            if (authority && type == LH_TYPE_SOA) {
                size_t p = scan_name(pkt, next, rdata, &nm, true);
                p = p ? scan_name(pkt, next, p, &nm, true) : 0;
                if (!p || p + 20 != next) return -1;
                uint32_t minimum = lh_rd32(pkt + p + 16);
                ai->has_soa = true;
                ai->negative_ttl = ttl < minimum ? ttl : minimum;
            }
        }
        if (type != LH_TYPE_OPT) mark_rdata_names(pkt, type, rdata, next, &nm);
        off = next;
    }
    return 0;
}

void lh_answer_targets_begin(const lh_answer_info *ai, lh_target_iter *it)
{
    it->off = ai->question_end;
    it->left = ai->ntargets ? ai->an : 0;
}

int lh_answer_targets_next(const uint8_t *pkt, size_t len, lh_target_iter *it, lh_name *out)
{
    while (it->left) {
        it->left--;
        size_t rr = skip_name(pkt, len, it->off);
        if (!rr || rr + 10 > len) return -1;
        uint16_t type = lh_rd16(pkt + rr), rdlen = lh_rd16(pkt + rr + 8);
        size_t rdata = rr + 10, next = rdata + rdlen;
        if (next > len) return -1;
        it->off = next;
        size_t t = target_offset(type, rdata, rdlen);
        if (!t) continue;
        return lh_name_read(pkt, next, t, out) ? 1 : -1;
    }
    return 0;
}

void lh_writer_resume(lh_writer *w, uint8_t *buf, size_t cap, size_t len)
{
    w->buf = buf;
    w->cap = cap;
    w->len = len;
    w->overflow = false;
    w->rcode = buf[3] & 0xfu;
    w->counts[LH_SEC_ANSWER] = lh_rd16(buf + 6);
    w->counts[LH_SEC_AUTHORITY] = lh_rd16(buf + 8);
    w->counts[LH_SEC_ADDITIONAL] = lh_rd16(buf + 10);
}

void lh_answer_patch_for_client(uint8_t *buf, const lh_msg *m)
{
    lh_wr16(buf, m->id);
    lh_wr16(buf + 2, (uint16_t)((lh_rd16(buf + 2) & ~LH_FLAG_RD) | (m->flags & LH_FLAG_RD)));
    memcpy(buf + LH_DNS_HEADER_LEN, m->pkt + LH_DNS_HEADER_LEN,
           m->question_end - LH_DNS_HEADER_LEN);
}

/* --- answers synthesised here ------------------------------------------------------- */

const uint8_t lh_localhost_wire[11] = "\x09localhost"; /* + the root label's 0 */

size_t lh_answer_local(const lh_msg *m, const lh_local_answer *v, uint8_t *out, size_t cap,
                       size_t limit, uint16_t our_udp_size)
{
    lh_writer w;
    lh_writer_begin(&w, out, cap, m, v->rcode, v->aa);
    if (v->records && v->rcode == LH_RCODE_NOERROR) {
        uint16_t t = m->qtype;
        bool any = t == LH_TYPE_ANY;
        if (t == LH_TYPE_A || any)
            for (unsigned i = 0; i < v->n4; i++)
                lh_writer_rr(&w, m, LH_SEC_ANSWER, 0, LH_TYPE_A, v->ttl, v->v4 + i * 4, 4);
        if (t == LH_TYPE_AAAA || any)
            for (unsigned i = 0; i < v->n6; i++)
                lh_writer_rr(&w, m, LH_SEC_ANSWER, 0, LH_TYPE_AAAA, v->ttl, v->v6 + i * 16, 16);
        if ((t == LH_TYPE_PTR || any) && v->ptr)
            lh_writer_rr(&w, m, LH_SEC_ANSWER, 0, LH_TYPE_PTR, v->ttl, v->ptr, v->ptr_len);
        if (v->at_apex && (t == LH_TYPE_SOA || any))
            lh_writer_soa(&w, m, LH_SEC_ANSWER, 0, v->ttl, v->ttl);
        if (v->at_apex && (t == LH_TYPE_NS || any))
            lh_writer_rr(&w, m, LH_SEC_ANSWER, 0, LH_TYPE_NS, v->ttl, lh_localhost_wire,
                         sizeof lh_localhost_wire);
    }
    /* Negative answers (NXDOMAIN, NODATA) carry the zone's SOA for negative caching. */
    if (v->records && w.counts[LH_SEC_ANSWER] == 0 && !w.overflow)
        lh_writer_soa(&w, m, LH_SEC_AUTHORITY, v->soa_label, v->ttl, v->ttl);
    return lh_writer_finish(&w, m, limit, our_udp_size, v->ede);
}

size_t lh_answer_error(const lh_msg *m, unsigned rcode, uint8_t *out, size_t cap, size_t limit,
                       uint16_t our_udp_size)
{
    lh_writer w;
    lh_writer_begin(&w, out, cap, m, rcode, false);
    return lh_writer_finish(&w, m, limit, our_udp_size, -1);
}

size_t lh_answer_notimp_opcode(const lh_msg *m, uint8_t *out, size_t cap, size_t limit,
                               uint16_t our_udp_size)
{
    size_t n = lh_answer_error(m, LH_RCODE_NOTIMP, out, cap, limit, our_udp_size);
    /* The flags of a query whose operation we do not implement mean nothing to us, and RA
     * would advertise recursion for it: keep QR, the opcode (RFC 1035 4.1.1: copied), TC
     * if the answer did not fit, and the rcode (as Unbound does; ISC genreport "opcode"). */
    if (n)
        lh_wr16(out + 2, (uint16_t)(LH_FLAG_QR | (m->flags & 0x7800u) |
                                    (lh_rd16(out + 2) & LH_FLAG_TC) | LH_RCODE_NOTIMP));
    return n;
}
