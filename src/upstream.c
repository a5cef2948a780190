/* upstream.c - c-ares channels on libuv, one query per channel, failover and health.
 *
 * Request lifecycle: lh_upstream_send -> try_next(): ares_send on an idle channel of the
 * healthiest untried server -> on_answer: success -> callback, free; failure -> mark the
 * server, try the next untried server, or callback(-1). A cancelled request stays until c-ares
 * calls back (it always does, at the latest with ARES_EDESTRUCTION), then is freed silently.
 *
 * Re-entrancy. c-ares 1.18 calls on_answer from inside ares_send when it cannot even open a
 * socket (ENETUNREACH with no route, EMFILE), from inside ares_process_fd, and from inside
 * ares_destroy. Two rules keep every caller's pointers valid:
 *  - nothing that happens inside ares_send is acted on there: the failed try is queued and
 *    handled from a uv_idle callback on the next loop pass, so lh_upstream_send never calls
 *    back and never frees what it returns;
 *  - a channel is never destroyed while c-ares is working inside it: lh_upstream_shutdown (which
 *    a user callback may reach, e.g. the last answer of a graceful stop) and the retirement of a
 *    channel wait until ares_process_fd has returned. */
#include "loophole/upstream.h"
#include "loophole/log.h"
#include "loophole/wire.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LH_SERVER_DOWN_AFTER 3 /* consecutive failures before a server is tried last */
#define LH_SERVER_DOWN_MS 5000 /* ... for this long */
#define LH_GROUP_SERVERS_MAX 32

/* One watched socket of a channel. */
typedef struct sock_watch {
    uv_poll_t poll;
    ares_socket_t fd;
    lh_upstream_channel *ch;
    struct sock_watch *next;
} sock_watch;

struct lh_upstream_channel {
    ares_channel ares;
    bool retire; /* c-ares dropped ARES_FLAG_EDNS on it: destroy instead of reusing */
    lh_upstream *u;
    lh_upstream_server *server;
    uv_timer_t timer;
    sock_watch *watches;
    lh_upstream_channel *next_idle;
    lh_upstream_channel *next_all; /* every channel, for shutdown */
    lh_upstream_req *req;          /* the one query it carries, or NULL when idle */
    bool busy;
};

struct lh_upstream_req {
    lh_upstream *u;
    unsigned group;
    lh_upstream_cb cb;
    void *arg;
    bool cancelled;
    uint32_t tried; /* bit per server index in the group */
    lh_upstream_server *server;
    uint64_t sent_ns; /* this try's start */
    lh_upstream_req *next_deferred;
    int deferred_status; /* the ares status of a try that failed inside ares_send */
    size_t len, question_end;
    uint8_t query[]; /* kept for failover to the next server */
};

static void on_timer(uv_timer_t *t);
static void do_shutdown(lh_upstream *u);
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
    lh_upstream *u = ch->u;
    u->dispatching++;
    ares_process_fd(ch->ares, rfd, wfd);
    u->dispatching--;
    if (u->shutdown_deferred && !u->dispatching) {
        do_shutdown(u); /* destroys ch too */
        return;
    }
    if (u->shutting_down) return;
    if (ch->retire && !ch->busy) {
        channel_destroy(ch);
        return;
    }
    arm_timer(ch);
}

