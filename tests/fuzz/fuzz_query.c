/* fuzz_query.c - a client query through the whole synchronous path: parse, decide against the
 * built-in zones and a small hosts table, build the answer under every size limit; and the
 * same query to the leak server's zone. */
#include "loophole/leak.h"
#include "loophole/policy.h"

#include <ldns/ldns.h>
#include <stdlib.h>
#include <string.h>

/* What every answer to a parsed query must be, whatever the query was: it fits its limit,
 * ldns (an independent parser) and loophole's own answer scanner both read it, it echoes the
 * ID and the question byte for byte, QR is set, it is truncated (TC) exactly when the whole
 * answer did not fit, and no TTL is above a day or has its top bit set (RFC 2181). */
static void check_answer(const lh_msg *m, const uint8_t *out, size_t n, size_t limit, size_t full)
{
    if (n > limit) abort();
    if (n == 0) return; /* nothing fits under a limit below the question: nothing sent */
    if (n < m->question_end || lh_rd16(out) != m->id || !(out[2] & 0x80)) abort();
    if (lh_rd16(out + 4) != 1 || memcmp(out + LH_DNS_HEADER_LEN, m->pkt + LH_DNS_HEADER_LEN,
                                        m->question_end - LH_DNS_HEADER_LEN) != 0)
        abort();
    bool tc = out[2] & 0x02;
    if (tc != (full > limit)) abort();
    ldns_pkt *pkt = NULL;
    if (ldns_wire2pkt(&pkt, out, n) != LDNS_STATUS_OK) abort();
    ldns_rr_list *secs[] = {ldns_pkt_answer(pkt), ldns_pkt_authority(pkt)};
    for (size_t s = 0; s < 2; s++)
        for (size_t i = 0; i < ldns_rr_list_rr_count(secs[s]); i++)
            if (ldns_rr_ttl(ldns_rr_list_rr(secs[s], i)) > 86400) abort();
    ldns_pkt_free(pkt);
    lh_answer_info ai;
    if (lh_answer_scan(out, n, &ai) != 0) abort();
}

static lh_policy *policy;
static lh_leak_zone *zone;

static lh_leak_zone *make_zone(void)
{
    lh_config c;
    char err[LH_ERR_MAX];
    lh_config_defaults(&c);
    c.leak_server = true;
    lh_config_set(&c, LH_SRC_FLAG, "leak-zone", "test", err, sizeof err);
    lh_config_set(&c, LH_SRC_FLAG, "leak-ns-address", "192.0.2.53", err, sizeof err);
    lh_leak_zone *z = lh_leak_zone_new(&c, err, sizeof err);
    lh_config_free(&c);
    return z;
}

static lh_policy *make_policy(void)
{
    static const char hosts[] = "10.0.0.1 a.test b.test\nfd00::1 a.test\n192.168.1.1 nas\n";
    lh_config c;
    char err[LH_ERR_MAX];
    lh_config_defaults(&c);
    free(c.hosts_file);
    c.hosts_file = NULL;
    lh_policy *p = lh_policy_build(&c, err, sizeof err);
    FILE *f = fmemopen((void *)hosts, sizeof hosts - 1, "r");
    if (p && f && lh_hosts_load_stream(&p->hosts, f, "fuzz-hosts", err, sizeof err) == 0)
        p->has_hosts = true;
    if (f) fclose(f);
    lh_config_free(&c);
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[LH_MSG_MAX];
    static uint64_t clock_ms;
    if (!policy) policy = make_policy();
    if (!zone) zone = make_zone();
    static lh_decision d; /* the daemon's decision step, as it runs it */
    lh_parse_result r = lh_decide(policy, NULL, false, data, size, &d);
    const lh_msg m = d.msg;
    const lh_verdict v = d.verdict;
    if (r == LH_PARSE_DROP) return 0;
    if (r != LH_PARSE_OK) {
        lh_answer_error(&m, LH_RCODE_FORMERR, out, sizeof out, 512, 1232);
        return 0;
    }
    size_t limits[] = {0, 12, 100, 512, lh_msg_udp_limit(&m, 1232), LH_MSG_MAX};
    lh_sockaddr peer;
    lh_addr_parse(size & 1 ? "[2001:db8::1]" : "198.51.100.1", 53, &peer);
    size_t full = v.kind != LH_VERDICT_FORWARD
                      ? lh_answer_build(&m, &v, out, sizeof out, LH_MSG_MAX, 1232)
                      : 0;
    for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) {
        if (v.kind != LH_VERDICT_FORWARD) {
            size_t n = lh_answer_build(&m, &v, out, sizeof out, limits[i], 1232);
            check_answer(&m, out, n, limits[i], full);
        }
        size_t n =
            lh_leak_zone_answer(zone, &m, &peer, clock_ms += 7, out, sizeof out, limits[i], 1232);
        if (n > limits[i]) abort();
    }
    return 0;
}
