/* leak_observed.c - what the probes see, and what it means.
 *
 *   the OS path    a fresh canary name resolved the way applications do (glibc getaddrinfo and
 *                  res_query, in a child process with a deadline); loophole answers it itself
 *                  with an address derived from the name, so any other answer is someone else.
 *   the egress     whoami probes (and a leak server's zone) through loophole and straight to
 *                  each upstream: the resolver addresses the authoritative side reports through
 *                  loophole must be among those its upstreams report when asked directly.
 *   interception   with a leak server: a question outside its zone sent straight to its
 *                  address (it always REFUSES, never recurses), a probe name sent straight to it
 *                  (it answers authoritatively), and a probe name sent to an address where no
 *                  DNS server runs. A recursive answer to any of them is something on the path
 *                  answering port 53 in the destination's place; its egress names it. */
#include "leak_check.h"

#include "loophole/nameset.h"

#include <arpa/nameser.h>
#include <ldns/ldns.h>
#include <netdb.h>
#include <poll.h>
#include <resolv.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the OS path ------------------------------------------------------------------------ */

static void first_a(const uint8_t *pkt, int len, char *out, size_t cap)
{
    ldns_pkt *p = NULL;
    out[0] = 0;
    if (len <= 0 || ldns_wire2pkt(&p, pkt, (size_t)len) != LDNS_STATUS_OK) return;
    ldns_rr_list *an = ldns_pkt_answer(p);
    for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
        ldns_rr *rr = ldns_rr_list_rr(an, i);
        if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_A && ldns_rr_rd_count(rr) == 1) {
            inet_ntop(AF_INET, ldns_rdf_data(ldns_rr_rdf(rr, 0)), out, (socklen_t)cap);
            break;
        }
    }
    ldns_pkt_free(p);
}

/* The child: resolve the canary exactly as applications do, and report through the pipe. */
static void os_child(const char *name, int fd)
{
    leak_os_result res;
    memset(&res, 0, sizeof res);
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM}, *ai = NULL;
    res.gai_rc = getaddrinfo(name, NULL, &hints, &ai);
    if (res.gai_rc == 0 && ai)
        inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, res.gai_addr,
                  sizeof res.gai_addr);
    if (ai) freeaddrinfo(ai);
    uint8_t ans[1232];
    res.rq_len = res_query(name, ns_c_in, ns_t_a, ans, sizeof ans);
    res.rq_herrno = h_errno;
    first_a(ans, res.rq_len, res.rq_addr, sizeof res.rq_addr);
    ssize_t w = write(fd, &res, sizeof res);
    _exit(w == (ssize_t)sizeof res ? 0 : 1);
}

