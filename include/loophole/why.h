/* why.h - the explanation `loophole why` gives, as JSON for the dashboard: the verdict for a
 * name with the running policy, the runtime rule that decides it (if any) and every list rule
 * that matches it, as file:line. Reads every list file: call it off the event loop. */
#ifndef LH_WHY_H
#define LH_WHY_H

#include "loophole/policy.h"
#include "loophole/sbuf.h"

/* `runtime_rule`: "file:line: rule" of the runtime rule that matches, or NULL; `paused`:
 * blocking is paused. */
void lh_why_json(const lh_config *cfg, const lh_policy *p, const char *runtime_rule, bool paused,
                 const char *name, const char *type, lh_sbuf *out);

#endif
