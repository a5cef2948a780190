/* leak_check.h - the leak check's one report structure, shared by its modules (private to them):
 *
 *   leak_check.c       the run: configured, then observed, then the verdict; findings, hops
 *   leak_daemon.c      what loophole runs: asked of the daemon, else read from the config;
 *                      a daemon running with other settings than its config file; plain DNS
 *   leak_configured.c  what the system is set up to use (resolv.conf, nsswitch, resolved,
 *                      port-53 listeners)
 *   leak_probe.c       the probe engine: DNS questions on several paths within a deadline
 *   leak_observed.c    what to probe: the canary through glibc, the egress through loophole
 *                      and its upstreams, the leak server and an unused address directly
 *   leak_judge.c       what the observations mean: findings about the OS path, the egress and
 *                      interception
 *   leak_report.c      the text and JSON renderings of one leak_report
 *
 * Every fact is stored once, here; both renderers walk the same fields, so the text and JSON
 * reports cannot disagree. */
#ifndef LH_LEAK_CHECK_PRIVATE_H
#define LH_LEAK_CHECK_PRIVATE_H

#include "loophole/config.h"
#include "loophole/leak.h"
#include "loophole/sbuf.h"
#include "loophole/wire.h"

#include <ares.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define LEAK_FINDINGS_MAX 48
#define LEAK_UPSTREAMS_MAX (LH_UPSTREAMS_MAX + 8)
#define LEAK_PATHS_MAX (1 + LH_UPSTREAMS_MAX + 4)
#define LEAK_PROBES_MAX 8 /* per path */
#define LEAK_ADDRS_MAX 16
#define LEAK_NS_MAX 8
#define LEAK_TEXT_MAX 320
#define LEAK_ROUND1_MS 3500 /* whoami, zone and unused-address probes */
#define LEAK_ROUND2_MS 2500 /* the zone's results names and the leak server asked directly */
#define LEAK_OS_MS 4000     /* the canary through glibc, run beside round 1 */
#define LEAK_CONTROL_MS 1000
/* Where no DNS server runs (RFC 5737 / RFC 3849 documentation addresses, never routed): a
 * question sent there that gets an answer was intercepted on the way. */
#define LEAK_UNUSED_V4 "192.0.2.53"
#define LEAK_UNUSED_V6 "2001:db8::53"
/* Outside every zone a leak server serves, and answered by any recursive resolver at once
 * (RFC 6761 reserves .test): the leak server REFUSES it, an interceptor does not. */
#define LEAK_OUTSIDE_LABEL "intercept-check.loophole.test"

enum leak_sev {
    SEV_OK = 0,
    SEV_INFO,
    SEV_WARN,
    SEV_UNKNOWN,
    SEV_LEAK,
    SEV_UNOBSERVABLE,
    SEV_COUNT
};
extern const char *const leak_sev_names[SEV_COUNT]; /* JSON: "ok" ... "not-observable" */
extern const char *const leak_sev_tags[SEV_COUNT];  /* text: "OK" ... "NOT SEEN" */

/* The hops of the path a query takes, as the report's diagram draws them. A finding names the
 * hop it concerns; the diagram marks each hop with the worst of its findings. */
enum leak_hop {
    HOP_APPLICATION = 0,
    HOP_GLIBC,
    HOP_LOOPHOLE,
    HOP_UPSTREAM,
    HOP_EGRESS,
    HOP_LEAK_SERVER,
    HOP_COUNT
};
extern const char *const leak_hop_names[HOP_COUNT];

typedef struct leak_finding {
    enum leak_sev sev;
    enum leak_hop hop;
    char text[LEAK_TEXT_MAX];
    char fix[LEAK_TEXT_MAX];
} leak_finding;

typedef struct leak_hop_view {
    char detail[200];   /* what the check knows of this hop, one line */
    enum leak_sev mark; /* the worst finding's severity; SEV_OK when none */
    bool marked;        /* some finding names this hop */
} leak_hop_view;

typedef struct addr_set {
    char addr[LEAK_ADDRS_MAX][INET6_ADDRSTRLEN];
    unsigned n;
} addr_set;

/* One of loophole's upstreams as the running daemon (or the configuration) states it. */
typedef struct leak_upstream {
    lh_sockaddr addr;
    char label[64];
    char transport[16]; /* "plain": udp, tcp for truncated answers; "tls": DNS over TLS */
    char zone[LH_NAME_MAX + 1];
    char source[16]; /* lh_upstream_origin_names */
    /* "private" (strict encrypted), "opportunistic" (encrypted, plain DNS when that fails:
     * tls-mode), "plain"; empty from a daemon too old to say (then the transport decides) */
    char privacy[16];
} leak_upstream;

/* What the running daemon said through its control socket. */
typedef struct leak_daemon {
    char socket[108];
    bool reached;
    char error[200]; /* why it could not be asked */
    long pid;
    char config_file[1024];
    char listen_source[16];
    char compared_with[1100]; /* what its settings were compared with; empty: nothing */
    char dnssec_mode[24], dnssec_path[16]; /* `dnssec MODE path=...`; "" from older daemons */
} leak_daemon;

