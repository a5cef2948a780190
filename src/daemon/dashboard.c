/* dashboard.c - see dashboard.h. Nothing here is on the query path: the page polls
 * /api/state every two seconds and the answers are rendered on the main loop from the same
 * snapshots as `loophole stats`. Slow work leaves the loop: `why` reads the list files on the
 * thread pool, the leak check runs as a child process (`loophole leak-check --json` with the
 * daemon's own options: the seam that keeps the dashboard independent of that module's
 * internals); their HTTP requests are suspended until the answer is there. */
#include "loophole/dashboard.h"
#include "loophole/log.h"
#include "loophole/report.h"
#include "loophole/runtime.h"
#include "loophole/admin.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DASH_BUF (1024 * 1024)
#define DASH_CONNECTIONS 32
#define DASH_TIMEOUT_S 30
#define DASH_BODY_MAX 2048
#define DASH_HISTORY 360     /* samples: one hour */
#define DASH_SAMPLE_MS 10000 /* one sample every 10 s */
#define DASH_LEAK_OUT (256 * 1024)
#define DASH_LEAK_TIMEOUT_MS 30000 /* the check bounds itself to ~7 s */
#define DASH_HOSTS 3

/* The six series of the chart, from the outcomes (refused and error answers are not charted). */
enum { H_LOCAL, H_BLOCKED, H_CACHED, H_FORWARDED, H_FAILED, H_REBIND, H_SERIES };
static const char *const series_names[H_SERIES] = {"local",     "blocked", "cached",
                                                   "forwarded", "failed",  "rebind"};

typedef struct dash_req dash_req;

struct lh_dashboard {
    lh_admin *admin;
    lh_server *srv; /* admin->srv */
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer, sampler;
    int open_handles;
    bool stopping;
    char *buf;
    char token[65];
    char token_path[4096];
    char hosts[DASH_HOSTS][80]; /* Host values accepted: the listen address, localhost:PORT */
    char origins[DASH_HOSTS][96];
    /* History: per-interval counts of each series, oldest first in a ring. */
    uint32_t hist[DASH_HISTORY][H_SERIES];
    unsigned hist_len, hist_next;
    uint64_t last_totals[H_SERIES];
    uint64_t last_sample_unix;
    /* The leak check: one child at a time; requests wait for it. */
    uv_process_t leak_proc;
    uv_pipe_t leak_out;
    uv_timer_t leak_timer;
    bool leak_running;
    int leak_handles;
    char *leak_buf;
    size_t leak_len;
    int64_t leak_exit;
    uint64_t leak_finished_unix;
    dash_req *leak_waiters;
    dash_req *suspended; /* every suspended request: resumed before MHD is stopped */
};

struct dash_req {
    lh_dashboard *d;
    struct MHD_Connection *conn;
    size_t body_len;
    char body[DASH_BODY_MAX + 1];
    bool too_big, suspended, done;
    unsigned status; /* the answer of a suspended request, when done */
    char *answer;
    size_t answer_len;
    dash_req *next_waiter;
    dash_req *next_suspended;
    /* why, on the thread pool */
    const lh_config *cfg;
    lh_explain_fn explain;
    uv_work_t work;
    lh_policy *policy;
    char name[LH_NAME_MAX * 4 + 1];
    char type[16];
    char runtime_rule[LH_NAME_MAX * 4 + 128];
    bool paused;
};

/* ---- responses ------------------------------------------------------------------------ */

/* Headers every answer carries: nothing may frame the page, run inline script or load
 * anything from elsewhere. */
static void secure_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'none'; script-src 'self'; style-src 'self'; "
                            "img-src 'self'; connect-src 'self'; base-uri 'none'; "
                            "form-action 'none'; frame-ancestors 'none'");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
    MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(r, "Cache-Control", "no-store");
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
                               const void *body, size_t len, bool copy)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)body, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    secure_headers(r);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, "Allow", "GET, POST");
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

static const char json_type[] = "application/json; charset=utf-8";

/* {"error": message} */
static enum MHD_Result refuse(struct MHD_Connection *conn, unsigned status, const char *msg)
{
    char body[512];
    lh_sbuf b;
    lh_sbuf_init(&b, body, sizeof body);
    lh_sbuf_printf(&b, "{\"error\":");
    lh_sbuf_json_str(&b, msg);
    lh_sbuf_printf(&b, "}\n");
    return respond(conn, status, json_type, body, b.len, true);
}

