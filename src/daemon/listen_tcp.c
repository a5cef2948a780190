/* listen_tcp.c - TCP listener and connections (RFC 7766): 2-byte length framing, several
 * queries per connection answered in order of completion, a cap on connections, on message
 * size and on unsent answer bytes, and an idle deadline that only a complete, non-empty query
 * resets - so a client that sends half a length prefix and stalls, or only empty frames, is
 * cut off after tcp-idle-timeout.
 *
 * Slots: one process must not be able to shut everyone else out. The connection list is kept
 * in order of activity (the front did the latest query, the back has been idle longest). A
 * client (an IPv4 address, an IPv6 /64) holds at most a quarter of the slots: beyond that, its
 * own connection idle longest is closed for the new one. When the table is full, the connection
 * idle longest of anyone is closed instead of refusing the new one (as Unbound and Knot do).
 * Connections with answers still to come are never chosen; only if every one has, the new one is
 * refused.
 *
 * Connection lifecycle: accepted -> reading -> (EOF, error, idle, stop) -> closing: both
 * handles closed -> freed in the last close callback. Answers already written are flushed
 * before a graceful close. */
#include "loophole/log.h"
#include "loophole/listener.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LH_TCP_QUERY_MAX 4096           /* largest query accepted over TCP */
#define LH_TCP_PENDING_MAX (256 * 1024) /* unsent answer bytes before we give up on a reader */
#define LH_TCP_BACKLOG 256
#define LH_TCP_SHARE_DIV 4 /* one client address holds at most 1/4 of a loop's connections */

struct lh_tcp_listener {
    uv_tcp_t handle;
    lh_listeners *ls;
};

struct lh_tcp_conn {
    uv_tcp_t tcp;
    uv_timer_t idle;
    lh_listeners *ls;
    lh_tcp_conn *prev, *next;
    lh_sockaddr peer;
    size_t used;          /* bytes buffered in buf */
    size_t pending_bytes; /* answer bytes handed to uv_write, not yet written */
    unsigned writes;      /* uv_write requests in flight */
    unsigned holds;       /* forwarded queries still to be answered on it */
    int handles_open;     /* freed when this and holds drop to 0 */
    bool closing, draining;
    uint8_t buf[2 + LH_TCP_QUERY_MAX];
};

typedef struct tcp_write_req {
    uv_write_t req;
    lh_tcp_conn *conn;
    size_t len;
    uint8_t data[];
} tcp_write_req;

static void conn_on_handle_closed(uv_handle_t *h)
{
    lh_tcp_conn *c = h->data;
    if (--c->handles_open == 0 && c->holds == 0) free(c);
}

static void tcp_hold(lh_tcp_conn *c)
{
    c->holds++;
}

static void conn_close(lh_tcp_conn *c);

static void tcp_release(lh_tcp_conn *c)
{
    c->holds--;
    if (c->closing) {
        if (c->holds == 0 && c->handles_open == 0) free(c);
    } else if (c->draining && c->writes == 0 && c->holds == 0) {
        conn_close(c);
    }
}

static void conn_unlink(lh_tcp_conn *c)
{
    lh_listeners *s = c->ls;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        s->conns_tail = c->prev;
    c->prev = c->next = NULL;
}

static void conn_push_front(lh_tcp_conn *c)
{
    lh_listeners *s = c->ls;
    c->prev = NULL;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    else
        s->conns_tail = c;
    s->conns = c;
}

/* A complete query: the connection is the most recently active one. */
static void conn_touch(lh_tcp_conn *c)
{
    if (c->ls->conns == c) return;
    conn_unlink(c);
    conn_push_front(c);
}

static void conn_close(lh_tcp_conn *c)
{
    if (c->closing) return;
    c->closing = true;
    lh_listeners *s = c->ls;
    conn_unlink(c);
    s->nconns--;
    uv_close((uv_handle_t *)&c->idle, conn_on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_on_handle_closed);
}

/* A draining connection reads nothing more and closes once its answers are written. */
static void conn_drain(lh_tcp_conn *c)
{
    c->draining = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (c->writes == 0 && c->holds == 0) conn_close(c);
}

static void on_write(uv_write_t *req, int status)
{
    tcp_write_req *w = (tcp_write_req *)req;
    lh_tcp_conn *c = w->conn;
    c->writes--;
    c->pending_bytes -= w->len;
    free(w);
    if (status < 0)
        conn_close(c);
    else if (c->draining && c->writes == 0 && c->holds == 0)
        conn_close(c);
}

