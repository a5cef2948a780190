/* unit.h - a minimal test harness: CHECK records a failure and goes on. */
#ifndef LH_UNIT_H
#define LH_UNIT_H

#include <stdio.h>
#include <string.h>

extern unsigned lh_unit_checks, lh_unit_failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        lh_unit_checks++;                                                                          \
        if (!(cond)) {                                                                             \
            lh_unit_failures++;                                                                    \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long _a = (long long)(a), _b = (long long)(b);                                        \
        lh_unit_checks++;                                                                          \
        if (_a != _b) {                                                                            \
            lh_unit_failures++;                                                                    \
            fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a,    \
                    _a, #b, _b);                                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *_a = (a), *_b = (b);                                                           \
        lh_unit_checks++;                                                                          \
        if (strcmp(_a, _b) != 0) {                                                                 \
            lh_unit_failures++;                                                                    \
            fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, _a,  \
                    _b);                                                                           \
        }                                                                                          \
    } while (0)

/* A test group: a function run by main.c. */
typedef struct lh_unit_test {
    const char *name;
    void (*fn)(void);
} lh_unit_test;

#endif
