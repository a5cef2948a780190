/* server.c - daemon lifecycle (start, signals, reload, graceful stop) and the query path. */
#include "loophole/server.h"
#include "loophole/control.h"
#include "loophole/log.h"
#include "loophole/dashboard.h"
#include "loophole/metrics.h"
#include "loophole/recent.h"
#include "loophole/runtime.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LH_STOP_GRACE_MS 800 /* in-flight work gets this long after SIGTERM; exit is < 1 s */
#define LH_RRL_SLOTS 4096    /* client networks tracked at once */
#define LH_RRL_SLIP 2        /* every 2nd answer over the limit is sent truncated, not dropped */

void lh_server_query_done(lh_server *s, lh_query_end *q)
{
    lh_stats_record(&s->stats, q);
    if (s->recent) lh_recent_push(s->recent, q, uv_now(s->loop));
    if (!s->qlog) return;
    if (q->list >= 0 && s->policy && (size_t)q->list < s->policy->blocks.nlists)
        q->list_path = s->policy->blocks.lists[q->list].path; /* only the log shows it */
    else if (q->list == LH_LIST_RUNTIME && s->rt)
        q->list_path = s->rt->path ? s->rt->path : "runtime rules";
    lh_qlog_write(s->qlog, q);
}

/* Accounts for an answer built here (not forwarded) and returns its length. */
static size_t answered(lh_server *s, lh_query_end *q, const uint8_t *out, size_t n)
{
    q->answer = n ? out : NULL;
    q->answer_len = n;
    lh_server_query_done(s, q);
    return n;
}

size_t lh_server_answer(lh_server *s, const uint8_t *pkt, size_t len, const lh_client *client,
                        uint8_t *out, size_t cap)
{
    lh_decision d; /* the decision step: parse here, decide after the daemon's own checks */
    const lh_msg *m = &d.msg;
    uint16_t our_udp = s->cfg->edns_udp_size;
    lh_parse_result r = lh_decide_parse(pkt, len, &d);
    size_t limit = client->udp ? lh_msg_udp_limit(m, our_udp) : LH_MSG_MAX;
    lh_query_end q = {.msg = m,
                      .client = &client->peer,
                      .outcome = LH_OUTCOME_ERROR,
                      .list = -1,
                      .match_label = -1,
                      .start_ns = client->start_ns};
    switch (r) {
    case LH_PARSE_OK:
        if (client->udp && s->exposed && !lh_config_client_allowed(s->cfg, &client->peer.sa)) {
            s->stats.refused_acl++;
            lh_writer w;
            lh_writer_begin(&w, out, cap, m, LH_RCODE_REFUSED, false);
            q.outcome = LH_OUTCOME_REFUSED;
            return answered(s, &q, out, lh_writer_finish(&w, m, limit, our_udp, LH_EDE_PROHIBITED));
        }
        break;
    case LH_PARSE_DROP:
        s->stats.dropped++;
        return 0;
    case LH_PARSE_FORMERR:
        s->stats.formerr++;
        return answered(s, &q, out, lh_answer_error(m, LH_RCODE_FORMERR, out, cap, limit, our_udp));
    case LH_PARSE_NOTIMP:
        s->stats.notimp++;
        return answered(s, &q, out, lh_answer_notimp_opcode(m, out, cap, limit, our_udp));
    case LH_PARSE_BADVERS:
        s->stats.badvers++;
        return answered(s, &q, out, lh_answer_error(m, LH_RCODE_BADVERS, out, cap, limit, our_udp));
    }
    if (client->udp && s->rrl_on && !lh_addr_is_loopback(&client->peer.sa)) {
        uint32_t count;
        if (!lh_ratelimit_allow(&s->rrl, &client->peer.sa, uv_now(s->loop), &count)) {
            /* Over the limit: no amplification. A real client behind a busy network still
             * gets every 2nd answer as an empty TC=1 one, and retries over TCP. */
            if ((count - s->rrl.per_second) % LH_RRL_SLIP) {
                s->stats.rrl_dropped++;
                return 0;
            }
            s->stats.rrl_truncated++;
            lh_writer w;
            lh_writer_begin(&w, out, cap, m, LH_RCODE_NOERROR, false);
            size_t n = lh_writer_finish(&w, m, limit, our_udp, -1);
            if (n) out[2] |= LH_FLAG_TC >> 8;
            return n;
        }
    }
    if (s->leak)
        return lh_leak_zone_answer(s->leak, m, &client->peer, uv_now(s->loop), out, cap, limit,
                                   our_udp);

    lh_decide_verdict(s->policy, lh_runtime_overlay(s->rt), lh_runtime_paused(s->rt, s->loop), &d);
    const lh_verdict *v = &d.verdict;
    q.name_hash = d.hashes[0];
    q.list = v->list;
    q.match_label = v->match_label;
    switch (v->kind) {
    case LH_VERDICT_LOCAL:
    case LH_VERDICT_REFUSED:
        q.outcome = v->origin == LH_ORIGIN_BLOCKLIST ? LH_OUTCOME_BLOCKED
                    : v->kind == LH_VERDICT_LOCAL    ? LH_OUTCOME_LOCAL
                                                     : LH_OUTCOME_REFUSED;
        return answered(s, &q, out, lh_answer_build(m, v, out, cap, limit, our_udp));
    case LH_VERDICT_FORWARD:
        break;
    }
    return lh_forward_query(&s->fwd, m, d.hashes[0], v->group, client, out, cap, limit);
}