/* Sends one framed answer: synchronously when the socket takes it, else a bounded copy. */
static void tcp_send(lh_tcp_conn *c, const uint8_t *frame, size_t len)
{
    size_t done = 0;
    if (c->writes == 0) { /* keep order: only write directly when nothing is queued */
        uv_buf_t b = uv_buf_init((char *)frame, (unsigned)len);
        int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (r >= 0)
            done = (size_t)r;
        else if (r != UV_EAGAIN) {
            conn_close(c);
            return;
        }
    }
    if (done == len) return;
    size_t rest = len - done;
    if (c->pending_bytes + rest > LH_TCP_PENDING_MAX) { /* the client is not reading */
        conn_close(c);
        return;
    }
    tcp_write_req *w = malloc(sizeof *w + rest);
    if (!w) {
        conn_close(c);
        return;
    }
    w->conn = c;
    w->len = rest;
    memcpy(w->data, frame + done, rest);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)rest);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        free(w);
        conn_close(c);
        return;
    }
    c->writes++;
    c->pending_bytes += rest;
}

static void on_idle(uv_timer_t *t)
{
    lh_tcp_conn *c = t->data;
    if (c->holds) /* answers still to come: not idle (RFC 7766 6.2.3) */
        return;
    c->ls->stats->tcp_idle_closed++;
    lh_debug("tcp: closing a connection idle or stalled for %u ms",
             c->ls->cfg->tcp_idle_timeout_ms);
    conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    lh_tcp_conn *c = h->data;
    /* A full buffer means a frame larger than we accept: 0 bytes makes libuv report ENOBUFS. */
    *buf = uv_buf_init((char *)c->buf + c->used, (unsigned)(sizeof c->buf - c->used));
}

/* The reply handle of a TCP query: the connection, held while an answer is still to come. */
static void reply_send(const lh_reply *r, uint8_t *answer, size_t len)
{
    lh_tcp_conn *c = r->to;
    if (!len || c->closing) return;
    lh_wr16(answer - 2, (uint16_t)len); /* the room every answerer leaves for the prefix */
    tcp_send(c, answer - 2, len + 2);
}

static void reply_hold(const lh_reply *r)
{
    tcp_hold(r->to);
}

static void reply_release(const lh_reply *r)
{
    tcp_release(r->to);
}

static const lh_reply_ops tcp_reply_ops = {
    .send = reply_send, .hold = reply_hold, .release = reply_release};

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    lh_tcp_conn *c = stream->data;
    lh_listeners *s = c->ls;
    if (nread < 0) {
        if (nread == UV_EOF)
            conn_drain(c); /* the client may half-close and still wait for answers */
        else
            conn_close(c);
        return;
    }
    c->used += (size_t)nread;
    size_t off = 0;
    while (c->used - off >= 2 && !c->closing) {
        size_t flen = lh_rd16(c->buf + off);
        if (flen > LH_TCP_QUERY_MAX) {
            s->stats->tcp_oversize++;
            conn_close(c);
            return;
        }
        if (c->used - off < 2 + flen) break;
        if (flen == 0) { /* no query: no answer, and it does not keep the connection alive */
            s->stats->tcp_empty_frames++;
            off += 2;
            continue;
        }
        s->stats->queries_tcp++;
        lh_reply client = {.ops = &tcp_reply_ops,
                           .to = c,
                           .peer = c->peer,
                           .start_ns = s->timed ? uv_hrtime() : 0};
        size_t n =
            s->answer(s->ctx, c->buf + off + 2, flen, &client, s->out + 2, sizeof s->out - 2);
        off += 2 + flen;
        if (!c->closing) { /* only complete queries keep a connection alive */
            uv_timer_again(&c->idle);
            conn_touch(c);
        }
        if (n && !c->closing) {
            lh_wr16(s->out, (uint16_t)n);
            tcp_send(c, s->out, n + 2);
        }
    }
    if (c->closing) return;
    memmove(c->buf, c->buf + off, c->used - off);
    c->used -= off;
}

/* One client for the share: the same IPv4 address, or the same IPv6 /64 (one host commonly
 * holds a whole /64 and could otherwise pick a fresh address per connection). */
static bool same_client(const lh_sockaddr *a, const lh_sockaddr *b)
{
    const uint8_t *x, *y;
    size_t n = lh_addr_bytes(&a->sa, &x);
    if (a->sa.sa_family != b->sa.sa_family || n != lh_addr_bytes(&b->sa, &y)) return false;
    return !memcmp(x, y, a->sa.sa_family == AF_INET6 ? 8 : n);
}

/* May `c` be closed to make room: nothing of it still waits for an answer. */
static bool evictable(const lh_tcp_conn *c)
{
    return c->holds == 0 && !c->closing;
}

