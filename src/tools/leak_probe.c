/* leak_probe.c - the leak check's probe engine: DNS questions sent on several paths at once
 * (one single-server c-ares channel per path, driven by select), each answer reduced to what
 * the check needs (rcode, AA and RA bits, the addresses it reports), all within a deadline. */
#include "leak_check.h"

#include "loophole/upstream.h"

#include <errno.h>
#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/select.h>

const char *const leak_via_names[VIA_COUNT] = {"loophole", "upstream", "leak-server",
                                               "unused-address"};

int leak_path_open(leak_observed *o, enum leak_via via, const lh_sockaddr *addr)
{
    if (o->npaths >= LEAK_PATHS_MAX) return -1;
    leak_path *p = &o->paths[o->npaths];
    memset(p, 0, sizeof *p);
    p->via = via;
    p->addr = *addr;
    lh_addr_format(&p->addr, p->label, sizeof p->label);
    leak_random_label(p->nonce, sizeof p->nonce);
    /* Two tries (one second, then two): a lost datagram is retried, a dead path is not waited on
     * beyond the round's budget. NOCHECKRESP: a SERVFAIL or REFUSED is a result to show. */
    p->ready =
        lh_ares_channel_new(&p->ch, ARES_FLAG_NOCHECKRESP, &p->addr, 1, 1000, 2, NULL, NULL) == 0;
    return (int)o->npaths++;
}

void leak_paths_close(leak_observed *o)
{
    for (unsigned i = 0; i < o->npaths; i++)
        if (o->paths[i].ready) ares_destroy(o->paths[i].ch);
    for (unsigned i = 0; i < o->npaths; i++)
        o->paths[i].ready = false;
}

void leak_probe_add(leak_observed *o, unsigned path, const char *name, uint16_t type)
{
    if (o->nprobes >= sizeof o->probes / sizeof *o->probes) return;
    leak_probe *p = &o->probes[o->nprobes++];
    memset(p, 0, sizeof *p);
    p->path = path;
    p->type = type;
    p->rcode = -1;
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->result, sizeof p->result, "not sent");
}

/* Every token of a TXT string that is an address ("1.2.3.4", "Resolver IP: 1.2.3.4"); client
 * subnets ("1.2.3.0/24") are not resolvers and are skipped. */
static void txt_addresses(const ldns_rdf *rdf, addr_set *out)
{
    const uint8_t *d = ldns_rdf_data(rdf);
    size_t len = ldns_rdf_size(rdf);
    if (len < 1 || d[0] + 1u > len) return;
    char text[256];
    memcpy(text, d + 1, d[0]);
    text[d[0]] = 0;
    for (char *save, *w = strtok_r(text, " \t\"", &save); w; w = strtok_r(NULL, " \t\"", &save)) {
        uint8_t bin[16];
        if (strchr(w, '/')) continue;
        if (inet_pton(AF_INET, w, bin) == 1 || inet_pton(AF_INET6, w, bin) == 1)
            leak_set_add(out, w);
    }
}

/* The addresses an answer section reports: A, AAAA, and addresses inside TXT strings. */
static void answer_addresses(const ldns_pkt *pkt, addr_set *out)
{
    ldns_rr_list *an = ldns_pkt_answer(pkt);
    for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
        ldns_rr *rr = ldns_rr_list_rr(an, i);
        ldns_rr_type t = ldns_rr_get_type(rr);
        char text[INET6_ADDRSTRLEN];
        if (t == LDNS_RR_TYPE_A && ldns_rr_rd_count(rr) == 1) {
            inet_ntop(AF_INET, ldns_rdf_data(ldns_rr_rdf(rr, 0)), text, sizeof text);
            leak_set_add(out, text);
        } else if (t == LDNS_RR_TYPE_AAAA && ldns_rr_rd_count(rr) == 1) {
            inet_ntop(AF_INET6, ldns_rdf_data(ldns_rr_rdf(rr, 0)), text, sizeof text);
            leak_set_add(out, text);
        } else if (t == LDNS_RR_TYPE_TXT) {
            for (size_t k = 0; k < ldns_rr_rd_count(rr); k++)
                txt_addresses(ldns_rr_rdf(rr, k), out);
        }
    }
}

