/* fuzz_trust_anchor.c - a trust-anchor file (trust-anchor FILE): zone-file syntax read by ldns,
 * only DS and DNSKEY records accepted; then a negative trust anchor from the same bytes. */
#include "loophole/dnssec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    lh_dnssec_anchors *a = lh_dnssec_anchors_new();
    if (!a) return 0;
    lh_dnssec_anchors_load_text(a, (const char *)data, size, "fuzz", err, sizeof err);
    char name[300];
    size_t n = size < sizeof name - 1 ? size : sizeof name - 1;
    memcpy(name, data, n);
    name[n] = 0;
    lh_dnssec_anchors_add_insecure(a, name, err, sizeof err);
    lh_dnssec_anchors_free(a);
    return 0;
}
