/* update.h - `loophole lists update`: download the configured list URLs. */
#ifndef LH_UPDATE_H
#define LH_UPDATE_H

#include "loophole/config.h"

/* Downloads every `list-url` of the config. Each file is replaced atomically, and only by a
 * download that parses as a list; a failed download or parse keeps the old file. Conditional
 * requests (If-Modified-Since from the file's time, If-None-Match from its saved ETag) skip
 * unchanged lists. Host names are resolved with c-ares against loophole's own upstreams, so an
 * update works while loophole (perhaps the system resolver) is down. Prints one line per list,
 * with a progress line when stderr is a terminal. Returns 0 when all succeeded, else 1. */
int lh_lists_update(const lh_config *cfg);

#endif
