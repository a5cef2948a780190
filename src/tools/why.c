/* why.c - see why.h. The verdict comes from the daemon's own decision step (lh_decide) and
 * answer checks (lh_policy_check_answer); this file only gathers the evidence (the list
 * rules, file:line) and renders it. */
#include "loophole/why.h"
#include "loophole/leak.h"
#include "loophole/overlay.h"

#include <errno.h>
#include <ldns/ldns.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- gathering --------------------------------------------------------------------------- */

typedef struct rules_ctx {
    const lh_name *name;
    const lh_list_info *info;
    lh_why_rules *out;
    bool oom;
} rules_ctx;

static int on_rule(void *ctx, const lh_rule *r, unsigned line, const char *text)
{
    rules_ctx *c = ctx;
    if (!lh_rule_matches(r, c->name)) return 0;
    lh_why_rules *o = c->out;
    o->total++;
    if (r->allow)
        o->allows++;
    else
        o->blocks++;
    if (o->nshown >= LH_WHY_RULES_SHOWN) return 0;
    static const char *const kinds[] = {"name", "pattern", "regex"};
    lh_why_rule *w = &o->shown[o->nshown];
    w->allow = r->allow;
    w->important = r->important;
    w->line = line;
    w->kind = kinds[r->kind];
    w->format = lh_list_format_name(r->format);
    w->scope = r->kind == LH_RULE_REGEX     ? "the whole name"
               : r->match == LH_MATCH_EXACT ? "the name only"
               : r->match == LH_MATCH_SUBS  ? "names below it"
                                            : "the name and below";
    w->file = strdup(c->info->path); /* a folder's file names are the reader's, for now */
    w->text = strdup(text);
    if (!w->file || !w->text) {
        free(w->file);
        free(w->text);
        c->oom = true;
        return -1;
    }
    o->nshown++;
    return 0;
}

static int on_list(void *ctx, const lh_list_info *info, FILE *f, char *err, size_t errlen)
{
    rules_ctx *c = ctx;
    c->info = info;
    lh_list_counts counts;
    return lh_list_read(f, info->path, info->format, info->allow, info->subdomains, on_rule, c,
                        &counts, true, err, errlen);
}

/* Every list rule matching `n`, in list order. Returns 0, or -1 out of memory; a list that
 * cannot be read is named in err and ends the scan. */
static int collect_rules(const lh_config *cfg, const lh_name *n, lh_why_rules *out, char *err,
                         size_t errlen)
{
    rules_ctx c = {.name = n, .out = out};
    err[0] = 0;
    int rc = lh_blockset_each_file(cfg, on_list, &c, err, errlen);
    if (c.oom) return -1;
    if (rc >= 0) err[0] = 0;
    return 0;
}

static void free_rules(lh_why_rules *r)
{
    for (unsigned i = 0; i < r->nshown; i++) {
        free(r->shown[i].file);
        free(r->shown[i].text);
    }
    r->nshown = 0;
}

static const char *origin_text(const lh_verdict *v)
{
    switch (v->origin) {
    case LH_ORIGIN_LOCALHOST:
        return "local: the localhost zone (RFC 6761)";
    case LH_ORIGIN_SPECIAL_USE:
        return "local: a special-use or locally served zone (RFC 6761/6303/7686)";
    case LH_ORIGIN_HOSTS:
        return "local: the hosts file";
    case LH_ORIGIN_CLASS:
        return "refused: class other than IN";
    case LH_ORIGIN_META_TYPE:
        return "answered here: a meta-query type (zone transfer, MAILA/MAILB, OPT, TSIG) is "
               "never forwarded";
    case LH_ORIGIN_CANARY:
        return "local: a canary name that keeps clients on this resolver";
    case LH_ORIGIN_BLOCKLIST:
        return "blocked";
    case LH_ORIGIN_LEAK_CANARY:
        return "local: a leak-check canary name (" LH_LEAK_CANARY_ZONE ")";
    case LH_ORIGIN_REBIND:
        return "refused: rebinding protection";
    default:
        return "forwarded upstream";
    }
}

