/* listen_udp.c - UDP listener: the listener reads its socket itself, recvmmsg batches into
 * one buffer it owns, and the answers to one batch, built into its answer slots, leave
 * together in one sendmmsg. libuv's own receive path (a callback and buffer set-up per
 * datagram) cost more than the rest of a local answer's user-space work, so libuv only
 * watches a duplicate of the socket for readability (uv_poll) and keeps the send queue.
 * Answers made later (forwarded questions) are sent at once with a synchronous try_send. No
 * allocation on this path unless the socket's send buffer is full, and then a bounded number
 * of copies through libuv's send queue. */
#include "loophole/log.h"
#include "loophole/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LH_UDP_RCVBUF (4 << 20)

#define LH_UDP_CHUNK (64 * 1024) /* any datagram fits: larger ones are not cut short */
#define LH_UDP_BATCH 16          /* datagrams per recvmmsg call */
#define LH_UDP_ROUNDS 4          /* recvmmsg calls per wake-up, then the loop's other work */
#define LH_UDP_QUEUE_MAX 1024    /* answers allowed to wait for a full socket to drain */

struct lh_udp_listener {
    uv_udp_t handle; /* owns the socket; sends, and queues when it is full */
    uv_poll_t poll;  /* readability of rfd */
    lh_listeners *ls;
    int fd, rfd;                       /* the socket, and the duplicate libuv polls */
    bool polling;                      /* poll is initialised */
    unsigned open;                     /* handles not closed yet */
    unsigned pending;                  /* answers in the slots, waiting for the end of the batch */
    struct mmsghdr msgs[LH_UDP_BATCH]; /* answers: msg_name points at the asker's peer */
    struct iovec iov[LH_UDP_BATCH];
    struct mmsghdr rmsgs[LH_UDP_BATCH];
    struct iovec riov[LH_UDP_BATCH];
    /* The reply handle of each received datagram, made once: recvmmsg writes the peer's
     * address into it, and the answer's msg_name points at that, so a query costs no copy of
     * either (the batch's answers leave before the next recvmmsg overwrites them). */
    lh_reply clients[LH_UDP_BATCH];
    uint8_t rbuf[LH_UDP_CHUNK * LH_UDP_BATCH];
    /* One answer slot per datagram of a batch. Full-size, because a cached answer is copied
     * whole before it is cut to the client's UDP size; only the pages an answer touches are
     * ever resident. */
    uint8_t ans[LH_UDP_BATCH][LH_MSG_MAX];
};

typedef struct udp_send_req {
    uv_udp_send_t req;
    lh_listeners *ls;
    uint8_t data[];
} udp_send_req;

static void on_queued_send(uv_udp_send_t *req, int status)
{
    udp_send_req *r = (udp_send_req *)req;
    r->ls->udp_queued--;
    if (status < 0) r->ls->stats->send_errors++;
    free(r);
}

/* The socket is full (or libuv already queues): a copy waits in libuv's queue, bounded. */
static void send_queued(lh_udp_listener *l, const uint8_t *ans, size_t len,
                        const struct sockaddr *to)
{
    lh_listeners *s = l->ls;
    if (s->udp_queued >= LH_UDP_QUEUE_MAX) {
        s->stats->send_errors++;
        return;
    }
    uv_buf_t b;
    udp_send_req *q = malloc(sizeof *q + len);
    if (!q) {
        s->stats->send_errors++;
        return;
    }
    q->ls = s;
    memcpy(q->data, ans, len);
    b = uv_buf_init((char *)q->data, (unsigned)len);
    if (uv_udp_send(&q->req, &l->handle, &b, 1, to, on_queued_send) != 0) {
        s->stats->send_errors++;
        free(q);
        return;
    }
    s->udp_queued++;
}

/* Answers made later (forwarded questions) leave at once with a synchronous try_send. */
static void udp_send(lh_udp_listener *l, const uint8_t *ans, size_t len, const struct sockaddr *to)
{
    uv_buf_t b = uv_buf_init((char *)ans, (unsigned)len);
    int r = uv_udp_try_send(&l->handle, &b, 1, to);
    if (r >= 0) return;
    if (r != UV_EAGAIN) {
        l->ls->stats->send_errors++;
        return;
    }
    send_queued(l, ans, len, to);
}

/* Sends the answers of one receive batch with as few sendmmsg calls as the socket allows.
 * While libuv still has queued answers, new ones join its queue behind them. */
