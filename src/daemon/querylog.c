/* querylog.c - see querylog.h. One line per answered query:
 *   {"time":"2026-11-29T03:10:00.123Z","client":"127.0.0.1","name":"ads.example","type":"A",
 *    "outcome":"blocked","list":"/etc/loophole/ads.txt","rule":"ads.example","rcode":"NOERROR",
 *    "latency_us":14}
 * ("upstream" and "transport" for forwarded answers). */
#include "loophole/querylog.h"
#include "loophole/dnssec.h"
#include "loophole/log.h"
#include "loophole/nameset.h"
#include "loophole/sbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <ldns/ldns.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define QLOG_BUF (64 * 1024) /* each of the two buffers */
#define QLOG_LINE_MAX 1536   /* a name of 255 bytes, escaped, fits */
#define QLOG_FLUSH_MS 1000   /* a quiet log still reaches the disk within a second */

struct lh_qlog {
    uv_loop_t *loop;
    char *path; /* NULL: standard output */
    int fd;
    enum lh_qlog_clients clients;
    uint64_t salt;
    char buf[2][QLOG_BUF];
    size_t used[2];
    int cur;        /* the buffer being filled; the other one may be being written */
    bool writing;   /* a uv_fs_write is in flight for buf[!cur] */
    size_t written; /* of buf[!cur] so far */
    bool reopen_pending, closing;
    int open_handles; /* the flush timer */
    uv_fs_t req;
    uv_timer_t timer;
    uint64_t dropped;
    time_t stamp_sec;
    char stamp[24]; /* "2026-11-29T03:10:00" of stamp_sec */
};

static int open_file(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

static void start_write(lh_qlog *l);

static void maybe_free(lh_qlog *l)
{
    if (!l->closing || l->writing || l->open_handles) return;
    if (l->path && l->fd >= 0) close(l->fd);
    free(l->path);
    free(l);
}

static void on_written(uv_fs_t *req)
{
    lh_qlog *l = req->data;
    int w = !l->cur;
    ssize_t r = req->result;
    uv_fs_req_cleanup(req);
    if (r < 0) {
        lh_err("query log: write failed: %s; %zu bytes lost", uv_strerror((int)r),
               l->used[w] - l->written);
    } else if (l->written + (size_t)r < l->used[w]) { /* a short write: the rest */
        l->written += (size_t)r;
        uv_buf_t b = uv_buf_init(l->buf[w] + l->written, (unsigned)(l->used[w] - l->written));
        if (uv_fs_write(l->loop, &l->req, l->fd, &b, 1, -1, on_written) == 0) return;
    }
    l->used[w] = 0;
    l->writing = false;
    if (l->reopen_pending) lh_qlog_reopen(l);
    if (l->closing && l->used[l->cur]) start_write(l);
    maybe_free(l);
}

/* Hands the filled buffer to the thread pool and starts filling the other. */
static void start_write(lh_qlog *l)
{
    if (l->writing || !l->used[l->cur]) return;
    int w = l->cur;
    l->cur = !w;
    l->written = 0;
    l->req.data = l;
    uv_buf_t b = uv_buf_init(l->buf[w], (unsigned)l->used[w]);
    if (uv_fs_write(l->loop, &l->req, l->fd, &b, 1, -1, on_written) != 0) {
        l->dropped++;
        l->used[w] = 0;
        return;
    }
    l->writing = true;
}

static void on_timer(uv_timer_t *t)
{
    start_write(t->data);
}

static void on_timer_closed(uv_handle_t *h)
{
    lh_qlog *l = h->data;
    l->open_handles--;
    maybe_free(l);
}

lh_qlog *lh_qlog_open(uv_loop_t *loop, const char *path, enum lh_qlog_clients clients, char *err,
                      size_t errlen)
{
    lh_qlog *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory for the query log");
        return NULL;
    }
    l->loop = loop;
    l->clients = clients;
    if (getrandom(&l->salt, sizeof l->salt, 0) != sizeof l->salt) l->salt = uv_hrtime();
    if (!strcmp(path, "stdout")) {
        l->fd = STDOUT_FILENO;
    } else {
        l->path = strdup(path);
        l->fd = l->path ? open_file(path) : -1;
        if (l->fd < 0) {
            snprintf(err, errlen, "query-log: cannot open %s: %s", path, strerror(errno));
            free(l->path);
            free(l);
            return NULL;
        }
    }
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    l->open_handles = 1;
    uv_timer_start(&l->timer, on_timer, QLOG_FLUSH_MS, QLOG_FLUSH_MS);
    uv_unref((uv_handle_t *)&l->timer);
    return l;
}

void lh_qlog_reopen(lh_qlog *l)
{
    if (!l->path) return;
    if (l->writing) { /* after the write in flight, which still goes to the old file */
        l->reopen_pending = true;
        return;
    }
    l->reopen_pending = false;
    int fd = open_file(l->path);
    if (fd < 0) {
        lh_err("query log: cannot reopen %s: %s; still writing to the old file", l->path,
               strerror(errno));
        return;
    }
    close(l->fd);
    l->fd = fd;
    lh_info("query log: reopened %s", l->path);
}