/* The runtime rule that decides the name, from the rules themselves. */
static void runtime_rule_of(const lh_why_input *in, const lh_name *n, lh_why *w)
{
    uint64_t h[LH_LABELS_MAX];
    lh_block_match bm;
    size_t i;
    lh_name_hashes(n, h);
    if (!in->ov || !lh_overlay_match(in->ov, n, h, &bm, &i)) return;
    char text[LH_NAME_MAX * 4 + 8];
    lh_overlay_rule_text(&in->ov->rules[i], text, sizeof text);
    snprintf(w->runtime_rule, sizeof w->runtime_rule, "%s:%u: %s",
             in->ov_path ? in->ov_path : "(runtime rules)", in->ov->rules[i].line, text);
    w->runtime_allow = in->ov->rules[i].allow;
}

/* Checks the upstream answer as the forwarder would (lh_policy_check_answer). */
static int check_answer(const lh_why_input *in, lh_why *w, char *err, size_t errlen)
{
    lh_answer_info ai;
    lh_name qn, target;
    w->has_answer = true;
    w->answer_from = in->answer_from ? in->answer_from : "the given answer";
    if (in->answer_len > LH_MSG_MAX || lh_answer_scan(in->answer, in->answer_len, &ai) != 0) {
        snprintf(w->answer_err, sizeof w->answer_err, "not a well-formed DNS answer");
        return 0;
    }
    if (!lh_name_read(in->answer, in->answer_len, LH_DNS_HEADER_LEN, &qn) ||
        qn.len != w->d.msg.qname.len || memcmp(qn.wire, w->d.msg.qname.wire, qn.len) != 0) {
        char t[LH_NAME_MAX * 4 + 1];
        lh_name_to_text(qn.wire, t, sizeof t);
        snprintf(w->answer_err, sizeof w->answer_err, "it answers %s, not %s", t, w->name);
        return 0;
    }
    const lh_verdict *v = &w->d.verdict;
    if (v->kind != LH_VERDICT_FORWARD) return 0; /* answered here: never asked upstream */
    w->answer_used = true;
    w->ntargets = ai.ntargets;
    w->private_address = ai.private_address;
    w->rebind_on = in->policy->rebind_protection;
    lh_answer_ctx ctx = {
        .qname = &w->d.msg.qname, .group = v->group, .paused = in->paused, .ov = in->ov};
    w->check = lh_policy_check_answer(in->policy, &ctx, in->answer, in->answer_len, &ai,
                                      &w->instead, &target);
    if (w->check == LH_CHECK_PASS) return 0;
    w->instead_len = lh_answer_build(&w->d.msg, &w->instead, w->instead_wire,
                                     sizeof w->instead_wire, LH_MSG_MAX, 1232);
    if (w->check != LH_CHECK_UNCLOAKED) return 0;
    w->instead.match_name = NULL; /* `target` is this function's */
    lh_name_to_text(target.wire, w->target, sizeof w->target);
    return collect_rules(in->cfg, &target, &w->target_rules, err, errlen);
}

