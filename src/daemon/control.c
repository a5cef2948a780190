/* control.c - see control.h. Requests are rare and small: each connection gets a malloc'd
 * answer; nothing here is on the query path. */
#include "loophole/control.h"
#include "loophole/dashboard.h"
#include "loophole/log.h"
#include "loophole/report.h"
#include "loophole/runtime.h"
#include "loophole/admin.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_REQUEST_MAX 1024 /* "allow NAME", a recent-queries cursor per loop */
#define CTL_ANSWER_MAX (512 * 1024)
#define CTL_CLIENT_TIMEOUT_S 30 /* a reload of a million names takes a few seconds */
/* Connections are bounded in count and in idle time: each holds a descriptor, which the
 * listeners need for TCP clients, and only a client that says nothing could hold one for
 * ever. 10 s is long for a request the CLI sends at once, short enough that idle connections
 * do not pile up; at the limit the oldest one still waiting for its request is closed, so
 * that an administrator always gets in. */
#define CTL_CONNS_MAX 32
#define CTL_IDLE_TIMEOUT_MS 10000
#define CTL_SWEEP_MS 1000
#define CTL_REFUSED_HINT                                                                           \
    " (it answers only root, the user who started it and control-group members)"

typedef struct ctl_conn {
    uv_pipe_t pipe;
    lh_control *ctl;              /* NULL once the control socket has stopped */
    struct ctl_conn *prev, *next; /* every open connection: the stop closes them all */
    struct ctl_conn *next_waiting;
    unsigned reloads_to_wait; /* completions before this `reload` request is answered */
    uint64_t deadline;        /* loop time (ms) it is closed at; 0: a request in progress */
    bool reading;             /* still waiting for its request line */
    size_t used;
    char req[CTL_REQUEST_MAX];
} ctl_conn;

struct lh_control {
    uv_pipe_t pipe;
    lh_admin *admin;
    char *path;
    gid_t gid;       /* the control group (0: root only) */
    uid_t owner_uid; /* who started the daemon (root, or a user running it unprivileged) */
    ctl_conn *waiting;
    ctl_conn *conns;
    unsigned nconns;       /* in `conns` */
    uv_timer_t sweep;      /* closes connections past their deadline; runs while any is open */
    unsigned open_handles; /* pipe and sweep: `c` is freed when both have closed */
};

typedef struct ctl_write {
    uv_write_t req;
    ctl_conn *conn;
    char data[];
} ctl_write;

static void conn_free(uv_handle_t *h)
{
    ctl_conn *c = h->data;
    if (c->ctl) { /* else the stop has let go of the whole list (and maybe of ctl) */
        if (c->prev)
            c->prev->next = c->next;
        else
            c->ctl->conns = c->next;
        if (c->next) c->next->prev = c->prev;
        c->ctl->nconns--;
    }
    free(c);
}

/* Once only: a write cancelled by the close calls on_written, which closes too. */
static void conn_close(ctl_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->pipe)) uv_close((uv_handle_t *)&c->pipe, conn_free);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    ctl_write *w = (ctl_write *)req;
    conn_close(w->conn);
    free(w);
}

/* Sends "ok\n" or "error\n" and the text, then closes the connection. */
static void reply(ctl_conn *c, bool ok, const char *text, size_t len)
{
    const char *status = ok ? "ok\n" : "error\n";
    size_t slen = strlen(status);
    ctl_write *w = malloc(sizeof *w + slen + len);
    if (!w) {
        conn_close(c);
        return;
    }
    w->conn = c;
    c->reading = false;
    /* A client that does not read its answer must not hold the connection either. */
    c->deadline = uv_now(c->pipe.loop) + CTL_IDLE_TIMEOUT_MS;
    memcpy(w->data, status, slen);
    memcpy(w->data + slen, text, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)(slen + len));
    if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_written) != 0) {
        free(w);
        conn_close(c);
    }
}

static void reply_text(ctl_conn *c, bool ok, const char *text)
{
    reply(c, ok, text, strlen(text));
}

static void reply_report(ctl_conn *c, void (*render)(const lh_admin *, lh_sbuf *, bool), bool json)
{
    char *buf = malloc(CTL_ANSWER_MAX);
    if (!buf) {
        reply_text(c, false, "out of memory\n");
        return;
    }
    lh_sbuf b;
    lh_sbuf_init(&b, buf, CTL_ANSWER_MAX);
    render(c->ctl->admin, &b, json);
    reply(c, !b.overflow, b.overflow ? "answer too large\n" : buf, b.overflow ? 16 : b.len);
    free(buf);
}

