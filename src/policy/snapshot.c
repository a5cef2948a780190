/* snapshot.c - see snapshot.h.
 *
 * File layout (native byte order, checked by a marker):
 *   header (HDR_SIZE bytes, struct hdr)
 *   lists    per list: u32 path length, u8 allow, u8 format, i8 subdomains, u8 0,
 *            u32 lines, rules, ignored, errors, names, globs, regexes, u32 first-error length,
 *            the path, the first error
 *   patterns per pattern: u32 value, u32 line, u32 flags (1: regex), u32 text length, text
 *   dir      (2^bits + 1) u32, 4-aligned: the name tree's directory
 *   recs     the name tree's records, then LH_NT_PAD zero bytes
 * The checksum covers every byte but its own eight. */
#include "loophole/snapshot.h"
#include "loophole/log.h"
#include "loophole/nameset.h"
#include "loophole/blockset.h"
#include "loophole/spill.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define MAGIC "LHSNAP\r\n"
#define HDR_SIZE 128u
#define ENDIAN_MARK 0x01020304u

typedef struct hdr {
    char magic[8];
    uint32_t format, hash_version, endian, hdr_size;
    uint64_t checksum; /* LH_SNAPSHOT_CHECKSUM_OFF */
    uint64_t file_size, sources, nodes, names;
    uint32_t bits, nlists, npatterns, zero;
    uint64_t lists_off, patterns_off, dir_off, recs_off, recs_len;
} hdr;
_Static_assert(offsetof(hdr, checksum) == LH_SNAPSHOT_CHECKSUM_OFF, "checksum offset");
_Static_assert(sizeof(hdr) <= HDR_SIZE, "header size");

static inline uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t rotl(uint64_t x, int r)
{
    return x << r | x >> (64 - r);
}

#define P1 0x9e3779b185ebca87ull
#define P2 0xc2b2ae3d27d4eb4full

/* A fast 64-bit hash for integrity (not against an attacker who can write the state
 * directory: such a one can also write the lists). Four independent lanes keep a core busy.
 * Streamed (hs_*), so that a snapshot file can be summed through a small buffer. */
typedef struct hstate {
    uint64_t a, b, c, d, total;
    uint8_t tail[32];
    size_t ntail;
} hstate;

static void hs_init(hstate *s, uint64_t seed)
{
    *s = (hstate){.a = seed + P1, .b = seed + P2, .c = seed, .d = seed - P1};
}

static inline void hs_block(hstate *s, const uint8_t *p)
{
    s->a = rotl(s->a + rd64(p) * P2, 31) * P1;
    s->b = rotl(s->b + rd64(p + 8) * P2, 31) * P1;
    s->c = rotl(s->c + rd64(p + 16) * P2, 31) * P1;
    s->d = rotl(s->d + rd64(p + 24) * P2, 31) * P1;
}

static void hs_update(hstate *s, const uint8_t *p, size_t n)
{
    s->total += n;
    if (s->ntail) {
        size_t k = 32 - s->ntail < n ? 32 - s->ntail : n;
        memcpy(s->tail + s->ntail, p, k);
        s->ntail += k;
        p += k;
        n -= k;
        if (s->ntail < 32) return;
        hs_block(s, s->tail);
        s->ntail = 0;
    }
    /* The lanes in locals while the bulk goes by (through the pointer they would be stored
     * and loaded at every block). */
    uint64_t a = s->a, b = s->b, c = s->c, d = s->d;
    for (; n >= 32; p += 32, n -= 32) {
        a = rotl(a + rd64(p) * P2, 31) * P1;
        b = rotl(b + rd64(p + 8) * P2, 31) * P1;
        c = rotl(c + rd64(p + 16) * P2, 31) * P1;
        d = rotl(d + rd64(p + 24) * P2, 31) * P1;
    }
    s->a = a;
    s->b = b;
    s->c = c;
    s->d = d;
    memcpy(s->tail, p, n);
    s->ntail = n;
}

