/* upstream.c - failover across a group's servers, their health, the in-flight bound, and the
 * answer checks; one try at a time through the transport (see upstream.h).
 *
 * Request lifecycle: lh_upstream_send -> try_next(): transport start() at the healthiest
 * untried server -> on_try_done: success -> callback, free; failure -> mark the server, try the
 * next untried server, or callback(-1). A try that fails inside start() is queued and handled
 * from a uv_idle callback on the next loop pass, so lh_upstream_send never calls back and
 * never frees what it returns; a retry that fails inside start() again is queued for the pass
 * after (no recursion; each request tries each server once).
 *
 * Also what both encrypted transports (DoT, DoH) share: their failure reasons' statuses
 * and texts. */
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
#define LH_STATUS_NO_ECHO (-1000) /* the answer did not echo the question (0x20) */
#define LH_STATUS_NOT_STARTED (-1001)

struct lh_upstream_req {
    lh_upstream *u;
    lh_upstream_req *live_prev, *live_next;
    unsigned group;
    lh_upstream_cb cb;
    void *arg;
    uint32_t tried; /* bit per server index in the group */
    lh_upstream_server *server;
    lh_try *try_;     /* the try in flight, NULL between tries */
    bool done_early;  /* the try ended inside start() */
    bool deferred;    /* queued for on_deferred */
    uint64_t sent_ns; /* this try's start */
    lh_upstream_req *next_deferred;
    int deferred_status;
    size_t len, question_end;
    uint8_t query[]; /* kept for failover to the next server */
};

static uint64_t now_ms(lh_upstream *u)
{
    return lh_clock_now(u->clock);
}

/* The healthiest untried server: not down first, in configured order; -1 when all tried. */
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

static void req_unlink(lh_upstream_req *r)
{
    lh_upstream *u = r->u;
    if (r->live_prev)
        r->live_prev->live_next = r->live_next;
    else
        u->live = r->live_next;
    if (r->live_next) r->live_next->live_prev = r->live_prev;
    u->inflight--;
}

/* Ends a request: the callback, then free. Never runs inside lh_upstream_send, _cancel or
 * _shutdown. */
static void req_finish(lh_upstream_req *r, int status, const uint8_t *answer, size_t len)
{
    req_unlink(r);
    r->cb(r->arg, status, answer, len, r->server);
    free(r);
}

static void on_try_done(void *arg, int status, const uint8_t *answer, size_t len);

/* Starts a try at `s`; false when it could not even start (no channel). */
static bool try_start(lh_upstream_req *r, lh_upstream_server *s)
{
    lh_upstream *u = r->u;
    r->server = s;
    r->sent_ns = uv_hrtime();
    r->done_early = false;
    u->in_start = true;
    lh_try *t = u->transport->ops->start(u->transport, s, r->query, r->len, on_try_done, r);
    u->in_start = false;
    if (!t) return false;
    s->queries++;
    r->try_ = r->done_early ? NULL : t;
    return true;
}

/* Starts a try at the next server; returns false when there is none left to try. */
static bool try_next(lh_upstream_req *r)
{
    lh_upstream *u = r->u;
    int i;
    while (!u->shutting_down && (i = pick_server(u, r)) >= 0) {
        r->tried |= 1u << i;
        if (try_start(r, &u->groups[r->group].servers[i])) return true;
    }
    return false;
}

/* tls-mode opportunistic (RFC 8310 section 5): the encrypted try at `s` failed, so the same
 * question goes to the same address in plain DNS. Said once per run of fallbacks. */
static bool try_fallback(lh_upstream_req *r, lh_upstream_server *s, const char *why)
{
    if (!s->fallback || r->u->shutting_down) return false;
    s->tls_stats.fallbacks++;
    if (!s->fallback_logged)
        lh_warn("upstream %s: %s; tls-mode is opportunistic, so the query goes to %s in "
                "plaintext (not private)",
                s->label, why, s->fallback->label);
    s->fallback_logged = true;
    return try_start(r, s->fallback);
}

/* A try failed: the server's health, then the next server or the end. */
static void try_failed(lh_upstream_req *r, int status)
{
    lh_upstream *u = r->u;
    lh_upstream_server *s = r->server;
    const char *why = status == LH_STATUS_NO_ECHO       ? "the answer did not echo the question"
                      : status == LH_STATUS_NOT_STARTED ? "could not be sent"
                                                        : u->transport->ops->strerror(status);
    s->failures++;
    if (++s->consecutive_failures >= LH_SERVER_DOWN_AFTER) {
        if (s->down_until_ms <= now_ms(u))
            lh_warn("upstream %s: %u failures in a row (last: %s); trying it last for %d s",
                    s->label, s->consecutive_failures, why, LH_SERVER_DOWN_MS / 1000);
        s->down_until_ms = now_ms(u) + LH_SERVER_DOWN_MS;
    } else {
        lh_debug("upstream %s: %s", s->label, why);
    }
    if (try_fallback(r, s, why) || try_next(r)) return;
    req_finish(r, status, NULL, 0);
}

