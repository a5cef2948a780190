/* blockset.c - compiling list rules and matching names against them.
 *
 * Matching walks the suffixes of the query name, most specific first, with one hash probe
 * each: at label 0 the EXACT bits apply, above it the SUBS bits. Patterns (globs, regexes)
 * are checked only when lists have any. An allow rule beats a block rule unless the block
 * is $important (AdGuard's semantics). */
#include "loophole/blockset.h"

#include "loophole/regex.h"
#include "loophole/spill.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>

int lh_blockset_init(lh_blockset *b, size_t expected_names)
{
    memset(b, 0, sizeof *b);
    return lh_nametree_init(&b->names, expected_names);
}

int lh_blockset_init_spill(lh_blockset *b, lh_spill *spill)
{
    memset(b, 0, sizeof *b);
    b->spill = spill;
    return 0;
}

int lh_blockset_finish(lh_blockset *b, char *err, size_t errlen)
{
    if (b->names.frozen || b->spill) return 0; /* a spilled tree is the spill's to write */
    if (lh_nametree_freeze(&b->names) != 0) {
        snprintf(err, errlen, "out of memory compiling the blocklists");
        return -1;
    }
    return 0;
}

void lh_blockset_free(lh_blockset *b)
{
    lh_nametree_free(&b->names);
    for (size_t i = 0; i < b->npatterns; i++) {
        if (b->patterns[i].is_regex) lh_regex_free(b->patterns[i].re);
        free(b->patterns[i].glob);
    }
    if (b->map) munmap(b->map, b->map_len);
    free(b->patterns);
    for (size_t i = 0; i < b->nlists; i++)
        free(b->lists[i].path);
    free(b->lists);
    memset(b, 0, sizeof *b);
}

static uint32_t rule_bits(const lh_rule *r)
{
    uint32_t bits = 0;
    if (r->match & LH_MATCH_EXACT) bits |= r->allow ? LH_BS_ALLOW_EXACT : LH_BS_BLOCK_EXACT;
    if (r->match & LH_MATCH_SUBS) bits |= r->allow ? LH_BS_ALLOW_SUBS : LH_BS_BLOCK_SUBS;
    if (r->important && !r->allow) bits |= LH_BS_IMPORTANT;
    return bits;
}

typedef struct add_ctx {
    lh_blockset *b;
    uint32_t list;
} add_ctx;

#define ADD_OOM 1
#define ADD_SPILL 2 /* the build on disk failed: lh_spill_error says why */

static int add_rule(void *ctx, const lh_rule *r, unsigned line, const char *text)
{
    (void)text;
    add_ctx *a = ctx;
    lh_blockset *b = a->b;
    if (r->kind == LH_RULE_NAME) {
        uint64_t h[LH_LABELS_MAX];
        lh_name_hashes(&r->name, h);
        if (b->spill)
            return lh_spill_add(b->spill, &r->name, h, (uint8_t)rule_bits(r), (uint16_t)a->list)
                       ? ADD_SPILL
                       : 0;
        return lh_nametree_add(&b->names, &r->name, h, (uint8_t)rule_bits(r), (uint16_t)a->list)
                   ? ADD_OOM
                   : 0;
    }
    if (b->npatterns == b->cap_patterns) {
        size_t cap = b->cap_patterns ? b->cap_patterns * 2 : 16;
        lh_pattern_rule *p = realloc(b->patterns, cap * sizeof *p);
        if (!p) return ADD_OOM;
        b->patterns = p;
        b->cap_patterns = cap;
    }
    lh_pattern_rule *p = &b->patterns[b->npatterns];
    memset(p, 0, sizeof *p);
    p->line = line;
    if (r->kind == LH_RULE_REGEX) {
        /* Regexes match the whole name, so only the EXACT bit means anything. */
        p->value = (r->allow ? LH_BS_ALLOW_EXACT : LH_BS_BLOCK_EXACT) |
                   (r->important && !r->allow ? LH_BS_IMPORTANT : 0);
        p->is_regex = true;
        char err[128];
        if (!(p->re = lh_regex_compile(r->pattern, err, sizeof err)))
            return 0; /* lh_list_read already reported it */
        if (!(p->glob = strdup(r->pattern))) {
            lh_regex_free(p->re);
            return ADD_OOM;
        }
    } else {
        p->value = rule_bits(r);
        if (!(p->glob = strdup(r->pattern))) return ADD_OOM;
    }
    p->value |= a->list << LH_BS_LIST_SHIFT;
    b->npatterns++;
    return 0;
}

