/* transport_ares.c - plain DNS through c-ares on the libuv loop: the daemon's transport.
 *
 * c-ares 1.18 keeps one UDP socket per server while a channel has queries in flight, so all
 * concurrent queries would leave from one source port. This transport therefore keeps a pool
 * of single-server channels per server and gives each try a channel of its own, and hands
 * c-ares its UDP sockets itself (ares_set_socket_functions) from a pool of sockets per server
 * (see "The socket pool" below): each bound to a port drawn from the kernel's CSPRNG,
 * connected to the server (so the kernel drops datagrams from any other address), watched by
 * one uv_poll for its whole life, lent to one try at a time and retired after a number of
 * uses or seconds. Opening, binding, connecting, registering with epoll and closing a socket
 * for every upstream query was most of the CPU a forwarded miss cost. c-ares still does what
 * it does well: a random ID, matching answers by ID, question and source address, and the TCP
 * retry of truncated answers (ARES_FLAG_EDNS with our advertised size, so that only a real
 * TC=1, or an answer over that size, costs a TCP query; TCP sockets are opened and closed per
 * connection as before).
 *
 * Re-entrancy: c-ares calls the answer callback from inside ares_send (no socket: ENETUNREACH,
 * EMFILE), from inside ares_process_fd and from inside ares_destroy. A failure inside
 * ares_send is passed on as allowed by the transport contract (the upstream layer queues it);
 * a channel is never destroyed while c-ares works inside it: a shutdown or a retirement
 * requested from a callback waits until ares_process_fd has returned. */
#include "loophole/log.h"
#include "loophole/random.h"
#include "loophole/upstream.h"
#include "loophole/wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

typedef struct ares_transport ares_transport;

/* The socket pool. Every server has its own: a socket is connected to its server once, when
 * it is made, so the kernel filters answers by source address and reports ICMP errors.
 *
 * - A try takes a new socket while the pool holds fewer than its capacity (or none is idle),
 *   otherwise an idle one picked at random among the least recently used eighth. A socket is
 *   therefore used again only after most of the others have been: with a full pool of 1,024,
 *   1,000 consecutive queries leave from over 900 ports (tests/e2e/test_upstream_faults.sh),
 *   while a new socket is made only once per POOL_MAX_USES queries.
 * - A socket is lent to one try at a time (a channel has one query in flight), so two queries
 *   in flight never share a (source port, ID) pair to the same server, whatever IDs c-ares
 *   draws.
 * - Its port is drawn from the kernel's CSPRNG within the ephemeral range (ports outside it
 *   may be wanted by services that start later); a crowded range falls back to the kernel's
 *   own random choice.
 * - It is retired (closed) after POOL_MAX_USES tries or POOL_MAX_AGE_MS, after any error read
 *   from it, and when the pool is over capacity; retired sockets are replaced by new ports, so
 *   the set of ports in use keeps changing.
 * - An idle socket stays watched: a late answer (to a try that timed out) or an ICMP error is
 *   read and dropped, not left for the next try to find. */
#define POOL_MAX 1024 /* sockets kept per server; fewer when the descriptor limit is low */
#define POOL_MIN 4
#define POOL_MAX_USES 32
#define POOL_MAX_AGE_MS 60000
#define POOL_BIND_TRIES 8

typedef struct sock_pool sock_pool;

/* The descriptor limit is the process's, while every event loop (--threads) has its own
 * transport, every transport a pool per server (upstreams and forward-zone servers), and a
 * reload briefly keeps the old transport beside the new one: a per-server capacity alone would
 * let the pools hold threads x servers x an eighth of the limit, leaving no descriptor for TCP
 * clients, the control socket or list downloads. So all the pools of the process together
 * keep at most a quarter of the limit (pool_budget); past it, a try reuses an idle socket of
 * its server and a returned socket is closed. Lent sockets count too (a try with no idle
 * socket still gets a new one: those are bounded by the queries in flight). */
static atomic_uint pool_sockets; /* pooled sockets open, idle or lent, in the whole process */
static atomic_uint pool_budget;  /* set from the limit when a transport is made */

typedef struct pool_sock {
    uv_poll_t poll;
    int fd;
    sock_pool *pool;
    lh_upstream_channel *owner; /* the channel whose try it carries; NULL when idle */
    uint64_t born_ms;
    unsigned uses;
    bool broken; /* an error was read from it, or its watch failed: retire, never reuse */
} pool_sock;

