/* main.c - runs every unit test group and prints the closing "N passed, N failed" line. */
#include "unit.h"

#include "loophole/log.h"

#include <stdbool.h>

unsigned lh_unit_checks, lh_unit_failures;

void test_wire(void);
void test_nameset(void);
void test_nametree(void);
void test_config(void);
void test_policy(void);
void test_lists(void);
void test_cache(void);
void test_leak(void);
void test_stats(void);
void test_dnssec(void);
void test_ttl(void);
void test_random(void);
void test_upstream_addr(void);
void test_settings(void);
void test_overlay(void);
void test_recent(void);
void test_ratelimit(void);
void test_spill(void);

static const lh_unit_test tests[] = {
    {"wire", test_wire},
    {"nameset", test_nameset},
    {"nametree", test_nametree},
    {"config", test_config},
    {"policy", test_policy},
    {"lists", test_lists},
    {"cache", test_cache},
    {"leak", test_leak},
    {"stats", test_stats},
    {"dnssec", test_dnssec},
    {"ttl", test_ttl},
    {"random", test_random},
    {"upstream", test_upstream_addr},
    {"settings", test_settings},
    {"overlay", test_overlay},
    {"recent", test_recent},
    {"ratelimit", test_ratelimit},
    {"spill", test_spill},
};

int main(void)
{
    unsigned passed = 0, failed = 0;
    lh_log_threshold = LH_LOG_ERROR; /* expected warnings (bad lines) would bury the results */
    for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
        unsigned before = lh_unit_failures, checks = lh_unit_checks;
        tests[i].fn();
        bool ok = lh_unit_failures == before;
        printf("%-8s %s (%u checks)\n", tests[i].name, ok ? "ok" : "FAILED",
               lh_unit_checks - checks);
        ok ? passed++ : failed++;
    }
    printf("%u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}
