/* runtime.c - see runtime.h. Commands are rare (a person types them): they may allocate and
 * write a file on the loop; the query path only loads an atomic pointer and a deadline. */
#include "loophole/runtime.h"
#include "loophole/log.h"
#include "loophole/querylog.h"
#include "loophole/admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ldns/ldns.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The state directory, owned by the user loophole will run as, so that the daemon can still
 * replace runtime.list after it has dropped root. Changed through a descriptor opened with
 * O_NOFOLLOW, never by path: a state directory that is a symbolic link (or is swapped for one
 * between the check and the change) would otherwise hand its target - any directory root can
 * reach - to that user. Such a directory is refused with the reason. */
static int make_state_dir(const lh_config *cfg, char *err, size_t errlen)
{
    const char *dir = cfg->state_dir;
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "state-dir: cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        struct stat st;
        if (errno == ELOOP || (lstat(dir, &st) == 0 && S_ISLNK(st.st_mode)))
            snprintf(err, errlen,
                     "state-dir: %s is a symbolic link; refusing it (loophole changes the owner "
                     "of its state directory): give the real directory",
                     dir);
        else
            snprintf(err, errlen, "state-dir: cannot open %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    if (geteuid() == 0 && strcmp(cfg->user, "root")) {
        struct passwd *pw = getpwnam(cfg->user);
        if (pw && fchown(fd, pw->pw_uid, pw->pw_gid) != 0) {
            snprintf(err, errlen, "state-dir: cannot give %s to user %s: %s", dir, cfg->user,
                     strerror(errno));
            rc = -1;
        }
    }
    close(fd);
    return rc;
}

/* Publishes `o` (its reference moves to the runtime) and retires the previous rules. */
static void publish(lh_runtime *rt, lh_overlay *o)
{
    lh_overlay *old = rt->rules;
    rt->rules = o;
    atomic_store_explicit(&rt->live.overlay, o->nrules ? o : NULL, memory_order_release);
    uint64_t gen = atomic_fetch_add_explicit(&rt->gen, 1, memory_order_acq_rel) + 1;
    if (!old) return;
    lh_runtime_retired *r = realloc(rt->retired, (rt->nretired + 1) * sizeof *r);
    if (!r) { /* cannot track it: keeping it is safe, freeing it would not be */
        lh_warn("runtime rules: out of memory; an old copy is kept until exit");
        return;
    }
    rt->retired = r;
    r[rt->nretired++] = (lh_runtime_retired){old, gen};
    lh_admin_wake_loops(rt->admin); /* each wake-up is a quiescent point (runtime.h) */
}

/* Frees the retired rules every worker has moved past. */
static void reclaim(lh_runtime *rt)
{
    uint64_t min = UINT64_MAX;
    for (unsigned i = 1; i < lh_server_loops(rt->admin->srv); i++) {
        uint64_t g = atomic_load_explicit(&rt->seen[i], memory_order_acquire);
        if (g < min) min = g;
    }
    size_t k = 0;
    for (size_t i = 0; i < rt->nretired; i++) {
        if (rt->retired[i].gen <= min)
            lh_overlay_unref(rt->retired[i].o);
        else
            rt->retired[k++] = rt->retired[i];
    }
    rt->nretired = k;
}

void lh_runtime_quiescent(lh_runtime *rt, unsigned loop)
{
    if (!rt || loop >= LH_LOOPS_MAX) return;
    uint64_t g = atomic_load_explicit(&rt->gen, memory_order_acquire);
    atomic_store_explicit(&rt->seen[loop], g, memory_order_release);
}

