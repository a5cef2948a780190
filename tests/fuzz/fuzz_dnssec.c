/* fuzz_dnssec.c - the validator's untrusted input: the answer and every DS/DNSKEY response it
 * asks for. The input is a sequence of frames (2-byte length, message): the first is the answer
 * (its own question is validated), the next ones answer the validator's NEEDs in order; when the
 * frames run out the lookup fails. The seeds in corpus/dnssec are real exchanges with the tree
 * of tests/e2e/dnssec_tree.sh (answer, then DNSKEY/DS responses in the order asked); the anchor
 * and the clock below are that tree's, so the seeds validate and the fuzzer starts from
 * verified signatures and real NSEC/NSEC3 proofs. The answer also goes through what the daemon
 * does with it besides validating (validate.c): the rewrite without DNSSEC records for a client
 * without DO, and the stripping probe's reading. */
#include "loophole/dnssec.h"
#include "loophole/validate.h"

#include <stdlib.h>
#include <string.h>

static const char anchor[] = "lhtest. 3600 IN DS 6473 13 2 "
                             "b132e9a6644c483615f08ea8cdae54104678a28dd44800d0a72816c7cc8ea840\n";
#define SEED_TIME 1796153670 /* a day after the seed tree was signed */

static size_t frame(const uint8_t **p, size_t *left, const uint8_t **msg)
{
    if (*left < 2) return 0;
    size_t n = (size_t)(*p)[0] << 8 | (*p)[1];
    if (n > *left - 2) n = *left - 2;
    *msg = *p + 2;
    *p += 2 + n;
    *left -= 2 + n;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lh_dnssec_anchors *anchors;
    char err[256];
    if (!anchors) {
        anchors = lh_dnssec_anchors_new();
        lh_dnssec_anchors_load_text(anchors, anchor, sizeof anchor - 1, "anchor", err, sizeof err);
        lh_dnssec_anchors_add_insecure(anchors, "insecure.lhtest", err, sizeof err);
    }
    const uint8_t *p = data, *msg = NULL;
    size_t left = size, n = frame(&p, &left, &msg);
    /* the question: the answer's own qname, as uncompressed wire (header is 12 bytes) */
    uint8_t qname[256] = {0};
    size_t i = 12;
    while (n > 12 && i < n && i - 12 < 255 && msg[i] && msg[i] < 64)
        i += msg[i] + 1u;
    if (n > 12 && i < n && i - 12 < 255 && msg[i] == 0) memcpy(qname, msg + 12, i - 12 + 1);
    uint16_t qtype = n > i + 2 ? (uint16_t)(msg[i + 1] << 8 | msg[i + 2]) : 1;
    if (n && n <= 65535) {
        static uint8_t copy[65535];
        memcpy(copy, msg, n);
        size_t stripped = lh_dnssec_strip_records(copy, n, sizeof copy, qtype);
        if (stripped > sizeof copy) __builtin_trap();
        memcpy(copy, msg, n);
        size_t kept = lh_dnssec_keep_validated(copy, n, sizeof copy, qtype);
        if (kept > sizeof copy) __builtin_trap();
        (void)lh_dnssec_probe_read(msg, n);
    }
    /* A cache per input: which lookups are asked for depends on it, and inputs must replay. */
    lh_dnssec_cache *cache = lh_dnssec_cache_new(32);
    lh_dnssec_val *v = lh_dnssec_val_new(anchors, cache, msg, n, qname, qtype, SEED_TIME);
    if (!v) {
        lh_dnssec_cache_free(cache);
        return 0;
    }
    lh_dnssec_need need;
    for (int steps = 0; steps < 200 && lh_dnssec_val_run(v, &need) == LH_DNSSEC_NEED; steps++) {
        const uint8_t *r = NULL;
        size_t rn = frame(&p, &left, &r);
        lh_dnssec_val_provide(v, r, rn);
    }
    const lh_dnssec_result *res = lh_dnssec_val_result(v);
    if (strlen(res->chain) >= sizeof res->chain) __builtin_trap();
    lh_dnssec_val_free(v);
    lh_dnssec_cache_free(cache);
    return 0;
}
