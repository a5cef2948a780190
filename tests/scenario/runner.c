/* runner.c - runs replay-style scenarios (tests/scenarios/NAME.rpl) against the real query path
 * (policy, forwarder, cache, upstream failover) in process: a manual clock instead of time, a
 * scripted fake instead of upstream servers, an in-process client instead of sockets. No
 * sleeps; a scenario takes milliseconds.
 *
 * A scenario is a plain-text file, one step per line ('#' starts a comment):
 *   config KEY VALUE            a setting (as in loophole.conf), before the first query (a
 *                               relative trust-anchor file is found beside the scenario)
 *   block NAME                  NAME and the names below it are on a blocklist
 *   query NAME TYPE [do] [cd] [noedns] [times N]   a client asks (N clients: N queries);
 *                               answers are queued as they come
 *   upstream NAME TYPE [server N]        the oldest outstanding upstream try asks this (name
 *                               compared without case), at server N of its group; it becomes
 *                               the current try
 *   mixed-case                  the current try's name has upper-case letters (0x20)
 *   query-echo                  the current try's question, as sent, comes back as a client
 *                               query (an upstream forwarding to loophole)
 *   try-flags FLAG...           the current try's question has these: do, nodo (the OPT's DO
 *                               bit), cd, nocd
 *   reply RCODE [ad]            answers the current try: the question echoed byte for byte,
 *                               AD set when `ad` is given,
 *     rr SECTION TEXT           then records (SECTION: an, ns, ar; TEXT as in a zone file)
 *   end
 *   reply-lowercase RCODE ... end   the same, the question echoed in lower case
 *   reply-garbage               a message whose records run past its end
 *   reply-query                 the current try's own query sent back unchanged (QR clear)
 *   silence                     the current try gets nothing (it times out as time passes)
 *   time MS                     the clock moves forward MS milliseconds, timers firing
 *   answer RCODE [ede N] [noede] [tc] [ad] [noad] [times N]   the oldest client answer(s) not
 *                               checked yet:
 *                               rcode,
 *     rr SECTION TEXT           Extended DNS Error, and the records of each section named
 *   end                         (with no rr line: an empty answer section)
 *   no-answer                   no client answer is waiting
 *   no-upstream                 no upstream try is outstanding
 *   tries N                     N upstream tries have been started so far
 * Every answer is also checked for the client's ID and its question, case included.
 *
 * Usage: scenario_runner FILE...   prints one line per scenario; exit status 1 on a failure. */
#include "fake_transport.h"

#include "loophole/clock.h"
#include "loophole/config.h"
#include "loophole/log.h"
#include "loophole/server.h"

#include <ctype.h>
#include <glob.h>
#include <sys/stat.h>
#include <ldns/ldns.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ANSWERS 1024
#define LINE_MAX_LEN 1024

typedef struct client_answer {
    uint16_t id;
    uint8_t question[LH_NAME_MAX + 4];
    size_t question_len;
    size_t len;
    uint8_t *bytes;
} client_answer;

typedef struct scenario {
    const char *path;
    unsigned line;
    bool failed;
    char cfg_text[8192];
    char blocklist[256];
    bool started;
    uv_loop_t loop;
    lh_clock clock;
    lh_config cfg;
    lh_server srv;
    uint8_t out[2 + LH_MSG_MAX]; /* answers made at once (2: room for a TCP prefix) */
    fake_transport *fake;
    fake_try *current;
    uint16_t next_id;
    /* what each client asked, by ID, to check its answer against */
    uint8_t asked[MAX_ANSWERS][LH_NAME_MAX + 4];
    size_t asked_len[MAX_ANSWERS];
    client_answer answers[MAX_ANSWERS];
    unsigned nanswers, checked;
} scenario;

static void fail(scenario *sc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%u: ", sc->path, sc->line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    sc->failed = true;
}

/* --- the in-process client ------------------------------------------------------------- */

