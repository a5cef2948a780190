/* test_overlay.c - runtime rules: matching (the most specific rule wins, exact versus
 * subdomains), replace and remove, the file round trip with its line numbers, a hand-edited
 * file, and the decision order with the lists (a runtime rule beats $important and the
 * allowlists; a pause forwards what would be blocked). */
#include "querybuf.h"
#include "unit.h"

#include "loophole/overlay.h"
#include "loophole/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Which runtime rule decides `name`: "allow", "block" or "none", and at which label. */
static const char *decide(const lh_overlay *o, const char *name, int *label)
{
    lh_name n;
    uint64_t h[LH_LABELS_MAX];
    lh_block_match bm;
    if (lh_name_from_text(name, strlen(name), &n) != 0) return "invalid";
    lh_name_hashes(&n, h);
    if (!lh_overlay_match(o, &n, h, &bm, NULL)) return "none";
    if (label) *label = bm.label;
    CHECK_EQ(bm.list, LH_LIST_RUNTIME);
    CHECK(bm.blocked != bm.allowed);
    return bm.allowed ? "allow" : "block";
}

static lh_overlay *with(lh_overlay *o, const char *name, bool remove, bool allow, bool subs)
{
    char err[256] = "";
    lh_overlay *n = lh_overlay_with(o, name, remove, allow, subs, err, sizeof err);
    if (!n) fprintf(stderr, "lh_overlay_with(%s): %s\n", name, err);
    CHECK(n != NULL);
    lh_overlay_unref(o);
    return n;
}

static void verdict_for(const lh_policy *p, const lh_overlay *o, bool paused, const char *name,
                        lh_verdict *v)
{
    uint8_t q[512];
    lh_msg m;
    size_t n = qb_query(q, name, LH_TYPE_A, 0, false);
    CHECK_EQ(lh_msg_parse_query(q, n, &m), LH_PARSE_OK);
    uint64_t h[LH_LABELS_MAX];
    lh_name_hashes(&m.qname, h);
    lh_policy_decide_at(p, o, paused, &m, h, v);
}