struct sock_pool {
    ares_transport *t;
    const lh_upstream_server *server;
    pool_sock **idle; /* a ring of pool_cap entries, the least recently used first */
    unsigned head, nidle;
    unsigned total; /* idle and lent */
    sock_pool *next;
};

/* One watched socket of a channel. */
typedef struct sock_watch {
    uv_poll_t poll;
    ares_socket_t fd;
    lh_upstream_channel *ch;
    struct sock_watch *next;
} sock_watch;

struct lh_upstream_channel {
    ares_channel ares;
    ares_transport *t;
    lh_upstream_server *server;
    uv_timer_t timer;
    sock_watch *watches;
    lh_upstream_channel *next_idle;
    lh_upstream_channel *next_all; /* every channel, for shutdown */
    sock_pool *pool;               /* its server's sockets */
    pool_sock *ps;                 /* the one lent to its try, if c-ares has asked for one */
    lh_try_done_cb done;           /* the try it carries; NULL when idle or cancelled */
    void *done_arg;
    bool busy;
    bool retire; /* c-ares dropped ARES_FLAG_EDNS on it: destroy instead of reusing */
};

struct ares_transport {
    lh_transport base;
    uv_loop_t *loop;
    unsigned timeout_ms;
    lh_upstream_channel *channels;
    unsigned dispatching; /* inside ares_process_fd */
    bool shutting_down, shutdown_deferred;
    uint64_t last_channel_err_ms; /* the last "cannot create a channel" logged (rate limit) */
    sock_pool *pools;
    unsigned pool_cap;
    unsigned port_lo, port_hi; /* the kernel's ephemeral port range */
    uint64_t sockets_opened, sockets_lent;
    lh_random rnd;
};

static void on_timer(uv_timer_t *t);
static void do_shutdown(ares_transport *t);
static void channel_destroy(lh_upstream_channel *ch);

static void arm_timer(lh_upstream_channel *ch)
{
    struct timeval tv;
    if (ares_timeout(ch->ares, NULL, &tv)) {
        uint64_t ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)(tv.tv_usec + 999) / 1000;
        uv_timer_start(&ch->timer, on_timer, ms, 0);
    } else {
        uv_timer_stop(&ch->timer);
    }
}

/* Lets c-ares work on the channel (read `rfd`, write `wfd`, or process timeouts), then does
 * what had to wait until it was out of the channel: a shutdown, a retirement. */
static void channel_process(lh_upstream_channel *ch, ares_socket_t rfd, ares_socket_t wfd)
{
    ares_transport *t = ch->t;
    t->dispatching++;
    ares_process_fd(ch->ares, rfd, wfd);
    t->dispatching--;
    if (t->shutdown_deferred && !t->dispatching) {
        do_shutdown(t); /* destroys ch too */
        return;
    }
    if (t->shutting_down) return;
    if (ch->retire && !ch->busy) {
        channel_destroy(ch);
        return;
    }
    arm_timer(ch);
}

static void on_timer(uv_timer_t *h)
{
    channel_process(h->data, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_watch *w = p->data;
    ares_socket_t fd = w->fd;
    /* An error is reported as readable: c-ares then reads, sees it, and fails over. */
    channel_process(w->ch, (status < 0 || (events & UV_READABLE)) ? fd : ARES_SOCKET_BAD,
                    (status == 0 && (events & UV_WRITABLE)) ? fd : ARES_SOCKET_BAD);
}

static void on_watch_closed(uv_handle_t *h)
{
    free(h->data);
}

/* c-ares tells which sockets to watch; a socket with neither flag is about to be closed. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    lh_upstream_channel *ch = data;
    if (ch->ps && ch->ps->fd == fd) return; /* a pooled socket: watched for its whole life */
    sock_watch **pp = &ch->watches, *w;
    while ((w = *pp) && w->fd != fd)
        pp = &w->next;
    if (!readable && !writable) {
        if (w) {
            *pp = w->next;
            uv_close((uv_handle_t *)&w->poll, on_watch_closed);
        }
        return;
    }
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w || uv_poll_init_socket(ch->t->loop, &w->poll, fd) != 0) {
            free(w);
            lh_err("upstream: cannot watch a socket to %s", ch->server->label);
            return; /* the query times out and fails over */
        }
        w->fd = fd;
        w->ch = ch;
        w->poll.data = w;
        w->next = ch->watches;
        ch->watches = w;
    }
    uv_poll_start(&w->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_poll);
}