static void record_answer(scenario *sc, const uint8_t *a, size_t len)
{
    if (sc->nanswers >= MAX_ANSWERS) {
        fail(sc, "too many answers");
        return;
    }
    client_answer *ca = &sc->answers[sc->nanswers++];
    ca->len = len;
    ca->bytes = malloc(len ? len : 1);
    memcpy(ca->bytes, a, len);
    ca->id = len >= 2 ? lh_rd16(a) : 0;
}

/* The scenario's client: an in-process reply handle (reply.h), so answers made later by the
 * forwarder come back here instead of going to sockets. */
static void client_send(const lh_reply *r, uint8_t *answer, size_t len)
{
    if (len) record_answer(r->to, answer, len);
}

static const lh_reply_ops client_ops = {.send = client_send};

static void env_query_done(void *ctx, lh_query_end *q)
{
    scenario *sc = ctx;
    lh_stats_record(&sc->srv.stats, q);
}

static void env_idle(void *ctx)
{
    (void)ctx;
}

/* Lets the loop run what is due now (the upstream layer's deferred work) without blocking. */
static void settle(scenario *sc)
{
    for (int i = 0; i < 4; i++)
        uv_run(&sc->loop, UV_RUN_NOWAIT);
}

static int start(scenario *sc)
{
    char err[LH_ERR_MAX];
    char text[sizeof sc->cfg_text + 512];
    snprintf(text, sizeof text,
             "resolv-conf = /dev/null\nhosts = no\ndefault-blocklist = no\n"
             "fallback-upstream = 192.0.2.53\n%s%s%s%s",
             sc->blocklist[0] ? "blocklist = " : "", sc->blocklist, sc->blocklist[0] ? "\n" : "",
             sc->cfg_text);
    lh_config_defaults(&sc->cfg);
    FILE *f = fmemopen(text, strlen(text), "r");
    if (!f || lh_config_load_stream(&sc->cfg, f, sc->path, err, sizeof err) != 0 ||
        lh_config_validate(&sc->cfg, err, sizeof err) != 0) {
        if (f) fclose(f);
        fail(sc, "config: %s", err);
        return -1;
    }
    fclose(f);
    uv_loop_init(&sc->loop);
    lh_clock_init_manual(&sc->clock, 1000000);
    memset(&sc->srv, 0, sizeof sc->srv);
    sc->srv.loop = &sc->loop;
    sc->srv.cfg = &sc->cfg;
    sc->srv.nloops = 1;
    sc->srv.policy = lh_policy_build(&sc->cfg, err, sizeof err);
    if (!sc->srv.policy) {
        fail(sc, "policy: %s", err);
        return -1;
    }
    sc->fake = fake_transport_new(&sc->clock, sc->cfg.upstream_timeout_ms);
    lh_forward_seams seams = {
        .clock = &sc->clock, .transport = &sc->fake->base, .no_dnssec_probe = true};
    lh_forward_env env = {.loop = &sc->loop,
                          .cfg = &sc->cfg,
                          .policy = &sc->srv.policy,
                          .loops = 1,
                          .ctx = sc,
                          .query_done = env_query_done,
                          .idle = env_idle};
    if (lh_forward_init(&sc->srv.fwd, &env, &seams, err, sizeof err) != 0) {
        fail(sc, "forwarder: %s", err);
        return -1;
    }
    sc->srv.fwd_ready = true;
    sc->started = true;
    return 0;
}

static void finish(scenario *sc)
{
    if (sc->started) {
        lh_forward_shutdown(&sc->srv.fwd);
        settle(sc);
        uv_run(&sc->loop, UV_RUN_DEFAULT);
        lh_forward_free(&sc->srv.fwd);
        uv_loop_close(&sc->loop);
    }
    lh_policy_free(sc->srv.policy);
    lh_config_free(&sc->cfg);
    for (unsigned i = 0; i < sc->nanswers; i++)
        free(sc->answers[i].bytes);
    if (sc->blocklist[0]) unlink(sc->blocklist);
}

/* --- building messages ----------------------------------------------------------------- */

