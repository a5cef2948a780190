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

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
 * directory: such a one can also write the lists). Four independent lanes keep a core busy. */
static uint64_t hash_bytes(const uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t a = seed + P1, b = seed + P2, c = seed, d = seed - P1;
    size_t total = n;
    for (; n >= 32; p += 32, n -= 32) {
        a = rotl(a + rd64(p) * P2, 31) * P1;
        b = rotl(b + rd64(p + 8) * P2, 31) * P1;
        c = rotl(c + rd64(p + 16) * P2, 31) * P1;
        d = rotl(d + rd64(p + 24) * P2, 31) * P1;
    }
    uint64_t h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18) + total;
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

uint64_t lh_snapshot_checksum(const uint8_t *data, size_t len)
{
    if (len < LH_SNAPSHOT_CHECKSUM_OFF + 8) return 0;
    uint64_t h = hash_bytes(data, LH_SNAPSHOT_CHECKSUM_OFF, 0);
    return hash_bytes(data + LH_SNAPSHOT_CHECKSUM_OFF + 8, len - LH_SNAPSHOT_CHECKSUM_OFF - 8, h);
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

/* Checks everything in a mapped snapshot and adopts it into the zeroed blockset. */
static const char *adopt(lh_blockset *b, const uint8_t *m, size_t size, uint64_t fingerprint)
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
    if (lh_snapshot_checksum(m, size) != h.checksum) return "checksum mismatch (corrupt)";
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
    if (why) return why;
    const uint32_t *dir = (const uint32_t *)(m + h.dir_off);
    if ((why = lh_nametree_check(m + h.recs_off, h.recs_len, dir, h.bits, h.nodes, h.names,
                                 b->nlists)))
        return why;
    lh_nametree_adopt(&b->names, m + h.recs_off, h.recs_len, dir, h.bits, h.nodes, h.names);
    return NULL;
}

static int adopt_map(lh_blockset *b, void *map, size_t size, uint64_t fingerprint, char *why,
                     size_t whylen)
{
    memset(b, 0, sizeof *b);
    const char *r = adopt(b, map, size, fingerprint);
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

int lh_snapshot_load(lh_blockset *b, const char *path, uint64_t fingerprint, char *why,
                     size_t whylen)
{
    memset(b, 0, sizeof *b);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "%s", errno == ENOENT ? "none yet" : strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file");
        close(fd);
        return -1;
    }
    if ((size_t)st.st_size < HDR_SIZE) {
        snprintf(why, whylen, "truncated (shorter than its header)");
        close(fd);
        return -1;
    }
    /* Private and read-only: pages come from the page cache, shared with every loop (and with
     * other processes mapping the same file), and a file replaced on disk stays intact here. */
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(why, whylen, "cannot map it: %s", strerror(errno));
        return -1;
    }
    return adopt_map(b, map, (size_t)st.st_size, fingerprint, why, whylen);
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
    return adopt_map(b, map, len, fingerprint, why, whylen);
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

int lh_snapshot_save(const lh_blockset *b, const char *path, uint64_t fingerprint, char *err,
                     size_t errlen)
{
    const lh_nametree *t = &b->names;
    if (!t->frozen) {
        snprintf(err, errlen, "the lists are not compiled");
        return -1;
    }
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    FILE *f = fopen(tmp, "w+e");
    if (!f) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    hdr h = {.format = LH_SNAPSHOT_FORMAT,
             .hash_version = LH_NAME_HASH_VERSION,
             .endian = ENDIAN_MARK,
             .hdr_size = HDR_SIZE,
             .sources = fingerprint,
             .nodes = t->nodes,
             .names = t->names,
             .bits = t->bits,
             .nlists = (uint32_t)b->nlists,
             .npatterns = (uint32_t)b->npatterns};
    memcpy(h.magic, MAGIC, 8);
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
    h.dir_off = (uint64_t)ftell(f);
    put(f, t->dir, (((size_t)1 << t->bits) + 1) * 4);
    h.recs_off = (uint64_t)ftell(f);
    h.recs_len = t->recs_len;
    put(f, t->recs, t->recs_len);
    put(f, head, LH_NT_PAD);
    h.file_size = (uint64_t)ftell(f);
    memcpy(head, &h, sizeof h);
    int rc = -1;
    if (fflush(f) != 0 || ferror(f) || pwrite(fileno(f), head, HDR_SIZE, 0) != HDR_SIZE) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    void *m = mmap(NULL, h.file_size, PROT_READ, MAP_SHARED, fileno(f), 0);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "cannot map %s: %s", tmp, strerror(errno));
        goto out;
    }
    h.checksum = lh_snapshot_checksum(m, h.file_size);
    munmap(m, h.file_size);
    /* No fsync: a snapshot cut short by a crash fails its size or checksum check at the next
     * start and is ignored; waiting for the disk here would only delay the first answers. */
    if (pwrite(fileno(f), &h.checksum, 8, LH_SNAPSHOT_CHECKSUM_OFF) != 8) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fclose(f) != 0 && rc == 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        rc = -1;
    }
    if (rc != 0) unlink(tmp);
    return rc;
}

/* The policy build ------------------------------------------------------------------------- */

int lh_snapshot_load_lists(lh_blockset *b, const lh_config *cfg,
                           int (*parse)(void *ctx, char *err, size_t errlen), void *ctx, char *err,
                           size_t errlen)
{
    char path[4096], why[LH_ERR_MAX];
    uint64_t fp = 0;
    bool use = cfg->state_dir && (size_t)snprintf(path, sizeof path, "%s/%s", cfg->state_dir,
                                                  LH_SNAPSHOT_FILE) < sizeof path;
    /* The fingerprint is taken before the parse: a list that changes meanwhile makes the
     * snapshot stale rather than wrong. An unreadable source is reported by the parse. */
    if (use && lh_snapshot_sources(cfg, &fp, why, sizeof why) != 0) use = false;
    if (use) {
        if (lh_snapshot_load(b, path, fp, why, sizeof why) == 0) {
            lh_info("lists: %zu names in %zu list(s) mapped from %s", b->names.names, b->nlists,
                    path);
            return 0;
        }
        if (!strcmp(why, "none yet"))
            lh_debug("lists: no snapshot at %s yet", path);
        else
            lh_info("lists: ignoring the snapshot %s: %s; parsing the lists", path, why);
    }
    if (parse(ctx, err, errlen) != 0) return -1;
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
