/* forward.c - see forward.h. */
#include "loophole/forward.h"
#include "loophole/dnssec.h"
#include "loophole/log.h"
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
#define LH_TYPE_DNSKEY 48

_Static_assert((int)LH_CACHE_DNSSEC_BOGUS == (int)LH_DNSSEC_V_BOGUS &&
                   (int)LH_CACHE_DNSSEC_INDETERMINATE == (int)LH_DNSSEC_V_INDETERMINATE,
               "cache.h and stats.h number the verdicts alike");

typedef struct lh_waiter {
    struct lh_waiter *next;
    lh_reply client;
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
    /* dnssec = validate: the validation under way (it waits for one DS/DNSKEY sub-query at a
     * time, `sub`, shared with every validation that needs the same RRset, within the
     * question's deadline), the answer it judges, and the verdict (LH_DNSSEC_V_*) with its
     * reason once known. */
    lh_dnssec_val *val;
    lh_subquery *sub;
    lh_pending *sub_next; /* the next validation waiting for `sub` */
    uint8_t *held;
    size_t held_len;
    uint8_t dnssec, dnssec_reason;
    bool ad;             /* the answer may carry AD (to clients that set DO or AD) */
    bool trusted_answer; /* it came from a trusted upstream (dnssec = process) */
    uint8_t query[LH_DNS_HEADER_LEN + LH_NAME_MAX + 4 + 11]; /* as sent upstream */
};

/* A DS or DNSKEY question in flight for validations. Concurrent misses in one zone need the same
 * DNSKEY (and the same DS RRsets on the way down from the trust anchor): the first validation
 * asks, the others join its sub-query, and its answer resumes them all. Owned by the forwarder's
 * list; freed when answered, or when its last waiter ends first (the try is cancelled). */
struct lh_subquery {
    lh_subquery *next;
    lh_forwarder *f;
    lh_upstream_req *req;
    lh_pending *waiters, **tail; /* linked by sub_next */
    unsigned group;
    uint16_t type;
    size_t name_len;
    uint8_t name[LH_NAME_MAX]; /* wire form, as the validator asked (compared without case) */
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
static void probe_start(lh_timer *t);
static void subquery_leave(lh_forwarder *f, lh_pending *p);

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
    if (lh_validator_init(&f->val, cfg, err, errlen) != 0) return -1;
    lh_timer_init(f->clock, &f->probe_timer, probe_start, f);
    /* The probe runs in the validating modes only: in off and process nothing depends on it,
     * and an upstream that refuses or times out on it would count a failure against its
     * health (docs/dnssec.md). */
    if (lh_validator_on(&f->val) && !(seams && seams->no_dnssec_probe)) {
        f->probe_on = true;
        lh_timer_start(&f->probe_timer, 0); /* on the loop's first pass */
    }
    return 0;
}

/* --- delivering answers ------------------------------------------------------------------ */

static size_t client_limit(const lh_forwarder *f, const lh_waiter *w)
{
    return w->client.datagram ? lh_msg_udp_limit(&w->msg, f->env.cfg->edns_udp_size) : LH_MSG_MAX;
}

/* Accounts for a query answered by the forwarder (outcome, list of a blocked verdict). */
static void query_done(lh_forwarder *f, const lh_msg *m, const lh_reply *c, uint64_t name_hash,
                       enum lh_outcome outcome, const lh_verdict *v, const char *upstream,
                       const char *transport, const uint8_t *answer, size_t n, unsigned dnssec,
                       unsigned reason)
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
                      .start_ns = c->start_ns,
                      .dnssec = (uint8_t)dnssec,
                      .dnssec_reason = (uint8_t)reason};
    f->env.query_done(f->env.ctx, &q);
}

/* Sends the answer at f->out + 2 (n bytes; 0: none) through the waiter's reply handle, and
 * lets go of the client. The two bytes before it are room for a TCP length prefix. */
