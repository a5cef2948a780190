/* fake_transport.h - a scripted upstream transport for the scenario tests: every try is kept
 * in a list until the test answers it, lets it time out (on the manual clock), or it is
 * cancelled. It mimics what c-ares does for the daemon: SERVFAIL, REFUSED and NOTIMP answers
 * are failures, and a try ends after upstream-timeout without an answer. */
#ifndef LH_FAKE_TRANSPORT_H
#define LH_FAKE_TRANSPORT_H

#include "loophole/upstream.h"

typedef struct fake_try {
    struct fake_try *next;
    struct fake_transport *t;
    lh_upstream_server *server;
    lh_try_done_cb done;
    void *arg;
    lh_timer timeout;
    size_t len;
    uint8_t query[512];
} fake_try;

typedef struct fake_transport {
    lh_transport base;
    lh_clock *clock;
    unsigned timeout_ms;
    fake_try *head; /* outstanding tries, oldest first */
    unsigned started, cancelled, timed_out;
} fake_transport;

#define FAKE_TIMEOUT (-1)
#define FAKE_RCODE_FAILURE (-2)

fake_transport *fake_transport_new(lh_clock *clock, unsigned timeout_ms);
/* The oldest outstanding try, or NULL. */
fake_try *fake_oldest(fake_transport *t);
/* Answers a try with `answer` (ends it). */
void fake_reply(fake_try *ft, const uint8_t *answer, size_t len);

#endif