static void on_timer(uv_timer_t *t)
{
    lh_upstream_channel *ch = t->data;
    channel_process(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
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
        if (!w || uv_poll_init_socket(ch->u->loop, &w->poll, fd) != 0) {
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

static lh_upstream_channel *channel_new(lh_upstream *u, lh_upstream_server *s)
{
    if (!urandom_available()) return NULL;
    lh_upstream_channel *ch = calloc(1, sizeof *ch);
    if (!ch) return NULL;
    ch->u = u;
    ch->server = s;
    /* One try: failover to the next server is loophole's, not c-ares'. ARES_FLAG_EDNS with
     * our advertised size: without it c-ares takes every UDP answer over 512 bytes for a
     * truncated one and asks again over TCP. A real TC=1 still goes to TCP. */
    if (lh_ares_channel_new(&ch->ares, ARES_FLAG_EDNS, &s->addr, 1, u->timeout_ms, 1, on_sock_state,
                            ch) != 0) {
        free(ch);
        return NULL;
    }
    uv_timer_init(u->loop, &ch->timer);
    ch->timer.data = ch;
    ch->next_all = u->channels;
    u->channels = ch;
    s->nchannels++;
    return ch;
}

static lh_upstream_channel *channel_take(lh_upstream *u, lh_upstream_server *s)
{
    lh_upstream_channel *ch = s->idle_head;
    if (ch) {
        s->idle_head = ch->next_idle;
        if (!s->idle_head) s->idle_tail = NULL;
    } else {
        ch = channel_new(u, s);
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

static uint64_t now_ms(lh_upstream *u)
{
    return uv_now(u->loop);
}

/* The healthiest untried server: not down first, in configured order; NULL when all tried. */
static int pick_server(lh_upstream *u, lh_upstream_req *r)
{
    lh_upstream_group *g = &u->groups[r->group];
    int best = -1;
    uint64_t now = now_ms(u), best_down = UINT64_MAX;
    for (unsigned i = 0; i < g->nservers && i < LH_GROUP_SERVERS_MAX; i++) {
        if (r->tried & (1u << i)) continue;
        uint64_t down = g->servers[i].down_until_ms > now ? g->servers[i].down_until_ms : 0;
        if (down < best_down) {
            best = (int)i;
            best_down = down;
            if (!down) break;
        }
    }
    return best;
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen);

/* Ends a request: the callback (unless cancelled), then free. Never runs inside
 * lh_upstream_send or lh_upstream_shutdown. */
static void req_finish(lh_upstream_req *r, int status, const uint8_t *answer, size_t len)
{
    lh_upstream *u = r->u;
    u->inflight--;
    if (!r->cancelled) r->cb(r->arg, status, answer, len, r->server);
    free(r);
}

/* Sends to the next server; returns false when there is none left to try. */
static bool try_next(lh_upstream_req *r)
{
    lh_upstream *u = r->u;
    int i;
    while (!u->shutting_down && (i = pick_server(u, r)) >= 0) {
        r->tried |= 1u << i;
        lh_upstream_server *s = &u->groups[r->group].servers[i];
        lh_upstream_channel *ch = channel_take(u, s);
        if (!ch) {
            if (!u->last_channel_err_ms || now_ms(u) - u->last_channel_err_ms > 10000) {
                lh_err("upstream %s: cannot create a c-ares channel (out of file descriptors "
                       "or memory); such queries fail until some are free",
                       s->label);
                u->last_channel_err_ms = now_ms(u);
            }
            continue;
        }
        r->server = s;
        r->sent_ns = uv_hrtime();
        s->queries++;
        /* The callback may run inside ares_send (no socket, say): all is set up before, and
         * on_answer only queues the failure while in_send is set. */
        ch->req = r;
        u->in_send = true;
        ares_send(ch->ares, r->query, (int)r->len, on_answer, ch);
        u->in_send = false;
        arm_timer(ch);
        return true;
    }
    return false;
}

/* A try failed: the server's health, then the next server or the end. */
static void try_failed(lh_upstream_req *r, int status)
{
    lh_upstream_server *s = r->server;
    s->failures++;
    if (++s->consecutive_failures >= LH_SERVER_DOWN_AFTER) {
        if (s->down_until_ms <= now_ms(r->u))
            lh_warn("upstream %s: %u failures in a row (last: %s); trying it last for %d s",
                    s->label, s->consecutive_failures, ares_strerror(status),
                    LH_SERVER_DOWN_MS / 1000);
        s->down_until_ms = now_ms(r->u) + LH_SERVER_DOWN_MS;
    } else {
        lh_debug("upstream %s: %s", s->label, ares_strerror(status));
    }
    if (r->cancelled || !try_next(r)) req_finish(r, -1, NULL, 0);
}

/* Tries that failed inside ares_send, handled on the next loop pass. A retry may fail inside
 * ares_send again and is then queued for the pass after: no recursion, no unbounded loop
 * (each request tries each server once). */
static void on_deferred(uv_idle_t *h)
{
    lh_upstream *u = h->data;
    lh_upstream_req *list = u->deferred_head;
    u->deferred_head = u->deferred_tail = NULL;
    while (list) {
        lh_upstream_req *r = list;
        list = r->next_deferred;
        r->next_deferred = NULL;
        try_failed(r, r->deferred_status);
    }
    if (!u->deferred_head) uv_idle_stop(&u->idle);
}

static void defer_failure(lh_upstream *u, lh_upstream_req *r, int status)
{
    r->deferred_status = status;
    r->next_deferred = NULL;
    if (u->deferred_tail)
        u->deferred_tail->next_deferred = r;
    else
        u->deferred_head = r;
    u->deferred_tail = r;
    uv_idle_start(&u->idle, on_deferred);
}

/* c-ares 1.18 drops ARES_FLAG_EDNS from a whole channel after one FORMERR answer without OPT
 * (and retries without our OPT). That channel would then take answers over 512 bytes for
 * truncated ones: it is retired instead of reused. Checked only when an answer has no
 * additional record, which an EDNS answer always has. */
static void check_edns_kept(lh_upstream_channel *ch, const unsigned char *abuf, int alen)
{
    if (alen >= LH_DNS_HEADER_LEN && lh_rd16(abuf + 10) != 0) return;
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
    lh_upstream_req *r = ch->req;
    lh_upstream *u = ch->u;
    ch->req = NULL;
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
        /* Inside lh_upstream_shutdown: the channel goes away with it, the request silently. */
        if (r) {
            u->inflight--;
            free(r);
        }
        return;
    }
    if (abuf && status == ARES_SUCCESS) check_edns_kept(ch, abuf, alen);
    channel_release(ch);
    if (!r) return;
    if (u->in_send) { /* no socket, no route: nothing can have been answered */
        defer_failure(u, r, status == ARES_SUCCESS ? ARES_ECONNREFUSED : status);
        return;
    }
    lh_upstream_server *s = r->server;
    /* c-ares matched ID, source and question case-insensitively; loophole wants the question
     * back byte for byte (0x20). A mismatch may be spoofed: it counts as a failure. */
    if (status == ARES_SUCCESS && abuf &&
        ((size_t)alen < r->question_end || lh_rd16(abuf + 4) != 1 ||
         memcmp(abuf + LH_DNS_HEADER_LEN, r->query + LH_DNS_HEADER_LEN,
                r->question_end - LH_DNS_HEADER_LEN) != 0)) {
        lh_warn("upstream %s: answer does not echo the question as sent (0x20 case): dropped "
                "as possibly spoofed",
                s->label);
        status = ARES_EBADRESP;
    }
    if (status == ARES_SUCCESS && abuf && alen > 0) {
        uint64_t took = uv_hrtime() - r->sent_ns;
        s->answers++;
        s->latency[lh_latency_bucket(took)]++;
        s->latency_sum_ns += took;
        s->consecutive_failures = 0;
        s->down_until_ms = 0;
        req_finish(r, 0, abuf, (size_t)alen);
        return;
    }
    try_failed(r, status);
}

lh_upstream_req *lh_upstream_send(lh_upstream *u, unsigned group, const uint8_t *query, size_t len,
                                  lh_upstream_cb cb, void *arg)
{
    if (u->shutting_down || group >= u->ngroups || u->groups[group].nservers == 0) return NULL;
    if (u->inflight >= u->max_inflight) {
        u->rejected++;
        return NULL;
    }
    lh_upstream_req *r = malloc(sizeof *r + len);
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    r->u = u;
    r->group = group;
    r->cb = cb;
    r->arg = arg;
    r->len = len;
    memcpy(r->query, query, len);
    lh_msg m; /* our own query: parsing it only finds where its question ends */
    if (lh_msg_parse_query(query, len, &m) != LH_PARSE_OK) {
        free(r);
        return NULL;
    }
    r->question_end = m.question_end;
    u->inflight++;
    if (!try_next(r)) { /* no channel for any server: nothing was sent, nothing queued */
        u->inflight--;
        free(r);
        return NULL;
    }
    return r; /* alive: even a try that already failed is only queued (on_deferred) */
}

void lh_upstream_cancel(lh_upstream_req *r)
{
    if (r) r->cancelled = true;
}

static void on_channel_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void channel_destroy(lh_upstream_channel *ch)
{
    lh_upstream *u = ch->u;
    lh_upstream_channel **pp = &u->channels;
    while (*pp && *pp != ch)
        pp = &(*pp)->next_all;
    if (*pp) *pp = ch->next_all;
    ch->server->nchannels--;
    ares_destroy(ch->ares); /* idle: no query, so no callback; closes its sockets */
    uv_close((uv_handle_t *)&ch->timer, on_channel_timer_closed);
}

/* The requests still queued (their tries failed inside ares_send) end without a callback, as
 * the ones still in a channel do (ARES_EDESTRUCTION). */
static void do_shutdown(lh_upstream *u)
{
    u->shutdown_deferred = false;
    for (lh_upstream_req *r = u->deferred_head, *next; r; r = next) {
        next = r->next_deferred;
        u->inflight--;
        free(r);
    }
    u->deferred_head = u->deferred_tail = NULL;
    if (!uv_is_closing((uv_handle_t *)&u->idle)) uv_close((uv_handle_t *)&u->idle, NULL);
    for (lh_upstream_channel *ch = u->channels, *next; ch; ch = next) {
        next = ch->next_all;
        ares_destroy(ch->ares); /* runs pending callbacks with ARES_EDESTRUCTION */
        uv_close((uv_handle_t *)&ch->timer, on_channel_timer_closed);
    }
    u->channels = NULL;
}

void lh_upstream_shutdown(lh_upstream *u)
{
    if (u->shutting_down) return;
    u->shutting_down = true;
    if (u->dispatching) /* called back from inside ares_process_fd: finish there */
        u->shutdown_deferred = true;
    else
        do_shutdown(u);
}

void lh_upstream_free(lh_upstream *u)
{
    for (unsigned g = 0; g < u->ngroups; g++)
        free(u->groups[g].servers);
    free(u->groups);
    u->groups = NULL;
    u->ngroups = 0;
}

static int group_set(lh_upstream_group *g, const lh_sockaddr *addrs, unsigned n)
{
    g->servers = calloc(n ? n : 1, sizeof *g->servers);
    if (!g->servers) return -1;
    g->nservers = n < LH_GROUP_SERVERS_MAX ? n : LH_GROUP_SERVERS_MAX;
    for (unsigned i = 0; i < g->nservers; i++) {
        g->servers[i].addr = addrs[i];
        lh_addr_format(&addrs[i], g->servers[i].label, sizeof g->servers[i].label);
    }
    return 0;
}

int lh_upstream_init(lh_upstream *u, uv_loop_t *loop, const lh_config *cfg, unsigned max_inflight,
                     char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    u->loop = loop;
    u->timeout_ms = cfg->upstream_timeout_ms;
    u->max_inflight = max_inflight;
    lh_sockaddr addrs[LH_UPSTREAMS_MAX];
    char source[LH_ERR_MAX];
    enum lh_upstream_origin origin;
    unsigned n = lh_config_upstreams(cfg, addrs, LH_UPSTREAMS_MAX, source, sizeof source, &origin);
    if (n == 0) {
        snprintf(err, errlen, "no upstream to forward to: %s", source);
        return -1;
    }
    u->ngroups = 1 + cfg->nforward_zones;
    u->groups = calloc(u->ngroups, sizeof *u->groups);
    if (!u->groups || group_set(&u->groups[0], addrs, n) != 0) goto oom;
    u->groups[0].origin = origin;
    snprintf(u->source, sizeof u->source, "%s", source);
    char list[LH_ERR_MAX] = "";
    for (unsigned i = 0; i < u->groups[0].nservers; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                 u->groups[0].servers[i].label);
    lh_info("upstreams: %s (%s)", list, source);
    for (unsigned z = 0; z < cfg->nforward_zones; z++) {
        const lh_forward_zone *fz = &cfg->forward_zones[z];
        if (group_set(&u->groups[z + 1], fz->servers, fz->nservers) != 0) goto oom;
        u->groups[z + 1].origin = lh_origin_of(fz->src);
        lh_info("forward zone %s: %u upstream(s), first %s", fz->zone, fz->nservers,
                u->groups[z + 1].servers[0].label);
    }
    uv_idle_init(loop, &u->idle); /* closed by lh_upstream_shutdown */
    u->idle.data = u;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    lh_upstream_free(u);
    return -1;
}
