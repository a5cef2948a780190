/* fuzz_answer.c - an upstream answer through what loophole does with it: the scanner (TTLs,
 * OPT, SOA, CNAME/SVCB targets), the TTL normalisation (clamps, top bit, one TTL per RRset),
 * the policy's checks (rebinding, uncloaking) and the answer sent instead, cache insertion, and
 * writing the cached answer back to a client with aged and stale TTLs. */
#include "loophole/cache.h"
#include "loophole/nameset.h"
#include "loophole/policy.h"
#include "loophole/ttl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A policy that blocks tracker.test (and below) and refuses private answers but for
 * home.test: the checks the forwarder runs on every answer. */
static lh_policy *make_policy(void)
{
    static const char list[] = "||tracker.test^\n";
    char path[] = "/tmp/lh-fuzz-answer-XXXXXX", err[LH_ERR_MAX];
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) abort();
    fputs(list, f);
    fclose(f);
    lh_config c;
    lh_config_defaults(&c);
    free(c.hosts_file);
    c.hosts_file = NULL;
    if (lh_config_set(&c, LH_SRC_FLAG, "blocklist", path, err, sizeof err) ||
        lh_config_set(&c, LH_SRC_FLAG, "rebind-protection", "yes", err, sizeof err) ||
        lh_config_set(&c, LH_SRC_FLAG, "rebind-allow", "home.test", err, sizeof err))
        abort();
    lh_policy *p = lh_policy_build(&c, err, sizeof err);
    lh_config_free(&c);
    unlink(path);
    if (!p) abort();
    return p;
}

/* The checks on the answer: a refusal only for a private answer, an uncloaked verdict names
 * its target, and the answer sent instead is a well-formed answer to the question. */
static void check_policy(const lh_policy *p, const lh_msg *m, const uint8_t *a, size_t len,
                         const lh_answer_info *ai, unsigned group)
{
    static uint8_t out[LH_MSG_MAX];
    lh_answer_ctx ctx = {.qname = &m->qname, .group = group};
    lh_verdict v;
    lh_name t;
    enum lh_answer_check r = lh_policy_check_answer(p, &ctx, a, len, ai, &v, &t);
    if (r == LH_CHECK_PASS) return;
    if (r == LH_CHECK_REBIND && (!ai->private_address || group || v.origin != LH_ORIGIN_REBIND))
        __builtin_trap();
    if (r == LH_CHECK_UNCLOAKED && (v.match_name != &t || v.origin != LH_ORIGIN_BLOCKLIST))
        __builtin_trap();
    if (r == LH_CHECK_TOO_MANY && ai->ntargets <= LH_ANSWER_TARGETS_MAX) __builtin_trap();
    size_t n = lh_answer_build(m, &v, out, sizeof out, 512, 1232);
    lh_answer_info oi;
    if (n > 512 || (n && lh_answer_scan(out, n, &oi) != 0)) __builtin_trap();
}

/* A cached answer written back to a client: it scans again, carries the client's ID and its
 * question exactly as asked, and every TTL is within the bound (the cache's maximum, or the
 * stale TTL for a stale answer). */
