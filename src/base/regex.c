/* regex.c - PCRE2 behind a small interface (see regex.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "loophole/regex.h"

#include <pcre2.h>
#include <stdio.h>

#define LH_REGEX_MAX_PATTERN 1024   /* list lines are short; longer is not a name pattern */
#define LH_REGEX_MATCH_LIMIT 100000 /* backtracking steps per match */
#define LH_REGEX_DEPTH_LIMIT 1000

/* Per-thread scratch, created on first use, so matching never allocates on the query path. */
static _Thread_local pcre2_match_data *tl_match_data;
static _Thread_local pcre2_match_context *tl_match_ctx;

lh_regex *lh_regex_compile(const char *pattern, char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE offset;
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (!cc) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pcre2_set_max_pattern_length(cc, LH_REGEX_MAX_PATTERN);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_CASELESS | PCRE2_NO_AUTO_CAPTURE, &code, &offset, cc);
    pcre2_compile_context_free(cc);
    if (!re) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(code, msg, sizeof msg);
        snprintf(err, errlen, "invalid regular expression at offset %zu: %s", (size_t)offset,
                 (const char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: the interpreter is the fallback */
    return (lh_regex *)re;
}

bool lh_regex_match(const lh_regex *re, const char *text, size_t len)
{
    if (!tl_match_data) {
        tl_match_data = pcre2_match_data_create(1, NULL);
        tl_match_ctx = pcre2_match_context_create(NULL);
        if (!tl_match_data || !tl_match_ctx) return false;
        pcre2_set_match_limit(tl_match_ctx, LH_REGEX_MATCH_LIMIT);
        pcre2_set_depth_limit(tl_match_ctx, LH_REGEX_DEPTH_LIMIT);
    }
    return pcre2_match((const pcre2_code *)re, (PCRE2_SPTR)text, len, 0, 0, tl_match_data,
                       tl_match_ctx) >= 0;
}

void lh_regex_free(lh_regex *re)
{
    pcre2_code_free((pcre2_code *)re);
}
