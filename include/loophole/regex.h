/* regex.h - regular expressions for list rules, through PCRE2. Patterns come from downloaded
 * lists, so both compiling and matching are bounded: PCRE2 rejects oversized compiled
 * patterns (where glibc's regcomp expands nested repetitions exponentially) and a match limit
 * stops catastrophic backtracking. Matching is case-insensitive. */
#ifndef LH_REGEX_H
#define LH_REGEX_H

#include <stdbool.h>
#include <stddef.h>

typedef struct lh_regex lh_regex;

/* Returns NULL with a message in err when the pattern is invalid or too large. */
lh_regex *lh_regex_compile(const char *pattern, char *err, size_t errlen);
/* Does the pattern match `text` (a name in lowercase dotted form)? A match that hits the
 * backtracking limit counts as no match. No allocation after the first call on a thread. */
bool lh_regex_match(const lh_regex *re, const char *text, size_t len);
void lh_regex_free(lh_regex *re);

#endif
