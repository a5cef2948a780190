/* sbuf.h - text into a caller-owned, fixed-size buffer (reports, stats, JSON lines). Appends
 * never write past the end: they set `overflow`, so callers check once when done. */
#ifndef LH_SBUF_H
#define LH_SBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct lh_sbuf {
    char *p;
    size_t len, cap; /* p[len] is always 0 */
    bool overflow;
} lh_sbuf;

static inline void lh_sbuf_init(lh_sbuf *b, char *p, size_t cap)
{
    b->p = p;
    b->cap = cap;
    b->len = 0;
    b->overflow = cap == 0;
    if (cap) p[0] = 0;
}

void lh_sbuf_printf(lh_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lh_sbuf_putc(lh_sbuf *b, char c);
/* A JSON string: quoted, with quotes, backslashes and control bytes escaped. */
void lh_sbuf_json_str(lh_sbuf *b, const char *s);

#endif
