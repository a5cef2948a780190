/* fuzz_hosts.c - the hosts file parser on arbitrary text. */
#include "loophole/hosts.h"
#include "loophole/config.h"
#include "loophole/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lh_hosts h;
    char err[LH_ERR_MAX];
    lh_log_threshold = LH_LOG_ERROR; /* bad lines are warnings: keep the output quiet */
    FILE *f = fmemopen((void *)data, size, "r");
    if (f) {
        if (lh_hosts_load_stream(&h, f, "fuzz-hosts", err, sizeof err) == 0) lh_hosts_free(&h);
        fclose(f);
    }
    return 0;
}
