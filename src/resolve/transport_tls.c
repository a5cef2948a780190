/* transport_tls.c - DNS over TLS (RFC 7858) on the libuv loop, strict profile (RFC 8310):
 * the certificate is verified against the system CA store (or --tls-ca) and the configured
 * authentication name, an optional SPKI pin is checked on top, and any failure fails the try;
 * nothing is ever sent in plaintext instead.
 *
 * OpenSSL runs on memory BIOs: bytes read from the TCP socket are written into the SSL's read
 * BIO, and whatever the SSL puts into its write BIO is handed to uv_write. No thread, no
 * blocking call, no socket owned by OpenSSL.
 *
 * Connections (RFC 7766): each upstream has a pool of at most TLS_CONNS_MAX connections. A try
 * joins the first open or opening connection with room (TLS_PIPELINE_MAX in flight), so one
 * connection carries many queries at once; each gets an ID unique on its connection (the
 * original ID is put back into the answer), and answers are matched by ID in whatever order
 * they come. A connection with nothing in flight is closed after TLS_IDLE_MS; the pool keeps
 * the server's latest TLS session (a TLS 1.3 ticket) to resume with. A connection that fails
 * to open (refused, certificate, pin, handshake, a stalled handshake) fails its tries and
 * holds the upstream back (exponential back-off: tries within it fail at once, so failover to
 * the next server is immediate). A connection that dies after it was up retries its queries
 * once on a fresh one, within each try's original deadline.
 *
 * Queries are padded (EDNS(0) Padding, RFC 7830) to a multiple of 128 bytes (RFC 8467).
 *
 * Re-entrancy: a `done` callback may start, cancel, or shut everything down. Lists are walked
 * by taking their head again after every callback; a connection is freed only from its close
 * callbacks, so it outlives any callback that runs while it is in use. */
#include "loophole/log.h"
#include "loophole/random.h"
#include "loophole/upstream.h"
#include "loophole/wire.h"

#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TLS_CONNS_MAX 4        /* connections per upstream */
#define TLS_PIPELINE_MAX 1024  /* queries in flight on one connection (IDs unique on it) */
#define TLS_IDLE_MS 10000      /* an idle connection is closed after this */
#define TLS_BACKOFF_MIN_MS 250 /* after a failed connection: doubled per failure in a row */
#define TLS_BACKOFF_MAX_MS 30000
#define TLS_QUERY_MAX 1024 /* a framed, padded query: ours are far below (one question) */
#define TLS_PAD_BLOCK 128  /* RFC 8467: pad queries to a multiple of 128 bytes */
#define TLS_STATUS_BASE 2000
#define TLS_WRITE_MAX 16384 /* bytes handed to one uv_write (what the write BIO holds waits) */

typedef struct tls_transport tls_transport;
typedef struct tls_pool tls_pool;
typedef struct tls_conn tls_conn;
typedef struct tls_try tls_try;

struct tls_try {
    tls_pool *pool;
    tls_conn *conn;
    tls_try *conn_prev, *conn_next; /* on its connection */
    tls_try *dl_prev, *dl_next;     /* the transport's deadline list (FIFO: one timeout) */
    tls_try *free_next;
    uint64_t deadline_ms;
    uint64_t answers_at_write; /* its connection's answer count when it was written */
    lh_try_done_cb done;
    void *arg;
    uint16_t orig_id, wire_id;
    bool in_use, written, retried;
    size_t len;                 /* framed: 2 length bytes + the message */
    uint8_t buf[TLS_QUERY_MAX]; /* kept for a retry on another connection */
};

enum conn_state { C_CONNECTING, C_HANDSHAKE, C_READY, C_CLOSING };

struct tls_conn {
    uv_tcp_t tcp;
    uv_timer_t idle;
    uv_connect_t connect_req;
    uv_write_t write_req; /* one write at a time, from wdata; the rest waits in the BIO */
    bool writing;
    tls_pool *pool;
    tls_conn *next;
    SSL *ssl;
    BIO *rbio, *wbio; /* network side: socket bytes in, bytes for the socket out */
    enum conn_state state;
    tls_try *head, *tail;
    unsigned ntries;
    uint64_t answers;
    uint64_t queries;   /* written on it, for the queries-per-connection histogram */
    uint64_t opened_ms; /* when the TCP connect started (a stalled handshake is older) */
    uint64_t opened_ns; /* the same, for the handshake latency */
    bool was_ready;     /* its handshake completed */
    unsigned open_handles;
    int connect_err; /* uv_tcp_connect failed at once: reported once a try has joined */
    size_t rlen;
    uint8_t rbuf[2 + 65535]; /* one framed answer at most, plus the start of the next */
    uint8_t wdata[TLS_WRITE_MAX];
};

