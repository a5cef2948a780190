/* transport_https.c - DNS over HTTPS (RFC 8484) on the libuv loop through libcurl's multi
 * interface, strict like the DoT transport: the certificate is verified against the system CA
 * store (or --tls-ca) and the URL's host name, an optional SPKI pin is checked on top, and any
 * failure (refused, certificate, pin, timeout, an HTTP status other than 200, a body that is
 * not application/dns-message) fails the try; nothing is ever sent in plaintext instead.
 *
 * libcurl does the TLS and HTTP/2 (through nghttp2) and owns the sockets; the loop does the
 * waiting: CURLMOPT_SOCKETFUNCTION puts each socket libcurl wants watched on a uv_poll_t,
 * CURLMOPT_TIMERFUNCTION arms one uv_timer_t, and both call curl_multi_socket_action. No thread,
 * no blocking call. The host name is never looked up: CURLOPT_CONNECT_TO sends HOST:PORT to the
 * configured IP address, and libcurl takes an IP literal as it is, without a resolver.
 *
 * Connections: one multi handle per transport (per loop) keeps the connections; transfers to
 * one upstream wait for its connection (CURLOPT_PIPEWAIT) and go as HTTP/2 streams on it, at
 * most DOH_CONNS_MAX connections and DOH_INFLIGHT_MAX transfers per upstream. When nothing has
 * been in flight for `doh-idle-timeout` the multi handle is dropped, which closes every
 * connection.
 *
 * Queries go with DNS ID 0 (RFC 8484 section 4.1: cache-friendly; each HTTP exchange is its own
 * stream, so the answer is matched by its transfer, not its ID) and padded with EDNS(0) Padding
 * to a multiple of 128 bytes (RFC 8467), as over DoT.
 *
 * Re-entrancy: `done` callbacks run only from drain(), after curl_multi_socket_action has
 * returned, never from inside a libcurl callback; a `done` may start, cancel or shut down. */
#include "loophole/log.h"
#include "loophole/upstream.h"
#include "loophole/wire.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DOH_INFLIGHT_MAX 512 /* transfers at once per upstream (and streams per connection) */
#define DOH_CONNS_MAX 2      /* connections per upstream */
#define DOH_BODY_MAX 65535   /* a DNS message's largest size */
#define DOH_BODY_KEEP 4096   /* an answer buffer larger than this is not kept for the next try */
#define DOH_QUERY_MAX 1024   /* a padded query: ours are far below (one question) */
#define DOH_PAD_BLOCK 128    /* RFC 8467 */
#define DOH_LOG_EVERY_MS 10000
#define DOH_STATUS_BASE 3000
#define DOH_URL_MAX (16 + LH_AUTH_NAME_MAX + LH_DOH_PATH_MAX + 5 + DOH_QUERY_MAX * 4 / 3 + 4)

typedef struct doh_transport doh_transport;

/* What one upstream's transfers share: its URL, where to connect, its pin. */
typedef struct doh_host {
    doh_transport *t;
    lh_upstream_server *s;
    struct doh_host *next;
    struct curl_slist *connect_to; /* "HOST:PORT:ADDR:PORT" */
    char base_url[16 + LH_AUTH_NAME_MAX + LH_DOH_PATH_MAX];
    char pin[8 + 48]; /* "sha256//BASE64" or empty */
    uint64_t logged_ms;
    int logged_reason;
} doh_host;

typedef struct doh_try {
    doh_transport *t;
    doh_host *h;
    CURL *easy; /* kept across tries (its options and buffers are reused) until idle */
    struct doh_try *free_next;
    lh_try_done_cb done;
    void *arg;
    uint16_t orig_id;
    bool in_use, active, too_big;
    size_t qlen;
    uint8_t q[DOH_QUERY_MAX];
    uint8_t *body; /* grows to what is received, up to DOH_BODY_MAX; kept for the next try when
                    * at most DOH_BODY_KEEP, freed (with `easy`) when the transport goes idle */
    size_t blen, bcap;
    char errbuf[CURL_ERROR_SIZE];
} doh_try;

/* One connection that has carried an answer, for the queries-per-connection histogram. libcurl
 * keeps its connections to itself and names none to a multiplexed transfer that has ended
 * (CURLINFO_ACTIVESOCKET is unset while other streams still use the connection), but every
 * transfer knows its local port: a connection is that port towards its upstream. It is counted
 * when a transfer on it ends and goes into the histogram when libcurl closes its socket. */
