/* spill.c - see spill.h.
 *
 * Node record, in the run buffer and in the temporary file (native byte order):
 *   u64 hash     the suffix hash (lh_name_hashes)
 *   u64 parent   the parent suffix's hash (LH_NAME_HASH_SEED under the root)
 *   u8  bits     rule bits, 0 for an interior node
 *   u8  flags    REC_PARENT: some node has this one as its parent
 *   u16 list     first list with rule bits for it (with bits only)
 *   u8  len      label length
 *   label bytes
 * Records sort by (hash, parent, len, label): equal ones are the same node. */
#include "loophole/spill.h"
#include "loophole/nameset.h"
#include "loophole/nametree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define REC_HDR 21u
#define REC_MAX (REC_HDR + 63u)
#define REC_PARENT 0x01u
#define IO_BYTES (64u * 1024u) /* a read or write buffer */
#define CACHE_SLOTS 4096u      /* recently written parent records, to skip writing them again */

typedef struct cached {
    uint64_t hash, parent;
    uint8_t len, label[63];
} cached;

/* A buffered writer at a file position. */
typedef struct wbuf {
    int fd;
    uint64_t pos;
    size_t len;
    uint8_t buf[IO_BYTES];
} wbuf;

/* A buffered reader of one stretch of the file [pos, end). */
typedef struct cursor {
    uint64_t pos, end;
    size_t at, have;
    uint8_t *buf; /* IO_BYTES */
} cursor;

typedef struct run {
    uint64_t off, len;
} run;

struct lh_spill {
    int fd;
    uint64_t file_end; /* bytes written so far */
    /* The run being filled: records, and their offsets to sort (mapped: freed at once). */
    uint8_t *buf;
    size_t len, cap;
    uint32_t *idx, *tmp;
    size_t n, idx_cap;
    uint32_t *count; /* 65537: a counting sort by the hash's top 16 bits */
    cached *cache;
    run *runs;
    size_t nruns, runs_cap;
    /* After the seal: the parents' places. */
    uint64_t *par_hash;
    uint32_t *par_off, *par_dir; /* par_dir: 65537 first indices by the hash's top 16 bits */
    size_t npar, par_cap;
    lh_spill_tree tree;
    bool sealed, collided;
    char err[256];
};

static inline uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint16_t rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static int fail(lh_spill *s, const char *what, int e)
{
    if (e == ENOSPC)
        snprintf(s->err, sizeof s->err, "%s: no space left on the device", what);
    else if (e)
        snprintf(s->err, sizeof s->err, "%s: %s", what, strerror(e));
    else
        snprintf(s->err, sizeof s->err, "%s", what);
    return -1;
}

