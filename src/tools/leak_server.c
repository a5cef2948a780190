/* leak_server.c - `loophole leak-server`: an authoritative zone that tells a client which
 * resolvers carry its queries.
 *
 *   ZONE                     SOA, NS ns1.ZONE; NODATA+SOA for other types
 *   ns1.ZONE                 A/AAAA from leak-ns-address
 *   <label>.ZONE and below   A/AAAA/TXT: the address of the resolver that asked (TTL 0);
 *                            the address is remembered under <label>
 *   results.<label>.ZONE     TXT: every resolver address remembered under <label>
 *   anything else            REFUSED
 *
 * Every name under the zone exists, so QNAME-minimising resolvers (which ask for <label>.ZONE
 * first) and DNSSEC-aware ones (DS, DNSKEY: NODATA with the SOA) get consistent answers. Memory
 * is fixed at start: a label table with expiry and least-recently-created eviction, and a
 * per-source rate limit table. Nothing allocates after start-up. */
#include "loophole/leak.h"
#include "loophole/listener.h"
#include "loophole/log.h"
#include "loophole/nameset.h"
#include "loophole/policy.h"
#include "loophole/ratelimit.h"

#include <arpa/inet.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define LEAK_LABEL_SLOTS 8192 /* power of two */
#define LEAK_PROBE_SLOTS 8    /* slots searched per label before evicting */
#define LEAK_ADDRS_MAX 8      /* resolver addresses remembered per label */
#define LEAK_RATE_SLOTS 4096  /* power of two */
#define LEAK_APEX_TTL 3600
#define LEAK_NEGATIVE_TTL 0 /* probe names change every run: nothing worth caching */

typedef struct leak_addr {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t bytes[16];
} leak_addr;

typedef struct leak_label {
    uint64_t hash;
    uint64_t created_ms, expires_ms; /* expires_ms 0: free */
    uint8_t len;
    uint8_t name[63];
    uint8_t naddrs;
    leak_addr addrs[LEAK_ADDRS_MAX];
} leak_label;

struct lh_leak_zone {
    lh_name apex;
    lh_sockaddr ns[2];
    unsigned nns;
    bool rate_limited;
    lh_ratelimit rates; /* per source address */
    uint64_t retention_ms;
    uint64_t seed;
    leak_label *labels;
    lh_leak_stats stats;
};

static void addr_from_sockaddr(const lh_sockaddr *sa, leak_addr *a)
{
    const uint8_t *bytes;
    size_t n = lh_addr_bytes(&sa->sa, &bytes);
    memset(a, 0, sizeof *a);
    a->family = (uint8_t)sa->sa.sa_family;
    memcpy(a->bytes, bytes, n);
}

lh_leak_zone *lh_leak_zone_new(const lh_config *cfg, char *err, size_t errlen)
{
    lh_leak_zone *z = calloc(1, sizeof *z);
    if (!z) goto oom;
    if (!cfg->leak_zone ||
        lh_name_from_text(cfg->leak_zone, strlen(cfg->leak_zone), &z->apex) != 0 ||
        z->apex.nlabels == 0) {
        snprintf(err, errlen,
                 "leak-server needs --zone with a domain name, e.g. --zone "
                 "leaktest.example.org");
        free(z);
        return NULL;
    }
    memcpy(z->ns, cfg->leak_ns, sizeof z->ns);
    z->nns = cfg->nleak_ns;
    z->retention_ms = (uint64_t)cfg->leak_retention * 1000;
    if (getrandom(&z->seed, sizeof z->seed, 0) != sizeof z->seed) z->seed = (uint64_t)(uintptr_t)z;
    z->labels = calloc(LEAK_LABEL_SLOTS, sizeof *z->labels);
    if (!z->labels) goto oom;
    if (cfg->rate_limit) {
        if (lh_ratelimit_init(&z->rates, NULL, LEAK_RATE_SLOTS, cfg->rate_limit, 32, 128) != 0)
            goto oom;
        z->rate_limited = true;
    }
    return z;
oom:
    snprintf(err, errlen, "out of memory for the leak server's tables");
    lh_leak_zone_free(z);
    return NULL;
}

