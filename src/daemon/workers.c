/* workers.c - see workers.h. Each worker is a resolver loop (lh_server) on its own thread and loop
 * (listeners bound with SO_REUSEPORT, its own forwarder, cache and counters) sharing the main
 * loop's policy, which is read-only; nothing on the query path is shared or locked.
 *
 * The main loop talks to a worker through one uv_async and a few fields under the worker's
 * mutex: a new policy after a reload, a cache flush, a query-log reopen, stop. A worker
 * publishes a copy of its figures every LH_SNAPSHOT_MS for the reports.
 *
 * Worker lifecycle: created (thread started, it binds and reports back) -> running -> stop
 * requested (never woken again after that) -> its loop ends -> joined and freed by the main
 * thread after the main loop has ended. */
#include "loophole/log.h"
#include "loophole/runtime.h"
#include "loophole/workers.h"

#include <stdlib.h>
#include <string.h>

struct lh_worker {
    lh_workers *set;
    uv_thread_t thread;
    uv_loop_t loop;
    lh_server *srv;
    uv_async_t wake;
    uv_timer_t publish;
    uv_sem_t ready;
    int start_rc;
    char err[LH_ERR_MAX];
    bool running;    /* started, and its thread must be joined */
    bool stop_sent;  /* main side: no wake-ups after stop */
    uv_mutex_t lock; /* guards what follows */
    lh_policy *next_policy;
    bool flush, reopen, stop;
    lh_snapshot snap;
};

static void publish(lh_worker *w)
{
    uv_mutex_lock(&w->lock);
    lh_server_collect(w->srv, &w->snap);
    uv_mutex_unlock(&w->lock);
}

static void on_publish(uv_timer_t *t)
{
    publish(t->data);
}

static void on_wake(uv_async_t *a)
{
    lh_worker *w = a->data;
    lh_server *s = w->srv;
    uv_mutex_lock(&w->lock);
    lh_policy *p = w->next_policy;
    bool flush = w->flush, reopen = w->reopen, stop = w->stop;
    w->next_policy = NULL;
    w->flush = w->reopen = false;
    uv_mutex_unlock(&w->lock);
    if (w->set->rt) lh_runtime_quiescent(w->set->rt, s->loop_index); /* see runtime.h */
    if (p) lh_server_set_policy(s, p);
    if (flush) lh_server_flush_cache(s);
    if (reopen && s->qlog) lh_qlog_reopen(s->qlog);
    if (stop) {
        publish(w); /* the final figures */
        lh_server_stop(s);
        uv_close((uv_handle_t *)&w->wake, NULL);
        uv_close((uv_handle_t *)&w->publish, NULL);
    }
}

static void worker_main(void *arg)
{
    lh_worker *w = arg;
    const lh_server *m = w->set->main;
    lh_runtime *rt = w->set->rt;
    w->srv->nloops = m->nloops;
    w->srv->live = rt ? &rt->live : NULL;
    w->srv->rules_path = m->rules_path;
    w->srv->loop_index = (unsigned)(w - w->set->w) + 1;
    lh_policy_ref(m->policy);
    w->start_rc = lh_server_start(w->srv, &w->loop, m->cfg, m->policy, true, w->err, sizeof w->err);
    if (w->start_rc == 0) {
        uv_async_init(&w->loop, &w->wake, on_wake);
        w->wake.data = w;
        uv_timer_init(&w->loop, &w->publish);
        w->publish.data = w;
        uv_timer_start(&w->publish, on_publish, LH_SNAPSHOT_MS, LH_SNAPSHOT_MS);
    }
    if (w->start_rc == 0 && rt && w->srv->loop_index < LH_LOOPS_MAX)
        rt->rings[w->srv->loop_index] = w->srv->recent; /* read after the semaphore */
    uv_sem_post(&w->ready);
    if (w->start_rc == 0) uv_run(&w->loop, UV_RUN_DEFAULT);
    lh_server_free(w->srv);
    uv_loop_close(&w->loop);
}