static void *map_anon(size_t n)
{
    void *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

static void unmap(void *p, size_t n)
{
    if (p) munmap(p, n);
}

/* The run buffer and its index: mapped, not malloc'd, so that the seal hands them back. */
static void run_buffers_free(lh_spill *s)
{
    unmap(s->buf, s->cap);
    unmap(s->idx, s->idx_cap * 4);
    unmap(s->tmp, s->idx_cap * 4);
    free(s->count);
    free(s->cache);
    s->buf = NULL;
    s->idx = s->tmp = s->count = NULL;
    s->cache = NULL;
}

lh_spill *lh_spill_new(const char *dir, size_t run_bytes, char *err, size_t errlen)
{
    lh_spill *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (s->fd < 0) {
        snprintf(err, errlen, "cannot make a temporary file in %s: %s", dir, strerror(errno));
        free(s);
        return NULL;
    }
    s->cap = run_bytes ? run_bytes : LH_SPILL_RUN_BYTES;
    if (s->cap < 4096) s->cap = 4096;
    s->idx_cap = s->cap / (REC_HDR + 1);
    s->buf = map_anon(s->cap);
    s->idx = map_anon(s->idx_cap * 4);
    s->tmp = map_anon(s->idx_cap * 4);
    s->count = malloc(65537 * sizeof *s->count);
    s->cache = calloc(CACHE_SLOTS, sizeof *s->cache);
    if (!s->buf || !s->idx || !s->tmp || !s->count || !s->cache) {
        snprintf(err, errlen, "out of memory");
        lh_spill_free(s);
        return NULL;
    }
    return s;
}

void lh_spill_free(lh_spill *s)
{
    if (!s) return;
    run_buffers_free(s);
    if (s->fd >= 0) close(s->fd);
    free(s->runs);
    free(s->par_hash);
    free(s->par_off);
    free(s->par_dir);
    free(s);
}

const char *lh_spill_error(const lh_spill *s)
{
    return s->err;
}

bool lh_spill_collided(const lh_spill *s)
{
    return s->collided;
}

int lh_spill_fd(const lh_spill *s)
{
    return s->fd;
}

const lh_spill_tree *lh_spill_tree_of(const lh_spill *s)
{
    return &s->tree;
}

/* Writing ---------------------------------------------------------------------------------- */

static int wflush(lh_spill *s, wbuf *w)
{
    size_t done = 0;
    while (done < w->len) {
        ssize_t r = pwrite(w->fd, w->buf + done, w->len - done, (off_t)(w->pos + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return fail(s, w->fd == s->fd ? "writing the temporary file" : "writing the name tree",
                        r < 0 ? errno : ENOSPC);
        done += (size_t)r;
    }
    w->pos += w->len;
    w->len = 0;
    return 0;
}

static int wput(lh_spill *s, wbuf *w, const void *p, size_t n)
{
    if (w->len + n > sizeof w->buf && wflush(s, w) != 0) return -1;
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return 0;
}

/* Reading ---------------------------------------------------------------------------------- */

/* Makes a whole record available at c->buf + c->at. Returns 1, 0 at the stretch's end, -1 on
 * a read error or a stretch cut short (or ending inside a record). */
static int cfill(lh_spill *s, cursor *c)
{
    size_t left = c->have - c->at;
    if (left >= REC_HDR && left >= REC_HDR + c->buf[c->at + 20]) return 1;
    if (c->pos < c->end) {
        memmove(c->buf, c->buf + c->at, left);
        c->at = 0;
        c->have = left;
        while (c->have < IO_BYTES && c->pos < c->end) {
            size_t want = IO_BYTES - c->have;
            if (want > c->end - c->pos) want = (size_t)(c->end - c->pos);
            ssize_t r = pread(s->fd, c->buf + c->have, want, (off_t)c->pos);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) return fail(s, "reading the temporary file", errno);
            if (r == 0) return fail(s, "the temporary file is shorter than what was written", 0);
            c->have += (size_t)r;
            c->pos += (uint64_t)r;
        }
        left = c->have;
    }
    if (left == 0) return 0;
    if (left < REC_HDR || c->buf[c->at + 20] > 63 || left < REC_HDR + c->buf[c->at + 20])
        return fail(s, "the temporary file holds a broken record", 0);
    return 1;
}

static int copen(lh_spill *s, cursor *c, uint64_t off, uint64_t len)
{
    memset(c, 0, sizeof *c);
    c->pos = off;
    c->end = off + len;
    /* 8 bytes of slack: lh_label_hash reads whole words past a label. */
    if (!(c->buf = calloc(1, IO_BYTES + 8))) return fail(s, "out of memory", 0);
    return cfill(s, c);
}

/* Records ----------------------------------------------------------------------------------- */

static inline size_t rec_size(const uint8_t *r)
{
    return REC_HDR + r[20];
}

/* Orders records by (hash, parent, len, label); 0: the same node. */
static int rec_cmp(const uint8_t *a, const uint8_t *b)
{
    uint64_t x = rd64(a), y = rd64(b);
    if (x != y) return x < y ? -1 : 1;
    x = rd64(a + 8), y = rd64(b + 8);
    if (x != y) return x < y ? -1 : 1;
    if (a[20] != b[20]) return a[20] < b[20] ? -1 : 1;
    return memcmp(a + REC_HDR, b + REC_HDR, a[20]);
}

/* rec_cmp for qsort_r over offsets into the run buffer `buf`. */
static int rec_cmp_at(const void *a, const void *b, void *buf)
{
    return rec_cmp((const uint8_t *)buf + *(const uint32_t *)a,
                   (const uint8_t *)buf + *(const uint32_t *)b);
}

/* Folds record `r` (the same node) into `acc`: the bits add up, the first list stays. */
static void rec_merge(uint8_t *acc, const uint8_t *r)
{
    if (r[16]) {
        uint16_t l = rd16(r + 18);
        if (!acc[16] || l < rd16(acc + 18)) memcpy(acc + 18, &l, 2);
    }
    acc[16] |= r[16];
    acc[17] |= r[17];
}

/* Sorts the run buffer, merges its duplicates and writes it to the file as one run. */
static int flush_run(lh_spill *s)
{
    if (!s->n) return 0;
    /* Counting sort by the hash's top 16 bits, then each of the 65,536 groups sorted: by
     * insertion when it is small (a few records each for honest names, whose hashes are
     * uniform), by qsort when a list was made to crowd one group (quadratic otherwise). */
    memset(s->count, 0, 65537 * sizeof *s->count);
    for (size_t i = 0; i < s->n; i++)
        s->count[(rd64(s->buf + s->idx[i]) >> 48) + 1]++;
    for (size_t g = 0; g < 65536; g++)
        s->count[g + 1] += s->count[g];
    for (size_t i = 0; i < s->n; i++)
        s->tmp[s->count[rd64(s->buf + s->idx[i]) >> 48]++] = s->idx[i];
    /* count[g] is now the end of group g, and so the start of group g + 1 */
    for (size_t g = 0, start = 0; g < 65536; start = s->count[g++]) {
        size_t end = s->count[g];
        if (end - start > 16) {
            qsort_r(s->tmp + start, end - start, sizeof *s->tmp, rec_cmp_at, s->buf);
            continue;
        }
        for (size_t i = start + 1; i < end; i++) {
            uint32_t v = s->tmp[i];
            size_t j = i;
            while (j > start && rec_cmp(s->buf + s->tmp[j - 1], s->buf + v) > 0) {
                s->tmp[j] = s->tmp[j - 1];
                j--;
            }
            s->tmp[j] = v;
        }
    }
    wbuf *w = malloc(sizeof *w);
    if (!w) return fail(s, "out of memory", 0);
    w->fd = s->fd;
    w->pos = s->file_end;
    w->len = 0;
    int rc = 0;
    for (size_t i = 0; i < s->n && rc == 0;) {
        uint8_t acc[REC_MAX];
        memcpy(acc, s->buf + s->tmp[i], rec_size(s->buf + s->tmp[i]));
        for (i++; i < s->n && rec_cmp(acc, s->buf + s->tmp[i]) == 0; i++)
            rec_merge(acc, s->buf + s->tmp[i]);
        rc = wput(s, w, acc, rec_size(acc));
    }
    if (rc == 0) rc = wflush(s, w);
    uint64_t end = w->pos;
    free(w);
    if (rc != 0) return -1;
    if (s->nruns == s->runs_cap) {
        size_t cap = s->runs_cap ? s->runs_cap * 2 : 16;
        run *r = realloc(s->runs, cap * sizeof *r);
        if (!r) return fail(s, "out of memory", 0);
        s->runs = r;
        s->runs_cap = cap;
    }
    s->runs[s->nruns++] = (run){s->file_end, end - s->file_end};
    s->file_end = end;
    s->len = s->n = 0;
    return 0;
}

static int emit(lh_spill *s, uint64_t hash, uint64_t parent, uint8_t bits, uint8_t flags,
                uint16_t list, const uint8_t *lab)
{
    size_t need = REC_HDR + lab[0];
    if ((s->len + need > s->cap || s->n == s->idx_cap) && flush_run(s) != 0) return -1;
    uint8_t *r = s->buf + s->len;
    memcpy(r, &hash, 8);
    memcpy(r + 8, &parent, 8);
    r[16] = bits;
    r[17] = flags;
    memcpy(r + 18, &list, 2);
    memcpy(r + 20, lab, 1u + lab[0]);
    s->idx[s->n++] = (uint32_t)s->len;
    s->len += need;
    return 0;
}

int lh_spill_add(lh_spill *s, const lh_name *n, const uint64_t *h, uint8_t bits, uint16_t list)
{
    if (s->sealed) return fail(s, "the build is sealed", 0);
    if (n->nlabels == 0) return 0; /* the root: no rule can name it */
    /* The parents, top down: most are shared by many names (the list's zones, a registered
     * domain's subdomains), so one written lately is not written again. */
    for (unsigned i = n->nlabels - 1; i > 0; i--) {
        const uint8_t *lab = n->wire + n->label_off[i];
        cached *c = &s->cache[h[i] & (CACHE_SLOTS - 1)];
        if (c->hash == h[i] && c->parent == h[i + 1] && c->len == lab[0] &&
            !memcmp(c->label, lab + 1, lab[0]))
            continue;
        if (emit(s, h[i], h[i + 1], 0, REC_PARENT, 0, lab) != 0) return -1;
        c->hash = h[i];
        c->parent = h[i + 1];
        c->len = lab[0];
        memcpy(c->label, lab + 1, lab[0]);
    }
    return emit(s, h[0], h[1], bits, 0, list, n->wire);
}

/* The k-way merge ---------------------------------------------------------------------------- */

typedef struct heap {
    cursor *c;
    size_t *at; /* cursor indices, a binary min-heap by their current record */
    size_t n;
} heap;

static inline const uint8_t *head(const cursor *c)
{
    return c->buf + c->at;
}

static void sift_down(heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < h->n && rec_cmp(head(&h->c[h->at[l]]), head(&h->c[h->at[m]])) < 0) m = l;
        if (l + 1 < h->n && rec_cmp(head(&h->c[h->at[l + 1]]), head(&h->c[h->at[m]])) < 0)
            m = l + 1;
        if (m == i) return;
        size_t t = h->at[i];
        h->at[i] = h->at[m];
        h->at[m] = t;
        i = m;
    }
}