static void send_to(lh_forwarder *f, const lh_pending *p, lh_waiter *w, size_t n,
                    enum lh_outcome outcome, const lh_verdict *v)
{
    bool judged = outcome == LH_OUTCOME_FORWARDED || (v && v->kind == LH_VERDICT_REFUSED);
    query_done(f, &w->msg, &w->client, p->key.name_hash, outcome, v,
               outcome == LH_OUTCOME_FORWARDED ? p->upstream : NULL,
               outcome == LH_OUTCOME_FORWARDED ? p->transport : NULL, f->out + 2, n,
               judged ? p->dnssec : LH_DNSSEC_V_NONE, p->dnssec_reason);
    lh_reply_send(&w->client, f->out + 2, n);
    lh_reply_release(&w->client);
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

/* AD (RFC 6840 5.7): only when loophole vouches for the answer and the client showed it
 * understands it by setting DO or AD. */
static void set_ad(uint8_t *a, bool vouched, const lh_msg *m)
{
    bool ad = vouched && (m->edns_do || (m->flags & LH_FLAG_AD));
    lh_wr16(a + 2, (uint16_t)((lh_rd16(a + 2) & ~LH_FLAG_AD) | (ad ? LH_FLAG_AD : 0)));
}

/* A failed question: each waiter gets a stale answer when one is kept, else SERVFAIL. */
static void answer_failed(lh_forwarder *f, lh_pending *p, lh_waiter *w)
{
    const lh_cache_entry *e;
    uint64_t now = lh_clock_now(f->clock);
    unsigned reason;
    if (f->cache_on && f->env.cfg->serve_stale &&
        lh_cache_lookup(&f->cache, &p->key, now, true, &e) != LH_CACHE_MISS &&
        lh_cache_entry_dnssec(e, &reason) != LH_CACHE_DNSSEC_BOGUS) {
        size_t n =
            lh_cache_write(e, &w->msg, now, true, f->env.cfg->stale_ttl, f->out + 2, LH_MSG_MAX);
        if (n) {
            set_ad(f->out + 2, lh_rd16(f->out + 2) & LH_FLAG_AD, &w->msg);
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

/* The outcome of a verdict that replaces an upstream answer. */
static enum lh_outcome instead_outcome(const lh_verdict *v)
{
    return v->origin == LH_ORIGIN_BLOCKLIST ? LH_OUTCOME_BLOCKED
           : v->origin == LH_ORIGIN_REBIND  ? LH_OUTCOME_REBIND
                                            : LH_OUTCOME_FAILED;
}

/* Ends a pending question: `answer` (len bytes, OPT removed) for everyone, the answer to the
 * verdict `instead` (the policy's checks on the answer replaced it), or failure. */
static void pending_end(lh_forwarder *f, lh_pending *p, const uint8_t *answer, size_t len,
                        const lh_verdict *instead)
{
    bool head = f->dl_head == p;
    pending_unlink(f, p);
    if (p->req) lh_upstream_cancel(p->req);
    if (p->sub) subquery_leave(f, p);
    if (p->val) lh_dnssec_val_free(p->val);
    free(p->held);
    for (lh_waiter *w = p->waiters, *next; w; w = next) {
        next = w->next;
        if (instead) {
            send_to(f, p, w,
                    lh_answer_build(&w->msg, instead, f->out + 2, LH_MSG_MAX, client_limit(f, w),
                                    f->env.cfg->edns_udp_size),
                    instead_outcome(instead), instead);
        } else if (answer && len >= w->msg.question_end) {
            memcpy(f->out + 2, answer, len);
            lh_answer_patch_for_client(f->out + 2, &w->msg);
            set_ad(f->out + 2, p->ad, &w->msg);
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

/* What the forwarder counts and logs when the policy's checks replace an answer (the
 * decision itself is lh_policy_check_answer's). */
static void log_check(lh_forwarder *f, const lh_pending *p, enum lh_answer_check r,
                      const lh_verdict *v, const lh_answer_info *ai, const char *server)
{
    const lh_policy *pol = *f->env.policy;
    char qn[LH_NAME_MAX * 4 + 1], tn[LH_NAME_MAX * 4 + 1];
    lh_name_to_text(p->name.wire, qn, sizeof qn);
    switch (r) {
    case LH_CHECK_REBIND:
        lh_warn("rebinding protection: %s from %s resolves to a private address; refused", qn,
                server);
        f->stats.rebind_refused++;
        return;
    case LH_CHECK_TOO_MANY:
        lh_info("uncloaked: %s leads to %u names, more than the %u checked; blocked", qn,
                ai->ntargets, LH_ANSWER_TARGETS_MAX);
        break;
    case LH_CHECK_UNCLOAKED:
        lh_name_to_text(v->match_name->wire, tn, sizeof tn);
        lh_info("uncloaked: %s leads to %s, blocked by %s", qn, tn,
                v->list >= 0                 ? pol->blocks.lists[v->list].path
                : v->list == LH_LIST_RUNTIME ? "a runtime rule"
                                             : "a pattern");
        break;
    case LH_CHECK_PASS:
        return;
    }
    f->stats.uncloaked++;
}

/* A refusal with SERVFAIL (its EDE set by the caller). */
static const lh_verdict servfail_verdict = {
    .kind = LH_VERDICT_REFUSED,
    .ans = {.rcode = LH_RCODE_SERVFAIL, .ede = LH_EDE_PROHIBITED},
    .list = -1,
    .match_label = -1};

/* A bogus or indeterminate answer: SERVFAIL with the EDE of the reason (RFC 8914). */
static void dnssec_fail_verdict(lh_verdict *v, unsigned reason)
{
    *v = servfail_verdict;
    v->ans.ede = lh_dnssec_reason_ede((enum lh_dnssec_reason)reason);
    if (v->ans.ede < 0) v->ans.ede = 6; /* DNSSEC Bogus */
}

/* A DNSSEC rewrite of f->work (`n` bytes, 0 when it failed) scanned again into `ai`: its
 * length, or 0 after the question has been ended as failed with a log line saying `why`. */
static size_t rewritten(lh_forwarder *f, lh_pending *p, size_t n, lh_answer_info *ai,
                        const char *label, const char *why)
{
    if (n && lh_answer_scan(f->work, n, ai) == 0) return n;
    lh_warn("upstream %s: malformed answer dropped (%s)", label, why);
    f->stats.bad_answers++;
    f->stats.failed++;
    pending_end(f, p, NULL, 0, NULL);
    return 0;
}

/* The rest of an answer's way once its DNSSEC verdict is known (or none is needed): checks,
 * TTLs, rebinding and uncloaking, the cache, the waiters. `answer` was scanned into `ai`. */
static void relay(lh_forwarder *f, lh_pending *p, const uint8_t *answer, size_t len,
                  lh_answer_info *ai, const char *label)
{
    memcpy(f->work, answer, len);
    len = strip_opt(f->work, len, ai);
    bool validated = p->dnssec != LH_DNSSEC_V_NONE;
    /* AD vouches for the whole message: a secure one keeps only the records validated (padding
     * an upstream or the path added would otherwise pass under AD). */
    if (p->dnssec == LH_DNSSEC_V_SECURE) {
        size_t n = lh_dnssec_keep_validated(f->work, len, sizeof f->work, p->key.qtype);
        if (!(len = rewritten(f, p, n, ai, label, "unvalidated records could not be removed")))
            return;
    }
    /* A client that did not set DO gets no RRSIG/NSEC/NSEC3 it did not ask for: in the
     * validate modes the upstream was asked with DO whatever the client set. */
    if (lh_validator_on(&f->val) && !(p->key.flags & LH_CACHE_DO)) {
        size_t n = lh_dnssec_strip_records(f->work, len, sizeof f->work, p->key.qtype);
        if (!(len = rewritten(f, p, n, ai, label, "DNSSEC records could not be removed"))) return;
    }
    /* Every forwarded answer's TTLs, cached or not: clamped, top bit read as 0, one per RRset. */
    if (lh_ttl_normalise(f->work, len, ai, &f->ttl_limits) != 0) {
        lh_warn("upstream %s: malformed answer dropped (TTLs)", label);
        f->stats.bad_answers++;
        f->stats.failed++;
        pending_end(f, p, NULL, 0, NULL);
        return;
    }
    uint64_t now = lh_clock_now(f->clock);
    if (p->dnssec == LH_DNSSEC_V_BOGUS || p->dnssec == LH_DNSSEC_V_INDETERMINATE) {
        lh_verdict fail;
        dnssec_fail_verdict(&fail, p->dnssec_reason);
        /* Bogus is kept (briefly) so that repeating the question costs no crypto; an
         * indeterminate verdict (a lookup failed) is not: the next try may succeed. */
        if (f->cache_on && p->dnssec == LH_DNSSEC_V_BOGUS)
            lh_cache_insert_dnssec(&f->cache, &p->key, f->work, len, ai, now, p->dnssec,
                                   p->dnssec_reason);
        pending_end(f, p, NULL, 0, &fail);
        return;
    }
    const lh_overlay_live *live = f->env.live ? *f->env.live : NULL;
    lh_answer_ctx ctx = {.qname = &p->name,
                         .group = p->group,
                         .paused = lh_overlay_live_paused(live, f->env.loop),
                         .ov = lh_overlay_live_rules(live)};
    lh_verdict instead;
    lh_name target;
    enum lh_answer_check r =
        lh_policy_check_answer(*f->env.policy, &ctx, f->work, len, ai, &instead, &target);
    if (r != LH_CHECK_PASS) {
        log_check(f, p, r, &instead, ai, label);
        pending_end(f, p, NULL, 0, &instead);
        return;
    }
    /* The AD bit kept with the answer says whether loophole vouches for it: validated secure,
     * or (dnssec = process) set by a trusted upstream. Each client then gets it only if it
     * set DO or AD. */
    p->ad = validated ? p->dnssec == LH_DNSSEC_V_SECURE
                      : f->env.cfg->dnssec == LH_DNSSEC_MODE_PROCESS && p->trusted_answer &&
                            (ai->flags & LH_FLAG_AD);
    lh_wr16(f->work + 2,
            (uint16_t)((lh_rd16(f->work + 2) & ~LH_FLAG_AD) | (p->ad ? LH_FLAG_AD : 0)));
    if (f->cache_on)
        lh_cache_insert_dnssec(&f->cache, &p->key, f->work, len, ai, now, p->dnssec,
                               p->dnssec_reason);
    pending_end(f, p, f->work, len, NULL);
}

/* --- DNSSEC validation of a forwarded answer ------------------------------------------- */

/* Only data missing, which a path that strips DNSSEC causes (allow-downgrade relaxes these). */
static bool missing_data(unsigned reason)
{
    return reason == LH_DR_RRSIGS_MISSING || reason == LH_DR_DNSKEY_MISSING ||
           reason == LH_DR_NSEC_MISSING;
}

static void validation_done(lh_forwarder *f, lh_pending *p)
{
    const lh_dnssec_result *r = lh_dnssec_val_result(p->val);
    unsigned v = r->verdict == LH_DNSSEC_SECURE     ? LH_DNSSEC_V_SECURE
                 : r->verdict == LH_DNSSEC_INSECURE ? LH_DNSSEC_V_INSECURE
                 : r->verdict == LH_DNSSEC_BOGUS    ? LH_DNSSEC_V_BOGUS
                                                    : LH_DNSSEC_V_INDETERMINATE;
    char qn[LH_NAME_MAX * 4 + 1];
    lh_name_to_text(p->name.wire, qn, sizeof qn);
    lh_validator_note_validated(&f->val, p->val);
    if (v == LH_DNSSEC_V_BOGUS && f->val.mode == LH_DNSSEC_MODE_DOWNGRADE &&
        f->val.path == LH_DNSSEC_PATH_STRIPS && missing_data(r->reason)) {
        char seen[LH_NAME_MAX * 4 + 2];
        if (!lh_validator_under_signed(&f->val, p->name.wire, seen, sizeof seen)) {
            v = LH_DNSSEC_V_INSECURE; /* the path strips, and this zone was never seen signed */
            f->val.downgraded++;
        } else {
            lh_warn("dnssec: %s type %u: the path strips DNSSEC, but %s was seen signed: "
                    "not downgraded",
                    qn, p->key.qtype, seen);
        }
    }
    /* Signatures missing where they were due: maybe the path began to strip. Ask again now
     * rather than in an hour (bounded: once a minute). */
    uint64_t now = lh_clock_now(f->clock);
    if (v == LH_DNSSEC_V_BOGUS && missing_data(r->reason) && f->probe_on && !f->probe_req &&
        f->val.path != LH_DNSSEC_PATH_STRIPS &&
        (!f->val.reprobe_at_ms ||
         now - f->val.reprobe_at_ms >= (uint64_t)LH_DNSSEC_REPROBE_S * 1000)) {
        f->val.reprobe_at_ms = now;
        lh_timer_start(&f->probe_timer, 0);
    }
    p->dnssec = (uint8_t)v;
    p->dnssec_reason = (uint8_t)r->reason;
    if (v == LH_DNSSEC_V_BOGUS || v == LH_DNSSEC_V_INDETERMINATE)
        lh_warn("dnssec: %s type %u is %s in zone %s: %s (EDE %d)%s%s", qn, p->key.qtype,
                lh_dnssec_verdict_name(r->verdict), r->zone[0] ? r->zone : "?",
                lh_dnssec_reason_text(r->reason), r->ede, r->detail[0] ? "; " : "", r->detail);
    lh_dnssec_val_free(p->val);
    p->val = NULL;
    uint8_t *held = p->held;
    size_t len = p->held_len;
    p->held = NULL;
    lh_answer_info ai;
    if (lh_answer_scan(held, len, &ai) != 0) { /* scanned before: cannot fail */
        free(held);
        pending_end(f, p, NULL, 0, NULL);
        return;
    }
    relay(f, p, held, len, &ai, p->upstream);
    free(held);
}

static void validation_step(lh_forwarder *f, lh_pending *p);

static void subquery_unlink(lh_forwarder *f, lh_subquery *s)
{
    for (lh_subquery **pp = &f->subqueries; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            return;
        }
}

/* p stops waiting for its sub-query (it ended first); the last waiter to leave cancels it. */
static void subquery_leave(lh_forwarder *f, lh_pending *p)
{
    lh_subquery *s = p->sub;
    for (lh_pending **pp = &s->waiters; *pp; pp = &(*pp)->sub_next)
        if (*pp == p) {
            *pp = p->sub_next;
            if (s->tail == &p->sub_next) s->tail = pp;
            break;
        }
    p->sub = NULL;
    p->sub_next = NULL;
    if (s->waiters) return;
    subquery_unlink(f, s);
    if (s->req) lh_upstream_cancel(s->req);
    free(s);
}

static void on_subquery(void *arg, int status, const uint8_t *answer, size_t len,
                        const lh_upstream_server *server)
{
    (void)server;
    lh_subquery *s = arg;
    lh_forwarder *f = s->f;
    subquery_unlink(f, s); /* a validation resumed below that needs it again asks anew */
    if (status != 0) len = 0;
    /* Every waiter gets the answer before any resumes: `answer` lives until this returns, and
     * a resumed validation may end, or wait on another sub-query (relinking its sub_next). */
    for (lh_pending *p = s->waiters; p; p = p->sub_next)
        lh_dnssec_val_provide(p->val, answer, len);
    for (lh_pending *p = s->waiters, *next; p; p = next) {
        next = p->sub_next;
        p->sub = NULL;
        p->sub_next = NULL;
        validation_step(f, p);
    }
    free(s);
}

/* Wire names alike but for ASCII case (a length byte is below 64: lowering it changes nothing). */
static bool wire_equal_nocase(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x += 32;
        if (y >= 'A' && y <= 'Z') y += 32;
        if (x != y) return false;
    }
    return true;
}

/* The sub-query in flight for this need, if any. */
static lh_subquery *subquery_find(lh_forwarder *f, unsigned group, const lh_dnssec_need *need)
{
    for (lh_subquery *s = f->subqueries; s; s = s->next)
        if (s->group == group && s->type == need->type && s->name_len == need->name_len &&
            wire_equal_nocase(s->name, need->name, need->name_len))
            return s;
    return NULL;
}

/* A DS or DNSKEY question as the validator needs it: RD, CD (the upstream hands over what it
 * has without judging it), DO, the name in random case (the same 0x20 check as any answer). */
static size_t build_subquery(lh_forwarder *f, const lh_dnssec_need *need, uint8_t *q)
{
    memset(q, 0, LH_DNS_HEADER_LEN);
    lh_wr16(q + 2, LH_FLAG_RD | LH_FLAG_CD);
    lh_wr16(q + 4, 1);
    lh_wr16(q + 10, 1);
    uint8_t *n = q + LH_DNS_HEADER_LEN;
    memcpy(n, need->name, need->name_len);
    if (f->env.cfg->upstream_0x20) lh_random_case(&f->rng, n, need->name_len);
    size_t o = LH_DNS_HEADER_LEN + need->name_len;
    lh_wr16(q + o, need->type);
    lh_wr16(q + o + 2, 1 /* IN */);
    o += 4;
    static const uint8_t opt[11] = {
        0, 0, 41, LH_UPSTREAM_EDNS_SIZE >> 8, LH_UPSTREAM_EDNS_SIZE & 0xff, 0, 0, 0x80, 0, 0, 0};
    memcpy(q + o, opt, sizeof opt);
    return o + sizeof opt;
}

/* Runs the validation until it needs a DS/DNSKEY RRset (asked upstream; the answer resumes it)
 * or has its verdict. The validator bounds the lookups (64) and the signature checks; the
 * question's deadline bounds the time: past it the pending ends as any other. */
static void validation_step(lh_forwarder *f, lh_pending *p)
{
    lh_dnssec_need need;
    while (lh_dnssec_val_run(p->val, &need) == LH_DNSSEC_NEED) {
        lh_subquery *s = subquery_find(f, p->group, &need);
        if (s) { /* resumed in the order they came */
            *s->tail = p;
            s->tail = &p->sub_next;
            p->sub = s;
            f->val.subqueries_joined++;
            return;
        }
        s = calloc(1, sizeof *s);
        if (s && need.name_len <= sizeof s->name) {
            uint8_t q[LH_DNS_HEADER_LEN + LH_NAME_MAX + 4 + 11];
            size_t qlen = build_subquery(f, &need, q);
            s->req = lh_upstream_send(&f->upstream, p->group, q, qlen, on_subquery, s);
        }
        if (s && s->req) {
            s->f = f;
            s->group = p->group;
            s->type = need.type;
            s->name_len = need.name_len;
            memcpy(s->name, need.name, need.name_len);
            s->waiters = p;
            s->tail = &p->sub_next;
            s->next = f->subqueries;
            f->subqueries = s;
            p->sub = s;
            f->val.subqueries++;
            return;
        }
        free(s);
        lh_dnssec_val_provide(p->val, NULL, 0); /* over the in-flight bound: indeterminate */
    }
    validation_done(f, p);
}

static void validation_start(lh_forwarder *f, lh_pending *p, const uint8_t *answer, size_t len)
{
    p->held = malloc(len);
    if (p->held) {
        memcpy(p->held, answer, len);
        p->held_len = len;
        p->val = lh_dnssec_val_new(f->val.anchors, f->val.keys, answer, len, p->name.wire,
                                   p->key.qtype, (time_t)lh_clock_unix(f->clock));
        if (p->val) lh_dnssec_val_quiet(p->val);
    }
    if (!p->val) {
        lh_warn("dnssec: out of memory for a validation");
        f->stats.failed++;
        pending_end(f, p, NULL, 0, NULL);
        return;
    }
    validation_step(f, p);
}

/* dnssec = process keeps an upstream's AD only from an upstream whose path cannot be forged:
 * one on loopback (a local validating resolver) or reached over authenticated DNS over TLS or HTTPS
 * (tls.on). */
static bool upstream_trusted(const lh_upstream_server *s)
{
    return s->tls.on || lh_addr_is_loopback(&s->addr.sa);
}

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
    p->trusted_answer = upstream_trusted(server);
    /* Validate modes: the answer is judged before anything else looks at it, unless the client
     * set CD (it gets the answer unvalidated, under its own cache key). SERVFAIL and the like
     * carry nothing to judge. */
    if (lh_validator_on(&f->val) && !(p->key.flags & LH_CACHE_CD) &&
        (ai.rcode == LH_RCODE_NOERROR || ai.rcode == LH_RCODE_NXDOMAIN)) {
        validation_start(f, p, answer, len);
        return;
    }
    relay(f, p, answer, len, &ai, server->label);
}

/* --- the stripping probe ------------------------------------------------------------------ */

static void on_probe(void *arg, int status, const uint8_t *answer, size_t len,
                     const lh_upstream_server *server)
{
    lh_forwarder *f = arg;
    f->probe_req = NULL;
    enum lh_dnssec_path was = f->val.path;
    enum lh_dnssec_path now =
        status == 0 ? lh_dnssec_probe_read(answer, len) : LH_DNSSEC_PATH_UNKNOWN;
    f->val.probes++;
    if (now == LH_DNSSEC_PATH_STRIPS) f->val.probes_stripped++;
    if (now != LH_DNSSEC_PATH_UNKNOWN) f->val.path = now;
    if (now == LH_DNSSEC_PATH_STRIPS && was != now)
        lh_warn("dnssec: the upstream path strips DNSSEC: the root's DNSKEY came from %s "
                "without RRSIG (%s)",
                server->label,
                f->val.mode == LH_DNSSEC_MODE_VALIDATE ? "signed names will fail to validate"
                : f->val.mode == LH_DNSSEC_MODE_DOWNGRADE
                    ? "unsigned answers are relayed as insecure, except for zones seen signed"
                    : "AD from upstreams is meaningless on this path");
    else if (now == LH_DNSSEC_PATH_CARRIES && was == LH_DNSSEC_PATH_STRIPS)
        lh_info("dnssec: the upstream path carries DNSSEC again");
    lh_timer_start(&f->probe_timer, (uint64_t)LH_DNSSEC_PROBE_S * 1000);
}

/* The DNSKEY RRset of the trust anchor's zone (the root; the highest anchor when validating
 * with others) with DO+CD through the default upstreams (docs/dnssec.md: stripping). */
static void probe_start(lh_timer *t)
{
    lh_forwarder *f = t->data;
    if (f->probe_req || !f->probe_on) return;
    lh_dnssec_need root = {.name = {0}, .name_len = 1, .type = LH_TYPE_DNSKEY};
    if (f->val.anchors) {
        size_t n = lh_dnssec_anchors_zone(f->val.anchors, root.name, sizeof root.name);
        if (n) root.name_len = n;
    }
    uint8_t q[LH_DNS_HEADER_LEN + LH_NAME_MAX + 4 + 11];
    size_t qlen = build_subquery(f, &root, q);
    f->probe_req = lh_upstream_send(&f->upstream, 0, q, qlen, on_probe, f);
    if (!f->probe_req) lh_timer_start(&f->probe_timer, (uint64_t)LH_DNSSEC_PROBE_S * 1000);
}

/* The question as loophole asks it: the client's RD/CD/AD, the name in random case (0x20),
 * and an OPT of our own (DO as the client set it; none of the client's options). */
static size_t build_query(lh_forwarder *f, const lh_msg *m, uint8_t *q)
{
    memset(q, 0, LH_DNS_HEADER_LEN);
    uint16_t flags = m->flags & (LH_FLAG_RD | LH_FLAG_CD | LH_FLAG_AD);
    /* Validating, loophole asks with CD so that the upstream hands over bogus data too: the
     * verdict and its EDE are loophole's own. */
    if (lh_validator_on(&f->val)) flags = (uint16_t)((flags & ~LH_FLAG_AD) | LH_FLAG_CD);
    lh_wr16(q + 2, flags);
    lh_wr16(q + 4, 1);
    lh_wr16(q + 10, 1);
    uint8_t *n = q + LH_DNS_HEADER_LEN;
    memcpy(n, m->qname.wire, m->qname.len);
    if (f->env.cfg->upstream_0x20) {
        /* the client's spelling, when its question name is written out flat (no pointer) */
        const uint8_t *asked = m->pkt + LH_DNS_HEADER_LEN;
        if (m->question_end == LH_DNS_HEADER_LEN + m->qname.len + 4u)
            lh_random_case_unlike(&f->rng, n, m->qname.len, asked);
        else
            lh_random_case(&f->rng, n, m->qname.len);
    }
    size_t o = LH_DNS_HEADER_LEN + m->qname.len;
    lh_wr16(q + o, m->qtype);
    lh_wr16(q + o + 2, m->qclass);
    o += 4;
    q[o] = 0;
    lh_wr16(q + o + 1, LH_TYPE_OPT);
    lh_wr16(q + o + 3, LH_UPSTREAM_EDNS_SIZE);
    q[o + 5] = 0;
    q[o + 6] = 0;
    q[o + 7] = m->edns_do || lh_validator_on(&f->val) ? 0x80 : 0; /* validating: always DO */
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

static lh_waiter *waiter_new(lh_forwarder *f, const lh_msg *m, const lh_reply *c)
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
    lh_reply_hold(c);
    f->nwaiters++;
    return w;
}

/* SERVFAIL without asking upstream (a loop, no room for another waiter). */
static size_t servfail_now(lh_forwarder *f, const lh_msg *m, const lh_reply *c, uint64_t name_hash,
                           uint8_t *out, size_t cap, size_t limit)
{
    size_t n = lh_answer_error(m, LH_RCODE_SERVFAIL, out, cap, limit, f->env.cfg->edns_udp_size);
    query_done(f, m, c, name_hash, LH_OUTCOME_FAILED, NULL, NULL, NULL, out, n, LH_DNSSEC_V_NONE,
               0);
    return n;
}

size_t lh_forward_query(lh_forwarder *f, const lh_msg *m, uint64_t name_hash, unsigned group,
                        const lh_reply *c, uint8_t *out, size_t cap, size_t limit)
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
            unsigned reason;
            unsigned dv = lh_cache_entry_dnssec(e, &reason);
            lh_writer w;
            int ede = -1;
            if (dv == LH_CACHE_DNSSEC_BOGUS) { /* the verdict kept: SERVFAIL without crypto */
                lh_verdict fail;
                dnssec_fail_verdict(&fail, reason);
                ede = fail.ans.ede;
                lh_writer_begin(&w, out, cap, m, LH_RCODE_SERVFAIL, false);
            } else {
                set_ad(out, lh_rd16(out + 2) & LH_FLAG_AD, m);
                lh_writer_resume(&w, out, cap, n);
            }
            n = lh_writer_finish(&w, m, limit, f->env.cfg->edns_udp_size, ede);
            query_done(f, m, c, name_hash, LH_OUTCOME_CACHED, NULL, NULL, NULL, out, n, dv, reason);
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
    f->probe_on = false;
    if (f->probe_req) lh_upstream_cancel(f->probe_req);
    f->probe_req = NULL;
    lh_upstream_shutdown(&f->upstream);
    lh_timer_close(&f->deadline_timer, NULL);
    lh_timer_close(&f->probe_timer, NULL);
}

void lh_forward_free(lh_forwarder *f)
{
    lh_upstream_free(&f->upstream);
    lh_validator_free(&f->val);
    if (f->cache_on) lh_cache_free(&f->cache);
    free(f->table);
    f->table = NULL;
}