static uint64_t hs_final(const hstate *s)
{
    uint64_t h = rotl(s->a, 1) + rotl(s->b, 7) + rotl(s->c, 12) + rotl(s->d, 18) + s->total;
    const uint8_t *p = s->tail;
    size_t n = s->ntail;
    for (; n >= 8; p += 8, n -= 8)
        h = rotl(h ^ rotl(rd64(p) * P2, 31) * P1, 27) * P1 + P2;
    for (; n; p++, n--)
        h = rotl(h ^ *p * P1, 11) * P2;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P1;
    return h ^ (h >> 32);
}

static uint64_t hash_bytes(const uint8_t *p, size_t n, uint64_t seed)
{
    hstate s;
    hs_init(&s, seed);
    hs_update(&s, p, n);
    return hs_final(&s);
}

uint64_t lh_snapshot_checksum(const uint8_t *data, size_t len)
{
    if (len < LH_SNAPSHOT_CHECKSUM_OFF + 8) return 0;
    uint64_t h = hash_bytes(data, LH_SNAPSHOT_CHECKSUM_OFF, 0);
    return hash_bytes(data + LH_SNAPSHOT_CHECKSUM_OFF + 8, len - LH_SNAPSHOT_CHECKSUM_OFF - 8, h);
}

/* The same checksum of the first `len` bytes of a file, read through a 1 MiB buffer with
 * pread: the file's pages stay in the page cache, none is mapped into this process (a reload
 * checks the new snapshot while the old policy is still resident). Returns 0 or an errno. */
static int checksum_fd(int fd, uint64_t len, uint64_t *out)
{
    if (len < LH_SNAPSHOT_CHECKSUM_OFF + 8) {
        *out = 0;
        return 0;
    }
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf) return ENOMEM;
    hstate s;
    uint64_t pos = 0, h = 0;
    int rc = 0;
    while (pos < len) {
        size_t want = len - pos < CHUNK ? (size_t)(len - pos) : CHUNK;
        ssize_t r = pread(fd, buf, want, (off_t)pos);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            rc = r < 0 ? errno : EIO;
            break;
        }
        size_t at = 0, got = (size_t)r;
        if (pos == 0) { /* the first read holds the header: the checksum field is skipped */
            if (got < LH_SNAPSHOT_CHECKSUM_OFF + 8) {
                rc = EIO;
                break;
            }
            h = hash_bytes(buf, LH_SNAPSHOT_CHECKSUM_OFF, 0);
            hs_init(&s, h);
            at = LH_SNAPSHOT_CHECKSUM_OFF + 8;
        }
        hs_update(&s, buf + at, got - at);
        pos += got;
    }
    free(buf);
    if (rc == 0) *out = hs_final(&s);
    return rc;
}

/* Sources --------------------------------------------------------------------------------- */

static int fingerprint_file(void *ctx, const lh_list_info *info, FILE *f, char *err, size_t errlen)
{
    uint64_t *h = ctx;
    uint32_t settings[3] = {info->allow, (uint32_t)info->format, (uint32_t)(info->subdomains + 1)};
    *h = hash_bytes((const uint8_t *)info->path, strlen(info->path), *h);
    *h = hash_bytes((const uint8_t *)settings, sizeof settings, *h);
    struct stat st;
    int fd = fileno(f); /* -1 for the built-in list */
    if (fd >= 0 && fstat(fd, &st) == 0) {
        int64_t meta[3] = {st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
        *h = hash_bytes((const uint8_t *)meta, sizeof meta, *h);
    }
    static uint8_t buf[1 << 16]; /* one reader at a time: the policy build */
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        *h = hash_bytes(buf, n, *h);
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", info->path, strerror(errno));
        return -1;
    }
    return 0;
}

int lh_snapshot_sources(const lh_config *cfg, uint64_t *out, char *err, size_t errlen)
{
    uint64_t h = hash_bytes((const uint8_t *)"sources", 7, LH_SNAPSHOT_FORMAT);
    if (lh_blockset_each_file(cfg, fingerprint_file, &h, err, errlen) != 0) return -1;
    *out = h;
    return 0;
}

/* Reading ---------------------------------------------------------------------------------- */

/* A bounded reader over one section. */
typedef struct rd {
    const uint8_t *p, *end;
} rd;

static bool take(rd *r, void *out, size_t n)
{
    if ((size_t)(r->end - r->p) < n) return false;
    memcpy(out, r->p, n);
    r->p += n;
    return true;
}