static enum MHD_Result ok_message(struct MHD_Connection *conn, const char *msg)
{
    char body[LH_ERR_MAX + 128];
    lh_sbuf b;
    lh_sbuf_init(&b, body, sizeof body);
    lh_sbuf_printf(&b, "{\"ok\":true,\"message\":");
    size_t n = strcspn(msg, "\n");
    char line[LH_ERR_MAX + 64];
    snprintf(line, sizeof line, "%.*s", (int)n, msg);
    lh_sbuf_json_str(&b, line);
    lh_sbuf_printf(&b, "}\n");
    return respond(conn, MHD_HTTP_OK, json_type, body, b.len, true);
}

/* ---- checks ------------------------------------------------------------------------------ */

static bool host_allowed(const lh_dashboard *d, const char *host)
{
    for (int i = 0; host && i < DASH_HOSTS; i++)
        if (d->hosts[i][0] && !strcasecmp(host, d->hosts[i])) return true;
    return false;
}

static bool origin_allowed(const lh_dashboard *d, const char *origin)
{
    for (int i = 0; i < DASH_HOSTS; i++)
        if (d->origins[i][0] && !strcasecmp(origin, d->origins[i])) return true;
    return false;
}

/* Compares in constant time: the answer time says nothing about the token. */
static bool token_ok(const lh_dashboard *d, const char *t)
{
    if (!t || strlen(t) != 64) return false;
    unsigned char diff = 0;
    for (int i = 0; i < 64; i++)
        diff |= (unsigned char)(t[i] ^ d->token[i]);
    return diff == 0;
}

static enum MHD_Result count_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (*(unsigned *)cls)++;
    return MHD_YES;
}

/* A form field of the body ("a=1&name=x.example"): URL-decoded into out. */
static bool form_field(const char *body, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = body; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, key, kl) || p[kl] != '=') continue;
        const char *v = p + kl + 1;
        size_t n = 0;
        while (*v && *v != '&' && n + 1 < cap) {
            if (*v == '%' && v[1] && v[2]) {
                char hex[3] = {v[1], v[2], 0};
                out[n++] = (char)strtol(hex, NULL, 16);
                v += 3;
            } else {
                out[n++] = *v == '+' ? ' ' : *v;
                v++;
            }
        }
        out[n] = 0;
        for (size_t i = 0; i < n; i++) /* control characters never belong in a field */
            if ((unsigned char)out[i] < 0x20) return false;
        return true;
    }
    return false;
}

/* ---- state --------------------------------------------------------------------------------- */

static void sample(lh_dashboard *d)
{
    lh_snapshot *g = malloc(sizeof *g);
    if (!g) return;
    lh_admin_gather(d->admin, g);
    const uint64_t *o = g->c.outcomes;
    uint64_t now[H_SERIES] = {
        [H_LOCAL] = o[LH_OUTCOME_LOCAL],
        [H_BLOCKED] = o[LH_OUTCOME_BLOCKED],
        [H_CACHED] = o[LH_OUTCOME_CACHED] + o[LH_OUTCOME_STALE],
        [H_FORWARDED] = o[LH_OUTCOME_FORWARDED],
        [H_FAILED] = o[LH_OUTCOME_FAILED],
        [H_REBIND] = o[LH_OUTCOME_REBIND], /* rebind-protection refusals (SERVFAIL, EDE 18) */
    };
    free(g);
    if (d->last_sample_unix) {
        uint32_t *h = d->hist[d->hist_next];
        for (int i = 0; i < H_SERIES; i++)
            h[i] = (uint32_t)(now[i] - d->last_totals[i]);
        d->hist_next = (d->hist_next + 1) % DASH_HISTORY;
        if (d->hist_len < DASH_HISTORY) d->hist_len++;
    }
    memcpy(d->last_totals, now, sizeof now);
    d->last_sample_unix = (uint64_t)time(NULL);
}

static void on_sample(uv_timer_t *t)
{
    sample(t->data);
}

static void history_json(const lh_dashboard *d, lh_sbuf *b)
{
    lh_sbuf_printf(b, "{\"interval_s\":%d,\"last\":%llu,\"series\":{", DASH_SAMPLE_MS / 1000,
                   (unsigned long long)d->last_sample_unix);
    for (int k = 0; k < H_SERIES; k++) {
        lh_sbuf_printf(b, "%s\"%s\":[", k ? "," : "", series_names[k]);
        for (unsigned i = 0; i < d->hist_len; i++) {
            unsigned at = (d->hist_next + DASH_HISTORY - d->hist_len + i) % DASH_HISTORY;
            lh_sbuf_printf(b, "%s%u", i ? "," : "", d->hist[at][k]);
        }
        lh_sbuf_putc(b, ']');
    }
    lh_sbuf_printf(b, "}}");
}

