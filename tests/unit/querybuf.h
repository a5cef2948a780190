/* querybuf.h - builds query packets for tests. */
#ifndef LH_QUERYBUF_H
#define LH_QUERYBUF_H

#include "loophole/wire.h"

#include <string.h>

/* Writes a query for the dotted `name` (case kept) into buf; `edns_size` 0 = no OPT. Returns
 * the length. */
static inline size_t qb_query(uint8_t *buf, const char *name, uint16_t type, uint16_t edns_size,
                              bool do_bit)
{
    size_t o = 12;
    memset(buf, 0, 12);
    lh_wr16(buf, 0x1234);
    lh_wr16(buf + 2, LH_FLAG_RD);
    lh_wr16(buf + 4, 1);
    const char *p = name;
    while (*p && strcmp(p, ".") != 0) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        buf[o++] = (uint8_t)l;
        memcpy(buf + o, p, l);
        o += l;
        p += l + (dot ? 1 : 0);
    }
    buf[o++] = 0;
    lh_wr16(buf + o, type);
    lh_wr16(buf + o + 2, LH_CLASS_IN);
    o += 4;
    if (edns_size) {
        lh_wr16(buf + 10, 1);
        buf[o] = 0;
        lh_wr16(buf + o + 1, LH_TYPE_OPT);
        lh_wr16(buf + o + 3, edns_size);
        buf[o + 5] = 0;
        buf[o + 6] = 0;
        buf[o + 7] = do_bit ? 0x80 : 0;
        buf[o + 8] = 0;
        lh_wr16(buf + o + 9, 0);
        o += 11;
    }
    return o;
}

#endif