/* --- the forwarder's environment: where its answers go ---------------------------------- */

static void fwd_send(void *ctx, const lh_client *c, uint8_t *answer, size_t len)
{
    (void)ctx;
    if (!len) return;
    if (c->udp) {
        lh_udp_send(c->udp, answer, len, &c->peer.sa);
    } else if (c->tcp && lh_tcp_is_open(c->tcp)) {
        lh_wr16(answer - 2, (uint16_t)len); /* the room the forwarder leaves for the prefix */
        lh_tcp_send(c->tcp, answer - 2, len + 2);
    }
}

static void fwd_hold(void *ctx, const lh_client *c)
{
    (void)ctx;
    if (c->tcp) lh_tcp_hold(c->tcp);
}

static void fwd_release(void *ctx, const lh_client *c)
{
    (void)ctx;
    if (c->tcp) lh_tcp_release(c->tcp);
}

static void fwd_query_done(void *ctx, lh_query_end *q)
{
    lh_server_query_done(ctx, q);
}

static void fwd_idle(void *ctx)
{
    lh_server_maybe_finish_stop(ctx);
}

static int forwarder_start(lh_server *s, char *err, size_t errlen)
{
    lh_forward_env env = {.loop = s->loop,
                          .cfg = s->cfg,
                          .policy = &s->policy,
                          .rt = &s->rt,
                          .loops = lh_server_loops(s),
                          .ctx = s,
                          .send = fwd_send,
                          .hold = fwd_hold,
                          .release = fwd_release,
                          .query_done = fwd_query_done,
                          .idle = fwd_idle};
    return lh_forward_init(&s->fwd, &env, NULL, err, errlen);
}

void lh_server_flush_cache(lh_server *s)
{
    if (s->fwd_ready) lh_forward_flush_cache(&s->fwd);
    lh_workers_flush_cache(s);
}