int lh_blockset_add_file(lh_blockset *b, const lh_list_info *info, FILE *f, char *err,
                         size_t errlen)
{
    if (b->names.frozen || b->map) {
        snprintf(err, errlen, "%s: the blocklists are compiled already", info->path);
        return -1;
    }
    if (b->nlists >= LH_NT_LISTS_MAX) {
        snprintf(err, errlen, "%s: more than %d lists", info->path, LH_NT_LISTS_MAX);
        return -1;
    }
    lh_list_info *lists = realloc(b->lists, (b->nlists + 1) * sizeof *lists);
    if (!lists) goto oom;
    b->lists = lists;
    lh_list_info *li = &lists[b->nlists];
    *li = *info;
    if (!(li->path = strdup(info->path))) goto oom;
    b->nlists++;
    add_ctx a = {.b = b, .list = (uint32_t)(b->nlists - 1)};
    int rc = lh_list_read(f, li->path, info->format, info->allow, info->subdomains, add_rule, &a,
                          &li->counts, false, err, errlen);
    if (rc == ADD_OOM) goto oom;
    if (rc == ADD_SPILL) {
        snprintf(err, errlen, "%s: %s", info->path, lh_spill_error(b->spill));
        return -1;
    }
    return rc;
oom:
    snprintf(err, errlen, "%s: out of memory", info->path);
    return -1;
}

/* Does a glob with `bits` match the text name (or, with SUBS, one of its parent suffixes)? */
static bool glob_matches(const char *glob, uint32_t exact_bit, uint32_t subs_bit, uint32_t bits,
                         const char *text)
{
    if ((bits & exact_bit) && fnmatch(glob, text, 0) == 0) return true;
    if (bits & subs_bit)
        for (const char *p = strchr(text, '.'); p; p = strchr(p + 1, '.'))
            if (fnmatch(glob, p + 1, 0) == 0) return true;
    return false;
}

static bool pattern_matches(const lh_pattern_rule *p, const char *text, size_t len, bool *allow)
{
    uint32_t v = p->value;
    *allow = (v & (LH_BS_ALLOW_EXACT | LH_BS_ALLOW_SUBS)) != 0;
    if (p->is_regex) return lh_regex_match(p->re, text, len);
    return *allow ? glob_matches(p->glob, LH_BS_ALLOW_EXACT, LH_BS_ALLOW_SUBS, v, text)
                  : glob_matches(p->glob, LH_BS_BLOCK_EXACT, LH_BS_BLOCK_SUBS, v, text);
}

void lh_blockset_match(const lh_blockset *b, const lh_name *n, const uint64_t *hashes,
                       lh_block_match *out)
{
    int block_list = -1, allow_list = -1, block_label = -1, allow_label = -1;
    bool important = false;
    /* From the root down: the most specific rule is the last one met, and the walk ends at the
     * first suffix no rule has (nothing longer can have one either). */
    const lh_nametree *t = &b->names;
    uint32_t ref = 0;
    for (int i = t->frozen ? (int)n->nlabels - 1 : -1; i >= 0; i--) {
        if (!(ref = lh_nametree_child(t, ref, n, (unsigned)i, hashes[i]))) break;
        uint8_t bits = lh_nametree_bits(t, ref);
        if (!bits) continue;
        bool blk = bits & (i == 0 ? LH_BS_BLOCK_EXACT : LH_BS_BLOCK_SUBS);
        bool alw = bits & (i == 0 ? LH_BS_ALLOW_EXACT : LH_BS_ALLOW_SUBS);
        if (blk) {
            block_list = lh_nametree_list(t, ref);
            block_label = i;
            if (bits & LH_BS_IMPORTANT) important = true;
        }
        if (alw) {
            allow_list = lh_nametree_list(t, ref);
            allow_label = i;
        }
    }
    if (b->npatterns) {
        char text[LH_NAME_MAX * 4 + 1];
        size_t len = lh_name_to_text(n->wire, text, sizeof text);
        for (size_t k = 0; k < b->npatterns; k++) {
            bool allow;
            if (!pattern_matches(&b->patterns[k], text, len, &allow)) continue;
            int list = (int)(b->patterns[k].value >> LH_BS_LIST_SHIFT);
            if (allow && allow_list < 0) allow_list = list;
            if (!allow) {
                if (block_list < 0) block_list = list;
                if (b->patterns[k].value & LH_BS_IMPORTANT) important = true;
            }
        }
    }
    out->important = important;
    out->allowed = allow_list >= 0;
    out->blocked = block_list >= 0 && (!out->allowed || important);
    if (out->blocked) {
        out->list = block_list;
        out->label = block_label;
    } else {
        out->list = allow_list;
        out->label = allow_label;
    }
}

