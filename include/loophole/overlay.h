/* overlay.h - runtime rules: names allowed or blocked with `loophole allow|block|unlist` (or
 * the dashboard), checked before every list so that a change takes effect at once without
 * rebuilding a million-name list. An overlay is immutable once built: a change builds a new
 * one (a copy plus the change) and the runtime (runtime.h) swaps a pointer.
 *
 * Persisted as a list file in adblock syntax (one rule a line, so `loophole why` can name
 * the rule as file:line, and the file is a valid blocklist for any other tool):
 *   ||name^    block name and below      |name^    block the name only
 *   @@||name^  allow name and below      @@|name^  allow the name only */
#ifndef LH_OVERLAY_H
#define LH_OVERLAY_H

#include "loophole/blockset.h"
#include "loophole/nameset.h"

#include <stdatomic.h>
#include <uv.h>

/* The list index a runtime rule reports in verdicts and query ends (no list of the policy). */
#define LH_LIST_RUNTIME (-2)
#define LH_OVERLAY_MAX 100000 /* rules; a person adds them one at a time */

typedef struct lh_overlay_rule {
    char name[LH_NAME_MAX * 4 + 1]; /* dotted, lowercase, no trailing dot */
    bool allow;
    bool subdomains; /* the name and every name below it */
    unsigned line;   /* in the file (as read, or as it will be written) */
} lh_overlay_rule;

typedef struct lh_overlay {
    atomic_uint refs;
    lh_nameset names;       /* name -> index into rules + 1 */
    lh_overlay_rule *rules; /* in file order */
    size_t nrules;
} lh_overlay;

/* An empty overlay (one reference). NULL when memory runs out. */
lh_overlay *lh_overlay_new(void);
/* Reads `path` (a missing file is an empty overlay). Lines that are not a plain name rule
 * in the syntax above are reported in err (the first one, as "path:line: reason") and
 * skipped; returns NULL only when the file cannot be read or memory runs out. */
lh_overlay *lh_overlay_load(const char *path, char *err, size_t errlen);
/* A copy of `o` with NAME's rule replaced (allow/block) or removed (`remove`). Returns NULL
 * with err for an invalid name, a removal of a name without a rule, or no memory. */
lh_overlay *lh_overlay_with(const lh_overlay *o, const char *name, bool remove, bool allow,
                            bool subdomains, char *err, size_t errlen);
/* Writes the overlay to `path` atomically (a temporary file renamed over it). */
int lh_overlay_save(const lh_overlay *o, const char *path, char *err, size_t errlen);
void lh_overlay_ref(lh_overlay *o);
void lh_overlay_unref(lh_overlay *o);

/* Matches a name: the most specific rule wins (a rule for the name itself, then for its
 * parents with `subdomains`). Fills `out` as lh_blockset_match does (list LH_LIST_RUNTIME,
 * label where the rule matched) and returns true when a rule matches; *rule gets its index. */
bool lh_overlay_match(const lh_overlay *o, const lh_name *n, const uint64_t *hashes,
                      lh_block_match *out, size_t *rule);
/* The rule as written in the file ("@@||name^"). */
void lh_overlay_rule_text(const lh_overlay_rule *r, char *out, size_t cap);

/* The runtime rules and the pause as every loop's query path reads them. runtime.c owns and
 * writes them (see runtime.h for the sharing rules between loops); the resolver only reads:
 * the overlay is published by an atomic pointer store (release) and loaded once per decision
 * (acquire); the pause is one deadline on the loops' shared monotonic clock, read relaxed. */
typedef struct lh_overlay_live {
    _Atomic(lh_overlay *) overlay;    /* NULL when there is no rule */
    atomic_uint_fast64_t pause_until; /* uv_now ms; 0: not paused */
} lh_overlay_live;

#define LH_PAUSE_FOREVER UINT64_MAX /* pause_until: until resumed */

/* The overlay a query uses (NULL: no runtime rule). */
static inline const lh_overlay *lh_overlay_live_rules(const lh_overlay_live *l)
{
    return l ? atomic_load_explicit(&((lh_overlay_live *)l)->overlay, memory_order_acquire) : NULL;
}
/* Is blocking paused, by the clock of `loop` (the caller's)? The clock is read only while a
 * pause is set: the query path pays one load otherwise. */
static inline bool lh_overlay_live_paused(const lh_overlay_live *l, const uv_loop_t *loop)
{
    uint64_t until =
        l ? atomic_load_explicit(&((lh_overlay_live *)l)->pause_until, memory_order_relaxed) : 0;
    return until && uv_now(loop) < until;
}

#endif
