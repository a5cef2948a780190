/* dnssec_trace.c - see dnssec_trace.h. A short-lived command: blocking lookups are fine. */
#include "loophole/dnssec_trace.h"
#include "loophole/addr.h"
#include "loophole/dnssec.h"
#include "loophole/dnssec_config.h"

#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One ldns resolver at the upstream, DO and CD set (the upstream must not validate for us, or a
 * bogus answer would come back as SERVFAIL), UDP with a TCP retry on truncation. */
typedef struct tracer {
    ldns_resolver *res;
    unsigned lookups;
    char upstream[64];
} tracer;

static ldns_pkt *tracer_query(tracer *t, const ldns_rdf *name, ldns_rr_type type)
{
    ldns_pkt *p = NULL;
    t->lookups++;
    if (ldns_resolver_query_status(&p, t->res, name, type, LDNS_RR_CLASS_IN, LDNS_RD | LDNS_CD) !=
        LDNS_STATUS_OK)
        return NULL;
    return p;
}

/* The validator's DS/DNSKEY fetches. */
static size_t tracer_fetch(void *ctx, const lh_dnssec_need *need, uint8_t *buf, size_t cap)
{
    tracer *t = ctx;
    ldns_rdf *name = ldns_dname_new_frm_data((uint16_t)need->name_len, need->name);
    ldns_pkt *p = name ? tracer_query(t, name, (ldns_rr_type)need->type) : NULL;
    uint8_t *wire = NULL;
    size_t n = 0;
    if (p && ldns_pkt2wire(&wire, p, &n) == LDNS_STATUS_OK && n <= cap)
        memcpy(buf, wire, n);
    else
        n = 0;
    free(wire);
    ldns_pkt_free(p);
    ldns_rdf_deep_free(name);
    return n;
}

/* The upstream to ask: the first configured one, else the machine's. ldns asks in plain DNS,
 * so never in clear to a server configured for DNS over TLS or HTTPS. */
static int tracer_open(tracer *t, const lh_config *cfg)
{
    lh_sockaddr up;
    char src[256];
    if (cfg->nupstreams && cfg->upstream_tls[0].on) {
        fprintf(stderr,
                "loophole: dnssec: the upstream is DNS over TLS or HTTPS and this tool asks in "
                "plain DNS only: pass a plain --upstream ADDR\n");
        return -1;
    }
    if (cfg->nupstreams)
        up = cfg->upstreams[0];
    else if (lh_config_default_upstreams(cfg, &up, 1, src, sizeof src) == 0) {
        fprintf(stderr, "loophole: dnssec: no upstream: pass --upstream ADDR\n");
        return -1;
    }
    lh_addr_format(&up, t->upstream, sizeof t->upstream);
    uint16_t port = 53;
    t->res = ldns_resolver_new();
    ldns_rdf *ns = ldns_sockaddr_storage2rdf(&up.ss, &port);
    ldns_status s = t->res && ns ? ldns_resolver_push_nameserver(t->res, ns) : LDNS_STATUS_MEM_ERR;
    ldns_rdf_deep_free(ns); /* pushed as a copy */
    if (s != LDNS_STATUS_OK) {
        fprintf(stderr, "loophole: dnssec: out of memory\n");
        return -1;
    }
    ldns_resolver_set_port(t->res, port);
    ldns_resolver_set_recursive(t->res, true);
    ldns_resolver_set_dnssec(t->res, true);
    ldns_resolver_set_dnssec_cd(t->res, true);
    ldns_resolver_set_edns_udp_size(t->res, 1232);
    ldns_resolver_set_fallback(t->res, true);
    ldns_resolver_set_retry(t->res, 2);
    ldns_resolver_set_timeout(t->res,
                              (struct timeval){.tv_sec = cfg->upstream_timeout_ms / 1000,
                                               .tv_usec = cfg->upstream_timeout_ms % 1000 * 1000});
    return 0;
}

/* Asks for `qn`, prints the answer and validates it into `res`. Returns the wire-encoded
 * verdict, or -1 when there was no answer (or it could not be encoded). */