/* Makes room for the new connection `c` (already at the front of the list, counted). Returns
 * false if it must be refused. One walk from the back (idle longest first) over at most a
 * loop's share of tcp-max-connections: accepting is not the hot path, and the walk needs no
 * table that a flood of addresses could fill. */
static bool make_room(lh_listeners *s, lh_tcp_conn *c, unsigned limit)
{
    unsigned share = limit / LH_TCP_SHARE_DIV ? limit / LH_TCP_SHARE_DIV : 1;
    unsigned same = 0;
    lh_tcp_conn *own_idlest = NULL, *idlest = NULL;
    for (lh_tcp_conn *o = s->conns_tail; o && o != c; o = o->prev) {
        bool mine = same_client(&o->peer, &c->peer);
        same += mine;
        if (!evictable(o)) continue;
        if (!idlest) idlest = o;
        if (mine && !own_idlest) own_idlest = o;
    }
    lh_tcp_conn *victim = NULL;
    if (same >= share)
        victim = own_idlest; /* over its share: the client's own idlest makes way */
    else if (s->nconns > limit)
        victim = idlest; /* table full: whoever has been idle longest */
    else
        return true;
    if (!victim) return false;
    s->stats->tcp_evicted++;
    lh_debug("tcp: %s; closing the connection idle longest%s",
             same >= share ? "a client is at its share of connections" : "connection table full",
             same >= share ? " of that client" : "");
    conn_close(victim);
    return true;
}

static void on_connection(uv_stream_t *server, int status)
{
    lh_tcp_listener *l = server->data;
    lh_listeners *s = l->ls;
    if (status < 0) {
        lh_warn("tcp accept: %s", uv_strerror(status));
        return;
    }
    lh_tcp_conn *c = malloc(sizeof *c);
    if (!c) {
        /* Accept into a throwaway handle would need memory too: leave it in the backlog. */
        lh_warn("tcp accept: out of memory");
        return;
    }
    memset(c, 0, offsetof(lh_tcp_conn, buf)); /* the buffer needs no clearing */
    c->ls = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->idle);
    c->tcp.data = c->idle.data = c;
    c->handles_open = 2;
    conn_push_front(c);
    s->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    int plen = sizeof c->peer;
    if (uv_tcp_getpeername(&c->tcp, &c->peer.sa, &plen) != 0 ||
        !lh_config_client_allowed(s->cfg, &c->peer.sa)) {
        s->stats->refused_acl++;
        conn_close(c);
        return;
    }
    unsigned loops = s->nloops ? s->nloops : 1;
    unsigned limit = (s->cfg->tcp_max_connections + loops - 1) / loops;
    if (s->stopping || !make_room(s, c, limit)) {
        s->stats->tcp_rejected++;
        lh_debug("tcp: connection limit (%u) reached and every connection is busy; closing a "
                 "new connection",
                 s->cfg->tcp_max_connections);
        conn_close(c);
        return;
    }
    s->stats->tcp_accepted++;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_start(&c->idle, on_idle, s->cfg->tcp_idle_timeout_ms, s->cfg->tcp_idle_timeout_ms);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) conn_close(c);
}

int lh_tcp_listen(lh_listeners *s, lh_tcp_listener **out, const lh_sockaddr *addr, char *err,
                  size_t errlen)
{
    lh_tcp_listener *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    l->ls = s;
    l->handle.data = l;
    int r = uv_tcp_init_ex(s->loop, &l->handle, addr->sa.sa_family);
    if (r != 0) {
        free(l);
        snprintf(err, errlen, "cannot create a TCP socket: %s", uv_strerror(r));
        return -1;
    }
    if (s->nloops > 1) r = lh_reuseport((uv_handle_t *)&l->handle);
    if (r == 0)
        r = uv_tcp_bind(&l->handle, &addr->sa,
                        addr->sa.sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    if (r == 0) /* libuv may report a bind error only here */
        r = uv_listen((uv_stream_t *)&l->handle, LH_TCP_BACKLOG, on_connection);
    if (r != 0) {
        lh_explain_bind_error(r, addr, "tcp", err, errlen);
        lh_tcp_close(l);
        return -1;
    }
    *out = l;
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    free(h->data);
}

void lh_tcp_close(lh_tcp_listener *l)
{
    if (l) uv_close((uv_handle_t *)&l->handle, on_listener_closed);
}

void lh_tcp_conns_shutdown(lh_listeners *s)
{
    for (lh_tcp_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        conn_drain(c);
    }
}

void lh_tcp_conns_abort(lh_listeners *s)
{
    while (s->conns)
        conn_close(s->conns);
}
