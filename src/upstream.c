/* upstream.c - c-ares channels on libuv, one query per channel, failover and health.
 *
 * Request lifecycle: lh_upstream_send -> try_next(): ares_send on an idle channel of the
 * healthiest untried server -> on_answer: success -> callback, free; failure -> mark the
 * server, try the next untried server, or callback(-1). A cancelled request stays until c-ares
 * calls back (it always does, at the latest with ARES_EDESTRUCTION), then is freed silently. */
#include "loophole/upstream.h"
#include "loophole/log.h"
#include "loophole/wire.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    size_t len, question_end;
    uint8_t query[]; /* kept for failover to the next server */
};

static void on_timer(uv_timer_t *t);

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

static void on_timer(uv_timer_t *t)
{
    lh_upstream_channel *ch = t->data;
    ares_process_fd(ch->ares, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    arm_timer(ch);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_watch *w = p->data;
    lh_upstream_channel *ch = w->ch;
    ares_socket_t fd = w->fd;
    /* An error is reported as readable: c-ares then reads, sees it, and fails over. */
    ares_process_fd(ch->ares, (status < 0 || (events & UV_READABLE)) ? fd : ARES_SOCKET_BAD,
                    (status == 0 && (events & UV_WRITABLE)) ? fd : ARES_SOCKET_BAD);
    arm_timer(ch);
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
               ARES_OPT_NOROTATE | (cb ? ARES_OPT_SOCK_STATE_CB : 0);
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

static lh_upstream_channel *channel_new(lh_upstream *u, lh_upstream_server *s)
{
    lh_upstream_channel *ch = calloc(1, sizeof *ch);
    if (!ch) return NULL;
    ch->u = u;
    ch->server = s;
    /* One try: failover to the next server is loophole's, not c-ares'. */
    if (lh_ares_channel_new(&ch->ares, 0, &s->addr, 1, u->timeout_ms, 1, on_sock_state, ch) != 0) {
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
            lh_err("upstream %s: cannot create a c-ares channel", s->label);
            continue;
        }
        r->server = s;
        r->sent_ns = uv_hrtime();
        s->queries++;
        /* The callback may run inside ares_send (no socket, say): all is set up before. */
        ch->req = r;
        ares_send(ch->ares, r->query, (int)r->len, on_answer, ch);
        arm_timer(ch);
        return true;
    }
    return false;
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    lh_upstream_channel *ch = arg;
    lh_upstream_req *r = ch->req;
    ch->req = NULL;
    if (status == ARES_EDESTRUCTION) { /* shutting down: the channel goes away with it */
        if (r) req_finish(r, -1, NULL, 0);
        return;
    }
    channel_release(ch);
    if (!r) return;
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
    if (!try_next(r)) {
        u->inflight--;
        free(r);
        return NULL;
    }
    return r;
}

void lh_upstream_cancel(lh_upstream_req *r)
{
    if (r) r->cancelled = true;
}

static void on_channel_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void lh_upstream_shutdown(lh_upstream *u)
{
    if (u->shutting_down) return;
    u->shutting_down = true;
    for (lh_upstream_channel *ch = u->channels, *next; ch; ch = next) {
        next = ch->next_all;
        ares_destroy(ch->ares); /* runs pending callbacks with ARES_EDESTRUCTION */
        uv_close((uv_handle_t *)&ch->timer, on_channel_timer_closed);
    }
    u->channels = NULL;
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
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    lh_upstream_free(u);
    return -1;
}