static int name_to_wire(const char *text, uint8_t *out, size_t cap)
{
    size_t o = 0;
    const char *p = text;
    while (*p && strcmp(p, ".")) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l == 0 || l > 63 || o + l + 2 > cap) return -1;
        out[o++] = (uint8_t)l;
        memcpy(out + o, p, l);
        o += l;
        p += l + (dot ? 1 : 0);
    }
    out[o++] = 0;
    return (int)o;
}

static uint16_t type_of(const char *t)
{
    ldns_rr_type r = ldns_get_rr_type_by_name(t);
    return (uint16_t)r;
}

static void query_once(scenario *sc, const char *name, const char *type, bool dobit, bool cd,
                       bool edns);

static void do_query(scenario *sc, char **w, int n)
{
    if (!sc->started && start(sc) != 0) return;
    if (n < 3) {
        fail(sc, "query NAME TYPE [do] [cd] [noedns]");
        return;
    }
    bool dobit = false, cd = false, edns = true;
    unsigned times = 1;
    for (int i = 3; i < n; i++) {
        if (!strcmp(w[i], "times") && i + 1 < n)
            times = (unsigned)atoi(w[++i]);
        else if (!strcmp(w[i], "do"))
            dobit = true;
        else if (!strcmp(w[i], "cd"))
            cd = true;
        else if (!strcmp(w[i], "noedns"))
            edns = false;
        else
            fail(sc, "query: unknown flag %s", w[i]);
    }
    for (unsigned k = 0; k < times && !sc->failed; k++)
        query_once(sc, w[1], w[2], dobit, cd, edns);
}

static void query_once(scenario *sc, const char *name, const char *type, bool dobit, bool cd,
                       bool edns)
{
    uint8_t pkt[600];
    uint16_t id = ++sc->next_id;
    memset(pkt, 0, 12);
    lh_wr16(pkt, id);
    lh_wr16(pkt + 2, LH_FLAG_RD | (cd ? LH_FLAG_CD : 0));
    lh_wr16(pkt + 4, 1);
    int nl = name_to_wire(name, pkt + 12, LH_NAME_MAX);
    if (nl < 0 || !type_of(type)) {
        fail(sc, "query: bad name or type");
        return;
    }
    size_t o = 12 + (size_t)nl;
    lh_wr16(pkt + o, type_of(type));
    lh_wr16(pkt + o + 2, LH_CLASS_IN);
    o += 4;
    if (id < MAX_ANSWERS) {
        memcpy(sc->asked[id], pkt + 12, o - 12);
        sc->asked_len[id] = o - 12;
    }
    if (edns) {
        lh_wr16(pkt + 10, 1);
        pkt[o] = 0;
        lh_wr16(pkt + o + 1, LH_TYPE_OPT);
        lh_wr16(pkt + o + 3, 1232);
        pkt[o + 5] = 0;
        pkt[o + 6] = 0;
        lh_wr16(pkt + o + 7, dobit ? 0x8000 : 0);
        lh_wr16(pkt + o + 9, 0);
        o += 11;
    }
    lh_reply c = {.ops = &client_ops, .to = sc};
    lh_addr_parse("127.0.0.1", 53, &c.peer);
    size_t len = lh_server_answer(&sc->srv, pkt, o, &c, sc->out + 2, sizeof sc->out - 2);
    if (len) record_answer(sc, sc->out + 2, len);
    settle(sc);
}

/* The current upstream try's question, case and all, sent back as a client query: what an
 * upstream that forwards to loophole would do. */
static void do_query_echo(scenario *sc)
{
    fake_try *ft = sc->current;
    if (!ft) {
        fail(sc, "query-echo: no current try");
        return;
    }
    uint8_t pkt[512];
    memcpy(pkt, ft->query, ft->len);
    uint16_t id = ++sc->next_id;
    lh_wr16(pkt, id);
    size_t ql = ft->len - 12 - (lh_rd16(pkt + 10) ? 11 : 0);
    if (id < MAX_ANSWERS) {
        memcpy(sc->asked[id], pkt + 12, ql);
        sc->asked_len[id] = ql;
    }
    lh_reply c = {.ops = &client_ops, .to = sc};
    lh_addr_parse("127.0.0.1", 53, &c.peer);
    size_t len = lh_server_answer(&sc->srv, pkt, ft->len, &c, sc->out + 2, sizeof sc->out - 2);
    if (len) record_answer(sc, sc->out + 2, len);
    settle(sc);
}