int lh_why_explain(const lh_why_input *in, lh_why *w, char *err, size_t errlen)
{
    memset(w, 0, offsetof(lh_why, query));
    ldns_rr_type t = ldns_get_rr_type_by_name(in->type);
    size_t qlen =
        t ? lh_wire_build_query(w->query, sizeof w->query, in->name, (uint16_t)t, 0x1d00) : 0;
    if (!qlen || lh_decide(in->policy, in->ov, false, w->query, qlen, &w->d) != LH_PARSE_OK) {
        snprintf(err, errlen, t ? "'%s' is not a valid DNS name" : "'%s' is not a record type",
                 t ? in->name : in->type);
        return -2;
    }
    lh_name_to_text(w->d.msg.qname.wire, w->name, sizeof w->name);
    char *tn = ldns_rr_type2str(t);
    snprintf(w->type, sizeof w->type, "%s", tn ? tn : in->type);
    free(tn);
    const lh_verdict *v = &w->d.verdict;
    w->paused = in->paused;
    w->verdict = origin_text(v);
    w->blocked = v->origin == LH_ORIGIN_BLOCKLIST;
    /* A runtime rule is checked before the lists (policy.c, step 7), but after the local
     * answers: it decides only a name the lists would decide. */
    bool list_step = w->blocked || v->kind == LH_VERDICT_FORWARD;
    if (list_step && in->runtime_rule) {
        snprintf(w->runtime_rule, sizeof w->runtime_rule, "%s", in->runtime_rule);
        w->runtime_allow = strstr(in->runtime_rule, ": @@") != NULL;
    } else if (list_step) {
        runtime_rule_of(in, &w->d.msg.qname, w);
    }
    if (w->runtime_rule[0]) {
        w->blocked = !w->runtime_allow;
        w->verdict = w->blocked ? "blocked by a runtime rule"
                                : "allowed by a runtime rule: forwarded upstream";
    }
    if (collect_rules(in->cfg, &w->d.msg.qname, &w->rules, w->list_err, sizeof w->list_err)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->allow_note = !v->allowed || w->runtime_rule[0] ? ""
                    : w->rules.blocks                 ? " (an allow rule overrides the block rules)"
                                      : " (an allow rule matches; no block rule does)";
    if (v->kind != LH_VERDICT_FORWARD)
        w->local_len = lh_answer_build(&w->d.msg, v, w->local, sizeof w->local, LH_MSG_MAX, 1232);
    if (in->answer && check_answer(in, w, err, errlen) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

void lh_why_free(lh_why *w)
{
    free_rules(&w->rules);
    free_rules(&w->target_rules);
}

/* --- text -------------------------------------------------------------------------------- */

/* "answer: NOERROR, 1 answer record(s)" and the records, as ldns prints them. */
static void print_answer(FILE *out, const uint8_t *wire, size_t n)
{
    ldns_pkt *pkt = NULL;
    if (!n || ldns_wire2pkt(&pkt, wire, n) != LDNS_STATUS_OK) return;
    char *rcode = ldns_pkt_rcode2str(ldns_pkt_get_rcode(pkt));
    fprintf(out, "answer: %s", rcode ? rcode : "?");
    free(rcode);
    ldns_rr_list *an = ldns_pkt_answer(pkt), *ns = ldns_pkt_authority(pkt);
    fprintf(out, ", %zu answer record(s)%s\n", ldns_rr_list_rr_count(an),
            ldns_rr_list_rr_count(ns) ? ", SOA in authority" : "");
    ldns_rr_list_print(out, an);
    ldns_pkt_free(pkt);
}

static void print_rules(FILE *out, const lh_why_rules *r, const char *name)
{
    for (unsigned i = 0; i < r->nshown; i++) {
        const lh_why_rule *x = &r->shown[i];
        fprintf(out, "  %-5s %s:%u: %s\n        (%s rule, %s format, matches %s%s)\n",
                x->allow ? "allow" : "block", x->file, x->line, x->text, x->kind, x->format,
                x->scope, x->important ? ", $important" : "");
    }
    if (r->total == 0 && name)
        fprintf(out, "  no list rule matches %s\n", name);
    else if (r->total > r->nshown)
        fprintf(out, "  ... and %u more matching rules\n", r->total - r->nshown);
}

static void print_check(const lh_why *w, FILE *out)
{
    fprintf(out, "upstream answer (%s): ", w->answer_from);
    if (w->answer_err[0]) {
        fprintf(out, "not used: %s\n", w->answer_err);
        return;
    }
    if (!w->answer_used) {
        fprintf(out, "not used: %s is answered here, never asked upstream\n", w->name);
        return;
    }
    switch (w->check) {
    case LH_CHECK_PASS:
        fprintf(out, "passes the checks, forwarded as it is: %s; %s\n",
                w->paused     ? "blocking is paused, so no target is checked"
                : w->ntargets ? "no CNAME/SVCB target is blocked"
                              : "no CNAME/SVCB target",
                !w->private_address  ? "no private or loopback address"
                : !w->rebind_on      ? "a private address, but rebind-protection is off"
                : w->d.verdict.group ? "a private address from a forward zone's servers"
                                     : "a private address under a rebind-allow domain");
        return;
    case LH_CHECK_REBIND:
        fprintf(out,
                "refused (rebind): it has a private or loopback address, and %s is in no "
                "forward zone or rebind-allow domain while rebind-protection is on\n",
                w->name);
        break;
    case LH_CHECK_TOO_MANY:
        fprintf(out, "uncloaked: it leads to %u names, more than the %u checked; blocked\n",
                w->ntargets, LH_ANSWER_TARGETS_MAX);
        break;
    case LH_CHECK_UNCLOAKED:
        fprintf(out, "uncloaked: it leads to %s, which is blocked\n", w->target);
        break;
    }
    fprintf(out, "instead, ");
    print_answer(out, w->instead_wire, w->instead_len);
    if (w->check == LH_CHECK_UNCLOAKED) print_rules(out, &w->target_rules, NULL);
}

void lh_why_print(const lh_why *w, FILE *out)
{
    const lh_verdict *v = &w->d.verdict;
    fprintf(out, "%s %s: %s%s%s\n", w->name, w->type, w->verdict, w->allow_note,
            w->blocked && w->paused ? "; blocking is paused, so it is forwarded for now" : "");
    if (v->kind != LH_VERDICT_FORWARD) print_answer(out, w->local, w->local_len);
    if (w->runtime_rule[0])
        fprintf(out,
                "  %-5s %s\n        (runtime rule from 'loophole %s', checked before the lists: it "
                "decides)\n",
                w->runtime_allow ? "allow" : "block", w->runtime_rule,
                w->runtime_allow ? "allow" : "block");
    bool list_step =
        v->origin == LH_ORIGIN_BLOCKLIST || v->allowed || v->kind == LH_VERDICT_FORWARD;
    print_rules(out, &w->rules, list_step ? w->name : NULL);
    if (w->has_answer) print_check(w, out);
}

/* --- JSON -------------------------------------------------------------------------------- */

static void json_rules(lh_sbuf *out, const lh_why_rules *r)
{
    lh_sbuf_printf(out, "[");
    for (unsigned i = 0; i < r->nshown; i++) {
        const lh_why_rule *x = &r->shown[i];
        lh_sbuf_printf(out, "%s{\"action\":\"%s\",\"file\":", i ? "," : "",
                       x->allow ? "allow" : "block");
        lh_sbuf_json_str(out, x->file);
        lh_sbuf_printf(out, ",\"line\":%u,\"text\":", x->line);
        lh_sbuf_json_str(out, x->text);
        lh_sbuf_printf(out, ",\"kind\":\"%s\",\"format\":\"%s\",\"scope\":\"%s\",\"important\":%s}",
                       x->kind, x->format, x->scope, x->important ? "true" : "false");
    }
    lh_sbuf_printf(out, "]");
}

void lh_why_render_json(const lh_why *w, lh_sbuf *out)
{
    lh_sbuf_printf(out, "{\"name\":");
    lh_sbuf_json_str(out, w->name);
    lh_sbuf_printf(out, ",\"type\":");
    lh_sbuf_json_str(out, w->type);
    lh_sbuf_printf(out, ",\"blocked\":%s,\"paused\":%s,\"verdict\":",
                   w->blocked && !w->paused ? "true" : "false", w->paused ? "true" : "false");
    char line[512];
    snprintf(line, sizeof line, "%s%s%s", w->verdict, w->allow_note,
             w->blocked && w->paused ? "; blocking is paused, so it is forwarded for now" : "");
    lh_sbuf_json_str(out, line);
    lh_sbuf_printf(out, ",\"runtime_rule\":");
    if (w->runtime_rule[0])
        lh_sbuf_json_str(out, w->runtime_rule);
    else
        lh_sbuf_printf(out, "null");
    lh_sbuf_printf(out, ",\"rules\":");
    json_rules(out, &w->rules);
    lh_sbuf_printf(out, ",\"more\":%u,\"error\":", w->rules.total - w->rules.nshown);
    if (w->list_err[0])
        lh_sbuf_json_str(out, w->list_err);
    else
        lh_sbuf_printf(out, "null");
    lh_sbuf_printf(out, ",\"answer_check\":");
    if (!w->has_answer) {
        lh_sbuf_printf(out, "null}\n");
        return;
    }
    lh_sbuf_printf(out, "{\"from\":");
    lh_sbuf_json_str(out, w->answer_from);
    lh_sbuf_printf(out, ",\"result\":");
    lh_sbuf_json_str(out, w->answer_err[0] || !w->answer_used ? "not used"
                                                              : lh_answer_check_name(w->check));
    lh_sbuf_printf(out, ",\"error\":");
    if (w->answer_err[0])
        lh_sbuf_json_str(out, w->answer_err);
    else
        lh_sbuf_printf(out, "null");
    lh_sbuf_printf(out, ",\"targets\":%u,\"target\":", w->ntargets);
    if (w->target[0])
        lh_sbuf_json_str(out, w->target);
    else
        lh_sbuf_printf(out, "null");
    lh_sbuf_printf(out, ",\"target_rules\":");
    json_rules(out, &w->target_rules);
    lh_sbuf_printf(out, "}}\n");
}

void lh_why_json(const lh_config *cfg, const lh_policy *p, const char *runtime_rule, bool paused,
                 const char *name, const char *type, lh_sbuf *out)
{
    lh_why_input in = {.cfg = cfg,
                       .policy = p,
                       .runtime_rule = runtime_rule,
                       .paused = paused,
                       .name = name,
                       .type = type};
    lh_why *w = malloc(sizeof *w);
    char err[LH_ERR_MAX] = "out of memory";
    if (!w || lh_why_explain(&in, w, err, sizeof err) != 0) {
        lh_sbuf_printf(out, "{\"error\":");
        lh_sbuf_json_str(out, err);
        lh_sbuf_printf(out, "}\n");
    } else {
        lh_why_render_json(w, out);
    }
    if (w) lh_why_free(w);
    free(w);
}

/* --- upstream answers: a file, or a live lookup ------------------------------------------ */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = 0;
    return s;
}

/* Do two names match, ignoring case and a trailing dot? */
static bool same_name(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la && a[la - 1] == '.') la--;
    if (lb && b[lb - 1] == '.') lb--;
    return la == lb && !strncasecmp(a, b, la);
}

/* ";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 1": the rcode, or -1. */
static int header_rcode(const char *line)
{
    const char *s = strstr(line, "status: ");
    if (!s) return -1;
    s += 8;
    for (int r = 0; r < 16; r++) {
        ldns_lookup_table *t = ldns_lookup_by_id(ldns_rcodes, r);
        if (t && !strncasecmp(s, t->name, strlen(t->name)) &&
            (s[strlen(t->name)] == ',' || s[strlen(t->name)] == 0))
            return r;
    }
    return -1;
}

size_t lh_why_read_answer(const char *path, const char *name, uint16_t type, uint8_t *out,
                          size_t cap, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return 0;
    }
    ldns_pkt *pkt = NULL;
    size_t n = 0;
    if (ldns_pkt_query_new_frm_str(&pkt, name, (ldns_rr_type)type, LDNS_RR_CLASS_IN,
                                   LDNS_QR | LDNS_RD | LDNS_RA) != LDNS_STATUS_OK) {
        snprintf(err, errlen, "'%s' is not a valid DNS name", name);
        fclose(f);
        return 0;
    }
    ldns_pkt_set_id(pkt, 0);
    ldns_pkt_section sec = LDNS_SECTION_ANSWER;
    bool question = false;
    char buf[4096];
    unsigned lineno = 0;
    while (fgets(buf, sizeof buf, f)) {
        lineno++;
        char *l = trim(buf);
        if (!*l) continue;
        if (*l == ';') {
            char qn[LH_NAME_MAX * 4 + 2];
            /* ";www.example.com.  IN  A" under ";; QUESTION SECTION:": whose answer it is */
            if (question && l[1] != ';' && sscanf(l + 1, "%1021s", qn) == 1 &&
                !same_name(qn, name)) {
                size_t ql = strlen(qn);
                if (ql > 1 && qn[ql - 1] == '.') qn[ql - 1] = 0;
                snprintf(err, errlen, "%s:%u: it answers %s, not %s", path, lineno, qn, name);
                goto out;
            }
            question = strstr(l, "QUESTION SECTION") != NULL || (question && l[1] != ';');
            int rc = header_rcode(l);
            if (rc >= 0) ldns_pkt_set_rcode(pkt, (uint8_t)rc);
            if (strstr(l, "ANSWER SECTION")) sec = LDNS_SECTION_ANSWER;
            if (strstr(l, "AUTHORITY SECTION")) sec = LDNS_SECTION_AUTHORITY;
            if (strstr(l, "ADDITIONAL SECTION")) sec = LDNS_SECTION_ADDITIONAL;
            continue;
        }
        ldns_rr *rr = NULL;
        ldns_status s = ldns_rr_new_frm_str(&rr, l, 3600, NULL, NULL);
        if (s == LDNS_STATUS_OK && ldns_rr_get_type(rr) == 0) { /* "word word": no type */
            ldns_rr_free(rr);
            s = LDNS_STATUS_SYNTAX_TYPE_ERR;
        }
        if (s != LDNS_STATUS_OK) {
            snprintf(err, errlen, "%s:%u: not a resource record (%s): %s", path, lineno,
                     ldns_get_errorstr_by_id(s), l);
            goto out;
        }
        if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_OPT) { /* the forwarder strips it too */
            ldns_rr_free(rr);
            continue;
        }
        ldns_pkt_push_rr(pkt, sec, rr);
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        goto out;
    }
    uint8_t *wire = NULL;
    size_t len = 0;
    if (ldns_pkt2wire(&wire, pkt, &len) != LDNS_STATUS_OK || len > cap) {
        snprintf(err, errlen, "%s: the answer does not fit a DNS message", path);
        free(wire);
        goto out;
    }
    memcpy(out, wire, len);
    free(wire);
    n = len;
