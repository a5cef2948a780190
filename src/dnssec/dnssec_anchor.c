/* dnssec_anchor.c - trust anchors: DS and DNSKEY records read from files (zone-file syntax,
 * through ldns), negative trust anchors, and the closest anchor above a name. */
#include "dnssec_private.h"

#include <errno.h>
#include <strings.h>

/* ---------------------------------------------------------------- anchors */

lh_dnssec_anchors *lh_dnssec_anchors_new(void)
{
    return calloc(1, sizeof(lh_dnssec_anchors));
}

void lh_dnssec_anchors_free(lh_dnssec_anchors *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->n; i++) {
        ldns_rdf_deep_free(a->v[i].owner);
        ldns_rr_list_deep_free(a->v[i].ds);
        ldns_rr_list_deep_free(a->v[i].keys);
    }
    for (size_t i = 0; i < a->ninsecure; i++)
        ldns_rdf_deep_free(a->insecure[i]);
    free(a->insecure);
    free(a->v);
    free(a);
}

size_t lh_dnssec_anchors_count(const lh_dnssec_anchors *a)
{
    return a ? a->nrecords : 0;
}

size_t lh_dnssec_anchors_zone(const lh_dnssec_anchors *a, uint8_t *out, size_t cap)
{
    if (!a || !a->n) return 0;
    const anchor *best = &a->v[0];
    for (size_t i = 1; i < a->n; i++) /* the highest: the root when it is one of them */
        if (ldns_dname_label_count(a->v[i].owner) < ldns_dname_label_count(best->owner))
            best = &a->v[i];
    size_t n = ldns_rdf_size(best->owner);
    if (n > cap) return 0;
    memcpy(out, ldns_rdf_data(best->owner), n);
    return n;
}

static anchor *anchor_for_owner(lh_dnssec_anchors *a, const ldns_rdf *owner)
{
    for (size_t i = 0; i < a->n; i++)
        if (name_eq(a->v[i].owner, owner)) return &a->v[i];
    anchor *nv = realloc(a->v, (a->n + 1) * sizeof *nv);
    if (!nv) return NULL;
    a->v = nv;
    anchor *x = &a->v[a->n];
    x->owner = ldns_rdf_clone(owner);
    x->ds = ldns_rr_list_new();
    x->keys = ldns_rr_list_new();
    if (!x->owner || !x->ds || !x->keys) {
        ldns_rdf_deep_free(x->owner);
        ldns_rr_list_free(x->ds);
        ldns_rr_list_free(x->keys);
        return NULL;
    }
    ldns_dname2canonical(x->owner);
    a->n++;
    return x;
}

static int anchors_read(lh_dnssec_anchors *a, FILE *f, const char *path, char *err, size_t errlen)
{
    uint32_t ttl = 3600;
    ldns_rdf *origin = NULL, *prev = NULL;
    int line = 0, rc = 0;
    size_t added = 0;
    while (!feof(f)) {
        ldns_rr *rr = NULL;
        ldns_status s = ldns_rr_new_frm_fp_l(&rr, f, &ttl, &origin, &prev, &line);
        if (s == LDNS_STATUS_SYNTAX_EMPTY || s == LDNS_STATUS_SYNTAX_TTL ||
            s == LDNS_STATUS_SYNTAX_ORIGIN || s == LDNS_STATUS_SYNTAX_INCLUDE)
            continue;
        if (s != LDNS_STATUS_OK) {
            snprintf(err, errlen, "%s:%d: %s", path, line, ldns_get_errorstr_by_id(s));
            rc = -1;
            break;
        }
        ldns_rr_type t = ldns_rr_get_type(rr);
        if ((t != LDNS_RR_TYPE_DS && t != LDNS_RR_TYPE_DNSKEY) || ldns_rr_rd_count(rr) < 4) {
            char *ts = ldns_rr_type2str(t);
            snprintf(err, errlen, "%s:%d: a trust anchor is a DS or DNSKEY record, not %s", path,
                     line, ts ? ts : "?");
            free(ts);
            ldns_rr_free(rr);
            rc = -1;
            break;
        }
        if (t == LDNS_RR_TYPE_DNSKEY && !(dnskey_flags(rr) & 0x0100)) {
            snprintf(err, errlen, "%s:%d: DNSKEY without the zone key flag (256/257)", path, line);
            ldns_rr_free(rr);
            rc = -1;
            break;
        }
        anchor *x = anchor_for_owner(a, ldns_rr_owner(rr));
        if (!x || !ldns_rr_list_push_rr(t == LDNS_RR_TYPE_DS ? x->ds : x->keys, rr)) {
            snprintf(err, errlen, "%s:%d: out of memory", path, line);
            ldns_rr_free(rr);
            rc = -1;
            break;
        }
        a->nrecords++;
        added++;
    }
    ldns_rdf_deep_free(origin);
    ldns_rdf_deep_free(prev);
    if (rc == 0 && added == 0) {
        snprintf(err, errlen, "%s: no DS or DNSKEY record", path);
        rc = -1;
    }
    return rc;
}

/* ldns 1.8.3 leaks when some record types fail to parse (an IPSECKEY with a bad key, for one:
 * found by fuzz_trust_anchor), so every record's type is checked here, before ldns reads it.
 * A record's type is its first token after the owner that is neither a TTL nor a class; this
 * knows zone-file syntax well enough to find it: comments, quoted strings, escapes, parentheses
 * across lines, owner-less lines and $ directives. */