void lh_qlog_close(lh_qlog *l)
{
    if (!l || l->closing) return;
    l->closing = true;
    start_write(l);
    uv_close((uv_handle_t *)&l->timer, on_timer_closed);
}

uint64_t lh_qlog_dropped(const lh_qlog *l)
{
    return l->dropped;
}

static void put_time(lh_qlog *l, lh_sbuf *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != l->stamp_sec) { /* gmtime once a second, not once a line */
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(l->stamp, sizeof l->stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        l->stamp_sec = ts.tv_sec;
    }
    lh_sbuf_printf(b, "{\"time\":\"%s.%03ldZ\"", l->stamp, ts.tv_nsec / 1000000);
}

static void put_client(lh_qlog *l, lh_sbuf *b, const lh_sockaddr *a)
{
    if (l->clients == LH_QLOG_CLIENT_NONE || !a || !a->sa.sa_family) return;
    char text[INET6_ADDRSTRLEN];
    const uint8_t *bytes;
    size_t n = lh_addr_bytes(&a->sa, &bytes);
    if (l->clients == LH_QLOG_CLIENT_HASH) {
        uint64_t h = lh_hash_bytes(l->salt, bytes, n);
        lh_sbuf_printf(b, ",\"client\":\"%016llx\"",
                       (unsigned long long)(h * 0x9e3779b97f4a7c15ull));
        return;
    }
    inet_ntop(a->sa.sa_family, bytes, text, sizeof text);
    lh_sbuf_printf(b, ",\"client\":\"%s\"", text);
}

void lh_qlog_write(lh_qlog *l, const lh_query_end *q)
{
    char line[QLOG_LINE_MAX], name[LH_NAME_MAX * 4 + 1];
    lh_sbuf b;
    lh_sbuf_init(&b, line, sizeof line);
    put_time(l, &b);
    put_client(l, &b, q->client);
    bool has_question = q->outcome != LH_OUTCOME_ERROR || q->msg->qname.len;
    if (has_question) {
        lh_name_to_text(q->msg->qname.wire, name, sizeof name);
        lh_sbuf_printf(&b, ",\"name\":");
        lh_sbuf_json_str(&b, name);
        const ldns_rr_descriptor *d = ldns_rr_descript(q->msg->qtype);
        if (d && d->_name)
            lh_sbuf_printf(&b, ",\"type\":\"%s\"", d->_name);
        else
            lh_sbuf_printf(&b, ",\"type\":\"TYPE%u\"", q->msg->qtype);
    }
    lh_sbuf_printf(&b, ",\"outcome\":\"%s\"", lh_outcome_names[q->outcome]);
    if (q->list_path) {
        lh_sbuf_printf(&b, ",\"list\":");
        lh_sbuf_json_str(&b, q->list_path);
    }
    const lh_name *mn = q->match_name ? q->match_name : &q->msg->qname;
    if (q->match_label >= 0 && has_question && q->match_label < (int)mn->nlabels) {
        lh_name_to_text(mn->wire + mn->label_off[q->match_label], name, sizeof name);
        lh_sbuf_printf(&b, ",\"rule\":");
        lh_sbuf_json_str(&b, name);
    }
    if (q->upstream) lh_sbuf_printf(&b, ",\"upstream\":\"%s\"", q->upstream);
    if (q->transport) lh_sbuf_printf(&b, ",\"transport\":\"%s\"", q->transport);
    if (q->dnssec && q->dnssec < LH_DNSSEC_V_COUNT) {
        lh_sbuf_printf(&b, ",\"dnssec\":\"%s\"", lh_dnssec_v_names[q->dnssec]);
        if (q->dnssec == LH_DNSSEC_V_BOGUS || q->dnssec == LH_DNSSEC_V_INDETERMINATE)
            lh_sbuf_printf(&b, ",\"dnssec_reason\":\"%s\"",
                           lh_dnssec_reason_key((enum lh_dnssec_reason)q->dnssec_reason));
    }
    if (q->answer) {
        const ldns_lookup_table *rc = ldns_lookup_by_id(ldns_rcodes, q->answer[3] & 0xf);
        lh_sbuf_printf(&b, ",\"rcode\":\"%s\"", rc && rc->name ? rc->name : "?");
    }
    if (q->start_ns)
        lh_sbuf_printf(&b, ",\"latency_us\":%llu",
                       (unsigned long long)((uv_hrtime() - q->start_ns) / 1000));
    lh_sbuf_printf(&b, "}\n");
    if (b.overflow || l->closing) {
        l->dropped++;
        return;
    }
    if (l->used[l->cur] + b.len > QLOG_BUF) start_write(l);
    if (l->used[l->cur] + b.len > QLOG_BUF) { /* both buffers busy: never wait, drop */
        l->dropped++;
        return;
    }
    memcpy(l->buf[l->cur] + l->used[l->cur], line, b.len);
    l->used[l->cur] += b.len;
}
