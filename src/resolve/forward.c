/* forward.c - see forward.h. */
#include "loophole/forward.h"
#include "loophole/log.h"
#include "loophole/runtime.h"
#include "loophole/server.h"
#include "loophole/ttl.h"

#include <stdlib.h>
#include <string.h>

#define LH_WAITERS_MAX 256 /* clients sharing one upstream question */
/* Waiters of all questions of one loop: LH_WAITERS_PER_INFLIGHT per question the loop may have
 * upstream, at least LH_WAITERS_MAX, at most LH_WAITERS_LOOP_MAX. A waiter is ~0.9 KB, so the
 * default (upstream-max-inflight 1024) bounds them at 8,192 waiters, ~7 MB, per process. */
#define LH_WAITERS_PER_INFLIGHT 8
#define LH_WAITERS_LOOP_MAX 65536
#define LH_EDE_STALE 3         /* RFC 8914: Stale Answer */
#define LH_EDE_NO_REACHABLE 22 /* RFC 8914: No Reachable Authority */
#define LH_LOOP_MIN_LETTERS 8  /* 0x20 bits needed before a case match means "our own query" */

typedef struct lh_waiter {
    struct lh_waiter *next;
    lh_client client;
    lh_msg msg; /* msg.pkt points at pkt */
    uint8_t pkt[LH_DNS_HEADER_LEN + LH_NAME_MAX + 4];
} lh_waiter;

struct lh_pending {
    lh_pending *hnext;
    lh_pending *dl_prev, *dl_next;
    lh_forwarder *f;
    uint64_t hash, deadline_ms;
    lh_cache_key key;
    lh_name name;
    unsigned group; /* 0: default upstreams; forward zones are trusted with private answers */
    lh_upstream_req *req;
    const char *upstream;  /* the label of the server that answered */
    const char *transport; /* how it answered: "plain", "tls" (lh_upstream_transport_name) */
    int ede;               /* a failure's Extended DNS Error (RFC 8914); 0: 22 */
    lh_waiter *waiters;
    unsigned nwaiters;
    size_t qlen, question_end;
    uint8_t query[LH_DNS_HEADER_LEN + LH_NAME_MAX + 4 + 11]; /* as sent upstream */
};

static uint64_t pending_hash(const lh_cache_key *k)
{
    uint64_t h = k->name_hash ^ ((uint64_t)k->qtype << 24 | (uint64_t)k->qclass << 8 | k->flags);
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 31);
}

static lh_pending *pending_find(lh_forwarder *f, const lh_cache_key *k, uint64_t h)
{
    for (lh_pending *p = f->table[h & f->mask]; p; p = p->hnext)
        if (p->hash == h && p->key.qtype == k->qtype && p->key.qclass == k->qclass &&
            p->key.flags == k->flags && p->name.len == k->name->len &&
            !memcmp(p->name.wire, k->name->wire, k->name->len))
            return p;
    return NULL;
}

static void on_deadline(lh_timer *t);

int lh_forward_init(lh_forwarder *f, const lh_forward_env *env, const lh_forward_seams *seams,
                    char *err, size_t errlen)
{
    const lh_config *cfg = env->cfg;
    memset(f, 0, offsetof(lh_forwarder, work));
    f->env = *env;
    if (seams && seams->clock) {
        f->clock = seams->clock;
    } else {
        lh_clock_init_loop(&f->own_clock, env->loop);
        f->clock = &f->own_clock;
    }
    lh_random_init(&f->rng);
    unsigned loops = env->loops ? env->loops : 1; /* each loop gets its share of the bounds */
    unsigned inflight = cfg->upstream_max_inflight / loops ? cfg->upstream_max_inflight / loops : 1;
    f->max_waiters = inflight * LH_WAITERS_PER_INFLIGHT;
    if (f->max_waiters < LH_WAITERS_MAX) f->max_waiters = LH_WAITERS_MAX;
    if (f->max_waiters > LH_WAITERS_LOOP_MAX) f->max_waiters = LH_WAITERS_LOOP_MAX;
    f->ttl_limits = (lh_ttl_limits){.min_ttl = cfg->cache_min_ttl,
                                    .max_ttl = cfg->cache_max_ttl,
                                    .max_negative_ttl = cfg->cache_max_negative_ttl};
    size_t n = 64;
    while (n < inflight)
        n <<= 1;
    f->table = calloc(n, sizeof *f->table);
    if (!f->table) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    f->mask = n - 1;
    if (cfg->cache_size) {
        lh_cache_limits lim = {.max_bytes = cfg->cache_size / loops,
                               .min_ttl = cfg->cache_min_ttl,
                               .max_ttl = cfg->cache_max_ttl,
                               .max_negative_ttl = cfg->cache_max_negative_ttl,
                               .stale_window = cfg->serve_stale ? cfg->stale_window : 0};
        if (lh_cache_init(&f->cache, &lim) != 0) {
            snprintf(err, errlen, "out of memory for the cache");
            return -1;
        }
        f->cache_on = true;
    }
    if (lh_upstream_init(&f->upstream, env->loop, f->clock, cfg, inflight,
                         seams ? seams->transport : NULL, err, errlen) != 0)
        return -1;
    lh_timer_init(f->clock, &f->deadline_timer, on_deadline, f);
    return 0;
}

