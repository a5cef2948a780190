/* listener.c - see listener.h: opening and stopping a role's listeners; the UDP and TCP
 * sides are listen_udp.c and listen_tcp.c. */
#include "loophole/listener.h"
#include "loophole/log.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

int lh_listeners_open(lh_listeners *l, char *err, size_t errlen)
{
    const lh_config *cfg = l->cfg;
    for (unsigned i = 0; i < cfg->nlisten; i++) {
        if (lh_udp_listen(l, &l->udp[i], &cfg->listen[i], err, errlen) != 0) goto fail;
        if (lh_tcp_listen(l, &l->tcp[i], &cfg->listen[i], err, errlen) != 0) {
            lh_udp_close(l->udp[i]);
            l->udp[i] = NULL;
            goto fail;
        }
        l->nlisten++;
        char a[64];
        lh_addr_format(&cfg->listen[i], a, sizeof a);
        if (!l->quiet) lh_info("listening on %s (udp, tcp)", a);
    }
    return 0;
fail:
    for (unsigned i = 0; i < l->nlisten; i++) {
        lh_udp_close(l->udp[i]);
        lh_tcp_close(l->tcp[i]);
        l->udp[i] = NULL;
        l->tcp[i] = NULL;
    }
    l->nlisten = 0;
    return -1;
}

void lh_listeners_stop_accepting(lh_listeners *l)
{
    l->stopping = true;
    for (unsigned i = 0; i < l->nlisten; i++) {
        lh_udp_stop_reading(l->udp[i]);
        lh_tcp_close(l->tcp[i]);
        l->tcp[i] = NULL;
    }
    lh_tcp_conns_shutdown(l);
}

void lh_listeners_close_udp(lh_listeners *l)
{
    for (unsigned i = 0; i < l->nlisten; i++) {
        lh_udp_close(l->udp[i]);
        lh_tcp_close(l->tcp[i]); /* NULL after a stop; open when the start failed later */
        l->udp[i] = NULL;
        l->tcp[i] = NULL;
    }
    l->nlisten = 0;
}

void lh_listeners_abort(lh_listeners *l)
{
    lh_tcp_conns_abort(l);
}

bool lh_listeners_exposed(const lh_config *cfg)
{
    for (unsigned i = 0; i < cfg->nlisten; i++) /* only loopback can reach loopback listeners */
        if (!lh_addr_is_loopback(&cfg->listen[i].sa)) return true;
    return false;
}

int lh_reuseport(uv_handle_t *h)
{
    uv_os_fd_t fd;
    int one = 1;
    int r = uv_fileno(h, &fd);
    if (r == 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        r = uv_translate_sys_error(errno);
    return r;
}

void lh_explain_bind_error(int uv_err, const lh_sockaddr *addr, const char *proto, char *err,
                           size_t errlen)
{
    char a[64];
    lh_addr_format(addr, a, sizeof a);
    unsigned port = ntohs(addr->sa.sa_family == AF_INET6 ? addr->v6.sin6_port : addr->v4.sin_port);
    if (uv_err == UV_EACCES || uv_err == UV_EPERM) {
        snprintf(err, errlen,
                 "cannot listen on %s/%s: permission denied. Ports below 1024 need root or the "
                 "CAP_NET_BIND_SERVICE capability (e.g. 'setcap cap_net_bind_service=+ep "
                 "/path/to/loophole'), or in a container the network namespace's sysctl "
                 "net.ipv4.ip_unprivileged_port_start=%u; or use an unprivileged port, e.g. "
                 "--listen 127.0.0.53:5353",
                 a, proto, port);
    } else if (uv_err == UV_EADDRINUSE) {
        snprintf(err, errlen,
                 "cannot listen on %s/%s: address already in use.%s Check with "
                 "'ss -lunp sport = :%u'. Either stop the other server (for systemd-resolved: "
                 "set DNSStubListener=no in /etc/systemd/resolved.conf and restart it), or run "
                 "loophole on another address, e.g. --listen 127.0.0.2:53 "
                 "(see docs/system-resolver.md)",
                 a, proto,
                 port == 53 ? " On systemd machines 127.0.0.53:53 is usually held by "
                              "systemd-resolved's stub listener."
                            : "",
                 port);
    } else if (uv_err == UV_EADDRNOTAVAIL) {
        snprintf(err, errlen,
                 "cannot listen on %s/%s: the address is not configured on any interface of "
                 "this machine",
                 a, proto);
    } else {
        snprintf(err, errlen, "cannot listen on %s/%s: %s", a, proto, uv_strerror(uv_err));
    }
}
