/* server.c - one resolver loop: the query path, the forwarder's environment, start and
 * graceful stop (see server.h). What only the main loop does is in daemon.c. */
#include "loophole/server.h"
#include "loophole/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define LH_STOP_GRACE_MS 800 /* in-flight work gets this long after SIGTERM; exit is < 1 s */
#define LH_RRL_SLOTS 4096    /* client networks tracked at once */
#define LH_RRL_SLIP 2        /* every 2nd answer over the limit is sent truncated, not dropped */

/* The query log's record of a query, with its list's path (only the log shows it). */
static void qlog_write(lh_server *s, lh_query_end *q)
{
    if (q->list >= 0 && s->policy && (size_t)q->list < s->policy->blocks.nlists)
        q->list_path = s->policy->blocks.lists[q->list].path;
    else if (q->list == LH_LIST_RUNTIME && s->rules_path)
        q->list_path = s->rules_path;
    lh_qlog_write(s->qlog, q);
}

/* Every answered query ends here exactly once: counters, the recent queries, the query log.
 * Inline: on a local answer's path a call of its own cost more than its two tests. */
static inline void query_done(lh_server *s, lh_query_end *q)
{
    lh_stats_record(&s->stats, q);
    if (s->recent) lh_recent_push(s->recent, q, uv_now(s->loop));
    if (s->qlog) qlog_write(s, q);
}

/* Accounts for an answer built here (not forwarded) and returns its length. */
static size_t answered(lh_server *s, lh_query_end *q, const uint8_t *out, size_t n)
{
    q->answer = n ? out : NULL;
    q->answer_len = n;
    query_done(s, q);
    return n;
}