static void on_pool_sock_closed(uv_handle_t *h)
{
    pool_sock *ps = h->data;
    close(ps->fd); /* only now: libuv has stopped watching it */
    free(ps);
}

static void pool_sock_close(pool_sock *ps)
{
    ps->pool->total--;
    atomic_fetch_sub(&pool_sockets, 1);
    uv_close((uv_handle_t *)&ps->poll, on_pool_sock_closed);
}

/* Drops what an idle socket received: the answer to a try that ended without it (a timeout,
 * a cancelled try) or an ICMP error. A socket that reports an error is not reused. */
static void pool_sock_drain(pool_sock *ps)
{
    uint8_t buf[512];
    for (unsigned i = 0; i < 64; i++) {
        ssize_t n = recv(ps->fd, buf, sizeof buf, MSG_TRUNC);
        if (n >= 0) continue;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) ps->broken = true;
        return;
    }
}

static void on_pool_sock_poll(uv_poll_t *h, int status, int events)
{
    (void)events;
    pool_sock *ps = h->data;
    /* libuv stops a watch that reported an error (POLLERR: an ICMP error on a connected UDP
     * socket): the socket cannot be watched again, so it is not reused. */
    if (status < 0) ps->broken = true;
    if (ps->owner)
        channel_process(ps->owner, ps->fd, ARES_SOCKET_BAD); /* c-ares reads the error too */
    else
        pool_sock_drain(ps);
}

static socklen_t sockaddr_len(const lh_sockaddr *a)
{
    return a->sa.sa_family == AF_INET ? sizeof a->v4 : sizeof a->v6;
}

/* A new socket for the pool's server: bound to a random port, connected, watched. NULL with
 * errno set (EMFILE, ENETUNREACH, ...). */
