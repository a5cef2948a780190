/* leak_check.c - `loophole leak-check`: what the machine is configured to use for DNS, what is
 * observed answering it, and the difference.
 *
 *   configured  resolv.conf (nameservers, rotate, who manages it), nsswitch's hosts line,
 *               systemd-resolved's servers and stubs, other port-53 listeners, loophole's own
 *               upstreams
 *   observed    the OS path: a fresh canary name resolved the way applications do (glibc
 *               getaddrinfo and res_query, in a child process with a deadline); loophole
 *               answers it itself with an address derived from the name.
 *               The egress path: whoami probes (and a leak server's zone) sent through
 *               loophole and straight to each upstream; the resolver addresses the authoritative
 *               side reports through loophole must be among those its upstreams report.
 *   not observable  browser DoH, hard-coded resolvers, WebRTC: said so, with how to close them.
 *
 * A short-lived client: blocking I/O, c-ares driven by select, bounded by deadlines so the
 * whole check ends within about 7 seconds. */
#include "loophole/leak.h"
#include "loophole/nameset.h"
#include "loophole/sbuf.h"
#include "loophole/upstream.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <resolv.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LEAK_FINDINGS_MAX 48
#define LEAK_PATHS_MAX (1 + LH_UPSTREAMS_MAX)
#define LEAK_PROBES_MAX 8
#define LEAK_ADDRS_MAX 16
#define LEAK_NS_MAX 8
#define LEAK_ROUND1_MS 3500 /* whoami and zone probes */
#define LEAK_ROUND2_MS 2500 /* the zone's results names */
#define LEAK_OS_MS 4000     /* the canary through glibc, run beside round 1 */
#define LEAK_SYSTEMD_RESOLV "/run/systemd/resolve/resolv.conf"
#define LEAK_NSSWITCH "/etc/nsswitch.conf"

enum severity { SEV_OK = 0, SEV_INFO, SEV_WARN, SEV_UNKNOWN, SEV_LEAK, SEV_UNOBSERVABLE };
static const char *const sev_names[] = {"ok", "info", "warn", "unknown", "leak", "not-observable"};

typedef struct finding {
    enum severity sev;
    char text[320];
    char fix[320];
} finding;

typedef struct addr_set {
    char addr[LEAK_ADDRS_MAX][INET6_ADDRSTRLEN];
    unsigned n;
} addr_set;

/* One query on one path. */
typedef struct probe {
    unsigned path;
    char name[LH_NAME_MAX + 1];
    uint16_t type;
    bool zone; /* a leak-server probe name */
    bool done;
    char result[96]; /* "answered", "SERVFAIL", "no answer" ... */
    addr_set found;
} probe;

/* Where probes go: loophole (path 0) and each upstream directly. */
typedef struct probe_path {
    lh_sockaddr addr;
    char label[64];
    ares_channel ch;
    bool ready;
    char nonce[24]; /* this path's own probe label in the leak zone */
    addr_set egress;
    unsigned answered, sent;
} probe_path;

typedef struct os_result {
    int gai_rc;
    char gai_addr[INET6_ADDRSTRLEN];
    int rq_len, rq_herrno;
    char rq_addr[INET6_ADDRSTRLEN];
} os_result;

typedef struct report {
    const lh_config *cfg;
    finding f[LEAK_FINDINGS_MAX];
    unsigned nf;
    /* configured */
    char resolv_ns[LEAK_NS_MAX][INET6_ADDRSTRLEN];
    unsigned nresolv_ns;
    bool resolv_missing, rotate;
    char resolv_manager[64];
    char nsswitch_hosts[160];
    char resolved_ns[LEAK_NS_MAX][INET6_ADDRSTRLEN];
    unsigned nresolved_ns;
    bool has_resolved;
    char upstream_source[160];
    /* observed */
    char canary[LH_NAME_MAX + 1];
    char canary_expect[INET6_ADDRSTRLEN];
    bool os_ran;
    os_result os;
    probe_path paths[LEAK_PATHS_MAX];
    unsigned npaths;
    probe probes[LEAK_PATHS_MAX * LEAK_PROBES_MAX];
    unsigned nprobes;
} report;

static void add_finding(report *r, enum severity sev, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_finding(report *r, enum severity sev, const char *fix, const char *fmt, ...)
{
    if (r->nf >= LEAK_FINDINGS_MAX) return;
    finding *f = &r->f[r->nf++];
    f->sev = sev;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->text, sizeof f->text, fmt, ap);
    va_end(ap);
    snprintf(f->fix, sizeof f->fix, "%s", fix ? fix : "");
}

static void set_add(addr_set *s, const char *a)
{
    for (unsigned i = 0; i < s->n; i++)
        if (!strcmp(s->addr[i], a)) return;
    if (s->n == LEAK_ADDRS_MAX) return;
    size_t n = strnlen(a, sizeof s->addr[0] - 1);
    memcpy(s->addr[s->n], a, n);
    s->addr[s->n++][n] = 0;
}

static bool set_has(const addr_set *s, const char *a)
{
    for (unsigned i = 0; i < s->n; i++)
        if (!strcmp(s->addr[i], a)) return true;
    return false;
}