static int trace_hop(tracer *t, const lh_dnssec_anchors *anchors, lh_dnssec_cache *cache,
                     const ldns_rdf *qn, ldns_rr_type type, lh_dnssec_result *res)
{
    ldns_pkt *answer = tracer_query(t, qn, type);
    char *qn_text = ldns_rdf2str(qn), *tname = ldns_rr_type2str(type);
    if (!answer) {
        fprintf(stderr, "loophole: dnssec: no answer from %s for %s\n", t->upstream,
                qn_text ? qn_text : "?");
    } else {
        char *rcode = ldns_pkt_rcode2str(ldns_pkt_get_rcode(answer));
        printf(";; %s %s from %s: %s, %zu answer record(s)\n", qn_text ? qn_text : "?",
               tname ? tname : "?", t->upstream, rcode ? rcode : "?",
               ldns_rr_list_rr_count(ldns_pkt_answer(answer)));
        ldns_rr_list_print(stdout, ldns_pkt_answer(answer));
        free(rcode);
    }
    free(tname);
    free(qn_text);
    if (!answer) return -1;
    uint8_t *wire = NULL;
    size_t n = 0;
    ldns_status ws = ldns_pkt2wire(&wire, answer, &n);
    ldns_pkt_free(answer);
    if (ws != LDNS_STATUS_OK) {
        fprintf(stderr, "loophole: dnssec: cannot encode the answer\n");
        return -1;
    }
    unsigned before = t->lookups;
    enum lh_dnssec_verdict v = lh_dnssec_validate(anchors, cache, wire, n, ldns_rdf_data(qn),
                                                  (uint16_t)type, time(NULL), tracer_fetch, t, res);
    free(wire);
    printf(";; chain (%u DS/DNSKEY lookups):\n%s", t->lookups - before, res->chain);
    return (int)v;
}

static int print_verdict(enum lh_dnssec_verdict v, const lh_dnssec_result *r)
{
    printf("verdict: %s\n", lh_dnssec_verdict_name(v));
    if (v != LH_DNSSEC_SECURE) {
        printf("reason: %s", lh_dnssec_reason_text(r->reason));
        if (r->ede >= 0) printf(" (EDE %d)", r->ede);
        printf("\n");
        if (r->zone[0]) printf("zone: %s\n", r->zone);
        if (r->detail[0] && strcmp(r->detail, lh_dnssec_reason_text(r->reason)))
            printf("detail: %s\n", r->detail);
    }
    return v == LH_DNSSEC_SECURE ? 0 : v == LH_DNSSEC_BOGUS ? 1 : v == LH_DNSSEC_INSECURE ? 3 : 2;
}

int lh_dnssec_trace(const lh_config *cfg, const char *name_text, const char *type_text)
{
    char err[LH_ERR_MAX];
    ldns_rr_type type = type_text ? ldns_get_rr_type_by_name(type_text) : LDNS_RR_TYPE_A;
    if (type == 0) {
        fprintf(stderr, "loophole: dnssec: '%s' is not a record type\n", type_text);
        return 2;
    }
    ldns_rdf *qn = NULL;
    if (ldns_str2rdf_dname(&qn, name_text) != LDNS_STATUS_OK) {
        fprintf(stderr, "loophole: dnssec: '%s' is not a valid DNS name\n", name_text);
        return 2;
    }
    tracer t = {0};
    lh_dnssec_anchors *anchors = NULL;
    lh_dnssec_cache *cache = NULL;
    lh_dnssec_result *res = malloc(sizeof *res), *worst_res = calloc(1, sizeof *worst_res);
    int rc = 2;
    if (tracer_open(&t, cfg) != 0) goto out;
    if (!(anchors = lh_dnssec_anchors_from_config(cfg, err, sizeof err))) {
        fprintf(stderr, "loophole: dnssec: %s\n", err);
        goto out;
    }
    if (!(cache = lh_dnssec_cache_new(64)) || !res || !worst_res) {
        fprintf(stderr, "loophole: dnssec: out of memory\n");
        goto out;
    }
    /* The answer, then the answer for each CNAME target the previous one stopped at (an
     * authoritative upstream does not follow a chain out of its zone). The verdict is the worst
     * one: bogus, indeterminate, insecure, secure. */
    static const int rank[] = {[LH_DNSSEC_SECURE] = 0,
                               [LH_DNSSEC_INSECURE] = 1,
                               [LH_DNSSEC_INDETERMINATE] = 2,
                               [LH_DNSSEC_BOGUS] = 3};
    enum lh_dnssec_verdict worst = LH_DNSSEC_SECURE;
    for (int hop = 0; hop < 8; hop++) {
        int v = trace_hop(&t, anchors, cache, qn, type, res);
        if (v < 0) {
            if (hop == 0) goto out;
            worst = LH_DNSSEC_INDETERMINATE;
            worst_res->reason = LH_DR_FETCH_FAILED;
            worst_res->ede = lh_dnssec_reason_ede(LH_DR_FETCH_FAILED);
            break;
        }
        if (hop == 0 || rank[v] > rank[worst]) {
            worst = (enum lh_dnssec_verdict)v;
            *worst_res = *res;
        }
        if (!res->cname_target[0] || v == LH_DNSSEC_BOGUS) break;
        ldns_rdf *next = ldns_dname_new_frm_str(res->cname_target);
        if (!next) break;
        ldns_rdf_deep_free(qn);
        qn = next;
    }
    rc = print_verdict(worst, worst_res);
out:
    ldns_rdf_deep_free(qn);
    free(res);
    free(worst_res);
    lh_dnssec_cache_free(cache);
    ldns_resolver_deep_free(t.res);
    lh_dnssec_anchors_free(anchors);
    return rc;
}
