/* test_lists.c - every list format and matching rule of docs/blocklists.md. */
#include "unit.h"

#include "loophole/blockset.h"
#include "loophole/lists.h"
#include "loophole/regex.h"

#include <stdlib.h>

/* Collects the rules of one line. */
typedef struct got {
    lh_rule rules[8];
    unsigned n;
} got;

static int collect(void *ctx, const lh_rule *r, unsigned line, const char *text)
{
    got *g = ctx;
    if (g->n < 8) g->rules[g->n++] = *r;
    return 0;
}

static lh_line_result parse(const char *line, enum lh_list_format fmt, got *g)
{
    const char *reason;
    int rc;
    g->n = 0;
    return lh_list_parse_line(line, fmt, false, -1, collect, g, 1, &reason, &rc);
}

static bool name_is(const lh_rule *r, const char *text)
{
    lh_name n;
    lh_name_from_text(text, strlen(text), &n);
    return r->kind == LH_RULE_NAME && r->name.len == n.len && !memcmp(r->name.wire, n.wire, n.len);
}

static void formats(void)
{
    got g;
    /* hosts: any address, several names, inline comments, localhost-style names ignored */
    CHECK_EQ(parse("0.0.0.0 ads.example.com  Tracker.Example.NET # comment", 0, &g), LH_LINE_RULE);
    CHECK_EQ(g.n, 2);
    CHECK(name_is(&g.rules[0], "ads.example.com") && g.rules[0].match == LH_MATCH_EXACT);
    CHECK(name_is(&g.rules[1], "tracker.example.net"));
    CHECK_EQ(g.rules[0].format, LH_FMT_HOSTS);
    CHECK_EQ(parse("::1 localhost ip6-localhost", 0, &g), LH_LINE_IGNORED);
    CHECK_EQ(parse("127.0.0.1  localhost", 0, &g), LH_LINE_IGNORED);
    CHECK_EQ(parse(":: bad.example", 0, &g), LH_LINE_RULE);
    CHECK_EQ(parse("fe80::1%lo0 x.example", 0, &g), LH_LINE_RULE);
    CHECK_EQ(parse("300.1.1.1 x.example", LH_FMT_HOSTS, &g), LH_LINE_ERROR);
    /* domains */
    CHECK_EQ(parse("Example.COM.", 0, &g), LH_LINE_RULE);
    CHECK(name_is(&g.rules[0], "example.com") && g.rules[0].match == LH_MATCH_EXACT);
    CHECK_EQ(g.rules[0].format, LH_FMT_DOMAINS);
    CHECK_EQ(parse("   ", 0, &g), LH_LINE_BLANK);
    CHECK_EQ(parse("# comment", 0, &g), LH_LINE_BLANK);
    CHECK_EQ(parse("! adblock comment", 0, &g), LH_LINE_BLANK);
    CHECK_EQ(parse("[Adblock Plus 2.0]", 0, &g), LH_LINE_BLANK);
    CHECK_EQ(parse("exa_mple.com", 0, &g), LH_LINE_RULE); /* '_' is common in real lists */
    CHECK_EQ(parse("bad!name.com", LH_FMT_DOMAINS, &g), LH_LINE_ERROR);
    CHECK_EQ(parse("a..b", 0, &g), LH_LINE_ERROR);
    CHECK_EQ(parse("1.2.3.4", 0, &g), LH_LINE_IGNORED);
    /* adblock */
    CHECK_EQ(parse("||ads.example.com^", 0, &g), LH_LINE_RULE);
    CHECK(name_is(&g.rules[0], "ads.example.com"));
    CHECK_EQ(g.rules[0].match, LH_MATCH_EXACT | LH_MATCH_SUBS);
    CHECK(!g.rules[0].allow && !g.rules[0].important);
    CHECK_EQ(parse("|exact.example^|", 0, &g), LH_LINE_RULE);
    CHECK_EQ(g.rules[0].match, LH_MATCH_EXACT);
    CHECK_EQ(parse("||both.example^|", 0, &g), LH_LINE_RULE);
    CHECK_EQ(g.rules[0].match, LH_MATCH_EXACT | LH_MATCH_SUBS);
    CHECK_EQ(parse("@@||ok.example^", 0, &g), LH_LINE_RULE);
    CHECK(g.rules[0].allow);
    CHECK_EQ(parse("||imp.example^$important", 0, &g), LH_LINE_RULE);
    CHECK(g.rules[0].important);
    CHECK_EQ(parse("||x.example^$third-party", 0, &g), LH_LINE_IGNORED);
    CHECK_EQ(parse("||x.example^$client=10.0.0.1", 0, &g), LH_LINE_IGNORED);
    CHECK_EQ(parse("||aax-*.amazon.*^", 0, &g), LH_LINE_RULE);
    CHECK_EQ(g.rules[0].kind, LH_RULE_GLOB);
    CHECK_STR(g.rules[0].pattern, "aax-*.amazon.*");
    CHECK_EQ(parse("-ds.metric.example^|", 0, &g), LH_LINE_RULE);
    CHECK_STR(g.rules[0].pattern, "*-ds.metric.example");
    CHECK_EQ(parse(".sub.example^", 0, &g), LH_LINE_RULE);
    CHECK_EQ(g.rules[0].match, LH_MATCH_SUBS);
    CHECK_EQ(parse("://gj7.ru^", 0, &g), LH_LINE_RULE);
    CHECK(name_is(&g.rules[0], "gj7.ru") && g.rules[0].match == LH_MATCH_EXACT);
    CHECK_EQ(parse("http://w7.ru/", 0, &g), LH_LINE_RULE);
    CHECK(name_is(&g.rules[0], "w7.ru"));
    CHECK_EQ(parse("/^ad[0-9]+\\.example$/", 0, &g), LH_LINE_RULE);
    CHECK_EQ(g.rules[0].kind, LH_RULE_REGEX);
    CHECK_STR(g.rules[0].pattern, "^ad[0-9]+\\.example$");
    /* skipped, never misread */
    CHECK_EQ(parse("example.com##.banner", 0, &g), LH_LINE_IGNORED);
    CHECK_EQ(parse("##.ad-box", 0, &g), LH_LINE_IGNORED);
    CHECK_EQ(parse("example.com#@#.ad", 0, &g), LH_LINE_IGNORED);
    CHECK_EQ(parse("||example.org/ads/*.js", 0, &g), LH_LINE_IGNORED);
    CHECK_EQ(parse("||covertarget.com^*_*.php", 0, &g), LH_LINE_IGNORED);
    CHECK_EQ(parse("||xxuhter.ru:8040", 0, &g), LH_LINE_IGNORED);
    CHECK_EQ(parse("/js/loader.js|", 0, &g), LH_LINE_IGNORED);
    CHECK_EQ(parse("||1.2.3.4^", 0, &g), LH_LINE_IGNORED);
    CHECK_EQ(parse("||scelnow.xyz^&third-party", 0, &g), LH_LINE_IGNORED);
    /* wildcard: the name and below */
    CHECK_EQ(parse("*.wild.example", 0, &g), LH_LINE_RULE);
    CHECK(name_is(&g.rules[0], "wild.example"));
    CHECK_EQ(g.rules[0].match, LH_MATCH_EXACT | LH_MATCH_SUBS);
    CHECK_EQ(g.rules[0].format, LH_FMT_WILDCARD);
    /* dnsmasq */
    CHECK_EQ(parse("address=/a.example/b.example/#", 0, &g), LH_LINE_RULE);
    CHECK_EQ(g.n, 2);
    CHECK(name_is(&g.rules[1], "b.example") &&
          g.rules[1].match == (LH_MATCH_EXACT | LH_MATCH_SUBS));
    CHECK_EQ(parse("address=/c.example/0.0.0.0", 0, &g), LH_LINE_RULE);
    CHECK_EQ(parse("server=/d.example/", 0, &g), LH_LINE_RULE);
    CHECK_EQ(parse("server=/corp.example/10.0.0.1", 0, &g), LH_LINE_IGNORED);
    CHECK_EQ(parse("address=/broken", 0, &g), LH_LINE_ERROR);
    /* regex (Pi-hole) */
    CHECK_EQ(parse("^(.+[_.-])?adse?rv(er?|ice)?s?[0-9]*[_.-]", 0, &g), LH_LINE_RULE);
    CHECK_EQ(g.rules[0].kind, LH_RULE_REGEX);
    CHECK_EQ(parse("(^|\\.)doubleclick\\.net$", 0, &g), LH_LINE_RULE);
    CHECK_EQ(g.rules[0].kind, LH_RULE_REGEX);
    CHECK_EQ(parse("ads.example", LH_FMT_REGEX, &g), LH_LINE_RULE); /* forced */
    CHECK_EQ(g.rules[0].kind, LH_RULE_REGEX);
}