void lh_leak_zone_free(lh_leak_zone *z)
{
    if (!z) return;
    free(z->labels);
    lh_ratelimit_free(&z->rates);
    free(z);
}

const lh_leak_stats *lh_leak_zone_stats(const lh_leak_zone *z)
{
    return &z->stats;
}

/* Finds the live entry for a label; with `create`, makes one (reusing a free or expired slot,
 * else evicting the oldest of the probed slots). */
static leak_label *label_find(lh_leak_zone *z, const uint8_t *name, uint8_t len, uint64_t now_ms,
                              bool create)
{
    uint64_t h = lh_hash_bytes(z->seed, name, len);
    leak_label *victim = NULL;
    for (unsigned i = 0; i < LEAK_PROBE_SLOTS; i++) {
        leak_label *e = &z->labels[(h + i) & (LEAK_LABEL_SLOTS - 1)];
        bool live = e->expires_ms > now_ms;
        if (live && e->hash == h && e->len == len && !memcmp(e->name, name, len)) return e;
        if (!victim || (!live && victim->expires_ms > now_ms) ||
            (live == (victim->expires_ms > now_ms) && e->created_ms < victim->created_ms))
            victim = e;
    }
    if (!create) return NULL;
    if (victim->expires_ms > now_ms) z->stats.labels_evicted++;
    memset(victim, 0, sizeof *victim);
    victim->hash = h;
    victim->len = len;
    memcpy(victim->name, name, len);
    victim->created_ms = now_ms;
    victim->expires_ms = now_ms + z->retention_ms;
    return victim;
}

static void label_remember(lh_leak_zone *z, const uint8_t *name, uint8_t len,
                           const leak_addr *resolver, uint64_t now_ms)
{
    leak_label *e = label_find(z, name, len, now_ms, true);
    for (unsigned i = 0; i < e->naddrs; i++)
        if (!memcmp(&e->addrs[i], resolver, sizeof *resolver)) return;
    if (e->naddrs < LEAK_ADDRS_MAX) e->addrs[e->naddrs++] = *resolver;
}

/* One TXT record holding the text form of an address. */
static void put_txt_addr(lh_writer *w, const lh_msg *m, const leak_addr *a)
{
    uint8_t rdata[1 + INET6_ADDRSTRLEN];
    if (!inet_ntop(a->family, a->bytes, (char *)rdata + 1, INET6_ADDRSTRLEN)) return;
    rdata[0] = (uint8_t)strlen((char *)rdata + 1);
    lh_writer_rr(w, m, LH_SEC_ANSWER, 0, LH_TYPE_TXT, 0, rdata, (uint16_t)(rdata[0] + 1));
}

/* A or AAAA (whichever the type asks and the address family is), TXT for TXT and ANY. */
static void put_addr(lh_writer *w, const lh_msg *m, const leak_addr *a, uint32_t ttl)
{
    bool any = m->qtype == LH_TYPE_ANY;
    if (a->family == AF_INET && (m->qtype == LH_TYPE_A || any))
        lh_writer_rr(w, m, LH_SEC_ANSWER, 0, LH_TYPE_A, ttl, a->bytes, 4);
    if (a->family == AF_INET6 && (m->qtype == LH_TYPE_AAAA || any))
        lh_writer_rr(w, m, LH_SEC_ANSWER, 0, LH_TYPE_AAAA, ttl, a->bytes, 16);
}

static bool label_is(const lh_name *n, unsigned label, const char *text)
{
    const uint8_t *l = n->wire + n->label_off[label];
    size_t len = strlen(text);
    return l[0] == len && !memcmp(l + 1, text, len);
}