/* --- delivering answers ------------------------------------------------------------------ */

static size_t client_limit(const lh_forwarder *f, const lh_waiter *w)
{
    return w->client.udp ? lh_msg_udp_limit(&w->msg, f->env.cfg->edns_udp_size) : LH_MSG_MAX;
}

/* Accounts for a query answered by the forwarder (outcome, list of a blocked verdict). */
static void query_done(lh_forwarder *f, const lh_msg *m, const lh_client *c, uint64_t name_hash,
                       enum lh_outcome outcome, const lh_verdict *v, const char *upstream,
                       const char *transport, const uint8_t *answer, size_t n)
{
    lh_query_end q = {.msg = m,
                      .client = &c->peer,
                      .outcome = outcome,
                      .name_hash = name_hash,
                      .list = v ? v->list : -1,
                      .match_label = v ? v->match_label : -1,
                      .match_name = v ? v->match_name : NULL,
                      .upstream = upstream,
                      .transport = transport,
                      .answer = n ? answer : NULL,
                      .answer_len = n,
                      .start_ns = c->start_ns};
    f->env.query_done(f->env.ctx, &q);
}

/* Sends the answer at f->out + 2 (n bytes; 0: none) through the waiter's reply handle, and
 * lets go of the client. The two bytes before it are room for a TCP length prefix. */
static void send_to(lh_forwarder *f, const lh_pending *p, lh_waiter *w, size_t n,
                    enum lh_outcome outcome, const lh_verdict *v)
{
    query_done(f, &w->msg, &w->client, p->key.name_hash, outcome, v,
               outcome == LH_OUTCOME_FORWARDED ? p->upstream : NULL,
               outcome == LH_OUTCOME_FORWARDED ? p->transport : NULL, f->out + 2, n);
    f->env.send(f->env.ctx, &w->client, f->out + 2, n);
    f->env.release(f->env.ctx, &w->client);
}

/* Finishes the message at f->out + 2 (len bytes) for the waiter: OPT, truncation. */
static size_t finish_for(lh_forwarder *f, lh_waiter *w, size_t len, int ede)
{
    lh_writer wr;
    lh_writer_resume(&wr, f->out + 2, LH_MSG_MAX, len);
    return lh_writer_finish(&wr, &w->msg, client_limit(f, w), f->env.cfg->edns_udp_size, ede);
}

static void answer_servfail(lh_forwarder *f, const lh_pending *p, lh_waiter *w)
{
    lh_writer wr;
    lh_writer_begin(&wr, f->out + 2, LH_MSG_MAX, &w->msg, LH_RCODE_SERVFAIL, false);
    send_to(f, p, w,
            lh_writer_finish(&wr, &w->msg, client_limit(f, w), f->env.cfg->edns_udp_size,
                             p->ede ? p->ede : LH_EDE_NO_REACHABLE),
            LH_OUTCOME_FAILED, NULL);
}

