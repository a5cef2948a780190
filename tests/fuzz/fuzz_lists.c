/* fuzz_lists.c - list files of every format (auto-detected and forced) compiled into a
 * blockset, then names matched against it. */
#include "loophole/blockset.h"
#include "loophole/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The name a re-read rule produced (round trip below). */
static int grab(void *ctx, const lh_rule *r, unsigned line, const char *text)
{
    (void)line, (void)text;
    if (r->kind == LH_RULE_NAME) *(lh_name *)ctx = r->name;
    return 0;
}

/* Every name rule the parser accepts round-trips: written back as text, it reads as the same
 * name; and a rule that matches the name itself matches it. */
static int round_trip(void *ctx, const lh_rule *r, unsigned line, const char *text)
{
    (void)ctx, (void)line;
    if (r->kind != LH_RULE_NAME) return 0;
    if ((r->match & LH_MATCH_EXACT) && !lh_rule_matches(r, &r->name)) abort();
    char name[LH_NAME_MAX * 4 + 1], adblock[sizeof name + 4];
    lh_name_to_text(r->name.wire, name, sizeof name);
    size_t len = strlen(name);
    if (len && name[len - 1] == '.') name[--len] = 0;
    if (!len) return 0; /* the root */
    /* A name that looks like an IPv4 address is accepted from a hosts line but refused as a
     * plain domain on purpose (a list of addresses is not a list of names). */
    if (strspn(name, "0123456789.") == len) return 0;
    /* Written back in the format it was read as (hosts and plain domains as a plain domain,
     * adblock as ||name^): the formats differ on purpose in what they ignore (a hosts file's
     * own ip6-* names). */
    snprintf(adblock, sizeof adblock, "||%s^", name);
    const char *back_line = r->format == LH_FMT_ADBLOCK ? adblock : name;
    enum lh_list_format fmt = r->format == LH_FMT_ADBLOCK ? LH_FMT_ADBLOCK : LH_FMT_DOMAINS;
    if (r->format != LH_FMT_ADBLOCK && r->format != LH_FMT_DOMAINS && r->format != LH_FMT_HOSTS)
        return 0;
    lh_name back = {0};
    const char *reason;
    int fn_rc = 0;
    if (lh_list_parse_line(back_line, fmt, false, -1, grab, &back, 1, &reason, &fn_rc) !=
            LH_LINE_RULE ||
        back.len != r->name.len || memcmp(back.wire, r->name.wire, back.len) != 0) {
        fprintf(stderr, "round trip: '%s' (from '%s') reads back differently\n", back_line, text);
        abort();
    }
    return 0;
}

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
    /* Line by line again, for the round trip of every accepted name. */
    char line[1024];
    for (size_t off = 1; off < size;) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t end = nl ? (size_t)(nl - data) : size, n = end - off;
        if (n < sizeof line && !memchr(data + off, 0, n)) {
            memcpy(line, data + off, n);
            line[n] = 0;
            const char *reason;
            int fn_rc = 0;
            lh_list_parse_line(line, info.format, info.allow, info.subdomains, round_trip, NULL, 1,
                               &reason, &fn_rc);
        }
        off = end + 1;
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
