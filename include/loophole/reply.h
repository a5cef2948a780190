/* reply.h - a reply handle: what a query carries so that whoever finishes it can answer the
 * client without knowing what the client is. A UDP listener and a peer address, a TCP
 * connection, or an in-process test client each fill one with their own ops; the forwarder and
 * anything else that answers later (Unbound's comm_reply plays this part) only calls the ops.
 *
 * The handle is a small value: it is copied into whatever waits for an answer (a forwarded
 * question's waiter), never allocated. Lifetime: the creator's object (listener, connection)
 * must outlive the handle; an answerer that keeps a copy beyond the call that received it
 * takes a hold first and releases it once it has answered (or given up). Header only. */
#ifndef LH_REPLY_H
#define LH_REPLY_H

#include "loophole/addr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lh_reply lh_reply;

typedef struct lh_reply_ops {
    /* Sends `answer` (`len` bytes; 0: the query ends unanswered). Two writable bytes precede
     * `answer` (room for a TCP length prefix), so no copy is needed to frame it. */
    void (*send)(const lh_reply *r, uint8_t *answer, size_t len);
    /* The answer comes later: keep what `r` points at alive until the matching release. */
    void (*hold)(const lh_reply *r);
    void (*release)(const lh_reply *r);
} lh_reply_ops;

struct lh_reply {
    const lh_reply_ops *ops;
    void *to;          /* the listener, connection or test client the ops answer through */
    bool datagram;     /* UDP: the client's advertised size limit applies (TC=1 beyond it) */
    uint64_t start_ns; /* uv_hrtime() on arrival when the query log wants latencies, else 0 */
    lh_sockaddr peer;  /* who asked */
};

static inline void lh_reply_send(const lh_reply *r, uint8_t *answer, size_t len)
{
    r->ops->send(r, answer, len);
}
static inline void lh_reply_hold(const lh_reply *r)
{
    if (r->ops->hold) r->ops->hold(r);
}
static inline void lh_reply_release(const lh_reply *r)
{
    if (r->ops->release) r->ops->release(r);
}

#endif