static void flush(lh_udp_listener *l)
{
    unsigned n = l->pending, i = 0;
    l->pending = 0;
    while (i < n && !l->handle.send_queue_count) {
        int r = sendmmsg(l->fd, l->msgs + i, n - i, 0);
        if (r > 0) {
            i += (unsigned)r;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else { /* this datagram cannot go (e.g. no route to that peer): skip it */
            l->ls->stats->send_errors++;
            i++;
        }
    }
    for (; i < n; i++)
        send_queued(l, l->iov[i].iov_base, l->iov[i].iov_len,
                    (const struct sockaddr *)l->msgs[i].msg_hdr.msg_name);
}

/* The reply handle of a datagram: this listener and the peer. */
static void reply_send(const lh_reply *r, uint8_t *answer, size_t len)
{
    if (len) udp_send(r->to, answer, len, &r->peer.sa);
}

static const lh_reply_ops udp_reply_ops = {.send = reply_send}; /* a listener outlives its
                                                                   queries: no holds */

/* One datagram of a batch (received into clients[i]): its answer goes to the next slot. */
static void on_datagram(lh_udp_listener *l, unsigned i, size_t len, socklen_t alen, bool truncated)
{
    lh_listeners *s = l->ls;
    if (truncated) { /* larger than any query we accept */
        s->stats->dropped++;
        return;
    }
    s->stats->queries_udp++;
    lh_reply *client = &l->clients[i];
    client->start_ns = s->timed ? uv_hrtime() : 0;
    unsigned k = l->pending;
    size_t n = s->answer(s->ctx, l->riov[i].iov_base, len, client, l->ans[k], sizeof l->ans[k]);
    if (!n) return;
    l->iov[k].iov_len = n;
    l->msgs[k].msg_hdr.msg_name = &client->peer;
    l->msgs[k].msg_hdr.msg_namelen = alen;
    l->pending = k + 1;
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    (void)events;
    lh_udp_listener *l = p->data;
    if (status < 0) {
        lh_debug("udp poll error: %s", uv_strerror(status));
        return;
    }
    for (unsigned round = 0; round < LH_UDP_ROUNDS && l->polling; round++) {
        for (unsigned i = 0; i < LH_UDP_BATCH; i++)
            l->rmsgs[i].msg_hdr.msg_namelen = sizeof l->clients[i].peer;
        int n = recvmmsg(l->rfd, l->rmsgs, LH_UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                lh_debug("udp receive error: %s", strerror(errno));
            break;
        }
        for (int k = 0; k < n; k++) {
            const struct msghdr *h = &l->rmsgs[k].msg_hdr;
            socklen_t alen = h->msg_namelen;
            if (alen != sizeof(struct sockaddr_in) && alen != sizeof(struct sockaddr_in6))
                continue; /* no peer to answer */
            on_datagram(l, (unsigned)k, l->rmsgs[k].msg_len, alen, (h->msg_flags & MSG_TRUNC) != 0);
        }
        if (l->pending) flush(l);
        if (n < LH_UDP_BATCH) break; /* the socket is drained */
    }
}

int lh_udp_listen(lh_listeners *s, lh_udp_listener **out, const lh_sockaddr *addr, char *err,
                  size_t errlen)
{
    lh_udp_listener *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    l->ls = s;
    l->handle.data = l;
    l->poll.data = l;
    l->fd = l->rfd = -1;
    for (unsigned i = 0; i < LH_UDP_BATCH; i++) {
        l->iov[i].iov_base = l->ans[i];
        l->msgs[i].msg_hdr = (struct msghdr){.msg_iov = &l->iov[i], .msg_iovlen = 1};
        l->clients[i].ops = &udp_reply_ops;
        l->clients[i].to = l;
        l->clients[i].datagram = true;
        l->riov[i] = (struct iovec){l->rbuf + (size_t)i * LH_UDP_CHUNK, LH_UDP_CHUNK};
        l->rmsgs[i].msg_hdr = (struct msghdr){
            .msg_name = &l->clients[i].peer, .msg_iov = &l->riov[i], .msg_iovlen = 1};
    }
    int r = uv_udp_init_ex(s->loop, &l->handle, (unsigned)addr->sa.sa_family);
    if (r != 0) {
        free(l);
        snprintf(err, errlen, "cannot create a UDP socket: %s", uv_strerror(r));
        return -1;
    }
    l->open = 1;
    if (s->nloops > 1) r = lh_reuseport((uv_handle_t *)&l->handle);
    if (r == 0)
        r = uv_udp_bind(&l->handle, &addr->sa,
                        addr->sa.sa_family == AF_INET6 ? UV_UDP_IPV6ONLY : 0);
    if (r == 0) {
        /* Room for bursts (and for a loop busy with a reload swap): 4 MiB, beyond rmem_max
         * while still root; otherwise what the kernel allows. */
        uv_os_fd_t fd;
        int size = LH_UDP_RCVBUF;
        r = uv_fileno((uv_handle_t *)&l->handle, &fd);
        if (r == 0) {
            l->fd = fd; /* batched answers are sent on it directly */
            if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
            /* libuv allows one watcher per descriptor: the handle's (for its send queue)
             * and the poll's are two descriptors of the same socket. */
            l->rfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
            r = l->rfd < 0 ? uv_translate_sys_error(errno)
                           : uv_poll_init_socket(s->loop, &l->poll, l->rfd);
            if (r == 0) {
                l->polling = true;
                l->open++;
                r = uv_poll_start(&l->poll, UV_READABLE, on_readable);
            }
        }
    }
    if (r != 0) {
        lh_explain_bind_error(r, addr, "udp", err, errlen);
        lh_udp_close(l);
        return -1;
    }
    *out = l;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    lh_udp_listener *l = h->data;
    if (--l->open) return;
    if (l->rfd >= 0) close(l->rfd); /* the poll is closed: nothing watches it any more */
    free(l);
}

void lh_udp_stop_reading(lh_udp_listener *l)
{
    if (!l) return;
    if (l->pending) flush(l); /* a batch cut short never leaves its answers behind */
    if (l->polling) uv_poll_stop(&l->poll);
}

void lh_udp_close(lh_udp_listener *l)
{
    if (!l) return;
    if (l->pending) flush(l);
    if (l->polling) {
        l->polling = false;
        uv_close((uv_handle_t *)&l->poll, on_closed);
    }
    uv_close((uv_handle_t *)&l->handle, on_closed);
}
