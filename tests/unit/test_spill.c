/* test_spill.c - the name tree built on disk (spill.c) is the tree the in-memory build makes:
 * the same figures and, for every name, the same node, rule bits and first list; and a
 * temporary file that fails (cut short, a folder that cannot hold one) is reported, never
 * turned into a wrong tree. */
#include "unit.h"

#include "loophole/nameset.h"
#include "loophole/nametree.h"
#include "loophole/spill.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The rules: a list's zones shared by many names, names that are interior nodes of others,
 * the same name in several lists (the first list stays, the bits add up), deep names. Lists
 * are added in order, as the blockset adds them. */
#define NRULES 40000u

static void rule(unsigned i, char *text, size_t n, uint8_t *bits, uint16_t *list)
{
    if (i % 97 == 0)
        snprintf(text, n, "zone%u.example", i % 13); /* an interior node gets a rule */
    else if (i % 89 == 0)
        snprintf(text, n, "host%u.zone%u.example", i / 2, (i / 2) % 13); /* again */
    else if (i % 7 == 0)
        snprintf(text, n, "a.b.c.d%u.deep%u.test", i, i % 5);
    else
        snprintf(text, n, "host%u.zone%u.example", i, i % 13);
    *bits = (uint8_t)(1u << (i % 5));
    *list = (uint16_t)(i / 10000);
}

static int to_name(const char *text, lh_name *n, uint64_t *h)
{
    int r = lh_name_from_text(text, strlen(text), n);
    if (r == 0) lh_name_hashes(n, h);
    return r;
}

static uint32_t find(const lh_nametree *t, const char *text)
{
    lh_name n;
    uint64_t h[LH_LABELS_MAX];
    if (to_name(text, &n, h) != 0) return 0;
    uint32_t ref = 0;
    for (int i = (int)n.nlabels - 1; i >= 0; i--)
        if (!(ref = lh_nametree_child(t, ref, &n, (unsigned)i, h[i]))) return 0;
    return ref;
}

static lh_spill *spill_all(size_t run_bytes, unsigned nrules)
{
    char err[256];
    lh_spill *s = lh_spill_new("/tmp", run_bytes, err, sizeof err);
    CHECK(s != NULL);
    if (!s) return NULL;
    for (unsigned i = 0; i < nrules; i++) {
        char text[96];
        uint8_t bits;
        uint16_t list;
        lh_name n;
        uint64_t h[LH_LABELS_MAX];
        rule(i, text, sizeof text, &bits, &list);
        CHECK_EQ(to_name(text, &n, h), 0);
        CHECK_EQ(lh_spill_add(s, &n, h, bits, list), 0);
    }
    return s;
}

/* The same check both trees must pass for one name. */
static unsigned same_node(const lh_nametree *a, const lh_nametree *b, const char *text)
{
    uint32_t x = find(a, text), y = find(b, text);
    if (!x || !y) return !x && !y;
    return lh_nametree_bits(a, x) == lh_nametree_bits(b, y) &&
           lh_nametree_list(a, x) == lh_nametree_list(b, y);
}

/* Names made to share their hash's top 16 bits (the run's counting-sort group): a list can be
 * crafted so, and such a group is sorted by qsort rather than by insertion (quadratic). Both
 * builds must still agree on every one of them. */
enum { NCROWD = 24 };

static void test_crowded_group(void)
{
    static char names[NCROWD][32];
    unsigned found = 0;
    for (unsigned i = 0; found < NCROWD && i < 50000000; i++) {
        lh_name n;
        uint64_t h[LH_LABELS_MAX];
        snprintf(names[found], sizeof names[found], "c%u.crowd.test", i);
        if (to_name(names[found], &n, h) == 0 && h[0] >> 48 == 0xbeef) found++;
    }
    CHECK_EQ(found, NCROWD);
    lh_nametree mem;
    CHECK_EQ(lh_nametree_init(&mem, 16), 0);
    char err[256];
    lh_spill *s = lh_spill_new("/tmp", 0, err, sizeof err);
    CHECK(s != NULL);
    if (!s) return;
    for (unsigned i = 0; i < NCROWD; i++) {
        lh_name n;
        uint64_t h[LH_LABELS_MAX];
        to_name(names[i], &n, h);
        CHECK_EQ(lh_nametree_add(&mem, &n, h, 1, (uint16_t)(i % 4)), 0);
        CHECK_EQ(lh_spill_add(s, &n, h, 1, (uint16_t)(i % 4)), 0);
    }
    CHECK_EQ(lh_nametree_freeze(&mem), 0);
    CHECK_EQ(lh_spill_seal(s), 0);
    const lh_spill_tree *st = lh_spill_tree_of(s);
    CHECK_EQ(st->nodes, mem.nodes);
    FILE *f = tmpfile();
    size_t dir_bytes = (((size_t)1 << st->bits) + 1) * 4;
    CHECK_EQ(lh_spill_write(s, fileno(f), 0, dir_bytes), 0);
    uint8_t *blk = calloc(1, dir_bytes + st->recs_len + LH_NT_PAD);
    CHECK_EQ(pread(fileno(f), blk, dir_bytes + st->recs_len, 0),
             (ssize_t)(dir_bytes + st->recs_len));
    const char *why = lh_nametree_check(blk + dir_bytes, st->recs_len, (const uint32_t *)blk,
                                        st->bits, st->nodes, st->names, 4);
    if (why) fprintf(stderr, "crowded group: %s\n", why);
    CHECK(why == NULL);
    lh_nametree disk;
    lh_nametree_adopt(&disk, blk + dir_bytes, st->recs_len, (const uint32_t *)blk, st->bits,
                      st->nodes, st->names);
    for (unsigned i = 0; i < NCROWD; i++) {
        CHECK(find(&disk, names[i]) != 0);
        CHECK(same_node(&mem, &disk, names[i]));
    }
    fclose(f);
    free(blk);
    lh_spill_free(s);
    lh_nametree_free(&mem);
}