/* The runs merged into one stream of unique nodes in hash order. Read twice (lh_spill_seal
 * counts and places the nodes, lh_spill_write writes them): a second merge costs less than
 * writing the merged stream to the file and reading it back, and the file never holds more
 * than the runs. */
typedef struct merger {
    heap h;
    uint8_t acc[REC_MAX]; /* the node being gathered from its records */
    bool have;
} merger;

static void merger_close(lh_spill *s, merger *m)
{
    for (size_t i = 0; m->h.c && i < s->nruns; i++)
        free(m->h.c[i].buf);
    free(m->h.c);
    free(m->h.at);
    memset(m, 0, sizeof *m);
}

static int merger_open(lh_spill *s, merger *m)
{
    memset(m, 0, sizeof *m);
    m->h.c = calloc(s->nruns + 1, sizeof *m->h.c);
    m->h.at = calloc(s->nruns + 1, sizeof *m->h.at);
    if (!m->h.c || !m->h.at) return fail(s, "out of memory", 0);
    for (size_t i = 0; i < s->nruns; i++) {
        int r = copen(s, &m->h.c[i], s->runs[i].off, s->runs[i].len);
        if (r < 0) return -1;
        if (r > 0) m->h.at[m->h.n++] = i;
    }
    for (size_t i = m->h.n; i-- > 0;)
        sift_down(&m->h, i);
    return 0;
}