/* A failed question: each waiter gets a stale answer when one is kept, else SERVFAIL. */
static void answer_failed(lh_forwarder *f, lh_pending *p, lh_waiter *w)
{
    const lh_cache_entry *e;
    uint64_t now = lh_clock_now(f->clock);
    if (f->cache_on && f->env.cfg->serve_stale &&
        lh_cache_lookup(&f->cache, &p->key, now, true, &e) != LH_CACHE_MISS) {
        size_t n =
            lh_cache_write(e, &w->msg, now, true, f->env.cfg->stale_ttl, f->out + 2, LH_MSG_MAX);
        if (n) {
            send_to(f, p, w, finish_for(f, w, n, LH_EDE_STALE), LH_OUTCOME_STALE, NULL);
            f->stats.stale_served++;
            return;
        }
    }
    answer_servfail(f, p, w);
}

/* --- the pending question's lifecycle ---------------------------------------------------- */

static void deadline_rearm(lh_forwarder *f);

static void pending_unlink(lh_forwarder *f, lh_pending *p)
{
    lh_pending **pp = &f->table[p->hash & f->mask];
    while (*pp != p)
        pp = &(*pp)->hnext;
    *pp = p->hnext;
    if (p->dl_prev)
        p->dl_prev->dl_next = p->dl_next;
    else
        f->dl_head = p->dl_next;
    if (p->dl_next)
        p->dl_next->dl_prev = p->dl_prev;
    else
        f->dl_tail = p->dl_prev;
    f->npending--;
}

/* Ends a pending question: `answer` (len bytes, OPT removed) for everyone, or failure. */
static void pending_end(lh_forwarder *f, lh_pending *p, const uint8_t *answer, size_t len,
                        const lh_verdict *blocked)
{
    bool head = f->dl_head == p;
    pending_unlink(f, p);
    if (p->req) lh_upstream_cancel(p->req);
    for (lh_waiter *w = p->waiters, *next; w; w = next) {
        next = w->next;
        if (blocked) {
            send_to(f, p, w,
                    lh_answer_build(&w->msg, blocked, f->out + 2, LH_MSG_MAX, client_limit(f, w),
                                    f->env.cfg->edns_udp_size),
                    blocked->origin == LH_ORIGIN_BLOCKLIST ? LH_OUTCOME_BLOCKED : LH_OUTCOME_FAILED,
                    blocked);
        } else if (answer && len >= w->msg.question_end) {
            memcpy(f->out + 2, answer, len);
            lh_answer_patch_for_client(f->out + 2, &w->msg);
            send_to(f, p, w, finish_for(f, w, len, -1), LH_OUTCOME_FORWARDED, NULL);
        } else {
            answer_failed(f, p, w);
        }
        free(w);
        f->nwaiters--;
    }
    free(p);
    if (head) deadline_rearm(f);
    if (f->npending == 0) f->env.idle(f->env.ctx); /* a stop may be waiting for this */
}

static void on_deadline(lh_timer *t)
{
    lh_forwarder *f = t->data;
    uint64_t now = lh_clock_now(f->clock);
    while (f->dl_head && f->dl_head->deadline_ms <= now) {
        f->stats.failed++;
        pending_end(f, f->dl_head, NULL, 0, NULL);
    }
    deadline_rearm(f);
}

static void deadline_rearm(lh_forwarder *f)
{
    if (!f->dl_head) {
        lh_timer_stop(&f->deadline_timer);
        return;
    }
    uint64_t now = lh_clock_now(f->clock);
    uint64_t d = f->dl_head->deadline_ms > now ? f->dl_head->deadline_ms - now : 0;
    lh_timer_start(&f->deadline_timer, d);
}

/* Strips the OPT record (the client gets loophole's own) and the records after it. */
static size_t strip_opt(uint8_t *a, size_t len, lh_answer_info *ai)
{
    if (!ai->opt_len) return len;
    len = ai->opt_off;
    lh_wr16(a + 10, ai->opt_ar_index);
    ai->ar = ai->opt_ar_index;
    unsigned k = 0;
    for (unsigned i = 0; i < ai->nttl; i++)
        if (ai->ttl_off[i] < len) ai->ttl_off[k++] = ai->ttl_off[i];
    ai->nttl = (uint16_t)k;
    ai->opt_len = 0;
    return len;
}

/* CNAME and SVCB/HTTPS targets that lead to a blocked name get the blocked answer. The
 * matching target goes to `t`, which the verdict points at (the query log names the rule on
 * the target, not the question): the caller keeps it until the verdict is used. */
