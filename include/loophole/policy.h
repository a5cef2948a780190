/* policy.h - decides how a question is answered: locally (localhost, special-use names, the
 * hosts file), refused, or forwarded. Pure: no I/O on the query path. A policy is an immutable
 * snapshot; reload builds a new one off the loop and swaps the pointer. */
#ifndef LH_POLICY_H
#define LH_POLICY_H

#include "loophole/blockset.h"
#include "loophole/config.h"
#include "loophole/hosts.h"
#include "loophole/nameset.h"
#include "loophole/wire.h"

#include <stdatomic.h>

enum lh_verdict_kind {
    LH_VERDICT_FORWARD = 0, /* not ours: goes upstream */
    LH_VERDICT_LOCAL,       /* answered from the verdict's data */
    LH_VERDICT_REFUSED,
};

/* Why a question got its verdict: for statistics and the query log. */
enum lh_origin {
    LH_ORIGIN_NONE = 0,
    LH_ORIGIN_LOCALHOST,   /* RFC 6761 localhost and its reverse names */
    LH_ORIGIN_SPECIAL_USE, /* .onion, .invalid, .local, RFC 6303 reverse zones */
    LH_ORIGIN_HOSTS,       /* the hosts file */
    LH_ORIGIN_CLASS,       /* a class other than IN */
    LH_ORIGIN_META_TYPE,   /* AXFR, IXFR, MAILA, MAILB, OPT, TSIG as the question type */
    LH_ORIGIN_CANARY,      /* use-application-dns.net, mask.icloud.com, resolver.arpa */
    LH_ORIGIN_BLOCKLIST,   /* a block rule */
    LH_ORIGIN_LEAK_CANARY, /* <nonce>.canary.loophole.test, asked by `loophole leak-check` */
    LH_ORIGIN_REBIND,      /* an upstream answered a public name with a private address */
};

typedef struct lh_verdict {
    enum lh_verdict_kind kind;
    enum lh_origin origin;
    lh_local_answer ans;       /* LOCAL and REFUSED: the answer (wire.h builds it) */
    int list;                  /* blocklist / allowlist index that decided, or -1 */
    int match_label;           /* label where the deciding name rule matched, -1 for patterns */
    const lh_name *match_name; /* the name match_label indexes: NULL for the question, else a
                                  CNAME/SVCB target (uncloaking; valid while it is answered) */
    bool allowed;              /* an allow rule let the name through */
    bool paused;               /* a block rule matched, but blocking is paused: forwarded */
    unsigned group;            /* FORWARD: upstream group (0 default, 1.. forward zones) */
    uint8_t canary_v4[4];      /* storage for the leak canary's address (ans.v4 points here) */
} lh_verdict;

typedef struct lh_policy {
    atomic_uint refs; /* loops using it: the last lh_policy_free frees it */
    lh_nameset zones; /* special-use zone apexes, localhost reverse names, canary names */
    lh_hosts hosts;
    bool has_hosts;
    bool hosts_missing; /* the default hosts file does not exist: served without it */
    lh_blockset blocks;
    lh_nameset forward_zones; /* zone -> upstream group (1..) */
    lh_nameset rebind_allow;  /* domains whose private answers are expected */
    bool rebind_protection;   /* refuse private answers to other names (rebind-protection) */
    uint32_t ttl;
    /* How blocked names are answered (from the config). */
    enum lh_block_mode block_mode;
    uint32_t block_ttl;
    uint8_t block_v4[4], block_v6[16];
    uint16_t block_n4, block_n6;
    struct lh_policy *successor; /* lh_policy_handover: populated once this one is freed */
} lh_policy;

/* Builds a policy from the config (reads the hosts file). Returns NULL with err set. A
 * default hosts file that does not exist is no error: hosts_missing tells the caller. */
lh_policy *lh_policy_build(const lh_config *cfg, char *err, size_t errlen);
/* The same for a reload, while another policy is resident: a list mapped from a snapshot
 * (or built on disk) is checked without keeping its pages; lh_policy_handover brings them in
 * once the old policy is freed. */
lh_policy *lh_policy_rebuild(const lh_config *cfg, char *err, size_t errlen);
/* Maps in every page of a policy whose lists come from a snapshot file (lh_snapshot_populate). */
void lh_policy_populate(const lh_policy *p);
/* A reload: `p` replaces `old`. When p's lists are a mapped file, its pages are brought in
 * (on a thread of its own) once `old` is freed, not before: a reload never has both trees
 * resident, and after it the new one is resident as the first one was (no page faults for
 * lookups). Takes a reference on p until then. */
void lh_policy_handover(lh_policy *old, lh_policy *p);
/* Drops a reference (the builder holds the first); the last one frees the policy. */
void lh_policy_free(lh_policy *p);
/* Another loop uses the same policy (read-only: lookups never write to it). */
void lh_policy_ref(lh_policy *p);
/* Decides for a parsed question; `hashes` are its suffix hashes (lh_name_hashes). */
void lh_policy_decide(const lh_policy *p, const lh_msg *m, const uint64_t *hashes, lh_verdict *v);
/* The same with the runtime state (runtime.h): the runtime rules `ov` (NULL: none) are
 * checked before the lists, and with `paused` a block becomes a forward (v->paused). */
typedef struct lh_overlay lh_overlay;
void lh_policy_decide_at(const lh_policy *p, const lh_overlay *ov, bool paused, const lh_msg *m,
                         const uint64_t *hashes, lh_verdict *v);