/* The next unique node into `out`. Returns 1, 0 at the end, -1 on a damaged run. */
static int merger_next(lh_spill *s, merger *m, uint8_t out[REC_MAX])
{
    heap *h = &m->h;
    while (h->n) {
        cursor *c = &h->c[h->at[0]];
        const uint8_t *r = head(c);
        /* A record's hash is its label's below its parent's: a record damaged in the file
         * (zeroed, cut) does not pass. */
        if (lh_label_hash(rd64(r + 8), r + 20) != rd64(r))
            return fail(s, "the temporary file holds a damaged record", 0);
        bool done = false;
        if (m->have && rec_cmp(m->acc, r) == 0) {
            rec_merge(m->acc, r);
        } else {
            if (m->have) {
                memcpy(out, m->acc, rec_size(m->acc));
                done = true;
            }
            memcpy(m->acc, r, rec_size(r));
            m->have = true;
        }
        uint8_t last[REC_MAX];
        memcpy(last, r, rec_size(r));
        c->at += rec_size(r);
        int f = cfill(s, c);
        if (f < 0) return -1;
        if (f > 0 && rec_cmp(last, head(c)) >= 0) /* runs are written sorted and unique */
            return fail(s, "the temporary file holds a run out of order", 0);
        if (f == 0) h->at[0] = h->at[--h->n];
        sift_down(h, 0);
        if (done) return 1;
    }
    if (!m->have) return 0;
    memcpy(out, m->acc, rec_size(m->acc));
    m->have = false;
    return 1;
}

/* One unique node out of the merge: its place in the frozen records, and the parent table. */
static int take_node(lh_spill *s, const uint8_t *r, uint64_t *prev)
{
    uint64_t hash = rd64(r);
    if ((s->tree.nodes && hash == *prev) || hash == LH_NAME_HASH_SEED) {
        s->collided = true;
        return fail(s, "two names of the lists share a 64-bit hash", 0);
    }
    *prev = hash;
    if (r[17] & REC_PARENT) {
        if (s->npar == s->par_cap) {
            size_t cap = s->par_cap ? s->par_cap * 2 : 1024;
            uint64_t *ph = realloc(s->par_hash, cap * sizeof *ph);
            if (ph) s->par_hash = ph;
            uint32_t *po = ph ? realloc(s->par_off, cap * sizeof *po) : NULL;
            if (!po) return fail(s, "out of memory", 0);
            s->par_off = po;
            s->par_cap = cap;
        }
        s->par_hash[s->npar] = hash;
        s->par_off[s->npar++] = (uint32_t)s->tree.recs_len;
    }
    s->tree.nodes++;
    s->tree.names += r[16] != 0;
    s->tree.recs_len += LH_NT_HDR + r[20];
    if (s->tree.recs_len >= UINT32_MAX) return fail(s, "the lists are too big for one tree", 0);
    return 0;
}