/* The runtime commands (runtime.c). Returns false when `cmd` is not one of them. */
static bool runtime_command(ctl_conn *c, lh_runtime *rt, const char *cmd)
{
    char *buf = malloc(CTL_ANSWER_MAX);
    if (!buf) {
        reply_text(c, false, "out of memory\n");
        return true;
    }
    lh_sbuf b;
    lh_sbuf_init(&b, buf, CTL_ANSWER_MAX);
    int rc = lh_runtime_command(rt, cmd, &b);
    if (rc >= 0) reply(c, rc == 0 && !b.overflow, buf, b.len);
    free(buf);
    return rc >= 0;
}

static void run_command(ctl_conn *c, const char *cmd)
{
    lh_admin *a = c->ctl->admin;
    lh_server *s = a->srv;
    if (!strcmp(cmd, "stats") || !strcmp(cmd, "stats json")) {
        reply_report(c, lh_report_stats, cmd[5] != 0);
    } else if (!strcmp(cmd, "lists") || !strcmp(cmd, "lists json")) {
        reply_report(c, lh_report_lists, cmd[5] != 0);
    } else if (!strcmp(cmd, "config") || !strcmp(cmd, "config json")) {
        reply_report(c, lh_report_config, cmd[6] != 0);
    } else if (!strcmp(cmd, "cache flush")) {
        char text[96];
        snprintf(text, sizeof text, "cache flushed (%zu entries%s)\n",
                 s->fwd_ready ? s->fwd.cache.count : (size_t)0,
                 lh_server_loops(s) > 1 ? " in the first loop; every loop flushed" : "");
        lh_admin_flush_cache(a);
        lh_info("control: cache flushed");
        reply_text(c, true, text);
    } else if (!strcmp(cmd, "reload")) {
        if (s->stopping) {
            reply_text(c, false, "nothing to reload\n");
            return;
        }
        /* A build already running may have read the files before they changed: wait for
         * the one after it. */
        c->reloads_to_wait = a->reloading ? 2 : 1;
        c->next_waiting = c->ctl->waiting;
        c->ctl->waiting = c;
        lh_info("control: reload requested");
        lh_admin_reload(a);
    } else if (!strcmp(cmd, "dashboard")) {
        char text[512];
        bool ok = lh_dashboard_url(a->dashboard, text, sizeof text) == 0;
        reply_text(c, ok, text);
    } else if (a->rt && runtime_command(c, a->rt, cmd)) {
        /* pause, resume, allow, block, unlist, recent: answered */
    } else {
        reply_text(c, false,
                   "unknown command; known: stats, stats json, lists, lists json, config, "
                   "config json, reload, cache flush, pause, resume, allow, block, unlist, "
                   "recent, dashboard\n");
    }
}

void lh_control_reload_done(lh_control *c, bool ok, const char *message)
{
    if (!c) return;
    for (ctl_conn **pp = &c->waiting; *pp;) {
        ctl_conn *w = *pp;
        if (--w->reloads_to_wait > 0) {
            pp = &w->next_waiting;
            continue;
        }
        *pp = w->next_waiting;
        char text[LH_ERR_MAX + 32];
        snprintf(text, sizeof text, "%s%s\n",
                 ok ? "reloaded: "
                    : "reload failed, kept the "
                      "running configuration: ",
                 message);
        reply_text(w, ok, text);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    ctl_conn *c = h->data;
    buf->base = c->req + c->used;
    buf->len = sizeof c->req - 1 - c->used;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    ctl_conn *c = st->data;
    if (nread < 0 || (nread == 0 && c->used == sizeof c->req - 1)) {
        conn_close(c);
        return;
    }
    c->used += (size_t)nread;
    c->req[c->used] = 0;
    char *nl = strchr(c->req, '\n');
    if (!nl) {
        if (c->used == sizeof c->req - 1) {
            uv_read_stop(st);
            c->reading = false;
            reply_text(c, false, "request too long\n");
        }
        return;
    }
    *nl = 0;
    uv_read_stop(st);
    c->reading = false;
    c->deadline = 0; /* answered at once, or when the reload it waits for finishes */
    run_command(c, c->req);
}

/* Is the user `uid` a member of `want`: as its primary group or through a supplementary one
 * (the group database, as the login that started the peer saw it; SO_PEERCRED reports only
 * the peer's primary gid). Looked up on the loop thread: control connections are rare. */
static bool user_in_group(uid_t uid, gid_t want)
{
    char pwbuf[4096];
    struct passwd pw, *found = NULL;
    if (getpwuid_r(uid, &pw, pwbuf, sizeof pwbuf, &found) != 0 || !found) return false;
    if (pw.pw_gid == want) return true;
    gid_t local[64], *groups = local;
    int n = (int)(sizeof local / sizeof local[0]);
    bool member = false;
    if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0) {
        /* More groups than fit: n now says how many there are. */
        groups = n > 0 ? malloc((size_t)n * sizeof *groups) : NULL;
        if (!groups || getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0) n = 0;
    }
    for (int i = 0; i < n && !member; i++)
        member = groups[i] == want;
    if (groups != local) free(groups);
    return member;
}