typedef struct doh_conn {
    doh_host *h;
    uint16_t lport;
    uint64_t queries;
    struct doh_conn *next;
} doh_conn;

/* One socket libcurl asked to be watched. */
typedef struct doh_watch {
    uv_poll_t poll;
    doh_transport *t;
    curl_socket_t fd;
    struct doh_watch *prev, *next;
} doh_watch;

struct doh_transport {
    lh_transport base;
    uv_loop_t *loop;
    unsigned timeout_ms;
    unsigned idle_ms; /* doh-idle-timeout */
    char *ca_file;
    CURLM *multi; /* NULL while idle */
    CURLSH *share;
    uv_timer_t timer, idle;
    doh_try *slab, *free_tries;
    unsigned max_tries, inflight;
    doh_watch *watches;
    doh_conn *conns;
    doh_host *hosts;
    struct curl_slist *hdr_post, *hdr_get;
    bool shutting_down, timers_ready;
};

static void drain(doh_transport *t);

/* ---- the loop side of libcurl ------------------------------------------------------------ */

static void on_watch_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Stops watching at once (uv_close takes the fd out of epoll now, while it is still libcurl's
 * open socket; the memory goes in the close callback). */
static void watch_close(doh_watch *w)
{
    doh_transport *t = w->t;
    if (w->prev)
        w->prev->next = w->next;
    else
        t->watches = w->next;
    if (w->next) w->next->prev = w->prev;
    uv_close((uv_handle_t *)&w->poll, on_watch_closed);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    doh_watch *w = p->data;
    doh_transport *t = w->t;
    int flags = 0;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    int running;
    if (t->multi) curl_multi_socket_action(t->multi, w->fd, flags, &running); /* may close w */
    drain(t);
}

static int on_curl_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)e;
    doh_transport *t = userp;
    doh_watch *w = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (w) watch_close(w);
        return 0;
    }
    if (!w) {
        if (!(w = calloc(1, sizeof *w))) return -1;
        if (uv_poll_init_socket(t->loop, &w->poll, fd) != 0) {
            free(w);
            return -1;
        }
        w->poll.data = w;
        w->t = t;
        w->fd = fd;
        w->next = t->watches;
        if (t->watches) t->watches->prev = w;
        t->watches = w;
        curl_multi_assign(t->multi, fd, w);
    }
    int ev = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
    uv_poll_start(&w->poll, ev, on_poll);
    return 0;
}

static uint16_t port_of(const lh_sockaddr *a)
{
    return ntohs(a->sa.sa_family == AF_INET6 ? a->v6.sin6_port : a->v4.sin_port);
}

static bool same_host(const lh_sockaddr *a, const lh_sockaddr *b)
{
    if (a->sa.sa_family != b->sa.sa_family || port_of(a) != port_of(b)) return false;
    return a->sa.sa_family == AF_INET6
               ? !memcmp(&a->v6.sin6_addr, &b->v6.sin6_addr, sizeof a->v6.sin6_addr)
               : a->v4.sin_addr.s_addr == b->v4.sin_addr.s_addr;
}

/* The connection on `fd` is closing: its count goes into its upstream's histogram. The same
 * local port may serve connections to two upstreams; the peer tells them apart while the
 * socket still has one (a reset one has not: then the first record with the port). */
static void conn_closed(doh_transport *t, curl_socket_t fd)
{
    lh_sockaddr local, peer;
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (getsockname(fd, &local.sa, &ll) != 0) return;
    bool has_peer = getpeername(fd, &peer.sa, &pl) == 0;
    doh_conn **pp = &t->conns;
    while (*pp && !((*pp)->lport == port_of(&local) &&
                    (!has_peer || same_host(&peer, &(*pp)->h->s->addr))))
        pp = &(*pp)->next;
    if (!*pp) return; /* never carried an answer (or a socket of no connection) */
    doh_conn *c = *pp;
    lh_tls_counters *st = &c->h->s->tls_stats;
    st->conn_queries[lh_conn_queries_bucket(c->queries)]++;
    st->conn_queries_sum += c->queries;
    *pp = c->next;
    free(c);
}