void test_spill(void)
{
    test_crowded_group();
    /* In memory, as the blockset builds it. */
    lh_nametree mem;
    CHECK_EQ(lh_nametree_init(&mem, 16), 0);
    for (unsigned i = 0; i < NRULES; i++) {
        char text[96];
        uint8_t bits;
        uint16_t list;
        lh_name n;
        uint64_t h[LH_LABELS_MAX];
        rule(i, text, sizeof text, &bits, &list);
        to_name(text, &n, h);
        CHECK_EQ(lh_nametree_add(&mem, &n, h, bits, list), 0);
    }
    CHECK_EQ(lh_nametree_freeze(&mem), 0);

    /* On disk, in runs of 16 KiB (about a hundred of them), into a file as a snapshot holds
     * it: the directory, then the records. */
    lh_spill *s = spill_all(16 * 1024, NRULES);
    if (!s) return;
    CHECK_EQ(lh_spill_seal(s), 0);
    const lh_spill_tree *st = lh_spill_tree_of(s);
    CHECK_EQ(st->nodes, mem.nodes);
    CHECK_EQ(st->names, mem.names);
    CHECK_EQ(st->recs_len, mem.recs_len);
    CHECK_EQ(st->bits, mem.bits);
    FILE *f = tmpfile();
    CHECK(f != NULL);
    size_t dir_bytes = (((size_t)1 << st->bits) + 1) * 4;
    CHECK_EQ(lh_spill_write(s, fileno(f), 0, dir_bytes), 0);
    uint8_t *blk = calloc(1, dir_bytes + st->recs_len + LH_NT_PAD);
    CHECK_EQ(pread(fileno(f), blk, dir_bytes + st->recs_len, 0),
             (ssize_t)(dir_bytes + st->recs_len));
    const uint32_t *dir = (const uint32_t *)blk;
    const uint8_t *recs = blk + dir_bytes;
    CHECK(lh_nametree_check(recs, st->recs_len, dir, st->bits, st->nodes, st->names, 4) == NULL);
    lh_nametree disk;
    lh_nametree_adopt(&disk, recs, st->recs_len, dir, st->bits, st->nodes, st->names);
    unsigned same = 0, total = 0;
    for (unsigned i = 0; i < NRULES; i++) {
        char text[96], up[104];
        uint8_t bits;
        uint16_t list;
        rule(i, text, sizeof text, &bits, &list);
        same += same_node(&mem, &disk, text);
        snprintf(up, sizeof up, "%s", strchr(text, '.') + 1); /* its parent */
        same += same_node(&mem, &disk, up);
        snprintf(up, sizeof up, "x.%s", text); /* below it: no node */
        same += same_node(&mem, &disk, up);
        total += 3;
    }
    CHECK_EQ(same, total);
    /* A name of the lists is found at all (the comparison is not between two empty trees). */
    CHECK(find(&disk, "host1.zone1.example") != 0);
    CHECK(lh_nametree_bits(&disk, find(&disk, "zone0.example")) != 0);
    CHECK_EQ(lh_nametree_bits(&disk, find(&disk, "deep1.test")), 0); /* interior only */
    CHECK(find(&disk, "deep1.test") != 0);
    fclose(f);
    free(blk);
    lh_spill_free(s);
    lh_nametree_free(&mem);

    /* A run file cut short is reported by the merge. */
    s = spill_all(16 * 1024, 5000);
    if (s) {
        off_t size = lseek(lh_spill_fd(s), 0, SEEK_END);
        CHECK(size > 0);
        CHECK_EQ(ftruncate(lh_spill_fd(s), size / 2), 0);
        CHECK_EQ(lh_spill_seal(s), -1);
        CHECK(lh_spill_error(s)[0] != 0);
        CHECK(!lh_spill_collided(s));
        lh_spill_free(s);
    }
    /* ... and one cut inside a record. */
    s = spill_all(16 * 1024, 5000);
    if (s) {
        off_t size = lseek(lh_spill_fd(s), 0, SEEK_END);
        CHECK_EQ(ftruncate(lh_spill_fd(s), size - 3), 0);
        CHECK_EQ(lh_spill_seal(s), -1);
        CHECK(lh_spill_error(s)[0] != 0);
        lh_spill_free(s);
    }
    /* A folder that cannot hold a temporary file. */
    char err[256] = "";
    CHECK(lh_spill_new("/nonexistent-loophole-dir", 0, err, sizeof err) == NULL);
    CHECK(strstr(err, "/nonexistent-loophole-dir") != NULL);
}