/* Only root, the user who started the daemon (not the one it drops to) and members of the
 * control group: the file mode says so already; SO_PEERCRED makes sure even if someone
 * loosens it. */
static bool peer_allowed(lh_control *ctl, uv_pipe_t *p)
{
    uv_os_fd_t fd;
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (uv_fileno((uv_handle_t *)p, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return false;
    if (cred.uid == 0 || cred.uid == ctl->owner_uid) return true;
    if (!ctl->gid) return false;
    return cred.gid == ctl->gid || user_in_group(cred.uid, ctl->gid);
}

static void on_sweep(uv_timer_t *t)
{
    lh_control *ctl = t->data;
    uint64_t now = uv_now(t->loop);
    for (ctl_conn *k = ctl->conns; k; k = k->next)
        if (k->deadline && now >= k->deadline && !uv_is_closing((uv_handle_t *)&k->pipe)) {
            lh_debug("control: closing a connection idle for %d s", CTL_IDLE_TIMEOUT_MS / 1000);
            conn_close(k);
        }
    if (!ctl->conns) uv_timer_stop(t);
}

/* At the limit: closes the connection that has waited longest for its request line (the
 * list is newest first). Returns false when every connection is busy with a request. */
static bool evict_idle(lh_control *ctl)
{
    ctl_conn *oldest = NULL;
    for (ctl_conn *k = ctl->conns; k; k = k->next)
        if (k->reading && !uv_is_closing((uv_handle_t *)&k->pipe)) oldest = k;
    if (!oldest) return false;
    lh_debug("control: %u connections open; closing the oldest idle one", ctl->nconns);
    conn_close(oldest);
    return true;
}

static void on_connection(uv_stream_t *server, int status)
{
    lh_control *ctl = server->data;
    if (status < 0) return;
    ctl_conn *c = calloc(1, sizeof *c);
    if (!c) return;
    /* Counted from here until its close completes: closing ones still hold a descriptor. */
    bool full = ctl->nconns >= CTL_CONNS_MAX && !evict_idle(ctl);
    c->ctl = ctl;
    uv_pipe_init(ctl->admin->srv->loop, &c->pipe, 0);
    c->pipe.data = c;
    c->next = ctl->conns;
    if (ctl->conns) ctl->conns->prev = c;
    ctl->conns = c;
    ctl->nconns++;
    c->reading = true;
    c->deadline = uv_now(ctl->admin->srv->loop) + CTL_IDLE_TIMEOUT_MS;
    if (!uv_is_active((uv_handle_t *)&ctl->sweep))
        uv_timer_start(&ctl->sweep, on_sweep, CTL_SWEEP_MS, CTL_SWEEP_MS);
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0 || full || !peer_allowed(ctl, &c->pipe)) {
        conn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

/* A socket file left by a daemon that died is removed; one that answers is someone's. */
static int clear_stale_socket(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0) return 0;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "control-socket %s exists and is not a socket", path);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int r = fd >= 0 ? connect(fd, (struct sockaddr *)&a, sizeof a) : -1;
    if (fd >= 0) close(fd);
    if (r == 0) {
        snprintf(err, errlen,
                 "control-socket %s is in use: another loophole runs with it (stop it, or set "
                 "control-socket to another path)",
                 path);
        return -1;
    }
    unlink(path);
    return 0;
}

static void on_listener_closed(uv_handle_t *h);

lh_control *lh_control_start(lh_admin *a, char *err, size_t errlen)
{
    const lh_server *s = a->srv;
    const lh_config *cfg = s->cfg;
    lh_control *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(cfg->control_socket))) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->admin = a;
    c->owner_uid = geteuid();
    if (cfg->control_group) {
        struct group *g = getgrnam(cfg->control_group);
        if (!g) {
            snprintf(err, errlen, "control-group: no group named '%s'", cfg->control_group);
            goto fail;
        }
        c->gid = g->gr_gid;
    }
    char dir[sizeof((struct sockaddr_un *)0)->sun_path];
    if (strlen(c->path) >= sizeof dir) {
        snprintf(err, errlen, "control-socket: path longer than %zu bytes", sizeof dir - 1);
        goto fail;
    }
    snprintf(dir, sizeof dir, "%s", c->path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "control-socket: cannot create %s: %s", dir, strerror(errno));
            goto fail;
        }
    }
    if (clear_stale_socket(c->path, err, errlen) != 0) goto fail;
    uv_pipe_init(s->loop, &c->pipe, 0);
    c->pipe.data = c;
    mode_t old = umask(0117); /* created 0660: no window in which others may connect */
    int r = uv_pipe_bind(&c->pipe, c->path);
    umask(old);
    /* Owned by whoever runs the daemon; the control group, when set, gets group access. */
    if (r == 0 && c->gid && chown(c->path, (uid_t)-1, c->gid) != 0)
        r = uv_translate_sys_error(errno);
    if (r == 0) r = uv_listen((uv_stream_t *)&c->pipe, 16, on_connection);
    if (r != 0) {
        snprintf(err, errlen, "control-socket %s: %s", c->path, uv_strerror(r));
        unlink(c->path);
        c->open_handles = 1;
        uv_close((uv_handle_t *)&c->pipe, on_listener_closed); /* frees c */
        return NULL;
    }
    uv_timer_init(s->loop, &c->sweep);
    c->sweep.data = c;
    c->open_handles = 2;
    lh_info("control socket %s (mode 0660, group %s)", c->path,
            cfg->control_group ? cfg->control_group : "root");
    return c;