static char *take_str(rd *r, uint32_t n)
{
    if ((size_t)(r->end - r->p) < n || memchr(r->p, 0, n)) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    memcpy(s, r->p, n);
    s[n] = 0;
    r->p += n;
    return s;
}

static const char *read_lists(lh_blockset *b, rd r, uint32_t nlists)
{
    if (nlists > LH_NT_LISTS_MAX) return "too many lists";
    if (nlists && !(b->lists = calloc(nlists, sizeof *b->lists))) return "out of memory";
    for (uint32_t i = 0; i < nlists; i++) {
        uint32_t plen, c[7], elen;
        uint8_t set[4];
        if (!take(&r, &plen, 4) || !take(&r, set, 4) || !take(&r, c, sizeof c) ||
            !take(&r, &elen, 4))
            return "list table cut short";
        if (set[1] > LH_FMT_REGEX || set[2] > 2 || plen == 0) return "list settings out of range";
        lh_list_info *li = &b->lists[i];
        if (!(li->path = take_str(&r, plen))) return "bad list path";
        b->nlists = i + 1;
        li->allow = set[0] != 0;
        li->format = (enum lh_list_format)set[1];
        li->subdomains = (int)set[2] - 1;
        li->counts = (lh_list_counts){.lines = c[0],
                                      .rules = c[1],
                                      .ignored = c[2],
                                      .errors = c[3],
                                      .names = c[4],
                                      .globs = c[5],
                                      .regexes = c[6]};
        if (elen >= sizeof li->counts.first_error || (size_t)(r.end - r.p) < elen ||
            memchr(r.p, 0, elen))
            return "bad list error text";
        memcpy(li->counts.first_error, r.p, elen);
        li->counts.first_error[elen] = 0;
        r.p += elen;
    }
    return r.p == r.end ? NULL : "list table has trailing bytes";
}

static const char *read_patterns(lh_blockset *b, rd r, uint32_t n)
{
    if (n > (size_t)(r.end - r.p) / 16) return "pattern count out of range";
    if (n && !(b->patterns = calloc(n, sizeof *b->patterns))) return "out of memory";
    b->cap_patterns = n;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t f[4];
        if (!take(&r, f, sizeof f)) return "pattern table cut short";
        if ((f[0] >> LH_BS_LIST_SHIFT) >= b->nlists || (f[0] & 0xe0u) || f[2] > 1 ||
            f[3] > LH_NAME_MAX * 4)
            return "pattern out of range";
        lh_pattern_rule *p = &b->patterns[i];
        if (!(p->glob = take_str(&r, f[3]))) return "bad pattern text";
        b->npatterns = i + 1;
        p->value = f[0];
        p->line = f[1];
        p->is_regex = f[2] == 1;
        char err[128];
        if (p->is_regex && !(p->re = lh_regex_compile(p->glob, err, sizeof err)))
            return "a regular expression does not compile";
    }
    /* Up to 3 zero bytes align the directory that follows. */
    if (r.end - r.p >= 4) return "pattern table has trailing bytes";
    for (; r.p < r.end; r.p++)
        if (*r.p) return "pattern table has trailing bytes";
    return NULL;
}

/* The name tree's check over a mapped file, a stretch of buckets at a time: the pages read
 * are dropped from this process behind the check (MADV_DONTNEED on a read-only private file
 * mapping only unmaps them; they stay in the page cache and come back on the next touch), so
 * checking a new snapshot adds at most a stretch to the RSS of a daemon still serving the old
 * one. `fd_backed` false (a copy in anonymous memory, the fuzzer's): checked in one go. */