static bool name_eq_nocase(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen != blen) return false;
    for (size_t i = 0; i < alen; i++)
        if (tolower(a[i]) != tolower(b[i])) return false;
    return true;
}

static size_t wire_name_len(const uint8_t *p, size_t cap)
{
    size_t o = 0;
    while (o < cap && p[o])
        o += p[o] + 1u;
    return o + 1;
}

static void do_upstream(scenario *sc, char **w, int n)
{
    if (!sc->started && start(sc) != 0) return;
    fake_try *ft = fake_oldest(sc->fake);
    sc->current = ft;
    if (!ft) {
        fail(sc, "no upstream try outstanding (expected %s %s)", w[1], n > 2 ? w[2] : "");
        return;
    }
    uint8_t want[LH_NAME_MAX];
    int wl = name_to_wire(w[1], want, sizeof want);
    size_t ql = wire_name_len(ft->query + 12, ft->len - 12);
    char got[LH_NAME_MAX * 4 + 1];
    lh_name_to_text(ft->query + 12, got, sizeof got);
    if (wl < 0 || !name_eq_nocase(want, (size_t)wl, ft->query + 12, ql))
        fail(sc, "upstream asked %s, expected %s", got, w[1]);
    if (n > 2 && lh_rd16(ft->query + 12 + ql) != type_of(w[2]))
        fail(sc, "upstream asked type %u, expected %s", lh_rd16(ft->query + 12 + ql), w[2]);
    for (int i = 3; i + 1 < n; i += 2)
        if (!strcmp(w[i], "server") && ft->server->index != (unsigned)atoi(w[i + 1]))
            fail(sc, "upstream asked server %u, expected %s", ft->server->index, w[i + 1]);
}

static void do_mixed_case(scenario *sc)
{
    fake_try *ft = sc->current;
    if (!ft) {
        fail(sc, "mixed-case: no current try");
        return;
    }
    size_t ql = wire_name_len(ft->query + 12, ft->len - 12);
    bool upper = false;
    for (size_t i = 12; i < 12 + ql; i++)
        upper = upper || (ft->query[i] >= 'A' && ft->query[i] <= 'Z');
    if (!upper) fail(sc, "the upstream question is all lower case: no 0x20 bits");
}

static int rcode_of(const char *t)
{
    static const char *names[] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                  "NXDOMAIN", "NOTIMP",  "REFUSED"};
    for (int i = 0; i < 6; i++)
        if (!strcasecmp(t, names[i])) return i;
    return -1;
}

/* Reads "rr SECTION TEXT" lines up to "end" into texts[section][]. */
typedef struct rrset_text {
    char *rr[3][32];
    unsigned n[3];
    bool named[3];
} rrset_text;

static int section_of(const char *s)
{
    return !strcmp(s, "an") ? 0 : !strcmp(s, "ns") ? 1 : !strcmp(s, "ar") ? 2 : -1;
}

static bool read_rrs(scenario *sc, FILE *f, rrset_text *t)
{
    char line[LINE_MAX_LEN];
    memset(t, 0, sizeof *t);
    while (fgets(line, sizeof line, f)) {
        sc->line++;
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        char *hash = strchr(p, '#');
        if (hash) *hash = 0;
        size_t l = strlen(p);
        while (l && isspace((unsigned char)p[l - 1]))
            p[--l] = 0;
        if (!*p) continue;
        if (!strcmp(p, "end")) return true;
        char sec[8];
        int off = 0;
        if (sscanf(p, "rr %7s %n", sec, &off) != 1 || section_of(sec) < 0 || !off) {
            fail(sc, "expected 'rr an|ns|ar TEXT' or 'end': %s", p);
            return false;
        }
        int s = section_of(sec);
        t->named[s] = true;
        if (t->n[s] < 32) t->rr[s][t->n[s]++] = strdup(p + off);
    }
    fail(sc, "missing 'end'");
    return false;
}

