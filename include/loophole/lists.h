/* lists.h - blocklist and allowlist parsing: one line in, one rule (or a reason) out. Pure and
 * allocation-free, so the loader, `loophole why` and the fuzzer share it. Semantics are in
 * docs/blocklists.md. */
#ifndef LH_LISTS_H
#define LH_LISTS_H

#include "loophole/wire.h"

#include <stdio.h>

enum lh_list_format {
    LH_FMT_AUTO = 0, /* detect per line */
    LH_FMT_HOSTS,
    LH_FMT_DOMAINS,
    LH_FMT_ADBLOCK,
    LH_FMT_WILDCARD,
    LH_FMT_DNSMASQ,
    LH_FMT_REGEX,
};

/* How a name rule matches (bits; a rule may have both). */
#define LH_MATCH_EXACT 1u /* the name itself */
#define LH_MATCH_SUBS 2u  /* every name strictly below it */

enum lh_rule_kind {
    LH_RULE_NAME,  /* `name` with LH_MATCH_* bits */
    LH_RULE_GLOB,  /* `pattern` with '*' spanning any characters, dots included */
    LH_RULE_REGEX, /* `pattern`: a POSIX extended regular expression */
};

typedef struct lh_rule {
    enum lh_rule_kind kind;
    enum lh_list_format format;        /* the format the line was read as */
    bool allow;                        /* @@ exception, or a rule read from an allowlist */
    bool important;                    /* $important: beats allow rules */
    unsigned match;                    /* LH_MATCH_* for NAME and GLOB rules */
    lh_name name;                      /* NAME */
    char pattern[LH_NAME_MAX * 4 + 1]; /* GLOB (lowercase) and REGEX */
} lh_rule;

typedef enum lh_line_result {
    LH_LINE_RULE = 0, /* *rule is set */
    LH_LINE_BLANK,    /* empty or a comment */
    LH_LINE_IGNORED,  /* a valid line with nothing for DNS (cosmetic, URL path, localhost…) */
    LH_LINE_ERROR,    /* malformed: *reason says why */
} lh_line_result;

/* Called for each rule; `line` is its 1-based number and `text` the raw line. Returning
 * non-zero stops reading (out of memory, or `why` found what it looked for). */
typedef int (*lh_rule_fn)(void *ctx, const lh_rule *r, unsigned line, const char *text);

/* Parses one line (without its newline), calling `fn` for each rule it holds: a hosts line may
 * hold several names, a dnsmasq line several domains. `fmt` forces a format; LH_FMT_AUTO
 * detects it from the line. `allow` marks the rules as allow rules; `subdomains` (-1 keep, 0
 * no, 1 yes) overrides whether name rules match below the name. On LH_LINE_ERROR, *reason
 * says why (a static string). *fn_rc receives a non-zero callback result. */
lh_line_result lh_list_parse_line(const char *line, enum lh_list_format fmt, bool allow,
                                  int subdomains, lh_rule_fn fn, void *ctx, unsigned lineno,
                                  const char **reason, int *fn_rc);

const char *lh_list_format_name(enum lh_list_format f);
int lh_list_format_parse(const char *s, enum lh_list_format *out);

/* Counts for one list file. */
typedef struct lh_list_counts {
    unsigned lines, rules, ignored, errors;
    unsigned names, globs, regexes;
    char first_error[160]; /* "line N: reason", for `loophole lists` */
} lh_list_counts;

/* Reads a list stream line by line, splitting hosts lines with several names into one rule
 * each. Malformed lines are logged "file:line: reason" (the first LH_LIST_ERRORS_LOGGED, then a
 * count) unless `quiet`, and skipped; a regex that does not compile is such a line. Returns 0, or
 * the callback's non-zero value, or -1 on a read error (message in err). */
#define LH_LIST_ERRORS_LOGGED 5
int lh_list_read(FILE *f, const char *path, enum lh_list_format fmt, bool allow, int subdomains,
                 lh_rule_fn fn, void *ctx, lh_list_counts *counts, bool quiet, char *err,
                 size_t errlen);

#endif