static void random_label(char *out, size_t cap)
{
    uint8_t r[8];
    if (getrandom(r, sizeof r, 0) != sizeof r) {
        uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
        memcpy(r, &t, sizeof r);
    }
    snprintf(out, cap, "lh%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5],
             r[6], r[7]);
}

/* ---- configured ---------------------------------------------------------------------- */

/* Is a resolv.conf nameserver (always port 53) one of loophole's listen addresses? */
static bool is_loophole_ns(const lh_config *cfg, const char *text)
{
    lh_sockaddr a;
    if (lh_addr_parse(text, 53, &a) != 0) return false;
    if (lh_config_is_own_address(cfg, &a)) return true;
    for (unsigned i = 0; i < cfg->nlisten; i++) { /* 0.0.0.0:53 / [::]:53 take every address */
        const lh_sockaddr *l = &cfg->listen[i];
        if (l->sa.sa_family != a.sa.sa_family) continue;
        if (l->sa.sa_family == AF_INET && l->v4.sin_addr.s_addr == htonl(INADDR_ANY) &&
            l->v4.sin_port == htons(53))
            return true;
        if (l->sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&l->v6.sin6_addr) &&
            l->v6.sin6_port == htons(53))
            return true;
    }
    return false;
}

/* systemd-resolved forwards to loophole alone (loophole behind resolved's stub). */
static bool resolved_is_loophole(const report *r)
{
    if (!r->has_resolved || !r->nresolved_ns) return false;
    for (unsigned i = 0; i < r->nresolved_ns; i++)
        if (!is_loophole_ns(r->cfg, r->resolved_ns[i])) return false;
    return true;
}

/* A resolv.conf nameserver that leads to loophole: loophole itself, or resolved's stubs when
 * resolved forwards only to loophole (docs/system-resolver.md, way 2). */
static bool leads_to_loophole(const report *r, const char *ns)
{
    return is_loophole_ns(r->cfg, ns) ||
           ((!strcmp(ns, "127.0.0.53") || !strcmp(ns, "127.0.0.54")) && resolved_is_loophole(r));
}

static unsigned read_nameservers(const char *path, char ns[][INET6_ADDRSTRLEN], bool *rotate,
                                 char *manager, size_t manager_len)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[512];
    unsigned n = 0;
    while (fgets(line, sizeof line, f)) {
        char word[32], val[80];
        if (manager && line[0] == '#' && !manager[0]) {
            static const char *const managers[] = {"NetworkManager", "systemd-resolved",
                                                   "resolvconf", "netconfig", "dhclient"};
            for (size_t i = 0; i < sizeof managers / sizeof *managers; i++)
                if (strstr(line, managers[i])) snprintf(manager, manager_len, "%s", managers[i]);
        }
        if (sscanf(line, "%31s %79s", word, val) != 2) continue;
        if (!strcmp(word, "nameserver") && n < LEAK_NS_MAX)
            snprintf(ns[n++], INET6_ADDRSTRLEN, "%.45s", val);
        if (rotate && !strcmp(word, "options") && strstr(line, "rotate")) *rotate = true;
    }
    fclose(f);
    return n;
}

static void check_resolv_conf(report *r)
{
    const lh_config *cfg = r->cfg;
    const char *path = cfg->resolv_conf ? cfg->resolv_conf : LH_DEFAULT_RESOLV_CONF;
    struct stat st;
    if (stat(path, &st) != 0) {
        r->resolv_missing = true;
        /* glibc then asks 127.0.0.1 (and ::1) */
        r->nresolv_ns = 1;
        snprintf(r->resolv_ns[0], sizeof r->resolv_ns[0], "127.0.0.1");
    } else {
        r->nresolv_ns = read_nameservers(path, r->resolv_ns, &r->rotate, r->resolv_manager,
                                         sizeof r->resolv_manager);
        char target[256];
        ssize_t tl = readlink(path, target, sizeof target - 1);
        if (tl > 0 && !r->resolv_manager[0]) {
            target[tl] = 0;
            if (strstr(target, "systemd"))
                snprintf(r->resolv_manager, sizeof r->resolv_manager, "systemd-resolved");
            else if (strstr(target, "NetworkManager"))
                snprintf(r->resolv_manager, sizeof r->resolv_manager, "NetworkManager");
            else if (strstr(target, "resolvconf"))
                snprintf(r->resolv_manager, sizeof r->resolv_manager, "resolvconf");
        }
    }
    unsigned ours = 0;
    for (unsigned i = 0; i < r->nresolv_ns; i++)
        if (leads_to_loophole(r, r->resolv_ns[i])) ours++;
    char fix[320];
    char own[64];
    lh_addr_format(&cfg->listen[0], own, sizeof own);
    snprintf(fix, sizeof fix,
             "make %s list only loophole (e.g. 'nameserver 127.0.0.53', loophole listening on "
             "port 53); see docs/system-resolver.md",
             path);
    if (ours == 0) {
        add_finding(r, SEV_LEAK, fix,
                    "%s%s does not point at loophole (%s): applications do not use it at all", path,
                    r->resolv_missing ? " is missing, so glibc asks 127.0.0.1, which" : "", own);
    } else {
        for (unsigned i = 0; i < r->nresolv_ns; i++) {
            if (leads_to_loophole(r, r->resolv_ns[i])) continue;
            bool v6 = strchr(r->resolv_ns[i], ':') != NULL;
            add_finding(r, SEV_LEAK, fix,
                        "%s also lists nameserver %s%s: glibc sends queries there whenever "
                        "loophole is slow or down%s",
                        path, r->resolv_ns[i], v6 ? " (IPv6)" : "",
                        v6 ? "; IPv6 nameservers often arrive by router advertisement (RDNSS)"
                           : "");
        }
        if (r->rotate && ours < r->nresolv_ns)
            add_finding(r, SEV_LEAK, "remove 'options rotate' and the other nameservers",
                        "%s has 'options rotate': glibc spreads queries over all %u nameservers, "
                        "not only loophole",
                        path, r->nresolv_ns);
    }
    if (r->resolv_manager[0])
        add_finding(r, SEV_WARN,
                    !strcmp(r->resolv_manager, "systemd-resolved")
                        ? "point systemd-resolved at loophole, or replace the symlink with a "
                          "file of your own (docs/system-resolver.md)"
                    : !strcmp(r->resolv_manager, "NetworkManager")
                        ? "set dns=none in NetworkManager.conf ([main]) and restart it"
                        : "configure the manager to write loophole's address",
                    "%s is managed by %s, which may rewrite it (e.g. on the next DHCP lease) with "
                    "other nameservers",
                    path, r->resolv_manager);
}

