/* test_nameset.c - insertion, growth, exact and suffix lookups. */
#include "unit.h"

#include "loophole/nameset.h"
#include "loophole/nametree.h"

#include <stdlib.h>

#include <stdio.h>

static int name(const char *text, lh_name *n, uint64_t *h)
{
    int r = lh_name_from_text(text, strlen(text), n);
    if (r == 0) lh_name_hashes(n, h);
    return r;
}

static void counts(void *ctx, const uint8_t *wire, uint32_t value)
{
    (void)wire;
    (void)value;
    (*(unsigned *)ctx)++;
}

void test_nameset(void)
{
    lh_nameset s;
    lh_name n;
    uint64_t h[LH_LABELS_MAX];
    bool created;
    CHECK_EQ(lh_nameset_init(&s, 4), 0);

    /* Grows well past its initial size; every name keeps its value. */
    char text[64];
    for (unsigned i = 0; i < 50000; i++) {
        snprintf(text, sizeof text, "host%u.example%u.com", i, i % 7);
        name(text, &n, h);
        uint32_t *v = lh_nameset_upsert(&s, &n, 0, h[0], &created);
        CHECK(v && created);
        if (v) *v = i;
    }
    CHECK_EQ(s.count, 50000);
    unsigned found = 0;
    for (unsigned i = 0; i < 50000; i++) {
        snprintf(text, sizeof text, "HOST%u.example%u.com.", i, i % 7);
        name(text, &n, h);
        const uint32_t *v = lh_nameset_find(&s, &n, 0, h[0]);
        found += v && *v == i;
    }
    CHECK_EQ(found, 50000);

    /* Duplicates are found, not added. */
    name("host7.example0.com", &n, h);
    uint32_t *v = lh_nameset_upsert(&s, &n, 0, h[0], &created);
    CHECK(v && !created && *v == 7);
    CHECK_EQ(s.count, 50000);

    /* Suffix lookups use the same hashes as full names. */
    name("example3.com", &n, h);
    v = lh_nameset_upsert(&s, &n, 0, h[0], &created);
    *v = 99;
    name("a.b.example3.com", &n, h);
    CHECK(lh_nameset_find(&s, &n, 0, h[0]) == NULL);
    CHECK(lh_nameset_find(&s, &n, 1, h[1]) == NULL);
    const uint32_t *f = lh_nameset_find(&s, &n, 2, h[2]);
    CHECK(f && *f == 99);
    CHECK(lh_nameset_find(&s, &n, 3, h[3]) == NULL);

    unsigned each = 0;
    lh_nameset_each(&s, counts, &each);
    CHECK_EQ(each, 50001);
    lh_nameset_free(&s);
}

/* The exact name's node, walking from the root as the blockset does; 0 if a suffix is
 * missing. */
static uint32_t tree_find(const lh_nametree *t, const char *text)
{
    lh_name n;
    uint64_t h[LH_LABELS_MAX];
    if (name(text, &n, h) != 0) return 0;
    uint32_t ref = 0;
    for (int i = (int)n.nlabels - 1; i >= 0; i--)
        if (!(ref = lh_nametree_child(t, ref, &n, (unsigned)i, h[i]))) return 0;
    return ref;
}

static void tree_add(lh_nametree *t, const char *text, uint8_t bits, uint16_t list)
{
    lh_name n;
    uint64_t h[LH_LABELS_MAX];
    CHECK_EQ(name(text, &n, h), 0);
    CHECK_EQ(lh_nametree_add(t, &n, h, bits, list), 0);
}

/* The label compare of a lookup, for every length a record can hold (the length byte and
 * 1..63 label bytes): equal bytes match, a difference in any of the n bytes does not, and
 * whatever follows them (the record's padding, the name's next label) is never compared. */
static void tree_label_compare(void)
{
    uint8_t a[64 + LH_NT_PAD], b[64 + LH_NT_PAD];
    unsigned bad = 0;
    for (unsigned n = 1; n <= 64; n++) {
        for (unsigned i = 0; i < sizeof a; i++)
            a[i] = b[i] = (uint8_t)(i * 7 + n);
        a[n] ^= 0x5a; /* past the compared bytes */
        bad += !lh_nametree_same(a, b, n);
        for (unsigned j = 0; j < n; j++) {
            b[j] ^= 0x20; /* a case difference: names are compared lowercased */
            bad += lh_nametree_same(a, b, n);
            b[j] ^= 0x20;
        }
    }
    CHECK_EQ(bad, 0);
}

