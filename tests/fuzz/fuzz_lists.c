/* fuzz_lists.c - list files of every format (auto-detected and forced) compiled into a
 * blockset, then names matched against it. */
#include "loophole/blockset.h"
#include "loophole/log.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const probes[] = {"ads.example.com", "a.b.c.d.e",    "x",
                                         "localhost",       "ad12.example", "track1.glob.example"};
    char err[256];
    lh_log_threshold = LH_LOG_ERROR;
    if (size < 1) return 0;
    lh_blockset b;
    if (lh_blockset_init(&b, 16) != 0) return 0;
    /* First byte: the format (0..6) and allow flag; the rest is the file. */
    lh_list_info info = {.path = "fuzz.list",
                         .format = (enum lh_list_format)(data[0] % 7),
                         .allow = data[0] & 0x80,
                         .subdomains = (data[0] >> 4) % 3 - 1};
    FILE *f = fmemopen((void *)(data + 1), size - 1, "r");
    if (f) {
        lh_blockset_add_file(&b, &info, f, err, sizeof err);
        fclose(f);
    }
    if (lh_blockset_finish(&b, err, sizeof err) != 0) {
        lh_blockset_free(&b);
        return 0;
    }
    for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
        lh_name n;
        uint64_t h[LH_LABELS_MAX];
        lh_block_match m;
        lh_name_from_text(probes[i], strlen(probes[i]), &n);
        lh_name_hashes(&n, h);
        lh_blockset_match(&b, &n, h, &m);
    }
    lh_blockset_free(&b);
    return 0;
}