/* The records for a name inside the zone; `apex` is the label index of the zone apex. */
static void zone_answer(lh_leak_zone *z, const lh_msg *m, unsigned apex, const leak_addr *resolver,
                        uint64_t now_ms, lh_writer *w)
{
    const lh_name *q = &m->qname;
    uint16_t t = m->qtype;
    bool any = t == LH_TYPE_ANY;
    if (apex == 0) {
        if (t == LH_TYPE_SOA || any)
            lh_writer_soa(w, m, LH_SEC_ANSWER, 0, LEAK_APEX_TTL, LEAK_NEGATIVE_TTL);
        if (t == LH_TYPE_NS || any) {
            /* ns1.<apex>, the apex compressed against the question */
            uint16_t ptr = (uint16_t)(0xc000u | LH_DNS_HEADER_LEN);
            uint8_t rdata[6] = {3, 'n', 's', '1', (uint8_t)(ptr >> 8), (uint8_t)ptr};
            lh_writer_rr(w, m, LH_SEC_ANSWER, 0, LH_TYPE_NS, LEAK_APEX_TTL, rdata, sizeof rdata);
        }
    } else {
        const uint8_t *key = q->wire + q->label_off[apex - 1];
        if (apex == 1 && label_is(q, 0, "ns1")) {
            for (unsigned i = 0; i < z->nns; i++) {
                leak_addr a;
                addr_from_sockaddr(&z->ns[i], &a);
                put_addr(w, m, &a, LEAK_APEX_TTL);
            }
        } else if (apex == 2 && label_is(q, 0, "results")) {
            leak_label *e = label_find(z, key + 1, key[0], now_ms, false);
            if (e && (t == LH_TYPE_TXT || any))
                for (unsigned i = 0; i < e->naddrs; i++)
                    put_txt_addr(w, m, &e->addrs[i]);
        } else {
            label_remember(z, key + 1, key[0], resolver, now_ms);
            put_addr(w, m, resolver, 0);
            if (t == LH_TYPE_TXT || any) put_txt_addr(w, m, resolver);
        }
    }
    if (w->counts[LH_SEC_ANSWER] == 0 && !w->overflow) /* NODATA: the SOA for negative caching */
        lh_writer_soa(w, m, LH_SEC_AUTHORITY, apex, LEAK_NEGATIVE_TTL, LEAK_NEGATIVE_TTL);
}

size_t lh_leak_zone_answer(lh_leak_zone *z, const lh_msg *m, const lh_sockaddr *peer,
                           uint64_t now_ms, uint8_t *out, size_t cap, size_t limit,
                           uint16_t our_udp_size)
{
    leak_addr resolver;
    uint32_t count;
    addr_from_sockaddr(peer, &resolver);
    if (z->rate_limited && !lh_ratelimit_allow_at(&z->rates, &peer->sa, now_ms, &count)) {
        z->stats.rate_limited++;
        return 0;
    }
    const lh_name *q = &m->qname;
    unsigned apex = q->nlabels >= z->apex.nlabels ? q->nlabels - z->apex.nlabels : 0;
    lh_writer w;
    if ((m->qclass != LH_CLASS_IN && m->qclass != LH_CLASS_ANY) || q->nlabels < z->apex.nlabels ||
        memcmp(q->wire + q->label_off[apex], z->apex.wire, z->apex.len)) {
        z->stats.refused++;
        lh_writer_begin(&w, out, cap, m, LH_RCODE_REFUSED, false);
    } else {
        z->stats.answered++;
        lh_writer_begin(&w, out, cap, m, LH_RCODE_NOERROR, true);
        zone_answer(z, m, apex, &resolver, now_ms, &w);
    }
    size_t n = lh_writer_finish(&w, m, limit, our_udp_size, -1);
    if (n) out[3] &= (uint8_t) ~(LH_FLAG_RA & 0xff); /* authoritative only: no recursion */
    return n;
}

/* --- the role: the zone behind the listeners ------------------------------------------------ */

#define LEAK_STOP_GRACE_MS 800 /* connections still busy after a stop get this long */

struct lh_leak_server {
    uv_loop_t *loop;
    const lh_config *cfg;
    lh_leak_zone *zone;
    lh_counters stats; /* the listeners' (nothing reports them; they cost nothing) */
    uv_signal_t sigs[5];
    uv_timer_t stop_timer;
    bool started, stopping;
    lh_listeners net;
};