/* libcurl closes a socket: a watch still on it goes first, so that epoll never holds an fd
 * number that a later socket may reuse. */
static int on_close_socket(void *clientp, curl_socket_t fd)
{
    doh_transport *t = clientp;
    for (doh_watch *w = t->watches; w; w = w->next)
        if (w->fd == fd) {
            watch_close(w);
            break;
        }
    if (t->conns) conn_closed(t, fd);
    return close(fd);
}

/* One more answer on the connection of this (ended, not yet removed) transfer. Without memory
 * for the record the connection goes uncounted; nothing else depends on it. */
static void conn_count(doh_try *tr)
{
    doh_transport *t = tr->t;
    long lport = 0;
    if (curl_easy_getinfo(tr->easy, CURLINFO_LOCAL_PORT, &lport) != CURLE_OK || lport <= 0 ||
        lport > 65535)
        return;
    doh_conn *c = t->conns;
    while (c && !(c->lport == (uint16_t)lport && c->h == tr->h))
        c = c->next;
    if (!c) {
        if (!(c = calloc(1, sizeof *c))) return;
        c->lport = (uint16_t)lport;
        c->h = tr->h;
        c->next = t->conns;
        t->conns = c;
    }
    c->queries++;
}

static void on_timer(uv_timer_t *h)
{
    doh_transport *t = h->data;
    int running;
    if (t->multi) curl_multi_socket_action(t->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain(t);
}

static int on_curl_timer(CURLM *m, long ms, void *userp)
{
    (void)m;
    doh_transport *t = userp;
    if (ms < 0)
        uv_timer_stop(&t->timer);
    else /* 0 too goes through the loop: never call libcurl from inside its own callback */
        uv_timer_start(&t->timer, on_timer, (uint64_t)ms, 0);
    return 0;
}

/* Nothing in flight for idle_ms: the multi handle goes, and its connections with it. */
static void on_idle(uv_timer_t *h)
{
    doh_transport *t = h->data;
    if (t->inflight || !t->multi) return;
    curl_multi_cleanup(t->multi);
    t->multi = NULL;
    while (t->watches) /* none should be left (libcurl closed its sockets); never a stale one */
        watch_close(t->watches);
    uv_timer_stop(&t->timer);
    /* Every slot is free: their easy handles (each with libcurl's buffers, tens of KB) and
     * answer buffers go too, so that a burst long past does not hold its memory for the
     * daemon's life. The next try makes a handle again. */
    unsigned freed = 0;
    for (unsigned i = 0; i < t->max_tries; i++) {
        doh_try *tr = &t->slab[i];
        if (tr->in_use || !tr->easy) continue;
        curl_easy_cleanup(tr->easy);
        free(tr->body);
        tr->easy = NULL;
        tr->body = NULL;
        tr->blen = tr->bcap = 0;
        freed++;
    }
    /* glibc keeps freed chunks in the heap; give the pages back (idle: the stall is harmless) */
    if (freed) malloc_trim(0);
    lh_debug("DNS over HTTPS: idle for %u ms, connections closed, %u transfer handles freed",
             t->idle_ms, freed);
}

static CURLM *multi_get(doh_transport *t)
{
    if (t->multi) return t->multi;
    CURLM *m = curl_multi_init();
    if (!m) return NULL;
    if (!t->timers_ready) { /* here, not in _new: a transport never started owns no handle */
        uv_timer_init(t->loop, &t->timer);
        uv_timer_init(t->loop, &t->idle);
        t->timer.data = t->idle.data = t;
        t->timers_ready = true;
    }
    curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(m, CURLMOPT_SOCKETDATA, t);
    curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(m, CURLMOPT_TIMERDATA, t);
    curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)DOH_CONNS_MAX);
    curl_multi_setopt(m, CURLMOPT_MAX_CONCURRENT_STREAMS, (long)DOH_INFLIGHT_MAX);
    t->multi = m;
    return m;
}