int lh_spill_seal(lh_spill *s)
{
    if (s->sealed) return 0;
    if (flush_run(s) != 0) return -1;
    run_buffers_free(s); /* the merge needs none of it */
    s->sealed = true;
    merger m;
    int rc = -1, f;
    uint8_t rec[REC_MAX];
    uint64_t prev = 0;
    if (merger_open(s, &m) != 0) goto out;
    while ((f = merger_next(s, &m, rec)) > 0)
        if (take_node(s, rec, &prev) != 0) goto out;
    if (f < 0) goto out;
    /* Where each group of 65,536 (by the top 16 bits) starts in the parent table. */
    if (!(s->par_dir = calloc(65537, sizeof *s->par_dir))) {
        fail(s, "out of memory", 0);
        goto out;
    }
    for (size_t i = 0; i < s->npar; i++)
        s->par_dir[(s->par_hash[i] >> 48) + 1]++;
    for (size_t g = 0; g < 65536; g++)
        s->par_dir[g + 1] += s->par_dir[g];
    /* The bucket count lh_nametree_freeze chooses: 0.67 to 1.33 nodes a bucket. */
    unsigned bits = 1;
    while (bits < 31 && ((size_t)1 << bits) * 3 < s->tree.nodes * 2)
        bits++;
    s->tree.bits = bits;
    rc = 0;
out:
    merger_close(s, &m);
    return rc;
}

/* The frozen place + 1 of the node with hash `ph`, 0 under the root or when it is missing. */
static uint32_t parent_ref(const lh_spill *s, uint64_t ph)
{
    size_t lo = s->par_dir[ph >> 48], hi = s->par_dir[(ph >> 48) + 1];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->par_hash[mid] < ph)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->npar && s->par_hash[lo] == ph ? s->par_off[lo] + 1 : 0;
}

int lh_spill_write(lh_spill *s, int fd, uint64_t dir_off, uint64_t recs_off)
{
    if (!s->sealed || !s->par_dir) return fail(s, "the build is not sealed", 0);
    merger m;
    wbuf *dw = malloc(sizeof *dw), *rw = malloc(sizeof *rw);
    int rc = -1, f;
    if (merger_open(s, &m) != 0) goto out;
    if (!dw || !rw) {
        fail(s, "out of memory", 0);
        goto out;
    }
    *dw = (wbuf){.fd = fd, .pos = dir_off};
    *rw = (wbuf){.fd = fd, .pos = recs_off};
    unsigned shift = 64 - s->tree.bits;
    size_t nb = (size_t)1 << s->tree.bits, next = 0, nodes = 0;
    uint32_t off = 0;
    uint8_t r[REC_MAX];
    while ((f = merger_next(s, &m, r)) > 0) {
        uint64_t hash = rd64(r), ph = rd64(r + 8);
        /* Buckets up to this node's start here (the empty ones before it too). */
        for (size_t b = (size_t)(hash >> shift); next <= b; next++)
            if (wput(s, dw, &off, 4) != 0) goto out;
        uint32_t parent = 0;
        if (ph != LH_NAME_HASH_SEED && !(parent = parent_ref(s, ph))) {
            s->collided = true; /* a parent was told apart from its hash only by its label */
            fail(s, "a node's parent is missing", 0);
            goto out;
        }
        uint8_t rec[LH_NT_HDR + 63];
        memcpy(rec, &parent, 4);
        rec[4] = (uint8_t)hash;
        rec[5] = r[16];
        uint16_t list = r[16] ? rd16(r + 18) : 0;
        memcpy(rec + 6, &list, 2);
        rec[8] = r[20];
        memcpy(rec + LH_NT_HDR, r + REC_HDR, r[20]);
        if (wput(s, rw, rec, LH_NT_HDR + r[20]) != 0) goto out;
        off += LH_NT_HDR + r[20];
        nodes++;
    }
    if (f < 0) goto out;
    for (; next <= nb; next++)
        if (wput(s, dw, &off, 4) != 0) goto out;
    if (off != s->tree.recs_len || nodes != s->tree.nodes) {
        fail(s, "the temporary file changed between its two reads", 0);
        goto out;
    }
    if (wflush(s, dw) != 0 || wflush(s, rw) != 0) goto out;
    rc = 0;
out:
    merger_close(s, &m);
    free(dw);
    free(rw);
    return rc;
}