/* One at a time from the queue's head: a callback may cancel or shut down anything, queued
 * requests included. A retry failing inside start() again joins the tail; each request tries
 * each server once, so the pass ends. */
static void on_deferred(uv_idle_t *h)
{
    lh_upstream *u = h->data;
    lh_upstream_req *r;
    while ((r = u->deferred_head)) {
        u->deferred_head = r->next_deferred;
        if (!u->deferred_head) u->deferred_tail = NULL;
        r->next_deferred = NULL;
        r->deferred = false;
        try_failed(r, r->deferred_status);
    }
    if (!u->shutting_down) uv_idle_stop(&u->idle);
}

static void defer_failure(lh_upstream *u, lh_upstream_req *r, int status)
{
    r->deferred_status = status;
    r->deferred = true;
    r->next_deferred = NULL;
    if (u->deferred_tail)
        u->deferred_tail->next_deferred = r;
    else
        u->deferred_head = r;
    u->deferred_tail = r;
    uv_idle_start(&u->idle, on_deferred);
}

static void deferred_remove(lh_upstream *u, lh_upstream_req *r)
{
    lh_upstream_req **pp = &u->deferred_head, *prev = NULL;
    while (*pp && *pp != r) {
        prev = *pp;
        pp = &(*pp)->next_deferred;
    }
    if (!*pp) return;
    *pp = r->next_deferred;
    if (u->deferred_tail == r) u->deferred_tail = prev;
    r->deferred = false;
}

static void on_try_done(void *arg, int status, const uint8_t *answer, size_t len)
{
    lh_upstream_req *r = arg;
    lh_upstream *u = r->u;
    r->try_ = NULL;
    if (u->in_start) { /* inside start(): nothing can have been answered */
        r->done_early = true;
        defer_failure(u, r, status ? status : LH_STATUS_NOT_STARTED);
        return;
    }
    lh_upstream_server *s = r->server;
    /* The transport matched what it could (c-ares: ID, source, the question without case);
     * loophole wants the question back byte for byte (0x20). A mismatch may be spoofed: it
     * counts as a failure. */
    if (status == 0 && (len < LH_DNS_HEADER_LEN || !(lh_rd16(answer + 2) & LH_FLAG_QR))) {
        /* A message without QR is a query, not an answer (a reflector, or an upstream echoing
         * what it got): taking it would relay an empty NOERROR. */
        lh_warn("upstream %s: a message without the QR bit came back: dropped", s->label);
        status = LH_STATUS_NO_ECHO;
    }
    if (status == 0 && (len < r->question_end || lh_rd16(answer + 4) != 1 ||
                        memcmp(answer + LH_DNS_HEADER_LEN, r->query + LH_DNS_HEADER_LEN,
                               r->question_end - LH_DNS_HEADER_LEN) != 0)) {
        lh_warn("upstream %s: answer does not echo the question as sent (0x20 case): dropped "
                "as possibly spoofed",
                s->label);
        status = LH_STATUS_NO_ECHO;
    }
    if (status == 0 && answer && len > 0) {
        uint64_t took = uv_hrtime() - r->sent_ns;
        s->answers++;
        s->latency[lh_latency_bucket(took)]++;
        s->latency_sum_ns += took;
        s->consecutive_failures = 0;
        s->down_until_ms = 0;
        s->fallback_logged = false;
        req_finish(r, 0, answer, len);
        return;
    }
    try_failed(r, status ? status : LH_STATUS_NO_ECHO);
}

lh_upstream_req *lh_upstream_send(lh_upstream *u, unsigned group, const uint8_t *query, size_t len,
                                  lh_upstream_cb cb, void *arg)
{
    if (u->shutting_down || group >= u->ngroups || u->groups[group].nservers == 0) return NULL;
    if (u->inflight >= u->max_inflight) {
        u->rejected++;
        return NULL;
    }
    lh_msg m; /* our own query: parsing it only finds where its question ends */
    if (lh_msg_parse_query(query, len, &m) != LH_PARSE_OK) return NULL;
    lh_upstream_req *r = malloc(sizeof *r + len);
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    r->u = u;
    r->group = group;
    r->cb = cb;
    r->arg = arg;
    r->len = len;
    r->question_end = m.question_end;
    memcpy(r->query, query, len);
    r->live_next = u->live;
    if (u->live) u->live->live_prev = r;
    u->live = r;
    u->inflight++;
    if (!try_next(r)) { /* no server could even be tried: nothing sent, nothing queued */
        req_unlink(r);
        free(r);
        return NULL;
    }
    return r; /* alive: even a try that already failed is only queued (on_deferred) */
}

