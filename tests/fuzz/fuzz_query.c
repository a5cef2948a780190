/* fuzz_query.c - a client query through the whole synchronous path: parse, decide against the
 * built-in zones and a small hosts table, build the answer under every size limit; and the
 * same query to the leak server's zone. */
#include "loophole/leak.h"
#include "loophole/policy.h"

#include <stdlib.h>
#include <string.h>

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
    lh_msg m;
    lh_parse_result r = lh_msg_parse_query(data, size, &m);
    if (r == LH_PARSE_DROP) return 0;
    if (r != LH_PARSE_OK) {
        lh_answer_error(&m, LH_RCODE_FORMERR, out, sizeof out, 512, 1232);
        return 0;
    }
    uint64_t h[LH_LABELS_MAX];
    lh_verdict v;
    lh_name_hashes(&m.qname, h);
    lh_policy_decide(policy, &m, h, &v);
    size_t limits[] = {0, 12, 100, 512, lh_msg_udp_limit(&m, 1232), LH_MSG_MAX};
    lh_sockaddr peer;
    lh_addr_parse(size & 1 ? "[2001:db8::1]" : "198.51.100.1", 53, &peer);
    for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) {
        if (v.kind != LH_VERDICT_FORWARD &&
            lh_answer_build(&m, &v, out, sizeof out, limits[i], 1232) > limits[i])
            abort();
        if (lh_leak_zone_answer(zone, &m, &peer, clock_ms += 7, out, sizeof out, limits[i], 1232) >
            limits[i])
            abort();
    }
    return 0;
}