struct tls_pool {
    tls_transport *t;
    lh_upstream_server *s;
    tls_pool *next;
    tls_conn *conns;
    unsigned nconns;
    SSL_SESSION *session; /* to resume with */
    unsigned fail_streak;
    uint64_t hold_until_ms;         /* back-off: no new connection before then */
    enum lh_tls_reason hold_reason; /* why: a try failed by the back-off reports it (its EDE) */
    unsigned timeouts_unsaid;       /* timed out since the last log line about it */
    uint64_t timeouts_said_ms;
};

struct tls_transport {
    lh_transport base;
    uv_loop_t *loop;
    unsigned timeout_ms;
    SSL_CTX *ctx;
    tls_pool *pools;
    tls_try *slab, *free_tries;
    unsigned max_tries;
    tls_try *dl_head, *dl_tail;
    uv_timer_t timer;
    bool timer_ready, shutting_down;
    unsigned open_conns;
    lh_random rnd;
    uint8_t readbuf[65536];
};

static void conn_close(tls_conn *c);
static void conn_flush(tls_conn *c);
static void conn_lost(tls_conn *c, const char *detail);
static void on_idle(uv_timer_t *h);
static void pool_assign(tls_pool *p, tls_try *tr);

/* ---- EDNS padding ------------------------------------------------------------------------ */

static size_t skip_name(const uint8_t *m, size_t len, size_t off)
{
    while (off < len) {
        uint8_t l = m[off];
        if (l == 0) return off + 1;
        if ((l & 0xc0) == 0xc0) return off + 2 <= len ? off + 2 : 0;
        if (l & 0xc0) return 0;
        off += 1u + l;
    }
    return 0;
}

size_t lh_edns_pad(uint8_t *m, size_t len, size_t cap, unsigned block)
{
    if (len < LH_DNS_HEADER_LEN || block == 0) return 0;
    size_t off = LH_DNS_HEADER_LEN, opt_rdlen_at = 0;
    unsigned qd = lh_rd16(m + 4), rrs = lh_rd16(m + 6) + lh_rd16(m + 8) + lh_rd16(m + 10);
    for (unsigned i = 0; i < qd; i++) {
        if (!(off = skip_name(m, len, off)) || off + 4 > len) return 0;
        off += 4;
    }
    for (unsigned i = 0; i < rrs; i++) {
        if (!(off = skip_name(m, len, off)) || off + 10 > len) return 0;
        bool opt = lh_rd16(m + off) == 41;
        size_t rdlen = lh_rd16(m + off + 8);
        if (off + 10 + rdlen > len) return 0;
        opt_rdlen_at = opt ? off + 8 : 0;
        off += 10 + rdlen;
    }
    if (off != len) return 0;
    size_t add = 4;               /* the option's code and length */
    if (!opt_rdlen_at) add += 11; /* a new OPT record: root, type, class, TTL, RDLENGTH */
    size_t pad = (block - (len + add) % block) % block;
    if (len + add + pad > cap) return 0;
    uint8_t *p = m + len;
    if (!opt_rdlen_at) {
        static const uint8_t opt[9] = {
            0, 0, 41, LH_UPSTREAM_EDNS_SIZE >> 8, LH_UPSTREAM_EDNS_SIZE & 0xff, 0, 0, 0, 0};
        memcpy(p, opt, sizeof opt);
        opt_rdlen_at = len + 9;
        m[opt_rdlen_at] = m[opt_rdlen_at + 1] = 0;
        p += 11;
        unsigned ar = lh_rd16(m + 10) + 1u;
        m[10] = (uint8_t)(ar >> 8);
        m[11] = (uint8_t)ar;
    }
    unsigned rdlen = lh_rd16(m + opt_rdlen_at) + 4u + (unsigned)pad;
    m[opt_rdlen_at] = (uint8_t)(rdlen >> 8);
    m[opt_rdlen_at + 1] = (uint8_t)rdlen;
    p[0] = 0;
    p[1] = 12; /* Padding */
    p[2] = (uint8_t)(pad >> 8);
    p[3] = (uint8_t)pad;
    memset(p + 4, 0, pad);
    return len + add + pad;
}

/* ---- tries ------------------------------------------------------------------------------- */

static uint64_t now_ms(tls_transport *t)
{
    return uv_now(t->loop);
}

