/* dnssec_config.h - the trust anchors a configuration names. */
#ifndef LH_DNSSEC_CONFIG_H
#define LH_DNSSEC_CONFIG_H

#include "loophole/config.h"
#include "loophole/dnssec.h"

/* Loads every trust-anchor file (none: LH_DNSSEC_ROOT_KEY) and adds the domain-insecure names.
 * Reads files: start-up and tools only. On error NULL with "file:line: message". */
lh_dnssec_anchors *lh_dnssec_anchors_from_config(const lh_config *c, char *err, size_t errlen);

#endif