static pool_sock *pool_sock_open(sock_pool *p)
{
    ares_transport *t = p->t;
    const lh_sockaddr *server = &p->server->addr;
    int fd = socket(server->sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return NULL;
    lh_sockaddr local;
    memset(&local, 0, sizeof local);
    local.sa.sa_family = server->sa.sa_family;
    unsigned span = t->port_hi - t->port_lo + 1;
    for (unsigned i = 0; i < POOL_BIND_TRIES; i++) {
        uint16_t port = htons((uint16_t)(t->port_lo + lh_random_u64(&t->rnd) % span));
        if (local.sa.sa_family == AF_INET)
            local.v4.sin_port = port;
        else
            local.v6.sin6_port = port;
        if (bind(fd, &local.sa, sockaddr_len(&local)) == 0 || errno != EADDRINUSE) break;
    }
    /* Unbound after POOL_BIND_TRIES ports in use (or an odd bind error): connect() binds it
     * to a port of the kernel's choosing, which is random too. */
    pool_sock *ps = NULL;
    if (connect(fd, &server->sa, sockaddr_len(server)) != 0 || !(ps = calloc(1, sizeof *ps)) ||
        uv_poll_init_socket(t->loop, &ps->poll, fd) != 0) {
        int err = ps ? ENOMEM : errno;
        free(ps);
        close(fd);
        errno = err;
        return NULL;
    }
    ps->fd = fd;
    ps->pool = p;
    ps->born_ms = uv_now(t->loop);
    ps->poll.data = ps;
    uv_poll_start(&ps->poll, UV_READABLE, on_pool_sock_poll);
    p->total++;
    atomic_fetch_add(&pool_sockets, 1);
    t->sockets_opened++;
    return ps;
}

static bool pool_sock_worn(const pool_sock *ps, uint64_t now)
{
    return ps->broken || ps->uses >= POOL_MAX_USES || now - ps->born_ms >= POOL_MAX_AGE_MS;
}

static pool_sock *pool_pop(sock_pool *p, unsigned i)
{
    unsigned cap = p->t->pool_cap;
    unsigned at = (p->head + i) % cap;
    pool_sock *ps = p->idle[at];
    p->idle[at] = p->idle[p->head]; /* the head takes its place, still among the oldest */
    p->head = (p->head + 1) % cap;
    p->nidle--;
    return ps;
}

/* A socket for one try; NULL with errno set when none can be had. */
static pool_sock *pool_take(sock_pool *p)
{
    ares_transport *t = p->t;
    uint64_t now = uv_now(t->loop);
    /* The least recently used first: a pool that went quiet sheds its old ports here. */
    while (p->nidle && pool_sock_worn(p->idle[p->head], now))
        pool_sock_close(pool_pop(p, 0));
    for (;;) {
        if ((p->total < t->pool_cap && atomic_load(&pool_sockets) < atomic_load(&pool_budget)) ||
            !p->nidle) {
            pool_sock *ps = pool_sock_open(p);
            if (ps || !p->nidle) return ps;
            /* Out of descriptors, say: an idle socket will do. */
        }
        unsigned among = p->nidle / 8 ? p->nidle / 8 : 1;
        pool_sock *ps = pool_pop(p, (unsigned)(lh_random_u64(&t->rnd) % among));
        if (!pool_sock_worn(ps, now)) return ps;
        pool_sock_close(ps);
    }
}

static void pool_give_back(pool_sock *ps)
{
    sock_pool *p = ps->pool;
    ares_transport *t = p->t;
    ps->owner = NULL;
    if (t->shutting_down || p->total > t->pool_cap || p->nidle >= t->pool_cap ||
        atomic_load(&pool_sockets) > atomic_load(&pool_budget) ||
        pool_sock_worn(ps, uv_now(t->loop))) {
        pool_sock_close(ps);
        return;
    }
    p->idle[(p->head + p->nidle) % t->pool_cap] = ps;
    p->nidle++;
}

static sock_pool *pool_for(ares_transport *t, const lh_upstream_server *s)
{
    for (sock_pool *p = t->pools; p; p = p->next)
        if (p->server == s) return p;
    sock_pool *p = calloc(1, sizeof *p);
    pool_sock **idle = calloc(t->pool_cap, sizeof *idle);
    if (!p || !idle) {
        free(p);
        free(idle);
        return NULL;
    }
    p->t = t;
    p->server = s;
    p->idle = idle;
    p->next = t->pools;
    t->pools = p;
    return p;
}

static void pools_free(ares_transport *t)
{
    for (sock_pool *p = t->pools, *next; p; p = next) {
        next = p->next;
        while (p->nidle)
            pool_sock_close(pool_pop(p, 0));
        free(p->idle);
        free(p);
    }
    t->pools = NULL;
}

/* c-ares' socket functions (ares_set_socket_functions; the data is the channel). With them
 * set, c-ares leaves socket options alone: every socket is made non-blocking and
 * close-on-exec here. UDP sockets come from the pool; TCP ones (truncated answers) are opened
 * and closed as c-ares asks. */
static ares_socket_t sf_socket(int af, int type, int protocol, void *data)
{
    lh_upstream_channel *ch = data;
    if (type != SOCK_DGRAM || ch->ps) {
        int fd = socket(af, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
        /* c-ares sets TCP_NODELAY only on sockets it opened itself. */
        int one = 1;
        if (fd >= 0 && type == SOCK_STREAM)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return fd;
    }
    pool_sock *ps = pool_take(ch->pool);
    if (!ps) return ARES_SOCKET_BAD;
    ps->owner = ch;
    ps->uses++;
    ch->ps = ps;
    ch->t->sockets_lent++;
    return ps->fd;
}

static int sf_close(ares_socket_t fd, void *data)
{
    lh_upstream_channel *ch = data;
    if (ch->ps && ch->ps->fd == fd) {
        pool_sock *ps = ch->ps;
        ch->ps = NULL;
        pool_give_back(ps);
        return 0;
    }
    return close(fd);
}

static int sf_connect(ares_socket_t fd, const struct sockaddr *addr, ares_socklen_t len, void *data)
{
    lh_upstream_channel *ch = data;
    if (ch->ps && ch->ps->fd == fd) return 0; /* connected to this server when made */
    return connect(fd, addr, len);
}

static void note_error(lh_upstream_channel *ch, ares_socket_t fd)
{
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && ch->ps && ch->ps->fd == fd)
        ch->ps->broken = true;
}

static ares_ssize_t sf_recvfrom(ares_socket_t fd, void *buf, size_t len, int flags,
                                struct sockaddr *from, ares_socklen_t *from_len, void *data)
{
    ssize_t n = recvfrom(fd, buf, len, flags, from, from_len);
    if (n < 0) note_error(data, fd);
    return n;
}

static ares_ssize_t sf_sendv(ares_socket_t fd, const struct iovec *iov, int n, void *data)
{
    ssize_t r = writev(fd, iov, n);
    if (r < 0) note_error(data, fd);
    return r;
}

static const struct ares_socket_functions pool_socket_functions = {
    .asocket = sf_socket,
    .aclose = sf_close,
    .aconnect = sf_connect,
    .arecvfrom = sf_recvfrom,
    .asendv = sf_sendv,
};

int lh_ares_channel_new(ares_channel *out, int flags, const lh_sockaddr *servers, unsigned nservers,
                        unsigned timeout_ms, unsigned tries, ares_sock_state_cb cb, void *cb_data)
{
    struct ares_options o;
    memset(&o, 0, sizeof o);
    struct in_addr placeholder = {htonl(INADDR_LOOPBACK)};
    /* Setting every option that would otherwise come from resolv.conf keeps c-ares from
     * reading files; the real servers are set right after (with their ports and families). */
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | flags;
    o.ednspsz = LH_UPSTREAM_EDNS_SIZE;
    o.timeout = (int)timeout_ms;
    o.tries = (int)tries;
    o.ndots = 1;
    o.servers = &placeholder;
    o.nservers = 1;
    o.lookups = (char *)"b";
    o.sock_state_cb = cb;
    o.sock_state_cb_data = cb_data;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_NDOTS |
               ARES_OPT_SERVERS | ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS | ARES_OPT_SORTLIST |
               ARES_OPT_NOROTATE | (cb ? ARES_OPT_SOCK_STATE_CB : 0) |
               ((flags & ARES_FLAG_EDNS) ? ARES_OPT_EDNSPSZ : 0);
    if (ares_init_options(out, &o, mask) != ARES_SUCCESS) return -1;
    struct ares_addr_port_node nodes[LH_UPSTREAMS_MAX];
    memset(nodes, 0, sizeof nodes);
    if (nservers > LH_UPSTREAMS_MAX) nservers = LH_UPSTREAMS_MAX;
    for (unsigned i = 0; i < nservers; i++) {
        const lh_sockaddr *a = &servers[i];
        nodes[i].next = i + 1 < nservers ? &nodes[i + 1] : NULL;
        nodes[i].family = a->sa.sa_family;
        if (a->sa.sa_family == AF_INET) {
            nodes[i].addr.addr4 = a->v4.sin_addr;
            nodes[i].udp_port = nodes[i].tcp_port = ntohs(a->v4.sin_port);
        } else {
            memcpy(&nodes[i].addr.addr6, &a->v6.sin6_addr, 16);
            nodes[i].udp_port = nodes[i].tcp_port = ntohs(a->v6.sin6_port);
        }
    }
    if (nservers == 0 || ares_set_servers_ports(*out, nodes) != ARES_SUCCESS) {
        ares_destroy(*out);
        return -1;
    }
    return 0;
}

/* c-ares 1.18 keys each channel's query-ID generator from /dev/urandom and, when it cannot
 * open the file (EMFILE: out of descriptors), silently from rand() - predictable IDs. A channel
 * is made only when that file can be opened; without a descriptor the query could not have
 * had a socket anyway. */
static bool urandom_available(void)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    close(fd);
    return true;
}