static void free_rrs(rrset_text *t)
{
    for (int s = 0; s < 3; s++)
        for (unsigned i = 0; i < t->n[s]; i++)
            free(t->rr[s][i]);
}

static void do_reply(scenario *sc, FILE *f, char **w, int n, bool lowercase)
{
    rrset_text t;
    bool ok = read_rrs(sc, f, &t);
    fake_try *ft = sc->current;
    sc->current = NULL;
    int rcode = n > 1 ? rcode_of(w[1]) : -1;
    if (!ok || !ft || rcode < 0) {
        if (ok) fail(sc, "reply RCODE needs a current try (upstream ...) and a known rcode");
        free_rrs(&t);
        return;
    }
    uint8_t buf[4096];
    size_t ql = wire_name_len(ft->query + 12, ft->len - 12) + 4;
    memcpy(buf, ft->query, 12 + ql);
    bool ad = n > 2 && !strcmp(w[2], "ad");
    lh_wr16(buf + 2, (uint16_t)(LH_FLAG_QR | LH_FLAG_RA | (lh_rd16(ft->query + 2) & LH_FLAG_RD) |
                                (ad ? LH_FLAG_AD : 0) | (unsigned)rcode));
    lh_wr16(buf + 4, 1);
    if (lowercase)
        for (size_t i = 12; i < 12 + ql - 4; i++)
            buf[i] = (uint8_t)tolower(buf[i]);
    size_t o = 12 + ql;
    uint16_t counts[3] = {0};
    for (int s = 0; s < 3; s++)
        for (unsigned i = 0; i < t.n[s]; i++) {
            ldns_rr *rr = NULL;
            if (ldns_rr_new_frm_str(&rr, t.rr[s][i], 3600, NULL, NULL) != LDNS_STATUS_OK) {
                fail(sc, "bad record: %s", t.rr[s][i]);
                continue;
            }
            ldns_buffer *b = ldns_buffer_new(512);
            if (ldns_rr2buffer_wire(b, rr, LDNS_SECTION_ANSWER) == LDNS_STATUS_OK &&
                o + ldns_buffer_position(b) < sizeof buf) {
                memcpy(buf + o, ldns_buffer_begin(b), ldns_buffer_position(b));
                o += ldns_buffer_position(b);
                counts[s]++;
            }
            ldns_buffer_free(b);
            ldns_rr_free(rr);
        }
    /* An OPT of the upstream's own, as real servers send (the forwarder strips it). */
    buf[o] = 0;
    lh_wr16(buf + o + 1, LH_TYPE_OPT);
    lh_wr16(buf + o + 3, 1232);
    memset(buf + o + 5, 0, 6);
    o += 11;
    lh_wr16(buf + 6, counts[0]);
    lh_wr16(buf + 8, counts[1]);
    lh_wr16(buf + 10, (uint16_t)(counts[2] + 1));
    free_rrs(&t);
    fake_reply(ft, buf, o);
    settle(sc);
}

/* The DO bit of the current try's OPT record (-1: no OPT) and its CD bit. */
static void do_try_flags(scenario *sc, char **w, int n)
{
    fake_try *ft = sc->current;
    if (!ft) {
        fail(sc, "try-flags: no current try");
        return;
    }
    size_t o = 12 + wire_name_len(ft->query + 12, ft->len - 12) + 4;
    int dobit = lh_rd16(ft->query + 10) && o + 11 <= ft->len ? (ft->query[o + 7] & 0x80) != 0 : -1;
    bool cd = lh_rd16(ft->query + 2) & LH_FLAG_CD;
    for (int i = 1; i < n; i++) {
        if (!strcmp(w[i], "do")     ? dobit != 1
            : !strcmp(w[i], "nodo") ? dobit == 1
            : !strcmp(w[i], "cd")   ? !cd
            : !strcmp(w[i], "nocd") ? cd
                                    : (fail(sc, "try-flags: unknown flag %s", w[i]), false))
            fail(sc, "try-flags: the try does not have %s", w[i]);
    }
}