static const char *check_tree(const uint8_t *m, const hdr *h, size_t nlists, bool fd_backed)
{
    const uint8_t *recs = m + h->recs_off;
    const uint32_t *dir = (const uint32_t *)(m + h->dir_off);
    const char *why = lh_nametree_check_frame(recs, h->recs_len, dir, h->bits);
    if (why) return why;
    size_t nb = (size_t)1 << h->bits, seen = 0, named = 0, page = (size_t)sysconf(_SC_PAGESIZE);
    size_t step = fd_backed ? (size_t)1 << 16 : nb;
    uintptr_t mask = ~(uintptr_t)(page - 1);
    uintptr_t dir_done = (uintptr_t)dir & mask, recs_done = (uintptr_t)recs & mask;
    for (size_t b = 0; b < nb && !why; b += step) {
        size_t to = nb - b < step ? nb : b + step;
        why = lh_nametree_check_buckets(recs, h->recs_len, dir, b, to, nlists, &seen, &named);
        if (!fd_backed || why) continue;
        /* The directory below entry `to` and the records below bucket `to` are done with (the
         * page holding the next ones stays). */
        uintptr_t d = (uintptr_t)(dir + to) & mask, r = (uintptr_t)(recs + dir[to]) & mask;
        if (d > dir_done) madvise((void *)dir_done, d - dir_done, MADV_DONTNEED);
        if (r > recs_done) madvise((void *)recs_done, r - recs_done, MADV_DONTNEED);
        dir_done = d > dir_done ? d : dir_done;
        recs_done = r > recs_done ? r : recs_done;
    }
    if (!why && (seen != h->nodes || named != h->names)) why = "node counts do not match";
    return why;
}

/* Checks everything in a mapped snapshot and adopts it into the zeroed blockset. With `fd`
 * (>= 0, the mapped file) the checksum is read from the file and the mapping is left with
 * nothing resident: see checksum_fd and check_tree. */
static const char *adopt(lh_blockset *b, const uint8_t *m, size_t size, uint64_t fingerprint,
                         int fd)
{
    hdr h;
    if (size < HDR_SIZE) return "truncated (shorter than its header)";
    memcpy(&h, m, sizeof h);
    if (memcmp(h.magic, MAGIC, 8)) return "not a list snapshot";
    if (h.endian != ENDIAN_MARK) return "written on a machine of another byte order";
    if (h.format != LH_SNAPSHOT_FORMAT || h.hash_version != LH_NAME_HASH_VERSION ||
        h.hdr_size != HDR_SIZE)
        return "written by another version of loophole";
    if (h.file_size != size) return size < h.file_size ? "truncated" : "has trailing bytes";
    uint64_t sum = 0;
    if (fd < 0)
        sum = lh_snapshot_checksum(m, size);
    else if (checksum_fd(fd, size, &sum) != 0)
        return "cannot be read";
    if (sum != h.checksum) return "checksum mismatch (corrupt)";
    if (h.sources != fingerprint) return "the lists changed since it was written";
    if (h.bits < 1 || h.bits > 31) return "bucket count out of range";
    size_t dir_bytes = (((size_t)1 << h.bits) + 1) * 4;
    if (h.lists_off < HDR_SIZE || h.patterns_off < h.lists_off || h.dir_off < h.patterns_off ||
        h.dir_off % 4 || h.dir_off > size || size - h.dir_off < dir_bytes ||
        h.recs_off < h.dir_off + dir_bytes || h.recs_off > size || size - h.recs_off < LH_NT_PAD ||
        h.recs_len != size - h.recs_off - LH_NT_PAD || h.nodes > h.recs_len || h.names > h.nodes)
        return "sections out of place";
    const char *why = read_lists(b, (rd){m + h.lists_off, m + h.patterns_off}, h.nlists);
    if (!why) why = read_patterns(b, (rd){m + h.patterns_off, m + h.dir_off}, h.npatterns);
    if (!why) why = check_tree(m, &h, b->nlists, fd >= 0);
    if (fd >= 0) madvise((void *)m, size, MADV_DONTNEED); /* the rest of what was read */
    if (why) return why;
    lh_nametree_adopt(&b->names, m + h.recs_off, h.recs_len, (const uint32_t *)(m + h.dir_off),
                      h.bits, h.nodes, h.names);
    return NULL;
}

static int adopt_map(lh_blockset *b, void *map, size_t size, uint64_t fingerprint, int fd,
                     char *why, size_t whylen)
{
    memset(b, 0, sizeof *b);
    const char *r = adopt(b, map, size, fingerprint, fd);
    if (r) {
        snprintf(why, whylen, "%s", r);
        lh_blockset_free(b); /* what was read so far; the mapping is not its yet */
        munmap(map, size);
        memset(b, 0, sizeof *b);
        return -1;
    }
    b->map = map;
    b->map_len = size;
    return 0;
}

