/* daemon.c - the main loop's role (see daemon.h): signals, reload, the runtime rules, the
 * control socket, the metrics endpoint, the dashboard and the worker loops, around its own
 * resolver loop. */
#include "loophole/daemon.h"
#include "loophole/control.h"
#include "loophole/dashboard.h"
#include "loophole/log.h"
#include "loophole/metrics.h"
#include "loophole/runtime.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define D_OF(a) ((lh_daemon *)((char *)(a)-offsetof(lh_daemon, admin)))

/* --- the admin ops (admin.h) ----------------------------------------------------------- */

static void reload(lh_admin *a);

static void flush_cache(lh_admin *a)
{
    lh_daemon *d = D_OF(a);
    lh_server_flush_cache(&d->srv);
    lh_workers_flush_cache(&d->workers);
}

static void wake_loops(lh_admin *a)
{
    lh_workers_wake(&D_OF(a)->workers);
}

static void add_workers(const lh_admin *a, lh_snapshot *out)
{
    lh_workers_add_snapshots(&D_OF(a)->workers, out);
}

static const lh_admin_ops admin_ops = {.reload = reload,
                                       .flush_cache = flush_cache,
                                       .wake_loops = wake_loops,
                                       .add_workers = add_workers};

/* --- reload ------------------------------------------------------------------------------ */

static void reload_work(uv_work_t *req)
{
    lh_daemon *d = req->data;
    /* Building a big list takes a core for a second: at a lower priority, so that an event
     * loop sharing that core keeps answering (the pool thread stays niced; it only ever does
     * background work). */
    setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
    d->reload_result = lh_policy_rebuild(d->srv.cfg, d->reload_err, sizeof d->reload_err);
    if (d->admin.rt) lh_runtime_reread(d->admin.rt);
}

/* The new policy replaces the old one in every loop; says what changed. */
static void reload_swap(lh_daemon *d, char *msg, size_t msglen)
{
    lh_server *s = &d->srv;
    lh_policy *old = s->policy, *p = d->reload_result;
    /* The start-up warned about a missing default hosts file; say only what changed. */
    if (p->hosts_missing && !old->hosts_missing)
        lh_warn("reload: %s does not exist any more: serving without a hosts file",
                s->cfg->hosts_file);
    else if (old->hosts_missing && p->has_hosts)
        lh_info("reload: %s exists now: its names are answered", s->cfg->hosts_file);
    d->reload_result = NULL;
    lh_policy_handover(old, p); /* p's mapped tree is brought in once old is gone */
    lh_server_set_policy(s, p);
    size_t rules = 0;
    for (size_t i = 0; i < p->blocks.nlists; i++)
        rules += p->blocks.lists[i].counts.rules;
    snprintf(msg, msglen, "%zu list(s) with %zu rules, %zu hosts names", p->blocks.nlists, rules,
             p->has_hosts ? p->hosts.nentries : (size_t)0);
    lh_workers_set_policy(&d->workers, p);
}

static void reload_done(uv_work_t *req, int status)
{
    lh_daemon *d = req->data;
    lh_counters *st = &d->srv.stats;
    char msg[LH_ERR_MAX];
    d->admin.reloading = false;
    st->last_reload_unix = (uint64_t)time(NULL);
    /* runtime.list first: a broken line there fails the reload (its rules stay as they ran)
     * even when the lists themselves were swapped in, so that `loophole reload` says so. */
    char rules_err[LH_ERR_MAX];
    bool rules_ok = status != 0 || !d->admin.rt ||
                    lh_runtime_reread_apply(d->admin.rt, rules_err, sizeof rules_err) == 0;
    if (!rules_ok) lh_err("reload: %s", rules_err);
    if (status == 0 && d->reload_result) {
        reload_swap(d, msg, sizeof msg);
        lh_info("reload: done (%s)", msg);
        if (rules_ok) {
            st->reloads_ok++;
            st->last_reload_ok = true;
            st->last_reload_error[0] = 0;
        } else {
            snprintf(msg, sizeof msg, "%.400s; the lists were reloaded", rules_err);
            st->reloads_failed++;
            st->last_reload_ok = false;
            snprintf(st->last_reload_error, sizeof st->last_reload_error, "%s", msg);
        }
    } else {
        snprintf(msg, sizeof msg, "%s", d->reload_err[0] ? d->reload_err : "out of memory");
        lh_err("reload failed, keeping the current configuration: %s", msg);
        st->reloads_failed++;
        st->last_reload_ok = false;
        snprintf(st->last_reload_error, sizeof st->last_reload_error, "%s", msg);
    }
    lh_control_reload_done(d->control, status == 0 && st->last_reload_ok, msg);
    if (d->reload_again && !d->srv.stopping) {
        d->reload_again = false;
        reload(&d->admin);
    }
}

static void reload(lh_admin *a)
{
    lh_daemon *d = D_OF(a);
    if (d->srv.stopping) return;
    if (a->reloading) { /* coalesce: one more build after the current one */
        d->reload_again = true;
        return;
    }
    a->reloading = true;
    d->reload_req.data = d;
    d->reload_err[0] = 0;
    uv_queue_work(d->srv.loop, &d->reload_req, reload_work, reload_done);
}

/* --- signals, the main loop's services, start and stop ------------------------------------ */

