/* fuzz_config.c - the config file parser on arbitrary text. */
#include "loophole/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lh_config c;
    char err[LH_ERR_MAX];
    lh_config_defaults(&c);
    FILE *f = fmemopen((void *)data, size, "r");
    if (f) {
        lh_config_load_stream(&c, f, "fuzz.conf", err, sizeof err);
        fclose(f);
    }
    lh_config_free(&c);
    return 0;
}
