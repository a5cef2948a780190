/* overlay.c - see overlay.h. Nothing here runs per query except lh_overlay_match. */
#include "loophole/overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char header[] =
    "# loophole runtime rules: written by 'loophole allow|block|unlist' and the dashboard.\n"
    "# Checked before every list: a rule here wins over the lists and their exceptions.\n"
    "# Adblock syntax: ||name^ blocks name and below, |name^ the name only; @@ allows.\n"
    "# Hand edits are read when loophole starts; the next change from loophole rewrites this\n"
    "# file (comments are not kept).\n"
    "\n";
#define HEADER_LINES 6

lh_overlay *lh_overlay_new(void)
{
    lh_overlay *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    atomic_init(&o->refs, 1);
    if (lh_nameset_init(&o->names, 16) != 0) {
        free(o);
        return NULL;
    }
    return o;
}

void lh_overlay_ref(lh_overlay *o)
{
    atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}

void lh_overlay_unref(lh_overlay *o)
{
    if (!o || atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) != 1) return;
    lh_nameset_free(&o->names);
    free(o->rules);
    free(o);
}

/* Appends a rule (or replaces the one for the same name). 0, or -1 out of memory. */
static int put(lh_overlay *o, const lh_name *n, bool allow, bool subdomains, unsigned line)
{
    uint64_t h[LH_LABELS_MAX];
    bool created;
    lh_name_hashes(n, h);
    uint32_t *v = lh_nameset_upsert(&o->names, n, 0, h[0], &created);
    if (!v) return -1;
    if (created) {
        if (o->nrules % 16 == 0) {
            lh_overlay_rule *r = realloc(o->rules, (o->nrules + 16) * sizeof *r);
            if (!r) return -1;
            o->rules = r;
        }
        *v = (uint32_t)++o->nrules;
    }
    lh_overlay_rule *r = &o->rules[*v - 1];
    lh_name_to_text(n->wire, r->name, sizeof r->name);
    r->allow = allow;
    r->subdomains = subdomains;
    r->line = line;
    return 0;
}

typedef struct load_ctx {
    lh_overlay *o;
    const char *path;
    char *err;
    size_t errlen;
    bool oom;
} load_ctx;

static void note(load_ctx *c, unsigned line, const char *why)
{
    if (c->err[0]) return; /* the first problem is enough */
    snprintf(c->err, c->errlen, "%s:%u: %s", c->path, line, why);
}

static int on_rule(void *ctx, const lh_rule *r, unsigned line, const char *text)
{
    load_ctx *c = ctx;
    if (r->kind != LH_RULE_NAME || r->important || !(r->match & LH_MATCH_EXACT)) {
        note(c, line, "only ||name^, |name^ and their @@ forms apply here; line ignored");
        return 0;
    }
    if (c->o->nrules >= LH_OVERLAY_MAX) {
        note(c, line, "too many runtime rules; the rest ignored");
        return 0;
    }
    if (put(c->o, &r->name, r->allow, (r->match & LH_MATCH_SUBS) != 0, line) != 0) {
        c->oom = true;
        return 1;
    }
    return 0;
}

lh_overlay *lh_overlay_load(const char *path, char *err, size_t errlen)
{
    err[0] = 0;
    lh_overlay *o = lh_overlay_new();
    if (!o) {
        snprintf(err, errlen, "out of memory for the runtime rules");
        return NULL;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return o;
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        lh_overlay_unref(o);
        return NULL;
    }
    char line[1024];
    unsigned lineno = 0;
    load_ctx c = {.o = o, .path = path, .err = err, .errlen = errlen};
    while (fgets(line, sizeof line, f) && !c.oom) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        const char *reason = NULL;
        int rc = 0;
        lh_line_result r =
            lh_list_parse_line(line, LH_FMT_ADBLOCK, false, -1, on_rule, &c, lineno, &reason, &rc);
        if (r == LH_LINE_ERROR || r == LH_LINE_IGNORED)
            note(&c, lineno, reason ? reason : "not a rule loophole can apply; line ignored");
    }
    bool bad = ferror(f);
    fclose(f);
    if (c.oom || bad) {
        snprintf(err, errlen, "%s: %s", path, c.oom ? "out of memory" : "read error");
        lh_overlay_unref(o);
        return NULL;
    }
    return o;
}