static bool uncloak(lh_forwarder *f, lh_pending *p, const uint8_t *a, size_t len,
                    const lh_answer_info *ai, lh_verdict *v, lh_name *t)
{
    const lh_policy *pol = (*f->env.policy);
    lh_block_match bm = {.list = -1, .label = -1};
    const lh_runtime *rt = f->env.rt ? *f->env.rt : NULL;
    if (lh_runtime_paused(rt, f->env.loop)) return false; /* blocking is off */
    enum lh_uncloak_result r =
        lh_policy_uncloak_at(pol, lh_runtime_overlay(rt), a, len, ai, t, &bm);
    if (r == LH_UNCLOAK_CLEAN) return false;
    char qn[LH_NAME_MAX * 4 + 1], tn[LH_NAME_MAX * 4 + 1];
    lh_name_to_text(p->name.wire, qn, sizeof qn);
    if (r == LH_UNCLOAK_TOO_MANY) {
        lh_info("uncloaked: %s leads to %u names, more than the %u checked; blocked", qn,
                ai->ntargets, LH_ANSWER_TARGETS_MAX);
    } else {
        lh_name_to_text(t->wire, tn, sizeof tn);
        lh_info("uncloaked: %s leads to %s, blocked by %s", qn, tn,
                bm.list >= 0                 ? pol->blocks.lists[bm.list].path
                : bm.list == LH_LIST_RUNTIME ? "a runtime rule"
                                             : "a pattern");
    }
    lh_policy_block_verdict(pol, v, &bm);
    if (r != LH_UNCLOAK_TOO_MANY) v->match_name = t;
    f->stats.uncloaked++;
    return true;
}

/* A public name answered with a private address: SERVFAIL, EDE 18 (Prohibited). */
static const lh_verdict rebind_refused_verdict = {.kind = LH_VERDICT_REFUSED,
                                                  .rcode = LH_RCODE_SERVFAIL,
                                                  .ede = LH_EDE_PROHIBITED,
                                                  .list = -1,
                                                  .match_label = -1};

static void on_upstream(void *arg, int status, const uint8_t *answer, size_t len,
                        const lh_upstream_server *server)
{
    lh_pending *p = arg;
    lh_forwarder *f = p->f;
    p->req = NULL;
    lh_answer_info ai;
    if (status == 0 && (len > sizeof f->work || lh_answer_scan(answer, len, &ai) != 0)) {
        lh_warn("upstream %s: malformed answer dropped", server->label);
        f->stats.bad_answers++;
        status = -1;
    }
    if (status != 0) {
        f->stats.failed++;
        p->ede = lh_upstream_ede(&f->upstream, status);
        pending_end(f, p, NULL, 0, NULL);
        return;
    }
    f->stats.answered++;
    p->upstream = server->label;
    p->transport = lh_upstream_transport_name(server);
    memcpy(f->work, answer, len);
    len = strip_opt(f->work, len, &ai);
    /* Every forwarded answer's TTLs, cached or not: clamped, top bit read as 0, one per RRset. */
    if (lh_ttl_normalise(f->work, len, &ai, &f->ttl_limits) != 0) {
        lh_warn("upstream %s: malformed answer dropped", server->label);
        f->stats.bad_answers++;
        f->stats.failed++;
        pending_end(f, p, NULL, 0, NULL);
        return;
    }
    if (ai.private_address && f->env.cfg->rebind_protection && p->group == 0 &&
        !lh_policy_rebind_allowed((*f->env.policy), &p->name)) {
        char qn[LH_NAME_MAX * 4 + 1];
        lh_name_to_text(p->name.wire, qn, sizeof qn);
        lh_warn("rebinding protection: %s from %s resolves to a private address; refused", qn,
                server->label);
        f->stats.rebind_refused++;
        pending_end(f, p, NULL, 0, &rebind_refused_verdict);
        return;
    }
    lh_verdict blocked;
    lh_name blocked_target;
    if (uncloak(f, p, f->work, len, &ai, &blocked, &blocked_target)) {
        pending_end(f, p, NULL, 0, &blocked);
        return;
    }
    if (f->cache_on) lh_cache_insert(&f->cache, &p->key, f->work, len, &ai, lh_clock_now(f->clock));
    pending_end(f, p, f->work, len, NULL);
}

