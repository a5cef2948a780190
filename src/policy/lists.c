/* lists.c - list line parsers for every supported format (docs/blocklists.md has the rules).
 *
 * Detection is per line, so a file mixing formats (an adblock list with a few hosts lines)
 * loads as its author meant. Lines that are valid but mean nothing to a DNS filter (cosmetic
 * rules, URL paths, ports, localhost entries) are counted as ignored, never misread as names. */
#include "loophole/lists.h"
#include "loophole/log.h"
#include "loophole/regex.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define LINE_MAX_LEN 4096

static const char *const format_names[] = {"auto",     "hosts",   "domains", "adblock",
                                           "wildcard", "dnsmasq", "regex"};

const char *lh_list_format_name(enum lh_list_format f)
{
    return format_names[f];
}

int lh_list_format_parse(const char *s, enum lh_list_format *out)
{
    for (unsigned i = 0; i < sizeof format_names / sizeof *format_names; i++)
        if (!strcmp(s, format_names[i])) {
            *out = (enum lh_list_format)i;
            return 0;
        }
    return -1;
}

/* Names that hosts files map to themselves; blocking them would break the machine. */
static const char *const host_self_names[] = {
    "localhost",     "localhost.localdomain", "local",        "broadcasthost",
    "ip6-localhost", "ip6-loopback",          "ip6-localnet", "ip6-mcastprefix",
    "ip6-allnodes",  "ip6-allrouters",        "ip6-allhosts", "0.0.0.0",
};

static bool is_self_name(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof host_self_names / sizeof *host_self_names; i++)
        if (strlen(host_self_names[i]) == n && !strncasecmp(s, host_self_names[i], n)) return true;
    return n >= 10 && !strncasecmp(s + n - 10, ".localhost", 10);
}

static inline bool name_char(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_';
}

static bool is_ipv4_literal(const char *s, size_t n)
{
    char buf[INET_ADDRSTRLEN];
    struct in_addr a;
    if (n >= sizeof buf) return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    return inet_pton(AF_INET, buf, &a) == 1;
}

/* Turns s[0..n) into a NAME rule. Returns NULL or an error reason. */
static const char *make_name(lh_rule *r, const char *s, size_t n)
{
    if (n == 0) return "empty name";
    for (size_t i = 0; i < n; i++)
        if (!name_char((unsigned char)s[i]) && s[i] != '.') return "invalid character in name";
    if (lh_name_from_text(s, n, &r->name) != 0)
        return "empty label, label over 63 bytes or name over 255 bytes";
    if (r->name.nlabels == 0) return "empty name";
    r->kind = LH_RULE_NAME;
    return NULL;
}

/* Turns s[0..n) into a GLOB rule ('*' inside), lowercased. */
static const char *make_glob(lh_rule *r, const char *prefix, const char *s, size_t n)
{
    size_t p = strlen(prefix);
    if (p + n >= sizeof r->pattern || n == 0) return "pattern too long";
    memcpy(r->pattern, prefix, p);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!name_char(c) && c != '.' && c != '*') return "invalid character in name pattern";
        r->pattern[p + i] = (char)tolower(c);
    }
    r->pattern[p + n] = 0;
    r->kind = LH_RULE_GLOB;
    return NULL;
}

static bool has_prefix(const char *s, size_t n, const char *pre)
{
    size_t p = strlen(pre);
    return n >= p && !strncmp(s, pre, p);
}

typedef struct emit_ctx {
    lh_rule *rule;
    bool allow;
    int subdomains;
    lh_rule_fn fn;
    void *ctx;
    unsigned lineno;
    const char *text;
    int rc;
    unsigned emitted;
} emit_ctx;

static void emit(emit_ctx *e)
{
    lh_rule *r = e->rule;
    if (e->allow) r->allow = true;
    if (r->kind == LH_RULE_NAME && e->subdomains >= 0 && (r->match & LH_MATCH_EXACT))
        r->match = e->subdomains ? (LH_MATCH_EXACT | LH_MATCH_SUBS) : LH_MATCH_EXACT;
    e->emitted++;
    if (!e->rc) e->rc = e->fn(e->ctx, r, e->lineno, e->text);
}

