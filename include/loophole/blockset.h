/* blockset.h - the compiled block and allow rules of every list: one name set for the (usually
 * millions of) plain name rules, and short arrays for the few glob and regex rules. Built off
 * the event loop, read-only afterwards. */
#ifndef LH_BLOCKSET_H
#define LH_BLOCKSET_H

#include "loophole/config.h"
#include "loophole/lists.h"
#include "loophole/nameset.h"
#include "loophole/nametree.h"
#include "loophole/regex.h"

/* Rule bits of a name (a name tree node); patterns keep the list index of their rule above
 * them (LH_BS_LIST_SHIFT). */
#define LH_BS_BLOCK_EXACT 0x01u
#define LH_BS_BLOCK_SUBS 0x02u
#define LH_BS_ALLOW_EXACT 0x04u
#define LH_BS_ALLOW_SUBS 0x08u
#define LH_BS_IMPORTANT 0x10u
#define LH_BS_LIST_SHIFT 8

/* One list as loaded, for logs, `why` and statistics. */
typedef struct lh_list_info {
    char *path; /* the file (a folder is expanded into its files) */
    bool allow;
    enum lh_list_format format;
    int subdomains; /* -1 per format, 0 exact only, 1 name and below */
    lh_list_counts counts;
} lh_list_info;

typedef struct lh_pattern_rule {
    uint32_t value; /* LH_BS_* bits | list << LH_BS_LIST_SHIFT */
    unsigned line;
    bool is_regex;
    lh_regex *re; /* is_regex */
    char *glob;   /* the glob, or the regex's source (for the snapshot) */
} lh_pattern_rule;

typedef struct lh_blockset {
    lh_nametree names; /* frozen by lh_blockset_finish */
    lh_pattern_rule *patterns;
    size_t npatterns, cap_patterns;
    lh_list_info *lists;
    size_t nlists;
    void *map;              /* the snapshot the name tree lives in (read-only), or NULL */
    struct lh_spill *spill; /* while a build on disk parses: where the name rules go */
    size_t map_len;
} lh_blockset;

/* The outcome of matching one name. */
typedef struct lh_block_match {
    bool blocked; /* a block rule matches and no allow rule overrides it */
    bool allowed; /* an allow rule matches (and overrode any block unless important) */
    bool important;
    int list;  /* list of the deciding rule, -1 if none */
    int label; /* label index where a name rule matched (0 = the name itself), -1 for patterns */
} lh_block_match;

int lh_blockset_init(lh_blockset *b, size_t expected_names);
/* A blockset whose name rules go to a build on disk (spill.h; not owned): after the parse it
 * holds the lists and patterns, and the name tree is written from `spill`. */
struct lh_spill;
int lh_blockset_init_spill(lh_blockset *b, struct lh_spill *spill);
void lh_blockset_free(lh_blockset *b);
/* Adds one list; `info` is copied (path duplicated). Returns 0, or -1 with err when the file
 * cannot be read. */
int lh_blockset_add_file(lh_blockset *b, const lh_list_info *info, FILE *f, char *err,
                         size_t errlen);
/* Turns the name rules read so far into their compact lookup form; no file can be added
 * afterwards. Returns 0, or -1 with err when memory runs out. Matching needs it. */
int lh_blockset_finish(lh_blockset *b, char *err, size_t errlen);
void lh_blockset_match(const lh_blockset *b, const lh_name *n, const uint64_t *hashes,
                       lh_block_match *out);
/* Does rule `r` match `n`? Used by `loophole why` to find every rule that applies. */
bool lh_rule_matches(const lh_rule *r, const lh_name *n);

/* The built-in default list (generated from blocklists/default.list). */
extern const unsigned char lh_default_list[];
extern const size_t lh_default_list_len;
#define LH_DEFAULT_LIST_NAME "blocklists/default.list (built in)"

/* The list files of a config: opens list `i` of its sources's sources as expanded into files: calls
 * `fn` for every file (a folder is expanded into its regular, non-hidden files in name order), with
 * the default list first when enabled. Used by the policy build and by `loophole why`. Returns 0,
 * the first non-zero result of fn, or -1 with err when a file or folder cannot be read. */
typedef int (*lh_list_file_fn)(void *ctx, const lh_list_info *info, FILE *f, char *err,
                               size_t errlen);
int lh_blockset_each_file(const lh_config *cfg, lh_list_file_fn fn, void *ctx, char *err,
                          size_t errlen);

#endif