/* One query's decision, the step the daemon, `loophole why`, the fuzzers and the tests share:
 * parse, the name's suffix hashes, the verdict. The daemon parses first (lh_decide_parse),
 * answers parse errors and its own checks (client ACL, rate limit), then decides
 * (lh_decide_verdict); the others call lh_decide. */
typedef struct lh_decision {
    lh_parse_result parse; /* anything but OK: an error answer (or none); no verdict */
    lh_msg msg;            /* points into the packet given to lh_decide_parse */
    uint64_t hashes[LH_LABELS_MAX];
    lh_verdict verdict;
} lh_decision;
/* Parses `pkt` (len bytes, kept by the caller while d is used). Returns d->parse. Inline,
 * as the next step: on every query, a call each cost more than what they do. */
static inline lh_parse_result lh_decide_parse(const uint8_t *pkt, size_t len, lh_decision *d)
{
    d->parse = lh_msg_parse_query(pkt, len, &d->msg);
    return d->parse;
}
/* Hashes the parsed name and decides it: runtime rules `ov` (NULL: none) first; `paused`
 * turns a block into a forward. */
static inline void lh_decide_verdict(const lh_policy *p, const lh_overlay *ov, bool paused,
                                     lh_decision *d)
{
    lh_name_hashes(&d->msg.qname, d->hashes);
    lh_policy_decide_at(p, ov, paused, &d->msg, d->hashes, &d->verdict);
}
/* Both steps. Returns d->parse; the verdict is set when it is LH_PARSE_OK. */
lh_parse_result lh_decide(const lh_policy *p, const lh_overlay *ov, bool paused, const uint8_t *pkt,
                          size_t len, lh_decision *d);

/* The block decision alone (runtime rules, then the lists), for CNAME/SVCB targets. */
void lh_policy_block_match(const lh_policy *p, const lh_overlay *ov, const lh_name *n,
                           const uint64_t *hashes, lh_block_match *bm);

/* May `name` resolve to private addresses (rebind-allow domains and everything below)? */
bool lh_policy_rebind_allowed(const lh_policy *p, const lh_name *name);

/* Uncloaking: is any name a scanned upstream answer leads to (CNAME targets, SVCB/HTTPS
 * target names) blocked? Every target is checked up to LH_ANSWER_TARGETS_MAX; the first
 * blocked one is returned in `target` with its match in `bm`. An answer with more targets is
 * LH_UNCLOAK_TOO_MANY, none of them read (to be blocked: its work would be unbounded by
 * anything but the message size). No allocation. */
enum lh_uncloak_result { LH_UNCLOAK_CLEAN = 0, LH_UNCLOAK_BLOCKED, LH_UNCLOAK_TOO_MANY };
enum lh_uncloak_result lh_policy_uncloak(const lh_policy *p, const uint8_t *pkt, size_t len,
                                         const lh_answer_info *ai, lh_name *target,
                                         lh_block_match *bm);
/* The same with the runtime rules (NULL: none) checked before the lists. */
enum lh_uncloak_result lh_policy_uncloak_at(const lh_policy *p, const lh_overlay *ov,
                                            const uint8_t *pkt, size_t len,
                                            const lh_answer_info *ai, lh_name *target,
                                            lh_block_match *bm);

/* The checks on an upstream answer, in order: DNS rebinding (a public name answered with a
 * private address while rebind-protection is on), then uncloaking (a CNAME or SVCB/HTTPS
 * target that is blocked). Shared by the forwarder and `loophole why --answer`. */
enum lh_answer_check {
    LH_CHECK_PASS = 0,  /* deliver the answer */
    LH_CHECK_REBIND,    /* refused: SERVFAIL, EDE 18 (v->origin LH_ORIGIN_REBIND) */
    LH_CHECK_UNCLOAKED, /* a target is blocked: the blocked answer (v->match_name: target) */
    LH_CHECK_TOO_MANY,  /* more targets than are checked: the blocked answer */
};
typedef struct lh_answer_ctx {
    const lh_name *qname; /* the question's name */
    unsigned group;       /* the upstream group that answered: forward zones may be private */
    bool paused;          /* blocking is paused: no uncloaking (rebinding is still checked) */
    const lh_overlay *ov; /* runtime rules, checked before the lists; NULL: none */
} lh_answer_ctx;
/* Checks the scanned answer `pkt` (TTLs normalised, OPT stripped). On anything but PASS, `v`
 * is the verdict to answer with instead; an uncloaking verdict points at `target`, which the
 * caller keeps while it uses `v`. No allocation, no I/O, no logging. */
enum lh_answer_check lh_policy_check_answer(const lh_policy *p, const lh_answer_ctx *c,
                                            const uint8_t *pkt, size_t len,
                                            const lh_answer_info *ai, lh_verdict *v,
                                            lh_name *target);
/* Names a check's result for logs and `loophole why`: "pass", "rebind", "uncloaked"... */
const char *lh_answer_check_name(enum lh_answer_check r);

/* Turns a block match into the blocked answer's verdict (block mode, TTL, EDE 15). */
void lh_policy_block_verdict(const lh_policy *p, lh_verdict *v, const lh_block_match *bm);

/* Writes the answer for a LOCAL or REFUSED verdict (wire.c builds it). Returns its length, 0
 * if nothing fits. */
static inline size_t lh_answer_build(const lh_msg *m, const lh_verdict *v, uint8_t *out, size_t cap,
                                     size_t limit, uint16_t our_udp_size)
{
    return lh_answer_local(m, &v->ans, out, cap, limit, our_udp_size);
}

#endif