static void conn_unlink_try(tls_try *tr)
{
    tls_conn *c = tr->conn;
    if (!c) return;
    if (tr->conn_prev)
        tr->conn_prev->conn_next = tr->conn_next;
    else
        c->head = tr->conn_next;
    if (tr->conn_next)
        tr->conn_next->conn_prev = tr->conn_prev;
    else
        c->tail = tr->conn_prev;
    tr->conn = NULL;
    tr->conn_prev = tr->conn_next = NULL;
    c->ntries--;
    if (!c->ntries && c->state == C_READY && !c->pool->t->shutting_down)
        uv_timer_start(&c->idle, on_idle, TLS_IDLE_MS, 0);
}

static void try_release(tls_transport *t, tls_try *tr)
{
    conn_unlink_try(tr);
    if (tr->dl_prev)
        tr->dl_prev->dl_next = tr->dl_next;
    else
        t->dl_head = tr->dl_next;
    if (tr->dl_next)
        tr->dl_next->dl_prev = tr->dl_prev;
    else
        t->dl_tail = tr->dl_prev;
    tr->dl_prev = tr->dl_next = NULL;
    tr->in_use = false;
    tr->done = NULL;
    tr->free_next = t->free_tries;
    t->free_tries = tr;
}

/* Ends a try with a failure counted as `counted` and reported as `why`: released, then
 * reported (the callback may do anything). */
static void try_fail_as(tls_try *tr, enum lh_tls_reason counted, enum lh_tls_reason why)
{
    tls_transport *t = tr->pool->t;
    lh_try_done_cb done = tr->done;
    void *arg = tr->arg;
    tr->pool->s->tls_stats.failures[counted]++;
    try_release(t, tr);
    if (done) done(arg, lh_tls_reason_status(TLS_STATUS_BASE, why), NULL, 0);
}

static void try_fail(tls_try *tr, enum lh_tls_reason why)
{
    try_fail_as(tr, why, why);
}

static void on_deadline(uv_timer_t *h)
{
    tls_transport *t = h->data;
    uint64_t now = now_ms(t);
    tls_try *tr;
    while (!t->shutting_down && (tr = t->dl_head) && tr->deadline_ms <= now) {
        tls_conn *c = tr->conn;
        /* Said at most once a second per upstream, with the count since the last time. */
        tls_pool *tp = tr->pool;
        tp->timeouts_unsaid++;
        if (!tp->timeouts_said_ms || now - tp->timeouts_said_ms >= 1000) {
            lh_warn("upstream %s: %u queries timed out (no answer within %u ms)", tp->s->label,
                    tp->timeouts_unsaid, t->timeout_ms);
            tp->timeouts_unsaid = 0;
            tp->timeouts_said_ms = now;
        }
        /* Sent on an open connection and nothing at all answered on it since: the connection
         * is taken for dead (a server or middlebox that went silent without closing it), or
         * every later query would join it and time out too for as long as queries keep it
         * from going idle. Its other queries are retried on a fresh one. */
        bool silent = c && c->state == C_READY && tr->written && c->answers == tr->answers_at_write;
        try_fail(tr, LH_TLS_R_TIMEOUT);
        if (silent && c->state == C_READY && !t->shutting_down) {
            lh_info("upstream %s: no answer on its TLS connection for %u ms; opening a new one",
                    c->pool->s->label, t->timeout_ms);
            conn_lost(c, "silent");
            continue;
        }
        /* A connection that has not finished its handshake within a whole timeout has stalled:
         * drop it (its other tries fail as timed out) and hold the upstream back like any failed
         * connection. Only a whole timeout: a retried query keeps its first deadline and may
         * run out moments after it joined a fresh connection, which has not stalled. */
        if (c && c->state != C_READY && c->state != C_CLOSING &&
            now - c->opened_ms >= t->timeout_ms) {
            lh_warn("upstream %s (%s): connection or TLS handshake stalled; queries to it fail "
                    "(never sent in plaintext)",
                    c->pool->s->label, c->pool->s->tls.auth_name);
            tls_pool *p = c->pool;
            p->fail_streak++;
            uint64_t hold = TLS_BACKOFF_MIN_MS << (p->fail_streak < 8 ? p->fail_streak - 1 : 7);
            p->hold_until_ms = now_ms(t) + (hold < TLS_BACKOFF_MAX_MS ? hold : TLS_BACKOFF_MAX_MS);
            p->hold_reason = LH_TLS_R_TIMEOUT;
            conn_close(c);
            while (c->head && !t->shutting_down)
                try_fail(c->head, LH_TLS_R_TIMEOUT);
        }
    }
    if (!t->shutting_down && t->dl_head)
        uv_timer_start(&t->timer, on_deadline, t->dl_head->deadline_ms - now + 1, 0);
}