int lh_workers_start(lh_workers *ws, const lh_server *m, lh_runtime *rt, char *err, size_t errlen)
{
    unsigned n = m->nloops - 1;
    ws->main = m;
    ws->rt = rt;
    ws->w = calloc(n, sizeof *ws->w);
    if (!ws->w) {
        snprintf(err, errlen, "out of memory for %u worker loops", n);
        return -1;
    }
    ws->n = n;
    for (unsigned i = 0; i < n; i++) {
        lh_worker *w = &ws->w[i];
        w->set = ws;
        w->srv = calloc(1, sizeof *w->srv);
        if (!w->srv || uv_loop_init(&w->loop) != 0) {
            free(w->srv);
            w->srv = NULL;
            snprintf(err, errlen, "cannot create worker loop %u", i + 1);
            return -1;
        }
        uv_mutex_init(&w->lock);
        uv_sem_init(&w->ready, 0);
        if (uv_thread_create(&w->thread, worker_main, w) != 0) {
            snprintf(err, errlen, "cannot start worker thread %u", i + 1);
            uv_loop_close(&w->loop);
            return -1;
        }
        w->running = true;
        uv_sem_wait(&w->ready); /* bound, or failed: before the main loop drops privileges */
        if (w->start_rc != 0) {
            snprintf(err, errlen, "worker loop %u: %s", i + 1, w->err);
            w->stop_sent = true; /* its loop never ran: nothing to wake */
            return -1;
        }
    }
    lh_info("%u event loops (threads), listeners shared with SO_REUSEPORT", m->nloops);
    return 0;
}

/* Sets what the worker should do under its lock, then wakes it. */
#define WORKER_EACH(ws, w)                                                                         \
    for (lh_worker *w = (ws)->w; (ws)->w && w < (ws)->w + (ws)->n; w++)                            \
        if (w->running && !w->stop_sent)

void lh_workers_set_policy(lh_workers *m, lh_policy *p)
{
    WORKER_EACH(m, w)
    {
        lh_policy_ref(p);
        uv_mutex_lock(&w->lock);
        lh_policy *stale = w->next_policy; /* never taken: replaced by the newer one */
        w->next_policy = p;
        uv_mutex_unlock(&w->lock);
        lh_policy_free(stale);
        uv_async_send(&w->wake);
    }
}

/* Raises one of the worker's request flags under its lock and wakes it. */
static void request(lh_worker *w, bool *flag)
{
    uv_mutex_lock(&w->lock);
    *flag = true;
    uv_mutex_unlock(&w->lock);
    uv_async_send(&w->wake);
}

void lh_workers_flush_cache(lh_workers *m)
{
    WORKER_EACH(m, w) request(w, &w->flush);
}

void lh_workers_reopen_log(lh_workers *m)
{
    WORKER_EACH(m, w) request(w, &w->reopen);
}

void lh_workers_wake(lh_workers *m)
{
    WORKER_EACH(m, w) uv_async_send(&w->wake);
}

void lh_workers_stop(lh_workers *m)
{
    WORKER_EACH(m, w)
    {
        request(w, &w->stop);
        w->stop_sent = true;
    }
}

void lh_workers_join(lh_workers *m)
{
    if (!m->w) return;
    lh_workers_stop(m); /* in case the main loop ended another way (start-up failure) */
    for (unsigned i = 0; i < m->n; i++) {
        lh_worker *w = &m->w[i];
        if (w->running) {
            uv_thread_join(&w->thread);
            uv_mutex_destroy(&w->lock);
            uv_sem_destroy(&w->ready);
            lh_policy_free(w->next_policy);
        }
        free(w->srv);
    }
    free(m->w);
    m->w = NULL;
    m->n = 0;
}

void lh_workers_add_snapshots(const lh_workers *m, lh_snapshot *out)
{
    for (unsigned i = 0; m->w && i < m->n; i++) {
        lh_worker *w = &m->w[i];
        if (!w->running) continue;
        uv_mutex_lock(&w->lock);
        lh_snapshot_add(out, &w->snap);
        uv_mutex_unlock(&w->lock);
    }
}