static void check_nsswitch(report *r)
{
    FILE *f = fopen(LEAK_NSSWITCH, "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "hosts:", 6)) continue;
        char *s = line + 6;
        s += strspn(s, " \t");
        s[strcspn(s, "\n#")] = 0;
        snprintf(r->nsswitch_hosts, sizeof r->nsswitch_hosts, "%s", s);
    }
    fclose(f);
    if (!r->nsswitch_hosts[0]) return;
    char copy[sizeof r->nsswitch_hosts];
    snprintf(copy, sizeof copy, "%s", r->nsswitch_hosts);
    bool has_dns = false, has_resolve = false;
    for (char *save, *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        if (!strcmp(w, "dns")) has_dns = true;
        if (!strcmp(w, "resolve")) has_resolve = true;
    }
    if (has_resolve) {
        unsigned ours = 0;
        for (unsigned i = 0; i < r->nresolved_ns; i++)
            if (is_loophole_ns(r->cfg, r->resolved_ns[i])) ours++;
        if (!r->has_resolved || ours == 0 || ours < r->nresolved_ns)
            add_finding(r, SEV_LEAK,
                        "remove 'resolve' from the hosts: line, or give systemd-resolved "
                        "loophole as its only server (DNS= in resolved.conf)",
                        "nsswitch.conf sends host lookups to systemd-resolved ('resolve' in "
                        "'hosts: %s'), which does not read resolv.conf%s%s",
                        r->nsswitch_hosts, r->has_resolved ? " and forwards to " : "",
                        r->has_resolved ? r->resolved_ns[0] : "");
    } else if (!has_dns) {
        add_finding(r, SEV_WARN, "add 'dns' to the hosts: line of /etc/nsswitch.conf",
                    "nsswitch.conf 'hosts: %s' has no 'dns': applications never ask loophole",
                    r->nsswitch_hosts);
    }
}

static void check_systemd_resolved(report *r)
{
    r->nresolved_ns = read_nameservers(LEAK_SYSTEMD_RESOLV, r->resolved_ns, NULL, NULL, 0);
    struct stat st;
    r->has_resolved = stat(LEAK_SYSTEMD_RESOLV, &st) == 0;
    if (!r->has_resolved) return;
    for (unsigned i = 0; i < r->nresolved_ns; i++)
        if (!is_loophole_ns(r->cfg, r->resolved_ns[i]))
            add_finding(r, SEV_WARN,
                        "set DNS= to loophole's address in /etc/systemd/resolved.conf, or stop "
                        "systemd-resolved (docs/system-resolver.md)",
                        "systemd-resolved forwards to %s: whatever asks it (nss-resolve, D-Bus, "
                        "its stubs) bypasses loophole",
                        r->resolved_ns[i]);
}

/* Port-53 UDP sockets of this network namespace, from /proc/net/udp{,6}. */
static void check_listeners(report *r)
{
    static const char *const files[] = {"/proc/net/udp", "/proc/net/udp6"};
    for (int fi = 0; fi < 2; fi++) {
        FILE *f = fopen(files[fi], "r");
        if (!f) continue;
        char line[512];
        while (fgets(line, sizeof line, f)) {
            char local[64];
            unsigned port;
            if (sscanf(line, " %*d: %63[0-9A-Fa-f]:%x", local, &port) != 2 || port != 53) continue;
            lh_sockaddr a;
            memset(&a, 0, sizeof a);
            char text[INET6_ADDRSTRLEN];
            if (fi == 0) {
                unsigned v;
                sscanf(local, "%x", &v);
                a.v4.sin_family = AF_INET;
                a.v4.sin_addr.s_addr = v; /* /proc prints the address in host order */
                a.v4.sin_port = htons(53);
                inet_ntop(AF_INET, &a.v4.sin_addr, text, sizeof text);
            } else {
                a.v6.sin6_family = AF_INET6;
                for (int w = 0; w < 4; w++) {
                    unsigned v;
                    char part[9];
                    memcpy(part, local + w * 8, 8);
                    part[8] = 0;
                    sscanf(part, "%x", &v);
                    memcpy(&a.v6.sin6_addr.s6_addr[w * 4], &v, 4);
                }
                a.v6.sin6_port = htons(53);
                inet_ntop(AF_INET6, &a.v6.sin6_addr, text, sizeof text);
            }
            if (lh_config_is_own_address(r->cfg, &a) || leads_to_loophole(r, text)) continue;
            if (!strcmp(text, "127.0.0.54"))
                add_finding(r, SEV_WARN,
                            "set DNSStubListenerExtra= empty and point systemd-resolved at "
                            "loophole, or stop it",
                            "systemd-resolved's proxy stub listens on 127.0.0.54:53 and "
                            "forwards to resolved's own servers: programs pointed at it bypass "
                            "loophole");
            else
                add_finding(r, SEV_WARN,
                            "stop that server (find it with 'ss -lunp sport = :53') or make it "
                            "forward to loophole",
                            "another DNS server listens on %s port 53 on this machine: programs "
                            "pointed at it bypass loophole",
                            text);
        }
        fclose(f);
    }
}