size_t lh_server_answer(void *server, const uint8_t *pkt, size_t len, const lh_reply *client,
                        uint8_t *out, size_t cap)
{
    lh_server *s = server;
    lh_decision d; /* the decision step: parse here, decide after the daemon's own checks */
    const lh_msg *m = &d.msg;
    uint16_t our_udp = s->cfg->edns_udp_size;
    lh_parse_result r = lh_decide_parse(pkt, len, &d);
    size_t limit = client->datagram ? lh_msg_udp_limit(m, our_udp) : LH_MSG_MAX;
    lh_query_end q = {.msg = m,
                      .client = &client->peer,
                      .outcome = LH_OUTCOME_ERROR,
                      .list = -1,
                      .match_label = -1,
                      .start_ns = client->start_ns};
    switch (r) {
    case LH_PARSE_OK:
        if (client->datagram && s->exposed && !lh_config_client_allowed(s->cfg, &client->peer.sa)) {
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
    if (client->datagram && s->rrl_on && !lh_addr_is_loopback(&client->peer.sa)) {
        uint32_t count;
        if (!lh_ratelimit_allow(&s->rrl, &client->peer.sa, &count)) {
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
    lh_decide_verdict(s->policy, lh_overlay_live_rules(s->live),
                      lh_overlay_live_paused(s->live, s->loop), &d);
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

/* --- the forwarder's environment: what it reports to ------------------------------------ */

static void fwd_query_done(void *ctx, lh_query_end *q)
{
    query_done(ctx, q);
}

static void maybe_finish_stop(lh_server *s);

static void fwd_idle(void *ctx)
{
    maybe_finish_stop(ctx);
}

static int forwarder_start(lh_server *s, char *err, size_t errlen)
{
    lh_forward_env env = {.loop = s->loop,
                          .cfg = s->cfg,
                          .policy = &s->policy,
                          .live = &s->live,
                          .loops = lh_server_loops(s),
                          .ctx = s,
                          .query_done = fwd_query_done,
                          .idle = fwd_idle};
    return lh_forward_init(&s->fwd, &env, NULL, err, errlen);
}

void lh_server_flush_cache(lh_server *s)
{
    if (s->fwd_ready) lh_forward_flush_cache(&s->fwd);
}

void lh_server_set_policy(lh_server *s, lh_policy *p)
{
    lh_policy *old = s->policy;
    s->policy = p;
    lh_policy_free(old); /* queries are answered on this thread: nothing else holds it */
    memset(s->stats.blocked_by_list, 0, sizeof s->stats.blocked_by_list); /* indices changed */
}

/* Answer rate limiting, for listeners that non-loopback clients can reach: per /24 (IPv4)
 * and /56 (IPv6), as BIND's RRL groups them. */
static int rrl_start(lh_server *s, char *err, size_t errlen)
{
    const lh_config *cfg = s->cfg;
    if (!s->exposed || !cfg->rate_limit) return 0;
    unsigned loops = lh_server_loops(s); /* a client may be spread over the loops */
    uint32_t share = (cfg->rate_limit + loops - 1) / loops;
    if (lh_ratelimit_init(&s->rrl, &s->clock, LH_RRL_SLOTS, share, 24, 56) != 0) {
        snprintf(err, errlen, "out of memory for the rate limit");
        return -1;
    }
    s->rrl_on = true;
    return 0;
}

/* The query log and the recent queries: opened here, before privileges are dropped. */
static int records_start(lh_server *s, char *err, size_t errlen)
{
    const lh_config *cfg = s->cfg;
    if (cfg->query_log &&
        !(s->qlog = lh_qlog_open(s->loop, cfg->query_log,
                                 (enum lh_qlog_clients)cfg->query_log_clients, err, errlen)))
        return -1;
    s->net.timed = s->qlog != NULL;
    int recent = cfg->recent_queries >= 0 ? cfg->recent_queries
                 : cfg->has_http          ? LH_RECENT_DEFAULT
                                          : 0;
    if (recent > 0 &&
        !(s->recent = lh_recent_new((size_t)recent, cfg->query_log_clients != LH_QLOG_CLIENT_NONE,
                                    uv_now(s->loop)))) {
        snprintf(err, errlen, "out of memory for %d recent queries", recent);
        return -1;
    }
    return 0;
}

static void close_qlog(lh_server *s)
{
    lh_qlog_close(s->qlog);
    s->qlog = NULL;
    s->net.timed = false;
}

int lh_server_start(lh_server *s, uv_loop_t *loop, const lh_config *cfg, lh_policy *policy,
                    bool quiet, char *err, size_t errlen)
{
    s->loop = loop;
    lh_clock_init_loop(&s->clock, loop);
    s->cfg = cfg;
    s->policy = policy;
    s->stats.started_unix = (uint64_t)time(NULL);
    s->exposed = lh_listeners_exposed(cfg);
    s->net = (lh_listeners){.loop = loop,
                            .cfg = cfg,
                            .nloops = lh_server_loops(s),
                            .stats = &s->stats,
                            .answer = lh_server_answer,
                            .ctx = s,
                            .quiet = quiet};
    if (forwarder_start(s, err, errlen) != 0) return -1;
    s->fwd_ready = true;
    if (lh_listeners_open(&s->net, err, errlen) != 0 || rrl_start(s, err, errlen) != 0 ||
        records_start(s, err, errlen) != 0)
        goto fail;
    /* Never keeps the loop alive by itself: it only bounds how long a stop may take. */
    uv_timer_init(loop, &s->stop_timer);
    s->stop_timer.data = s;
    uv_unref((uv_handle_t *)&s->stop_timer);
    s->started = true;
    return 0;
fail:
    lh_listeners_close_udp(&s->net);
    close_qlog(s);
    lh_forward_shutdown(&s->fwd);
    return -1;
}

/* Stop, second half: nothing is waiting for an upstream any more. Closing the UDP sockets
 * and the upstream channels lets the loop end once the TCP connections have drained. */
static void maybe_finish_stop(lh_server *s)
{
    if (!s->stopping || s->finished || (s->fwd_ready && lh_forward_pending(&s->fwd))) return;
    s->finished = true;
    lh_listeners_close_udp(&s->net);
    if (s->fwd_ready) lh_forward_shutdown(&s->fwd);
    close_qlog(s); /* every query has been answered and logged */
}

static void on_stop_timeout(uv_timer_t *t)
{
    lh_server *s = t->data;
    if (s->fwd_ready && lh_forward_pending(&s->fwd))
        lh_warn("stop: answering %u question(s) still waiting for upstreams with SERVFAIL",
                lh_forward_pending(&s->fwd));
    if (s->fwd_ready) lh_forward_fail_all(&s->fwd); /* answers them; then maybe_finish_stop */
    maybe_finish_stop(s);
    if (s->net.nconns)
        lh_warn("stop: closing %u connection(s) still busy after %d ms", s->net.nconns,
                LH_STOP_GRACE_MS);
    lh_listeners_abort(&s->net);
}

/* Stop, first half: accept nothing new, keep answering what is in flight. */
void lh_server_stop(lh_server *s)
{
    if (s->stopping || !s->started) return;
    s->stopping = true;
    lh_listeners_stop_accepting(&s->net);
    uv_timer_start(&s->stop_timer, on_stop_timeout, LH_STOP_GRACE_MS, 0);
    maybe_finish_stop(s);
}

void lh_server_free(lh_server *s)
{
    if (s->started && !uv_is_closing((uv_handle_t *)&s->stop_timer))
        uv_close((uv_handle_t *)&s->stop_timer, NULL);
    uv_run(s->loop, UV_RUN_DEFAULT); /* let the close callbacks run */
    if (s->fwd_ready) lh_forward_free(&s->fwd);
    s->fwd_ready = false;
    lh_policy_free(s->policy);
    lh_ratelimit_free(&s->rrl);
    s->policy = NULL;
    lh_recent_free(s->recent);
    s->recent = NULL;
}

void lh_server_collect(const lh_server *s, lh_snapshot *out)
{
    memset(out, 0, sizeof *out);
    out->c = s->stats;
    if (s->fwd_ready && s->fwd.cache_on) {
        lh_cache_figures c;
        lh_cache_collect(&s->fwd.cache, &c);
        out->cache_on = true;
        out->cache_entries = c.entries;
        out->cache_bytes = c.bytes;
        out->cache_max = c.max_bytes;
        out->cache = c.stats;
    }
    if (s->fwd_ready)
        out->nupstreams = lh_upstream_collect(&s->fwd.upstream, out->up, LH_SNAPSHOT_UPSTREAMS);
    out->qlog_dropped = s->qlog ? lh_qlog_dropped(s->qlog) : 0;
    out->tcp_connections = s->net.nconns;
    if (s->fwd_ready) {
        const lh_validator *v = &s->fwd.val;
        out->dnssec_path = v->path;
        out->dnssec_probes = v->probes;
        out->dnssec_probes_stripped = v->probes_stripped;
        out->dnssec_downgraded = v->downgraded;
        out->dnssec_subqueries = v->subqueries;
    }
}