/* ---- connections ------------------------------------------------------------------------- */

static void conn_fail(tls_conn *c, enum lh_tls_reason why, const char *detail);
static int flush_raw(tls_conn *c);

/* The write is done: what OpenSSL produced meanwhile goes next. After uv_close, libuv ends a
 * pending write with UV_ECANCELED before the close callbacks, so `c` is still there. */
static void on_written(uv_write_t *req, int status)
{
    tls_conn *c = req->data;
    c->writing = false;
    if (status < 0 || c->state == C_CLOSING) return; /* shows up as a read error or a timeout */
    conn_flush(c);
}

/* Sends what OpenSSL has put into the write BIO through the connection's one write request,
 * without allocating: when a write is in flight, the bytes wait in the BIO for on_written.
 * -1 when it cannot send. */
static int flush_raw(tls_conn *c)
{
    if (c->writing || BIO_ctrl_pending(c->wbio) == 0) return 0;
    int got = BIO_read(c->wbio, c->wdata, (int)sizeof c->wdata);
    if (got <= 0) return -1;
    uv_buf_t b = uv_buf_init((char *)c->wdata, (unsigned)got);
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) return -1;
    c->writing = true;
    return 0;
}

/* A connection that cannot send is given up like one the server closed. */
static void conn_flush(tls_conn *c)
{
    if (c->state == C_CLOSING || c->state == C_CONNECTING || flush_raw(c) == 0) return;
    if (c->state == C_READY)
        conn_lost(c, "cannot write");
    else
        conn_fail(c, LH_TLS_R_HANDSHAKE, "cannot write");
}

static void conn_write_try(tls_conn *c, tls_try *tr)
{
    ERR_clear_error();
    if (SSL_write(c->ssl, tr->buf, (int)tr->len) == (int)tr->len) {
        c->queries++;
        tr->written = true;
        tr->answers_at_write = c->answers;
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    tls_conn *c = h->data;
    if (--c->open_handles) return;
    c->pool->t->open_conns--;
    for (tls_try *tr = c->head; tr; tr = tr->conn_next) /* none left by design; never dangling */
        tr->conn = NULL;
    SSL_free(c->ssl); /* and its BIOs */
    free(c);
}

static void conn_close(tls_conn *c)
{
    if (c->state == C_CLOSING) return;
    bool was_ready = c->state == C_READY;
    tls_pool *p = c->pool;
    tls_conn **pp = &p->conns;
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = c->next;
        p->nconns--;
    }
    c->state = C_CLOSING;
    if (c->was_ready) p->s->tls_stats.conn_queries[lh_conn_queries_bucket(c->queries)]++;
    if (c->was_ready) p->s->tls_stats.conn_queries_sum += c->queries;
    uv_timer_stop(&c->idle);
    if (was_ready) { /* a close_notify, on a best effort (libuv writes at once when it can) */
        ERR_clear_error();
        SSL_shutdown(c->ssl);
        flush_raw(c);
    }
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->idle, on_handle_closed);
}

/* Nothing in flight for TLS_IDLE_MS: closed (RFC 7766 6.2.3: clients close idle ones). */
static void on_idle(uv_timer_t *h)
{
    tls_conn *c = h->data;
    if (!c->ntries) conn_close(c);
}

/* A connection that could not be set up: its tries fail with `why`, the upstream is held back,
 * and a log line says why, once per connection. */
static void conn_fail(tls_conn *c, enum lh_tls_reason why, const char *detail)
{
    tls_pool *p = c->pool;
    tls_transport *t = p->t;
    p->fail_streak++;
    uint64_t hold = TLS_BACKOFF_MIN_MS << (p->fail_streak < 8 ? p->fail_streak - 1 : 7);
    if (hold > TLS_BACKOFF_MAX_MS) hold = TLS_BACKOFF_MAX_MS;
    p->hold_until_ms = now_ms(t) + hold;
    p->hold_reason = why;
    lh_warn("upstream %s (%s): %s%s%s; its queries fail (SERVFAIL unless another upstream "
            "answers), never sent in plaintext; next connection in %llu ms",
            p->s->label, p->s->tls.auth_name, lh_tls_reason_text(why, false), detail ? ": " : "",
            detail ? detail : "", (unsigned long long)hold);
    conn_close(c); /* first: out of the pool, so that no try joins it from a callback */
    while (c->head && !t->shutting_down)
        try_fail(c->head, why);
}