static lh_upstream_channel *channel_new(ares_transport *t, lh_upstream_server *s)
{
    if (!urandom_available()) return NULL;
    sock_pool *pool = pool_for(t, s);
    lh_upstream_channel *ch = pool ? calloc(1, sizeof *ch) : NULL;
    if (!ch) return NULL;
    ch->t = t;
    ch->server = s;
    ch->pool = pool;
    /* One try: failover to the next server is the upstream layer's, not c-ares'. */
    if (lh_ares_channel_new(&ch->ares, ARES_FLAG_EDNS, &s->addr, 1, t->timeout_ms, 1, on_sock_state,
                            ch) != 0) {
        free(ch);
        return NULL;
    }
    ares_set_socket_functions(ch->ares, &pool_socket_functions, ch);
    uv_timer_init(t->loop, &ch->timer);
    ch->timer.data = ch;
    ch->next_all = t->channels;
    t->channels = ch;
    s->nchannels++;
    return ch;
}

static lh_upstream_channel *channel_take(ares_transport *t, lh_upstream_server *s)
{
    lh_upstream_channel *ch = s->idle_head;
    if (ch) {
        s->idle_head = ch->next_idle;
        if (!s->idle_head) s->idle_tail = NULL;
    } else {
        ch = channel_new(t, s);
    }
    if (ch) ch->busy = true;
    return ch;
}

