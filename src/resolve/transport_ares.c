/* transport_ares.c - plain DNS through c-ares on the libuv loop: the daemon's transport.
 *
 * c-ares 1.18 keeps one UDP socket per server while a channel has queries in flight, so all
 * concurrent queries would leave from one source port. This transport therefore keeps a pool
 * of single-server channels per server and gives each try a channel of its own: an idle
 * channel has closed its sockets, so every try opens a fresh socket on a kernel-randomised
 * port. c-ares still does what it does well: a random ID, matching answers by ID, question and
 * source address, and the TCP retry of truncated answers (ARES_FLAG_EDNS with our advertised
 * size, so that only a real TC=1, or an answer over that size, costs a TCP query).
 *
 * Re-entrancy: c-ares calls the answer callback from inside ares_send (no socket: ENETUNREACH,
 * EMFILE), from inside ares_process_fd and from inside ares_destroy. A failure inside
 * ares_send is passed on as allowed by the transport contract (the upstream layer queues it);
 * a channel is never destroyed while c-ares works inside it: a shutdown or a retirement
 * requested from a callback waits until ares_process_fd has returned. */
#include "loophole/log.h"
#include "loophole/upstream.h"
#include "loophole/wire.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct ares_transport ares_transport;

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
    lh_upstream_channel *ch = calloc(1, sizeof *ch);
    if (!ch) return NULL;
    ch->t = t;
    ch->server = s;
    /* One try: failover to the next server is the upstream layer's, not c-ares'. */
    if (lh_ares_channel_new(&ch->ares, ARES_FLAG_EDNS, &s->addr, 1, t->timeout_ms, 1, on_sock_state,
                            ch) != 0) {
        free(ch);
        return NULL;
    }
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
    return &t->base;
}