/* A connection that was up is gone (EOF, reset, TLS error): its queries are retried once on
 * another connection; a query already retried fails. */
static void conn_lost(tls_conn *c, const char *detail)
{
    tls_pool *p = c->pool;
    tls_transport *t = p->t;
    if (c->ntries)
        lh_info("upstream %s: connection closed with %u queries in flight (%s); retrying them",
                p->s->label, c->ntries, detail);
    conn_close(c); /* first: the retries must go to another connection */
    tls_try *tr;
    unsigned failed = 0;
    while ((tr = c->head) && !t->shutting_down) {
        conn_unlink_try(tr);
        if (tr->retried || tr->deadline_ms <= now_ms(t)) {
            if (!failed++)
                lh_warn("upstream %s: connection reset with queries in flight that were "
                        "already retried or are out of time (%s); they fail",
                        p->s->label, detail);
            try_fail(tr, LH_TLS_R_RESET);
        } else {
            tr->retried = true;
            p->s->tls_stats.retried++;
            pool_assign(p, tr);
        }
    }
}

static bool pin_matches(tls_conn *c)
{
    X509 *cert = SSL_get0_peer_certificate(c->ssl);
    if (!cert) return false;
    X509_PUBKEY *pk = X509_get_X509_PUBKEY(cert);
    unsigned char *der = NULL;
    int n = pk ? i2d_X509_PUBKEY(pk, &der) : -1;
    if (n <= 0) return false;
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256(der, (size_t)n, md);
    OPENSSL_free(der);
    return memcmp(md, c->pool->s->tls.pin, sizeof md) == 0;
}

static void conn_handshake(tls_conn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    conn_flush(c);
    if (c->state == C_CLOSING) return;
    lh_upstream_server *s = c->pool->s;
    if (r != 1) {
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
        long v = SSL_get_verify_result(c->ssl);
        if (v != X509_V_OK) {
            conn_fail(c, LH_TLS_R_CERT, X509_verify_cert_error_string(v));
        } else {
            char buf[256];
            unsigned long code = ERR_peek_last_error();
            ERR_error_string_n(code, buf, sizeof buf);
            conn_fail(c, LH_TLS_R_HANDSHAKE, code ? buf : "the server closed the connection");
        }
        return;
    }
    if (s->tls.has_pin && !pin_matches(c)) {
        conn_fail(c, LH_TLS_R_PIN, NULL);
        return;
    }
    uint64_t took = uv_hrtime() - c->opened_ns;
    s->tls_stats.handshakes++;
    s->tls_stats.handshake_latency[lh_latency_bucket(took)]++;
    s->tls_stats.handshake_latency_sum_ns += took;
    if (SSL_session_reused(c->ssl)) s->tls_stats.resumed++;
    c->pool->fail_streak = 0;
    c->pool->hold_until_ms = 0;
    c->state = C_READY;
    c->was_ready = true;
    lh_debug("upstream %s: TLS %s up%s", s->label, SSL_get_version(c->ssl),
             SSL_session_reused(c->ssl) ? " (resumed)" : "");
    for (tls_try *tr = c->head; tr; tr = tr->conn_next)
        if (!tr->written) conn_write_try(c, tr);
    conn_flush(c);
    if (!c->ntries && c->state == C_READY) uv_timer_start(&c->idle, on_idle, TLS_IDLE_MS, 0);
}

/* Does the answer carry the try's question (RFC 7766 section 7: QNAME without case, QTYPE,
 * QCLASS)? An answer without a question is matched by ID alone (upstream.c then judges it).
 * The ID alone is not enough: a try that timed out or was cancelled leaves its ID free on the
 * connection, a new try may draw it, and the old query's late answer must not be taken for
 * the new one's. */
static bool answer_matches(const tls_try *tr, const uint8_t *msg, size_t len)
{
    const uint8_t *q = tr->buf + 2;
    size_t qlen = tr->len - 2, qend;
    if (lh_rd16(msg + 4) == 0) return true;
    if (lh_rd16(q + 4) != 1 || lh_rd16(msg + 4) != 1) return lh_rd16(q + 4) == lh_rd16(msg + 4);
    if (!(qend = skip_name(q, qlen, LH_DNS_HEADER_LEN)) || qend + 4 > qlen) return true;
    qend += 4;
    if (len < qend) return false;
    for (size_t i = LH_DNS_HEADER_LEN; i < qend - 4; i++) {
        uint8_t a = q[i], b = msg[i];
        if (a != b && !((a | 0x20) == (b | 0x20) && (a | 0x20) >= 'a' && (a | 0x20) <= 'z'))
            return false;
    }
    return memcmp(q + qend - 4, msg + qend - 4, 4) == 0;
}