/* The leak server's query path (lh_answer_fn): the checks every query passes, then the zone. */
static size_t leak_answer(void *ctx, const uint8_t *pkt, size_t len, const lh_reply *r,
                          uint8_t *out, size_t cap)
{
    lh_leak_server *s = ctx;
    uint16_t our_udp = s->cfg->edns_udp_size;
    lh_msg m;
    lh_parse_result pr = lh_msg_parse_query(pkt, len, &m);
    size_t limit = r->datagram ? lh_msg_udp_limit(&m, our_udp) : LH_MSG_MAX;
    switch (pr) {
    case LH_PARSE_OK:
        break;
    case LH_PARSE_DROP:
        s->stats.dropped++;
        return 0;
    case LH_PARSE_FORMERR:
        s->stats.formerr++;
        return lh_answer_error(&m, LH_RCODE_FORMERR, out, cap, limit, our_udp);
    case LH_PARSE_NOTIMP:
        s->stats.notimp++;
        return lh_answer_notimp_opcode(&m, out, cap, limit, our_udp);
    case LH_PARSE_BADVERS:
        s->stats.badvers++;
        return lh_answer_error(&m, LH_RCODE_BADVERS, out, cap, limit, our_udp);
    }
    return lh_leak_zone_answer(s->zone, &m, &r->peer, uv_now(s->loop), out, cap, limit, our_udp);
}

static void on_signal(uv_signal_t *h, int signum)
{
    if (signum != SIGTERM && signum != SIGINT) return; /* nothing to reload or reopen */
    lh_info("%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    lh_leak_server_stop(h->data);
}

lh_leak_server *lh_leak_server_start(uv_loop_t *loop, const lh_config *cfg, lh_leak_zone *zone,
                                     char *err, size_t errlen)
{
    lh_leak_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->cfg = cfg;
    s->zone = zone;
    s->net = (lh_listeners){
        .loop = loop, .cfg = cfg, .nloops = 1, .stats = &s->stats, .answer = leak_answer, .ctx = s};
    if (lh_listeners_open(&s->net, err, errlen) != 0) {
        free(s);
        return NULL;
    }
    /* Signals other than TERM and INT are caught too, so that a reload or log-reopen signal
     * meant for a resolver does not end the leak server. */
    const int nums[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR2, SIGUSR1};
    for (int i = 0; i < 5; i++) {
        uv_signal_init(loop, &s->sigs[i]);
        s->sigs[i].data = s;
        uv_signal_start(&s->sigs[i], on_signal, nums[i]);
    }
    uv_timer_init(loop, &s->stop_timer); /* only bounds a stop: never keeps the loop alive */
    s->stop_timer.data = s;
    uv_unref((uv_handle_t *)&s->stop_timer);
    s->started = true;
    return s;
}

static void on_stop_timeout(uv_timer_t *t)
{
    lh_leak_server *s = t->data;
    if (s->net.nconns)
        lh_warn("stop: closing %u connection(s) still busy after %d ms", s->net.nconns,
                LEAK_STOP_GRACE_MS);
    lh_listeners_abort(&s->net);
}

void lh_leak_server_stop(lh_leak_server *s)
{
    if (!s || s->stopping) return;
    s->stopping = true;
    lh_listeners_stop_accepting(&s->net);
    for (int i = 0; i < 5; i++)
        uv_close((uv_handle_t *)&s->sigs[i], NULL);
    uv_timer_start(&s->stop_timer, on_stop_timeout, LEAK_STOP_GRACE_MS, 0);
    lh_listeners_close_udp(&s->net); /* nothing is answered later: no answer still to send */
}

void lh_leak_server_free(lh_leak_server *s)
{
    if (!s) return;
    lh_leak_server_stop(s);
    uv_close((uv_handle_t *)&s->stop_timer, NULL);
    uv_run(s->loop, UV_RUN_DEFAULT); /* let the close callbacks run */
    free(s);
}