/* Drops a request without a callback: its try cancelled at the transport, or its queued
 * failure removed. */
static void req_drop(lh_upstream_req *r)
{
    lh_upstream *u = r->u;
    if (r->try_) u->transport->ops->cancel(u->transport, r->try_);
    if (r->deferred) deferred_remove(u, r);
    req_unlink(r);
    free(r);
}

void lh_upstream_cancel(lh_upstream_req *r)
{
    if (r) req_drop(r);
}

void lh_upstream_shutdown(lh_upstream *u)
{
    if (u->shutting_down) return;
    u->shutting_down = true;
    while (u->live)
        req_drop(u->live);
    if (u->idle_ready && !uv_is_closing((uv_handle_t *)&u->idle))
        uv_close((uv_handle_t *)&u->idle, NULL);
    if (u->transport) u->transport->ops->shutdown(u->transport);
}

void lh_upstream_free(lh_upstream *u)
{
    for (unsigned g = 0; g < u->ngroups; g++)
        free(u->groups[g].servers);
    free(u->groups);
    u->groups = NULL;
    u->ngroups = 0;
    if (u->transport) u->transport->ops->free(u->transport);
    u->transport = NULL;
}

/* The servers of a group; with `opportunistic`, each encrypted one gets its plain fallback in
 * the second half of the same array (servers[nservers + i], outside the group's list). */
static int group_set(lh_upstream_group *g, const lh_sockaddr *addrs, const lh_upstream_tls *tls,
                     unsigned n, bool opportunistic)
{
    g->servers = calloc(n ? 2 * n : 1, sizeof *g->servers);
    if (!g->servers) return -1;
    g->nservers = n < LH_GROUP_SERVERS_MAX ? n : LH_GROUP_SERVERS_MAX;
    for (unsigned i = 0; i < g->nservers; i++) {
        lh_upstream_server *s = &g->servers[i];
        s->addr = addrs[i];
        s->index = i;
        if (tls) s->tls = tls[i];
        lh_upstream_addr_format(&addrs[i], tls ? &tls[i] : NULL, s->label, sizeof s->label);
        if (!opportunistic || !s->tls.on) continue;
        lh_upstream_server *p = &g->servers[g->nservers + i];
        p->addr = addrs[i];
        if (p->addr.sa.sa_family == AF_INET6)
            p->addr.v6.sin6_port = htons(53);
        else
            p->addr.v4.sin_port = htons(53);
        p->index = i;
        lh_upstream_addr_format(&p->addr, NULL, p->label, sizeof p->label);
        s->fallback = p;
    }
    return 0;
}

const unsigned lh_conn_queries_bounds[LH_CONN_QUERIES_BUCKETS - 1] = {1, 10, 100, 1000, 10000};

unsigned lh_conn_queries_bucket(uint64_t queries)
{
    unsigned i = 0;
    while (i < LH_CONN_QUERIES_BUCKETS - 1 && queries > lh_conn_queries_bounds[i])
        i++;
    return i;
}

int lh_tls_reason_ede(enum lh_tls_reason r)
{
    switch (r) {
    case LH_TLS_R_CONNECT:
    case LH_TLS_R_TIMEOUT:
    case LH_TLS_R_BACKOFF:
        return 22; /* No Reachable Authority */
    default:
        return 23; /* Network Error: certificate, pin, handshake, reset, HTTP */
    }
}

static const char *const tls_reason_text[LH_TLS_REASONS] = {
    [LH_TLS_R_CONNECT] = "connection failed",
    [LH_TLS_R_CERT] = "certificate not trusted for the name",
    [LH_TLS_R_PIN] = "server key does not match pin-sha256",
    [LH_TLS_R_HANDSHAKE] = "TLS handshake failed",
    [LH_TLS_R_TIMEOUT] = "timed out",
    [LH_TLS_R_RESET] = "connection closed with the query in flight",
    [LH_TLS_R_BACKOFF] = "not tried: the TLS upstream failed moments ago (back-off)",
    [LH_TLS_R_OTHER] = "no room for the query or a malformed answer",
    [LH_TLS_R_HTTP] = "HTTP status not 200 or not a DNS message",
};

int lh_tls_reason_status(int base, enum lh_tls_reason r)
{
    return -(base + (int)r);
}

const char *lh_tls_reason_text(enum lh_tls_reason r, bool doh)
{
    /* DoH has no back-off of its own (libcurl reconnects) and its "other" includes too many
     * transfers in flight. */
    if (doh && r == LH_TLS_R_BACKOFF) return "not tried";
    if (doh && r == LH_TLS_R_OTHER) return "too many in flight, or a malformed or oversized answer";
    return tls_reason_text[r];
}