/* Builds a blockset from text and answers "blocked?" for a name. */
static lh_blockset set;
static void load(const char *text, bool allow, int subdomains, enum lh_list_format fmt)
{
    char err[256];
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    lh_list_info info = {
        .path = "test.list", .allow = allow, .format = fmt, .subdomains = subdomains};
    CHECK_EQ(lh_blockset_add_file(&set, &info, f, err, sizeof err), 0);
    fclose(f);
}
static int verdict(const char *name) /* 1 blocked, -1 allowed, 0 no rule */
{
    lh_name n;
    uint64_t h[LH_LABELS_MAX];
    lh_block_match m;
    char err[128];
    CHECK_EQ(lh_blockset_finish(&set, err, sizeof err), 0); /* once; then a no-op */
    lh_name_from_text(name, strlen(name), &n);
    lh_name_hashes(&n, h);
    lh_blockset_match(&set, &n, h, &m);
    return m.blocked ? 1 : m.allowed ? -1 : 0;
}

static void semantics(void)
{
    lh_blockset_init(&set, 16);
    load("||ads.example^\n"         /* name and below */
         "exact.example\n"          /* domains: the name only */
         "0.0.0.0 host.example\n"   /* hosts: the name only */
         "*.wild.example\n"         /* wildcard: name and below */
         "address=/dm.example/#\n"  /* dnsmasq: name and below */
         ".below.example^\n"        /* strictly below */
         "||track*.glob.example^\n" /* '*' spans any characters, dots too */
         "/^ad[0-9]+\\.rx\\.example$/\n"
         "||imp.example^$important\n"
         "||x.example^\n",
         false, -1, LH_FMT_AUTO);
    load("@@||ok.ads.example^\n@@|x.example^|\n@@||imp.example^\n", false, -1, LH_FMT_AUTO);

    CHECK_EQ(verdict("ads.example"), 1);
    CHECK_EQ(verdict("a.b.ADS.example."), 1); /* case and trailing dot do not matter */
    CHECK_EQ(verdict("notads.example"), 0);   /* label boundaries, not substrings */
    CHECK_EQ(verdict("exact.example"), 1);
    CHECK_EQ(verdict("sub.exact.example"), 0);
    CHECK_EQ(verdict("host.example"), 1);
    CHECK_EQ(verdict("www.host.example"), 0);
    CHECK_EQ(verdict("wild.example"), 1);
    CHECK_EQ(verdict("a.wild.example"), 1);
    CHECK_EQ(verdict("a.dm.example"), 1);
    CHECK_EQ(verdict("below.example"), 0);
    CHECK_EQ(verdict("x.below.example"), 1);
    CHECK_EQ(verdict("track1.glob.example"), 1);
    CHECK_EQ(verdict("trackers.eu.glob.example"), 1);
    CHECK_EQ(verdict("cdn.track1.glob.example"), 1);
    CHECK_EQ(verdict("glob.example"), 0);
    CHECK_EQ(verdict("ad12.rx.example"), 1);
    CHECK_EQ(verdict("ad.rx.example"), 0);
    CHECK_EQ(verdict("x.ad12.rx.example"), 0); /* regexes match the whole name */
    /* allow beats block, at any depth; except $important */
    CHECK_EQ(verdict("ok.ads.example"), -1);
    CHECK_EQ(verdict("deep.ok.ads.example"), -1);
    CHECK_EQ(verdict("x.example"), -1); /* |x.example^| allows the name only */
    CHECK_EQ(verdict("a.x.example"), 1);
    CHECK_EQ(verdict("imp.example"), 1); /* $important beats @@ */
    CHECK_EQ(verdict("unlisted.example"), 0);
    /* IDN: lists and queries both use the punycode (A-label) form */
    lh_blockset_free(&set);

    lh_blockset_init(&set, 16);
    load("xn--bcher-kva.example\n", false, -1, LH_FMT_AUTO);
    CHECK_EQ(verdict("XN--BCHER-KVA.example"), 1);
    lh_blockset_free(&set);
    /* an allowlist file: every rule is an allow rule, in any format */
    lh_blockset_init(&set, 16);
    load("xn--bcher-kva.example\n", false, -1, LH_FMT_AUTO);
    load("0.0.0.0 xn--bcher-kva.example\n", true, -1, LH_FMT_AUTO);
    CHECK_EQ(verdict("xn--bcher-kva.example"), -1);
    lh_blockset_free(&set);

    /* Per-list override of subdomain matching. */
    lh_blockset_init(&set, 16);
    load("sub.example\n", false, 1, LH_FMT_AUTO);
    load("||nosub.example^\n", false, 0, LH_FMT_AUTO);
    CHECK_EQ(verdict("a.sub.example"), 1);
    CHECK_EQ(verdict("nosub.example"), 1);
    CHECK_EQ(verdict("a.nosub.example"), 0);
    lh_blockset_free(&set);
}

