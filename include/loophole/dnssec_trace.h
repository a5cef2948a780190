/* dnssec_trace.h - `loophole dnssec NAME [TYPE]`: asks the upstream (DO+CD), validates the
 * answer with loophole's validator and prints the chain it built, as `delv` or `drill -S` do. */
#ifndef LOOPHOLE_DNSSEC_TRACE_H
#define LOOPHOLE_DNSSEC_TRACE_H

#include "loophole/config.h"

/* Prints the answers, the chain and the verdict on stdout, errors on stderr. Returns the
 * command's exit status: 0 secure, 1 bogus, 2 indeterminate or error, 3 insecure. */
int lh_dnssec_trace(const lh_config *cfg, const char *name, const char *type);

#endif
