/* recent.c - see recent.h for the seqlock protocol. */
#include "loophole/recent.h"

#include <stdlib.h>
#include <uv.h>
#include <string.h>
#include <time.h>

lh_recent *lh_recent_new(size_t n, bool keep_address, uint64_t now_ms)
{
    size_t slots = 1;
    while (slots < n)
        slots <<= 1;
    lh_recent *r = calloc(1, sizeof *r);
    if (!r || !(r->slots = calloc(slots, sizeof *r->slots))) {
        free(r);
        return NULL;
    }
    r->mask = slots - 1;
    r->keep_address = keep_address;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r->unix_offset_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - (int64_t)now_ms;
    atomic_init(&r->published, 0);
    for (size_t i = 0; i < slots; i++)
        atomic_init(&r->slots[i].seq, 0);
    return r;
}

void lh_recent_free(lh_recent *r)
{
    if (!r) return;
    free(r->slots);
    free(r);
}

/* A slot's words: 0 the loop's clock (uv_now); 1 latency | qtype << 32 | outcome << 48 | rcode <<
 * 56; 2 list (16 bits) | match label (8) << 16 | family << 24 | name length << 32 | has rcode <<
 * 40; 3-4 the address; 5.. the name's wire bytes. Packed with shifts, so the layout is the same on
 * every byte order, and built in registers: the record is never assembled on the stack. */
#define W_NAME 5

/* The words of a name past its first 32 bytes: rare, and kept out of lh_recent_push so that
 * the common path needs fewer registers. */
__attribute__((noinline)) static void store_long_name(lh_recent_slot *s, const lh_name *n)
{
    for (size_t i = 4; i * 8 < n->len; i++) {
        uint64_t y = 0;
        size_t left = sizeof n->wire - i * 8; /* the last word of a 255-byte array is short */
        memcpy(&y, n->wire + i * 8, left < 8 ? left : 8);
        atomic_store_explicit(&s->w[W_NAME + i], y, memory_order_relaxed);
    }
}