fail:
    free(c->path);
    free(c);
    return NULL;
}

/* For the listener and the sweep timer: the second one closed frees the control state. */
static void on_listener_closed(uv_handle_t *h)
{
    lh_control *c = h->data;
    if (--c->open_handles) return;
    free(c->path);
    free(c);
}

void lh_control_stop(lh_control *c)
{
    if (!c) return;
    while (c->waiting) {
        ctl_conn *w = c->waiting;
        c->waiting = w->next_waiting;
        reply_text(w, false, "loophole is stopping\n");
    }
    /* Every other connection too (one that never sent its request, one still being written
     * to): left open it would keep the loop - and the stop - waiting on the client, and a
     * request arriving later would reach the freed control state. The answers just queued are
     * written first when the socket takes them (they are short). */
    for (ctl_conn *k = c->conns; k; k = k->next) {
        k->ctl = NULL;
        conn_close(k);
    }
    c->conns = NULL;
    c->nconns = 0;
    unlink(c->path);
    uv_close((uv_handle_t *)&c->sweep, on_listener_closed);
    uv_close((uv_handle_t *)&c->pipe, on_listener_closed);
}

/* ---- the client side ---------------------------------------------------------------- */

int lh_control_call(const char *path, const char *command)
{
    char *body;
    bool ok;
    int rc = lh_control_fetch(path, command, &body, &ok);
    if (rc) return rc;
    fputs(body, ok ? stdout : stderr);
    free(body);
    return ok ? 0 : 1;
}

int lh_control_fetch(const char *path, const char *command, char **body_out, bool *ok_out)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (!path) {
        fprintf(stderr, "loophole: control-socket is off (none): nothing to talk to\n");
        return 2;
    }
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        fprintf(stderr, "loophole: cannot reach the daemon at %s: %s%s\n", path, strerror(e),
                e == ENOENT || e == ECONNREFUSED
                    ? " (is loophole running, with this control-socket?)"
                : e == EACCES ? " (run as root or as a member of control-group)"
                              : "");
        if (fd >= 0) close(fd);
        return 2;
    }
    struct timeval tv = {.tv_sec = CTL_CLIENT_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[CTL_REQUEST_MAX];
    int n = snprintf(req, sizeof req, "%s\n", command);
    /* MSG_NOSIGNAL: a daemon that refuses this peer closes at once; that is an answer to
     * report, not a SIGPIPE to die of. */
    if (n < 0 || (size_t)n >= sizeof req || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        int e = errno;
        if (e == EPIPE || e == ECONNRESET)
            fprintf(stderr,
                    "loophole: no answer from the daemon at %s: it closed the connection%s\n", path,
                    CTL_REFUSED_HINT);
        else
            fprintf(stderr, "loophole: cannot send the request: %s\n", strerror(e));
        close(fd);
        return 2;
    }
    char *buf = malloc(CTL_ANSWER_MAX + 16);
    size_t used = 0;
    ssize_t r;
    while (buf && used < CTL_ANSWER_MAX + 15 &&
           (r = read(fd, buf + used, CTL_ANSWER_MAX + 15 - used)) > 0)
        used += (size_t)r;
    close(fd);
    if (!buf || used == 0) {
        fprintf(stderr, "loophole: no answer from the daemon at %s%s\n", path,
                buf ? CTL_REFUSED_HINT : "");
        free(buf);
        return 2;
    }
    buf[used] = 0;
    *ok_out = !strncmp(buf, "ok\n", 3);
    char *body = strchr(buf, '\n');
    body = body ? body + 1 : buf;
    memmove(buf, body, strlen(body) + 1);
    *body_out = buf;
    return 0;
}