static void on_signal(uv_signal_t *h, int signum)
{
    lh_daemon *d = h->data;
    if (signum == SIGUSR1) {
        if (d->srv.qlog) lh_qlog_reopen(d->srv.qlog);
        lh_workers_reopen_log(&d->workers);
        return;
    }
    if (signum == SIGHUP) {
        lh_info("SIGHUP: reloading");
        reload(&d->admin);
        return;
    }
    if (signum == SIGUSR2) {
        lh_info("SIGUSR2: flushing the cache (%zu entries)", d->srv.fwd.cache.count);
        flush_cache(&d->admin);
        return;
    }
    lh_info("%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    lh_daemon_stop(d);
}

static void signals_start(lh_daemon *d)
{
    /* Signals go to the main loop, which tells the workers. */
    uv_signal_t *sigs[] = {&d->sig_term, &d->sig_int, &d->sig_hup, &d->sig_usr2, &d->sig_usr1};
    const int nums[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR2, SIGUSR1};
    for (int i = 0; i < 5; i++) {
        uv_signal_init(d->srv.loop, sigs[i]);
        sigs[i]->data = d;
        uv_signal_start(sigs[i], on_signal, nums[i]);
    }
    d->signals_on = true;
}

static void signals_stop(lh_daemon *d)
{
    if (!d->signals_on) return;
    d->signals_on = false;
    uv_close((uv_handle_t *)&d->sig_term, NULL);
    uv_close((uv_handle_t *)&d->sig_int, NULL);
    uv_close((uv_handle_t *)&d->sig_hup, NULL);
    uv_close((uv_handle_t *)&d->sig_usr2, NULL);
    uv_close((uv_handle_t *)&d->sig_usr1, NULL);
}

static int control_start(lh_daemon *d, char *err, size_t errlen)
{
    const lh_config *cfg = d->srv.cfg;
    char why[LH_ERR_MAX];
    d->control = lh_control_start(&d->admin, why, sizeof why);
    if (d->control) return 0;
    /* The default path needs root (/run): without it loophole still serves. */
    if (strcmp(cfg->control_socket, LH_DEFAULT_CONTROL_SOCKET)) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    /* Say what is lost: in a container with a read-only root filesystem this is the usual
     * cause, and the daemon otherwise looks healthy. */
    lh_warn("%s; running without a control socket: 'loophole stats', 'reload', 'cache flush' "
            "and 'lists' will not reach this daemon (SIGHUP still reloads). Give it a writable "
            "directory for %s (in a container: a tmpfs or an emptyDir there)",
            why, cfg->control_socket);
    return 0;
}

/* The runtime rules, the dashboard, the metrics endpoint and the control socket: all bound
 * or opened here, before privileges are dropped. */
static int services_start(lh_daemon *d, char *err, size_t errlen)
{
    lh_server *s = &d->srv;
    const lh_config *cfg = s->cfg;
    lh_runtime *rt = lh_runtime_start(&d->admin, err, errlen);
    if (!rt) return -1;
    d->admin.rt = rt;
    s->live = &rt->live;
    s->rules_path = rt->path ? rt->path : "runtime rules";
    rt->rings[0] = s->recent;
    rt->nrings = s->recent ? lh_server_loops(s) : 0;
    if (cfg->has_http && !(d->admin.dashboard = lh_dashboard_start(&d->admin, err, errlen)))
        return -1;
    if (cfg->has_metrics && !(d->metrics = lh_metrics_start(&d->admin, err, errlen))) return -1;
    if (cfg->control_socket && control_start(d, err, errlen) != 0) return -1;
    return 0;
}

static void services_stop(lh_daemon *d)
{
    lh_control_stop(d->control);
    lh_metrics_stop(d->metrics);
    lh_dashboard_stop(d->admin.dashboard);
    lh_runtime_stop(d->admin.rt);
    d->control = NULL;
    d->metrics = NULL;
    d->admin.dashboard = NULL;
}

int lh_daemon_start(lh_daemon *d, uv_loop_t *loop, const lh_config *cfg, lh_policy *policy,
                    char *err, size_t errlen)
{
    lh_server *s = &d->srv;
    s->nloops = cfg->threads;
    d->admin.srv = s;
    d->admin.ops = &admin_ops;
    s->admin = &d->admin;
    if (lh_server_start(s, loop, cfg, policy, false, err, errlen) != 0)
        return -1; /* lh_daemon_free releases the policy */
    if (services_start(d, err, errlen) != 0 ||
        (s->nloops > 1 && lh_workers_start(&d->workers, s, d->admin.rt, err, errlen) != 0)) {
        lh_workers_join(&d->workers);
        services_stop(d);
        lh_server_stop(s);
        return -1;
    }
    signals_start(d);
    return 0;
}

void lh_daemon_stop(lh_daemon *d)
{
    if (d->srv.stopping || !d->srv.started) return;
    signals_stop(d);
    services_stop(d);
    lh_workers_stop(&d->workers);
    lh_server_stop(&d->srv);
}

void lh_daemon_free(lh_daemon *d)
{
    lh_workers_join(&d->workers); /* their loops end on their own once told to stop */
    signals_stop(d);
    lh_server_free(&d->srv);
    lh_policy_free(d->reload_result);
    d->reload_result = NULL;
    /* Every loop has ended: nothing reads the runtime rules any more. */
    lh_runtime_free(d->admin.rt);
    d->admin.rt = NULL;
}
