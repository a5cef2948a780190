/* leak_daemon.c - the configured side, part one: what loophole really runs. The running daemon
 * is asked through its control socket (`config`) for its listen addresses and upstreams; the
 * answer is compared with the configuration the check was given, or else with the daemon's own
 * config file as it reads now, and a daemon running with other settings is a finding. Only when
 * no daemon answers are the check's own settings used, and the report says so. */
#include "leak_check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DAEMON_ANSWER_MAX (64 * 1024)

/* Sends `config` and reads the whole answer into buf. 0, or -1 with the reason in d->error. */
static int control_ask(leak_daemon *d, char *buf, size_t cap)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", d->socket);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = LEAK_CONTROL_MS / 1000,
                         .tv_usec = LEAK_CONTROL_MS % 1000 * 1000};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        snprintf(d->error, sizeof d->error, "cannot reach %s: %s%s", d->socket, strerror(e),
                 e == EACCES ? " (run the check as root or as a member of control-group)"
                 : e == ENOENT || e == ECONNREFUSED ? " (no daemon runs with this control-socket)"
                                                    : "");
        if (fd >= 0) close(fd);
        return -1;
    }
    size_t used = 0;
    ssize_t n;
    /* MSG_NOSIGNAL: a daemon that refuses this peer closes at once; a SIGPIPE would end the
     * check instead of reporting it. */
    if (send(fd, "config\n", 7, MSG_NOSIGNAL) == 7)
        while (used < cap - 1 && (n = read(fd, buf + used, cap - 1 - used)) > 0)
            used += (size_t)n;
    close(fd);
    buf[used] = 0;
    if (strncmp(buf, "ok\n", 3)) {
        snprintf(d->error, sizeof d->error, "%s did not answer 'config' (%.60s)", d->socket,
                 used ? buf : "no answer in time");
        return -1;
    }
    return 0;
}

/* "name=value" among the words of a line; "" when absent. */
static void word_value(const char *line, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    out[0] = 0;
    for (const char *p = strstr(line, name); p; p = strstr(p + 1, name))
        if ((p == line || p[-1] == ' ') && p[n] == '=') {
            snprintf(out, cap, "%.*s", (int)strcspn(p + n + 1, " \n"), p + n + 1);
            return;
        }
}

static void daemon_parse_line(leak_configured *c, char *line)
{
    char first[64];
    if (sscanf(line, "pid %ld", &c->daemon.pid) == 1) return;
    if (!strncmp(line, "config-file ", 12)) {
        if (strcmp(line + 12, "-"))
            snprintf(c->daemon.config_file, sizeof c->daemon.config_file, "%s", line + 12);
    } else if (sscanf(line, "dnssec %23s", c->daemon.dnssec_mode) == 1) {
        word_value(line, "path", c->daemon.dnssec_path, sizeof c->daemon.dnssec_path);
    } else if (!strncmp(line, "upstreams-from ", 15)) {
        snprintf(c->upstream_source, sizeof c->upstream_source, "%s", line + 15);
    } else if (sscanf(line, "listen %63s", first) == 1 && c->nlisten < LH_LISTEN_MAX) {
        if (lh_addr_parse(first, 53, &c->listen[c->nlisten]) == 0) c->nlisten++;
        word_value(line, "source", c->daemon.listen_source, sizeof c->daemon.listen_source);
    } else if (sscanf(line, "upstream %63s", first) == 1 && c->nup < LEAK_UPSTREAMS_MAX) {
        leak_upstream *u = &c->up[c->nup];
        bool tls = !strncmp(first, "tls://", 6); /* the daemon's label of a DoT upstream */
        /* A DoH label is a URL without the address: that comes as address= (daemons before
         * it said nothing more, and their DoH upstreams go unlisted). */
        char addr[64];
        word_value(line, "address", addr, sizeof addr);
        if (addr[0] ? lh_addr_parse(addr, 53, &u->addr) != 0
                    : lh_addr_parse(first + (tls ? 6 : 0), tls ? 853 : 53, &u->addr) != 0)
            return;
        snprintf(u->label, sizeof u->label, "%s", first);
        word_value(line, "transport", u->transport, sizeof u->transport);
        word_value(line, "zone", u->zone, sizeof u->zone);
        word_value(line, "source", u->source, sizeof u->source);
        word_value(line, "privacy", u->privacy, sizeof u->privacy);
        c->nup++;
    }
}