/* lh_snapshot_load on an open file. */
static int load_fd(lh_blockset *b, int fd, uint64_t fingerprint, bool lean, char *why,
                   size_t whylen)
{
    memset(b, 0, sizeof *b);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file");
        return -1;
    }
    if ((size_t)st.st_size < HDR_SIZE) {
        snprintf(why, whylen, "truncated (shorter than its header)");
        return -1;
    }
    /* Private and read-only: pages come from the page cache, shared with every loop (and with
     * other processes mapping the same file), and a file replaced on disk stays intact here. */
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        snprintf(why, whylen, "cannot map it: %s", strerror(errno));
        return -1;
    }
    /* Lean: checked without keeping its pages (another tree is resident, see adopt). Else
     * checked through the mapping, which leaves it resident for the first lookups. */
    return adopt_map(b, map, (size_t)st.st_size, fingerprint, lean ? fd : -1, why, whylen);
}

int lh_snapshot_load(lh_blockset *b, const char *path, uint64_t fingerprint, bool lean, char *why,
                     size_t whylen)
{
    memset(b, 0, sizeof *b);
    /* Not through a symlink, and never blocking on a FIFO someone put there (load_fd wants a
     * regular file): the state directory is the unprivileged user's, the start-up runs as
     * root. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, whylen, "%s", errno == ENOENT ? "none yet" : strerror(errno));
        return -1;
    }
    int rc = load_fd(b, fd, fingerprint, lean, why, whylen);
    close(fd);
    return rc;
}

int lh_snapshot_load_bytes(lh_blockset *b, const uint8_t *data, size_t len, uint64_t fingerprint,
                           char *why, size_t whylen)
{
    memset(b, 0, sizeof *b);
    if (len < HDR_SIZE) {
        snprintf(why, whylen, "truncated (shorter than its header)");
        return -1;
    }
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    memcpy(map, data, len);
    mprotect(map, len, PROT_READ);
    return adopt_map(b, map, len, fingerprint, -1, why, whylen);
}

void lh_snapshot_populate(const lh_blockset *b)
{
    if (!b->map) return;
#ifdef MADV_POPULATE_READ
    if (madvise(b->map, b->map_len, MADV_POPULATE_READ) == 0) return;
#endif
    /* Older kernels: a read per page. */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const volatile uint8_t *p = b->map;
    for (size_t i = 0; i < b->map_len; i += page)
        (void)p[i];
}

/* Writing ---------------------------------------------------------------------------------- */

static void put(FILE *f, const void *p, size_t n)
{
    if (n) fwrite(p, 1, n, f);
}

static void put_u32(FILE *f, uint32_t v)
{
    put(f, &v, 4);
}