/* ---- tries ------------------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
    doh_try *tr = userp;
    size_t len = size * n;
    if (len > DOH_BODY_MAX - tr->blen) {
        tr->too_big = true;
        return 0; /* CURLE_WRITE_ERROR: the transfer ends here */
    }
    /* A large answer's buffer is not kept for the small ones after it. Here, not in start():
     * the previous answer may still be read by its `done`, which can start a try in this very
     * slot; libcurl writes only after that callback has returned. */
    if (tr->blen == 0 && tr->bcap > DOH_BODY_KEEP) {
        free(tr->body);
        tr->body = NULL;
        tr->bcap = 0;
    }
    if (tr->blen + len > tr->bcap) {
        size_t cap = tr->bcap ? tr->bcap : 512;
        while (cap < tr->blen + len)
            cap *= 2;
        if (cap > DOH_BODY_MAX) cap = DOH_BODY_MAX;
        uint8_t *b = realloc(tr->body, cap);
        if (!b) return 0;
        tr->body = b;
        tr->bcap = cap;
    }
    memcpy(tr->body + tr->blen, data, len);
    tr->blen += len;
    return len;
}

static void try_release(doh_try *tr)
{
    doh_transport *t = tr->t;
    if (tr->active) {
        curl_multi_remove_handle(t->multi, tr->easy);
        tr->active = false;
    }
    tr->h->s->doh_inflight--;
    tr->in_use = false;
    tr->done = NULL;
    tr->free_next = t->free_tries;
    t->free_tries = tr;
    if (--t->inflight == 0 && !t->shutting_down) uv_timer_start(&t->idle, on_idle, t->idle_ms, 0);
}

/* A log line per upstream and reason, at most every DOH_LOG_EVERY_MS (a failing upstream must
 * not flood the log with a line per query). */
static void log_failure(doh_try *tr, enum lh_tls_reason why, const char *detail)
{
    doh_host *h = tr->h;
    uint64_t now = uv_now(tr->t->loop);
    if (h->logged_ms && h->logged_reason == (int)why && now - h->logged_ms < DOH_LOG_EVERY_MS)
        return;
    h->logged_ms = now;
    h->logged_reason = (int)why;
    lh_warn("upstream %s: %s%s%s; its queries fail (SERVFAIL unless another upstream answers), "
            "never sent in plaintext",
            h->s->label, lh_tls_reason_text(why, true), detail && *detail ? ": " : "",
            detail ? detail : "");
}

static void try_fail(doh_try *tr, enum lh_tls_reason why, const char *detail)
{
    lh_try_done_cb done = tr->done;
    void *arg = tr->arg;
    tr->h->s->tls_stats.failures[why]++;
    if (detail) log_failure(tr, why, detail); /* NULL: too many in flight, said elsewhere */
    try_release(tr);
    if (done) done(arg, lh_tls_reason_status(DOH_STATUS_BASE, why), NULL, 0);
}

static enum lh_tls_reason reason_of(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return LH_TLS_R_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        return LH_TLS_R_CONNECT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CERTPROBLEM:
        return LH_TLS_R_CERT;
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return LH_TLS_R_PIN;
    case CURLE_SSL_CONNECT_ERROR:
        return LH_TLS_R_HANDSHAKE;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return LH_TLS_R_RESET;
    default:
        return LH_TLS_R_OTHER; /* a write error for an oversized answer among them */
    }
}