void lh_recent_push(lh_recent *r, const lh_query_end *q, uint64_t now_ms)
{
    uint64_t pos = atomic_load_explicit(&r->published, memory_order_relaxed); /* we wrote it */
    lh_recent_slot *s = &r->slots[pos & r->mask];
    const lh_name *n = &q->msg->qname;
    size_t len = n->len;
    /* Measured only when something else asked for the arrival time (the query log). */
    uint64_t latency = q->start_ns ? (uint32_t)((uv_hrtime() - q->start_ns) / 1000) : 0;
    bool has_rcode = q->answer != NULL; /* an answer sent is at least a 12-byte header */
    uint64_t rcode = has_rcode ? q->answer[3] & 0xf : 0;
    uint64_t w1 =
        latency | (uint64_t)q->msg->qtype << 32 | (uint64_t)(uint8_t)q->outcome << 48 | rcode << 56;
    uint64_t w2 = (uint64_t)(uint16_t)q->list | (uint64_t)(uint8_t)q->match_label << 16 |
                  (uint64_t)len << 32 | (uint64_t)has_rcode << 40;
    uint64_t a0 = 0, a1 = 0;
    const lh_sockaddr *c = q->client;
    if (r->keep_address && c) {
        if (c->sa.sa_family == AF_INET) {
            w2 |= 4ull << 24;
            uint32_t v4;
            memcpy(&v4, &c->v4.sin_addr, 4);
            a0 = v4;
        } else if (c->sa.sa_family == AF_INET6) {
            w2 |= 6ull << 24;
            memcpy(&a0, c->v6.sin6_addr.s6_addr, 8);
            memcpy(&a1, c->v6.sin6_addr.s6_addr + 8, 8);
        }
    }
    atomic_store_explicit(&s->seq, 2 * pos + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* the odd mark is seen before any new word */
    atomic_store_explicit(&s->w[0], now_ms, memory_order_relaxed); /* the reader adds the offset */
    atomic_store_explicit(&s->w[1], w1, memory_order_relaxed);
    atomic_store_explicit(&s->w[2], w2, memory_order_relaxed);
    atomic_store_explicit(&s->w[3], a0, memory_order_relaxed);
    atomic_store_explicit(&s->w[4], a1, memory_order_relaxed);
    /* Most names fit in 32 bytes: four words unconditionally (the wire array is 255 bytes, so
     * reading past the name stays inside it), a loop only for longer ones. */
    uint64_t x0, x1, x2, x3;
    memcpy(&x0, n->wire, 8);
    memcpy(&x1, n->wire + 8, 8);
    memcpy(&x2, n->wire + 16, 8);
    memcpy(&x3, n->wire + 24, 8);
    atomic_store_explicit(&s->w[W_NAME], x0, memory_order_relaxed);
    atomic_store_explicit(&s->w[W_NAME + 1], x1, memory_order_relaxed);
    atomic_store_explicit(&s->w[W_NAME + 2], x2, memory_order_relaxed);
    atomic_store_explicit(&s->w[W_NAME + 3], x3, memory_order_relaxed);
    if (len > 32) store_long_name(s, n);
    atomic_store_explicit(&s->seq, 2 * pos + 2, memory_order_release);
    atomic_store_explicit(&r->published, pos + 1, memory_order_release);
}

/* Copies slot `pos` if it still holds that record, untorn. */
static bool read_slot(const lh_recent *r, uint64_t pos, lh_recent_rec *out)
{
    lh_recent_slot *s = &r->slots[pos & r->mask];
    uint64_t want = 2 * pos + 2;
    if (atomic_load_explicit(&s->seq, memory_order_acquire) != want) return false;
    uint64_t w[W_NAME + LH_RECENT_NAME_WORDS];
    for (size_t i = 0; i < W_NAME; i++)
        w[i] = atomic_load_explicit(&s->w[i], memory_order_relaxed);
    size_t len = (w[2] >> 32) & 0xff;
    size_t words = len > 32 ? (len + 7) / 8 : 4;
    for (size_t i = 0; i < words; i++)
        w[W_NAME + i] = atomic_load_explicit(&s->w[W_NAME + i], memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire); /* the words are read before the recheck */
    if (atomic_load_explicit(&s->seq, memory_order_relaxed) != want) return false;
    memset(out, 0, sizeof *out);
    out->time_ms = w[0] + (uint64_t)r->unix_offset_ms;
    out->latency_us = (uint32_t)w[1];
    out->qtype = (uint16_t)(w[1] >> 32);
    out->outcome = (uint8_t)(w[1] >> 48);
    out->rcode = (uint8_t)(w[1] >> 56);
    out->list = (int16_t)(uint16_t)w[2];
    out->match_label = (int8_t)(uint8_t)(w[2] >> 16);
    out->family = (uint8_t)(w[2] >> 24);
    out->name_len = (uint8_t)len;
    out->has_rcode = (uint8_t)(w[2] >> 40) & 1;
    if (out->family == 4) {
        uint32_t v4 = (uint32_t)w[3];
        memcpy(out->addr, &v4, 4);
    } else if (out->family == 6) {
        memcpy(out->addr, &w[3], 8);
        memcpy(out->addr + 8, &w[4], 8);
    }
    memcpy(out->name, &w[W_NAME], words * 8 < sizeof out->name ? words * 8 : sizeof out->name);
    if (len > LH_NAME_MAX || (len && out->name[len - 1] != 0))
        out->name_len = 0; /* defensive: a name always ends in the root label */
    return true;
}

size_t lh_recent_read(const lh_recent *r, uint64_t from, lh_recent_rec *out, uint64_t *pos,
                      size_t max, uint64_t *end)
{
    uint64_t head = atomic_load_explicit(&r->published, memory_order_acquire);
    uint64_t first = head > r->mask + 1 ? head - (r->mask + 1) : 0;
    if (from > first) first = from;
    if (head - first > max) first = head - max;
    size_t n = 0;
    for (uint64_t p = first; p < head; p++)
        if (read_slot(r, p, &out[n])) {
            if (pos) pos[n] = p;
            n++;
        }
    *end = head;
    return n;
}