static lh_line_result parse_hosts(const char *s, size_t n, emit_ctx *e, const char **reason)
{
    char addr[INET6_ADDRSTRLEN + 16];
    uint8_t buf[16];
    size_t i = 0;
    while (i < n && !isspace((unsigned char)s[i]))
        i++;
    if (i >= sizeof addr) {
        *reason = "first field is not an IP address";
        return LH_LINE_ERROR;
    }
    memcpy(addr, s, i);
    addr[i] = 0;
    char *zone = strchr(addr, '%');
    if (zone) *zone = 0;
    if (inet_pton(AF_INET, addr, buf) != 1 && inet_pton(AF_INET6, addr, buf) != 1) {
        *reason = "several fields but the first is not an IP address (hosts format)";
        return LH_LINE_ERROR;
    }
    bool any = false;
    const char *bad = NULL;
    while (i < n) {
        while (i < n && isspace((unsigned char)s[i]))
            i++;
        size_t start = i;
        while (i < n && !isspace((unsigned char)s[i]))
            i++;
        if (i == start) break;
        if (is_self_name(s + start, i - start)) continue;
        memset(e->rule, 0, offsetof(lh_rule, name));
        e->rule->format = LH_FMT_HOSTS;
        e->rule->match = LH_MATCH_EXACT;
        const char *why = make_name(e->rule, s + start, i - start);
        if (why) {
            bad = why;
            continue;
        }
        any = true;
        emit(e);
    }
    if (bad && !any) {
        *reason = bad;
        return LH_LINE_ERROR;
    }
    return any ? LH_LINE_RULE : LH_LINE_IGNORED;
}

static lh_line_result parse_domain(const char *s, size_t n, emit_ctx *e, const char **reason)
{
    lh_rule *r = e->rule;
    for (size_t i = 0; i < n; i++)
        if (isspace((unsigned char)s[i])) {
            *reason = "more than one field (a hosts line starts with an address)";
            return LH_LINE_ERROR;
        }
    if (is_self_name(s, n)) return LH_LINE_IGNORED;
    if (is_ipv4_literal(s, n)) return LH_LINE_IGNORED;
    r->format = LH_FMT_DOMAINS;
    r->match = LH_MATCH_EXACT;
    if ((*reason = make_name(r, s, n))) return LH_LINE_ERROR;
    emit(e);
    return LH_LINE_RULE;
}

static lh_line_result parse_wildcard(const char *s, size_t n, emit_ctx *e, const char **reason)
{
    lh_rule *r = e->rule;
    r->format = LH_FMT_WILDCARD;
    /* "*.name": the name and everything below it (as the wildcard lists mean it). */
    if (has_prefix(s, n, "*.") && !memchr(s + 2, '*', n - 2)) {
        r->match = LH_MATCH_EXACT | LH_MATCH_SUBS;
        if ((*reason = make_name(r, s + 2, n - 2))) return LH_LINE_ERROR;
    } else {
        r->match = LH_MATCH_EXACT;
        if ((*reason = make_glob(r, "", s, n))) return LH_LINE_ERROR;
    }
    emit(e);
    return LH_LINE_RULE;
}

/* dnsmasq: address=/a/b/IP-or-#, server=/a/ (no server: answered locally, a block),
 * local=/a/. Every domain matches itself and below, as in dnsmasq. */
