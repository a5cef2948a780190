/* fuzz_snapshot.c - the compiled list snapshot reader (state-dir/lists.snapshot): whatever
 * the file holds, it is either refused with a reason or yields a blockset whose lookups stay
 * inside it. Each input is read twice: as it is (the checksum rejects almost everything), and
 * with its checksum and source fingerprint made to match, so that the structural checks
 * behind them are what the fuzzer explores. */
#include "loophole/log.h"
#include "loophole/snapshot.h"

#include <stdlib.h>
#include <string.h>

static void probe(const lh_blockset *b)
{
    static const char *const names[] = {
        "ads.example.com", "a.b.c.d.e",           "x",
        "n1.snap.test",    "track1.glob.example", "ok.wild.snap.test"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        lh_name n;
        uint64_t h[LH_LABELS_MAX];
        lh_block_match m;
        lh_name_from_text(names[i], strlen(names[i]), &n);
        lh_name_hashes(&n, h);
        lh_blockset_match(b, &n, h, &m);
        if (m.list >= 0 && (size_t)m.list >= b->nlists) abort(); /* an index nobody can use */
    }
}

static void read_one(const uint8_t *data, size_t size, uint64_t fingerprint)
{
    lh_blockset b;
    char why[256];
    if (lh_snapshot_load_bytes(&b, data, size, fingerprint, why, sizeof why) == 0) {
        probe(&b);
        lh_blockset_free(&b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lh_log_threshold = LH_LOG_ERROR;
    uint64_t fp = 0;
    if (size >= 48) memcpy(&fp, data + 40, 8); /* the header's sources field */
    read_one(data, size, fp);
    if (size < LH_SNAPSHOT_CHECKSUM_OFF + 8) return 0;
    uint8_t *copy = malloc(size);
    if (!copy) return 0;
    memcpy(copy, data, size);
    uint64_t sum = lh_snapshot_checksum(copy, size);
    memcpy(copy + LH_SNAPSHOT_CHECKSUM_OFF, &sum, 8);
    read_one(copy, size, fp);
    free(copy);
    return 0;
}