/* The question as loophole asks it: the client's RD/CD/AD, the name in random case (0x20),
 * and an OPT of our own (DO as the client set it; none of the client's options). */
static size_t build_query(lh_forwarder *f, const lh_msg *m, uint8_t *q)
{
    memset(q, 0, LH_DNS_HEADER_LEN);
    lh_wr16(q + 2, m->flags & (LH_FLAG_RD | LH_FLAG_CD | LH_FLAG_AD));
    lh_wr16(q + 4, 1);
    lh_wr16(q + 10, 1);
    uint8_t *n = q + LH_DNS_HEADER_LEN;
    memcpy(n, m->qname.wire, m->qname.len);
    if (f->env.cfg->upstream_0x20) lh_random_case(&f->rng, n, m->qname.len);
    size_t o = LH_DNS_HEADER_LEN + m->qname.len;
    lh_wr16(q + o, m->qtype);
    lh_wr16(q + o + 2, m->qclass);
    o += 4;
    q[o] = 0;
    lh_wr16(q + o + 1, LH_TYPE_OPT);
    lh_wr16(q + o + 3, LH_UPSTREAM_EDNS_SIZE);
    q[o + 5] = 0;
    q[o + 6] = 0;
    q[o + 7] = m->edns_do ? 0x80 : 0;
    q[o + 8] = 0;
    lh_wr16(q + o + 9, 0);
    return o + 11;
}

static unsigned letters(const lh_name *n)
{
    unsigned k = 0;
    for (unsigned i = 0; i < n->len; i++)
        k += n->wire[i] >= 'a' && n->wire[i] <= 'z';
    return k;
}

/* Is `m` one of our own upstream questions coming back (same name, same random case)? The
 * forwarder in between may set DO or CD itself, so every combination is looked at. */
static bool is_own_question(lh_forwarder *f, const lh_msg *m, const lh_cache_key *key)
{
    if (!f->npending || !f->env.cfg->upstream_0x20 || letters(&m->qname) < LH_LOOP_MIN_LETTERS)
        return false;
    lh_cache_key k = *key;
    for (unsigned flags = 0; flags < 4; flags++) {
        k.flags = (uint8_t)flags;
        lh_pending *p = pending_find(f, &k, pending_hash(&k));
        if (p && p->question_end == m->question_end &&
            !memcmp(m->pkt + LH_DNS_HEADER_LEN, p->query + LH_DNS_HEADER_LEN,
                    m->question_end - LH_DNS_HEADER_LEN))
            return true;
    }
    return false;
}

static lh_waiter *waiter_new(lh_forwarder *f, const lh_msg *m, const lh_client *c)
{
    if (f->nwaiters >= f->max_waiters) { /* bound the total, not only each question's share */
        f->stats.waiters_refused++;
        uint64_t now = lh_clock_now(f->clock);
        if (!f->last_waiters_log_ms || now - f->last_waiters_log_ms > 10000) {
            lh_warn("%u clients already wait for upstream answers (the bound): answering "
                    "SERVFAIL to new ones (%llu so far)",
                    f->nwaiters, (unsigned long long)f->stats.waiters_refused);
            f->last_waiters_log_ms = now;
        }
        return NULL;
    }
    lh_waiter *w = malloc(sizeof *w);
    if (!w) return NULL;
    w->next = NULL;
    w->client = *c;
    w->msg = *m;
    memcpy(w->pkt, m->pkt, m->question_end);
    w->msg.pkt = w->pkt;
    w->msg.pkt_len = m->question_end;
    f->env.hold(f->env.ctx, c);
    f->nwaiters++;
    return w;
}

/* SERVFAIL without asking upstream (a loop, no room for another waiter). */
static size_t servfail_now(lh_forwarder *f, const lh_msg *m, const lh_client *c, uint64_t name_hash,
                           uint8_t *out, size_t cap, size_t limit)
{
    size_t n = lh_answer_error(m, LH_RCODE_SERVFAIL, out, cap, limit, f->env.cfg->edns_udp_size);
    query_done(f, m, c, name_hash, LH_OUTCOME_FAILED, NULL, NULL, NULL, out, n);
    return n;
}

