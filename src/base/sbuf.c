/* sbuf.c - bounded text building; JSON string escaping (RFC 8259 section 7). */
#include "loophole/sbuf.h"

#include <stdarg.h>
#include <stdio.h>

void lh_sbuf_printf(lh_sbuf *b, const char *fmt, ...)
{
    if (b->overflow) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len) {
        b->overflow = true;
        b->p[b->len] = 0; /* drop the partial piece */
        return;
    }
    b->len += (size_t)n;
}

void lh_sbuf_putc(lh_sbuf *b, char c)
{
    if (b->overflow || b->len + 1 >= b->cap) {
        b->overflow = true;
        return;
    }
    b->p[b->len++] = c;
    b->p[b->len] = 0;
}

void lh_sbuf_json_str(lh_sbuf *b, const char *s)
{
    lh_sbuf_putc(b, '"');
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            lh_sbuf_putc(b, '\\');
            lh_sbuf_putc(b, (char)*c);
        } else if (*c < 0x20 || *c == 0x7f) {
            lh_sbuf_printf(b, "\\u%04x", *c);
        } else {
            lh_sbuf_putc(b, (char)*c);
        }
    }
    lh_sbuf_putc(b, '"');
}