/* Loaded lists with the modification time of their file ("last update"). */
static void lists_json(const lh_dashboard *d, lh_sbuf *b)
{
    const lh_policy *p = d->srv->policy;
    lh_sbuf_putc(b, '[');
    for (size_t i = 0; p && i < p->blocks.nlists; i++) {
        const lh_list_info *li = &p->blocks.lists[i];
        struct stat st;
        long long mtime = stat(li->path, &st) == 0 ? (long long)st.st_mtime : 0;
        lh_sbuf_printf(b, "%s{\"path\":", i ? "," : "");
        lh_sbuf_json_str(b, li->path);
        lh_sbuf_printf(b,
                       ",\"kind\":\"%s\",\"rules\":%u,\"malformed\":%u,\"ignored\":%u,"
                       "\"modified\":%lld,\"first_error\":",
                       li->allow ? "allow" : "block", li->counts.rules, li->counts.errors,
                       li->counts.ignored, mtime);
        lh_sbuf_json_str(b, li->counts.first_error);
        lh_sbuf_putc(b, '}');
    }
    lh_sbuf_putc(b, ']');
}

static void leak_json(const lh_dashboard *d, lh_sbuf *b)
{
    lh_sbuf_printf(b, "{\"running\":%s,\"finished\":%llu,\"exit\":%lld}",
                   d->leak_running ? "true" : "false", (unsigned long long)d->leak_finished_unix,
                   (long long)d->leak_exit);
}

static enum MHD_Result serve_state(lh_dashboard *d, struct MHD_Connection *conn)
{
    lh_sbuf b;
    lh_sbuf_init(&b, d->buf, DASH_BUF);
    lh_sbuf_printf(&b, "{\"version\":\"%s\",\"now\":%llu,\"stats\":", LH_VERSION,
                   (unsigned long long)time(NULL));
    lh_report_stats(d->admin, &b, true);
    lh_sbuf_printf(&b, ",\"lists\":");
    lists_json(d, &b);
    lh_sbuf_printf(&b, ",\"runtime\":");
    lh_runtime_report_rules(d->admin->rt, &b, true);
    lh_sbuf_printf(&b, ",\"history\":");
    history_json(d, &b);
    lh_sbuf_printf(&b, ",\"leak_check\":");
    leak_json(d, &b);
    lh_sbuf_printf(
        &b, ",\"recent_kept\":%s,\"last_reload_ok\":%s}\n", d->srv->recent ? "true" : "false",
        d->srv->stats.last_reload_ok || !d->srv->stats.last_reload_unix ? "true" : "false");
    if (b.overflow) return refuse(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "state too large");
    return respond(conn, MHD_HTTP_OK, json_type, b.p, b.len, true);
}

/* ---- suspended requests ---------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

static void suspend(dash_req *r)
{
    MHD_suspend_connection(r->conn);
    r->suspended = true;
    r->next_suspended = r->d->suspended;
    r->d->suspended = r;
}

/* Answers a suspended request: the answer is queued when MHD calls on_request again. A
 * request whose connection is gone (r->conn NULL) is only freed. */
static void finish(dash_req *r, unsigned status, char *answer, size_t len)
{
    if (!r->conn) {
        free(answer);
        free(r);
        return;
    }
    free(r->answer);
    r->status = status;
    r->answer = answer;
    r->answer_len = len;
    r->done = true;
    if (r->suspended) {
        for (dash_req **pp = &r->d->suspended; *pp; pp = &(*pp)->next_suspended)
            if (*pp == r) {
                *pp = r->next_suspended;
                break;
            }
        r->suspended = false;
        MHD_resume_connection(r->conn);
        /* MHD processes the resumed connection in its next run: now, from the loop (not
         * from inside whatever called us). */
        if (!r->d->stopping) uv_timer_start(&r->d->timer, on_timer, 0, 0);
    }
}

static void why_work(uv_work_t *w)
{
    dash_req *r = w->data;
    char *out = malloc(DASH_BUF / 4);
    if (!out) return;
    lh_sbuf b;
    lh_sbuf_init(&b, out, DASH_BUF / 4);
    r->explain(r->cfg, r->policy, r->runtime_rule[0] ? r->runtime_rule : NULL, r->paused, r->name,
               r->type, &b);
    r->answer = out;
    r->answer_len = b.overflow ? 0 : b.len;
}