static void channel_release(lh_upstream_channel *ch)
{
    lh_upstream_server *s = ch->server;
    ch->busy = false;
    ch->next_idle = NULL;
    if (ch->retire) return; /* destroyed once c-ares is out of it (channel_process) */
    if (s->idle_tail)
        s->idle_tail->next_idle = ch;
    else
        s->idle_head = ch;
    s->idle_tail = ch;
}

/* Does the answer carry an OPT record? Malformed: "no" (the caller then looks closer). */
static bool answer_has_opt(const unsigned char *abuf, size_t alen)
{
    if (alen < LH_DNS_HEADER_LEN) return false;
    unsigned qd = lh_rd16(abuf + 4), an = lh_rd16(abuf + 6), ns = lh_rd16(abuf + 8),
             ar = lh_rd16(abuf + 10);
    size_t off = LH_DNS_HEADER_LEN;
    lh_name n;
    for (unsigned i = 0; i < qd; i++) {
        off = lh_name_read(abuf, alen, off, &n);
        if (!off || off + 4 > alen) return false;
        off += 4;
    }
    for (unsigned i = 0; i < an + ns + ar; i++) {
        off = lh_name_read(abuf, alen, off, &n);
        if (!off || off + 10 > alen) return false;
        if (i >= an + ns && lh_rd16(abuf + off) == LH_TYPE_OPT) return true;
        off += 10 + lh_rd16(abuf + off + 8);
    }
    return false;
}

/* c-ares 1.18 drops ARES_FLAG_EDNS from a whole channel after one FORMERR answer without OPT
 * (and retries without our OPT). That channel would then take answers over 512 bytes for
 * truncated ones: it is retired instead of reused. The retry may end in an answer (which then
 * has no OPT: it answers a question without one) or in a failure (a timeout, SERVFAIL), so
 * both are looked at; an answer with an OPT means the channel still speaks EDNS. */
static void check_edns_kept(lh_upstream_channel *ch, int status, const unsigned char *abuf,
                            int alen)
{
    if (status == ARES_SUCCESS && abuf && alen > 0 && answer_has_opt(abuf, (size_t)alen)) return;
    struct ares_options o;
    int mask = 0;
    if (ares_save_options(ch->ares, &o, &mask) != ARES_SUCCESS) return;
    if (!(o.flags & ARES_FLAG_EDNS)) {
        lh_debug("upstream %s: c-ares turned EDNS off on a channel; retiring it",
                 ch->server->label);
        ch->retire = true;
    }
    ares_destroy_options(&o);
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    lh_upstream_channel *ch = arg;
    lh_try_done_cb done = ch->done;
    void *done_arg = ch->done_arg;
    ch->done = NULL;
    if (status == ARES_EDESTRUCTION) return; /* shutting down: no more callbacks */
    /* Only c-ares' own processing of an answer can turn EDNS off: never a failure inside
     * ares_send (and a channel retired there would have no channel_process to destroy it). */
    if (ch->t->dispatching) check_edns_kept(ch, status, abuf, alen);
    channel_release(ch);
    if (!done) return; /* cancelled */
    if (status == ARES_SUCCESS && abuf && alen > 0)
        done(done_arg, 0, abuf, (size_t)alen);
    else
        done(done_arg, status == ARES_SUCCESS ? -ARES_EBADRESP : -status, NULL, 0);
}