static void do_garbage(scenario *sc)
{
    fake_try *ft = sc->current;
    sc->current = NULL;
    if (!ft) {
        fail(sc, "reply-garbage: no current try");
        return;
    }
    uint8_t buf[600];
    size_t ql = wire_name_len(ft->query + 12, ft->len - 12) + 4;
    memcpy(buf, ft->query, 12 + ql);
    lh_wr16(buf + 2, LH_FLAG_QR | LH_FLAG_RA | LH_FLAG_RD);
    lh_wr16(buf + 6, 1); /* one answer record, cut short */
    lh_wr16(buf + 10, 0);
    size_t o = 12 + ql;
    lh_wr16(buf + o, 0xc00c);
    lh_wr16(buf + o + 2, LH_TYPE_A);
    o += 4;
    fake_reply(ft, buf, o);
    settle(sc);
}

static void do_reply_query(scenario *sc)
{
    fake_try *ft = sc->current;
    sc->current = NULL;
    if (!ft) {
        fail(sc, "reply-query: no current try");
        return;
    }
    uint8_t buf[LH_MSG_MAX];
    memcpy(buf, ft->query, ft->len);
    fake_reply(ft, buf, ft->len);
    settle(sc);
}

static int ede_of(const uint8_t *a, size_t len, ldns_pkt *p)
{
    (void)a;
    (void)len;
    ldns_rdf *d = ldns_pkt_edns_data(p);
    if (!d) return -1;
    const uint8_t *o = ldns_rdf_data(d);
    size_t n = ldns_rdf_size(d);
    for (size_t i = 0; i + 4 <= n;) {
        uint16_t code = lh_rd16(o + i), l = lh_rd16(o + i + 2);
        if (code == LH_EDNS_OPT_EDE && l >= 2 && i + 4 + l <= n) return lh_rd16(o + i + 4);
        i += 4u + l;
    }
    return -1;
}

static char *rr_text(ldns_rr *rr)
{
    char *s = ldns_rr2str(rr);
    size_t l = s ? strlen(s) : 0;
    while (l && (s[l - 1] == '\n' || s[l - 1] == ' '))
        s[--l] = 0;
    return s;
}

static void check_section(scenario *sc, ldns_rr_list *got, rrset_text *t, int s, const char *name)
{
    size_t n = got ? ldns_rr_list_rr_count(got) : 0;
    if (n != t->n[s]) fail(sc, "answer: %zu records in %s, expected %u", n, name, t->n[s]);
    for (size_t i = 0; i < n && i < t->n[s]; i++) {
        ldns_rr *want = NULL;
        if (ldns_rr_new_frm_str(&want, t->rr[s][i], 3600, NULL, NULL) != LDNS_STATUS_OK) {
            fail(sc, "bad record: %s", t->rr[s][i]);
            continue;
        }
        char *a = rr_text(ldns_rr_list_rr(got, i)), *b = rr_text(want);
        if (strcasecmp(a, b)) fail(sc, "answer %s[%zu]: got '%s', expected '%s'", name, i, a, b);
        free(a);
        free(b);
        ldns_rr_free(want);
    }
}

static void check_answer(scenario *sc, rrset_text *t, char **w, int n);

static void do_answer(scenario *sc, FILE *f, char **w, int n)
{
    rrset_text t;
    if (!read_rrs(sc, f, &t)) return;
    unsigned times = 1;
    for (int i = 2; i + 1 < n; i++)
        if (!strcmp(w[i], "times")) {
            times = (unsigned)atoi(w[i + 1]);
            n = i; /* the flags end here */
            break;
        }
    for (unsigned k = 0; k < times && !sc->failed; k++)
        check_answer(sc, &t, w, n);
    free_rrs(&t);
}