static pid_t os_start(leak_observed *o, int *fd)
{
    char nonce[24];
    leak_random_label(nonce, sizeof nonce);
    snprintf(o->canary, sizeof o->canary, "%s.%s", nonce, LH_LEAK_CANARY_ZONE);
    lh_name n;
    uint64_t h[LH_LABELS_MAX];
    uint8_t v4[4];
    lh_name_from_text(o->canary, strlen(o->canary), &n);
    lh_name_hashes(&n, h);
    lh_leak_canary_v4(h[0], v4);
    inet_ntop(AF_INET, v4, o->canary_expect, sizeof o->canary_expect);
    int p[2];
    if (pipe(p) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        /* One try of one second per nameserver keeps glibc inside the deadline. */
        setenv("RES_OPTIONS", "timeout:1 attempts:1", 1);
        os_child(o->canary, p[1]);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    *fd = p[0];
    return pid;
}

static void os_finish(leak_observed *o, pid_t pid, int fd, uint64_t deadline_ms)
{
    if (pid < 0) return;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    uint64_t now = leak_now_ms();
    int wait_ms = deadline_ms > now ? (int)(deadline_ms - now) : 0;
    if (poll(&pfd, 1, wait_ms) == 1 && read(fd, &o->os, sizeof o->os) == (ssize_t)sizeof o->os)
        o->os_ran = true;
    close(fd);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* ---- the probes ------------------------------------------------------------------------- */

static const struct {
    const char *name;
    uint16_t type;
} public_probes[] = {
    {"whoami.akamai.net", LH_TYPE_A},
    {"o-o.myaddr.l.google.com", LH_TYPE_TXT},
    {"resolver.dnscrypt.info", LH_TYPE_TXT},
    {"whoami.ds.akahelp.net", LH_TYPE_TXT},
};

static void zone_name(const leak_report *r, const char *label, const char *prefix, char *out)
{
    snprintf(out, LH_NAME_MAX + 1, "%s%s.%s", prefix, label, r->cfg->probe_zone);
}

/* Paths: loophole at its first listen address (a wildcard one reached on loopback), each
 * default upstream directly, and the addresses where no DNS server runs. */
static void paths_open(leak_report *r)
{
    leak_observed *o = &r->obs;
    lh_sockaddr a = r->conf.listen[0];
    if (a.sa.sa_family == AF_INET && a.v4.sin_addr.s_addr == htonl(INADDR_ANY))
        a.v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (a.sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&a.v6.sin6_addr))
        a.v6.sin6_addr = in6addr_loopback;
    leak_path_open(o, VIA_LOOPHOLE, &a);
    /* A DNS over TLS upstream is never probed in plaintext: that would send the probe names
     * unencrypted, the very thing it is configured to prevent. */
    for (unsigned i = 0; i < r->conf.nup; i++)
        if (!strcmp(r->conf.up[i].zone, ".") && !strcmp(r->conf.up[i].transport, "plain"))
            leak_path_open(o, VIA_UPSTREAM, &r->conf.up[i].addr);
    lh_addr_parse(LEAK_UNUSED_V4, 53, &a);
    leak_path_open(o, VIA_UNUSED, &a);
    lh_addr_parse(LEAK_UNUSED_V6, 53, &a);
    leak_path_open(o, VIA_UNUSED, &a);
}

/* Round 1: whoami and zone probes on loophole and its upstreams; at the unused addresses the
 * zone's probe name (else two whoami names: an answer at all is the finding there); and the
 * leak server's own addresses (ns1.ZONE) through loophole. */
static void round1_add(leak_report *r)
{
    leak_observed *o = &r->obs;
    char name[LH_NAME_MAX + 1];
    for (unsigned pa = 0; pa < o->npaths; pa++) {
        bool unused = o->paths[pa].via == VIA_UNUSED;
        size_t n = sizeof public_probes / sizeof *public_probes;
        if (unused) n = r->cfg->probe_zone ? 0 : 2;
        for (size_t i = 0; i < n; i++)
            leak_probe_add(o, pa, public_probes[i].name, public_probes[i].type);
        if (!r->cfg->probe_zone) continue;
        zone_name(r, o->paths[pa].nonce, "", name);
        leak_probe_add(o, pa, name, LH_TYPE_TXT);
    }
    if (!r->cfg->probe_zone) return;
    zone_name(r, "ns1", "", name);
    leak_probe_add(o, 0, name, LH_TYPE_A);
    leak_probe_add(o, 0, name, LH_TYPE_AAAA);
}

/* The leak server's addresses, as ns1.ZONE resolved through loophole. */
static void leak_server_addresses(leak_report *r)
{
    leak_observed *o = &r->obs;
    char ns1[LH_NAME_MAX + 1];
    zone_name(r, "ns1", "", ns1);
    for (unsigned i = 0; i < o->nprobes; i++)
        if (o->probes[i].path == 0 && !strcasecmp(o->probes[i].name, ns1))
            for (unsigned k = 0; k < o->probes[i].found.n; k++)
                leak_set_add(&o->leak_server, o->probes[i].found.addr[k]);
}

/* Round 2: every resolver the zone saw carrying each path's probe, and the leak server asked
 * directly, once outside its zone and once inside. */
static void round2_add(leak_report *r)
{
    leak_observed *o = &r->obs;
    char name[LH_NAME_MAX + 1];
    unsigned npaths = o->npaths;
    for (unsigned pa = 0; pa < npaths; pa++) {
        if (o->paths[pa].via != VIA_LOOPHOLE && o->paths[pa].via != VIA_UPSTREAM) continue;
        zone_name(r, o->paths[pa].nonce, "results.", name);
        leak_probe_add(o, pa, name, LH_TYPE_TXT);
    }
    for (unsigned k = 0; k < o->leak_server.n; k++) {
        lh_sockaddr a;
        int pa = lh_addr_parse(o->leak_server.addr[k], 53, &a) == 0
                     ? leak_path_open(o, VIA_LEAK_SERVER, &a)
                     : -1;
        if (pa < 0) continue;
        snprintf(name, sizeof name, "%s.%s", o->paths[pa].nonce, LEAK_OUTSIDE_LABEL);
        leak_probe_add(o, (unsigned)pa, name, LH_TYPE_A);
        zone_name(r, o->paths[pa].nonce, "", name);
        leak_probe_add(o, (unsigned)pa, name, LH_TYPE_TXT);
    }
}

void leak_observe(leak_report *r)
{
    leak_observed *o = &r->obs;
    int os_fd = -1;
    uint64_t os_deadline = leak_now_ms() + LEAK_OS_MS;
    pid_t os_pid = os_start(o, &os_fd);
    paths_open(r);
    round1_add(r);
    unsigned round1 = o->nprobes;
    leak_probes_run(o, 0, round1, LEAK_ROUND1_MS);
    os_finish(o, os_pid, os_fd, os_deadline);
    if (r->cfg->probe_zone) {
        leak_server_addresses(r);
        round2_add(r);
        leak_probes_run(o, round1, o->nprobes, LEAK_ROUND2_MS);
    }
    for (unsigned i = 0; i < o->nprobes; i++) {
        const leak_probe *p = &o->probes[i];
        char ns1[LH_NAME_MAX + 1] = "";
        if (r->cfg->probe_zone) zone_name(r, "ns1", "", ns1);
        if (!strcasecmp(p->name, ns1)) continue; /* the leak server's address, not an egress */
        for (unsigned k = 0; k < p->found.n; k++)
            leak_set_add(&o->paths[p->path].egress, p->found.addr[k]);
    }
    leak_paths_close(o);
}