/* ---- observed: the OS path ---------------------------------------------------------- */

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
    os_result res;
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

static pid_t os_start(report *r, int *fd)
{
    char nonce[24];
    random_label(nonce, sizeof nonce);
    snprintf(r->canary, sizeof r->canary, "%s.%s", nonce, LH_LEAK_CANARY_ZONE);
    lh_name n;
    uint64_t h[LH_LABELS_MAX];
    uint8_t v4[4];
    lh_name_from_text(r->canary, strlen(r->canary), &n);
    lh_name_hashes(&n, h);
    lh_leak_canary_v4(h[0], v4);
    inet_ntop(AF_INET, v4, r->canary_expect, sizeof r->canary_expect);
    int p[2];
    if (pipe(p) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        /* One try of one second per nameserver keeps glibc inside the deadline. */
        setenv("RES_OPTIONS", "timeout:1 attempts:1", 1);
        os_child(r->canary, p[1]);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    *fd = p[0];
    return pid;
}

static void os_finish(report *r, pid_t pid, int fd, uint64_t deadline_ms);

/* ---- observed: the egress path ------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
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
        if (inet_pton(AF_INET, w, bin) == 1 || inet_pton(AF_INET6, w, bin) == 1) set_add(out, w);
    }
}

static void on_probe_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    probe *p = arg;
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
    ldns_pkt_rcode rc = ldns_pkt_get_rcode(pkt);
    if (rc != LDNS_RCODE_NOERROR) {
        char *t = ldns_pkt_rcode2str(rc);
        snprintf(p->result, sizeof p->result, "%s", t ? t : "error");
        free(t);
        ldns_pkt_free(pkt);
        return;
    }
    ldns_rr_list *an = ldns_pkt_answer(pkt);
    for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
        ldns_rr *rr = ldns_rr_list_rr(an, i);
        ldns_rr_type t = ldns_rr_get_type(rr);
        char text[INET6_ADDRSTRLEN];
        if (t == LDNS_RR_TYPE_A && ldns_rr_rd_count(rr) == 1) {
            inet_ntop(AF_INET, ldns_rdf_data(ldns_rr_rdf(rr, 0)), text, sizeof text);
            set_add(&p->found, text);
        } else if (t == LDNS_RR_TYPE_AAAA && ldns_rr_rd_count(rr) == 1) {
            inet_ntop(AF_INET6, ldns_rdf_data(ldns_rr_rdf(rr, 0)), text, sizeof text);
            set_add(&p->found, text);
        } else if (t == LDNS_RR_TYPE_TXT) {
            for (size_t k = 0; k < ldns_rr_rd_count(rr); k++)
                txt_addresses(ldns_rr_rdf(rr, k), &p->found);
        }
    }
    ldns_pkt_free(pkt);
    snprintf(p->result, sizeof p->result, "%s",
             p->found.n ? "answered" : "answered, no resolver address in it");
}

static void probe_add(report *r, unsigned path, const char *name, uint16_t type, bool zone)
{
    if (r->nprobes >= sizeof r->probes / sizeof *r->probes) return;
    probe *p = &r->probes[r->nprobes++];
    memset(p, 0, sizeof *p);
    p->path = path;
    p->type = type;
    p->zone = zone;
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->result, sizeof p->result, "not sent");
}

/* Sends probes [from, to) and processes answers until all are done or the deadline. */
static void probes_run(report *r, unsigned from, unsigned to, unsigned budget_ms, pid_t os_pid,
                       int os_fd, uint64_t os_deadline)
{
    for (unsigned i = from; i < to; i++) {
        probe *p = &r->probes[i];
        probe_path *pa = &r->paths[p->path];
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
        pa->sent++;
        ares_send(pa->ch, q, (int)n, on_probe_answer, p);
    }
    uint64_t deadline = now_ms() + budget_ms;
    for (;;) {
        bool pending = false;
        for (unsigned i = from; i < to; i++)
            if (!r->probes[i].done) pending = true;
        uint64_t now = now_ms();
        if (!pending || now >= deadline) break;
        fd_set rd, wr;
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        int nfds = 0;
        for (unsigned i = 0; i < r->npaths; i++) {
            if (!r->paths[i].ready) continue;
            int n = ares_fds(r->paths[i].ch, &rd, &wr);
            if (n > nfds) nfds = n;
        }
        uint64_t left = deadline - now;
        struct timeval tv = {.tv_sec = (time_t)(left / 1000),
                             .tv_usec = (suseconds_t)(left % 1000) * 1000};
        if (tv.tv_sec > 0 || tv.tv_usec > 100000) tv = (struct timeval){.tv_usec = 100000};
        if (select(nfds, &rd, &wr, NULL, &tv) < 0 && errno != EINTR) break;
        for (unsigned i = 0; i < r->npaths; i++)
            if (r->paths[i].ready) ares_process(r->paths[i].ch, &rd, &wr);
    }
    for (unsigned i = 0; i < r->npaths; i++)
        if (r->paths[i].ready) ares_cancel(r->paths[i].ch); /* the rest: "no answer in time" */
    if (os_pid > 0) os_finish(r, os_pid, os_fd, os_deadline);
}

static void os_finish(report *r, pid_t pid, int fd, uint64_t deadline_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    uint64_t now = now_ms();
    int wait_ms = deadline_ms > now ? (int)(deadline_ms - now) : 0;
    if (poll(&pfd, 1, wait_ms) == 1 && read(fd, &r->os, sizeof r->os) == (ssize_t)sizeof r->os)
        r->os_ran = true;
    close(fd);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void paths_open(report *r)
{
    const lh_config *cfg = r->cfg;
    /* Path 0: loophole at its first listen address (a wildcard one is reached on loopback). */
    probe_path *p = &r->paths[r->npaths++];
    p->addr = cfg->listen[0];
    if (p->addr.sa.sa_family == AF_INET && p->addr.v4.sin_addr.s_addr == htonl(INADDR_ANY))
        p->addr.v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (p->addr.sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&p->addr.v6.sin6_addr))
        p->addr.v6.sin6_addr = in6addr_loopback;
    lh_sockaddr ups[LH_UPSTREAMS_MAX];
    unsigned nups;
    if (cfg->nupstreams) {
        memcpy(ups, cfg->upstreams, cfg->nupstreams * sizeof *ups);
        nups = cfg->nupstreams;
        snprintf(r->upstream_source, sizeof r->upstream_source, "the upstream setting");
    } else {
        nups = lh_config_default_upstreams(cfg, ups, LH_UPSTREAMS_MAX, r->upstream_source,
                                           sizeof r->upstream_source);
    }
    for (unsigned i = 0; i < nups && r->npaths < LEAK_PATHS_MAX; i++)
        r->paths[r->npaths++].addr = ups[i];
    for (unsigned i = 0; i < r->npaths; i++) {
        p = &r->paths[i];
        lh_addr_format(&p->addr, p->label, sizeof p->label);
        random_label(p->nonce, sizeof p->nonce);
        /* Two tries (one second, then two): a lost datagram is retried, a dead path is not
         * waited on beyond the round's budget. NOCHECKRESP: a SERVFAIL is a result to show. */
        p->ready = lh_ares_channel_new(&p->ch, ARES_FLAG_NOCHECKRESP, &p->addr, 1, 1000, 2, NULL,
                                       NULL) == 0;
    }
}

static const struct {
    const char *name;
    uint16_t type;
} public_probes[] = {
    {"whoami.akamai.net", LH_TYPE_A},
    {"o-o.myaddr.l.google.com", LH_TYPE_TXT},
    {"resolver.dnscrypt.info", LH_TYPE_TXT},
    {"whoami.ds.akahelp.net", LH_TYPE_TXT},
};

static void observe(report *r)
{
    const lh_config *cfg = r->cfg;
    int os_fd = -1;
    uint64_t os_deadline = now_ms() + LEAK_OS_MS;
    pid_t os_pid = os_start(r, &os_fd);
    paths_open(r);
    for (unsigned pa = 0; pa < r->npaths; pa++) {
        for (size_t i = 0; i < sizeof public_probes / sizeof *public_probes; i++)
            probe_add(r, pa, public_probes[i].name, public_probes[i].type, false);
        if (cfg->probe_zone) {
            char name[LH_NAME_MAX + 1];
            snprintf(name, sizeof name, "%s.%s", r->paths[pa].nonce, cfg->probe_zone);
            probe_add(r, pa, name, LH_TYPE_TXT, true);
        }
    }
    unsigned round1 = r->nprobes;
    probes_run(r, 0, round1, LEAK_ROUND1_MS, os_pid, os_fd, os_deadline);
    if (cfg->probe_zone) { /* every resolver the zone saw carrying this path's probe */
        for (unsigned pa = 0; pa < r->npaths; pa++) {
            char name[LH_NAME_MAX + 1];
            snprintf(name, sizeof name, "results.%s.%s", r->paths[pa].nonce, cfg->probe_zone);
            probe_add(r, pa, name, LH_TYPE_TXT, true);
        }
        probes_run(r, round1, r->nprobes, LEAK_ROUND2_MS, 0, -1, 0);
    }
    for (unsigned i = 0; i < r->nprobes; i++) {
        probe *p = &r->probes[i];
        probe_path *pa = &r->paths[p->path];
        if (p->found.n) pa->answered++;
        for (unsigned k = 0; k < p->found.n; k++)
            set_add(&pa->egress, p->found.addr[k]);
    }
    for (unsigned i = 0; i < r->npaths; i++)
        if (r->paths[i].ready) ares_destroy(r->paths[i].ch);
}

/* ---- verdict ------------------------------------------------------------------------- */

static void judge_os_path(report *r)
{
    const char *fix = "make loophole the only nameserver applications use "
                      "(docs/system-resolver.md), then run the check again";
    if (!r->os_ran) {
        add_finding(r, SEV_UNKNOWN, "check that loophole runs: 'loophole health'",
                    "the system resolver gave no answer for the canary %s within %d s", r->canary,
                    LEAK_OS_MS / 1000);
        return;
    }
    const os_result *o = &r->os;
    if (o->gai_rc == 0 && !strcmp(o->gai_addr, r->canary_expect))
        add_finding(r, SEV_OK, NULL,
                    "applications (getaddrinfo) reach loophole: the canary got loophole's "
                    "answer %s",
                    o->gai_addr);
    else if (o->gai_rc == 0)
        add_finding(r, SEV_LEAK, fix,
                    "getaddrinfo answered the canary %s with %s, not loophole's %s: another "
                    "resolver answers applications",
                    r->canary, o->gai_addr, r->canary_expect);
    else if (o->gai_rc == EAI_NONAME || o->gai_rc == EAI_NODATA)
        add_finding(r, SEV_LEAK, fix,
                    "getaddrinfo says the canary %s does not exist: a resolver other than "
                    "loophole answered applications",
                    r->canary);
    else
        add_finding(r, SEV_UNKNOWN, "check that loophole runs: 'loophole health'",
                    "getaddrinfo got no answer for the canary %s (%s)", r->canary,
                    gai_strerror(o->gai_rc));
    if (o->rq_len > 0 && strcmp(o->rq_addr, r->canary_expect))
        add_finding(r, SEV_LEAK, fix,
                    "res_query (the path dig-like programs use) got %s for the canary, not "
                    "loophole's %s",
                    o->rq_addr[0] ? o->rq_addr : "no address", r->canary_expect);
    else if (o->rq_len < 0 && o->rq_herrno == HOST_NOT_FOUND)
        add_finding(r, SEV_LEAK, fix,
                    "res_query got NXDOMAIN for the canary: a nameserver in resolv.conf that is "
                    "not loophole answered");
}

static void judge_egress(report *r)
{
    probe_path *lh = &r->paths[0];
    addr_set direct = {0};
    unsigned probed = 0;
    for (unsigned i = 1; i < r->npaths; i++) {
        if (r->paths[i].egress.n) probed++;
        for (unsigned k = 0; k < r->paths[i].egress.n; k++)
            set_add(&direct, r->paths[i].egress.addr[k]);
    }
    const char *offline_fix = "run a leak server you control and pass --probe-zone "
                              "(docs/leak-check.md), or check that the network is reachable";
    if (!lh->egress.n) {
        char why[200] = "";
        lh_sbuf b;
        lh_sbuf_init(&b, why, sizeof why);
        for (unsigned i = 0; i < r->nprobes; i++)
            if (r->probes[i].path == 0)
                lh_sbuf_printf(&b, "%s%s: %s", b.len ? "; " : "", r->probes[i].name,
                               r->probes[i].result);
        add_finding(r, SEV_UNKNOWN, offline_fix,
                    "no egress probe through loophole (%s) reported a resolver address (%s)",
                    lh->label, why);
        return;
    }
    if (!probed) {
        add_finding(r, SEV_UNKNOWN, offline_fix,
                    "queries through loophole egress from %s, but none of loophole's upstreams "
                    "could be probed directly to compare",
                    lh->egress.addr[0]);
        return;
    }
    bool leak = false;
    for (unsigned k = 0; k < lh->egress.n; k++) {
        if (set_has(&direct, lh->egress.addr[k])) continue;
        leak = true;
        add_finding(r, SEV_LEAK,
                    "check that the running loophole uses this configuration (restart or "
                    "reload it), and look for a VPN route or a transparent DNS proxy that "
                    "redirects port 53",
                    "queries through loophole reach the authoritative side from %s, which none "
                    "of loophole's configured upstreams reports when asked directly",
                    lh->egress.addr[k]);
    }
    if (!leak)
        add_finding(r, SEV_OK, NULL,
                    "queries through loophole egress only where its configured upstreams do "
                    "(%u resolver address(es))",
                    lh->egress.n);
}

static void judge_unobservable(report *r)
{
    add_finding(r, SEV_UNOBSERVABLE,
                r->cfg->canary_names
                    ? "loophole answers Firefox's canary use-application-dns.net with NXDOMAIN; "
                      "turn DoH off in other browsers' settings or block their DoH endpoints "
                      "with a DoH blocklist"
                    : "turn canary-names back on (it switches Firefox's automatic DoH off) and "
                      "block DoH endpoints with a DoH blocklist",
                "browsers' own DNS over HTTPS cannot be seen at the DNS level");
    add_finding(r, SEV_UNOBSERVABLE,
                "allow outbound port 53 and 853 only for loophole's user in the firewall",
                "applications with hard-coded resolvers (e.g. 8.8.8.8) or DNS over TLS bypass "
                "resolv.conf and cannot be seen from here");
    add_finding(r, SEV_UNOBSERVABLE, "disable WebRTC or limit its IP handling in the browser",
                "WebRTC reveals addresses without DNS: not a DNS leak, but the same privacy "
                "goal");
}

/* ---- output -------------------------------------------------------------------------- */

static int exit_code(const report *r, const char **verdict)
{
    bool leak = false, unknown = false;
    for (unsigned i = 0; i < r->nf; i++) {
        if (r->f[i].sev == SEV_LEAK) leak = true;
        if (r->f[i].sev == SEV_UNKNOWN) unknown = true;
    }
    *verdict = leak ? "leak" : unknown ? "unknown" : "clean";
    return leak ? 1 : unknown ? 2 : 0;
}

static void json_str_array(lh_sbuf *b, const char (*list)[INET6_ADDRSTRLEN], unsigned n)
{
    lh_sbuf_putc(b, '[');
    for (unsigned i = 0; i < n; i++) {
        if (i) lh_sbuf_putc(b, ',');
        lh_sbuf_json_str(b, list[i]);
    }
    lh_sbuf_putc(b, ']');
}

static void print_json(const report *r, int code, const char *verdict, lh_sbuf *b)
{
    const lh_config *cfg = r->cfg;
    lh_sbuf_printf(b, "{\"verdict\":\"%s\",\"exit_code\":%d,\"configured\":{", verdict, code);
    lh_sbuf_printf(b, "\"loophole_listen\":[");
    for (unsigned i = 0; i < cfg->nlisten; i++) {
        char a[64];
        lh_addr_format(&cfg->listen[i], a, sizeof a);
        if (i) lh_sbuf_putc(b, ',');
        lh_sbuf_json_str(b, a);
    }
    lh_sbuf_printf(b, "],\"loophole_upstreams\":[");
    for (unsigned i = 1; i < r->npaths; i++) {
        if (i > 1) lh_sbuf_putc(b, ',');
        lh_sbuf_json_str(b, r->paths[i].label);
    }
    lh_sbuf_printf(b, "],\"upstreams_from\":");
    lh_sbuf_json_str(b, r->upstream_source);
    lh_sbuf_printf(b, ",\"resolv_conf\":");
    lh_sbuf_json_str(b, cfg->resolv_conf ? cfg->resolv_conf : LH_DEFAULT_RESOLV_CONF);
    lh_sbuf_printf(b, ",\"system_nameservers\":");
    json_str_array(b, r->resolv_ns, r->nresolv_ns);
    lh_sbuf_printf(b, ",\"nsswitch_hosts\":");
    lh_sbuf_json_str(b, r->nsswitch_hosts);
    lh_sbuf_printf(b, ",\"systemd_resolved_servers\":");
    json_str_array(b, r->resolved_ns, r->nresolved_ns);
    lh_sbuf_printf(b, "},\"observed\":{\"canary\":{\"name\":");
    lh_sbuf_json_str(b, r->canary);
    lh_sbuf_printf(b, ",\"expected\":\"%s\",\"answered\":%s,\"getaddrinfo\":", r->canary_expect,
                   r->os_ran ? "true" : "false");
    lh_sbuf_json_str(b, !r->os_ran          ? ""
                        : r->os.gai_rc == 0 ? r->os.gai_addr
                                            : gai_strerror(r->os.gai_rc));
    lh_sbuf_printf(b, ",\"res_query\":");
    lh_sbuf_json_str(b, r->os_ran && r->os.rq_len > 0 ? r->os.rq_addr : "");
    lh_sbuf_printf(b, "},\"paths\":[");
    for (unsigned i = 0; i < r->npaths; i++) {
        const probe_path *pa = &r->paths[i];
        lh_sbuf_printf(b, "%s{\"via\":\"%s\",\"server\":", i ? "," : "",
                       i ? "upstream" : "loophole");
        lh_sbuf_json_str(b, pa->label);
        lh_sbuf_printf(b, ",\"egress\":");
        json_str_array(b, pa->egress.addr, pa->egress.n);
        lh_sbuf_printf(b, ",\"probes\":[");
        bool first = true;
        for (unsigned k = 0; k < r->nprobes; k++) {
            const probe *p = &r->probes[k];
            if (p->path != i) continue;
            lh_sbuf_printf(b, "%s{\"name\":", first ? "" : ",");
            first = false;
            lh_sbuf_json_str(b, p->name);
            lh_sbuf_printf(b, ",\"type\":\"%s\",\"result\":", p->type == LH_TYPE_A ? "A" : "TXT");
            lh_sbuf_json_str(b, p->result);
            lh_sbuf_printf(b, ",\"addresses\":");
            json_str_array(b, p->found.addr, p->found.n);
            lh_sbuf_putc(b, '}');
        }
        lh_sbuf_printf(b, "]}");
    }
    lh_sbuf_printf(b, "]},\"findings\":[");
    for (unsigned i = 0; i < r->nf; i++) {
        lh_sbuf_printf(b, "%s{\"severity\":\"%s\",\"finding\":", i ? "," : "",
                       sev_names[r->f[i].sev]);
        lh_sbuf_json_str(b, r->f[i].text);
        lh_sbuf_printf(b, ",\"fix\":");
        lh_sbuf_json_str(b, r->f[i].fix);
        lh_sbuf_putc(b, '}');
    }
    lh_sbuf_printf(b, "]}\n");
}

static void print_human(const report *r, int code, lh_sbuf *b)
{
    const lh_config *cfg = r->cfg;
    char a[64];
    lh_sbuf_printf(b, "loophole leak check\n\nConfigured\n");
    lh_addr_format(&cfg->listen[0], a, sizeof a);
    lh_sbuf_printf(b, "  %-26s %s\n", "loophole listens on", a);
    lh_sbuf_printf(b, "  %-26s", "loophole forwards to");
    for (unsigned i = 1; i < r->npaths; i++)
        lh_sbuf_printf(b, " %s", r->paths[i].label);
    lh_sbuf_printf(b, " (from %s)\n", r->upstream_source);
    lh_sbuf_printf(b, "  %-26s", "system nameservers");
    for (unsigned i = 0; i < r->nresolv_ns; i++)
        lh_sbuf_printf(b, " %s%s", r->resolv_ns[i],
                       leads_to_loophole(r, r->resolv_ns[i]) ? " (loophole)" : "");
    lh_sbuf_printf(b, "%s (%s)\n", r->nresolv_ns ? "" : " none",
                   cfg->resolv_conf ? cfg->resolv_conf : LH_DEFAULT_RESOLV_CONF);
    lh_sbuf_printf(b, "  %-26s %s\n", "nsswitch hosts",
                   r->nsswitch_hosts[0] ? r->nsswitch_hosts : "(no hosts: line)");
    if (r->has_resolved) {
        lh_sbuf_printf(b, "  %-26s", "systemd-resolved servers");
        for (unsigned i = 0; i < r->nresolved_ns; i++)
            lh_sbuf_printf(b, " %s", r->resolved_ns[i]);
        lh_sbuf_printf(b, "\n");
    }
    lh_sbuf_printf(b, "\nObserved\n  %-26s %s -> %s (loophole answers %s)\n",
                   "OS path (getaddrinfo)", r->canary,
                   !r->os_ran          ? "no answer"
                   : r->os.gai_rc == 0 ? r->os.gai_addr
                                       : gai_strerror(r->os.gai_rc),
                   r->canary_expect);
    for (unsigned i = 0; i < r->npaths; i++) {
        const probe_path *pa = &r->paths[i];
        char head[96];
        snprintf(head, sizeof head, "egress %s %s", i ? "of upstream" : "through loophole",
                 i ? pa->label : "");
        lh_sbuf_printf(b, "  %-26s", head);
        for (unsigned k = 0; k < pa->egress.n; k++)
            lh_sbuf_printf(b, " %s", pa->egress.addr[k]);
        lh_sbuf_printf(b, "%s\n", pa->egress.n ? "" : " (no probe answered)");
        for (unsigned k = 0; k < r->nprobes; k++) {
            const probe *p = &r->probes[k];
            if (p->path != i) continue;
            lh_sbuf_printf(b, "      %-48s %-4s %s", p->name, p->type == LH_TYPE_A ? "A" : "TXT",
                           p->result);
            for (unsigned j = 0; j < p->found.n; j++)
                lh_sbuf_printf(b, "%s%s", j ? ", " : ": ", p->found.addr[j]);
            lh_sbuf_printf(b, "\n");
        }
    }
    lh_sbuf_printf(b, "\nFindings\n");
    static const char *const tags[] = {"OK", "INFO", "WARN", "UNKNOWN", "LEAK", "NOT SEEN"};
    for (unsigned i = 0; i < r->nf; i++) {
        lh_sbuf_printf(b, "  %-8s %s\n", tags[r->f[i].sev], r->f[i].text);
        if (r->f[i].fix[0]) lh_sbuf_printf(b, "  %-8s fix: %s\n", "", r->f[i].fix);
    }
    lh_sbuf_printf(b, "\nVerdict: %s (exit %d)%s\n",
                   code == 1   ? "LEAK"
                   : code == 2 ? "COULD NOT TELL"
                               : "NO LEAK SEEN",
                   code,
                   code == 0 ? ": the NOT SEEN items above are outside what DNS can show" : "");
}

int lh_leak_check(const lh_config *cfg, bool json)
{
    report *r = calloc(1, sizeof *r);
    if (!r || ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
        fprintf(stderr, "loophole leak-check: out of memory\n");
        free(r);
        return 2;
    }
    r->cfg = cfg;
    check_systemd_resolved(r); /* first: the others ask whether resolved leads to loophole */
    check_resolv_conf(r);
    check_nsswitch(r);
    check_listeners(r);
    observe(r);
    judge_os_path(r);
    judge_egress(r);
    judge_unobservable(r);
    const char *verdict;
    int code = exit_code(r, &verdict);
    /* Sized for the worst case: every finding and 17 paths of 6 probes, each at its longest. */
    static char out[256 * 1024];
    lh_sbuf b;
    lh_sbuf_init(&b, out, sizeof out);
    if (json)
        print_json(r, code, verdict, &b);
    else
        print_human(r, code, &b);
    fwrite(out, 1, b.len, stdout);
    if (b.overflow) {
        fprintf(stderr, "loophole leak-check: the report did not fit its buffer\n");
        code = 2;
    }
    ares_library_cleanup();
    free(r);
    return code;
}