static void check_answer(scenario *sc, rrset_text *tp, char **w, int n)
{
    rrset_text t = *tp;
    if (sc->checked >= sc->nanswers) {
        fail(sc, "no client answer (expected %s)", n > 1 ? w[1] : "?");
        return;
    }
    client_answer *ca = &sc->answers[sc->checked++];
    ldns_pkt *p = NULL;
    if (ldns_wire2pkt(&p, ca->bytes, ca->len) != LDNS_STATUS_OK) {
        fail(sc, "the client's answer does not parse");
        return;
    }
    int rcode = n > 1 ? rcode_of(w[1]) : -1;
    if ((int)ldns_pkt_get_rcode(p) != rcode)
        fail(sc, "answer rcode %d, expected %s", (int)ldns_pkt_get_rcode(p), w[1]);
    if (ca->id < MAX_ANSWERS && sc->asked_len[ca->id] &&
        (ca->len < 12 + sc->asked_len[ca->id] ||
         memcmp(ca->bytes + 12, sc->asked[ca->id], sc->asked_len[ca->id])))
        fail(sc, "the answer's question is not the client's, byte for byte");
    for (int i = 2; i < n; i++) {
        if (!strcmp(w[i], "ede") && i + 1 < n) {
            int e = ede_of(ca->bytes, ca->len, p);
            if (e != atoi(w[i + 1])) fail(sc, "answer EDE %d, expected %s", e, w[i + 1]);
            i++;
        } else if (!strcmp(w[i], "noede")) {
            if (ede_of(ca->bytes, ca->len, p) >= 0) fail(sc, "answer has an EDE");
        } else if (!strcmp(w[i], "tc")) {
            if (!ldns_pkt_tc(p)) fail(sc, "answer without TC");
        } else if (!strcmp(w[i], "ad")) {
            if (!ldns_pkt_ad(p)) fail(sc, "answer without AD");
        } else if (!strcmp(w[i], "noad")) {
            if (ldns_pkt_ad(p)) fail(sc, "answer with AD");
        } else {
            fail(sc, "answer: unknown flag %s", w[i]);
        }
    }
    bool any = t.named[0] || t.named[1] || t.named[2];
    if (t.named[0] || !any) check_section(sc, ldns_pkt_answer(p), &t, 0, "answer");
    if (t.named[1]) check_section(sc, ldns_pkt_authority(p), &t, 1, "authority");
    if (t.named[2]) check_section(sc, ldns_pkt_additional(p), &t, 2, "additional");
    ldns_pkt_free(p);
}

static void do_block(scenario *sc, const char *name)
{
    if (sc->started) {
        fail(sc, "block: before the first query");
        return;
    }
    if (!sc->blocklist[0]) {
        snprintf(sc->blocklist, sizeof sc->blocklist, "/tmp/lh-scenario-XXXXXX");
        int fd = mkstemp(sc->blocklist);
        if (fd < 0) {
            fail(sc, "cannot create a blocklist file");
            sc->blocklist[0] = 0;
            return;
        }
        close(fd);
    }
    FILE *f = fopen(sc->blocklist, "a");
    if (f) {
        fprintf(f, "||%s^\n", name);
        fclose(f);
    }
}

static int split(char *line, char **w, int max)
{
    int n = 0;
    for (char *tok = strtok(line, " \t\r\n"); tok && n < max; tok = strtok(NULL, " \t\r\n"))
        w[n++] = tok;
    return n;
}