const char *lh_tls_status_text(int status, int base, bool doh, const char *fallback)
{
    int r = -status - base;
    return r >= 0 && r < LH_TLS_REASONS ? lh_tls_reason_text((enum lh_tls_reason)r, doh) : fallback;
}

int lh_upstream_ede(const lh_upstream *u, int status)
{
    if (status == LH_STATUS_NO_ECHO) return 23; /* what came back was not the answer */
    if (status == LH_STATUS_NOT_STARTED || !u->transport || !u->transport->ops->ede) return 22;
    return u->transport->ops->ede(status);
}

const char *lh_upstream_transport_name(const lh_upstream_server *s)
{
    return s->tls.https ? "https" : s->tls.on ? "tls" : "plain";
}

bool lh_upstream_private(const lh_upstream_server *s)
{
    return s->tls.on && !s->fallback;
}

int lh_upstream_init(lh_upstream *u, uv_loop_t *loop, lh_clock *clock, const lh_config *cfg,
                     unsigned max_inflight, lh_transport *transport, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    u->loop = loop;
    u->clock = clock;
    u->max_inflight = max_inflight;
    u->transport =
        transport ? transport : lh_transport_for_config(loop, cfg, max_inflight, err, errlen);
    if (!u->transport) {
        lh_upstream_free(u);
        return -1;
    }
    lh_sockaddr addrs[LH_UPSTREAMS_MAX];
    char source[LH_ERR_MAX];
    enum lh_upstream_origin origin;
    unsigned n = lh_config_upstreams(cfg, addrs, LH_UPSTREAMS_MAX, source, sizeof source, &origin);
    if (n == 0) {
        snprintf(err, errlen, "no upstream to forward to: %s", source);
        lh_upstream_free(u);
        return -1;
    }
    u->ngroups = 1 + cfg->nforward_zones;
    u->groups = calloc(u->ngroups, sizeof *u->groups);
    /* The configured list keeps its order, so its TLS settings line up; resolv.conf's and the
     * fallback's upstreams are plain. */
    const lh_upstream_tls *tls = cfg->nupstreams ? cfg->upstream_tls : NULL;
    if (!u->groups || group_set(&u->groups[0], addrs, tls, n, cfg->tls_opportunistic) != 0)
        goto oom;
    u->groups[0].origin = origin;
    snprintf(u->source, sizeof u->source, "%s", source);
    char list[LH_ERR_MAX] = "";
    for (unsigned i = 0; i < u->groups[0].nservers; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                 u->groups[0].servers[i].label);
    lh_info("upstreams: %s (%s)", list, source);
    for (unsigned z = 0; z < cfg->nforward_zones; z++) {
        const lh_forward_zone *fz = &cfg->forward_zones[z];
        if (group_set(&u->groups[z + 1], fz->servers, fz->tls, fz->nservers,
                      cfg->tls_opportunistic) != 0)
            goto oom;
        u->groups[z + 1].origin = lh_origin_of(fz->src);
        lh_info("forward zone %s: %u upstream(s), first %s", fz->zone, fz->nservers,
                u->groups[z + 1].servers[0].label);
    }
    uv_idle_init(loop, &u->idle); /* closed by lh_upstream_shutdown */
    u->idle.data = u;
    u->idle_ready = true;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    lh_upstream_free(u);
    return -1;
}

unsigned lh_upstream_collect(const lh_upstream *u, lh_upstream_figures *out, unsigned max)
{
    unsigned n = 0;
    for (unsigned g = 0; g < u->ngroups; g++) {
        const lh_upstream_group *grp = &u->groups[g];
        for (unsigned i = 0; i < grp->nservers && n < max; i++) {
            const lh_upstream_server *s = &grp->servers[i];
            lh_upstream_figures *f = &out[n++];
            f->queries = s->queries;
            f->answers = s->answers;
            f->failures = s->failures;
            f->latency_sum_ns = s->latency_sum_ns;
            memcpy(f->latency, s->latency, sizeof f->latency);
            f->tls = s->tls_stats;
        }
    }
    return n;
}

const lh_upstream_server *lh_upstream_at(const lh_upstream *u, unsigned k, unsigned *group)
{
    for (unsigned g = 0; g < u->ngroups; g++) {
        if (k < u->groups[g].nservers) {
            *group = g;
            return &u->groups[g].servers[k];
        }
        k -= u->groups[g].nservers;
    }
    return NULL;
}

const char *lh_upstream_origin_of(const lh_upstream *u, unsigned group)
{
    return lh_upstream_origin_names[u->groups[group].origin];
}