lh_overlay *lh_overlay_with(const lh_overlay *o, const char *name, bool remove, bool allow,
                            bool subdomains, char *err, size_t errlen)
{
    lh_name n;
    size_t len = strlen(name);
    if (len && name[len - 1] == '.') len--;
    /* Only what the file can carry back: a '^', '|', '$' or '#' would be adblock syntax when
     * runtime.list is read at the next start, and a byte the text form writes as \DDD would
     * come back as a backslash and digits; either way a different rule than the one shown. */
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.')) {
            snprintf(err, errlen,
                     "'%s' is not a valid domain name (letters, digits, '-', '_' and dots only)",
                     name);
            return NULL;
        }
    }
    if (len == 0 || lh_name_from_text(name, len, &n) != 0 || n.nlabels == 0) {
        snprintf(err, errlen, "'%s' is not a valid domain name", name);
        return NULL;
    }
    char text[LH_NAME_MAX * 4 + 1];
    lh_name_to_text(n.wire, text, sizeof text);
    bool found = false;
    lh_overlay *c = lh_overlay_new();
    if (!c) goto oom;
    for (size_t i = 0; i < o->nrules; i++) {
        const lh_overlay_rule *r = &o->rules[i];
        lh_name rn;
        if (!strcmp(r->name, text)) {
            found = true;
            if (remove) continue;
        }
        if (lh_name_from_text(r->name, strlen(r->name), &rn) != 0 ||
            put(c, &rn, r->allow, r->subdomains, 0) != 0)
            goto oom;
    }
    if (remove && !found) {
        snprintf(err, errlen, "%s has no runtime rule (see 'loophole lists')", text);
        lh_overlay_unref(c);
        return NULL;
    }
    if (!remove) {
        if (!found && c->nrules >= LH_OVERLAY_MAX) {
            snprintf(err, errlen, "too many runtime rules (%d)", LH_OVERLAY_MAX);
            lh_overlay_unref(c);
            return NULL;
        }
        if (put(c, &n, allow, subdomains, 0) != 0) goto oom;
    }
    for (size_t i = 0; i < c->nrules; i++) /* the lines the file will have */
        c->rules[i].line = (unsigned)(HEADER_LINES + i + 1);
    return c;
oom:
    lh_overlay_unref(c);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

void lh_overlay_rule_text(const lh_overlay_rule *r, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s%s^", r->allow ? "@@" : "", r->subdomains ? "||" : "|", r->name);
}

int lh_overlay_save(const lh_overlay *o, const char *path, char *err, size_t errlen)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    /* The names someone allowed or blocked say something about them: not for every user. */
    /* A new file, never one found there (a leftover, or one someone else made to be renamed
     * over runtime.list with their ownership). */
    if (unlink(tmp) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot replace %s: %s", tmp, strerror(errno));
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    fputs(header, f);
    for (size_t i = 0; i < o->nrules; i++) {
        char line[LH_NAME_MAX * 4 + 8];
        lh_overlay_rule_text(&o->rules[i], line, sizeof line);
        fprintf(f, "%s\n", line);
    }
    /* Durable before it replaces the old file: a crash leaves one or the other. */
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (!ok || rename(tmp, path) != 0) {
        if (ok) e = errno;
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(e));
        unlink(tmp);
        return -1;
    }
    return 0;
}

bool lh_overlay_match(const lh_overlay *o, const lh_name *n, const uint64_t *hashes,
                      lh_block_match *out, size_t *rule)
{
    for (unsigned i = 0; i < n->nlabels; i++) {
        const uint32_t *v = lh_nameset_find(&o->names, n, i, hashes[i]);
        if (!v) continue;
        const lh_overlay_rule *r = &o->rules[*v - 1];
        if (i > 0 && !r->subdomains) continue; /* a rule for a parent without its names */
        out->blocked = !r->allow;
        out->allowed = r->allow;
        out->important = false;
        out->list = LH_LIST_RUNTIME;
        out->label = (int)i;
        if (rule) *rule = *v - 1;
        return true;
    }
    return false;
}