/* One framed answer: the try with its ID and question gets it, the original ID put back. An
 * answer nobody waits for (its try timed out or was cancelled) is dropped. */
static void conn_answer(tls_conn *c, uint8_t *msg, size_t len)
{
    if (len < LH_DNS_HEADER_LEN) return;
    uint16_t id = lh_rd16(msg);
    tls_try *tr = c->head;
    while (tr && !(tr->written && tr->wire_id == id))
        tr = tr->conn_next;
    if (!tr) return;
    if (!answer_matches(tr, msg, len)) {
        lh_debug("upstream %s: an answer with a pending query's ID but another question "
                 "(a late answer to an earlier query): dropped",
                 c->pool->s->label);
        return;
    }
    c->answers++;
    msg[0] = (uint8_t)(tr->orig_id >> 8);
    msg[1] = (uint8_t)tr->orig_id;
    lh_try_done_cb done = tr->done;
    void *arg = tr->arg;
    try_release(c->pool->t, tr);
    if (done) done(arg, 0, msg, len);
}

static void conn_read_records(tls_conn *c)
{
    for (;;) {
        ERR_clear_error();
        int n = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(sizeof c->rbuf - c->rlen));
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            conn_flush(c); /* a key update or the like may want to answer */
            if (e == SSL_ERROR_WANT_READ || c->state == C_CLOSING) return;
            conn_lost(c, e == SSL_ERROR_ZERO_RETURN ? "close_notify" : "TLS error");
            return;
        }
        c->rlen += (size_t)n;
        size_t off = 0;
        while (c->rlen - off >= 2) {
            size_t flen = lh_rd16(c->rbuf + off);
            if (c->rlen - off - 2 < flen) break;
            conn_answer(c, c->rbuf + off + 2, flen);
            if (c->state == C_CLOSING) return; /* a callback shut down */
            off += 2 + flen;
        }
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    tls_conn *c = h->data;
    *buf = uv_buf_init((char *)c->pool->t->readbuf, sizeof c->pool->t->readbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    tls_conn *c = st->data;
    if (c->state == C_CLOSING || nread == 0) return;
    if (nread < 0) {
        if (c->state == C_READY)
            conn_lost(c, uv_strerror((int)nread));
        else
            conn_fail(c, LH_TLS_R_HANDSHAKE,
                      nread == UV_EOF ? "the server closed the connection"
                                      : uv_strerror((int)nread));
        return;
    }
    BIO_write(c->rbio, buf->base, (int)nread);
    if (c->state == C_HANDSHAKE) conn_handshake(c);
    if (c->state == C_READY) conn_read_records(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    tls_conn *c = req->data;
    if (c->state == C_CLOSING) return;
    if (status < 0) {
        conn_fail(c, LH_TLS_R_CONNECT, uv_strerror(status));
        return;
    }
    c->state = C_HANDSHAKE;
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_fail(c, LH_TLS_R_CONNECT, "cannot read the socket");
        return;
    }
    conn_handshake(c);
}

static tls_conn *conn_open(tls_pool *p)
{
    tls_transport *t = p->t;
    lh_upstream_server *s = p->s;
    tls_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->pool = p;
    c->ssl = SSL_new(t->ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    /* An IP address as the authentication name is checked against the certificate's IP
     * address SANs, and sent as no SNI (RFC 6066 section 3: literal addresses are not). */
    bool ip_name = lh_auth_name_is_ip(s->tls.auth_name);
    bool named = c->ssl && (ip_name ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl),
                                                                    s->tls.auth_name) == 1
                                    : SSL_set_tlsext_host_name(c->ssl, s->tls.auth_name) &&
                                          SSL_set1_host(c->ssl, s->tls.auth_name));
    if (!c->ssl || !c->rbio || !c->wbio || !named) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        SSL_free(c->ssl);
        free(c);
        return NULL;
    }
    BIO_set_mem_eof_return(c->rbio, -1); /* empty: "want more", not end of stream */
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    SSL_set_app_data(c->ssl, c);
    if (p->session) SSL_set_session(c->ssl, p->session);
    SSL_set_connect_state(c->ssl);
    uv_tcp_init(t->loop, &c->tcp);
    uv_timer_init(t->loop, &c->idle);
    c->tcp.data = c->idle.data = c->connect_req.data = c->write_req.data = c;
    c->opened_ms = now_ms(t);
    c->opened_ns = uv_hrtime();
    c->open_handles = 2;
    t->open_conns++;
    c->next = p->conns;
    p->conns = c;
    p->nconns++;
    s->tls_stats.connections++;
    c->state = C_CONNECTING;
    int r = uv_tcp_connect(&c->connect_req, &c->tcp, &s->addr.sa, on_connect);
    if (r != 0) c->connect_err = r;
    return c;
}