lh_runtime *lh_runtime_start(lh_admin *a, char *err, size_t errlen)
{
    lh_server *s = a->srv;
    const lh_config *cfg = s->cfg;
    lh_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    rt->admin = a;
    atomic_init(&rt->live.overlay, NULL);
    atomic_init(&rt->live.pause_until, 0);
    atomic_init(&rt->gen, 0);
    for (unsigned i = 0; i < LH_LOOPS_MAX; i++)
        atomic_init(&rt->seen[i], 0);
    if (getrandom(&rt->salt, sizeof rt->salt, 0) != sizeof rt->salt) rt->salt = uv_hrtime();
    lh_overlay *o = NULL;
    char why[LH_ERR_MAX];
    bool persist = cfg->state_dir != NULL;
    if (persist && make_state_dir(cfg, why, sizeof why) != 0) {
        /* The default needs root (/var/lib): without it loophole still serves, as with the
         * control socket; a state-dir that was asked for must work. */
        if (strcmp(cfg->state_dir, LH_DEFAULT_STATE_DIR)) {
            snprintf(err, errlen, "%s", why);
            goto fail;
        }
        lh_warn("%s; runtime rules are kept in memory only", why);
        persist = false;
    }
    if (persist) {
        size_t n = strlen(cfg->state_dir) + sizeof "/runtime.list";
        if (!(rt->path = malloc(n))) goto oom;
        snprintf(rt->path, n, "%s/runtime.list", cfg->state_dir);
        if (!(o = lh_overlay_load(rt->path, why, sizeof why))) {
            snprintf(err, errlen, "%s", why);
            goto fail;
        }
        if (why[0]) lh_warn("runtime rules: %s", why);
        if (o->nrules) lh_info("runtime rules: %zu from %s", o->nrules, rt->path);
    } else if (!(o = lh_overlay_new())) {
        goto oom;
    }
    publish(rt, o);
    uv_timer_init(s->loop, &rt->pause_timer);
    rt->pause_timer.data = rt;
    rt->timer_open = true;
    return rt;
oom:
    snprintf(err, errlen, "out of memory for the runtime rules");
fail:
    free(rt->path);
    free(rt);
    return NULL;
}

void lh_runtime_stop(lh_runtime *rt)
{
    if (!rt || !rt->timer_open) return;
    rt->timer_open = false;
    uv_close((uv_handle_t *)&rt->pause_timer, NULL);
}

void lh_runtime_reread(lh_runtime *rt)
{
    rt->reread_done = false;
    lh_overlay_unref(rt->reread); /* a read whose reload was cancelled */
    rt->reread = NULL;
    if (!rt->path) return; /* not persisted: the rules in memory are the only copy */
    rt->reread_gen = atomic_load_explicit(&rt->gen, memory_order_acquire);
    rt->reread = lh_overlay_load(rt->path, rt->reread_err, sizeof rt->reread_err);
    rt->reread_done = true;
}

int lh_runtime_reread_apply(lh_runtime *rt, char *msg, size_t msglen)
{
    if (!rt->reread_done) return 0;
    rt->reread_done = false;
    lh_overlay *o = rt->reread;
    rt->reread = NULL;
    if (!o || rt->reread_err[0]) {
        snprintf(msg, msglen, "runtime rules: %s; the running ones kept (%zu)", rt->reread_err,
                 rt->rules ? rt->rules->nrules : (size_t)0);
        lh_overlay_unref(o);
        return -1;
    }
    /* loophole allow/block since the read wrote the file and published a newer set. */
    if (atomic_load_explicit(&rt->gen, memory_order_acquire) != rt->reread_gen) {
        lh_overlay_unref(o);
        return 0;
    }
    if (o->nrules || (rt->rules && rt->rules->nrules))
        lh_info("runtime rules: %zu from %s", o->nrules, rt->path);
    publish(rt, o);
    return 0;
}

void lh_runtime_free(lh_runtime *rt)
{
    if (!rt) return;
    lh_overlay_unref(rt->reread);
    for (size_t i = 0; i < rt->nretired; i++) /* every loop has ended */
        lh_overlay_unref(rt->retired[i].o);
    free(rt->retired);
    lh_overlay_unref(rt->rules);
    free(rt->path);
    free(rt);
}

/* ---- pause ------------------------------------------------------------------------------- */

static void duration_text(uint64_t s, char *out, size_t cap)
{
    if (s >= 3600)
        snprintf(out, cap, "%lluh%02llum", (unsigned long long)(s / 3600),
                 (unsigned long long)(s % 3600 / 60));
    else if (s >= 60)
        snprintf(out, cap, "%llum%02llus", (unsigned long long)(s / 60),
                 (unsigned long long)(s % 60));
    else
        snprintf(out, cap, "%llus", (unsigned long long)s);
}