static void check_written(const lh_msg *m, const uint8_t *out, size_t n, uint32_t max_ttl)
{
    if (n == 0) return;
    lh_answer_info ai;
    if (lh_answer_scan(out, n, &ai) != 0) __builtin_trap();
    if (lh_rd16(out) != m->id || n < m->question_end ||
        memcmp(out + LH_DNS_HEADER_LEN, m->pkt + LH_DNS_HEADER_LEN,
               m->question_end - LH_DNS_HEADER_LEN) != 0)
        __builtin_trap();
    for (unsigned i = 0; i < ai.nttl; i++)
        if (lh_rd32(out + ai.ttl_off[i]) > max_ttl) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lh_cache cache;
    static lh_policy *policy;
    static bool ready;
    static uint8_t out[LH_MSG_MAX], work[LH_MSG_MAX];
    if (!ready) {
        lh_cache_limits lim = {
            .max_bytes = 1 << 20, .max_ttl = 86400, .max_negative_ttl = 3600, .stale_window = 3600};
        lh_cache_init(&cache, &lim);
        policy = make_policy();
        ready = true;
    }
    lh_answer_info ai;
    if (size > LH_MSG_MAX || lh_answer_scan(data, size, &ai) != 0) return 0;
    for (unsigned i = 0; i < ai.nttl; i++) /* every TTL offset must be inside the message */
        if ((size_t)ai.ttl_off[i] + 4 > size) __builtin_trap();
    /* Every target the scan counted can be walked (what uncloaking does), and no more: up to
     * LH_ANSWER_TARGETS_MAX, the targets uncloaking reads. */
    lh_target_iter it;
    lh_name t;
    unsigned walked = 0,
             want = ai.ntargets < LH_ANSWER_TARGETS_MAX ? ai.ntargets : LH_ANSWER_TARGETS_MAX;
    int r = 0;
    lh_answer_targets_begin(&ai, &it);
    while (walked < want && (r = lh_answer_targets_next(data, size, &it, &t)) > 0)
        walked++;
    if (r < 0 || walked != want) __builtin_trap();
    if (want == ai.ntargets && lh_answer_targets_next(data, size, &it, &t) != 0) __builtin_trap();
    /* The client's question: the answer's own, when it parses as one. */
    uint8_t q[LH_DNS_HEADER_LEN + LH_NAME_MAX + 4];
    size_t qlen = ai.question_end <= sizeof q ? ai.question_end : 0;
    if (qlen < LH_DNS_HEADER_LEN + 5) return 0;
    memcpy(q, data, qlen);
    q[2] &= 0x7f; /* a query, not a response */
    lh_wr16(q + 6, 0);
    lh_wr16(q + 8, 0);
    lh_wr16(q + 10, 0);
    lh_msg m;
    if (lh_msg_parse_query(q, qlen, &m) != LH_PARSE_OK) return 0;
    uint64_t h[LH_LABELS_MAX];
    lh_name_hashes(&m.qname, h);
    lh_cache_key k = {.name = &m.qname, .name_hash = h[0], .qtype = m.qtype, .qclass = m.qclass};
    size_t len = ai.opt_len ? ai.opt_off : size; /* as the forwarder strips the OPT */
    memcpy(work, data, len);
    if (ai.opt_len) {
        unsigned n = 0;
        for (unsigned i = 0; i < ai.nttl; i++)
            if (ai.ttl_off[i] < len) ai.ttl_off[n++] = ai.ttl_off[i];
        ai.nttl = (uint16_t)n;
        ai.ar = ai.opt_ar_index;
        lh_wr16(work + 10, ai.ar);
    }
    const lh_ttl_limits tl = {.min_ttl = 5, .max_ttl = 86400, .max_negative_ttl = 3600};
    if (lh_ttl_normalise(work, len, &ai, &tl) != 0) return 0;
    for (unsigned i = 0; i < ai.nttl; i++) /* every TTL relayed is within the clamps */
        if (lh_rd32(work + ai.ttl_off[i]) > 86400) __builtin_trap();
    check_policy(policy, &m, work, len, &ai, 0);
    check_policy(policy, &m, work, len, &ai, 1);
    if (lh_cache_insert(&cache, &k, work, len, &ai, 1000) == 0) {
        const lh_cache_entry *e;
        if (lh_cache_lookup(&cache, &k, 5000, false, &e) == LH_CACHE_FRESH)
            check_written(&m, out, lh_cache_write(e, &m, 5000, false, 0, out, sizeof out), 86400);
        if (lh_cache_lookup(&cache, &k, 1000 + 90000000, true, &e) == LH_CACHE_STALE)
            check_written(&m, out,
                          lh_cache_write(e, &m, 1000 + 90000000, true, 30, out, sizeof out), 30);
    }
    return 0;
}
