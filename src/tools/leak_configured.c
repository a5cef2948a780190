/* leak_configured.c - the configured side, part two: what the system is set up to use for
 * DNS. resolv.conf (its nameservers, `options rotate`, who manages it), nsswitch's hosts line,
 * systemd-resolved's servers and stubs, and other port-53 listeners of this namespace; each
 * judged against loophole's listen addresses as leak_daemon.c found them. */
#include "leak_check.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LEAK_SYSTEMD_RESOLV "/run/systemd/resolve/resolv.conf"
#define LEAK_NSSWITCH "/etc/nsswitch.conf"

static bool same_host(const lh_sockaddr *a, const lh_sockaddr *l)
{
    if (a->sa.sa_family != l->sa.sa_family) return false;
    if (a->sa.sa_family == AF_INET)
        return a->v4.sin_port == l->v4.sin_port &&
               (a->v4.sin_addr.s_addr == l->v4.sin_addr.s_addr ||
                l->v4.sin_addr.s_addr == htonl(INADDR_ANY));
    return a->v6.sin6_port == l->v6.sin6_port && (!memcmp(&a->v6.sin6_addr, &l->v6.sin6_addr, 16) ||
                                                  IN6_IS_ADDR_UNSPECIFIED(&l->v6.sin6_addr));
}

/* Is `a` one of loophole's listen addresses (0.0.0.0 and :: take every address)? */
static bool is_loophole_addr(const leak_report *r, const lh_sockaddr *a)
{
    for (unsigned i = 0; i < r->conf.nlisten; i++)
        if (same_host(a, &r->conf.listen[i])) return true;
    return false;
}

/* Is a resolv.conf nameserver (always port 53) one of loophole's listen addresses? */
static bool is_loophole_ns(const leak_report *r, const char *text)
{
    lh_sockaddr a;
    return lh_addr_parse(text, 53, &a) == 0 && is_loophole_addr(r, &a);
}

/* systemd-resolved forwards to loophole alone (loophole behind resolved's stub). */
static bool resolved_is_loophole(const leak_report *r)
{
    const leak_configured *c = &r->conf;
    if (!c->has_resolved || !c->nresolved_ns) return false;
    for (unsigned i = 0; i < c->nresolved_ns; i++)
        if (!is_loophole_ns(r, c->resolved_ns[i])) return false;
    return true;
}

/* A resolv.conf nameserver that leads to loophole: loophole itself, or resolved's stubs when
 * resolved forwards only to loophole (docs/system-resolver.md, way 2). */