static void why_done(uv_work_t *w, int status)
{
    dash_req *r = w->data;
    lh_policy_free(r->policy);
    r->policy = NULL;
    char *a = r->answer;
    r->answer = NULL;
    if (r->done) { /* answered already (loophole was stopping) */
        free(a);
        if (!r->conn) free(r);
        return;
    }
    if (!a || !r->answer_len) {
        free(a);
        a = strdup("{\"error\":\"out of memory or answer too large\"}\n");
        finish(r, MHD_HTTP_INTERNAL_SERVER_ERROR, a, a ? strlen(a) : 0);
        return;
    }
    finish(r, MHD_HTTP_OK, a, r->answer_len);
}

/* The runtime rule that decides `name`, as "file:line: text", for the why answer. */
static void runtime_rule_text(const lh_runtime *rt, const char *name, char *out, size_t cap)
{
    out[0] = 0;
    const lh_overlay *o = rt ? rt->rules : NULL;
    lh_name n;
    if (!o || !o->nrules || lh_name_from_text(name, strlen(name), &n) != 0) return;
    uint64_t h[LH_LABELS_MAX];
    lh_block_match bm;
    size_t i;
    lh_name_hashes(&n, h);
    if (!lh_overlay_match(o, &n, h, &bm, &i)) return;
    char text[LH_NAME_MAX * 4 + 8];
    lh_overlay_rule_text(&o->rules[i], text, sizeof text);
    snprintf(out, cap, "%s:%u: %s", rt->path ? rt->path : "(runtime rules)", o->rules[i].line,
             text);
}

static enum MHD_Result start_why(dash_req *r)
{
    lh_dashboard *d = r->d;
    if (!d->admin->explain)
        return refuse(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "why: not available here");
    if (!form_field(r->body, "name", r->name, sizeof r->name) || !r->name[0])
        return refuse(r->conn, MHD_HTTP_BAD_REQUEST, "why: give a name");
    if (!form_field(r->body, "type", r->type, sizeof r->type) || !r->type[0])
        snprintf(r->type, sizeof r->type, "A");
    runtime_rule_text(d->admin->rt, r->name, r->runtime_rule, sizeof r->runtime_rule);
    r->paused = d->admin->rt && lh_runtime_pause_left(d->admin->rt) != 0;
    r->cfg = d->srv->cfg;
    r->explain = d->admin->explain;
    r->policy = d->srv->policy;
    lh_policy_ref(r->policy); /* a reload may replace it meanwhile */
    r->work.data = r;
    if (uv_queue_work(d->srv->loop, &r->work, why_work, why_done) != 0) {
        lh_policy_free(r->policy);
        r->policy = NULL;
        return refuse(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "why: cannot start the work");
    }
    suspend(r);
    return MHD_YES;
}

/* ---- the leak check: a child process --------------------------------------------------------- */

static void leak_finish(lh_dashboard *d)
{
    if (d->leak_handles) return;
    d->leak_running = false;
    d->leak_finished_unix = (uint64_t)time(NULL);
    /* {"exit":N,"report":<the child's JSON, or its text as a string>} */
    size_t cap = d->leak_len * 2 + 256;
    char *out = malloc(cap);
    lh_sbuf b;
    if (out) {
        lh_sbuf_init(&b, out, cap);
        lh_sbuf_printf(&b, "{\"exit\":%lld,\"report\":", (long long)d->leak_exit);
        d->leak_buf[d->leak_len] = 0;
        const char *t = d->leak_buf;
        while (*t == ' ' || *t == '\n')
            t++;
        if (*t == '{') /* the child's own JSON: passed through, the page renders its fields */
            lh_sbuf_printf(&b, "%s", t);
        else
            lh_sbuf_json_str(&b, t);
        lh_sbuf_printf(&b, "}\n");
    }
    while (d->leak_waiters) {
        dash_req *r = d->leak_waiters;
        d->leak_waiters = r->next_waiter;
        char *a = out && !b.overflow ? strdup(out) : NULL;
        finish(r, a ? MHD_HTTP_OK : MHD_HTTP_INTERNAL_SERVER_ERROR,
               a ? a : strdup("{\"error\":\"out of memory\"}"), a ? strlen(a) : 25);
    }
    free(out);
    free(d->leak_buf);
    d->leak_buf = NULL;
}

