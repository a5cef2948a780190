/* test_nameset.c - insertion, growth, exact and suffix lookups. */
#include "unit.h"

#include "loophole/nameset.h"

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
