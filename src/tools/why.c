/* why.c - see why.h. */
#include "loophole/why.h"

#include <ldns/ldns.h>
#include <string.h>

#define WHY_RULES_SHOWN 20

typedef struct why_ctx {
    lh_name name;
    const lh_list_info *info;
    lh_sbuf *out;
    unsigned shown;
} why_ctx;

static int on_rule(void *ctx, const lh_rule *r, unsigned line, const char *text)
{
    why_ctx *w = ctx;
    if (!lh_rule_matches(r, &w->name)) return 0;
    if (w->shown++ >= WHY_RULES_SHOWN) return 0;
    static const char *const kinds[] = {"name", "pattern", "regex"};
    const char *scope = r->kind == LH_RULE_REGEX     ? "the whole name"
                        : r->match == LH_MATCH_EXACT ? "the name only"
                        : r->match == LH_MATCH_SUBS  ? "names below it"
                                                     : "the name and below";
    lh_sbuf_printf(w->out, "%s{\"action\":\"%s\",\"file\":", w->shown > 1 ? "," : "",
                   r->allow ? "allow" : "block");
    lh_sbuf_json_str(w->out, w->info->path);
    lh_sbuf_printf(w->out, ",\"line\":%u,\"text\":", line);
    lh_sbuf_json_str(w->out, text);
    lh_sbuf_printf(w->out, ",\"kind\":\"%s\",\"format\":\"%s\",\"scope\":\"%s\",\"important\":%s}",
                   kinds[r->kind], lh_list_format_name(r->format), scope,
                   r->important ? "true" : "false");
    return 0;
}

static int on_list(void *ctx, const lh_list_info *info, FILE *f, char *err, size_t errlen)
{
    why_ctx *w = ctx;
    w->info = info;
    lh_list_counts counts;
    return lh_list_read(f, info->path, info->format, info->allow, info->subdomains, on_rule, w,
                        &counts, true, err, errlen);
}

static const char *verdict_text(const lh_verdict *v)
{
    switch (v->origin) {
    case LH_ORIGIN_LOCALHOST:
        return "answered locally: the localhost zone (RFC 6761)";
    case LH_ORIGIN_SPECIAL_USE:
        return "answered locally: a special-use or locally served zone";
    case LH_ORIGIN_HOSTS:
        return "answered locally: the hosts file";
    case LH_ORIGIN_CLASS:
        return "refused: class other than IN";
    case LH_ORIGIN_CANARY:
        return "answered locally: a canary name that keeps clients on this resolver";
    case LH_ORIGIN_BLOCKLIST:
        return "blocked";
    case LH_ORIGIN_LEAK_CANARY:
        return "answered locally: a leak-check canary name";
    default:
        return "forwarded upstream";
    }
}

void lh_why_json(const lh_config *cfg, const lh_policy *p, const char *runtime_rule, bool paused,
                 const char *name, const char *type, lh_sbuf *out)
{
    ldns_rr_type t = ldns_get_rr_type_by_name(type);
    uint8_t q[LH_MSG_MAX];
    lh_msg m;
    size_t qlen = t ? lh_wire_build_query(q, sizeof q, name, (uint16_t)t, 0x1d00) : 0;
    if (!qlen || lh_msg_parse_query(q, qlen, &m) != LH_PARSE_OK) {
        lh_sbuf_printf(out, "{\"error\":");
        char msg[LH_NAME_MAX * 4 + 64];
        snprintf(msg, sizeof msg, t ? "'%s' is not a valid DNS name" : "'%s' is not a record type",
                 t ? name : type);
        lh_sbuf_json_str(out, msg);
        lh_sbuf_printf(out, "}\n");
        return;
    }
    uint64_t h[LH_LABELS_MAX];
    lh_verdict v;
    lh_name_hashes(&m.qname, h);
    lh_policy_decide(p, &m, h, &v);
    char text[LH_NAME_MAX * 4 + 1];
    lh_name_to_text(m.qname.wire, text, sizeof text);
    const char *verdict = verdict_text(&v);
    bool blocked = v.origin == LH_ORIGIN_BLOCKLIST;
    /* A runtime rule is checked before the lists (policy.c, step 7), but after the local
     * answers: it decides only a name the lists would decide. */
    bool list_step = blocked || v.kind == LH_VERDICT_FORWARD;
    if (runtime_rule && list_step) {
        blocked = !strstr(runtime_rule, ": @@");
        verdict = blocked ? "blocked by a runtime rule" : "allowed by a runtime rule: forwarded";
    }
    lh_sbuf_printf(out, "{\"name\":");
    lh_sbuf_json_str(out, text);
    lh_sbuf_printf(out, ",\"type\":");
    lh_sbuf_json_str(out, type);
    lh_sbuf_printf(out, ",\"blocked\":%s,\"paused\":%s,\"verdict\":",
                   blocked && !paused ? "true" : "false", paused ? "true" : "false");
    char line[256];
    snprintf(line, sizeof line, "%s%s%s", verdict,
             v.allowed && !runtime_rule ? " (an allow rule overrides the block rules)" : "",
             blocked && paused ? "; blocking is paused, so it is forwarded for now" : "");
    lh_sbuf_json_str(out, line);
    lh_sbuf_printf(out, ",\"runtime_rule\":");
    if (runtime_rule && list_step)
        lh_sbuf_json_str(out, runtime_rule);
    else
        lh_sbuf_printf(out, "null");
    lh_sbuf_printf(out, ",\"rules\":[");
    why_ctx w = {.name = m.qname, .out = out};
    char err[LH_ERR_MAX] = "";
    int rc = lh_blockset_each_file(cfg, on_list, &w, err, sizeof err);
    lh_sbuf_printf(
        out, "],\"more\":%u,\"error\":", w.shown > WHY_RULES_SHOWN ? w.shown - WHY_RULES_SHOWN : 0);
    if (rc < 0)
        lh_sbuf_json_str(out, err);
    else
        lh_sbuf_printf(out, "null");
    lh_sbuf_printf(out, "}\n");
}