static bool is_ttl_or_class(const char *tok, size_t n)
{
    if (n > 0 && tok[0] >= '0' && tok[0] <= '9') return true; /* 3600, 1h30m */
    static const char *const classes[] = {"IN", "CH", "HS", "CS", "NONE", "ANY"};
    for (size_t i = 0; i < sizeof classes / sizeof *classes; i++)
        if (strlen(classes[i]) == n && strncasecmp(tok, classes[i], n) == 0) return true;
    return n > 5 && strncasecmp(tok, "CLASS", 5) == 0;
}

static bool is_anchor_type(const char *tok, size_t n)
{
    static const char *const types[] = {"DS", "DNSKEY", "TYPE43", "TYPE48"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (strlen(types[i]) == n && strncasecmp(tok, types[i], n) == 0) return true;
    return false;
}

/* Not strchr: it finds the terminating NUL too, and a NUL in the file would end no token. */
static bool ends_token(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';' || c == '(' || c == ')' ||
           c == '"';
}

static int anchors_check_types(const char *t, size_t len, const char *path, char *err,
                               size_t errlen)
{
    int line = 1, depth = 0;
    bool at_line_start = true, directive = false, type_seen = false;
    int tokens = 0; /* tokens of the current record, the owner included */
    size_t i = 0;
    while (i < len) {
        char c = t[i];
        if (c == '\n') {
            line++;
            i++;
            at_line_start = true;
            if (depth == 0) directive = false;
            continue;
        }
        if (at_line_start && depth == 0) { /* a new record, or a directive */
            at_line_start = false;
            type_seen = false;
            directive = c == '$';
            tokens = c == ' ' || c == '\t' ? 1 : 0; /* leading blank: the owner is left out */
        }
        at_line_start = false;
        if (c == ';') {
            while (i < len && t[i] != '\n')
                i++;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            i++;
        } else if (c == '(' || c == ')') {
            depth += c == '(' ? 1 : (depth > 0 ? -1 : 0);
            i++;
        } else if (c == '"') {
            for (i++; i < len && t[i] != '"' && t[i] != '\n'; i++)
                if (t[i] == '\\') i++;
            i++;
            tokens++;
        } else {
            size_t start = i;
            for (; i < len && !ends_token(t[i]); i++)
                if (t[i] == '\\') i++;
            size_t n = (i < len ? i : len) - start;
            if (!directive && !type_seen && tokens++ > 0 && !is_ttl_or_class(t + start, n)) {
                type_seen = true;
                if (!is_anchor_type(t + start, n)) {
                    snprintf(err, errlen,
                             "%s:%d: a trust anchor is a DS or DNSKEY record, not %.*s", path, line,
                             (int)(n > 32 ? 32 : n), t + start);
                    return -1;
                }
            }
        }
    }
    return 0;
}

/* Trust-anchor files are small (the root's is one line); a bound keeps a wrong path (a disk
 * image, /dev/zero) from being read whole. */
#define ANCHOR_FILE_MAX (1u << 20)

int lh_dnssec_anchors_load_file(lh_dnssec_anchors *a, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = malloc(ANCHOR_FILE_MAX + 1);
    size_t len = text ? fread(text, 1, ANCHOR_FILE_MAX + 1, f) : 0;
    int rc = -1;
    if (!text)
        snprintf(err, errlen, "%s: out of memory", path);
    else if (ferror(f))
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
    else if (len > ANCHOR_FILE_MAX)
        snprintf(err, errlen, "%s: larger than %u bytes; not a trust-anchor file", path,
                 ANCHOR_FILE_MAX);
    else
        rc = lh_dnssec_anchors_load_text(a, text, len, path, err, errlen);
    free(text);
    fclose(f);
    return rc;
}

int lh_dnssec_anchors_load_text(lh_dnssec_anchors *a, const char *text, size_t len,
                                const char *path, char *err, size_t errlen)
{
    if (len == 0) {
        snprintf(err, errlen, "%s: no DS or DNSKEY record", path);
        return -1;
    }
    if (anchors_check_types(text, len, path, err, errlen) != 0) return -1;
    FILE *f = fmemopen((void *)text, len, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = anchors_read(a, f, path, err, errlen);
    fclose(f);
    return rc;
}

int lh_dnssec_anchors_add_insecure(lh_dnssec_anchors *a, const char *name, char *err, size_t errlen)
{
    ldns_rdf *d = NULL;
    if (ldns_str2rdf_dname(&d, name) != LDNS_STATUS_OK || !d) {
        snprintf(err, errlen, "'%s' is not a domain name", name);
        return -1;
    }
    ldns_rdf **nv = realloc(a->insecure, (a->ninsecure + 1) * sizeof *nv);
    if (!nv) {
        ldns_rdf_deep_free(d);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ldns_dname2canonical(d);
    a->insecure = nv;
    a->insecure[a->ninsecure++] = d;
    return 0;
}

/* The closest trust anchor at or above `name`; NULL if none, or if a negative trust anchor is
 * closer (then *nta is set). */
const anchor *lh_dnssec_anchor_closest(const lh_dnssec_anchors *a, const ldns_rdf *name, bool *nta)
{
    const anchor *best = NULL;
    int best_labels = -1, nta_labels = -1;
    for (size_t i = 0; a && i < a->n; i++)
        if (name_at_or_below(name, a->v[i].owner) &&
            ldns_dname_label_count(a->v[i].owner) > best_labels) {
            best = &a->v[i];
            best_labels = ldns_dname_label_count(a->v[i].owner);
        }
    for (size_t i = 0; a && i < a->ninsecure; i++)
        if (name_at_or_below(name, a->insecure[i]) &&
            ldns_dname_label_count(a->insecure[i]) > nta_labels)
            nta_labels = ldns_dname_label_count(a->insecure[i]);
    *nta = nta_labels >= best_labels && nta_labels >= 0;
    return *nta ? NULL : best;
}