static void on_probe_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    leak_probe *p = arg;
    p->done = true;
    if (status != ARES_SUCCESS) {
        snprintf(p->result, sizeof p->result, "%s",
                 status == ARES_ETIMEOUT       ? "no answer"
                 : status == ARES_ECONNREFUSED ? "connection refused"
                 : status == ARES_ECANCELLED   ? "no answer in time"
                 : status == ARES_EDESTRUCTION ? "no answer in time"
                                               : ares_strerror(status));
        return;
    }
    ldns_pkt *pkt = NULL;
    if (ldns_wire2pkt(&pkt, abuf, (size_t)alen) != LDNS_STATUS_OK) {
        snprintf(p->result, sizeof p->result, "malformed answer");
        return;
    }
    p->answered = true;
    p->rcode = (int)ldns_pkt_get_rcode(pkt);
    p->aa = ldns_pkt_aa(pkt);
    p->ra = ldns_pkt_ra(pkt);
    if (p->rcode != LDNS_RCODE_NOERROR) {
        char *t = ldns_pkt_rcode2str((ldns_pkt_rcode)p->rcode);
        snprintf(p->result, sizeof p->result, "%s", t ? t : "error");
        free(t);
    } else {
        answer_addresses(pkt, &p->found);
        snprintf(p->result, sizeof p->result, "%s",
                 p->found.n ? "answered" : "answered, no resolver address in it");
    }
    ldns_pkt_free(pkt);
}

static void probes_send(leak_observed *o, unsigned from, unsigned to)
{
    for (unsigned i = from; i < to; i++) {
        leak_probe *p = &o->probes[i];
        leak_path *pa = &o->paths[p->path];
        uint8_t q[LH_NAME_MAX + 32];
        uint16_t id;
        if (getrandom(&id, sizeof id, 0) != sizeof id) id = (uint16_t)(i * 7919u);
        size_t n = lh_wire_build_query(q, sizeof q, p->name, p->type, id);
        if (!pa->ready || !n) {
            p->done = true;
            snprintf(p->result, sizeof p->result, "%s",
                     pa->ready ? "invalid name" : "could not open a socket");
            continue;
        }
        p->sent = true;
        ares_send(pa->ch, q, (int)n, on_probe_answer, p);
    }
}

void leak_probes_run(leak_observed *o, unsigned from, unsigned to, unsigned budget_ms)
{
    probes_send(o, from, to);
    uint64_t deadline = leak_now_ms() + budget_ms;
    for (;;) {
        bool pending = false;
        for (unsigned i = from; i < to; i++)
            pending = pending || !o->probes[i].done;
        uint64_t now = leak_now_ms();
        if (!pending || now >= deadline) break;
        fd_set rd, wr;
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        int nfds = 0;
        for (unsigned i = 0; i < o->npaths; i++) {
            if (!o->paths[i].ready) continue;
            int n = ares_fds(o->paths[i].ch, &rd, &wr);
            if (n > nfds) nfds = n;
        }
        uint64_t left = deadline - now;
        /* at most 100 ms: c-ares' own retry timers are served by ares_process below */
        struct timeval tv = {.tv_usec = (suseconds_t)(left < 100 ? left : 100) * 1000};
        if (select(nfds, &rd, &wr, NULL, &tv) < 0 && errno != EINTR) break;
        for (unsigned i = 0; i < o->npaths; i++)
            if (o->paths[i].ready) ares_process(o->paths[i].ch, &rd, &wr);
    }
    for (unsigned i = 0; i < o->npaths; i++)
        if (o->paths[i].ready) ares_cancel(o->paths[i].ch); /* the rest: "no answer in time" */
}