static bool run(const char *path)
{
    scenario *sc = calloc(1, sizeof *sc);
    sc->path = path;
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        free(sc);
        return false;
    }
    char line[LINE_MAX_LEN];
    while (!sc->failed && fgets(line, sizeof line, f)) {
        sc->line++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *w[16];
        int n = split(line, w, 16);
        if (!n) continue;
        if (!strcmp(w[0], "config") && n >= 3) {
            if (sc->started) fail(sc, "config: before the first query");
            size_t l = strlen(sc->cfg_text);
            if (!strcmp(w[1], "trust-anchor") && w[2][0] != '/') {
                const char *slash = strrchr(sc->path, '/');
                int dir = slash ? (int)(slash - sc->path) + 1 : 0;
                snprintf(sc->cfg_text + l, sizeof sc->cfg_text - l, "%s = %.*s%s\n", w[1], dir,
                         sc->path, w[2]);
            } else {
                snprintf(sc->cfg_text + l, sizeof sc->cfg_text - l, "%s = %s\n", w[1], w[2]);
            }
        } else if (!strcmp(w[0], "block") && n == 2) {
            do_block(sc, w[1]);
        } else if (!strcmp(w[0], "query")) {
            do_query(sc, w, n);
        } else if (!strcmp(w[0], "upstream") && n >= 2) {
            do_upstream(sc, w, n);
        } else if (!strcmp(w[0], "query-echo")) {
            do_query_echo(sc);
        } else if (!strcmp(w[0], "mixed-case")) {
            do_mixed_case(sc);
        } else if (!strcmp(w[0], "reply")) {
            do_reply(sc, f, w, n, false);
        } else if (!strcmp(w[0], "reply-lowercase")) {
            do_reply(sc, f, w, n, true);
        } else if (!strcmp(w[0], "reply-query")) {
            do_reply_query(sc);
        } else if (!strcmp(w[0], "reply-garbage")) {
            do_garbage(sc);
        } else if (!strcmp(w[0], "try-flags")) {
            do_try_flags(sc, w, n);
        } else if (!strcmp(w[0], "silence")) {
            sc->current = NULL;
        } else if (!strcmp(w[0], "time") && n == 2) {
            if (!sc->started && start(sc) != 0) break;
            lh_clock_advance(&sc->clock, strtoull(w[1], NULL, 10));
            settle(sc);
        } else if (!strcmp(w[0], "answer")) {
            do_answer(sc, f, w, n);
        } else if (!strcmp(w[0], "no-answer")) {
            if (sc->checked < sc->nanswers) fail(sc, "a client answer is waiting");
        } else if (!strcmp(w[0], "no-upstream")) {
            if (sc->fake && fake_oldest(sc->fake)) fail(sc, "an upstream try is outstanding");
        } else if (!strcmp(w[0], "tries") && n == 2) {
            unsigned got = sc->fake ? sc->fake->started : 0;
            if (got != (unsigned)atoi(w[1])) fail(sc, "%u upstream tries, expected %s", got, w[1]);
        } else {
            fail(sc, "unknown step: %s", w[0]);
        }
    }
    fclose(f);
    if (!sc->failed && sc->checked < sc->nanswers)
        fail(sc, "%u client answer(s) left unchecked", sc->nanswers - sc->checked);
    finish(sc);
    bool ok = !sc->failed;
    printf("%-4s %s\n", ok ? "ok" : "FAIL", path);
    free(sc);
    return ok;
}

int main(int argc, char **argv)
{
    /* The scenarios provoke warnings on purpose; LH_SCENARIO_DEBUG=1 shows everything. */
    lh_log_threshold = getenv("LH_SCENARIO_DEBUG") ? LH_LOG_DEBUG : LH_LOG_ERROR;
    unsigned passed = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) { /* every *.rpl in it, sorted */
            char pattern[4096];
            glob_t g;
            snprintf(pattern, sizeof pattern, "%s/*.rpl", argv[i]);
            if (glob(pattern, 0, NULL, &g) == 0) {
                for (size_t k = 0; k < g.gl_pathc; k++)
                    run(g.gl_pathv[k]) ? passed++ : failed++;
                globfree(&g);
            }
            continue;
        }
        run(argv[i]) ? passed++ : failed++;
    }
    printf("scenarios: %u passed, %u failed\n", passed, failed);
    return failed || !passed ? 1 : 0;
}
