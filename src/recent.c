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

/* Every word is stored straight from where it lives (the header from registers, the address
 * from the socket address, the name from the parsed question): no copy of the record on the
 * stack and no memcpy call. bench/recent.sh counts the instructions. */
void lh_recent_push(lh_recent *r, const lh_query_end *q, uint64_t now_ms)
{
    uint64_t pos = r->head++;
    lh_recent_slot *s = &r->slots[pos & r->mask];
    union {
        lh_recent_rec rec;
        uint64_t w[LH_RECENT_FIXED_WORDS];
    } u; /* only the three header words are filled and used */
    lh_recent_rec *e = &u.rec;
    e->time_ms = now_ms + (uint64_t)r->unix_offset_ms;
    /* Measured only when something else asked for the arrival time (the query log). */
    e->latency_us = q->start_ns ? (uint32_t)((uv_hrtime() - q->start_ns) / 1000) : 0;
    e->qtype = q->msg->qtype;
    e->outcome = (uint8_t)q->outcome;
    e->has_rcode = q->answer && q->answer_len >= 4;
    e->rcode = e->has_rcode ? q->answer[3] & 0xf : 0;
    e->list = (int16_t)q->list;
    e->match_label = (int8_t)q->match_label;
    e->pad[0] = e->pad[1] = 0;
    const lh_sockaddr *c = r->keep_address ? q->client : NULL;
    uint64_t a0 = 0, a1 = 0;
    e->family = 0;
    if (c && c->sa.sa_family == AF_INET) {
        e->family = 4;
        memcpy(&a0, &c->v4.sin_addr, 4); /* its 4 bytes first, as the record keeps them */
    } else if (c && c->sa.sa_family == AF_INET6) {
        e->family = 6;
        memcpy(&a0, c->v6.sin6_addr.s6_addr, 8);
        memcpy(&a1, c->v6.sin6_addr.s6_addr + 8, 8);
    }
    const lh_name *n = &q->msg->qname;
    size_t len = n->len;
    e->name_len = (uint8_t)len;
    const size_t addr_w = offsetof(lh_recent_rec, addr) / 8;
    atomic_store_explicit(&s->seq, 2 * pos + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* the odd mark is seen before any new word */
    for (size_t i = 0; i < addr_w; i++)
        atomic_store_explicit(&s->w[i], u.w[i], memory_order_relaxed);
    atomic_store_explicit(&s->w[addr_w], a0, memory_order_relaxed);
    atomic_store_explicit(&s->w[addr_w + 1], a1, memory_order_relaxed);
    size_t words = (len + 7) / 8;
    if (words * 8 > sizeof n->wire) { /* a name within 7 bytes of the maximum: the last word */
        uint64_t last = 0;
        memcpy(&last, n->wire + (words - 1) * 8, len - (words - 1) * 8);
        atomic_store_explicit(&s->w[LH_RECENT_FIXED_WORDS + words - 1], last, memory_order_relaxed);
        words--;
    }
    for (size_t i = 0; i < words; i++) {
        uint64_t x;
        memcpy(&x, n->wire + i * 8, 8);
        atomic_store_explicit(&s->w[LH_RECENT_FIXED_WORDS + i], x, memory_order_relaxed);
    }
    atomic_store_explicit(&s->seq, 2 * pos + 2, memory_order_release);
    atomic_store_explicit(&r->published, pos + 1, memory_order_release);
}

/* Copies slot `pos` if it still holds that record, untorn. */
static bool read_slot(const lh_recent *r, uint64_t pos, lh_recent_rec *out)
{
    lh_recent_slot *s = &r->slots[pos & r->mask];
    uint64_t want = 2 * pos + 2;
    if (atomic_load_explicit(&s->seq, memory_order_acquire) != want) return false;
    union {
        lh_recent_rec rec;
        uint64_t w[LH_RECENT_WORDS];
    } u;
    for (size_t i = 0; i < LH_RECENT_FIXED_WORDS; i++)
        u.w[i] = atomic_load_explicit(&s->w[i], memory_order_relaxed);
    size_t len = u.rec.name_len;
    for (size_t i = 0; i < (len + 7) / 8; i++)
        u.w[LH_RECENT_FIXED_WORDS + i] =
            atomic_load_explicit(&s->w[LH_RECENT_FIXED_WORDS + i], memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire); /* the words are read before the recheck */
    if (atomic_load_explicit(&s->seq, memory_order_relaxed) != want) return false;
    if (len > LH_NAME_MAX || (len && u.rec.name[len - 1] != 0))
        u.rec.name_len = 0; /* defensive: a name always ends in the root label */
    *out = u.rec;
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