bool leak_leads_to_loophole(const leak_report *r, const char *ns)
{
    return is_loophole_ns(r, ns) ||
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

/* Reads resolv.conf's nameservers and options, and who manages the file. */
static void read_resolv_conf(leak_configured *c, const char *path)
{
    struct stat st;
    snprintf(c->resolv_path, sizeof c->resolv_path, "%s", path);
    if (stat(path, &st) != 0) {
        c->resolv_missing = true;
        c->nresolv_ns = 1; /* glibc then asks 127.0.0.1 (and ::1) */
        snprintf(c->resolv_ns[0], sizeof c->resolv_ns[0], "127.0.0.1");
        return;
    }
    c->nresolv_ns = read_nameservers(path, c->resolv_ns, &c->rotate, c->resolv_manager,
                                     sizeof c->resolv_manager);
    char target[256];
    ssize_t tl = readlink(path, target, sizeof target - 1);
    if (tl <= 0 || c->resolv_manager[0]) return;
    target[tl] = 0;
    static const char *const managers[] = {"systemd", "NetworkManager", "resolvconf"};
    for (size_t i = 0; i < sizeof managers / sizeof *managers; i++)
        if (strstr(target, managers[i]))
            snprintf(c->resolv_manager, sizeof c->resolv_manager, "%s",
                     i == 0 ? "systemd-resolved" : managers[i]);
}

static void check_resolv_conf(leak_report *r)
{
    leak_configured *c = &r->conf;
    const char *path = r->cfg->resolv_conf ? r->cfg->resolv_conf : LH_DEFAULT_RESOLV_CONF;
    read_resolv_conf(c, path);
    unsigned ours = 0;
    for (unsigned i = 0; i < c->nresolv_ns; i++)
        if (leak_leads_to_loophole(r, c->resolv_ns[i])) ours++;
    char fix[LEAK_TEXT_MAX], own[64];
    lh_addr_format(&c->listen[0], own, sizeof own);
    snprintf(fix, sizeof fix,
             "make %s list only loophole (e.g. 'nameserver 127.0.0.53', loophole listening on "
             "port 53); see docs/system-resolver.md",
             path);
    if (ours == 0)
        leak_add(r, SEV_LEAK, HOP_GLIBC, fix,
                 "%s%s does not point at loophole (%s): applications do not use it at all", path,
                 c->resolv_missing ? " is missing, so glibc asks 127.0.0.1, which" : "", own);
    for (unsigned i = 0; ours && i < c->nresolv_ns; i++) {
        if (leak_leads_to_loophole(r, c->resolv_ns[i])) continue;
        bool v6 = strchr(c->resolv_ns[i], ':') != NULL;
        leak_add(r, SEV_LEAK, HOP_GLIBC, fix,
                 "%s also lists nameserver %s%s: glibc sends queries there whenever loophole is "
                 "slow or down%s",
                 path, c->resolv_ns[i], v6 ? " (IPv6)" : "",
                 v6 ? "; IPv6 nameservers often arrive by router advertisement (RDNSS)" : "");
    }
    if (ours && c->rotate && ours < c->nresolv_ns)
        leak_add(r, SEV_LEAK, HOP_GLIBC, "remove 'options rotate' and the other nameservers",
                 "%s has 'options rotate': glibc spreads queries over all %u nameservers, not "
                 "only loophole",
                 path, c->nresolv_ns);
    if (c->resolv_manager[0])
        leak_add(r, SEV_WARN, HOP_GLIBC,
                 !strcmp(c->resolv_manager, "systemd-resolved")
                     ? "point systemd-resolved at loophole, or replace the symlink with a file "
                       "of your own (docs/system-resolver.md)"
                 : !strcmp(c->resolv_manager, "NetworkManager")
                     ? "set dns=none in NetworkManager.conf ([main]) and restart it"
                     : "configure the manager to write loophole's address",
                 "%s is managed by %s, which may rewrite it (e.g. on the next DHCP lease) with "
                 "other nameservers",
                 path, c->resolv_manager);
}

static void check_nsswitch(leak_report *r)
{
    FILE *f = fopen(LEAK_NSSWITCH, "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "hosts:", 6)) continue;
        char *s = line + 6;
        s += strspn(s, " \t");
        s[strcspn(s, "\n#")] = 0;
        snprintf(r->conf.nsswitch_hosts, sizeof r->conf.nsswitch_hosts, "%s", s);
    }
    fclose(f);
    if (!r->conf.nsswitch_hosts[0]) return;
    char copy[sizeof r->conf.nsswitch_hosts];
    snprintf(copy, sizeof copy, "%s", r->conf.nsswitch_hosts);
    bool has_dns = false, has_resolve = false;
    for (char *save, *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        if (!strcmp(w, "dns")) has_dns = true;
        if (!strcmp(w, "resolve")) has_resolve = true;
    }
    if (has_resolve) {
        unsigned ours = 0;
        for (unsigned i = 0; i < r->conf.nresolved_ns; i++)
            if (is_loophole_ns(r, r->conf.resolved_ns[i])) ours++;
        if (!r->conf.has_resolved || ours == 0 || ours < r->conf.nresolved_ns)
            leak_add(r, SEV_LEAK, HOP_GLIBC,
                     "remove 'resolve' from the hosts: line, or give systemd-resolved "
                     "loophole as its only server (DNS= in resolved.conf)",
                     "nsswitch.conf sends host lookups to systemd-resolved ('resolve' in "
                     "'hosts: %s'), which does not read resolv.conf%s%s",
                     r->conf.nsswitch_hosts, r->conf.has_resolved ? " and forwards to " : "",
                     r->conf.has_resolved ? r->conf.resolved_ns[0] : "");
    } else if (!has_dns) {
        leak_add(r, SEV_WARN, HOP_GLIBC, "add 'dns' to the hosts: line of /etc/nsswitch.conf",
                 "nsswitch.conf 'hosts: %s' has no 'dns': applications never ask loophole",
                 r->conf.nsswitch_hosts);
    }
}

static void check_systemd_resolved(leak_report *r)
{
    r->conf.nresolved_ns =
        read_nameservers(LEAK_SYSTEMD_RESOLV, r->conf.resolved_ns, NULL, NULL, 0);
    struct stat st;
    r->conf.has_resolved = stat(LEAK_SYSTEMD_RESOLV, &st) == 0;
    if (!r->conf.has_resolved) return;
    for (unsigned i = 0; i < r->conf.nresolved_ns; i++)
        if (!is_loophole_ns(r, r->conf.resolved_ns[i]))
            leak_add(r, SEV_WARN, HOP_GLIBC,
                     "set DNS= to loophole's address in /etc/systemd/resolved.conf, or stop "
                     "systemd-resolved (docs/system-resolver.md)",
                     "systemd-resolved forwards to %s: whatever asks it (nss-resolve, D-Bus, "
                     "its stubs) bypasses loophole",
                     r->conf.resolved_ns[i]);
}

/* One line of /proc/net/udp or udp6 ("  12: 3500007F:0035 ..."): a port-53 socket's address. */
static bool proc_udp_line(const char *line, bool v6, lh_sockaddr *a, char *text, size_t cap)
{
    char local[64];
    unsigned port;
    if (sscanf(line, " %*d: %63[0-9A-Fa-f]:%x", local, &port) != 2 || port != 53) return false;
    memset(a, 0, sizeof *a);
    if (!v6) {
        unsigned v;
        sscanf(local, "%x", &v);
        a->v4.sin_family = AF_INET;
        a->v4.sin_addr.s_addr = v; /* /proc prints the address in host order */
        a->v4.sin_port = htons(53);
        inet_ntop(AF_INET, &a->v4.sin_addr, text, (socklen_t)cap);
        return true;
    }
    a->v6.sin6_family = AF_INET6;
    for (int w = 0; w < 4; w++) { /* four host-order 32-bit words */
        unsigned v;
        char part[9];
        memcpy(part, local + w * 8, 8);
        part[8] = 0;
        sscanf(part, "%x", &v);
        memcpy(&a->v6.sin6_addr.s6_addr[w * 4], &v, 4);
    }
    a->v6.sin6_port = htons(53);
    inet_ntop(AF_INET6, &a->v6.sin6_addr, text, (socklen_t)cap);
    return true;
}

/* Port-53 UDP sockets of this network namespace other than loophole's. */
static void check_listeners(leak_report *r)
{
    static const char *const files[] = {"/proc/net/udp", "/proc/net/udp6"};
    for (int fi = 0; fi < 2; fi++) {
        FILE *f = fopen(files[fi], "r");
        if (!f) continue;
        char line[512], text[INET6_ADDRSTRLEN];
        lh_sockaddr a;
        while (fgets(line, sizeof line, f)) {
            if (!proc_udp_line(line, fi == 1, &a, text, sizeof text)) continue;
            if (is_loophole_addr(r, &a) || leak_leads_to_loophole(r, text)) continue;
            if (!strcmp(text, "127.0.0.54"))
                leak_add(r, SEV_WARN, HOP_APPLICATION,
                         "set DNSStubListenerExtra= empty and point systemd-resolved at "
                         "loophole, or stop it",
                         "systemd-resolved's proxy stub listens on 127.0.0.54:53 and forwards "
                         "to resolved's own servers: programs pointed at it bypass loophole");
            else
                leak_add(r, SEV_WARN, HOP_APPLICATION,
                         "stop that server (find it with 'ss -lunp sport = :53') or make it "
                         "forward to loophole",
                         "another DNS server listens on %s port 53 on this machine: programs "
                         "pointed at it bypass loophole",
                         text);
        }
        fclose(f);
    }
}

void leak_configured_collect(leak_report *r)
{
    leak_daemon_collect(r);
    check_systemd_resolved(r); /* before the others: they ask whether resolved leads to loophole */
    check_resolv_conf(r);
    check_nsswitch(r);
    check_listeners(r);
    if (!leak_hop_flagged(r, HOP_GLIBC, SEV_WARN))
        leak_add(r, SEV_OK, HOP_GLIBC, NULL,
                 "%s lists only loophole, and nsswitch's hosts line (%s) sends lookups to it",
                 r->conf.resolv_path, r->conf.nsswitch_hosts[0] ? r->conf.nsswitch_hosts : "none");
}
