/* test_policy.c - local answers: localhost, special-use zones, the hosts file. */
#include "querybuf.h"
#include "unit.h"

#include "loophole/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static lh_verdict decide(const lh_policy *p, const char *name, uint16_t type, lh_msg *m,
                         uint8_t *buf)
{
    lh_decision d;
    size_t n = qb_query(buf, name, type, 0, false);
    CHECK_EQ(lh_decide(p, NULL, false, buf, n, &d), LH_PARSE_OK);
    *m = d.msg;
    return d.verdict;
}

/* An upstream answer to "q.test HTTPS" with n HTTPS records, the one at `tracker` (1-based;
 * 0: none) leading to shop.tracker.test, the others to tK.ok.test. Returns its length. */
static size_t https_answer(uint8_t *m, size_t cap, unsigned n, unsigned tracker)
{
    static const uint8_t q[] = {1, 'q', 4, 't', 'e', 's', 't', 0, 0, 65, 0, 1};
    memset(m, 0, 12);
    lh_wr16(m + 2, 0x8180);
    lh_wr16(m + 4, 1);
    lh_wr16(m + 6, (uint16_t)n);
    memcpy(m + 12, q, sizeof q);
    size_t o = 12 + sizeof q;
    for (unsigned k = 1; k <= n; k++) {
        uint8_t t[64];
        size_t tl;
        if (k == tracker) {
            static const uint8_t tr[] = "\4shop\7tracker\4test";
            memcpy(t, tr, sizeof tr); /* with its root label */
            tl = sizeof tr;
        } else {
            char label[16];
            int ll = snprintf(label, sizeof label, "t%u", k);
            t[0] = (uint8_t)ll;
            memcpy(t + 1, label, (size_t)ll);
            memcpy(t + 1 + ll, "\2ok\4test", 9); /* with its root label */
            tl = 1 + (size_t)ll + 9;
        }
        if (o + 12 + 2 + tl > cap) return 0;
        m[o] = 0xc0;
        m[o + 1] = 12;
        lh_wr16(m + o + 2, LH_TYPE_HTTPS);
        lh_wr16(m + o + 4, 1);
        lh_wr16(m + o + 6, 0);
        lh_wr16(m + o + 8, 60);
        lh_wr16(m + o + 10, (uint16_t)(2 + tl));
        lh_wr16(m + o + 12, (uint16_t)k);
        memcpy(m + o + 14, t, tl);
        o += 14 + tl;
    }
    return o;
}

/* Uncloaking checks every target up to LH_ANSWER_TARGETS_MAX; an answer with more is blocked
 * unread (a hostile 64 KiB answer holds ~4,000 targets: checking each, patterns and all, took
 * tens to hundreds of ms of the loop per answer). */
static void test_uncloak_bound(void)
{
    char path[] = "/tmp/lh-unit-block-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("||tracker.test^\n", f);
    fclose(f);
    lh_config c;
    char err[LH_ERR_MAX];
    lh_config_defaults(&c);
    free(c.hosts_file);
    c.hosts_file = NULL;
    CHECK(lh_config_set(&c, LH_SRC_FLAG, "blocklist", path, err, sizeof err) == 0);
    lh_policy *p = lh_policy_build(&c, err, sizeof err);
    CHECK(p != NULL);
    if (!p) return;
    static uint8_t m[65535];
    lh_answer_info ai;
    lh_name t;
    lh_block_match bm;
    size_t n = https_answer(m, sizeof m, LH_ANSWER_TARGETS_MAX, 0);
    CHECK(n && lh_answer_scan(m, n, &ai) == 0 && ai.ntargets == LH_ANSWER_TARGETS_MAX);
    CHECK_EQ(lh_policy_uncloak(p, m, n, &ai, &t, &bm), LH_UNCLOAK_CLEAN);
    n = https_answer(m, sizeof m, LH_ANSWER_TARGETS_MAX, LH_ANSWER_TARGETS_MAX);
    CHECK(n && lh_answer_scan(m, n, &ai) == 0);
    CHECK_EQ(lh_policy_uncloak(p, m, n, &ai, &t, &bm), LH_UNCLOAK_BLOCKED);
    CHECK(t.nlabels == 3 && !memcmp(t.wire, "\4shop\7tracker\4test", 18));
    n = https_answer(m, sizeof m, LH_ANSWER_TARGETS_MAX + 1, 0);
    CHECK(n && lh_answer_scan(m, n, &ai) == 0 && ai.ntargets == LH_ANSWER_TARGETS_MAX + 1);
    CHECK_EQ(lh_policy_uncloak(p, m, n, &ai, &t, &bm), LH_UNCLOAK_TOO_MANY);
    n = https_answer(m, sizeof m, 2000, 0); /* about 58 KiB */
    CHECK(n && lh_answer_scan(m, n, &ai) == 0 && ai.ntargets == 2000);
    CHECK_EQ(lh_policy_uncloak(p, m, n, &ai, &t, &bm), LH_UNCLOAK_TOO_MANY);
    lh_policy_free(p);
    lh_config_free(&c);
    unlink(path);
}