/* The pause is over: the cache may hold answers that blocking would have stopped (a CNAME
 * to a blocked name is checked only when it comes from upstream), so it starts empty. */
static void pause_ended(lh_runtime *rt, const char *why)
{
    atomic_store_explicit(&rt->live.pause_until, 0, memory_order_relaxed);
    if (rt->timer_open) uv_timer_stop(&rt->pause_timer);
    lh_admin_flush_cache(rt->admin);
    lh_info("blocking resumed (%s); cache flushed", why);
}

static void on_pause_timer(uv_timer_t *t)
{
    pause_ended(t->data, "the pause ran out");
}

void lh_runtime_pause(lh_runtime *rt, uint64_t seconds, char *msg, size_t msglen)
{
    uint64_t now = uv_now(rt->admin->srv->loop);
    rt->paused_at_unix = (uint64_t)time(NULL);
    if (seconds == 0) {
        if (rt->timer_open) uv_timer_stop(&rt->pause_timer);
        atomic_store_explicit(&rt->live.pause_until, LH_PAUSE_FOREVER, memory_order_relaxed);
        snprintf(msg, msglen, "blocking paused until 'loophole resume'\n");
    } else {
        atomic_store_explicit(&rt->live.pause_until, now + seconds * 1000, memory_order_relaxed);
        if (rt->timer_open) uv_timer_start(&rt->pause_timer, on_pause_timer, seconds * 1000, 0);
        char d[32];
        duration_text(seconds, d, sizeof d);
        snprintf(msg, msglen, "blocking paused for %s ('loophole resume' ends it sooner)\n", d);
    }
    lh_info("%.*s", (int)strcspn(msg, "\n"), msg);
}

bool lh_runtime_resume(lh_runtime *rt, char *msg, size_t msglen)
{
    if (!lh_runtime_pause_left(rt)) {
        snprintf(msg, msglen, "blocking was not paused\n");
        return false;
    }
    pause_ended(rt, "resumed");
    snprintf(msg, msglen, "blocking resumed\n");
    return true;
}

uint64_t lh_runtime_pause_left(const lh_runtime *rt)
{
    uint64_t until =
        atomic_load_explicit(&((lh_runtime *)rt)->live.pause_until, memory_order_relaxed);
    uint64_t now = uv_now(rt->admin->srv->loop);
    if (!until || now >= until) return 0;
    return until == LH_PAUSE_FOREVER ? LH_PAUSE_FOREVER : until - now;
}

/* ---- rules -------------------------------------------------------------------------------- */

int lh_runtime_set_rule(lh_runtime *rt, const char *name, bool remove, bool allow, bool subdomains,
                        char *msg, size_t msglen)
{
    reclaim(rt);
    lh_overlay *o = lh_overlay_with(rt->rules, name, remove, allow, subdomains, msg, msglen);
    if (!o) return -1;
    if (rt->path && lh_overlay_save(o, rt->path, msg, msglen) != 0) {
        lh_overlay_unref(o);
        return -1;
    }
    publish(rt, o);
    char text[LH_NAME_MAX * 4 + 1];
    lh_name canon;
    lh_name_from_text(name, strlen(name), &canon);
    lh_name_to_text(canon.wire, text, sizeof text);
    if (remove)
        snprintf(msg, msglen, "%s: runtime rule removed; the lists decide again\n", text);
    else
        snprintf(msg, msglen, "%s%s: %s (runtime rule, %s)\n", text, subdomains ? " and below" : "",
                 allow ? "allowed" : "blocked", rt->path ? rt->path : "not saved: state-dir none");
    lh_info("runtime rule: %.*s", (int)strcspn(msg, "\n"), msg);
    return 0;
}

/* ---- control commands --------------------------------------------------------------------- */