/* A transfer has ended: counted, judged, and reported to its `done`. */
static void finish(doh_try *tr, CURLcode rc)
{
    lh_upstream_server *s = tr->h->s;
    long code = 0, nconn = 0;
    char *ctype = NULL;
    curl_easy_getinfo(tr->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(tr->easy, CURLINFO_NUM_CONNECTS, &nconn);
    curl_easy_getinfo(tr->easy, CURLINFO_CONTENT_TYPE, &ctype);
    if (nconn > 0) {
        s->tls_stats.connections++;
        if (code > 0) { /* an HTTP answer: the handshake completed; timed from the start of the
                         * transfer, so connect + handshake, as over DoT */
            curl_off_t us = 0;
            curl_easy_getinfo(tr->easy, CURLINFO_APPCONNECT_TIME_T, &us);
            uint64_t took = (uint64_t)(us > 0 ? us : 0) * 1000;
            s->tls_stats.handshakes++;
            s->tls_stats.handshake_latency[lh_latency_bucket(took)]++;
            s->tls_stats.handshake_latency_sum_ns += took;
        }
    } else if (code > 0) {
        s->tls_stats.reused++;
    }
    if (code > 0) conn_count(tr);
    if (rc != CURLE_OK) {
        enum lh_tls_reason why = reason_of(rc);
        try_fail(tr, why,
                 tr->too_big     ? "answer over 65535 bytes"
                 : tr->errbuf[0] ? tr->errbuf
                                 : "");
        return;
    }
    char detail[160];
    if (code != 200) {
        s->tls_stats.http_errors++;
        snprintf(detail, sizeof detail, "HTTP status %ld", code);
        try_fail(tr, LH_TLS_R_HTTP, detail);
        return;
    }
    /* "application/dns-message", any case, parameters allowed */
    size_t ctl = strlen("application/dns-message");
    if (!ctype || strncasecmp(ctype, "application/dns-message", ctl) != 0 ||
        (ctype[ctl] && ctype[ctl] != ';' && ctype[ctl] != ' ')) {
        snprintf(detail, sizeof detail, "content type '%.60s'", ctype ? ctype : "(none)");
        try_fail(tr, LH_TLS_R_HTTP, detail);
        return;
    }
    if (tr->blen < LH_DNS_HEADER_LEN || lh_rd16(tr->body) != 0) {
        snprintf(detail, sizeof detail, "%s",
                 tr->blen < LH_DNS_HEADER_LEN ? "answer too short" : "answer ID not 0");
        try_fail(tr, LH_TLS_R_OTHER, detail);
        return;
    }
    tr->body[0] = (uint8_t)(tr->orig_id >> 8);
    tr->body[1] = (uint8_t)tr->orig_id;
    /* Released before the callback, which may start a try in this very slot: the body stays
     * as it is until libcurl runs again, which it cannot do before the callback returns. */
    lh_try_done_cb done = tr->done;
    void *arg = tr->arg;
    const uint8_t *body = tr->body;
    size_t blen = tr->blen;
    try_release(tr);
    if (done) done(arg, 0, body, blen);
}

static void drain(doh_transport *t)
{
    CURLMsg *m;
    int left;
    while (!t->shutting_down && t->multi && (m = curl_multi_info_read(t->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        doh_try *tr = NULL;
        CURLcode rc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&tr);
        if (tr && tr->in_use) finish(tr, rc);
    }
}

/* ---- per upstream ------------------------------------------------------------------------ */

static doh_host *host_of(doh_transport *t, lh_upstream_server *s)
{
    if (s->doh_host) return s->doh_host;
    doh_host *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    const lh_upstream_tls *tls = &s->tls;
    uint16_t port =
        ntohs(s->addr.sa.sa_family == AF_INET6 ? s->addr.v6.sin6_port : s->addr.v4.sin_port);
    bool host_v6 = strchr(tls->auth_name, ':') != NULL;
    char addr[64], ct[LH_AUTH_NAME_MAX + 96];
    inet_ntop(s->addr.sa.sa_family,
              s->addr.sa.sa_family == AF_INET6 ? (void *)&s->addr.v6.sin6_addr
                                               : (void *)&s->addr.v4.sin_addr,
              addr, sizeof addr);
    snprintf(h->base_url, sizeof h->base_url, "https://%s%s%s:%u%s", host_v6 ? "[" : "",
             tls->auth_name, host_v6 ? "]" : "", port, tls->doh_path);
    snprintf(ct, sizeof ct, "%s%s%s:%u:%s%s%s:%u", host_v6 ? "[" : "", tls->auth_name,
             host_v6 ? "]" : "", port, s->addr.sa.sa_family == AF_INET6 ? "[" : "", addr,
             s->addr.sa.sa_family == AF_INET6 ? "]" : "", port);
    if (!(h->connect_to = curl_slist_append(NULL, ct))) {
        free(h);
        return NULL;
    }
    if (tls->has_pin) {
        memcpy(h->pin, "sha256//", 8);
        EVP_EncodeBlock((unsigned char *)h->pin + 8, tls->pin, sizeof tls->pin);
    }
    h->t = t;
    h->s = s;
    h->next = t->hosts;
    t->hosts = h;
    s->doh_host = h;
    return h;
}

/* base64url without padding (RFC 8484 section 4.1, GET's dns= parameter). */
static size_t b64url(const uint8_t *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        if (i + 1 < n) out[o++] = a[v >> 6 & 63];
        if (i + 2 < n) out[o++] = a[v & 63];
    }
    out[o] = 0;
    return o;
}

/* The options that stay the same for every try on this handle. */
static CURL *easy_new(doh_transport *t, doh_try *tr)
{
    CURL *e = curl_easy_init();
    if (!e) return NULL;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)tr);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, tr);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, tr->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");              /* never a proxy from the environment */
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https"); /* never plain http */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (t->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)t->timeout_ms);
    /* libcurl's own bound, whole seconds: a connection unused this long is not reused */
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, (long)(t->idle_ms < 1000 ? 1 : t->idle_ms / 1000));
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, t);
    curl_easy_setopt(e, CURLOPT_SHARE, t->share);
    return e;
}