/* An upstream answer to "q.test A": one A record with `addr`. Returns its length. */
static size_t a_answer(uint8_t *m, const uint8_t addr[4])
{
    static const uint8_t q[] = {1, 'q', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1};
    memset(m, 0, 12);
    lh_wr16(m + 2, 0x8180);
    lh_wr16(m + 4, 1);
    lh_wr16(m + 6, 1);
    memcpy(m + 12, q, sizeof q);
    uint8_t *r = m + 12 + sizeof q;
    static const uint8_t rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4};
    memcpy(r, rr, sizeof rr);
    memcpy(r + sizeof rr, addr, 4);
    return 12 + sizeof q + sizeof rr + 4;
}

static lh_policy *policy_with(const char *const *kv, char *err, size_t errlen)
{
    lh_config c;
    lh_config_defaults(&c);
    free(c.hosts_file);
    c.hosts_file = NULL;
    for (; kv[0]; kv += 2)
        CHECK(lh_config_set(&c, LH_SRC_FLAG, kv[0], kv[1], err, errlen) == 0);
    lh_policy *p = lh_policy_build(&c, err, errlen);
    lh_config_free(&c);
    return p;
}

/* The checks on an upstream answer (lh_policy_check_answer): rebinding before uncloaking, a
 * rebinding refusal with its own origin, forward zones and rebind-allow exempt, pausing
 * stops uncloaking but not the rebinding check. */
static void test_answer_checks(void)
{
    char path[] = "/tmp/lh-unit-block-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("||tracker.test^\n", f);
    fclose(f);
    char err[LH_ERR_MAX];
    const char *on[] = {
        "rebind-protection", "yes", "rebind-allow", "home.test", "blocklist", path, NULL};
    const char *off[] = {"blocklist", path, NULL};
    lh_policy *p = policy_with(on, err, sizeof err), *p_off = policy_with(off, err, sizeof err);
    CHECK(p && p_off);
    if (!p || !p_off) return;
    static const uint8_t private4[4] = {192, 168, 1, 1}, public4[4] = {192, 0, 2, 1};
    uint8_t m[512];
    lh_answer_info ai;
    lh_name q, home, t;
    lh_verdict v;
    CHECK(lh_name_from_text("q.test", 6, &q) == 0 &&
          lh_name_from_text("x.home.test", 11, &home) == 0);
    lh_answer_ctx ctx = {.qname = &q};
    size_t n = a_answer(m, private4);
    CHECK(lh_answer_scan(m, n, &ai) == 0 && ai.private_address);
    CHECK_EQ(lh_policy_check_answer(p, &ctx, m, n, &ai, &v, &t), LH_CHECK_REBIND);
    CHECK(v.kind == LH_VERDICT_REFUSED && v.origin == LH_ORIGIN_REBIND);
    CHECK(v.ans.rcode == LH_RCODE_SERVFAIL && v.ans.ede == LH_EDE_PROHIBITED && !v.ans.records);
    CHECK(!strcmp(lh_answer_check_name(LH_CHECK_REBIND), "rebind"));
    ctx.paused = true; /* pausing the blocking does not open rebinding */
    CHECK_EQ(lh_policy_check_answer(p, &ctx, m, n, &ai, &v, &t), LH_CHECK_REBIND);
    ctx.paused = false;
    CHECK_EQ(lh_policy_check_answer(p_off, &ctx, m, n, &ai, &v, &t), LH_CHECK_PASS);
    ctx.group = 1; /* a forward zone's servers may answer privately */
    CHECK_EQ(lh_policy_check_answer(p, &ctx, m, n, &ai, &v, &t), LH_CHECK_PASS);
    ctx.group = 0;
    ctx.qname = &home; /* below a rebind-allow domain */
    CHECK_EQ(lh_policy_check_answer(p, &ctx, m, n, &ai, &v, &t), LH_CHECK_PASS);
    ctx.qname = &q;
    n = a_answer(m, public4);
    CHECK(lh_answer_scan(m, n, &ai) == 0 && !ai.private_address);
    CHECK_EQ(lh_policy_check_answer(p, &ctx, m, n, &ai, &v, &t), LH_CHECK_PASS);
    /* Uncloaking through the same function: the target is named in the verdict. */
    static uint8_t big[65535];
    n = https_answer(big, sizeof big, 3, 2);
    CHECK(n && lh_answer_scan(big, n, &ai) == 0);
    CHECK_EQ(lh_policy_check_answer(p, &ctx, big, n, &ai, &v, &t), LH_CHECK_UNCLOAKED);
    CHECK(v.origin == LH_ORIGIN_BLOCKLIST && v.match_name == &t && v.list >= 0);
    CHECK(!strcmp(p->blocks.lists[v.list >= 0 ? v.list : 0].path, path));
    CHECK(v.ans.ede == LH_EDE_BLOCKED && !memcmp(t.wire, "\4shop\7tracker\4test", 18));
    ctx.paused = true;
    CHECK_EQ(lh_policy_check_answer(p, &ctx, big, n, &ai, &v, &t), LH_CHECK_PASS);
    ctx.paused = false;
    n = https_answer(big, sizeof big, LH_ANSWER_TARGETS_MAX + 1, 0);
    CHECK(n && lh_answer_scan(big, n, &ai) == 0);
    CHECK_EQ(lh_policy_check_answer(p, &ctx, big, n, &ai, &v, &t), LH_CHECK_TOO_MANY);
    CHECK(v.origin == LH_ORIGIN_BLOCKLIST && v.match_name == NULL);
    lh_policy_free(p);
    lh_policy_free(p_off);
    unlink(path);
}

