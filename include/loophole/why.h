/* why.h - the explanation of how a name would be answered, for `loophole why` (text) and the
 * dashboard's why box (JSON): the verdict of the decision step (policy.h) with this
 * configuration, the runtime rule that decides it (if any), every list rule that matches it
 * (file:line), the answer loophole would send when it answers itself, and, given an upstream
 * answer (a file or a live lookup), what the policy's checks on upstream answers make of it:
 * CNAME/SVCB uncloaking and DNS rebinding. One explanation, two renderings. Reads every list
 * file: call it off the event loop. */
#ifndef LH_WHY_H
#define LH_WHY_H

#include "loophole/policy.h"
#include "loophole/sbuf.h"

#include <stdio.h>

#define LH_WHY_RULES_SHOWN 20

/* A list rule that matches a name. */
typedef struct lh_why_rule {
    bool allow, important;
    char *file, *text; /* owned */
    unsigned line;
    const char *kind, *format, *scope;
} lh_why_rule;

typedef struct lh_why_rules {
    lh_why_rule shown[LH_WHY_RULES_SHOWN];
    unsigned nshown, total, blocks, allows;
} lh_why_rules;

typedef struct lh_why_input {
    const lh_config *cfg;
    const lh_policy *policy;
    const lh_overlay *ov;     /* runtime rules, checked before the lists (NULL: none) */
    const char *ov_path;      /* their file, for file:line */
    const char *runtime_rule; /* or the deciding runtime rule, already matched by the caller,
                                 as "file:line: rule" (the dashboard's, read on the loop) */
    bool paused;              /* blocking is paused */
    const char *name, *type;
    const uint8_t *answer; /* an upstream answer to the question to check, or NULL */
    size_t answer_len;
    const char *answer_from; /* where it came from ("FILE", "192.0.2.1:53"), for the text */
} lh_why_input;

typedef struct lh_why {
    char name[LH_NAME_MAX * 4 + 1], type[16];
    lh_decision d;
    const char *verdict;    /* "blocked", "local: the hosts file", ... */
    const char *allow_note; /* "" or why an allow rule matters */
    bool blocked, paused;
    char runtime_rule[LH_NAME_MAX * 4 + 4200]; /* "file:line: rule", or "" */
    bool runtime_allow;
    lh_why_rules rules;
    char list_err[LH_ERR_MAX]; /* a list file that could not be read, or "" */
    size_t local_len;          /* the answer loophole sends itself (LOCAL, REFUSED), or 0 */
    /* The upstream answer, when one was given. */
    bool has_answer;
    const char *answer_from;
    char answer_err[LH_ERR_MAX +
                    2 * LH_NAME_MAX * 4]; /* it is unusable: not a DNS answer to the question */
    bool answer_used;                     /* the question is forwarded, so the answer was checked */
    enum lh_answer_check check;
    unsigned ntargets;    /* CNAME/SVCB targets the answer has */
    bool private_address; /* it has a private or loopback address */
    bool rebind_on;       /* rebind-protection */
    char target[LH_NAME_MAX * 4 + 1];
    lh_verdict instead;        /* the verdict that replaces the answer (check != PASS) */
    lh_why_rules target_rules; /* the list rules that match the blocked target */
    size_t instead_len;        /* the answer sent instead */
    /* Buffers, not cleared: the query d.msg points into, and the answers. */
    uint8_t query[LH_DNS_HEADER_LEN + LH_NAME_MAX + 4 + 11];
    uint8_t local[LH_MSG_MAX];
    uint8_t instead_wire[LH_MSG_MAX];
} lh_why;

/* Explains `in->name`: 0, -2 with err for a name or type that is not one, -1 out of memory.
 * `w` is large (keep it off the stack of a worker thread); lh_why_free releases what it holds
 * after either result. */
int lh_why_explain(const lh_why_input *in, lh_why *w, char *err, size_t errlen);
void lh_why_free(lh_why *w);
/* The explanation as `loophole why` prints it. */
void lh_why_print(const lh_why *w, FILE *out);
/* The same as one JSON object (a line). */
void lh_why_render_json(const lh_why *w, lh_sbuf *out);

/* The dashboard's call: explain and render JSON in one step (an error as {"error":...}).
 * `runtime_rule`: "file:line: rule" of the runtime rule that matches, or NULL. */
void lh_why_json(const lh_config *cfg, const lh_policy *p, const char *runtime_rule, bool paused,
                 const char *name, const char *type, lh_sbuf *out);

/* Reads an upstream answer for NAME TYPE from a file of dig-style text: the records as dig
 * prints them (";; ANSWER SECTION:", ";; AUTHORITY SECTION:" and ";; ADDITIONAL SECTION:"
 * lines choose the section, the answer by default; the status of a ";; ->>HEADER<<-" line is
 * the rcode; other ';' lines and blank lines are skipped). Writes the answer's wire form.
 * Returns its length, or 0 with err ("FILE:LINE: reason"). */
size_t lh_why_read_answer(const char *path, const char *name, uint16_t type, uint8_t *out,
                          size_t cap, char *err, size_t errlen);
/* Asks NAME TYPE of the first plain-DNS server of the upstream group the question would be
 * forwarded to (0: the default upstreams, g: forward zone g), as the daemon would (RD, EDNS,
 * the upstream timeout; TCP when truncated). Writes the answer and names the server in
 * `from`. Returns its length, or 0 with err. Blocks: a command-line tool's call. */
size_t lh_why_lookup(const lh_config *cfg, unsigned group, const char *name, uint16_t type,
                     uint8_t *out, size_t cap, char *from, size_t fromlen, char *err,
                     size_t errlen);

#endif