static void daemon_parse(leak_configured *c, char *text)
{
    char *save = NULL;
    for (char *line = strtok_r(text + 3, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        daemon_parse_line(c, line);
}

/* The check's own settings as loophole would apply them: nobody to ask. */
static void from_config(leak_report *r)
{
    leak_configured *c = &r->conf;
    const lh_config *cfg = r->cfg;
    memcpy(c->listen, cfg->listen, cfg->nlisten * sizeof *cfg->listen);
    c->nlisten = cfg->nlisten;
    lh_sockaddr ups[LH_UPSTREAMS_MAX];
    enum lh_upstream_origin origin;
    unsigned n = lh_config_upstreams(cfg, ups, LH_UPSTREAMS_MAX, c->upstream_source,
                                     sizeof c->upstream_source, &origin);
    for (unsigned i = 0; i < n && c->nup < LEAK_UPSTREAMS_MAX; i++) {
        leak_upstream *u = &c->up[c->nup++];
        u->addr = ups[i];
        /* The configured list keeps its order (its TLS settings line up); others are plain. */
        const lh_upstream_tls *tls = cfg->nupstreams ? &cfg->upstream_tls[i] : NULL;
        lh_upstream_addr_format(&u->addr, tls, u->label, sizeof u->label);
        snprintf(u->transport, sizeof u->transport, "%s",
                 tls && tls->https ? "https"
                 : tls && tls->on  ? "tls"
                                   : "plain");
        snprintf(u->privacy, sizeof u->privacy, "%s",
                 !(tls && tls->on)        ? "plain"
                 : cfg->tls_opportunistic ? "opportunistic"
                                          : "private");
        snprintf(u->zone, sizeof u->zone, ".");
        snprintf(u->source, sizeof u->source, "%s", lh_upstream_origin_names[origin]);
    }
    for (unsigned z = 0; z < cfg->nforward_zones; z++)
        for (unsigned i = 0; i < cfg->forward_zones[z].nservers && c->nup < LEAK_UPSTREAMS_MAX;
             i++) {
            leak_upstream *u = &c->up[c->nup++];
            u->addr = cfg->forward_zones[z].servers[i];
            const lh_upstream_tls *tls = &cfg->forward_zones[z].tls[i];
            lh_upstream_addr_format(&u->addr, tls, u->label, sizeof u->label);
            snprintf(u->transport, sizeof u->transport, "%s",
                     tls->https ? "https"
                     : tls->on  ? "tls"
                                : "plain");
            snprintf(u->privacy, sizeof u->privacy, "%s",
                     !tls->on                 ? "plain"
                     : cfg->tls_opportunistic ? "opportunistic"
                                              : "private");
            snprintf(u->zone, sizeof u->zone, "%s", cfg->forward_zones[z].zone);
            snprintf(u->source, sizeof u->source, "%s",
                     lh_upstream_origin_names[lh_origin_of(cfg->forward_zones[z].src)]);
        }
}

static bool addr_in(const lh_sockaddr *list, unsigned n, const lh_sockaddr *a)
{
    char x[64], y[64];
    lh_addr_format(a, x, sizeof x);
    for (unsigned i = 0; i < n; i++) {
        lh_addr_format(&list[i], y, sizeof y);
        if (!strcmp(x, y)) return true;
    }
    return false;
}

static void format_list(const lh_sockaddr *list, unsigned n, char *out, size_t cap)
{
    lh_sbuf b;
    lh_sbuf_init(&b, out, cap);
    for (unsigned i = 0; i < n; i++) {
        char a[64];
        lh_addr_format(&list[i], a, sizeof a);
        lh_sbuf_printf(&b, "%s%s", i ? ", " : "", a);
    }
    if (!n) lh_sbuf_printf(&b, "none");
}

/* The daemon's default upstreams against those `want` names (`what` says where from). */
static void compare_upstreams(leak_report *r, const lh_config *want, const char *what)
{
    leak_configured *c = &r->conf;
    lh_sockaddr ups[LH_UPSTREAMS_MAX], have[LH_UPSTREAMS_MAX];
    char src[LH_ERR_MAX], want_text[400], have_text[400];
    enum lh_upstream_origin origin;
    unsigned nw = lh_config_upstreams(want, ups, LH_UPSTREAMS_MAX, src, sizeof src, &origin);
    unsigned nh = 0;
    for (unsigned i = 0; i < c->nup && nh < LH_UPSTREAMS_MAX; i++)
        if (!strcmp(c->up[i].zone, ".")) have[nh++] = c->up[i].addr;
    bool same = nw == nh;
    for (unsigned i = 0; same && i < nh; i++)
        same = addr_in(ups, nw, &have[i]);
    snprintf(c->daemon.compared_with, sizeof c->daemon.compared_with, "%s", what);
    if (same) return;
    format_list(ups, nw, want_text, sizeof want_text);
    format_list(have, nh, have_text, sizeof have_text);
    bool explicit = origin == LH_ORIGIN_FLAG || origin == LH_ORIGIN_FILE;
    leak_add(r, explicit ? SEV_LEAK : SEV_WARN, HOP_LOOPHOLE,
             "restart loophole with the configuration you mean (a reload does not change "
             "upstreams), or correct the configuration",
             "the running loophole (pid %ld) forwards to %s, but %s names %s (%s): it runs with "
             "other settings than the configuration",
             c->daemon.pid, have_text, what, want_text, explicit ? "its upstream setting" : src);
}

static void compare_listen(leak_report *r, const lh_config *want, const char *what)
{
    const leak_configured *c = &r->conf;
    bool same = want->nlisten == c->nlisten;
    for (unsigned i = 0; same && i < c->nlisten; i++)
        same = addr_in(want->listen, want->nlisten, &c->listen[i]);
    if (same) return;
    char want_text[400], have_text[400];
    format_list(want->listen, want->nlisten, want_text, sizeof want_text);
    format_list(c->listen, c->nlisten, have_text, sizeof have_text);
    leak_add(r, SEV_WARN, HOP_LOOPHOLE,
             "restart loophole with the configuration you mean, or correct the configuration",
             "the running loophole (pid %ld) listens on %s, but %s says %s", c->daemon.pid,
             have_text, what, want_text);
}

/* Where the daemon's default upstreams came from ("flag", "config-file", ...). */
static const char *default_source(const leak_configured *c)
{
    for (unsigned i = 0; i < c->nup; i++)
        if (!strcmp(c->up[i].zone, ".")) return c->up[i].source;
    return "";
}

/* What to compare the running daemon with: the settings the check was given, else the
 * daemon's own config file as it reads now. */
static void compare_with_config(leak_report *r)
{
    const lh_config *cfg = r->cfg;
    const leak_daemon *d = &r->conf.daemon;
    if (cfg->nupstreams && cfg->upstreams_src == LH_SRC_FLAG)
        compare_upstreams(r, cfg, "the --upstream given to leak-check");
    else if (cfg->config_file)
        compare_upstreams(r, cfg, cfg->config_file);
    if (cfg->listen_src != LH_SRC_DEFAULT)
        compare_listen(r, cfg,
                       cfg->listen_src == LH_SRC_FLAG ? "the --listen given to leak-check"
                                                      : cfg->config_file);
    if (cfg->config_file || (cfg->nupstreams && cfg->upstreams_src == LH_SRC_FLAG)) return;
    if (!d->config_file[0]) return; /* started with flags only: nothing to compare with */
    lh_config file;
    char err[LH_ERR_MAX];
    lh_config_defaults(&file);
    if (lh_config_load_file(&file, d->config_file, err, sizeof err) != 0) {
        leak_add(r, SEV_INFO, HOP_LOOPHOLE, "run the check as a user who can read it",
                 "the daemon's config file could not be read to compare with it (%s)", err);
    } else {
        /* Settings the daemon took from flags override its file by design: not compared. */
        if (strcmp(default_source(&r->conf), "flag")) compare_upstreams(r, &file, d->config_file);
        if (strcmp(d->listen_source, "flag") &&
            (file.listen_src == LH_SRC_FILE || !strcmp(d->listen_source, "config-file")))
            compare_listen(r, &file, d->config_file);
    }
    lh_config_free(&file);
}

const char *leak_upstream_privacy(const leak_upstream *u)
{
    if (u->privacy[0]) return u->privacy;
    return strcmp(u->transport, "plain") ? "private" : "plain";
}

/* Plain DNS to an upstream crosses every network between here and there in clear text. */
static void judge_transport(leak_report *r)
{
    for (unsigned i = 0; i < r->conf.nup; i++) {
        const leak_upstream *u = &r->conf.up[i];
        const char *privacy = leak_upstream_privacy(u);
        if (!strcmp(privacy, "opportunistic")) {
            leak_add(r, SEV_WARN, HOP_UPSTREAM,
                     "tls-mode = strict (the default): a failed encrypted try then gives "
                     "SERVFAIL instead of plain DNS (docs/forwarding.md)",
                     "loophole forwards to %s with tls-mode opportunistic: not private, any "
                     "failed or blocked TLS connection sends the name in plaintext to port 53 "
                     "where on-path networks see and can change it",
                     u->label);
            continue;
        }
        if (strcmp(privacy, "plain")) continue;
        leak_add(r, SEV_WARN, HOP_UPSTREAM,
                 "an encrypted upstream: upstream = tls://ADDR#AUTH-NAME (DNS over TLS, "
                 "docs/forwarding.md)",
                 "loophole forwards to %s in plaintext (UDP, TCP): on-path networks see and can "
                 "change every forwarded name",
                 u->label);
    }
}

void leak_daemon_collect(leak_report *r)
{
    leak_configured *c = &r->conf;
    leak_daemon *d = &c->daemon;
    char *buf = malloc(DAEMON_ANSWER_MAX);
    if (!r->cfg->control_socket) {
        snprintf(d->error, sizeof d->error, "control-socket is off (none)");
    } else {
        snprintf(d->socket, sizeof d->socket, "%s", r->cfg->control_socket);
        if (buf && control_ask(d, buf, DAEMON_ANSWER_MAX) == 0) {
            daemon_parse(c, buf);
            d->reached = c->nlisten > 0;
            if (!d->reached)
                snprintf(d->error, sizeof d->error, "%s answered without listen addresses",
                         d->socket);
        }
    }
    free(buf);
    c->from_daemon = d->reached;
    if (d->reached) {
        compare_with_config(r);
        if (!leak_hop_flagged(r, HOP_LOOPHOLE, SEV_WARN))
            leak_add(r, SEV_OK, HOP_LOOPHOLE, NULL,
                     "the running loophole (pid %ld) was asked for its listen addresses and "
                     "upstreams%s%s",
                     d->pid, d->compared_with[0] ? "; they match " : "", d->compared_with);
        /* The daemon's probe (docs/dnssec.md): the DNSKEY of the root, or of the highest trust
         * anchor's zone, came back without RRSIG through its upstreams. */
        if (!strcmp(d->dnssec_path, "strips"))
            leak_add(r, SEV_WARN, HOP_UPSTREAM,
                     "use an upstream path that carries DNSSEC (an encrypted upstream, or a "
                     "resolver that does not strip records); docs/dnssec.md",
                     "the upstream path strips DNSSEC: the running loophole (dnssec = %s) got "
                     "the trust anchor zone's DNSKEY without RRSIG, so forged answers cannot be "
                     "told from real ones%s",
                     d->dnssec_mode,
                     !strcmp(d->dnssec_mode, "validate") ? " and signed names fail to validate"
                                                         : "");
    } else {
        c->nlisten = c->nup = 0;
        from_config(r);
        leak_add(r, SEV_INFO, HOP_LOOPHOLE,
                 "run the check where it can reach the daemon's control socket "
                 "(--control-socket, root or control-group)",
                 "no running loophole could be asked (%s): the check uses its own configuration "
                 "(flags, --config) for loophole's addresses and upstreams",
                 d->error);
    }
    judge_transport(r);
}