static void leak_handle_closed(uv_handle_t *h)
{
    lh_dashboard *d = h->data;
    d->leak_handles--;
    leak_finish(d);
    if (d->stopping && !d->leak_handles) {
        if (--d->open_handles == 0) { /* the last of the dashboard's handles */
            MHD_stop_daemon(d->mhd);
            free(d->buf);
            free(d);
        }
    }
}

static void leak_close_all(lh_dashboard *d)
{
    if (!uv_is_closing((uv_handle_t *)&d->leak_out))
        uv_close((uv_handle_t *)&d->leak_out, leak_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&d->leak_proc))
        uv_close((uv_handle_t *)&d->leak_proc, leak_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&d->leak_timer))
        uv_close((uv_handle_t *)&d->leak_timer, leak_handle_closed);
}

static void leak_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    lh_dashboard *d = h->data;
    buf->base = d->leak_buf + d->leak_len;
    buf->len = DASH_LEAK_OUT - d->leak_len;
}

static void leak_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    lh_dashboard *d = s->data;
    if (n > 0) d->leak_len += (size_t)n;
    if (n < 0 || d->leak_len >= DASH_LEAK_OUT) uv_read_stop(s);
}

static void leak_exited(uv_process_t *p, int64_t status, int sig)
{
    lh_dashboard *d = p->data;
    d->leak_exit = sig ? -sig : status;
    leak_close_all(d);
}

static void leak_timeout(uv_timer_t *t)
{
    lh_dashboard *d = t->data;
    lh_warn("dashboard: the leak check did not finish in %d s; stopped",
            DASH_LEAK_TIMEOUT_MS / 1000);
    uv_process_kill(&d->leak_proc, SIGKILL);
}