static int pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
    const uint8_t *c = p;
    while (n) {
        ssize_t r = pwrite(fd, c, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r < 0 ? errno : ENOSPC;
        c += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static const char *errno_text(int e)
{
    return e == ENOSPC ? "no space left on the device" : strerror(e);
}

/* Writes the snapshot of `b` to the empty file `fd` (named `name` in messages): its name tree
 * is either frozen in b or sealed in `sp`, streamed from its temporary file. Returns 0, or -1
 * with err. */
static int write_snapshot(const lh_blockset *b, lh_spill *sp, int fd, const char *name,
                          uint64_t fingerprint, char *err, size_t errlen)
{
    const lh_nametree *t = &b->names;
    const lh_spill_tree *st = sp ? lh_spill_tree_of(sp) : NULL;
    if (!sp && !t->frozen) {
        snprintf(err, errlen, "the lists are not compiled");
        return -1;
    }
    hdr h = {.format = LH_SNAPSHOT_FORMAT,
             .hash_version = LH_NAME_HASH_VERSION,
             .endian = ENDIAN_MARK,
             .hdr_size = HDR_SIZE,
             .sources = fingerprint,
             .nodes = sp ? st->nodes : t->nodes,
             .names = sp ? st->names : t->names,
             .bits = sp ? st->bits : t->bits,
             .recs_len = sp ? st->recs_len : t->recs_len,
             .nlists = (uint32_t)b->nlists,
             .npatterns = (uint32_t)b->npatterns};
    memcpy(h.magic, MAGIC, 8);
    /* The small sections (header room, lists, patterns) are put together in memory. */
    char *mem = NULL;
    size_t memlen = 0;
    FILE *f = open_memstream(&mem, &memlen);
    if (!f) {
        snprintf(err, errlen, "out of memory writing %s", name);
        return -1;
    }
    uint8_t head[HDR_SIZE] = {0};
    put(f, head, HDR_SIZE);
    h.lists_off = HDR_SIZE;
    for (size_t i = 0; i < b->nlists; i++) {
        const lh_list_info *li = &b->lists[i];
        const lh_list_counts *c = &li->counts;
        uint32_t elen = (uint32_t)strnlen(c->first_error, sizeof c->first_error - 1);
        uint8_t set[4] = {li->allow, (uint8_t)li->format, (uint8_t)(li->subdomains + 1), 0};
        uint32_t counts[7] = {c->lines, c->rules, c->ignored, c->errors,
                              c->names, c->globs, c->regexes};
        put_u32(f, (uint32_t)strlen(li->path));
        put(f, set, 4);
        put(f, counts, sizeof counts);
        put_u32(f, elen);
        put(f, li->path, strlen(li->path));
        put(f, c->first_error, elen);
    }
    h.patterns_off = (uint64_t)ftell(f);
    for (size_t i = 0; i < b->npatterns; i++) {
        const lh_pattern_rule *p = &b->patterns[i];
        uint32_t fields[4] = {p->value, p->line, p->is_regex, (uint32_t)strlen(p->glob)};
        put(f, fields, sizeof fields);
        put(f, p->glob, fields[3]);
    }
    long pos = ftell(f);
    put(f, head, (size_t)((4 - pos % 4) % 4)); /* the directory is read in place: aligned */
    bool ok = fflush(f) == 0 && !ferror(f);
    fclose(f);
    if (!ok) {
        free(mem);
        snprintf(err, errlen, "out of memory writing %s", name);
        return -1;
    }
    h.dir_off = memlen;
    h.recs_off = h.dir_off + (((uint64_t)1 << h.bits) + 1) * 4;
    h.file_size = h.recs_off + h.recs_len + LH_NT_PAD;
    memcpy(mem, &h, sizeof h);
    int e = pwrite_all(fd, mem, memlen, 0);
    free(mem);
    if (!e && !sp) e = pwrite_all(fd, t->dir, (size_t)(h.recs_off - h.dir_off), h.dir_off);
    if (!e && !sp) e = pwrite_all(fd, t->recs, t->recs_len, h.recs_off);
    if (!e && sp && lh_spill_write(sp, fd, h.dir_off, h.recs_off) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", name, lh_spill_error(sp));
        return -1;
    }
    uint8_t pad[LH_NT_PAD] = {0};
    if (!e) e = pwrite_all(fd, pad, LH_NT_PAD, h.recs_off + h.recs_len);
    /* Summed from the file as written (read back through a small buffer, not mapped). */
    if (!e) e = checksum_fd(fd, h.file_size, &h.checksum);
    if (!e) e = pwrite_all(fd, &h.checksum, 8, LH_SNAPSHOT_CHECKSUM_OFF);
    if (e) {
        snprintf(err, errlen, "cannot write %s: %s", name, errno_text(e));
        return -1;
    }
    /* No fsync: a snapshot cut short by a crash fails its size or checksum check at the next
     * start and is ignored; waiting for the disk here would only delay the first answers. */
    return 0;
}

/* The temporary name a snapshot is written under before it is renamed into place. */
static int tmp_name(char *tmp, size_t n, const char *path, char *err, size_t errlen)
{
    if ((size_t)snprintf(tmp, n, "%s.tmp.%d", path, (int)getpid()) < n) return 0;
    snprintf(err, errlen, "%.200s...: path too long", path);
    return -1;
}

/* The file a snapshot is written to before it takes the name `path`: an unnamed file in the
 * state directory (O_TMPFILE), so that a build cut short (a crash, SIGKILL) leaves nothing
 * behind, and so that nothing found in the directory is opened: the directory belongs to the
 * unprivileged user while the start-up build runs as root. Where the filesystem has no
 * O_TMPFILE, a new file at the temporary name `tmp` (*named), never one found there (a
 * symlink or a file that user left: unlinked, then O_EXCL | O_NOFOLLOW, as lh_overlay_save). */
static int open_tmp(const char *dir, const char *tmp, bool *named)
{
    *named = false;
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)) return fd;
    *named = true;
    if (unlink(tmp) != 0 && errno != ENOENT) return -1;
    return open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
}