/* Puts a try on a connection of its upstream: the first with room, else a new one. */
static void pool_assign(tls_pool *p, tls_try *tr)
{
    tls_transport *t = p->t;
    tls_conn *c = p->conns;
    while (c && c->ntries >= TLS_PIPELINE_MAX)
        c = c->next;
    if (!c) {
        if (p->nconns >= TLS_CONNS_MAX) {
            try_fail(tr, LH_TLS_R_OTHER);
            return;
        }
        if (p->hold_until_ms > now_ms(t)) {
            /* Counted as back-off, reported as the failure that started it: a client gets the
             * same EDE (certificate: 23, refused: 22) whether its query came before or after. */
            try_fail_as(tr, LH_TLS_R_BACKOFF, p->hold_reason);
            return;
        }
        if (!(c = conn_open(p))) {
            try_fail(tr, LH_TLS_R_OTHER);
            return;
        }
    } else if (c->state == C_READY) {
        p->s->tls_stats.reused++;
        uv_timer_stop(&c->idle);
    }
    /* An ID unique on this connection, so that answers can come in any order. */
    for (;;) {
        tr->wire_id = (uint16_t)lh_random_u64(&t->rnd);
        tls_try *o = c->head;
        while (o && o->wire_id != tr->wire_id)
            o = o->conn_next;
        if (!o) break;
    }
    tr->buf[2] = (uint8_t)(tr->wire_id >> 8);
    tr->buf[3] = (uint8_t)tr->wire_id;
    tr->written = false;
    tr->conn = c;
    tr->conn_prev = c->tail;
    if (c->tail)
        c->tail->conn_next = tr;
    else
        c->head = tr;
    c->tail = tr;
    c->ntries++;
    if (c->connect_err) {
        int e = c->connect_err;
        c->connect_err = 0;
        conn_fail(c, LH_TLS_R_CONNECT, uv_strerror(e));
        return;
    }
    if (c->state == C_READY) {
        conn_write_try(c, tr);
        conn_flush(c);
    }
}

/* ---- the transport ----------------------------------------------------------------------- */

static tls_pool *pool_of(tls_transport *t, lh_upstream_server *s)
{
    if (s->tls_pool) return s->tls_pool;
    tls_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->t = t;
    p->s = s;
    p->next = t->pools;
    t->pools = p;
    s->tls_pool = p;
    return p;
}

static lh_try *tls_start(lh_transport *base, lh_upstream_server *s, const uint8_t *query,
                         size_t len, lh_try_done_cb done, void *arg)
{
    tls_transport *t = (tls_transport *)base;
    if (t->shutting_down || !s->tls.on || len < LH_DNS_HEADER_LEN) return NULL;
    tls_pool *p = pool_of(t, s);
    tls_try *tr = t->free_tries;
    if (!p || !tr || len > TLS_QUERY_MAX - 2) return NULL;
    t->free_tries = tr->free_next;
    memset(tr, 0, offsetof(tls_try, buf));
    tr->in_use = true;
    tr->pool = p;
    tr->done = done;
    tr->arg = arg;
    tr->orig_id = lh_rd16(query);
    memcpy(tr->buf + 2, query, len);
    size_t padded = lh_edns_pad(tr->buf + 2, len, TLS_QUERY_MAX - 2, TLS_PAD_BLOCK);
    if (!padded) padded = len; /* not a shape we can pad (never ours): sent as it is */
    tr->buf[0] = (uint8_t)(padded >> 8);
    tr->buf[1] = (uint8_t)padded;
    tr->len = padded + 2;
    tr->deadline_ms = now_ms(t) + t->timeout_ms;
    tr->dl_prev = t->dl_tail;
    if (t->dl_tail)
        t->dl_tail->dl_next = tr;
    else
        t->dl_head = tr;
    t->dl_tail = tr;
    if (!t->timer_ready) {
        uv_timer_init(t->loop, &t->timer);
        t->timer.data = t;
        t->timer_ready = true;
    }
    if (!uv_is_active((uv_handle_t *)&t->timer))
        uv_timer_start(&t->timer, on_deadline, t->timeout_ms + 1, 0);
    pool_assign(p, tr); /* may fail the try at once: allowed inside start() */
    return (lh_try *)tr;
}