void test_policy(void)
{
    char path[] = "/tmp/lh-unit-hosts-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("127.0.0.1 localhost\n"
          "192.168.1.10 nas.lan nas # the NAS\n"
          "fd00::10 nas.lan\n"
          "not-an-address foo\n"
          "10.1.1.1 Printer.LAN\n"
          "10.1.1.2 printer.lan\n",
          f);
    fclose(f);

    lh_config c;
    char err[LH_ERR_MAX];
    lh_config_defaults(&c);
    free(c.hosts_file);
    c.hosts_file = strdup(path);
    lh_policy *p = lh_policy_build(&c, err, sizeof err);
    CHECK(p != NULL);
    if (!p) return;
    CHECK_EQ(p->hosts.skipped, 1);

    uint8_t buf[512];
    lh_msg m;
    lh_verdict v = decide(p, "LOCALHOST.", LH_TYPE_A, &m, buf);
    CHECK_EQ(v.kind, LH_VERDICT_LOCAL);
    CHECK_EQ(v.origin, LH_ORIGIN_LOCALHOST);
    CHECK(v.ans.at_apex);
    CHECK(v.ans.n4 == 1 && v.ans.v4[0] == 127 && v.ans.n6 == 1 && v.ans.v6[15] == 1);
    v = decide(p, "a.b.localhost", LH_TYPE_MX, &m, buf);
    CHECK(v.kind == LH_VERDICT_LOCAL && v.ans.rcode == LH_RCODE_NOERROR && !v.ans.at_apex);
    CHECK_EQ(v.ans.soa_label, 2);
    v = decide(p, "localhost.example.com", LH_TYPE_A, &m, buf);
    CHECK_EQ(v.kind, LH_VERDICT_FORWARD);

    v = decide(p, "1.0.0.127.in-addr.arpa", LH_TYPE_PTR, &m, buf);
    CHECK(v.kind == LH_VERDICT_LOCAL && v.ans.ptr && memcmp(v.ans.ptr, "\x09localhost", 11) == 0);
    CHECK_EQ(v.ans.soa_label, 3); /* 127.in-addr.arpa */
    v = decide(p, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
               LH_TYPE_PTR, &m, buf);
    CHECK(v.kind == LH_VERDICT_LOCAL && v.ans.ptr != NULL);
    v = decide(p, "2.0.0.127.in-addr.arpa", LH_TYPE_PTR, &m, buf);
    CHECK(v.kind == LH_VERDICT_LOCAL && v.ans.rcode == LH_RCODE_NXDOMAIN && !v.ans.ptr);

    v = decide(p, "facebookcorewwwi.onion", LH_TYPE_A, &m, buf);
    CHECK(v.origin == LH_ORIGIN_SPECIAL_USE && v.ans.rcode == LH_RCODE_NXDOMAIN);
    CHECK_EQ(v.ans.soa_label, 1);
    v = decide(p, "printer.local", LH_TYPE_A, &m, buf);
    CHECK_EQ(v.ans.rcode, LH_RCODE_NXDOMAIN);
    v = decide(p, "x.invalid", LH_TYPE_A, &m, buf);
    CHECK_EQ(v.ans.rcode, LH_RCODE_NXDOMAIN);
    v = decide(p, "4.3.2.10.in-addr.arpa", LH_TYPE_PTR, &m, buf);
    CHECK_EQ(v.ans.rcode, LH_RCODE_NXDOMAIN);
    v = decide(p, "5.20.172.in-addr.arpa", LH_TYPE_PTR, &m, buf);
    CHECK_EQ(v.ans.rcode, LH_RCODE_NXDOMAIN);
    v = decide(p, "5.32.172.in-addr.arpa", LH_TYPE_PTR, &m, buf);
    CHECK_EQ(v.kind, LH_VERDICT_FORWARD); /* 172.32/16 is public */
    v = decide(p, "1.0.8.e.f.ip6.arpa", LH_TYPE_PTR, &m, buf);
    CHECK_EQ(v.ans.rcode, LH_RCODE_NXDOMAIN);
    v = decide(p, "10.in-addr.arpa", LH_TYPE_SOA, &m, buf);
    CHECK(v.ans.rcode == LH_RCODE_NOERROR && v.ans.at_apex);

    /* hosts: names from several lines merge, case folds, reverse names answer PTR. */
    v = decide(p, "NAS.lan", LH_TYPE_A, &m, buf);
    CHECK(v.origin == LH_ORIGIN_HOSTS && v.ans.n4 == 1 && v.ans.n6 == 1 && v.ans.v4[3] == 10);
    v = decide(p, "printer.lan", LH_TYPE_A, &m, buf);
    CHECK_EQ(v.ans.n4, 2);
    v = decide(p, "10.1.168.192.in-addr.arpa", LH_TYPE_PTR, &m, buf);
    CHECK(v.origin == LH_ORIGIN_HOSTS && v.ans.ptr && memcmp(v.ans.ptr, "\3nas\3lan", 9) == 0);
    v = decide(p, "sub.nas.lan", LH_TYPE_A, &m, buf);
    CHECK_EQ(v.kind, LH_VERDICT_FORWARD);

    /* The answer builder: NODATA for localhost MX carries the zone's SOA. */
    uint8_t out[512];
    v = decide(p, "LocalHost", LH_TYPE_MX, &m, buf);
    size_t len = lh_answer_build(&m, &v, out, sizeof out, 512, 1232);
    CHECK(len > 0);
    CHECK_EQ(lh_rd16(out + 6), 0);
    CHECK_EQ(lh_rd16(out + 8), 1);
    CHECK_EQ(out[3] & 0xf, LH_RCODE_NOERROR);

    /* A class other than IN is refused. */
    size_t n = qb_query(buf, "localhost", LH_TYPE_A, 0, false);
    lh_wr16(buf + n - 2, LH_CLASS_CH);
    lh_decision d;
    CHECK_EQ(lh_decide(p, NULL, false, buf, n, &d), LH_PARSE_OK);
    CHECK_EQ(d.verdict.kind, LH_VERDICT_REFUSED);

    lh_policy_free(p);
    lh_config_free(&c);
    unlink(path);

    /* Regression (found by fuzz_hosts): an empty hosts file loads, with nothing in it. */
    char empty[] = "/tmp/lh-unit-empty-XXXXXX";
    close(mkstemp(empty));
    lh_config_defaults(&c);
    free(c.hosts_file);
    c.hosts_file = strdup(empty);
    p = lh_policy_build(&c, err, sizeof err);
    CHECK(p != NULL && p->hosts.nentries == 0);
    lh_policy_free(p);
    lh_config_free(&c);
    unlink(empty);

    /* A missing hosts file named explicitly is an error naming the file. */
    lh_config_defaults(&c);
    free(c.hosts_file);
    c.hosts_file = strdup("/nonexistent/hosts");
    c.hosts_file_explicit = true;
    CHECK(lh_policy_build(&c, err, sizeof err) == NULL);
    CHECK(strstr(err, "/nonexistent/hosts: cannot open") != NULL);
    lh_config_free(&c);
    /* The default one may be missing: built without it, and the caller is told. */
    lh_config_defaults(&c);
    free(c.hosts_file);
    c.hosts_file = strdup("/nonexistent/hosts");
    p = lh_policy_build(&c, err, sizeof err);
    CHECK(p != NULL && p->hosts_missing && !p->has_hosts);
    lh_policy_free(p);
    lh_config_free(&c);

    test_uncloak_bound();
    test_answer_checks();
}