/* Gives the written file `fd` the name `path` (through `tmp` for an unnamed one: linked there,
 * then renamed over `path`, which replaces the old snapshot atomically). Returns 0, or an
 * errno with nothing left at `tmp`. */
static int publish_tmp(int fd, bool named, const char *tmp, const char *path)
{
    if (!named) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        if (unlink(tmp) != 0 && errno != ENOENT) return errno;
        if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) != 0) return errno;
    }
    if (rename(tmp, path) == 0) return 0;
    int e = errno;
    unlink(tmp);
    return e;
}

/* The folder of `path` (the state directory) into `dir`. */
static void dir_of(char *dir, size_t n, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, n, ".");
    else
        snprintf(dir, n, "%.*s", slash == path ? 1 : (int)(slash - path), path);
}

int lh_snapshot_save(const lh_blockset *b, const char *path, uint64_t fingerprint, char *err,
                     size_t errlen)
{
    char tmp[4200], dir[4200];
    if (tmp_name(tmp, sizeof tmp, path, err, errlen) != 0) return -1;
    dir_of(dir, sizeof dir, path);
    bool named;
    int fd = open_tmp(dir, tmp, &named);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", named ? tmp : dir, strerror(errno));
        return -1;
    }
    int rc = write_snapshot(b, NULL, fd, tmp, fingerprint, err, errlen);
    int e = rc == 0 ? publish_tmp(fd, named, tmp, path) : 0;
    if (e) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(e));
        rc = -1;
    }
    if (close(fd) != 0 && rc == 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc != 0 && named && !e) unlink(tmp);
    return rc;
}

/* The policy build ------------------------------------------------------------------------- */

/* The folder a build on disk uses without a state directory. */
static const char *tmp_dir(void)
{
    const char *d = getenv("TMPDIR");
    return d && *d ? d : "/tmp";
}

/* Builds the lists' name tree on disk (spill.h) into a snapshot file, and maps it: the
 * state directory's snapshot (`path`, written under a temporary name and renamed), or with
 * no state directory an unnamed temporary file in $TMPDIR that lives as long as its mapping.
 * Returns 0, -1 with err for an error in the lists (as the in-memory parse would), or 1 when
 * the disk cannot be used (said in a log line; the caller builds in memory instead). */