static enum MHD_Result start_leak_check(dash_req *r)
{
    lh_dashboard *d = r->d;
    if (!d->leak_running) {
        char *args[256];
        int n = 0;
        args[n++] = "/proc/self/exe";
        args[n++] = "leak-check";
        args[n++] = "--json";
        for (char *const *a = d->admin->argv; a && *a && n < 254; a++)
            if (strcmp(*a, "--json")) args[n++] = *a;
        args[n] = NULL;
        if (!(d->leak_buf = malloc(DASH_LEAK_OUT + 1)))
            return refuse(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        d->leak_len = 0;
        uv_pipe_init(d->srv->loop, &d->leak_out, 0);
        d->leak_out.data = d;
        uv_stdio_container_t stdio[3] = {
            {.flags = UV_IGNORE},
            {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
             .data.stream = (uv_stream_t *)&d->leak_out},
            {.flags = UV_IGNORE},
        };
        uv_process_options_t opt = {.file = args[0],
                                    .args = args,
                                    .stdio = stdio,
                                    .stdio_count = 3,
                                    .exit_cb = leak_exited};
        d->leak_proc.data = d;
        int rc = uv_spawn(d->srv->loop, &d->leak_proc, &opt);
        uv_timer_init(d->srv->loop, &d->leak_timer);
        d->leak_timer.data = d;
        d->leak_handles = 3;
        d->leak_running = true;
        if (rc != 0) {
            lh_warn("dashboard: cannot run the leak check: %s", uv_strerror(rc));
            d->leak_exit = 2;
            snprintf(d->leak_buf, DASH_LEAK_OUT, "cannot run 'loophole leak-check': %s",
                     uv_strerror(rc));
            d->leak_len = strlen(d->leak_buf);
            leak_close_all(d);
        } else {
            uv_read_start((uv_stream_t *)&d->leak_out, leak_alloc, leak_read);
            uv_timer_start(&d->leak_timer, leak_timeout, DASH_LEAK_TIMEOUT_MS, 0);
            lh_info("dashboard: leak check started (pid %d)", d->leak_proc.pid);
        }
    }
    if (d->leak_running) { /* wait for it (also a check somebody else started) */
        r->next_waiter = d->leak_waiters;
        d->leak_waiters = r;
        suspend(r);
        return MHD_YES;
    }
    return MHD_YES; /* finished at once (spawn failed): answered by finish() */
}

/* ---- actions ----------------------------------------------------------------------------- */

static enum MHD_Result action(dash_req *r, const char *what)
{
    lh_dashboard *d = r->d;
    lh_admin *s = d->admin;
    char msg[LH_ERR_MAX + 64], name[LH_NAME_MAX * 4 + 1], v[32];
    if (!strcmp(what, "pause")) {
        unsigned long long secs = LH_PAUSE_DEFAULT_S;
        char *e;
        if (form_field(r->body, "seconds", v, sizeof v)) {
            errno = 0;
            secs = strtoull(v, &e, 10);
            if (errno || *e || v[0] == '-' || !v[0] || secs > 7ull * 86400)
                return refuse(r->conn, MHD_HTTP_BAD_REQUEST, "pause: seconds from 0 to 604800");
        }
        lh_runtime_pause(s->rt, secs, msg, sizeof msg);
        return ok_message(r->conn, msg);
    }
    if (!strcmp(what, "resume")) {
        lh_runtime_resume(s->rt, msg, sizeof msg);
        return ok_message(r->conn, msg);
    }
    if (!strcmp(what, "allow") || !strcmp(what, "block") || !strcmp(what, "unlist")) {
        if (!form_field(r->body, "name", name, sizeof name) || !name[0])
            return refuse(r->conn, MHD_HTTP_BAD_REQUEST, "give a name");
        bool subs = form_field(r->body, "subdomains", v, sizeof v) && !strcmp(v, "1");
        if (lh_runtime_set_rule(s->rt, name, what[0] == 'u', what[0] == 'a', subs, msg,
                                sizeof msg) != 0)
            return refuse(r->conn, MHD_HTTP_BAD_REQUEST, msg);
        return ok_message(r->conn, msg);
    }
    if (!strcmp(what, "reload")) {
        lh_info("dashboard: reload requested");
        lh_admin_reload(s);
        return ok_message(r->conn, "reloading the lists and the hosts file");
    }
    if (!strcmp(what, "flush")) {
        lh_info("dashboard: cache flushed");
        lh_admin_flush_cache(s);
        return ok_message(r->conn, "cache flushed in every loop");
    }
    if (!strcmp(what, "recent")) {
        char client[64] = "", text[LH_NAME_MAX * 4 + 1] = "";
        lh_recent_filter f = {.client = client, .name = text};
        f.blocked = form_field(r->body, "blocked", v, sizeof v) && !strcmp(v, "1");
        form_field(r->body, "client", client, sizeof client);
        form_field(r->body, "name", text, sizeof text);
        for (char *p = text; *p; p++) /* names are lowercase */
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
        if (!s->rt->nrings) return refuse(r->conn, MHD_HTTP_CONFLICT, "recent queries are off");
        lh_sbuf b;
        lh_sbuf_init(&b, d->buf, DASH_BUF);
        lh_runtime_recent(s->rt, NULL, &f, 200, true, &b);
        if (b.overflow) return refuse(r->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "too large");
        return respond(r->conn, MHD_HTTP_OK, json_type, b.p, b.len, true);
    }
    if (!strcmp(what, "why")) return start_why(r);
    if (!strcmp(what, "leak-check")) return start_leak_check(r);
    return refuse(r->conn, MHD_HTTP_NOT_FOUND, "no such action");
}

/* ---- requests ----------------------------------------------------------------------------- */

typedef struct web_file {
    const char *path, *type;
    const unsigned char *data;
    const size_t *len;
} web_file;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    lh_dashboard *d = cls;
    dash_req *r = *req_cls;
    if (!r) { /* the headers are in: check what can be checked before any body */
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        r->d = d;
        r->conn = conn;
        *req_cls = r;
        return MHD_YES;
    }
    if (r->done) { /* a suspended request resumed with its answer */
        /* No answer (strdup failed): an empty body, never answer_len bytes of "". */
        enum MHD_Result ok = respond(conn, r->status, json_type, r->answer ? r->answer : "",
                                     r->answer ? r->answer_len : 0, true);
        free(r->answer);
        r->answer = NULL;
        return ok;
    }
    if (r->suspended) return MHD_YES;
    if (*upload_data_size) { /* the body, in pieces */
        size_t n = *upload_data_size;
        if (r->body_len + n > DASH_BODY_MAX)
            r->too_big = true;
        else
            memcpy(r->body + r->body_len, upload_data, n), r->body_len += n;
        *upload_data_size = 0;
        return MHD_YES;
    }
    r->body[r->body_len] = 0;