static lh_line_result parse_dnsmasq(const char *s, size_t n, emit_ctx *e, const char **reason)
{
    lh_rule *r = e->rule;
    const char *p;
    bool is_server = false;
    if (has_prefix(s, n, "address=/"))
        p = s + 8;
    else if (has_prefix(s, n, "server=/")) {
        p = s + 7;
        is_server = true;
    } else if (has_prefix(s, n, "local=/"))
        p = s + 6;
    else {
        *reason = "not an address=, server= or local= line";
        return LH_LINE_ERROR;
    }
    const char *end = s + n, *last = p;
    for (const char *q = end - 1; q > p; q--) /* the last '/' ends the domain part */
        if (*q == '/') {
            last = q;
            break;
        }
    if (last == p) {
        *reason = "missing the closing '/'";
        return LH_LINE_ERROR;
    }
    if (is_server && last + 1 < end) /* server=/x/1.2.3.4 forwards, it does not block */
        return LH_LINE_IGNORED;
    bool any = false;
    for (const char *d = p + 1; d < last;) {
        const char *slash = memchr(d, '/', (size_t)(last - d));
        if (!slash) slash = last;
        if (slash > d) {
            memset(r, 0, offsetof(lh_rule, name));
            r->format = LH_FMT_DNSMASQ;
            r->match = LH_MATCH_EXACT | LH_MATCH_SUBS;
            if ((*reason = make_name(r, d, (size_t)(slash - d)))) return LH_LINE_ERROR;
            emit(e);
            any = true;
        }
        d = slash + 1;
    }
    if (!any) {
        *reason = "no domain between the slashes";
        return LH_LINE_ERROR;
    }
    return LH_LINE_RULE;
}

static lh_line_result parse_regex(const char *s, size_t n, emit_ctx *e, const char **reason)
{
    lh_rule *r = e->rule;
    if (n >= sizeof r->pattern) {
        *reason = "regular expression too long";
        return LH_LINE_ERROR;
    }
    r->format = LH_FMT_REGEX;
    r->kind = LH_RULE_REGEX;
    memcpy(r->pattern, s, n);
    r->pattern[n] = 0;
    emit(e);
    return LH_LINE_RULE;
}

/* Adblock-style DNS rules (AdGuard DNS filtering syntax, the subset DNS can apply). */
static lh_line_result parse_adblock(const char *s, size_t n, emit_ctx *e, const char **reason)
{
    lh_rule *r = e->rule;
    r->format = LH_FMT_ADBLOCK;
    if (has_prefix(s, n, "@@")) {
        r->allow = true;
        s += 2;
        n -= 2;
    }
    /* /regex/ */
    if (n >= 3 && s[0] == '/' && s[n - 1] == '/') return parse_regex(s + 1, n - 2, e, reason);
    if (n && s[0] == '/') /* a URL path on any host: nothing for DNS */
        return LH_LINE_IGNORED;
    /* Modifiers: only $important means something to a DNS filter; a rule limited to some
     * clients or types by another modifier must not apply to everyone, so it is ignored. */
    const char *dollar = memchr(s, '$', n);
    if (dollar) {
        const char *m = dollar + 1, *end = s + n;
        while (m < end) {
            const char *comma = memchr(m, ',', (size_t)(end - m));
            size_t ml = (size_t)((comma ? comma : end) - m);
            if (ml == 9 && !strncmp(m, "important", 9))
                r->important = true;
            else
                return LH_LINE_IGNORED;
            m += ml + 1;
        }
        n = (size_t)(dollar - s);
    }
    const char *glob_prefix = "";
    if (has_prefix(s, n, "||")) {
        s += 2, n -= 2;
        r->match = LH_MATCH_EXACT | LH_MATCH_SUBS;
    } else if (has_prefix(s, n, "|")) {
        s += 1, n -= 1;
        r->match = LH_MATCH_EXACT;
    } else if (has_prefix(s, n, ".")) { /* ".name^": strictly below name */
        s += 1, n -= 1;
        r->match = LH_MATCH_SUBS;
    } else {
        r->match = LH_MATCH_EXACT;
        if (!has_prefix(s, n, "://") && !has_prefix(s, n, "http://") &&
            !has_prefix(s, n, "https://"))
            glob_prefix = "*"; /* no start anchor: the pattern may start mid-label */
    }
    /* A scheme means "the host starts here": the host exactly. */
    bool scheme = true;
    if (has_prefix(s, n, "https://"))
        s += 8, n -= 8;
    else if (has_prefix(s, n, "http://"))
        s += 7, n -= 7;
    else if (has_prefix(s, n, "://"))
        s += 3, n -= 3;
    else
        scheme = false;
    if (scheme) {
        r->match = LH_MATCH_EXACT;
        if (n && s[n - 1] == '/') /* "http://host/": the whole site */
            n--;
    }
    if (n && s[n - 1] == '|') n--;
    if (n && s[n - 1] == '^') n--;
    if (n == 0) return LH_LINE_IGNORED;
    for (size_t i = 0; i < n; i++)
        if (strchr("^/:?&=|", s[i])) /* a URL path, port or query: nothing for DNS */
            return LH_LINE_IGNORED;
    if (memchr(s, '*', n) || *glob_prefix) {
        if (r->match == LH_MATCH_SUBS) { /* ".a*b^" */
            glob_prefix = "*.";
            r->match = LH_MATCH_EXACT;
        }
        if ((*reason = make_glob(r, glob_prefix, s, n))) return LH_LINE_ERROR;
    } else {
        if (is_ipv4_literal(s, n)) /* answer filtering by address is not supported */
            return LH_LINE_IGNORED;
        if ((*reason = make_name(r, s, n))) return LH_LINE_ERROR;
    }
    emit(e);
    return LH_LINE_RULE;
}