int lh_runtime_command(lh_runtime *rt, const char *cmd, lh_sbuf *out)
{
    char msg[LH_ERR_MAX + 64];
    char word[16], arg[1024], extra[32], more[2];
    int n = sscanf(cmd, "%15s %1023s %31s %1s", word, arg, extra, more);
    if (n < 1) return -1;
    if (!strcmp(word, "pause")) {
        unsigned long long s = LH_PAUSE_DEFAULT_S;
        char *e;
        if (n >= 2) {
            errno = 0;
            s = strtoull(arg, &e, 10);
            if (errno || *e || arg[0] == '-' || n > 2 || s > 7ull * 86400) {
                lh_sbuf_printf(out, "pause takes a number of seconds up to 604800 (0: until "
                                    "resumed)\n");
                return 1;
            }
        }
        lh_runtime_pause(rt, s, msg, sizeof msg);
        lh_sbuf_printf(out, "%s", msg);
        return 0;
    }
    if (!strcmp(word, "resume")) {
        bool ok = lh_runtime_resume(rt, msg, sizeof msg);
        lh_sbuf_printf(out, "%s", msg);
        return ok ? 0 : 1;
    }
    bool allow = !strcmp(word, "allow"), block = !strcmp(word, "block"),
         unlist = !strcmp(word, "unlist");
    if (allow || block || unlist) {
        bool subs = n >= 3 && !strcmp(extra, "subdomains");
        if (n < 2 || n > 3 || (n == 3 && (!subs || unlist))) {
            lh_sbuf_printf(out, "usage: %s NAME%s\n", word, unlist ? "" : " [subdomains]");
            return 1;
        }
        int rc = lh_runtime_set_rule(rt, arg, unlist, allow, subs, msg, sizeof msg);
        lh_sbuf_printf(out, "%s%s", msg, rc ? "\n" : "");
        return rc ? 1 : 0;
    }
    if (!strcmp(word, "recent")) {
        /* recent [json] [blocked] [from CURSOR] */
        bool json = false;
        lh_recent_filter f = {0};
        const char *cursor = NULL;
        char copy[1024];
        snprintf(copy, sizeof copy, "%s", cmd);
        char *save = NULL, *t = strtok_r(copy, " ", &save);
        while ((t = strtok_r(NULL, " ", &save))) {
            if (!strcmp(t, "json"))
                json = true;
            else if (!strcmp(t, "blocked"))
                f.blocked = true;
            else if (!strcmp(t, "from") && (t = strtok_r(NULL, " ", &save)))
                cursor = t;
            else {
                lh_sbuf_printf(out, "usage: recent [json] [blocked] [from CURSOR]\n");
                return 1;
            }
        }
        if (!rt->nrings) {
            lh_sbuf_printf(out, "recent queries are not kept: set recent-queries = N (or http)\n");
            return 1;
        }
        lh_runtime_recent(rt, cursor, &f, cursor ? 1000 : 50, json, out);
        return 0;
    }
    return -1;
}

/* ---- reports ------------------------------------------------------------------------------ */

void lh_runtime_report(const lh_runtime *rt, lh_sbuf *b, bool json)
{
    uint64_t left = rt ? lh_runtime_pause_left(rt) : 0;
    size_t rules = rt && rt->rules ? rt->rules->nrules : 0;
    if (json) {
        lh_sbuf_printf(b,
                       "\"blocking\":{\"paused\":%s,\"until_resumed\":%s,\"remaining_s\":%llu,"
                       "\"paused_at\":%llu,\"runtime_rules\":%zu}",
                       left ? "true" : "false", left == LH_PAUSE_FOREVER ? "true" : "false",
                       left && left != LH_PAUSE_FOREVER ? (unsigned long long)(left + 999) / 1000
                                                        : 0ull,
                       left ? (unsigned long long)rt->paused_at_unix : 0ull, rules);
        return;
    }
    char d[32];
    if (!left)
        lh_sbuf_printf(b, "blocking    on");
    else if (left == LH_PAUSE_FOREVER)
        lh_sbuf_printf(b, "blocking    PAUSED until 'loophole resume'");
    else {
        duration_text((left + 999) / 1000, d, sizeof d);
        lh_sbuf_printf(b, "blocking    PAUSED, %s left", d);
    }
    lh_sbuf_printf(b, "; %zu runtime rule(s)%s%s\n", rules, rt && rt->path ? " in " : "",
                   rt && rt->path ? rt->path : "");
}