size_t lh_forward_query(lh_forwarder *f, const lh_msg *m, uint64_t name_hash, unsigned group,
                        const lh_client *c, uint8_t *out, size_t cap, size_t limit)
{
    lh_cache_key key = {.name = &m->qname,
                        .name_hash = name_hash,
                        .qtype = m->qtype,
                        .qclass = m->qclass,
                        .flags = (uint8_t)((m->edns_do ? LH_CACHE_DO : 0) |
                                           ((m->flags & LH_FLAG_CD) ? LH_CACHE_CD : 0))};
    uint64_t now = lh_clock_now(f->clock);
    const lh_cache_entry *e;
    if (f->cache_on && lh_cache_lookup(&f->cache, &key, now, false, &e) == LH_CACHE_FRESH) {
        size_t n = lh_cache_write(e, m, now, false, 0, out, cap);
        if (n) {
            f->stats.cache_hits++;
            lh_writer w;
            lh_writer_resume(&w, out, cap, n);
            n = lh_writer_finish(&w, m, limit, f->env.cfg->edns_udp_size, -1);
            query_done(f, m, c, name_hash, LH_OUTCOME_CACHED, NULL, NULL, NULL, out, n);
            return n;
        }
    }
    if (is_own_question(f, m, &key)) {
        f->stats.loops++;
        if (now - f->last_loop_log_ms > 10000 || !f->last_loop_log_ms) {
            lh_err("forwarding loop: an upstream sent loophole's own query back to it; "
                   "answering SERVFAIL. Check that no upstream forwards to loophole.");
            f->last_loop_log_ms = now;
        }
        return servfail_now(f, m, c, name_hash, out, cap, limit);
    }
    uint64_t h = pending_hash(&key);
    lh_pending *p = pending_find(f, &key, h);
    if (p) {
        lh_waiter *w = p->nwaiters < LH_WAITERS_MAX ? waiter_new(f, m, c) : NULL;
        if (!w) return servfail_now(f, m, c, name_hash, out, cap, limit);
        w->next = p->waiters;
        p->waiters = w;
        p->nwaiters++;
        f->stats.coalesced++;
        return 0;
    }
    p = malloc(sizeof *p);
    lh_waiter *w = p ? waiter_new(f, m, c) : NULL;
    if (!w) {
        free(p);
        return servfail_now(f, m, c, name_hash, out, cap, limit);
    }
    memset(p, 0, offsetof(lh_pending, query));
    p->f = f;
    p->hash = h;
    p->group = group;
    p->name = m->qname;
    p->key = key;
    p->key.name = &p->name;
    p->waiters = w;
    p->nwaiters = 1;
    p->qlen = build_query(f, m, p->query);
    p->question_end = m->question_end;
    p->deadline_ms = now + f->env.cfg->query_budget_ms;
    p->hnext = f->table[h & f->mask];
    f->table[h & f->mask] = p;
    p->dl_prev = f->dl_tail;
    if (f->dl_tail)
        f->dl_tail->dl_next = p;
    else
        f->dl_head = p;
    f->dl_tail = p;
    f->npending++;
    if (f->dl_head == p) deadline_rearm(f);
    p->req = lh_upstream_send(&f->upstream, group, p->query, p->qlen, on_upstream, p);
    if (!p->req) { /* over the in-flight bound, or no server: fail now, never grow */
        f->stats.rejected++;
        pending_end(f, p, NULL, 0, NULL);
        return 0;
    }
    f->stats.sent++;
    return 0;
}

void lh_forward_fail_all(lh_forwarder *f)
{
    while (f->dl_head) {
        f->stats.failed++;
        pending_end(f, f->dl_head, NULL, 0, NULL);
    }
}

void lh_forward_flush_cache(lh_forwarder *f)
{
    if (f->cache_on) lh_cache_flush(&f->cache);
}

void lh_forward_shutdown(lh_forwarder *f)
{
    lh_forward_fail_all(f);
    lh_upstream_shutdown(&f->upstream);
    lh_timer_close(&f->deadline_timer, NULL);
}

void lh_forward_free(lh_forwarder *f)
{
    lh_upstream_free(&f->upstream);
    if (f->cache_on) lh_cache_free(&f->cache);
    free(f->table);
    f->table = NULL;
}