/* Cosmetic and scriptlet rules (##, #@#, #?#, #$#, #%#, $$, $@$) hide page elements: nothing
 * for DNS. Scans only from each '#' or '$', since this runs for every line of every list. */
static bool has_cosmetic_marker(const char *s, size_t n)
{
    const char *end = s + n;
    for (const char *p = memchr(s, '#', n); p && p + 1 < end;
         p = memchr(p + 1, '#', (size_t)(end - p - 1))) {
        if (p[1] == '#' || (p + 2 < end && p[2] == '#' && strchr("@?$%", p[1]))) return true;
    }
    for (const char *p = memchr(s, '$', n); p && p + 1 < end;
         p = memchr(p + 1, '$', (size_t)(end - p - 1))) {
        if (p[1] == '$' || (p + 2 < end && p[1] == '@' && p[2] == '$')) return true;
    }
    return false;
}

static enum lh_list_format detect(const char *s, size_t n)
{
    if (has_prefix(s, n, "address=/") || has_prefix(s, n, "server=/") ||
        has_prefix(s, n, "local=/"))
        return LH_FMT_DNSMASQ;
    if (s[0] != '/' && (s[0] == '^' || s[0] == '(' || memchr(s, '\\', n)))
        return LH_FMT_REGEX; /* adblock rules never hold a backslash outside /regex/ */
    if (s[0] == '|' || s[0] == '/' || has_prefix(s, n, "@@") || has_prefix(s, n, "://") ||
        has_prefix(s, n, "http://") || has_prefix(s, n, "https://") ||
        (s[0] != '^' && s[0] != '(' && (memchr(s, '^', n) || memchr(s, '|', n))) ||
        (memchr(s, '$', n) && s[n - 1] != '$'))
        return LH_FMT_ADBLOCK;
    if (has_prefix(s, n, "*.")) return LH_FMT_WILDCARD;
    for (size_t i = 0; i < n; i++)
        if (strchr("^()[]{}\\+?$", s[i])) return LH_FMT_REGEX;
    size_t i = 0;
    while (i < n && !isspace((unsigned char)s[i]))
        i++;
    if (i < n) /* several fields: a hosts line (or an error the hosts parser explains) */
        return LH_FMT_HOSTS;
    if (memchr(s, '*', n)) return LH_FMT_WILDCARD;
    return LH_FMT_DOMAINS;
}