void lh_runtime_report_rules(const lh_runtime *rt, lh_sbuf *b, bool json)
{
    const lh_overlay *o = rt ? rt->rules : NULL;
    size_t n = o ? o->nrules : 0;
    if (json) {
        lh_sbuf_printf(b, "{\"path\":");
        lh_sbuf_json_str(b, rt && rt->path ? rt->path : "");
        lh_sbuf_printf(b, ",\"rules\":[");
        for (size_t i = 0; i < n; i++) {
            const lh_overlay_rule *r = &o->rules[i];
            lh_sbuf_printf(b, "%s{\"name\":", i ? "," : "");
            lh_sbuf_json_str(b, r->name);
            lh_sbuf_printf(b, ",\"action\":\"%s\",\"subdomains\":%s,\"line\":%u}",
                           r->allow ? "allow" : "block", r->subdomains ? "true" : "false", r->line);
        }
        lh_sbuf_printf(b, "]}");
        return;
    }
    lh_sbuf_printf(b, "runtime rules %s (checked before the lists): %zu\n",
                   rt && rt->path ? rt->path : "(not saved)", n);
    for (size_t i = 0; i < n; i++) {
        char text[LH_NAME_MAX * 4 + 8];
        lh_overlay_rule_text(&o->rules[i], text, sizeof text);
        lh_sbuf_printf(b, "  line %u: %-6s %s%s\n", o->rules[i].line,
                       o->rules[i].allow ? "allow" : "block", o->rules[i].name,
                       o->rules[i].subdomains ? " and below" : "");
    }
}

/* ---- recent queries ----------------------------------------------------------------------- */

static void client_text(const lh_runtime *rt, const lh_recent_rec *e, char *out, size_t cap)
{
    out[0] = 0;
    if (!e->family) return;
    size_t n = e->family == 6 ? 16 : 4;
    if (rt->admin->srv->cfg->query_log_clients == LH_QLOG_CLIENT_HASH) {
        uint64_t h = lh_hash_bytes(rt->salt, e->addr, n);
        snprintf(out, cap, "%016llx", (unsigned long long)(h * 0x9e3779b97f4a7c15ull));
        return;
    }
    inet_ntop(e->family == 6 ? AF_INET6 : AF_INET, e->addr, out, (socklen_t)cap);
}

static const char *list_text(const lh_runtime *rt, int list)
{
    const lh_policy *p = rt->admin->srv->policy;
    if (list == LH_LIST_RUNTIME) return rt->path ? rt->path : "runtime rules";
    if (list >= 0 && p && (size_t)list < p->blocks.nlists) return p->blocks.lists[list].path;
    return NULL;
}

typedef struct recent_item {
    lh_recent_rec rec;
    size_t order; /* gathered ring by ring, each ring oldest first */
} recent_item;