static int build_on_disk(lh_blockset *b, const lh_config *cfg, const char *path, uint64_t fp,
                         bool lean, lh_parse_fn parse, void *ctx, char *err, size_t errlen)
{
    const char *dir = path ? cfg->state_dir : tmp_dir();
    char why[LH_ERR_MAX], tmp[4200] = "";
    lh_spill *sp = NULL;
    int fd = -1, rc = 1;
    bool named = false;
    if (path && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(why, sizeof why, "cannot create %s: %s", dir, strerror(errno));
        rc = 3;
        goto out;
    }
    /* A folder in memory (tmpfs, ramfs: /tmp on many systems) would hold the runs and the
     * new tree in RAM, more than the in-memory build holds: no gain, so no build there. */
    struct statfs sfs;
    if (statfs(dir, &sfs) == 0 && (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC)) {
        lh_info("lists: %s is in memory (tmpfs): the name tree is built in memory", dir);
        rc = 2;
        goto out;
    }
    if (!(sp = lh_spill_new(dir, 0, why, sizeof why))) {
        rc = 3; /* the folder refuses the file: as with the snapshot before, an info line */
        goto out;
    }
    memset(b, 0, sizeof *b);
    if (parse(ctx, sp, err, errlen) != 0) {
        if (!lh_spill_error(sp)[0]) {
            rc = -1; /* the lists' own error */
            goto out;
        }
        snprintf(why, sizeof why, "%s (folder %s)", lh_spill_error(sp), dir);
        goto out;
    }
    if (lh_spill_seal(sp) != 0) {
        snprintf(why, sizeof why, "%s (folder %s)", lh_spill_error(sp), dir);
        goto out;
    }
    if (path) {
        if (tmp_name(tmp, sizeof tmp, path, why, sizeof why) != 0) {
            tmp[0] = 0;
            goto out;
        }
        fd = open_tmp(dir, tmp, &named);
        if (!named) tmp[0] = 0; /* nothing there to remove on the way out */
    } else {
        fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
        snprintf(why, sizeof why, "cannot create %s: %s", path && named ? tmp : dir,
                 strerror(errno));
        tmp[0] = 0;
        goto out;
    }
    if (write_snapshot(b, sp, fd, path ? path : "the snapshot", fp, why, sizeof why) != 0) goto out;
    size_t nlists = b->nlists;
    lh_spill_free(sp); /* its file and its parent table go before the tree is mapped */
    sp = NULL;
    lh_blockset_free(b); /* the lists and patterns are read back from the file */
    char bad[128];
    if (load_fd(b, fd, fp, lean, bad, sizeof bad) != 0) {
        snprintf(why, sizeof why, "the snapshot just written does not check: %s", bad);
        goto out;
    }
    if (path) {
        if (!named) tmp_name(tmp, sizeof tmp, path, why, sizeof why);
        int e = publish_tmp(fd, named, tmp, path);
        if (e)
            lh_info("lists: no snapshot kept: cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    tmp[0] = 0;
    if (path)
        lh_info("lists: snapshot of %zu names written to %s (built on disk)", b->names.names, path);
    else
        lh_info("lists: %zu names in %zu list(s) built on disk in a temporary file in %s",
                b->names.names, nlists, dir);
    rc = 0;
out:
    if (rc == 2) {
        rc = 1;
    } else if (rc == 3) {
        lh_info("lists: cannot build the name tree on disk (%s); building it in memory", why);
        rc = 1;
    } else if (rc == 1) {
        lh_warn("lists: cannot build the name tree on disk (%s); building it in memory", why);
        lh_blockset_free(b);
    }
    if (tmp[0]) unlink(tmp);
    if (fd >= 0) close(fd);
    lh_spill_free(sp);
    return rc;
}

int lh_snapshot_load_lists(lh_blockset *b, const lh_config *cfg, size_t expected_names, bool lean,
                           lh_parse_fn parse, void *ctx, char *err, size_t errlen)
{
    char path[4096], why[LH_ERR_MAX];
    uint64_t fp = 0;
    bool use = cfg->state_dir && (size_t)snprintf(path, sizeof path, "%s/%s", cfg->state_dir,
                                                  LH_SNAPSHOT_FILE) < sizeof path;
    /* The fingerprint is taken before the parse: a list that changes meanwhile makes the
     * snapshot stale rather than wrong. An unreadable source is reported by the parse. */
    if (use && lh_snapshot_sources(cfg, &fp, why, sizeof why) != 0) use = false;
    if (use) {
        if (lh_snapshot_load(b, path, fp, lean, why, sizeof why) == 0) {
            lh_info("lists: %zu names in %zu list(s) mapped from %s", b->names.names, b->nlists,
                    path);
            return 0;
        }
        if (!strcmp(why, "none yet"))
            lh_debug("lists: no snapshot at %s yet", path);
        else
            lh_info("lists: ignoring the snapshot %s: %s; parsing the lists", path, why);
    }
    /* Big lists are built on disk: what a reload holds besides the policy it replaces stays
     * small (spill.h). Small ones parse in milliseconds in memory. */
    if (expected_names >= LH_SNAPSHOT_MIN_NAMES && (use || !cfg->state_dir)) {
        int r = build_on_disk(b, cfg, use ? path : NULL, fp, lean, parse, ctx, err, errlen);
        if (r <= 0) return r;
    }
    if (parse(ctx, NULL, err, errlen) != 0) return -1;
    if (!use || b->names.names < LH_SNAPSHOT_MIN_NAMES) return 0;
    if (mkdir(cfg->state_dir, 0755) != 0 && errno != EEXIST)
        lh_info("lists: no snapshot written: cannot create %s: %s", cfg->state_dir,
                strerror(errno));
    else if (lh_snapshot_save(b, path, fp, why, sizeof why) != 0)
        lh_info("lists: no snapshot written: %s", why);
    else
        lh_info("lists: snapshot of %zu names written to %s", b->names.names, path);
    return 0;
}