/* What loophole runs and what the system is set up to use. */
typedef struct leak_configured {
    leak_daemon daemon;
    bool from_daemon; /* listen and upstreams below are the daemon's; else the check's config */
    lh_sockaddr listen[LH_LISTEN_MAX];
    unsigned nlisten;
    leak_upstream up[LEAK_UPSTREAMS_MAX];
    unsigned nup;
    char upstream_source[LH_ERR_MAX];
    char resolv_path[256];
    char resolv_ns[LEAK_NS_MAX][INET6_ADDRSTRLEN];
    unsigned nresolv_ns;
    bool resolv_missing, rotate;
    char resolv_manager[64];
    char nsswitch_hosts[160];
    char resolved_ns[LEAK_NS_MAX][INET6_ADDRSTRLEN];
    unsigned nresolved_ns;
    bool has_resolved;
} leak_configured;

/* One question on one path. */
typedef struct leak_probe {
    unsigned path;
    char name[LH_NAME_MAX + 1];
    uint16_t type;
    bool sent, done, answered; /* answered: a DNS message came back */
    int rcode;
    bool aa, ra;
    char result[96]; /* "answered", "SERVFAIL", "no answer" ... */
    addr_set found;
} leak_probe;

enum leak_via { VIA_LOOPHOLE = 0, VIA_UPSTREAM, VIA_LEAK_SERVER, VIA_UNUSED, VIA_COUNT };
extern const char *const leak_via_names[VIA_COUNT];

/* Where probes go: loophole (path 0), each upstream directly, the leak server directly, and an
 * address where no DNS server runs. */
typedef struct leak_path {
    enum leak_via via;
    lh_sockaddr addr;
    char label[64];
    ares_channel ch;
    bool ready;
    char nonce[24]; /* this path's own probe label in the leak zone */
    addr_set egress;
} leak_path;

typedef struct leak_os_result {
    int gai_rc;
    char gai_addr[INET6_ADDRSTRLEN];
    int rq_len, rq_herrno;
    char rq_addr[INET6_ADDRSTRLEN];
} leak_os_result;

typedef struct leak_observed {
    char canary[LH_NAME_MAX + 1];
    char canary_expect[INET6_ADDRSTRLEN];
    bool os_ran;
    leak_os_result os;
    leak_path paths[LEAK_PATHS_MAX];
    unsigned npaths;
    leak_probe probes[LEAK_PATHS_MAX * LEAK_PROBES_MAX];
    unsigned nprobes;
    /* interception: the leak server's own addresses (ns1.ZONE) and who answered instead */
    bool intercept_tested;
    addr_set leak_server;
    addr_set interceptors; /* egress addresses of whatever answered in the leak server's place */
    bool intercepted;
} leak_observed;

typedef struct leak_report {
    const lh_config *cfg; /* the check's own settings (flags, --config) */
    leak_configured conf;
    leak_observed obs;
    leak_finding f[LEAK_FINDINGS_MAX];
    unsigned nf;
    leak_hop_view hops[HOP_COUNT];
    int exit_code;
    const char *verdict; /* "clean", "leak", "unknown" */
} leak_report;

/* leak_check.c */
void leak_add(leak_report *r, enum leak_sev sev, enum leak_hop hop, const char *fix,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Does a finding about `hop` at `sev` or worse (below SEV_UNOBSERVABLE) exist already? */
bool leak_hop_flagged(const leak_report *r, enum leak_hop hop, enum leak_sev sev);
void leak_set_add(addr_set *s, const char *a);
bool leak_set_has(const addr_set *s, const char *a);
void leak_random_label(char *out, size_t cap);
uint64_t leak_now_ms(void);

/* leak_daemon.c: the running daemon's listen addresses and upstreams, else the config's */
void leak_daemon_collect(leak_report *r);

/* leak_configured.c */
void leak_configured_collect(leak_report *r);
/* Is a resolv.conf nameserver (port 53) loophole, or resolved's stub in front of it only? */
bool leak_leads_to_loophole(const leak_report *r, const char *ns);
/* The upstream's privacy as the findings judge it: its `privacy`, or from a daemon too old to
 * say, "plain" for a plain transport and "private" for an encrypted one. */
const char *leak_upstream_privacy(const leak_upstream *u);

/* leak_probe.c */
int leak_path_open(leak_observed *o, enum leak_via via, const lh_sockaddr *addr);
void leak_probe_add(leak_observed *o, unsigned path, const char *name, uint16_t type);
/* Sends probes [from, to) and processes answers until all are done or budget_ms passed. */
void leak_probes_run(leak_observed *o, unsigned from, unsigned to, unsigned budget_ms);
void leak_paths_close(leak_observed *o);

/* leak_observed.c */
void leak_observe(leak_report *r);

/* leak_judge.c */
void leak_judge_observed(leak_report *r);

/* leak_report.c */
void leak_render_text(const leak_report *r, bool colour, lh_sbuf *b);
void leak_render_json(const leak_report *r, lh_sbuf *b);

#endif