static lh_try *https_start(lh_transport *base, lh_upstream_server *s, const uint8_t *query,
                           size_t len, lh_try_done_cb done, void *arg)
{
    doh_transport *t = (doh_transport *)base;
    if (t->shutting_down || !s->tls.https || len < LH_DNS_HEADER_LEN || len > DOH_QUERY_MAX)
        return NULL;
    doh_host *h = host_of(t, s);
    doh_try *tr = t->free_tries;
    if (!h || !tr || !multi_get(t)) return NULL;
    if (!tr->easy && !(tr->easy = easy_new(t, tr))) return NULL;
    t->free_tries = tr->free_next;
    tr->t = t;
    tr->h = h;
    tr->done = done;
    tr->arg = arg;
    tr->in_use = true;
    tr->active = tr->too_big = false;
    tr->blen = 0;
    tr->errbuf[0] = 0;
    tr->orig_id = lh_rd16(query);
    memcpy(tr->q, query, len);
    tr->q[0] = tr->q[1] = 0; /* RFC 8484 4.1 */
    size_t padded = lh_edns_pad(tr->q, len, sizeof tr->q, DOH_PAD_BLOCK);
    tr->qlen = padded ? padded : len; /* not a shape we can pad (never ours): as it is */
    t->inflight++;
    s->doh_inflight++;
    uv_timer_stop(&t->idle);
    if (s->doh_inflight > DOH_INFLIGHT_MAX) {
        lh_debug("upstream %s: %u transfers in flight already", s->label, DOH_INFLIGHT_MAX);
        try_fail(tr, LH_TLS_R_OTHER, NULL); /* allowed inside start() */
        return (lh_try *)tr;
    }
    CURL *e = tr->easy;
    char url[DOH_URL_MAX];
    if (s->tls.doh_get) {
        size_t n = (size_t)snprintf(url, sizeof url, "%s%sdns=", h->base_url,
                                    strchr(h->base_url, '?') ? "&" : "?");
        b64url(tr->q, tr->qlen, url + n);
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->hdr_get);
    } else {
        snprintf(url, sizeof url, "%s", h->base_url);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)tr->qlen);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, (char *)tr->q);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->hdr_post);
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CONNECT_TO, h->connect_to);
    curl_easy_setopt(e, CURLOPT_PINNEDPUBLICKEY, h->pin[0] ? h->pin : NULL);
    if (curl_multi_add_handle(t->multi, e) != CURLM_OK) {
        try_fail(tr, LH_TLS_R_OTHER, "cannot start the transfer");
        return (lh_try *)tr;
    }
    tr->active = true; /* libcurl's timer callback runs it on the next loop pass */
    return (lh_try *)tr;
}

bool lh_transport_https_owns(const lh_transport *base, const lh_try *try_)
{
    const doh_transport *t = (const doh_transport *)base;
    uintptr_t a = (uintptr_t)try_, lo = (uintptr_t)t->slab;
    return a >= lo && a < lo + (uintptr_t)t->max_tries * sizeof *t->slab;
}

static void https_cancel(lh_transport *base, lh_try *try_)
{
    (void)base;
    doh_try *tr = (doh_try *)try_;
    if (tr->in_use) try_release(tr); /* an HTTP/2 stream is reset; the connection stays */
}

static const char *https_status_text(int status)
{
    return lh_tls_status_text(status, DOH_STATUS_BASE, true, "DNS over HTTPS failure");
}