static int by_time(const void *a, const void *b)
{
    const recent_item *x = a, *y = b;
    if (x->rec.time_ms != y->rec.time_ms) return x->rec.time_ms < y->rec.time_ms ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static bool matches(const lh_runtime *rt, const lh_recent_rec *e, const char *name,
                    const lh_recent_filter *f)
{
    if (f->blocked && e->outcome != LH_OUTCOME_BLOCKED) return false;
    if (f->name && f->name[0] && !strstr(name, f->name)) return false;
    if (f->client && f->client[0]) {
        char c[64];
        client_text(rt, e, c, sizeof c);
        if (strcmp(c, f->client)) return false;
    }
    return true;
}

void lh_runtime_recent(const lh_runtime *rt, const char *cursor, const lh_recent_filter *f,
                       size_t max, bool json, lh_sbuf *out)
{
    uint64_t from[LH_LOOPS_MAX] = {0}, end[LH_LOOPS_MAX] = {0};
    bool follow = cursor && cursor[0];
    for (unsigned i = 0; follow && i < rt->nrings; i++) {
        char *e;
        from[i] = strtoull(cursor, &e, 10);
        cursor = *e == ',' ? e + 1 : e;
    }
    size_t cap = (size_t)rt->nrings * max;
    recent_item *items = cap ? malloc(cap * sizeof *items) : NULL;
    lh_recent_rec *tmp = malloc(max * sizeof *tmp);
    size_t n = 0;
    for (unsigned i = 0; items && tmp && i < rt->nrings; i++) {
        if (!rt->rings[i]) continue;
        size_t k = lh_recent_read(rt->rings[i], from[i], tmp, NULL, max, &end[i]);
        for (size_t j = 0; j < k; j++)
            items[n] = (recent_item){tmp[j], n}, n++;
    }
    free(tmp);
    if (items) qsort(items, n, sizeof *items, by_time);
    size_t first = n > max ? n - max : 0;
    if (json)
        lh_sbuf_printf(out, "{\"cursor\":\"");
    else
        lh_sbuf_printf(out, "cursor ");
    for (unsigned i = 0; i < rt->nrings; i++)
        lh_sbuf_printf(out, "%s%llu", i ? "," : "", (unsigned long long)end[i]);
    lh_sbuf_printf(out, json ? "\",\"queries\":[" : "\n");
    bool any = false;
    for (size_t i = first; i < n; i++) {
        const lh_recent_rec *e = &items[i].rec;
        char name[LH_NAME_MAX * 4 + 1] = "", rule[LH_NAME_MAX * 4 + 1] = "", client[64], type[16],
                                    when[32];
        if (e->name_len) lh_name_to_text(e->name, name, sizeof name);
        if (!matches(rt, e, name, f)) continue;
        if (e->name_len && e->match_label >= 0) { /* the suffix the rule matched */
            const uint8_t *p = e->name;
            for (int l = 0; l < e->match_label && *p; l++)
                p += 1 + *p;
            lh_name_to_text(p, rule, sizeof rule);
        }
        client_text(rt, e, client, sizeof client);
        const ldns_rr_descriptor *d = ldns_rr_descript(e->qtype);
        if (d && d->_name)
            snprintf(type, sizeof type, "%s", d->_name);
        else
            snprintf(type, sizeof type, "TYPE%u", e->qtype);
        const ldns_lookup_table *rc = ldns_lookup_by_id(ldns_rcodes, e->rcode);
        const char *rcode = e->has_rcode ? (rc && rc->name ? rc->name : "?") : "";
        const char *list = list_text(rt, e->list);
        if (json) {
            lh_sbuf_printf(out, "%s{\"time_ms\":%llu,\"client\":", any ? "," : "",
                           (unsigned long long)e->time_ms);
            lh_sbuf_json_str(out, client);
            lh_sbuf_printf(out, ",\"name\":");
            lh_sbuf_json_str(out, name);
            lh_sbuf_printf(out, ",\"type\":\"%s\",\"outcome\":\"%s\",\"rcode\":\"%s\"", type,
                           lh_outcome_names[e->outcome < LH_OUTCOME_COUNT ? e->outcome : 0], rcode);
            if (list) {
                lh_sbuf_printf(out, ",\"list\":");
                lh_sbuf_json_str(out, list);
            }
            if (rule[0]) {
                lh_sbuf_printf(out, ",\"rule\":");
                lh_sbuf_json_str(out, rule);
            }
            if (e->latency_us) lh_sbuf_printf(out, ",\"latency_us\":%u", e->latency_us);
            lh_sbuf_putc(out, '}');
        } else {
            time_t t = (time_t)(e->time_ms / 1000);
            struct tm tm;
            localtime_r(&t, &tm);
            strftime(when, sizeof when, "%H:%M:%S", &tm);
            lh_sbuf_printf(out, "%s.%03u  %-15s %-40s %-6s %-9s %-8s%s%s%s\n", when,
                           (unsigned)(e->time_ms % 1000), client[0] ? client : "-",
                           name[0] ? name : "-", type,
                           lh_outcome_names[e->outcome < LH_OUTCOME_COUNT ? e->outcome : 0], rcode,
                           list ? " (" : "", list ? list : "", list ? ")" : "");
        }
        any = true;
    }
    if (json) lh_sbuf_printf(out, "]}\n");
    free(items);
}