bool lh_rule_matches(const lh_rule *r, const lh_name *n)
{
    if (r->kind == LH_RULE_NAME) {
        for (unsigned i = 0; i < n->nlabels; i++) {
            unsigned need = i == 0 ? LH_MATCH_EXACT : LH_MATCH_SUBS;
            if ((r->match & need) && lh_name_suffix_len(n, i) == r->name.len &&
                memcmp(n->wire + n->label_off[i], r->name.wire, r->name.len) == 0)
                return true;
        }
        return false;
    }
    char text[LH_NAME_MAX * 4 + 1], err[128];
    size_t len = lh_name_to_text(n->wire, text, sizeof text);
    if (r->kind == LH_RULE_GLOB)
        return glob_matches(r->pattern, LH_MATCH_EXACT, LH_MATCH_SUBS, r->match, text);
    lh_regex *re = lh_regex_compile(r->pattern, err, sizeof err);
    bool m = re && lh_regex_match(re, text, len);
    lh_regex_free(re);
    return m;
}

/* --- the list files a config names ------------------------------------------------------- */

static int each_file_in(const lh_list_source *src, lh_list_file_fn fn, void *ctx, char *err,
                        size_t errlen)
{
    lh_list_info info = {.path = src->path,
                         .allow = src->allow,
                         .format = (enum lh_list_format)src->format,
                         .subdomains = src->subdomains};
    struct stat st;
    if (stat(src->path, &st) != 0) {
        snprintf(err, errlen, "%s: cannot read %s: %s", src->path,
                 src->allow ? "allowlist" : "blocklist", strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        FILE *f = fopen(src->path, "r");
        if (!f) {
            snprintf(err, errlen, "%s: cannot open %s: %s", src->path,
                     src->allow ? "allowlist" : "blocklist", strerror(errno));
            return -1;
        }
        int rc = fn(ctx, &info, f, err, errlen);
        fclose(f);
        return rc;
    }
    struct dirent **ents;
    int n = scandir(src->path, &ents, NULL, alphasort);
    if (n < 0) {
        snprintf(err, errlen, "%s: cannot read folder: %s", src->path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        int dlen = (int)strlen(src->path); /* "lists/" + "ads.txt": one slash, not two */
        while (dlen > 1 && src->path[dlen - 1] == '/')
            dlen--;
        if (rc == 0 && ents[i]->d_name[0] != '.' &&
            (size_t)snprintf(path, sizeof path, "%.*s/%s", dlen, src->path, ents[i]->d_name) <
                sizeof path &&
            stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            lh_list_source one = *src;
            one.path = path;
            rc = each_file_in(&one, fn, ctx, err, errlen);
        }
        free(ents[i]);
    }
    free(ents);
    return rc;
}

int lh_blockset_each_file(const lh_config *cfg, lh_list_file_fn fn, void *ctx, char *err,
                          size_t errlen)
{
    if (cfg->default_blocklist) {
        FILE *f = fmemopen((void *)lh_default_list, lh_default_list_len, "r");
        if (!f) {
            snprintf(err, errlen, "cannot open the built-in list: %s", strerror(errno));
            return -1;
        }
        lh_list_info info = {
            .path = LH_DEFAULT_LIST_NAME, .format = LH_FMT_ADBLOCK, .subdomains = -1};
        int rc = fn(ctx, &info, f, err, errlen);
        fclose(f);
        if (rc) return rc;
    }
    for (unsigned i = 0; i < cfg->nlists; i++) {
        int rc = each_file_in(&cfg->lists[i], fn, ctx, err, errlen);
        if (rc) return rc;
    }
    return 0;
}