void test_overlay(void)
{
    char err[256];
    lh_overlay *o = lh_overlay_new();
    CHECK(o && o->nrules == 0);
    CHECK_STR(decide(o, "ads.example", NULL), "none");
    o = with(o, "ADS.example.", false, false, true);   /* block ads.example and below */
    o = with(o, "ok.ads.example", false, true, false); /* allow that one name only */
    o = with(o, "exact.test", false, false, false);    /* block the name only */
    CHECK_EQ(o->nrules, 3);
    int label = -1;
    CHECK_STR(decide(o, "ads.example", &label), "block");
    CHECK_EQ(label, 0);
    CHECK_STR(decide(o, "x.y.ads.example", &label), "block");
    CHECK_EQ(label, 2);
    CHECK_STR(decide(o, "ok.ads.example", NULL), "allow");       /* most specific wins */
    CHECK_STR(decide(o, "below.ok.ads.example", NULL), "block"); /* exact allow: not below */
    CHECK_STR(decide(o, "exact.test", NULL), "block");
    CHECK_STR(decide(o, "sub.exact.test", NULL), "none");
    CHECK_STR(decide(o, "notads.example", NULL), "none");

    /* replace: one rule per name, the newest kind */
    o = with(o, "exact.test", false, true, true);
    CHECK_EQ(o->nrules, 3);
    CHECK_STR(decide(o, "sub.exact.test", NULL), "allow");
    /* remove; removing a name without a rule, or an invalid name, is an error */
    o = with(o, "ok.ads.example", true, false, false);
    CHECK_EQ(o->nrules, 2);
    CHECK_STR(decide(o, "ok.ads.example", NULL), "block");
    CHECK(lh_overlay_with(o, "never.added", true, false, false, err, sizeof err) == NULL);
    CHECK(strstr(err, "never.added has no runtime rule") != NULL);
    CHECK(lh_overlay_with(o, "bad..name", false, true, false, err, sizeof err) == NULL);
    CHECK(strstr(err, "not a valid domain name") != NULL);
    CHECK(lh_overlay_with(o, "", false, true, false, err, sizeof err) == NULL);
    /* names the file cannot carry back as the same rule (a queried name, offered by the
     * dashboard's allow button, is attacker-chosen text): refused, not saved */
    static const char *const unsafe[] = {
        "tracker.example^", "a|b.example",     "x.example$important",
        "a#b.example",      "a\\046b.example", "caf\xc3\xa9.example",
        "a b.example",      "a/b.example",     "@@x.example"};
    for (size_t i = 0; i < sizeof unsafe / sizeof *unsafe; i++) {
        err[0] = 0;
        CHECK(lh_overlay_with(o, unsafe[i], false, true, true, err, sizeof err) == NULL);
        CHECK(strstr(err, "not a valid domain name") != NULL);
    }
    o = with(o, "_dmarc.under_score-ok.example", false, false, false); /* '_' and '-' are fine */
    CHECK_EQ(o->nrules, 3);
    o = with(o, "_dmarc.under_score-ok.example", true, false, false);

    /* the file: adblock syntax, each rule's line number as written */
    char path[] = "/tmp/lh-overlay-XXXXXX";
    close(mkstemp(path));
    /* a runtime.list.tmp found there (here with a second link, as a hard link someone made
     * would be) is replaced, never written into and renamed over runtime.list */
    char stale[300], keep[300];
    snprintf(stale, sizeof stale, "%s.tmp", path);
    snprintf(keep, sizeof keep, "%s.keep", path);
    FILE *sf = fopen(stale, "w");
    CHECK(sf != NULL);
    fclose(sf);
    CHECK_EQ(link(stale, keep), 0);
    CHECK_EQ(lh_overlay_save(o, path, err, sizeof err), 0);
    struct stat st_keep, st_saved;
    CHECK_EQ(stat(path, &st_saved), 0);
    CHECK_EQ(stat(keep, &st_keep), 0);
    CHECK(st_saved.st_ino != st_keep.st_ino);
    CHECK_EQ(st_keep.st_size, 0);
    CHECK(access(stale, F_OK) != 0);
    unlink(keep);
    lh_overlay *back = lh_overlay_load(path, err, sizeof err);
    CHECK(back != NULL && err[0] == 0);
    CHECK_EQ(back->nrules, 2);
    FILE *f = fopen(path, "r");
    char line[256];
    unsigned lineno = 0, checked = 0;
    while (f && fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\n")] = 0;
        for (size_t i = 0; i < back->nrules; i++) {
            char text[300];
            lh_overlay_rule_text(&back->rules[i], text, sizeof text);
            if (back->rules[i].line == lineno) {
                CHECK_STR(line, text);
                checked++;
            }
        }
    }
    if (f) fclose(f);
    CHECK_EQ(checked, 2);
    CHECK_STR(back->rules[0].name, "ads.example");
    CHECK_STR(decide(back, "a.ads.example", NULL), "block");
    CHECK_STR(decide(back, "a.exact.test", NULL), "allow");
    lh_overlay_unref(back);

    /* a hand-edited file: comments and blank lines keep the line numbers; a rule that is
     * not a plain name is reported with file:line and skipped */
    f = fopen(path, "w");
    fputs("! comment\n\n@@||keep.example^\n||*.glob.example^\n|only.example^\n", f);
    fclose(f);
    back = lh_overlay_load(path, err, sizeof err);
    CHECK(back != NULL);
    CHECK_EQ(back->nrules, 2);
    CHECK_EQ(back->rules[0].line, 3);
    CHECK_EQ(back->rules[1].line, 5);
    char where[300];
    snprintf(where, sizeof where, "%s:4:", path);
    CHECK(strstr(err, where) != NULL);
    CHECK_STR(decide(back, "a.keep.example", NULL), "allow");
    CHECK_STR(decide(back, "a.only.example", NULL), "none");
    lh_overlay_unref(back);
    unlink(path);
    /* a missing file is no rule at all, not an error */
    back = lh_overlay_load("/nonexistent/runtime.list", err, sizeof err);
    CHECK(back != NULL && back->nrules == 0 && err[0] == 0);
    lh_overlay_unref(back);

    /* with the lists: an $important block and an allowlist entry both lose to runtime rules */
    char list[] = "/tmp/lh-overlay-list-XXXXXX", allow[] = "/tmp/lh-overlay-allow-XXXXXX";
    int fd = mkstemp(list);
    const char *rules = "||important.example^$important\n||listed.example^\n";
    CHECK(write(fd, rules, strlen(rules)) == (ssize_t)strlen(rules));
    close(fd);
    fd = mkstemp(allow);
    CHECK(write(fd, "excepted.example\n", 17) == 17);
    close(fd);
    lh_config c;
    lh_config_defaults(&c);
    c.default_blocklist = false;
    free(c.hosts_file);
    c.hosts_file = NULL;
    char opt[300];
    snprintf(opt, sizeof opt, "%s", list);
    CHECK_EQ(lh_config_set(&c, LH_SRC_FLAG, "blocklist", opt, err, sizeof err), 0);
    snprintf(opt, sizeof opt, "%s", allow);
    CHECK_EQ(lh_config_set(&c, LH_SRC_FLAG, "allowlist", opt, err, sizeof err), 0);
    lh_policy *p = lh_policy_build(&c, err, sizeof err);
    CHECK(p != NULL);
    lh_overlay *rt = lh_overlay_new();
    rt = with(rt, "important.example", false, true, true);
    rt = with(rt, "excepted.example", false, false, false);
    lh_verdict v;
    verdict_for(p, NULL, false, "a.important.example", &v);
    CHECK_EQ(v.origin, LH_ORIGIN_BLOCKLIST);
    verdict_for(p, rt, false, "a.important.example", &v);
    CHECK_EQ(v.kind, LH_VERDICT_FORWARD);
    CHECK(v.allowed);
    CHECK_EQ(v.list, LH_LIST_RUNTIME);
    verdict_for(p, NULL, false, "excepted.example", &v);
    CHECK_EQ(v.kind, LH_VERDICT_FORWARD);
    verdict_for(p, rt, false, "excepted.example", &v);
    CHECK_EQ(v.origin, LH_ORIGIN_BLOCKLIST);
    CHECK_EQ(v.list, LH_LIST_RUNTIME);
    CHECK_EQ(v.ans.ede, LH_EDE_BLOCKED);
    /* paused: what would be blocked is forwarded, and says so; local answers stay */
    verdict_for(p, rt, true, "x.listed.example", &v);
    CHECK_EQ(v.kind, LH_VERDICT_FORWARD);
    CHECK(v.paused);
    verdict_for(p, rt, true, "excepted.example", &v);
    CHECK_EQ(v.kind, LH_VERDICT_FORWARD);
    verdict_for(p, rt, true, "localhost", &v);
    CHECK_EQ(v.origin, LH_ORIGIN_LOCALHOST);
    verdict_for(p, rt, false, "x.listed.example", &v);
    CHECK_EQ(v.origin, LH_ORIGIN_BLOCKLIST);
    CHECK(!v.paused);
    lh_overlay_unref(rt);
    lh_policy_free(p);
    lh_config_free(&c);
    unlink(list);
    unlink(allow);
    lh_overlay_unref(o);
}