lh_line_result lh_list_parse_line(const char *line, enum lh_list_format fmt, bool allow,
                                  int subdomains, lh_rule_fn fn, void *ctx, unsigned lineno,
                                  const char **reason, int *fn_rc)
{
    lh_rule rule;
    emit_ctx e = {.rule = &rule,
                  .allow = allow,
                  .subdomains = subdomains,
                  .fn = fn,
                  .ctx = ctx,
                  .lineno = lineno,
                  .text = line};
    memset(&rule, 0, offsetof(lh_rule, name));
    *reason = NULL;
    *fn_rc = 0;
    const char *s = line;
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (n == 0 || s[0] == '!' || (s[0] == '[' && s[n - 1] == ']')) return LH_LINE_BLANK;
    if (has_cosmetic_marker(s, n)) return LH_LINE_IGNORED;
    if (s[0] == '#') return LH_LINE_BLANK;
    if (fmt == LH_FMT_AUTO) fmt = detect(s, n);
    if (fmt != LH_FMT_ADBLOCK) { /* inline comments: " # ..." */
        for (size_t i = 1; i < n; i++)
            if (s[i] == '#' && isspace((unsigned char)s[i - 1])) {
                n = i;
                while (n && isspace((unsigned char)s[n - 1]))
                    n--;
                break;
            }
    }
    lh_line_result res;
    switch (fmt) {
    case LH_FMT_HOSTS:
        res = parse_hosts(s, n, &e, reason);
        break;
    case LH_FMT_DOMAINS:
        res = parse_domain(s, n, &e, reason);
        break;
    case LH_FMT_WILDCARD:
        res = parse_wildcard(s, n, &e, reason);
        break;
    case LH_FMT_DNSMASQ:
        res = parse_dnsmasq(s, n, &e, reason);
        break;
    case LH_FMT_REGEX:
        res = parse_regex(s, n, &e, reason);
        break;
    default:
        res = parse_adblock(s, n, &e, reason);
        break;
    }
    *fn_rc = e.rc;
    return res;
}

typedef struct read_ctx {
    lh_rule_fn fn;
    void *ctx;
    lh_list_counts *counts;
    const char *bad_regex;
    char regex_err[128];
} read_ctx;

/* Checks regexes before the caller sees them, so a bad one is a file:line error. */
static int read_rule(void *ctx, const lh_rule *r, unsigned line, const char *text)
{
    read_ctx *rc = ctx;
    if (r->kind == LH_RULE_REGEX) {
        lh_regex *re = lh_regex_compile(r->pattern, rc->regex_err, sizeof rc->regex_err);
        if (!re) {
            rc->bad_regex = rc->regex_err;
            return 0;
        }
        lh_regex_free(re);
        rc->counts->regexes++;
    } else if (r->kind == LH_RULE_GLOB) {
        rc->counts->globs++;
    } else {
        rc->counts->names++;
    }
    rc->counts->rules++;
    return rc->fn(rc->ctx, r, line, text);
}

int lh_list_read(FILE *f, const char *path, enum lh_list_format fmt, bool allow, int subdomains,
                 lh_rule_fn fn, void *ctx, lh_list_counts *counts, bool quiet, char *err,
                 size_t errlen)
{
    char line[LINE_MAX_LEN + 2];
    read_ctx rc = {.fn = fn, .ctx = ctx, .counts = counts};
    memset(counts, 0, sizeof *counts);
    while (fgets(line, sizeof line, f)) {
        counts->lines++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n')
            line[--len] = 0;
        else if (!feof(f)) { /* an over-long line: report it and skip the rest of it */
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
            if (!quiet && counts->errors < LH_LIST_ERRORS_LOGGED)
                lh_warn("%s:%u: line longer than %d bytes; skipped", path, counts->lines,
                        LINE_MAX_LEN);
            if (!counts->errors++)
                snprintf(counts->first_error, sizeof counts->first_error,
                         "line %u: longer than %d bytes", counts->lines, LINE_MAX_LEN);
            continue;
        }
        const char *reason;
        int fn_rc;
        rc.bad_regex = NULL;
        lh_line_result r = lh_list_parse_line(line, fmt, allow, subdomains, read_rule, &rc,
                                              counts->lines, &reason, &fn_rc);
        if (fn_rc) return fn_rc;
        if (rc.bad_regex) {
            r = LH_LINE_ERROR;
            reason = rc.bad_regex;
        }
        if (r == LH_LINE_IGNORED)
            counts->ignored++;
        else if (r == LH_LINE_ERROR) {
            if (!quiet && counts->errors < LH_LIST_ERRORS_LOGGED)
                lh_warn("%s:%u: %s: '%s'; skipped", path, counts->lines, reason, line);
            if (!counts->errors++)
                snprintf(counts->first_error, sizeof counts->first_error, "line %u: %s",
                         counts->lines, reason);
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        return -1;
    }
    if (!quiet && counts->errors > LH_LIST_ERRORS_LOGGED)
        lh_warn("%s: %u more malformed line(s) skipped", path,
                counts->errors - LH_LIST_ERRORS_LOGGED);
    return 0;
}