    /* DNS rebinding: a page on another name that resolves to 127.0.0.1 sends its own Host. */
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    if (!host_allowed(d, host))
        return refuse(conn, MHD_HTTP_MISDIRECTED_REQUEST,
                      "this Host is not the dashboard's address (DNS rebinding defence)");
    unsigned nargs = 0;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, count_arg, &nargs);
    if (nargs || strchr(url, '?'))
        return refuse(conn, MHD_HTTP_BAD_REQUEST, "no query strings: data goes in POST bodies");
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    if (!get && !post) return refuse(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET or POST only");

    if (strncmp(url, "/api/", 5)) { /* the page itself: no data, no token needed */
        static const web_file files[] = {
            {"/", "text/html; charset=utf-8", lh_web_index_html, &lh_web_index_html_len},
            {"/app.js", "text/javascript; charset=utf-8", lh_web_app_js, &lh_web_app_js_len},
            {"/style.css", "text/css; charset=utf-8", lh_web_style_css, &lh_web_style_css_len},
            {"/favicon.svg", "image/svg+xml", lh_web_favicon_svg, &lh_web_favicon_svg_len},
        };
        for (size_t i = 0; i < sizeof files / sizeof *files; i++)
            if (!strcmp(url, files[i].path)) {
                if (!get) return refuse(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only");
                return respond(conn, MHD_HTTP_OK, files[i].type, files[i].data, *files[i].len,
                               false);
            }
        return refuse(conn, MHD_HTTP_NOT_FOUND, "not found");
    }

    /* The API: a browser says where a request comes from; it must be this page. */
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (origin && !origin_allowed(d, origin))
        return refuse(conn, MHD_HTTP_FORBIDDEN, "foreign Origin");
    const char *site = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-Fetch-Site");
    if (site && strcmp(site, "same-origin") && strcmp(site, "none"))
        return refuse(conn, MHD_HTTP_FORBIDDEN, "cross-site request");
    if (!token_ok(d, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Loophole-Token")))
        return refuse(conn, MHD_HTTP_UNAUTHORIZED,
                      "missing or wrong token: open the URL 'loophole dashboard' prints");
    if (!strcmp(url, "/api/state")) {
        if (!get) return refuse(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only");
        return serve_state(d, conn);
    }
    if (!post) return refuse(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "actions are POST only");
    if (r->too_big) return refuse(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    if (r->body_len && (!ct || strncmp(ct, "application/x-www-form-urlencoded", 33)))
        return refuse(conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                      "bodies are application/x-www-form-urlencoded");
    return action(r, url + 5);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    dash_req *r = *req_cls;
    if (!r) return;
    *req_cls = NULL;
    lh_dashboard *d = cls;
    for (dash_req **pp = &d->leak_waiters; *pp; pp = &(*pp)->next_waiter)
        if (*pp == r) {
            *pp = r->next_waiter;
            break;
        }
    if (r->policy) { /* why still on the thread pool: why_done frees it */
        r->conn = NULL;
        return;
    }
    free(r->answer);
    free(r);
}

/* ---- the server ----------------------------------------------------------------------------- */

static void on_poll(uv_poll_t *p, int status, int events);

static void on_timer(uv_timer_t *t)
{
    on_poll(&((lh_dashboard *)t->data)->poll, 0, 0);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    lh_dashboard *d = p->data;
    MHD_run(d->mhd);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(d->mhd, &ms) == MHD_YES)
        uv_timer_start(&d->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&d->timer);
}

/* The token file beside the control socket (the run directory), readable by root and the
 * control group only; a new token every start. */
static int write_token(lh_dashboard *d, const lh_config *cfg, char *err, size_t errlen)
{
    unsigned char raw[32];
    if (getrandom(raw, sizeof raw, 0) != sizeof raw) {
        snprintf(err, errlen, "http: no randomness for the dashboard token");
        return -1;
    }
    for (int i = 0; i < 32; i++)
        snprintf(d->token + 2 * i, 3, "%02x", raw[i]);
    const char *base = cfg->control_socket ? cfg->control_socket : cfg->state_dir;
    if (!base) {
        snprintf(err, errlen, "http: the token file needs control-socket or state-dir");
        return -1;
    }
    const char *slash = strrchr(base, '/');
    size_t dirlen = cfg->control_socket ? (size_t)(slash - base) : strlen(base);
    snprintf(d->token_path, sizeof d->token_path, "%.*s/dashboard.token", (int)dirlen, base);
    gid_t gid = 0;
    if (cfg->control_group) {
        struct group *g = getgrnam(cfg->control_group);
        if (g) gid = g->gr_gid;
    }
    unlink(d->token_path); /* a file anyone replaced is not reused */
    int fd = open(d->token_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  gid ? 0640 : 0600);
    if (fd < 0 || (gid && fchown(fd, (uid_t)-1, gid) != 0) || write(fd, d->token, 64) != 64 ||
        write(fd, "\n", 1) != 1) {
        snprintf(err, errlen, "http: cannot write the token file %s: %s", d->token_path,
                 strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

lh_dashboard *lh_dashboard_start(lh_admin *a, char *err, size_t errlen)
{
    lh_server *s = a->srv;
    const lh_config *cfg = s->cfg;
    char where[64];
    lh_addr_format(&cfg->http, where, sizeof where);
    lh_dashboard *d = calloc(1, sizeof *d);
    if (!d || !(d->buf = malloc(DASH_BUF))) {
        free(d);
        snprintf(err, errlen, "out of memory for the dashboard");
        return NULL;
    }
    d->admin = a;
    d->srv = s;
    if (write_token(d, cfg, err, errlen) != 0) goto fail;
    unsigned port =
        ntohs(cfg->http.sa.sa_family == AF_INET6 ? cfg->http.v6.sin6_port : cfg->http.v4.sin_port);
    snprintf(d->hosts[0], sizeof d->hosts[0], "%s", where);
    snprintf(d->hosts[1], sizeof d->hosts[1], "localhost:%u", port);
    if (port == 80) /* the address without ":80"; the last colon, since "[::1]:80" has others */
        snprintf(d->hosts[2], sizeof d->hosts[2], "%.*s", (int)(strrchr(where, ':') - where),
                 where);
    for (int i = 0; i < DASH_HOSTS; i++)
        if (d->hosts[i][0]) snprintf(d->origins[i], sizeof d->origins[i], "http://%s", d->hosts[i]);
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     (cfg->http.sa.sa_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    d->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, d, MHD_OPTION_SOCK_ADDR, &cfg->http.sa,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)DASH_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)DASH_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, on_completed, d, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        d->mhd ? MHD_get_daemon_info(d->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (!info) {
        snprintf(err, errlen,
                 "http: cannot listen on %s (in use, or not an address of this machine)", where);
        if (d->mhd) MHD_stop_daemon(d->mhd);
        unlink(d->token_path);
        goto fail;
    }
    uv_poll_init(s->loop, &d->poll, info->epoll_fd);
    uv_timer_init(s->loop, &d->timer);
    uv_timer_init(s->loop, &d->sampler);
    d->poll.data = d->timer.data = d->sampler.data = d;
    d->open_handles = 3;
    uv_poll_start(&d->poll, UV_READABLE, on_poll);
    sample(d); /* the baseline */
    uv_timer_start(&d->sampler, on_sample, DASH_SAMPLE_MS, DASH_SAMPLE_MS);
    uv_unref((uv_handle_t *)&d->sampler);
    lh_info("dashboard on http://%s/ (token in %s; 'loophole dashboard' prints the URL)", where,
            d->token_path);
    return d;
fail:
    free(d->buf);
    free(d);
    return NULL;
}

static void on_closed(uv_handle_t *h)
{
    lh_dashboard *d = h->data;
    if (--d->open_handles) return;
    MHD_stop_daemon(d->mhd);
    free(d->buf);
    free(d);
}

void lh_dashboard_stop(lh_dashboard *d)
{
    if (!d) return;
    d->stopping = true;
    /* The token file stays (privileges are gone by now): it names a dead token, replaced at
     * the next start; systemd's RuntimeDirectory removes it with the directory. */
    while (d->suspended) /* MHD must not be stopped with suspended connections */
        finish(d->suspended, MHD_HTTP_SERVICE_UNAVAILABLE, strdup("{\"error\":\"stopping\"}"), 20);
    d->leak_waiters = NULL;
    if (d->leak_running) { /* closed with the rest; its handles count as one */
        d->open_handles++;
        uv_process_kill(&d->leak_proc, SIGKILL);
        leak_close_all(d);
    }
    uv_close((uv_handle_t *)&d->poll, on_closed);
    uv_close((uv_handle_t *)&d->timer, on_closed);
    uv_close((uv_handle_t *)&d->sampler, on_closed);
}

int lh_dashboard_url(const lh_dashboard *d, char *out, size_t cap)
{
    if (!d) {
        snprintf(out, cap,
                 "the dashboard is off: set http = 127.0.0.1:%d (or --http) and "
                 "restart loophole\n",
                 LH_DEFAULT_HTTP_PORT);
        return -1;
    }
    snprintf(out, cap, "http://%s/#token=%s\n(the token is also in %s)\n", d->hosts[0], d->token,
             d->token_path);
    return 0;
}