static lh_try *ares_start(lh_transport *base, lh_upstream_server *s, const uint8_t *query,
                          size_t len, lh_try_done_cb done, void *arg)
{
    ares_transport *t = (ares_transport *)base;
    if (t->shutting_down) return NULL;
    lh_upstream_channel *ch = channel_take(t, s);
    if (!ch) {
        uint64_t now = uv_now(t->loop);
        if (!t->last_channel_err_ms || now - t->last_channel_err_ms > 10000) {
            lh_err("upstream %s: cannot create a c-ares channel (out of file descriptors or "
                   "memory); such queries fail until some are free",
                   s->label);
            t->last_channel_err_ms = now;
        }
        return NULL;
    }
    /* The callback may run inside ares_send (no socket, say): all is set up before. */
    ch->done = done;
    ch->done_arg = arg;
    ares_send(ch->ares, query, (int)len, on_answer, ch);
    if (!t->shutting_down) arm_timer(ch);
    return (lh_try *)ch;
}

static void ares_cancel_try(lh_transport *base, lh_try *try_)
{
    (void)base;
    lh_upstream_channel *ch = (lh_upstream_channel *)try_;
    ch->done = NULL; /* the query runs out in the background; the channel is reused after */
}

static const char *ares_status_text(int status)
{
    return ares_strerror(-status);
}

static void on_channel_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void channel_destroy(lh_upstream_channel *ch)
{
    ares_transport *t = ch->t;
    lh_upstream_channel **pp = &t->channels;
    while (*pp && *pp != ch)
        pp = &(*pp)->next_all;
    if (*pp) *pp = ch->next_all;
    ch->server->nchannels--;
    ares_destroy(ch->ares); /* idle: no query, so no callback; closes its sockets */
    uv_close((uv_handle_t *)&ch->timer, on_channel_timer_closed);
}

static void do_shutdown(ares_transport *t)
{
    t->shutdown_deferred = false;
    for (lh_upstream_channel *ch = t->channels, *next; ch; ch = next) {
        next = ch->next_all;
        ch->done = NULL;
        ares_destroy(ch->ares); /* pending callbacks run with ARES_EDESTRUCTION: ignored */
        uv_close((uv_handle_t *)&ch->timer, on_channel_timer_closed);
    }
    t->channels = NULL;
    /* The channels gave their sockets back above (closed, as shutting down); the idle rest. */
    pools_free(t);
    lh_debug("upstream: %llu UDP sockets opened for %llu tries (the socket pool)",
             (unsigned long long)t->sockets_opened, (unsigned long long)t->sockets_lent);
}

static void ares_shutdown(lh_transport *base)
{
    ares_transport *t = (ares_transport *)base;
    if (t->shutting_down) return;
    t->shutting_down = true;
    if (t->dispatching) /* called back from inside ares_process_fd: finish there */
        t->shutdown_deferred = true;
    else
        do_shutdown(t);
}

static void ares_free_transport(lh_transport *base)
{
    free(base);
}

static const lh_transport_ops ares_ops = {
    .name = "dns (c-ares)",
    .start = ares_start,
    .cancel = ares_cancel_try,
    .strerror = ares_status_text,
    .shutdown = ares_shutdown,
    .free = ares_free_transport,
};

lh_transport *lh_transport_ares_new(uv_loop_t *loop, unsigned timeout_ms)
{
    ares_transport *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->base.ops = &ares_ops;
    t->loop = loop;
    t->timeout_ms = timeout_ms;
    lh_random_init(&t->rnd);
    /* The pool may keep an eighth of the descriptors per server (1,024 from a limit of 8,192),
     * and all pools of the process together a quarter of them (see pool_sockets). */
    t->pool_cap = POOL_MAX;
    unsigned budget = UINT_MAX;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        if (rl.rlim_cur / 8 < t->pool_cap)
            t->pool_cap = rl.rlim_cur / 8 > POOL_MIN ? (unsigned)(rl.rlim_cur / 8) : POOL_MIN;
        if (rl.rlim_cur / 4 < budget)
            budget = rl.rlim_cur / 4 > POOL_MIN ? (unsigned)(rl.rlim_cur / 4) : POOL_MIN;
    }
    atomic_store(&pool_budget, budget);
    t->port_lo = 32768, t->port_hi = 60999; /* Linux's default */
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
    unsigned lo, hi;
    if (f && fscanf(f, "%u %u", &lo, &hi) == 2 && lo >= 1024 && lo < hi && hi <= 65535)
        t->port_lo = lo, t->port_hi = hi;
    if (f) fclose(f);
    return &t->base;
}