static void read_reports(void)
{
    static const char text[] = "good.example\nbad name here\n||ok^\n/[unclosed/\nfine.example\n";
    FILE *f = fmemopen((void *)text, sizeof text - 1, "r");
    lh_list_counts c;
    char err[128];
    got g = {0};
    CHECK_EQ(lh_list_read(f, "t", LH_FMT_AUTO, false, -1, collect, &g, &c, true, err, sizeof err),
             0);
    fclose(f);
    CHECK_EQ(c.lines, 5);
    CHECK_EQ(c.rules, 3);
    CHECK_EQ(c.errors, 2); /* "bad name here" (hosts without an address), the bad regex */
}

/* Hostile patterns from a downloaded list stay bounded (regressions from fuzz_lists). */
static void regex_bounds(void)
{
    char err[128];
    lh_regex *re = lh_regex_compile("((((a{255}){255}){255}){255})", err, sizeof err);
    CHECK(re == NULL); /* too large: rejected at once instead of eating gigabytes */
    CHECK(strstr(err, "invalid regular expression") != NULL);
    re = lh_regex_compile("^(a+)+$", err, sizeof err);
    CHECK(re != NULL);
    char evil[64];
    memset(evil, 'a', 40);
    strcpy(evil + 40, "!");
    CHECK(!lh_regex_match(re, evil, strlen(evil))); /* the match limit ends the backtracking */
    CHECK(lh_regex_match(re, "aaaa", 4));
    lh_regex_free(re);
    re = lh_regex_compile("^ADS?[0-9]*\\.", err, sizeof err);
    CHECK(re && lh_regex_match(re, "ads12.example", 13)); /* case-insensitive */
    lh_regex_free(re);
}

void test_lists(void)
{
    regex_bounds();
    formats();
    semantics();
    read_reports();
}
