/* runtime.h - what can change while loophole runs without a reload: the runtime rules (an
 * overlay checked before the lists, persisted to <state-dir>/runtime.list) and a pause of
 * blocking. Owned by the main loop; every loop reads it on the query path.
 *
 * Sharing with worker loops (threads > 1): the overlay is immutable and published by an
 * atomic pointer store (release); a query loads it once (acquire) and uses it until the
 * query's decision is made, never across callbacks. A replaced overlay is retired, tagged
 * with a generation number, and freed once every worker has been woken after the swap: a
 * worker's wake-up runs between two queries, so it holds no pointer to the old overlay then
 * (lh_runtime_quiescent records that). The pause is one atomic deadline on the loops' shared
 * monotonic clock (uv_now), read relaxed: nothing else is published with it. */
#ifndef LH_RUNTIME_H
#define LH_RUNTIME_H

#include "loophole/overlay.h"
#include "loophole/recent.h"
#include "loophole/sbuf.h"

#include <uv.h>

typedef struct lh_admin lh_admin;

#define LH_LOOPS_MAX 64 /* threads at most (config) */
#define LH_PAUSE_DEFAULT_S 300

typedef struct lh_runtime_retired {
    lh_overlay *o;
    uint64_t gen;
} lh_runtime_retired;

typedef struct lh_runtime {
    lh_overlay_live live;                    /* what queries see: the rules and the pause */
    atomic_uint_fast64_t gen;                /* overlay swaps */
    atomic_uint_fast64_t seen[LH_LOOPS_MAX]; /* per worker loop: gen at its last wake-up */
    /* Main loop only from here. */
    lh_admin *admin;
    lh_overlay *rules; /* the current rules (one reference), possibly empty */
    char *path;        /* <state-dir>/runtime.list; NULL: not persisted */
    lh_runtime_retired *retired;
    size_t nretired;
    uint64_t paused_at_unix; /* when the current pause began */
    uv_timer_t pause_timer;
    bool timer_open;
    lh_recent *rings[LH_LOOPS_MAX]; /* each loop's recent queries (index 0: the main loop) */
    unsigned nrings;
    uint64_t salt; /* hashes client addresses when query-log-clients = hash */
    /* runtime.list as a reload read it on the pool thread, applied on the loop after. */
    lh_overlay *reread;   /* NULL: unreadable (reason in reread_err) */
    char reread_err[512]; /* also the first line that is not a rule */
    uint64_t reread_gen;  /* `gen` when it was read: a rule set since wins */
    bool reread_done;
} lh_runtime;

/* Main loop, before privileges are dropped: creates the state directory (owned by the user
 * loophole runs as) and reads the runtime rules. NULL with err on failure. */
lh_runtime *lh_runtime_start(lh_admin *a, char *err, size_t errlen);
/* Closes the pause timer (the loop is stopping). */
void lh_runtime_stop(lh_runtime *rt);
/* After every loop has ended. */
void lh_runtime_free(lh_runtime *rt);

/* A worker loop (1..) woke up: it holds no overlay pointer from before. */
void lh_runtime_quiescent(lh_runtime *rt, unsigned loop);

/* SIGHUP and `reload` read runtime.list again (a person may have edited it): read on the
 * reload's pool thread (lh_runtime_reread), applied on the loop after (lh_runtime_reread_apply).
 * A file with a line that is not a rule loophole can apply is not applied: the running rules
 * stay, and msg gets "path:line: reason". Returns 0 (applied, or nothing to read) or -1. */
void lh_runtime_reread(lh_runtime *rt);
int lh_runtime_reread_apply(lh_runtime *rt, char *msg, size_t msglen);

/* Pauses blocking for `seconds` (0: until resumed). */
void lh_runtime_pause(lh_runtime *rt, uint64_t seconds, char *msg, size_t msglen);
/* Ends a pause. Returns false if blocking was not paused. */
bool lh_runtime_resume(lh_runtime *rt, char *msg, size_t msglen);
/* Milliseconds of pause left (LH_PAUSE_FOREVER: until resumed; 0: not paused). */
uint64_t lh_runtime_pause_left(const lh_runtime *rt);
/* Adds, replaces or removes (remove) the runtime rule for `name`, saves the file and
 * publishes it. Returns 0, or -1 with msg (the running rules are unchanged then). */
int lh_runtime_set_rule(lh_runtime *rt, const char *name, bool remove, bool allow, bool subdomains,
                        char *msg, size_t msglen);

/* The control socket's runtime commands: pause, resume, allow, block, unlist, recent. Returns
 * -1 when `cmd` is not one of them, 0 done (answer in out), 1 failed (reason in out). */
int lh_runtime_command(lh_runtime *rt, const char *cmd, lh_sbuf *out);

/* Recent queries of every loop, oldest first: at most `max`, after the per-loop positions
 * in `cursor` ("P0,P1,..."; NULL or "" for the newest), only blocked ones if asked, only a
 * client / a name containing a text if given. JSON: {"cursor":"...","queries":[...]}; text:
 * a "cursor ..." line, then one line a query. */
typedef struct lh_recent_filter {
    bool blocked;
    const char *client; /* as shown (address or hash), exact */
    const char *name;   /* a substring of the name */
} lh_recent_filter;
void lh_runtime_recent(const lh_runtime *rt, const char *cursor, const lh_recent_filter *f,
                       size_t max, bool json, lh_sbuf *out);
/* The pause and the rules, for `stats`: a JSON member ("blocking":{...}) or text lines. */
void lh_runtime_report(const lh_runtime *rt, lh_sbuf *b, bool json);
/* The rules as a list entry for `loophole lists` (json: one object). */
void lh_runtime_report_rules(const lh_runtime *rt, lh_sbuf *b, bool json);

#endif