bool lh_transport_tls_owns(const lh_transport *base, const lh_try *try_)
{
    const tls_transport *t = (const tls_transport *)base;
    uintptr_t a = (uintptr_t)try_, lo = (uintptr_t)t->slab;
    return a >= lo && a < lo + (uintptr_t)t->max_tries * sizeof *t->slab;
}

static void tls_cancel(lh_transport *base, lh_try *try_)
{
    tls_transport *t = (tls_transport *)base;
    tls_try *tr = (tls_try *)try_;
    if (tr->in_use) try_release(t, tr); /* an answer that still comes is dropped (no ID) */
}

static const char *tls_status_text(int status)
{
    return lh_tls_status_text(status, TLS_STATUS_BASE, false, "DNS over TLS failure");
}

/* RFC 8914: 22 when the server could not be reached, 23 when talking to it went wrong. */
static int tls_ede(int status)
{
    return lh_tls_reason_ede((enum lh_tls_reason)(-status - TLS_STATUS_BASE));
}

static void tls_shutdown(lh_transport *base)
{
    tls_transport *t = (tls_transport *)base;
    if (t->shutting_down) return;
    t->shutting_down = true;
    while (t->dl_head) /* every try in use is on it: released without callbacks */
        try_release(t, t->dl_head);
    for (tls_pool *p = t->pools; p; p = p->next)
        while (p->conns)
            conn_close(p->conns);
    if (t->timer_ready) uv_close((uv_handle_t *)&t->timer, NULL);
}

static void tls_free(lh_transport *base)
{
    tls_transport *t = (tls_transport *)base;
    for (tls_pool *p = t->pools, *next; p; p = next) {
        next = p->next;
        if (p->session) SSL_SESSION_free(p->session);
        free(p);
    }
    SSL_CTX_free(t->ctx);
    free(t->slab);
    free(t);
}

static const lh_transport_ops tls_ops = {
    .name = "dns over tls",
    .start = tls_start,
    .cancel = tls_cancel,
    .strerror = tls_status_text,
    .shutdown = tls_shutdown,
    .free = tls_free,
    .ede = tls_ede,
};

/* A new session (TLS 1.3: a ticket after the handshake) replaces the upstream's last one. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    tls_conn *c = SSL_get_app_data(ssl);
    if (!c) return 0;
    if (c->pool->session) SSL_SESSION_free(c->pool->session);
    c->pool->session = sess;
    return 1; /* we keep the reference */
}

lh_transport *lh_transport_tls_new(uv_loop_t *loop, unsigned timeout_ms, const char *ca_file,
                                   unsigned max_tries, char *err, size_t errlen)
{
    tls_transport *t = calloc(1, sizeof *t);
    if (!t || !(t->slab = calloc(max_tries ? max_tries : 1, sizeof *t->slab))) {
        free(t);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->base.ops = &tls_ops;
    t->loop = loop;
    t->timeout_ms = timeout_ms;
    t->max_tries = max_tries ? max_tries : 1;
    for (unsigned i = t->max_tries; i-- > 0;) {
        t->slab[i].free_next = t->free_tries;
        t->free_tries = &t->slab[i];
    }
    lh_random_init(&t->rnd);
    t->ctx = SSL_CTX_new(TLS_client_method());
    if (!t->ctx) goto tls_err;
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION); /* RFC 8310: TLS 1.2 or later */
    /* A TLS 1.2 server asking to renegotiate gets an alert: nothing here needs it, and it is
     * a handshake in the middle of a pipelined stream that the state machine does not expect. */
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    int ok = ca_file ? SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(t->ctx);
    if (ok != 1) {
        snprintf(err, errlen, "DNS over TLS: cannot load the CA certificates from %s",
                 ca_file ? ca_file : "the system store");
        goto fail;
    }
    SSL_CTX_set_session_cache_mode(t->ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(t->ctx, on_new_session);
    return &t->base;
tls_err:
    snprintf(err, errlen, "DNS over TLS: cannot set up OpenSSL");
fail:
    SSL_CTX_free(t->ctx);
    free(t->slab);
    free(t);
    return NULL;
}

const lh_transport_ops *lh_transport_tls_ops(void)
{
    return &tls_ops;
}