out:
    ldns_pkt_free(pkt);
    fclose(f);
    return n;
}

size_t lh_why_lookup(const lh_config *cfg, unsigned group, const char *name, uint16_t type,
                     uint8_t *out, size_t cap, char *from, size_t fromlen, char *err, size_t errlen)
{
    lh_sockaddr servers[LH_UPSTREAMS_MAX];
    const lh_upstream_tls *tls = NULL;
    unsigned n;
    char source[512];
    if (group == 0) {
        n = lh_config_default_upstreams(cfg, servers, LH_UPSTREAMS_MAX, source, sizeof source);
        if (cfg->nupstreams) tls = cfg->upstream_tls; /* resolv.conf servers are plain */
    } else {
        const lh_forward_zone *z = &cfg->forward_zones[group - 1];
        n = z->nservers;
        memcpy(servers, z->servers, n * sizeof *servers);
        tls = z->tls;
    }
    unsigned i = 0;
    while (i < n && tls && tls[i].on)
        i++;
    if (i == n) {
        snprintf(err, errlen,
                 n ? "no plain-DNS upstream to ask (DNS over TLS is not used by why --lookup)"
                   : "no upstream to ask");
        return 0;
    }
    lh_addr_format(&servers[i], from, fromlen);
    ldns_resolver *res = ldns_resolver_new();
    uint16_t port = 53;
    ldns_rdf *ns = ldns_sockaddr_storage2rdf(&servers[i].ss, &port);
    ldns_rdf *qn = ldns_dname_new_frm_str(name);
    ldns_pkt *p = NULL;
    size_t len = 0;
    if (!res || !ns || !qn || ldns_resolver_push_nameserver(res, ns) != LDNS_STATUS_OK) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    ldns_resolver_set_port(res, port);
    ldns_resolver_set_recursive(res, true);
    ldns_resolver_set_edns_udp_size(res, 1232);
    ldns_resolver_set_fallback(res, true);
    ldns_resolver_set_retry(res, 1);
    ldns_resolver_set_timeout(res,
                              (struct timeval){.tv_sec = cfg->upstream_timeout_ms / 1000,
                                               .tv_usec = cfg->upstream_timeout_ms % 1000 * 1000});
    if (ldns_resolver_query_status(&p, res, qn, (ldns_rr_type)type, LDNS_RR_CLASS_IN, LDNS_RD) !=
            LDNS_STATUS_OK ||
        !p) {
        snprintf(err, errlen, "no answer from %s", from);
        goto out;
    }
    uint8_t *wire = NULL;
    if (ldns_pkt2wire(&wire, p, &len) != LDNS_STATUS_OK || len > cap) {
        snprintf(err, errlen, "the answer from %s does not fit a DNS message", from);
        len = 0;
    } else {
        memcpy(out, wire, len);
    }
    free(wire);
out:
    ldns_pkt_free(p);
    ldns_rdf_deep_free(qn);
    ldns_rdf_deep_free(ns); /* the resolver keeps a copy */
    if (res) ldns_resolver_deep_free(res);
    return len;
}