static void https_shutdown(lh_transport *base)
{
    doh_transport *t = (doh_transport *)base;
    if (t->shutting_down) return;
    t->shutting_down = true;
    for (unsigned i = 0; i < t->max_tries; i++)
        if (t->slab[i].in_use) try_release(&t->slab[i]);
    if (t->multi) curl_multi_cleanup(t->multi); /* closes the connections and their watches */
    t->multi = NULL;
    while (t->watches)
        watch_close(t->watches);
    if (t->timers_ready) {
        uv_close((uv_handle_t *)&t->timer, NULL);
        uv_close((uv_handle_t *)&t->idle, NULL);
    }
}

static void https_free(lh_transport *base)
{
    doh_transport *t = (doh_transport *)base;
    /* The connection records go first: their servers may be gone already, and a multi handle
     * still here (never shut down) closes its sockets through on_close_socket below. */
    for (doh_conn *c = t->conns, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    t->conns = NULL;
    if (t->multi) curl_multi_cleanup(t->multi);
    for (unsigned i = 0; i < t->max_tries; i++) {
        if (t->slab[i].easy) curl_easy_cleanup(t->slab[i].easy);
        free(t->slab[i].body);
    }
    for (doh_host *h = t->hosts, *next; h; h = next) { /* its server may be gone already */
        next = h->next;
        curl_slist_free_all(h->connect_to);
        free(h);
    }
    if (t->share) curl_share_cleanup(t->share);
    curl_slist_free_all(t->hdr_post);
    curl_slist_free_all(t->hdr_get);
    free(t->ca_file);
    free(t->slab);
    free(t);
    curl_global_cleanup();
}

static const lh_transport_ops https_ops = {
    .name = "dns over https",
    .start = https_start,
    .cancel = https_cancel,
    .strerror = https_status_text,
    .shutdown = https_shutdown,
    .free = https_free,
};

lh_transport *lh_transport_https_new(uv_loop_t *loop, unsigned timeout_ms, unsigned idle_ms,
                                     const char *ca_file, unsigned max_tries, char *err,
                                     size_t errlen)
{
    /* Thread-safe in this libcurl (7.84 and later) and counted: each loop's transport calls it. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "DNS over HTTPS: cannot set up libcurl");
        return NULL;
    }
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    if (!(v->features & CURL_VERSION_HTTP2))
        lh_warn("DNS over HTTPS: this libcurl has no HTTP/2: one query per connection at a time");
    doh_transport *t = calloc(1, sizeof *t);
    if (!t) goto oom;
    t->base.ops = &https_ops;
    t->loop = loop;
    t->timeout_ms = timeout_ms;
    t->idle_ms = idle_ms ? idle_ms : 30000;
    t->max_tries = max_tries ? max_tries : 1;
    if (!(t->slab = calloc(t->max_tries, sizeof *t->slab))) goto oom;
    for (unsigned i = t->max_tries; i-- > 0;) {
        t->slab[i].t = t;
        t->slab[i].free_next = t->free_tries;
        t->free_tries = &t->slab[i];
    }
    if (ca_file) {
        FILE *f = fopen(ca_file, "r");
        if (!f) {
            snprintf(err, errlen, "DNS over HTTPS: cannot read the CA certificates in %s", ca_file);
            goto fail;
        }
        fclose(f);
        if (!(t->ca_file = strdup(ca_file))) goto oom;
    }
    /* TLS sessions shared by every transfer of this loop (resumption on a new connection). */
    if (!(t->share = curl_share_init())) goto oom;
    curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    t->hdr_post = curl_slist_append(NULL, "Content-Type: application/dns-message");
    struct curl_slist *l = t->hdr_post ? curl_slist_append(t->hdr_post, "Accept: "
                                                                        "application/dns-message")
                                       : NULL;
    t->hdr_get = curl_slist_append(NULL, "Accept: application/dns-message");
    if (!l || !t->hdr_get) goto oom;
    return &t->base;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    if (t) {
        if (t->share) curl_share_cleanup(t->share);
        curl_slist_free_all(t->hdr_post);
        curl_slist_free_all(t->hdr_get);
        free(t->ca_file);
        free(t->slab);
        free(t);
    }
    curl_global_cleanup();
    return NULL;
}

const lh_transport_ops *lh_transport_https_ops(void)
{
    return &https_ops;
}