void test_nametree(void)
{
    tree_label_compare();
    lh_nametree t;
    char text[80];
    /* Sized for 4 names: the build index and arena grow past that. */
    CHECK_EQ(lh_nametree_init(&t, 4), 0);
    for (unsigned i = 0; i < 60000; i++) {
        snprintf(text, sizeof text, "host%u.zone%u.example", i, i % 13);
        tree_add(&t, text, (uint8_t)(1u << (i % 4)), (uint16_t)(i % 5));
    }
    tree_add(&t, "host7.zone7.example", 0x10, 4); /* a second rule: bits merge, list stays */
    tree_add(&t, "zone3.example", 0x02, 9);       /* an interior node becomes a rule */
    CHECK_EQ(lh_nametree_freeze(&t), 0);
    CHECK(t.frozen && t.arenas == NULL && t.slots == NULL);
    CHECK_EQ(t.names, 60001);
    CHECK_EQ(t.nodes, 60000 + 13 + 1); /* every host, every zone, "example" */
    unsigned found = 0;
    for (unsigned i = 0; i < 60000; i++) {
        snprintf(text, sizeof text, "HOST%u.zone%u.example.", i, i % 13);
        uint32_t r = tree_find(&t, text);
        found += r && lh_nametree_bits(&t, r) == ((1u << (i % 4)) | (i == 7 ? 0x10 : 0)) &&
                 lh_nametree_list(&t, r) == i % 5;
    }
    CHECK_EQ(found, 60000);
    uint32_t r = tree_find(&t, "zone3.example");
    CHECK(r && lh_nametree_bits(&t, r) == 0x02 && lh_nametree_list(&t, r) == 9);
    r = tree_find(&t, "zone4.example"); /* interior: a node without rule bits */
    CHECK(r && lh_nametree_bits(&t, r) == 0);
    CHECK_EQ(tree_find(&t, "host1.zone2.example"), 0); /* right labels, wrong parent */
    CHECK_EQ(tree_find(&t, "host0.zone0.example.com"), 0);
    CHECK_EQ(tree_find(&t, "example.host0.zone0.example"), 0);
    CHECK_EQ(tree_find(&t, "other"), 0);
    /* Bytes per name: the label and 9 bytes, the directory's share, the shared zones. */
    CHECK(lh_nametree_bytes(&t) < 60000u * 24);

    /* The checker accepts what freeze made and rejects damage that could misdirect reads. */
    size_t nb = (size_t)1 << t.bits;
    CHECK(lh_nametree_check(t.recs, t.recs_len, t.dir, t.bits, t.nodes, t.names, 16) == NULL);
    CHECK(lh_nametree_check(t.recs, t.recs_len, t.dir, t.bits, t.nodes + 1, t.names, 16) != NULL);
    CHECK(lh_nametree_check(t.recs, t.recs_len - 1, t.dir, t.bits, t.nodes, t.names, 16) != NULL);
    uint32_t *dir = malloc((nb + 1) * sizeof *dir);
    uint8_t *recs = malloc(t.recs_len);
    memcpy(dir, t.dir, (nb + 1) * sizeof *dir);
    memcpy(recs, t.recs, t.recs_len);
    size_t b = 0;
    while (dir[b + 1] == dir[b]) /* the first bucket with a record */
        b++;
    dir[b + 1] += 1; /* a bucket ending inside a record */
    CHECK(lh_nametree_check(recs, t.recs_len, dir, t.bits, t.nodes, t.names, 16) != NULL);
    dir[b + 1] -= 1;
    recs[dir[b] + 8] = 200; /* a label longer than 63 */
    CHECK(lh_nametree_check(recs, t.recs_len, dir, t.bits, t.nodes, t.names, 16) != NULL);
    free(dir);
    free(recs);
    lh_nametree_free(&t);

    /* An empty tree answers nothing. */
    CHECK_EQ(lh_nametree_init(&t, 0), 0);
    CHECK_EQ(lh_nametree_freeze(&t), 0);
    CHECK_EQ(tree_find(&t, "a.example"), 0);
    CHECK(lh_nametree_check(t.recs, t.recs_len, t.dir, t.bits, 0, 0, 16) == NULL);
    lh_nametree_free(&t);
}