int lh_reuseport(uv_handle_t *h)
{
    uv_os_fd_t fd;
    int one = 1;
    int r = uv_fileno(h, &fd);
    if (r == 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        r = uv_translate_sys_error(errno);
    return r;
}

void lh_explain_bind_error(int uv_err, const lh_sockaddr *addr, const char *proto, char *err,
                           size_t errlen)
{
    char a[64];
    lh_addr_format(addr, a, sizeof a);
    unsigned port = ntohs(addr->sa.sa_family == AF_INET6 ? addr->v6.sin6_port : addr->v4.sin_port);
    if (uv_err == UV_EACCES || uv_err == UV_EPERM) {
        snprintf(err, errlen,
                 "cannot listen on %s/%s: permission denied. Ports below 1024 need root or the "
                 "CAP_NET_BIND_SERVICE capability (e.g. 'setcap cap_net_bind_service=+ep "
                 "/path/to/loophole'), or in a container the network namespace's sysctl "
                 "net.ipv4.ip_unprivileged_port_start=%u; or use an unprivileged port, e.g. "
                 "--listen 127.0.0.53:5353",
                 a, proto, port);
    } else if (uv_err == UV_EADDRINUSE) {
        snprintf(err, errlen,
                 "cannot listen on %s/%s: address already in use.%s Check with "
                 "'ss -lunp sport = :%u'. Either stop the other server (for systemd-resolved: "
                 "set DNSStubListener=no in /etc/systemd/resolved.conf and restart it), or run "
                 "loophole on another address, e.g. --listen 127.0.0.2:53 "
                 "(see docs/system-resolver.md)",
                 a, proto,
                 port == 53 ? " On systemd machines 127.0.0.53:53 is usually held by "
                              "systemd-resolved's stub listener."
                            : "",
                 port);
    } else if (uv_err == UV_EADDRNOTAVAIL) {
        snprintf(err, errlen,
                 "cannot listen on %s/%s: the address is not configured on any interface of "
                 "this machine",
                 a, proto);
    } else {
        snprintf(err, errlen, "cannot listen on %s/%s: %s", a, proto, uv_strerror(uv_err));
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    lh_server *s = h->data;
    if (signum == SIGUSR1) {
        if (s->qlog) lh_qlog_reopen(s->qlog);
        lh_workers_reopen_log(s);
        return;
    }
    if (s->leak && (signum == SIGHUP || signum == SIGUSR2)) return; /* nothing to reload */
    if (signum == SIGHUP) {
        lh_info("SIGHUP: reloading");
        lh_server_reload(s);
        return;
    }
    if (signum == SIGUSR2) {
        lh_info("SIGUSR2: flushing the cache (%zu entries)", s->fwd.cache.count);
        lh_server_flush_cache(s);
        return;
    }
    lh_info("%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    lh_server_stop(s);
}

/* Answer rate limiting, for listeners that non-loopback clients can reach: per /24 (IPv4)
 * and /56 (IPv6), as BIND's RRL groups them. */
static int rrl_start(lh_server *s, char *err, size_t errlen)
{
    const lh_config *cfg = s->cfg;
    if (!s->exposed || !cfg->rate_limit) return 0;
    unsigned loops = lh_server_loops(s); /* a client may be spread over the loops */
    uint32_t share = (cfg->rate_limit + loops - 1) / loops;
    if (lh_ratelimit_init(&s->rrl, LH_RRL_SLOTS, share, 24, 56) != 0) {
        snprintf(err, errlen, "out of memory for the rate limit");
        return -1;
    }
    s->rrl_on = true;
    return 0;
}

/* The control socket, the metrics endpoint and the query log: all bound or opened here,
 * before privileges are dropped. */
static int observability_start(lh_server *s, char *err, size_t errlen)
{
    const lh_config *cfg = s->cfg;
    s->stats.started_unix = (uint64_t)time(NULL);
    if (cfg->query_log &&
        !(s->qlog = lh_qlog_open(s->loop, cfg->query_log,
                                 (enum lh_qlog_clients)cfg->query_log_clients, err, errlen)))
        return -1;
    int recent = cfg->recent_queries >= 0 ? cfg->recent_queries
                 : cfg->has_http          ? LH_RECENT_DEFAULT
                                          : 0;
    if (recent > 0 &&
        !(s->recent = lh_recent_new((size_t)recent, cfg->query_log_clients != LH_QLOG_CLIENT_NONE,
                                    uv_now(s->loop)))) {
        snprintf(err, errlen, "out of memory for %d recent queries", recent);
        return -1;
    }
    if (s->is_worker) return 0; /* the rest belongs to the main loop */
    if (!(s->rt = lh_runtime_start(s, err, errlen))) return -1;
    s->rt->rings[0] = s->recent;
    s->rt->nrings = s->recent ? lh_server_loops(s) : 0;
    if (cfg->has_http && !(s->dashboard = lh_dashboard_start(s, err, errlen))) return -1;
    if (cfg->has_metrics && !(s->metrics = lh_metrics_start(s, err, errlen))) return -1;
    if (cfg->control_socket) {
        char why[LH_ERR_MAX];
        s->control = lh_control_start(s, why, sizeof why);
        if (!s->control) {
            /* The default path needs root (/run): without it loophole still serves. */
            if (strcmp(cfg->control_socket, LH_DEFAULT_CONTROL_SOCKET)) {
                snprintf(err, errlen, "%s", why);
                return -1;
            }
            /* Say what is lost: in a container with a read-only root filesystem this is the
             * usual cause, and the daemon otherwise looks healthy. */
            lh_warn("%s; running without a control socket: 'loophole stats', 'reload', "
                    "'cache flush' and 'lists' will not reach this daemon (SIGHUP still "
                    "reloads). Give it a writable directory for %s (in a container: a tmpfs or "
                    "an emptyDir there)",
                    why, cfg->control_socket);
        }
    }
    return 0;
}

static void observability_stop(lh_server *s)
{
    lh_control_stop(s->control);
    lh_metrics_stop(s->metrics);
    lh_dashboard_stop(s->dashboard);
    lh_runtime_stop(s->rt);
    s->control = NULL;
    s->metrics = NULL;
    s->dashboard = NULL;
}

int lh_server_start(lh_server *s, uv_loop_t *loop, const lh_config *cfg, lh_policy *policy,
                    char *err, size_t errlen)
{
    s->loop = loop;
    s->cfg = cfg;
    s->policy = policy;
    for (unsigned i = 0; i < cfg->nlisten; i++) /* only loopback can reach loopback listeners */
        s->exposed = s->exposed || !lh_addr_is_loopback(&cfg->listen[i].sa);
    if (!s->leak) {
        if (forwarder_start(s, err, errlen) != 0) return -1;
        s->fwd_ready = true;
    }
    for (unsigned i = 0; i < cfg->nlisten; i++) {
        if (lh_udp_listen(s, &s->udp[i], &cfg->listen[i], err, errlen) != 0) goto fail;
        if (lh_tcp_listen(s, &s->tcp[i], &cfg->listen[i], err, errlen) != 0) {
            lh_udp_close(s->udp[i]);
            s->udp[i] = NULL;
            goto fail;
        }
        s->nlisten++;
        char a[64];
        lh_addr_format(&cfg->listen[i], a, sizeof a);
        if (!s->is_worker) lh_info("listening on %s (udp, tcp)", a);
    }
    if (!s->leak && (rrl_start(s, err, errlen) != 0 || observability_start(s, err, errlen) != 0))
        goto fail;
    if (!s->is_worker && !s->leak && s->nloops > 1 && lh_workers_start(s, err, errlen) != 0)
        goto fail;
    if (!s->is_worker) { /* signals go to the main loop, which tells the workers */
        uv_signal_t *sigs[] = {&s->sig_term, &s->sig_int, &s->sig_hup, &s->sig_usr2, &s->sig_usr1};
        const int nums[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR2, SIGUSR1};
        for (int i = 0; i < 5; i++) {
            uv_signal_init(loop, sigs[i]);
            sigs[i]->data = s;
            uv_signal_start(sigs[i], on_signal, nums[i]);
        }
    }
    /* Never keeps the loop alive by itself: it only bounds how long a stop may take. */
    uv_timer_init(loop, &s->stop_timer);
    s->stop_timer.data = s;
    uv_unref((uv_handle_t *)&s->stop_timer);
    s->started = true;
    return 0;
fail:
    lh_workers_join(s);
    for (unsigned i = 0; i < s->nlisten; i++) {
        lh_udp_close(s->udp[i]);
        lh_tcp_close(s->tcp[i]);
        s->udp[i] = NULL;
        s->tcp[i] = NULL;
    }
    s->nlisten = 0;
    observability_stop(s);
    lh_qlog_close(s->qlog);
    s->qlog = NULL;
    if (s->fwd_ready) lh_forward_shutdown(&s->fwd);
    return -1;
}

/* Stop, second half: nothing is waiting for an upstream any more. Closing the UDP sockets
 * and the upstream channels lets the loop end once the TCP connections have drained. */
void lh_server_maybe_finish_stop(lh_server *s)
{
    if (!s->stopping || s->finished || (s->fwd_ready && lh_forward_pending(&s->fwd))) return;
    s->finished = true;
    for (unsigned i = 0; i < s->nlisten; i++) {
        lh_udp_close(s->udp[i]);
        s->udp[i] = NULL;
    }
    s->nlisten = 0;
    if (s->fwd_ready) lh_forward_shutdown(&s->fwd);
    lh_qlog_close(s->qlog); /* every query has been answered and logged */
    s->qlog = NULL;
}

static void on_stop_timeout(uv_timer_t *t)
{
    lh_server *s = t->data;
    if (s->fwd_ready && lh_forward_pending(&s->fwd))
        lh_warn("stop: answering %u question(s) still waiting for upstreams with SERVFAIL",
                lh_forward_pending(&s->fwd));
    if (s->fwd_ready) lh_forward_fail_all(&s->fwd); /* answers them; then maybe_finish_stop */
    lh_server_maybe_finish_stop(s);
    if (s->nconns)
        lh_warn("stop: closing %u connection(s) still busy after %d ms", s->nconns,
                LH_STOP_GRACE_MS);
    lh_tcp_conns_abort(s);
}

/* Stop, first half: accept nothing new, keep answering what is in flight. */
void lh_server_stop(lh_server *s)
{
    if (s->stopping || !s->started) return;
    s->stopping = true;
    for (unsigned i = 0; i < s->nlisten; i++) {
        lh_udp_stop_reading(s->udp[i]);
        lh_tcp_close(s->tcp[i]);
        s->tcp[i] = NULL;
    }
    lh_tcp_conns_shutdown(s);
    if (!s->is_worker) {
        uv_close((uv_handle_t *)&s->sig_term, NULL);
        uv_close((uv_handle_t *)&s->sig_int, NULL);
        uv_close((uv_handle_t *)&s->sig_hup, NULL);
        uv_close((uv_handle_t *)&s->sig_usr2, NULL);
        uv_close((uv_handle_t *)&s->sig_usr1, NULL);
        observability_stop(s);
        lh_workers_stop(s);
    }
    uv_timer_start(&s->stop_timer, on_stop_timeout, LH_STOP_GRACE_MS, 0);
    lh_server_maybe_finish_stop(s);
}

void lh_server_free(lh_server *s)
{
    lh_workers_join(s); /* their loops end on their own once told to stop */
    if (s->started && !uv_is_closing((uv_handle_t *)&s->stop_timer))
        uv_close((uv_handle_t *)&s->stop_timer, NULL);
    uv_run(s->loop, UV_RUN_DEFAULT); /* let the close callbacks run */
    if (s->fwd_ready) lh_forward_free(&s->fwd);
    lh_policy_free(s->policy);
    lh_policy_free(s->reload_result);
    lh_ratelimit_free(&s->rrl);
    s->policy = s->reload_result = NULL;
    lh_recent_free(s->recent);
    s->recent = NULL;
    if (!s->is_worker) { /* every loop has ended: nothing reads the runtime rules any more */
        lh_runtime_free(s->rt);
        s->rt = NULL;
    }
}

static void reload_work(uv_work_t *req)
{
    lh_server *s = req->data;
    /* Building a big list takes a core for a second: at a lower priority, so that an event
     * loop sharing that core keeps answering (the pool thread stays niced; it only ever does
     * background work). */
    setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
    s->reload_result = lh_policy_build(s->cfg, s->reload_err, sizeof s->reload_err);
    if (s->rt) lh_runtime_reread(s->rt);
}

static void reload_done(uv_work_t *req, int status)
{
    lh_server *s = req->data;
    lh_counters *st = &s->stats;
    char msg[LH_ERR_MAX];
    s->reloading = false;
    st->last_reload_unix = (uint64_t)time(NULL);
    /* runtime.list first: a broken line there fails the reload (its rules stay as they ran)
     * even when the lists themselves were swapped in, so that `loophole reload` says so. */
    char rules_err[LH_ERR_MAX];
    bool rules_ok =
        status != 0 || !s->rt || lh_runtime_reread_apply(s->rt, rules_err, sizeof rules_err) == 0;
    if (!rules_ok) lh_err("reload: %s", rules_err);
    if (status == 0 && s->reload_result) {
        lh_policy *old = s->policy;
        /* The start-up warned about a missing default hosts file; say only what changed. */
        if (s->reload_result->hosts_missing && !old->hosts_missing)
            lh_warn("reload: %s does not exist any more: serving without a hosts file",
                    s->cfg->hosts_file);
        else if (old->hosts_missing && s->reload_result->has_hosts)
            lh_info("reload: %s exists now: its names are answered", s->cfg->hosts_file);
        s->policy = s->reload_result;
        s->reload_result = NULL;
        lh_policy_free(old); /* queries are answered on this thread: nothing else holds it */
        size_t rules = 0;
        for (size_t i = 0; i < s->policy->blocks.nlists; i++)
            rules += s->policy->blocks.lists[i].counts.rules;
        snprintf(msg, sizeof msg, "%zu list(s) with %zu rules, %zu hosts names",
                 s->policy->blocks.nlists, rules,
                 s->policy->has_hosts ? s->policy->hosts.nentries : (size_t)0);
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
        memset(st->blocked_by_list, 0, sizeof st->blocked_by_list); /* list indices changed */
        lh_workers_set_policy(s, s->policy);
    } else {
        snprintf(msg, sizeof msg, "%s", s->reload_err[0] ? s->reload_err : "out of memory");
        lh_err("reload failed, keeping the current configuration: %s", msg);
        st->reloads_failed++;
        st->last_reload_ok = false;
        snprintf(st->last_reload_error, sizeof st->last_reload_error, "%s", msg);
    }
    lh_control_reload_done(s->control, status == 0 && st->last_reload_ok, msg);
    if (s->reload_again && !s->stopping) {
        s->reload_again = false;
        lh_server_reload(s);
    }
}

void lh_server_reload(lh_server *s)
{
    if (s->stopping) return;
    if (s->reloading) { /* coalesce: one more build after the current one */
        s->reload_again = true;
        return;
    }
    s->reloading = true;
    s->reload_req.data = s;
    s->reload_err[0] = 0;
    uv_queue_work(s->loop, &s->reload_req, reload_work, reload_done);
}
